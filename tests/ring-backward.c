// SPDX-License-Identifier: MIT
/*
 * Overwrite (backward) rings: the snapshot, newest first (default) or oldest first
 * (EVR_READ_OLDEST_FIRST), is exactly the newest records that lie whole in the data area, in
 * order, byte for byte, never the partly overwritten oldest one; before the first wrap it is
 * everything written. Single-threaded: the writer is idle while the snapshot is read.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evring.h"
#include "test.h"

static uint8_t pool[1 << 17];

static uint32_t rec_size(size_t len)
{
	return (uint32_t)((len + sizeof(struct evr_record_header) + 7) & ~(size_t)7);
}

static const uint8_t *payload(uint64_t seq)
{
	return pool + (t_mix(t_seed ^ seq) % (sizeof(pool) / 2));
}

struct entry {
	uint64_t pos;
	uint32_t len;
	uint32_t discarded;
};

struct ctx {
	struct evr_ring *r;
	uint64_t size;
	uint32_t flags;
	const char *name;
	struct entry *log; /* log[seq]: every record written, oldest first */
	uint64_t n, cap;
	uint64_t head;
	uint64_t snapshots, partial_seen;
};

static uint32_t id_of(uint64_t seq)
{
	return (uint32_t)(t_mix(seq) & EVR_APP_ID_MAX);
}

static void put(struct ctx *x, size_t len, int discard)
{
	uint64_t seq = x->n;
	struct evr_slot s;

	if (x->n == x->cap) {
		x->cap = x->cap ? 2 * x->cap : 4096;
		x->log = realloc(x->log, x->cap * sizeof(*x->log));
		assert_true(x->log != NULL, "realloc");
	}
	if (seq & 1 || discard) {
		assert_eq(evr_ring_reserve(x->r, id_of(seq), len, &s), 0);
		memcpy(s.data, payload(seq), len);
		assert_eq(discard ? evr_ring_discard(x->r, &s) : evr_ring_commit(x->r, &s), 0);
	} else {
		assert_eq(evr_ring_write(x->r, id_of(seq), payload(seq), len), 0);
	}
	x->head -= rec_size(len);
	x->log[x->n++] =
		(struct entry){.pos = x->head, .len = (uint32_t)len, .discarded = !!discard};
}

/*
 * The snapshot must hold exactly the records whose bytes all lie in [head, head + avail),
 * where avail = min(bytes ever written, size): newest first, or oldest first.
 */
static void check_snapshot(struct ctx *x, int oldest_first)
{
	EVR_OPTS(evr_reader_opts, ro, .flags = oldest_first ? EVR_READ_OLDEST_FIRST : 0);
	uint64_t avail = 0 - x->head, want[4096], nwant = 0, i;
	struct evr_reader *rd;
	struct evr_record rec;
	int got;

	if (avail > x->size)
		avail = x->size;
	/* newest first: the longest run of records ending inside the window */
	for (i = x->n; i-- > 0;) {
		const struct entry *e = &x->log[i];

		/* offsets from head: positions wrap through zero */
		if (e->pos - x->head + rec_size(e->len) > avail) {
			x->partial_seen += e->pos - x->head < avail;
			break;
		}
		if (!e->discarded) {
			assert_true(nwant < 4096, "too many");
			want[nwant++] = i;
		}
	}
	assert_eq(evr_reader_create(x->r, &ro, &rd), 0);
	got = evr_reader_begin(rd);
	expect_true((uint64_t)got == avail, "%s: snapshot of %d bytes, want %" PRIu64, x->name, got,
		    avail);
	for (i = 0; i < nwant; i++) {
		uint64_t seq = want[oldest_first ? nwant - 1 - i : i];
		const struct entry *e = &x->log[seq];

		got = evr_reader_next(rd, &rec);
		if (got != 1) {
			expect_true(0,
				    "%s %s: record %" PRIu64 " of %" PRIu64 " (seq %" PRIu64
				    ") missing: %d",
				    x->name, oldest_first ? "oldest first" : "newest first", i,
				    nwant, seq, got);
			break;
		}
		expect_true(rec.is_app && rec.type == id_of(seq) && rec.len == e->len &&
				    rec.pos == e->pos,
			    "%s %s: record %" PRIu64 ": id %#x len %u pos %#" PRIx64
			    ", want seq %" PRIu64 " id %#x len %u pos %#" PRIx64,
			    x->name, oldest_first ? "oldest first" : "newest first", i, rec.type,
			    rec.len, rec.pos, seq, id_of(seq), e->len, e->pos);
		if (rec.len == e->len)
			expect_true(!memcmp(rec.data, payload(seq), e->len),
				    "%s: payload of seq %" PRIu64, x->name, seq);
	}
	got = evr_reader_next(rd, &rec);
	expect_true(got == 0,
		    "%s %s: %d more record(s) than the %" PRIu64 " that fit: pos %#" PRIx64
		    " len %u",
		    x->name, oldest_first ? "oldest first" : "newest first", got, nwant,
		    got == 1 ? rec.pos : 0, got == 1 ? rec.len : 0);
	expect_eq(evr_reader_end(rd), 0);
	/* a second batch sees the same snapshot: nothing was consumed */
	expect_true(evr_reader_begin(rd) == (int)avail, "%s: second batch", x->name);
	if (nwant) {
		got = evr_reader_next(rd, &rec);
		expect_true(got == 1 && rec.pos == x->log[want[oldest_first ? nwant - 1 : 0]].pos,
			    "%s: second batch starts elsewhere", x->name);
	}
	evr_reader_end(rd);
	evr_reader_destroy(rd);
	x->snapshots++;
}

static void both(struct ctx *x)
{
	check_snapshot(x, 0);
	check_snapshot(x, 1);
}

static void run(uint64_t size, uint32_t flags, const char *name)
{
	EVR_OPTS(evr_ring_opts, o, .data_size = size, .flags = EVR_RING_OVERWRITE | flags);
	struct ctx x = {.size = size, .flags = flags, .name = name};
	uint64_t rng = t_seed ^ size ^ flags, written = 0, max = size - 56;

	assert_eq(evr_ring_create(&o, &x.r), 0);
	both(&x); /* empty */

	/* before the first wrap: everything, at every fill level up to exactly full */
	while (written + 64 <= size) {
		size_t len = t_rand(&rng) % 50;

		put(&x, len, 0);
		written += rec_size(len);
		both(&x);
	}
	while (written < size) {
		put(&x, 0, 0);
		written += 8;
	}
	expect_eq(0 - x.head, size);
	both(&x); /* exactly full: still everything */
	put(&x, 0, 0);
	both(&x); /* the oldest record just lost its last bytes */

	/* zero-length records only: the most records a snapshot can hold */
	for (uint64_t i = 0; i < size / 8; i++)
		put(&x, 0, 0);
	both(&x);

	/* many wraps with mixed sizes, discards among them; snapshots now and then */
	for (int i = 0; i < 4000 && !t_failures; i++) {
		uint64_t v = t_rand(&rng);
		size_t len;

		switch (v % 8) {
		case 0:
			len = max - (v >> 8) % 16; /* nearly the whole ring */
			break;
		case 1:
		case 2:
			len = (v >> 8) % (size / 4);
			break;
		default:
			len = (v >> 8) % 40;
			break;
		}
		put(&x, len, (v >> 32) % 16 == 0);
		if ((v >> 40) % 16 == 0)
			both(&x);
	}
	both(&x);
	expect_true(x.partial_seen > 0, "%s: never cut a record at the window's end", name);
	printf("%s: %" PRIu64 " records, %" PRIu64 " snapshots, %" PRIu64 " cut oldest records\n",
	       name, x.n, x.snapshots, x.partial_seen);
	free(x.log);
	evr_ring_destroy(x.r);
}

/*
 * A peer's garbage in nest (a hostile reader, tests/session-hostile.c) makes every write think
 * it is nested, so none publishes data_head and writes soon refuse for want of room. Once nest
 * is sane again, the first outermost write must succeed (it has no open reservation to keep
 * apart) and publish everything, not fail once more on the stale data_head.
 */
static void stale_head(void)
{
	struct evr_ring_opts o = { .sz = sizeof(o),
				   .data_size = 4096,
				   .flags = EVR_RING_OVERWRITE };
	struct evr_reader *rd;
	struct evr_record rec;
	struct evr_ring *r;
	struct evr_ctrl *c;
	uint64_t v = 0x5eed, head0;
	int enospc = 0, n;

	assert_eq(evr_ring_create(&o, &r), 0);
	c = evr_ring_get_ctrl(r);
	head0 = c->data_head;
	c->nest = 3;
	for (int i = 0; i < 1000; i++)
		enospc += evr_ring_write(r, 1, &v, 8) == -ENOSPC;
	expect_true(enospc > 0, "writes under a garbage nest refuse once a ring is unpublished");
	expect_eq(c->data_head, head0);
	c->nest = 0;
	expect_eq(evr_ring_write(r, 2, &v, 8), 0);
	expect_true(c->data_head != head0, "the outermost write published");
	expect_eq(c->nest, 0);
	assert_eq(evr_reader_create(r, NULL, &rd), 0);
	expect_true(evr_reader_begin(rd) >= 16, "the snapshot has data");
	n = evr_reader_next(rd, &rec);
	expect_true(n == 1 && rec.is_app && rec.type == 2 && rec.len == 8 &&
			    !memcmp(rec.data, &v, 8),
		    "the newest record is the one written after nest was repaired");
	evr_reader_end(rd);
	evr_reader_destroy(rd);
	evr_ring_destroy(r);
}

int main(void)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), st;

	t_init("ring-backward");
	st = t_seed;
	for (size_t i = 0; i < sizeof(pool); i += 8) {
		uint64_t v = t_rand(&st);

		memcpy(pool + i, &v, 8);
	}
	run(256, 0, "plain 256");
	run(4096, 0, "plain 4096");
	run(page, EVR_RING_MIRROR, "mirror");
	run(4 * page, EVR_RING_MIRROR, "mirror x4");
	stale_head();
	return t_done();
}
