/* SPDX-License-Identifier: MIT */
/*
 * What every benchmark shares: knobs read from the environment (BENCH_*, see bench/run.sh),
 * CPU pinning, a monotonic clock, pre-touching, and the SAMPLE line that bench/report aggregates.
 * The helpers keep no state; bench_now_ns() and bench_pin() may be called from any thread.
 */
#ifndef EVR_BENCH_H
#define EVR_BENCH_H

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <evring.h>

#define BENCH_MAX_PAYLOADS 16
#define BENCH_ID 1u /* application event id of every benchmark record */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/*
 * One step of a wait loop: pause, and every 256th step give the CPU away, so that a spinning
 * thread does not keep its peer (or anyone else) off a busy machine for a whole time slice. On a
 * quiet machine the yield returns at once.
 */
static inline void bench_backoff(unsigned int *spins)
{
	if (++*spins % 256 == 0)
		sched_yield();
	else
		cpu_relax();
}

/* BENCH_IMPLS="evring,ideal": run only these (all when unset). */
static inline int bench_impl_wanted(const char *name)
{
	const char *s = getenv("BENCH_IMPLS");
	size_t n = strlen(name);

	if (!s || !*s)
		return 1;
	while (*s) {
		size_t l = strcspn(s, ", ");

		if (l == n && !strncmp(s, name, n))
			return 1;
		s += l;
		s += strspn(s, ", ");
	}
	return 0;
}

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline __attribute__((noreturn, format(printf, 1, 2))) void bench_die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static inline int bench_quick(void)
{
	const char *s = getenv("BENCH_QUICK");

	return s && *s && strcmp(s, "0") != 0;
}

/* An integer knob: $name if set, else @quick under BENCH_QUICK=1, else @def. */
static inline long bench_knob(const char *name, long def, long quick)
{
	const char *s = getenv(name);
	char *end;
	long v;

	if (!s || !*s)
		return bench_quick() ? quick : def;
	v = strtol(s, &end, 0);
	if (*end || v < 0)
		bench_die("%s=%s: want a non-negative integer", name, s);
	return v;
}

/* BENCH_PAYLOADS="16 120 1000": payload sizes, multiples of 8 and at least 8 bytes each. */
static inline int bench_payloads(size_t *out)
{
	const char *s = getenv("BENCH_PAYLOADS");
	int n = 0;

	if (!s || !*s)
		s = "16 120 1000";
	while (*s) {
		char *end;
		long v = strtol(s, &end, 10);

		if (end == s)
			bench_die("BENCH_PAYLOADS: cannot parse '%s'", s);
		if (v < 8 || v % 8 || v > 60000 || n == BENCH_MAX_PAYLOADS)
			bench_die("BENCH_PAYLOADS: %ld: want up to %d sizes, multiples of 8 "
				  "in 8..60000", v, BENCH_MAX_PAYLOADS);
		out[n++] = (size_t)v;
		s = end;
		while (*s == ' ' || *s == ',')
			s++;
	}
	return n;
}

/*
 * Pin the calling thread to @cpu. Failing is not fatal (a container may forbid it, a machine may
 * have one CPU): the caller carries on unpinned and says so in its SAMPLE lines.
 */
static inline int bench_pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0 || cpu >= CPU_SETSIZE)
		return -EINVAL;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/*
 * How often the calling thread has been taken off its CPU against its will so far. A timed
 * stretch during which this moved measured someone else's time slice too.
 */
static inline long bench_preemptions(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_THREAD, &ru))
		return 0;
	return ru.ru_nivcsw;
}

/* Fault every page of [p, p + n) in, for writing, before anything is timed. */
static inline void bench_pretouch(void *p, size_t n)
{
	memset(p, 0, n);
}

/* Bytes of a record with @len payload bytes: 8-byte header, 8-byte aligned (both rings). */
/*
 * A session holding one flight ring of @ring bytes in pages of @page bytes, in overwrite mode
 * if @overwrite, else produce/consume; dies on failure.
 */
static inline void bench_flight_open(uint64_t ring, uint32_t page, int overwrite,
				     struct evr_session **sess, struct evr_flight **fl)
{
	struct evr_session_opts so = {
		.sz = sizeof(so),
		.nr_rings = 1,
		.ring_flags = EVR_RING_FLIGHT | (overwrite ? EVR_RING_OVERWRITE : 0),
		.data_size = ring,
		.flight_page_size = page,
	};
	int err = evr_session_create(&so, sess);

	if (!err)
		err = evr_session_get_flight(*sess, 0, fl);
	if (err)
		bench_die("flight session (%llu bytes in %u-byte pages, %s): %s",
			  (unsigned long long)ring, page,
			  overwrite ? "overwrite" : "produce/consume", evr_strerror(err));
}

static inline size_t bench_rec_size(size_t len)
{
	return (len + 8 + 7) & ~(size_t)7;
}

/*
 * One measurement, one line on stdout, for bench/report:
 *   SAMPLE workload=W1 impl=evring payload=16 round=3 value=4.91 unit=ns/rec [k=v ...]
 */
static inline void bench_sample(const char *workload, const char *impl, size_t payload, int round,
				double value, const char *unit, const char *extra)
{
	printf("SAMPLE workload=%s impl=%s payload=%zu round=%d value=%.4f unit=%s%s%s\n", workload,
	       impl, payload, round, value, unit, extra && *extra ? " " : "", extra ? extra : "");
	fflush(stdout);
}

#endif /* EVR_BENCH_H */
