// SPDX-License-Identifier: MIT
/*
 * A flush that finds nothing unread wakes the reader, which sleeps again at the same tail; a
 * record that then crosses the watermark from that tail must wake it again. The writers' wake
 * dedupe once took the flush for a watermark wake at that tail and skipped the second wake
 * (found by wake-stress under TSAN; models/wakeup.pml, SRC_WOKE_ON_FORCE). Checked through the
 * poll fd (deterministic, one thread) and through evr_reader_wait() (a reader thread), on a
 * single-writer and on a multi-producer ring.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "evring.h"
#include "test.h"

#define RING 16384
#define WM 1024
#define SMALL 8 /* payload of the record the reader drains first */
#define BIG (WM + 64) /* payload of the one record that crosses the watermark */

static char buf[BIG];

static struct evr_ring *make_ring(uint32_t flags, struct evr_reader **rd)
{
	EVR_OPTS(evr_ring_opts, o, .data_size = RING, .flags = EVR_RING_MIRROR | flags);
	struct evr_ring *r;

	assert_eq(evr_ring_create(&o, &r), 0);
	assert_eq(evr_reader_create(r, NULL, rd), 0);
	assert_eq(evr_reader_set_watermark(*rd, WM), 0);
	return r;
}

/* Write one small record and consume it: the ring is empty and data_tail == data_head. */
static void write_and_drain(struct evr_ring *r, struct evr_reader *rd)
{
	struct evr_record rec;

	assert_eq(evr_ring_write(r, 1, buf, SMALL), 0);
	assert_true(evr_reader_begin(rd) > 0, "nothing to read");
	assert_eq(evr_reader_next(rd, &rec), 1);
	assert_eq(evr_reader_end(rd), 0);
	assert_eq(evr_reader_begin(rd), 0);
	evr_reader_end(rd);
}

static int readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0);
}

static void via_poll(uint32_t flags, const char *name)
{
	struct evr_reader *rd;
	struct evr_ring *r = make_ring(flags, &rd);
	int fd = evr_reader_get_fd(rd);
	uint64_t v;

	assert_true(fd >= 0, "evr_reader_get_fd: %d", fd);
	write_and_drain(r, rd);
	assert_true(evr_ring_flush(r) >= 0, "flush");
	expect_true(readable(fd) == 1, "%s: the flush did not make the fd readable", name);
	assert_eq(read(fd, &v, sizeof(v)), (ssize_t)sizeof(v)); /* re-arm; nothing to drain */
	expect_eq(readable(fd), 0);
	assert_eq(evr_ring_write(r, 1, buf, BIG), 0);
	expect_true(readable(fd) == 1,
		    "%s: a crossing at the tail of an empty flush was not signalled", name);
	evr_reader_destroy(rd);
	evr_ring_destroy(r);
}

struct ctx {
	struct evr_reader *rd;
	int first, second; /* what the two waits returned */
	double slept; /* how long the second one took */
	int woken; /* the first wait returned */
};

static void *reader(void *arg)
{
	struct ctx *x = arg;
	double t0;

	x->first = evr_reader_wait(x->rd, 5000); /* ended by the flush */
	__atomic_store_n(&x->woken, 1, __ATOMIC_RELEASE);
	t0 = t_now();
	x->second = evr_reader_wait(x->rd, 3000); /* must end at the crossing */
	x->slept = t_now() - t0;
	return NULL;
}

static void via_wait(uint32_t flags, const char *name)
{
	struct ctx x = { 0 };
	struct evr_ring *r = make_ring(flags, &x.rd);
	const struct evr_ctrl *c = evr_ring_get_ctrl(r);
	pthread_t t;

	write_and_drain(r, x.rd);
	assert_eq(pthread_create(&t, NULL, reader, &x), 0);
	t_await_blocked(c);
	assert_true(evr_ring_flush(r) >= 0, "flush");
	while (!__atomic_load_n(&x.woken, __ATOMIC_ACQUIRE))
		usleep(1000);
	t_await_blocked(c);
	assert_eq(evr_ring_write(r, 1, buf, BIG), 0);
	pthread_join(t, NULL);
	expect_true(x.first == 0, "%s: the first wait returned %d, not the flush's 0", name,
		    x.first);
	expect_true(x.second >= WM && x.slept < 2.5,
		    "%s: slept %.2f s through a crossing after an empty flush (returned %d)", name,
		    x.slept, x.second);
	evr_reader_destroy(x.rd);
	evr_ring_destroy(r);
}

int main(void)
{
	t_init("wake-flush");
	memset(buf, 0x5a, sizeof(buf));
	via_poll(0, "single-writer, poll fd");
	via_poll(EVR_RING_MULTI, "multi-producer, poll fd");
	via_wait(0, "single-writer, evr_reader_wait");
	via_wait(EVR_RING_MULTI, "multi-producer, evr_reader_wait");
	return t_done();
}
