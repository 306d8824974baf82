// SPDX-License-Identifier: MIT
/*
 * A reader woken at one watermark that raises it without reading and waits again must be woken
 * when the new watermark is crossed (the writers' wake dedupe once kept it asleep), on a
 * single-writer and on a multi-producer ring.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "evring.h"
#include "test.h"

#define RING 16384
#define WM1 1024
#define WM2 4096
#define REC 64 /* payload; records are 72 bytes */

struct ctx {
	struct evr_ring *r;
	volatile int go; /* 1: write past WM2 */
};

static void *writer(void *arg)
{
	struct ctx *x = arg;
	char buf[REC] = { 0 };
	uint64_t bytes = 0;

	usleep(50000); /* let the reader fall asleep on WM1: the crossing must wake it */
	while (bytes < WM1 + 256) {
		assert_eq(evr_ring_write(x->r, 1, buf, sizeof(buf)), 0);
		bytes += REC + 8;
	}
	while (!__atomic_load_n(&x->go, __ATOMIC_ACQUIRE))
		usleep(1000);
	usleep(50000); /* let the reader fall asleep on WM2 */
	while (bytes < WM2 + 1024) {
		assert_eq(evr_ring_write(x->r, 1, buf, sizeof(buf)), 0);
		bytes += REC + 8;
	}
	return NULL;
}

static void one(uint32_t flags, const char *name)
{
	EVR_OPTS(evr_ring_opts, o, .data_size = RING, .flags = EVR_RING_MIRROR | flags);
	struct evr_reader *rd;
	struct ctx x = { 0 };
	pthread_t t;
	double t0;
	int got;

	assert_eq(evr_ring_create(&o, &x.r), 0);
	assert_eq(evr_reader_create(x.r, NULL, &rd), 0);
	assert_eq(evr_reader_set_watermark(rd, WM1), 0);
	assert_eq(pthread_create(&t, NULL, writer, &x), 0);
	got = evr_reader_wait(rd, 5000);
	expect_true(got >= WM1, "%s: first wait returned %d", name, got);
	/* raise the watermark without reading anything, and wait again */
	assert_eq(evr_reader_set_watermark(rd, WM2), 0);
	__atomic_store_n(&x.go, 1, __ATOMIC_RELEASE);
	t0 = t_now();
	got = evr_reader_wait(rd, 3000);
	expect_true(got >= WM2 && t_now() - t0 < 2.5,
		    "%s: slept %.2f s through the raised watermark (returned %d)", name,
		    t_now() - t0, got);
	pthread_join(t, NULL);
	evr_reader_destroy(rd);
	evr_ring_destroy(x.r);
}

int main(void)
{
	t_init("wake-raise");
	one(0, "single-writer");
	one(EVR_RING_MULTI, "multi-producer");
	return t_done();
}
