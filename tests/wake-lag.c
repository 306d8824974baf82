// SPDX-License-Identifier: MIT
/*
 * A reader that fell more than a watermark behind without waiting, then consumed part of it
 * and waits, is woken when its own tail + watermark is crossed: not before, not after. While
 * nobody waits, the writer's commits skip data_tail altogether (evr__wake_check_spsc() looks
 * at reader_waiting only), so the last tail the writer saw is far behind the reader's: the
 * first commit after the reader goes to sleep must look again instead of trusting it. Also
 * checked: no futex wake is issued while nobody waits. Single-writer and multi-producer rings.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "evring.h"
#include "test.h"

#define RING 16384
#define WM 4096
#define REC 64 /* payload; records are 72 bytes */
#define RECSZ 72

struct ctx {
	struct evr_reader *rd;
	int ret; /* what evr_reader_wait() returned */
	double slept;
	int done;
};

static char buf[REC];

static void *reader(void *arg)
{
	struct ctx *x = arg;
	double t0 = t_now();

	x->ret = evr_reader_wait(x->rd, 5000);
	x->slept = t_now() - t0;
	__atomic_store_n(&x->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Consume records until fewer than @left of the @written bytes are unread; returns the rest. */
static uint64_t consume_to(struct evr_reader *rd, uint64_t written, uint64_t left)
{
	struct evr_record rec;
	uint64_t unread = written;

	assert_true(evr_reader_begin(rd) > 0, "nothing to read");
	while (unread >= left) {
		assert_eq(evr_reader_next(rd, &rec), 1);
		assert_eq(rec.len, REC);
		unread -= RECSZ;
	}
	assert_eq(evr_reader_end(rd), 0);
	return unread;
}

static void lagging_reader(uint32_t flags, const char *name)
{
	EVR_OPTS(evr_ring_opts, o, .data_size = RING, .flags = EVR_RING_MIRROR | flags);
	struct ctx x = { 0 };
	struct evr_ring *r;
	const struct evr_ctrl *c;
	uint64_t unread, written;
	pthread_t t;
	int n;

	assert_eq(evr_ring_create(&o, &r), 0);
	c = evr_ring_get_ctrl(r);
	assert_eq(evr_reader_create(r, NULL, &x.rd), 0);
	assert_eq(evr_reader_set_watermark(x.rd, WM), 0);

	/* three watermarks unread, nobody waiting: no wake may be issued */
	for (n = 0; n < 3 * WM / RECSZ; n++)
		assert_eq(evr_ring_write(r, 1, buf, REC), 0);
	written = (uint64_t)n * RECSZ;
	expect_eq(__atomic_load_n(&c->wakeups, __ATOMIC_RELAXED), 0);

	/* read all but two records' worth below the watermark, then sleep */
	unread = consume_to(x.rd, written, WM - 2 * RECSZ);
	assert_eq(pthread_create(&t, NULL, reader, &x), 0);
	t_await_blocked(c);

	/* commits that keep it below the watermark must not wake it */
	while (unread + RECSZ < WM) {
		assert_eq(evr_ring_write(r, 1, buf, REC), 0);
		unread += RECSZ;
	}
	usleep(50000);
	expect_true(!__atomic_load_n(&x.done, __ATOMIC_ACQUIRE),
		    "%s: woken at %llu bytes unread, below the watermark %d (returned %d)", name,
		    (unsigned long long)unread, WM, x.ret);
	expect_eq(__atomic_load_n(&c->wakeups, __ATOMIC_RELAXED), 0);

	/* the crossing: woken at once */
	assert_eq(evr_ring_write(r, 1, buf, REC), 0);
	pthread_join(t, NULL);
	expect_true(x.ret >= WM && x.slept < 2.5,
		    "%s: slept %.2f s through the crossing at %llu bytes unread (returned %d)",
		    name, x.slept, (unsigned long long)(unread + RECSZ), x.ret);
	expect_eq(__atomic_load_n(&c->wakeups, __ATOMIC_RELAXED), 1);
	evr_reader_destroy(x.rd);
	evr_ring_destroy(r);
}

int main(void)
{
	t_init("wake-lag");
	memset(buf, 0x5a, sizeof(buf));
	lagging_reader(0, "single-writer");
	lagging_reader(EVR_RING_MULTI, "multi-producer");
	return t_done();
}
