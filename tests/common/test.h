/* SPDX-License-Identifier: MIT */
/*
 * The test harness: expect_*() records a failure and goes on, assert_*() stops the test;
 * exit 0 pass, 1 fail, 77 skip. Seeds come from EVR_SEED and are printed on failure.
 */
#ifndef EVR_TEST_H
#define EVR_TEST_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define T_PASS 0
#define T_FAIL 1
#define T_SKIP 77

/* T_TSAN: built with ThreadSanitizer (gcc or clang), which defers asynchronous signals */
#ifndef T_TSAN
#if defined(__SANITIZE_THREAD__)
#define T_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define T_TSAN 1
#endif
#endif
#endif

extern int t_failures;
extern uint64_t t_seed;
extern const char *t_name;

/* Call first: reads EVR_SEED (or picks one from the clock), names the test. */
void t_init(const char *name);
/* Exit with the verdict; prints the seed if anything failed. */
int t_done(void);
/* Skip the whole test with a reason (exit 77). */
void t_skip(const char *why) __attribute__((noreturn));
/* Long tier requested (EVR_LONG=1)? */
int t_long(void);
/* Seconds as a double, CLOCK_MONOTONIC. */
double t_now(void);
struct evr_ctrl;
/*
 * Until a reader of the ring is blocked in evr_reader_wait() (or about to: its futex bit is
 * set), at most 5 s, then 20 ms more for it to reach FUTEX_WAIT.
 */
void t_await_blocked(const struct evr_ctrl *c);

void t_report(const char *file, int line, const char *expr, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define expect_true(c, ...)                                                                      \
	do {                                                                                     \
		if (!(c))                                                                        \
			t_report(__FILE__, __LINE__, #c, "" __VA_ARGS__);                        \
	} while (0)
#define assert_true(c, ...)                                                                      \
	do {                                                                                     \
		if (!(c)) {                                                                      \
			t_report(__FILE__, __LINE__, #c, "" __VA_ARGS__);                        \
			exit(t_done());                                                          \
		}                                                                                \
	} while (0)
#define expect_eq(a, b)                                                                          \
	do {                                                                                     \
		long long a_ = (long long)(a), b_ = (long long)(b);                              \
		if (a_ != b_)                                                                    \
			t_report(__FILE__, __LINE__, #a " == " #b, "%lld != %lld", a_, b_);      \
	} while (0)
#define assert_eq(a, b)                                                                          \
	do {                                                                                     \
		long long a_ = (long long)(a), b_ = (long long)(b);                              \
		if (a_ != b_) {                                                                  \
			t_report(__FILE__, __LINE__, #a " == " #b, "%lld != %lld", a_, b_);      \
			exit(t_done());                                                          \
		}                                                                                \
	} while (0)

/* splitmix64: a seeded generator the reader can re-derive from (seed, writer, seq). */
/* A spin-wait hint for busy loops. */
static inline void t_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* Pin the calling thread to @cpu, best effort (a restricted cpuset just leaves it unpinned). */
void t_pin(int cpu);

static inline uint64_t t_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static inline uint64_t t_rand(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ull;
	return t_mix(*state);
}

#endif
