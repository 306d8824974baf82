// SPDX-License-Identifier: MIT
/*
 * The writer's error returns and their counters: -EMSGSIZE, -EDEADLK, -ESHUTDOWN, -EINVAL
 * (bad arguments, commit or discard of a slot that is not the innermost open reservation);
 * evr_ring_discard() turning reservations into padding; nested reservations in one thread are
 * published only by the outermost commit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "evring.h"
#include "test.h"

static uint8_t pool[1 << 17];

/*
 * Under UBSan (SAN=address,undefined) undefined behaviour in the library, such as memcpy() from
 * the NULL that evr_ring_write() accepts with a length of 0, must fail the test, not just print.
 */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}

static uint32_t rec_size(size_t len)
{
	return (uint32_t)((len + sizeof(struct evr_record_header) + 7) & ~(size_t)7);
}

static struct evr_ring *make(uint64_t size, uint32_t flags)
{
	EVR_OPTS(evr_ring_opts, o, .data_size = size, .flags = flags, .ring_id = 1);
	struct evr_ring *r;

	assert_eq(evr_ring_create(&o, &r), 0);
	return r;
}

static struct evr_ring_stats stats(struct evr_ring *r)
{
	EVR_OPTS(evr_ring_stats, st);

	assert_eq(evr_ring_get_stats(r, &st), 0);
	return st;
}

static uint32_t nest(struct evr_ring *r)
{
	return __atomic_load_n(&evr_ring_get_ctrl(r)->nest, __ATOMIC_RELAXED);
}

/* Read one batch and expect exactly the app records @ids with lengths @lens, in this order. */
static void expect_batch(struct evr_reader *rd, const char *what, int n, const uint32_t *ids,
			 const uint32_t *lens)
{
	struct evr_record rec;
	int got, i;

	assert_true(evr_reader_begin(rd) >= 0, "%s: begin", what);
	for (i = 0; i < n; i++) {
		got = evr_reader_next(rd, &rec);
		if (got != 1) {
			expect_true(0, "%s: record %d of %d missing: %d", what, i, n, got);
			break;
		}
		expect_true(rec.is_app && rec.type == ids[i] && rec.len == lens[i],
			    "%s: record %d is app %d id %u len %u, want id %u len %u", what, i,
			    rec.is_app, rec.type, rec.len, ids[i], lens[i]);
		if (rec.is_app && rec.len == lens[i])
			expect_true(!memcmp(rec.data, pool + ids[i], lens[i]), "%s: payload of %u",
				    what, ids[i]);
	}
	got = evr_reader_next(rd, &rec);
	expect_true(got == 0, "%s: extra record (%d): type %#x len %u", what, got,
		    got == 1 ? rec.type : 0, got == 1 ? rec.len : 0);
	evr_reader_end(rd);
}

static void msgsize(void)
{
	struct evr_ring *big = make(1 << 17, 0), *small = make(256, 0),
			*bw = make(256, EVR_RING_OVERWRITE);
	struct evr_reader *rd;
	struct evr_slot s;
	uint32_t id = 3, len = EVR_PAYLOAD_MAX;

	/* the largest payload fits a big enough ring, byte for byte */
	assert_eq(evr_reader_create(big, NULL, &rd), 0);
	expect_eq(evr_ring_write(big, id, pool + id, EVR_PAYLOAD_MAX), 0);
	expect_batch(rd, "largest payload", 1, &id, &len);
	expect_eq(evr_ring_write(big, 1, pool, EVR_PAYLOAD_MAX + 1), -EMSGSIZE);
	expect_eq(evr_ring_reserve(big, 1, EVR_PAYLOAD_MAX + 1, &s), -EMSGSIZE);
	expect_eq(evr_ring_write(big, 1, pool, (size_t)-1), -EMSGSIZE);
	expect_eq(evr_ring_reserve(big, 1, (size_t)1 << 33, &s), -EMSGSIZE);
	expect_eq(stats(big).err_msgsize, 4);
	expect_eq(stats(big).lost_full, 0); /* not a loss */
	expect_eq(nest(big), 0);
	/* and no LOST record for it either */
	id = 4;
	len = 5;
	expect_eq(evr_ring_write(big, id, pool + id, len), 0);
	expect_batch(rd, "after -EMSGSIZE", 1, &id, &len);
	evr_reader_destroy(rd);

	/* a record and a LOST record must fit the ring together: 208 + 48 = 256 */
	for (int i = 0; i < 2; i++) {
		struct evr_ring *r = i ? bw : small;

		expect_eq(evr_ring_write(r, 1, pool, 200), 0);
		expect_eq(evr_ring_write(r, 1, pool, 201), -EMSGSIZE);
		expect_eq(evr_ring_reserve(r, 1, 201, &s), -EMSGSIZE);
		expect_eq(evr_ring_write(r, 1, pool, 248), -EMSGSIZE); /* exactly the whole ring */
		expect_eq(evr_ring_write(r, 1, pool, 1000), -EMSGSIZE);
		expect_eq(stats(r).err_msgsize, 4);
		expect_eq(stats(r).data_head, i ? (uint64_t)-208 : 208);
		expect_eq(nest(r), 0);
	}
	evr_ring_destroy(big);
	evr_ring_destroy(small);
	evr_ring_destroy(bw);
}

/* EVR_MAX_NEST reservations open in LIFO order, then one more; without and with the mirror. */
static void deadlk(uint64_t size, uint32_t flags)
{
	struct evr_ring *r = make(size, flags);
	struct evr_slot s[EVR_MAX_NEST + 1];
	uint32_t ids[EVR_MAX_NEST], lens[EVR_MAX_NEST];
	struct evr_reader *rd;
	uint64_t head0, total = 0;

	assert_eq(evr_reader_create(r, NULL, &rd), 0);
	/* start so that one of the middle levels straddles the end of the data area */
	{
		uint32_t len = (uint32_t)size - 200 - 8, id = 100;

		expect_eq(evr_ring_write(r, id, pool + id, len), 0);
		expect_batch(rd, "deadlk: lead-in", 1, &id, &len);
	}
	head0 = stats(r).data_head;
	for (int i = 0; i < EVR_MAX_NEST; i++) {
		ids[i] = 10 + i;
		lens[i] = 40 + 3 * i + (i == 4 ? 30 : 0);
		total += rec_size(lens[i]);
		assert_true(evr_ring_reserve(r, ids[i], lens[i], &s[i]) == 0, "reserve level %d",
			    i);
		expect_eq(nest(r), i + 1);
		expect_eq(stats(r).data_head, head0);
	}
	expect_eq(evr_ring_reserve(r, 1, 8, &s[EVR_MAX_NEST]), -EDEADLK);
	expect_eq(evr_ring_write(r, 1, pool, 8), -EDEADLK);
	expect_eq(stats(r).err_nest, 2);
	expect_eq(stats(r).lost_full, 0);
	expect_eq(nest(r), EVR_MAX_NEST);
	/* fill all of them only now: per-level buffers must not alias */
	for (int i = 0; i < EVR_MAX_NEST; i++)
		memcpy(s[i].data, pool + ids[i], lens[i]);
	for (int i = EVR_MAX_NEST - 1; i >= 0; i--) {
		expect_eq(evr_ring_commit(r, &s[i]), 0);
		expect_eq(nest(r), i);
		/* published only by the outermost commit */
		expect_eq(stats(r).data_head, i ? head0 : head0 + total);
	}
	expect_batch(rd, "deadlk: nested records", EVR_MAX_NEST, ids, lens);
	/* the ring works normally afterwards */
	ids[0] = 7;
	lens[0] = 7;
	expect_eq(evr_ring_write(r, 7, pool + 7, 7), 0);
	expect_batch(rd, "deadlk: after", 1, ids, lens);
	expect_eq(stats(r).err_nest, 2);
	evr_reader_destroy(rd);
	evr_ring_destroy(r);
}

static void shutdown_(void)
{
	struct evr_ring *r = make(1024, 0);
	struct evr_ctrl *c = evr_ring_get_ctrl(r);
	struct evr_reader *rd;
	struct evr_slot s;
	uint32_t id = 9, len = 9;
	uint64_t head;

	assert_eq(evr_reader_create(r, NULL, &rd), 0);
	expect_eq(evr_ring_write(r, id, pool + id, len), 0);
	head = stats(r).data_head;
	__atomic_store_n(&c->disabled, 1, __ATOMIC_RELAXED);
	expect_eq(evr_ring_write(r, 1, pool, 8), -ESHUTDOWN);
	expect_eq(evr_ring_reserve(r, 1, 8, &s), -ESHUTDOWN);
	expect_eq(evr_ring_write(r, 1, pool, 0), -ESHUTDOWN);
	expect_eq(stats(r).err_shutdown, 3);
	expect_eq(stats(r).lost_full + stats(r).lost_paused, 0);
	expect_eq(stats(r).data_head, head);
	expect_eq(nest(r), 0);
	expect_batch(rd, "shutdown", 1, &id, &len);
	__atomic_store_n(&c->disabled, 0, __ATOMIC_RELAXED);
	id = 11;
	len = 0;
	expect_eq(evr_ring_write(r, id, NULL, 0), 0);
	expect_batch(rd, "after shutdown", 1, &id, &len);
	evr_reader_destroy(rd);
	evr_ring_destroy(r);
}

static void einval(void)
{
	struct evr_ring *r = make(1024, 0);
	struct evr_slot a, b;
	struct evr_reader *rd;
	uint32_t ids[2] = {20, 21}, lens[2] = {5, 6};
	uint64_t head;

	assert_eq(evr_reader_create(r, NULL, &rd), 0);
	expect_eq(evr_ring_write(NULL, 1, pool, 1), -EINVAL);
	expect_eq(evr_ring_write(r, EVR_APP_ID_MAX + 1, pool, 1), -EINVAL);
	expect_eq(evr_ring_write(r, UINT32_MAX, pool, 1), -EINVAL);
	expect_eq(evr_ring_write(r, 1, NULL, 1), -EINVAL);
	expect_eq(evr_ring_reserve(NULL, 1, 1, &a), -EINVAL);
	expect_eq(evr_ring_reserve(r, 1, 1, NULL), -EINVAL);
	expect_eq(evr_ring_reserve(r, EVR_APP_ID_MAX + 1, 1, &a), -EINVAL);
	expect_eq(evr_ring_commit(NULL, &a), -EINVAL);
	expect_eq(evr_ring_commit(r, NULL), -EINVAL);
	expect_eq(evr_ring_discard(NULL, &a), -EINVAL);
	expect_eq(evr_ring_discard(r, NULL), -EINVAL);
	expect_eq(evr_ring_flush(NULL), -EINVAL);
	expect_eq(evr_ring_get_stats(NULL, NULL), -EINVAL);
	expect_true(evr_ring_get_ctrl(NULL) == NULL, "get_ctrl(NULL)");
	expect_eq(evr_ring_get_fd(r), -EBADF);
	expect_eq(stats(r).data_head, 0); /* none of it wrote anything */
	expect_eq(nest(r), 0);

	/* the largest id is valid, and so is NULL data of no length */
	expect_eq(evr_ring_write(r, EVR_APP_ID_MAX, NULL, 0), 0);
	{
		struct evr_record rec;

		evr_reader_begin(rd);
		assert_eq(evr_reader_next(rd, &rec), 1);
		expect_true(rec.is_app && rec.type == EVR_APP_ID_MAX && rec.len == 0,
			    "largest id: app %d id %#x len %u", rec.is_app, rec.type, rec.len);
		evr_reader_end(rd);
	}

	/* commit/discard of an outer slot while an inner one is open */
	head = stats(r).data_head;
	assert_eq(evr_ring_reserve(r, 20, 5, &a), 0);
	assert_eq(evr_ring_reserve(r, 21, 6, &b), 0);
	memcpy(a.data, pool + 20, 5);
	memcpy(b.data, pool + 21, 6);
	expect_eq(evr_ring_commit(r, &a), -EINVAL);
	expect_eq(evr_ring_discard(r, &a), -EINVAL);
	expect_eq(nest(r), 2);
	expect_eq(stats(r).data_head, head);
	expect_eq(evr_ring_commit(r, &b), 0);
	expect_eq(evr_ring_commit(r, &b), -EINVAL); /* twice: no longer open */
	expect_eq(evr_ring_commit(r, &a), 0);
	expect_eq(evr_ring_commit(r, &a), -EINVAL);
	expect_eq(evr_ring_discard(r, &a), -EINVAL);
	expect_eq(nest(r), 0);
	expect_batch(rd, "einval: nested", 2, ids, lens);
	evr_reader_destroy(rd);
	evr_ring_destroy(r);
}

/*
 * A slot already committed is no longer an open reservation, whoever holds the level now: its
 * commit must fail, not publish the reservation that took its place before it is written.
 */
static void stale_slot(void)
{
	struct evr_ring *r = make(1024, 0);
	struct evr_slot a, b;
	uint64_t head;
	int err;

	assert_eq(evr_ring_reserve(r, 1, 8, &a), 0);
	assert_eq(evr_ring_commit(r, &a), 0);
	head = stats(r).data_head;
	assert_eq(evr_ring_reserve(r, 2, 8, &b), 0);
	err = evr_ring_commit(r, &a);
	expect_true(err == -EINVAL,
		    "committing an already committed slot while another reservation is open "
		    "returned %d, not -EINVAL",
		    err);
	expect_true(stats(r).data_head == head,
		    "the stale commit published the open reservation (data_head %" PRIu64
		    " -> %" PRIu64 ") before it was written",
		    head, stats(r).data_head);
	evr_ring_destroy(r);
}

/* Discarded reservations are padding the reader skips; nesting inside a discard survives. */
static void discard(uint64_t size, uint32_t flags)
{
	struct evr_ring *r = make(size, flags);
	struct evr_reader *rd;
	struct evr_slot o, n;
	uint32_t ids[2], lens[2];
	uint64_t head;

	assert_eq(evr_reader_create(r, NULL, &rd), 0);

	/* a plain discard, and a zero-length one */
	head = stats(r).data_head;
	assert_eq(evr_ring_reserve(r, 30, 13, &o), 0);
	memcpy(o.data, pool, 13);
	expect_eq(evr_ring_discard(r, &o), 0);
	expect_eq(stats(r).data_head, head + rec_size(13)); /* published, as padding */
	assert_eq(evr_ring_reserve(r, 31, 0, &o), 0);
	expect_eq(evr_ring_discard(r, &o), 0);
	expect_eq(evr_ring_discard(r, &o), -EINVAL);
	ids[0] = 32;
	lens[0] = 3;
	expect_eq(evr_ring_write(r, 32, pool + 32, 3), 0);
	expect_batch(rd, "discard", 1, ids, lens);

	/* a discarded outer reservation with a committed nested record inside it */
	head = stats(r).data_head;
	assert_eq(evr_ring_reserve(r, 40, 20, &o), 0);
	memset(o.data, 0xee, 20);
	assert_eq(evr_ring_reserve(r, 41, 9, &n), 0);
	memcpy(n.data, pool + 41, 9);
	expect_eq(evr_ring_commit(r, &n), 0);
	expect_eq(stats(r).data_head, head);
	expect_eq(evr_ring_discard(r, &o), 0);
	expect_eq(stats(r).data_head, head + rec_size(20) + rec_size(9));
	ids[0] = 41;
	lens[0] = 9;
	expect_batch(rd, "discarded outer", 1, ids, lens);

	/* a discarded nested reservation inside a committed outer one */
	head = stats(r).data_head;
	assert_eq(evr_ring_reserve(r, 50, 11, &o), 0);
	memcpy(o.data, pool + 50, 11);
	assert_eq(evr_ring_reserve(r, 51, 12, &n), 0);
	expect_eq(evr_ring_discard(r, &n), 0);
	expect_eq(stats(r).data_head, head);
	expect_eq(evr_ring_commit(r, &o), 0);
	expect_eq(stats(r).data_head, head + rec_size(11) + rec_size(12));
	ids[0] = 50;
	lens[0] = 11;
	expect_batch(rd, "discarded inner", 1, ids, lens);

	/* discards that straddle the end of the data area, at every 8-byte offset */
	for (uint64_t k = 8; k < 128; k += 8) {
		uint64_t off = stats(r).data_head & (size - 1), want = size - k;
		uint32_t pre = (uint32_t)((want - off) & (size - 1)), id = 60;

		if (pre) {
			/* a filler of pre bytes, as one or two records */
			uint32_t first = pre > size / 2 ? (uint32_t)(size / 2) : pre;
			uint32_t fl[2] = {first - 8, pre - first - 8}, fi[2] = {60, 60};

			expect_eq(evr_ring_write(r, 60, pool + 60, first - 8), 0);
			if (pre > first)
				expect_eq(evr_ring_write(r, 60, pool + 60, pre - first - 8), 0);
			expect_batch(rd, "filler", pre > first ? 2 : 1, fi, fl);
		}
		assert_eq(evr_ring_reserve(r, 61, 125, &o), 0);
		memset(o.data, 0xdd, 125);
		expect_eq(evr_ring_discard(r, &o), 0);
		id = 62;
		lens[0] = (uint32_t)k;
		expect_eq(evr_ring_write(r, id, pool + id, k), 0);
		expect_batch(rd, "straddling discard", 1, &id, lens);
	}
	evr_reader_destroy(rd);
	evr_ring_destroy(r);
}

int main(void)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), st;

	t_init("ring-errors");
	st = t_seed;
	for (size_t i = 0; i < sizeof(pool); i += 8) {
		uint64_t v = t_rand(&st);

		memcpy(pool + i, &v, 8);
	}
	msgsize();
	deadlk(1024, 0);
	deadlk(page, EVR_RING_MIRROR);
	shutdown_();
	einval();
	discard(1024, 0);
	discard(page, EVR_RING_MIRROR);
	stale_slot();
	return t_done();
}
