// SPDX-License-Identifier: MIT
/*
 * The test harness's out-of-line half: seed handling, reporting, verdicts.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evring/abi.h"
#include "test.h"

int t_failures;
uint64_t t_seed;
const char *t_name = "test";

double t_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void t_init(const char *name)
{
	const char *s = getenv("EVR_SEED");

	t_name = name;
	if (s && *s)
		t_seed = strtoull(s, NULL, 0);
	else
		t_seed = t_mix((uint64_t)(t_now() * 1e9));
	setvbuf(stdout, NULL, _IOLBF, 0);
}

int t_long(void)
{
	const char *s = getenv("EVR_LONG");

	return s && *s && strcmp(s, "0");
}

void t_report(const char *file, int line, const char *expr, const char *fmt, ...)
{
	va_list ap;

	t_failures++;
	if (t_failures > 20)
		return; /* counted, not printed */
	fprintf(stderr, "%s: %s:%d: failed: %s", t_name, file, line, expr);
	if (fmt && *fmt) {
		fputs(": ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
	}
	fputc('\n', stderr);
}

int t_done(void)
{
	if (t_failures) {
		fprintf(stderr, "%s: %d failure(s); replay with EVR_SEED=0x%016" PRIx64 "\n",
			t_name, t_failures, t_seed);
		return T_FAIL;
	}
	return T_PASS;
}

void t_skip(const char *why)
{
	printf("%s: skipped: %s\n", t_name, why);
	exit(T_SKIP);
}

void t_pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	(void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set); /* best effort */
}

void t_await_blocked(const struct evr_ctrl *c)
{
	for (int i = 0; i < 5000; i++) {
		if (__atomic_load_n(&c->reader_waiting, __ATOMIC_ACQUIRE) & EVR_WAITING_FUTEX)
			break;
		usleep(1000);
	}
	usleep(20000);
}
