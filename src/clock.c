// SPDX-License-Identifier: MIT
/*
 * Timestamps: the invariant TSC where the CPU has one, converted to CLOCK_MONOTONIC nanoseconds
 * with perf's (time_zero, time_mult, time_shift) formula; CLOCK_MONOTONIC itself otherwise.
 * Calibration runs once per process (not on any write path); reading the clock is wait-free.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <x86intrin.h>
#endif

#include "atomic.h"
#include "internal.h"

static struct evr_clock_params clk; /* written once under the once-control, then read-only */
static pthread_once_t clk_once = PTHREAD_ONCE_INIT;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int has_invariant_tsc(void)
{
#if defined(__x86_64__)
	unsigned int a, b, c, d;

	if (!__get_cpuid(0x80000000, &a, &b, &c, &d) || a < 0x80000007)
		return 0;
	__get_cpuid(0x80000007, &a, &b, &c, &d);
	return !!(d & (1u << 8));
#else
	return 0;
#endif
}

/*
 * Measure TSC ticks against CLOCK_MONOTONIC over ~20 ms, bracketing each clock_gettime() by two
 * TSC reads and keeping the tightest bracket at both ends.
 */
static void calibrate(void)
{
#if defined(__x86_64__)
	uint64_t t0 = 0, n0 = 0, t1 = 0, n1 = 0, best;
	double ns_per_cyc;
	uint32_t shift = 31;

	const char *choice = getenv("EVR_CLOCK");

	if (choice && !strcmp(choice, "monotonic"))
		goto mono;
	clk.ordered = choice && !strcmp(choice, "tsc-ordered");
	if (!has_invariant_tsc())
		goto mono;
	for (int end = 0; end < 2; end++) {
		best = ~0ull;
		for (int i = 0; i < 64; i++) {
			uint64_t a = __rdtsc(), n = mono_ns(), b = __rdtsc();

			if (b - a < best) {
				best = b - a;
				if (end) {
					t1 = a + (b - a) / 2;
					n1 = n;
				} else {
					t0 = a + (b - a) / 2;
					n0 = n;
				}
			}
		}
		if (!end) {
			struct timespec d = { 0, 20 * 1000 * 1000 };

			nanosleep(&d, NULL);
		}
	}
	if (t1 <= t0 || n1 <= n0)
		goto mono;
	ns_per_cyc = (double)(n1 - n0) / (double)(t1 - t0);
	/* largest shift whose multiplier still fits 32 bits */
	while (shift > 0 && ns_per_cyc * (double)(1ull << shift) >= 4294967295.0)
		shift--;
	clk.mult = (uint32_t)(ns_per_cyc * (double)(1ull << shift) + 0.5);
	clk.shift = (uint16_t)shift;
	clk.zero = 0;
	/* choose zero so that the conversion of t1 lands exactly on n1 */
	clk.zero = n1 - evr__cycles_to_ns(&clk, t1);
	clk.tsc = 1;
	return;
mono:
#endif
	clk.mult = 0;
	clk.shift = 0;
	clk.zero = 0;
	clk.tsc = 0;
}

const struct evr_clock_params *evr__clock(void)
{
	pthread_once(&clk_once, calibrate);
	return &clk;
}

/* Publish the conversion in a control page, where perf keeps its own (cap_user_time_zero). */
void evr__clock_publish(struct evr_ctrl *c)
{
	const struct evr_clock_params *p = evr__clock();

	c->time_mult = p->mult;
	c->time_shift = p->shift;
	c->time_zero = p->zero;
	/* bit 4 of capabilities: cap_user_time_zero, as in the kernel's page */
	if (p->tsc)
		c->capabilities |= 1ull << 4;
}

uint64_t evr_clock_now(void)
{
	const struct evr_clock_params *p = evr__clock();

	return evr__cycles_to_ns(p, evr__clock_read(p));
}

uint64_t evr_clock_to_ns(const struct evr_ctrl *c, uint64_t stamp)
{
	struct evr_clock_params p;

	if (!c)
		return stamp;
	/* untrusted: a hostile page yields wrong times, never a fault (shift is masked) */
	p.mult = READ_ONCE(c->time_mult);
	p.shift = READ_ONCE(c->time_shift) & 63;
	p.zero = READ_ONCE(c->time_zero);
	p.tsc = 0;
	if (p.shift > 40)
		return stamp;
	return evr__cycles_to_ns(&p, stamp);
}
