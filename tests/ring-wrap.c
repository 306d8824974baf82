// SPDX-License-Identifier: MIT
/*
 * Records across the end of the data area: a record starts at every 8-byte offset of the ring
 * (so the end falls at every 8-byte offset inside it), with and without the mirror mapping,
 * forward and backward, through evr_ring_write() and reserve/commit. Payloads byte for byte,
 * exact lengths (odd, empty, the largest), positions, zeroed padding, both bounce paths taken.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "evring.h"
#include "test.h"

#define POOL 65536
static uint8_t pool[2 * POOL];

/* Payload of record @tag: a window into a seeded pool, re-derivable by the reader. */
static const uint8_t *payload(uint64_t tag)
{
	return pool + (t_mix(t_seed ^ tag) % POOL);
}

static uint32_t rec_size(size_t len)
{
	return (uint32_t)((len + sizeof(struct evr_record_header) + 7) & ~(size_t)7);
}

enum api { API_WRITE, API_RESERVE };

struct ctx {
	struct evr_ring *r;
	struct evr_reader *rd;
	uint8_t *data;
	uint64_t size;
	uint32_t flags;
	enum api api;
	uint64_t head; /* where the test expects the writer to be */
	uint64_t tag;
	unsigned long writer_bounce, reader_bounce, wrapped, cases;
	char name[64];
};

struct want {
	uint32_t id;
	uint32_t len;
	uint64_t pos;
	uint64_t tag;
};

static int backward(const struct ctx *x)
{
	return !!(x->flags & EVR_RING_OVERWRITE);
}

static int mirror(const struct ctx *x)
{
	return !!(x->flags & EVR_RING_MIRROR);
}

static uint64_t published_head(const struct ctx *x)
{
	EVR_OPTS(evr_ring_stats, st);

	evr_ring_get_stats(x->r, &st);
	return st.data_head;
}

static int outside(const struct ctx *x, const void *p, size_t len)
{
	const uint8_t *b = p;

	return b + len <= x->data || b >= x->data + (mirror(x) ? 2 : 1) * x->size;
}

/* Write one record through the configured API; returns its expected position. */
static struct want put(struct ctx *x, size_t len)
{
	uint32_t size = rec_size(len);
	uint64_t tag = ++x->tag;
	struct want w = {
		.id = (uint32_t)(tag * 7919) & EVR_APP_ID_MAX,
		.len = (uint32_t)len,
		.pos = backward(x) ? x->head - size : x->head,
		.tag = tag,
	};
	uint64_t before = published_head(x), body = (w.pos + 8) & (x->size - 1);
	const uint8_t *src = payload(tag);
	int err;

	if (x->api == API_WRITE) {
		err = evr_ring_write(x->r, w.id, src, len);
		assert_true(err == 0, "%s: write len %zu at %#" PRIx64 ": %d", x->name, len, w.pos,
			    err);
	} else {
		struct evr_slot s;

		err = evr_ring_reserve(x->r, w.id, len, &s);
		assert_true(err == 0, "%s: reserve len %zu at %#" PRIx64 ": %d", x->name, len,
			    w.pos, err);
		expect_true(s.len == len, "%s: slot len %u for %zu", x->name, s.len, len);
		if (mirror(x)) {
			expect_true(s.data == x->data + (w.pos & (x->size - 1)) + 8,
				    "%s: mirror slot not in place (len %zu pos %#" PRIx64 ")",
				    x->name, len, w.pos);
		} else if (body + size - 8 <= x->size) {
			expect_true(s.data == x->data + body,
				    "%s: slot not zero-copy (len %zu pos %#" PRIx64 ")", x->name,
				    len, w.pos);
		} else {
			/* the body straddles the end: the writer must hand out a bounce buffer */
			x->writer_bounce++;
			expect_true(outside(x, s.data, len),
				    "%s: wrapping slot %p..+%zu inside the data area (pos %#" PRIx64
				    ")",
				    x->name, s.data, len, w.pos);
		}
		/* the write is not visible before its commit */
		expect_true(published_head(x) == before, "%s: head moved at reserve", x->name);
		memcpy(s.data, src, len);
		err = evr_ring_commit(x->r, &s);
		assert_true(err == 0, "%s: commit: %d", x->name, err);
	}
	x->head = backward(x) ? w.pos : w.pos + size;
	expect_true(published_head(x) == x->head,
		    "%s: data_head %#" PRIx64 " after commit, want %#" PRIx64, x->name,
		    published_head(x), x->head);
	return w;
}

static void check(struct ctx *x, const struct evr_record *rec, const struct want *w)
{
	uint32_t size = rec_size(w->len);
	uint64_t off = w->pos & (x->size - 1);
	const uint8_t *d = rec->data;

	expect_true(rec->is_app && rec->type == w->id, "%s: type %#x is_app %d, want id %#x",
		    x->name, rec->type, rec->is_app, w->id);
	expect_true(rec->len == w->len, "%s: len %u, want %u", x->name, rec->len, w->len);
	expect_true(rec->pos == w->pos, "%s: pos %#" PRIx64 ", want %#" PRIx64, x->name, rec->pos,
		    w->pos);
	expect_true(rec->hdr->size == size && rec->hdr->type == EVR_TYPE_APP + w->id,
		    "%s: header size %u type %#x, want %u %#x", x->name, rec->hdr->size,
		    rec->hdr->type, size, EVR_TYPE_APP + w->id);
	expect_true(d == (const uint8_t *)rec->hdr + 8, "%s: data not after the header", x->name);
	if (rec->len == w->len) {
		expect_true(!memcmp(d, payload(w->tag), w->len),
			    "%s: payload differs (len %u pos %#" PRIx64 ")", x->name, w->len,
			    w->pos);
		for (uint32_t i = w->len; i < size - 8; i++)
			expect_true(!d[i], "%s: padding byte %u is %#x (len %u)", x->name, i, d[i],
				    w->len);
	}
	if (off + size > x->size)
		x->wrapped++;
	if (mirror(x) || off + size <= x->size) {
		expect_true((const uint8_t *)rec->hdr == x->data + off,
			    "%s: record not handed out in place (pos %#" PRIx64 ")", x->name,
			    w->pos);
	} else {
		/* a wrapped record without the mirror: the reader must copy it out */
		x->reader_bounce++;
		expect_true(outside(x, rec->hdr, size),
			    "%s: wrapped record handed out inside the data area", x->name);
	}
}

/*
 * Read one batch. Forward: exactly @n records, @w[0..n) oldest first. Backward (a snapshot,
 * newest first): it starts with @w[n-1], @w[n-2], ... for as many of them as lie whole in the
 * window; older records of earlier cases follow and are not looked at here.
 */
static void read_batch(struct ctx *x, const struct want *w, int n)
{
	struct evr_record rec;
	uint64_t bytes = 0;
	int got, i;

	got = evr_reader_begin(x->rd);
	if (!backward(x)) {
		for (i = 0; i < n; i++)
			bytes += rec_size(w[i].len);
		expect_true((uint64_t)got == bytes, "%s: batch of %d bytes, want %" PRIu64, x->name,
			    got, bytes);
		for (i = 0; i < n; i++) {
			got = evr_reader_next(x->rd, &rec);
			assert_true(got == 1, "%s: record %d of %d: %d", x->name, i, n, got);
			check(x, &rec, &w[i]);
		}
		expect_true(evr_reader_next(x->rd, &rec) == 0, "%s: extra record", x->name);
	} else {
		uint64_t avail = 0 - x->head;

		if (avail > x->size)
			avail = x->size;
		expect_true((uint64_t)got == avail, "%s: snapshot of %d bytes, want %" PRIu64,
			    x->name, got, avail);
		for (i = n - 1; i >= 0; i--) {
			bytes += rec_size(w[i].len);
			if (bytes > avail)
				break; /* partly overwritten: covered by ring-backward */
			got = evr_reader_next(x->rd, &rec);
			assert_true(got == 1, "%s: snapshot record %d: %d", x->name, n - 1 - i,
				    got);
			check(x, &rec, &w[i]);
		}
	}
	expect_eq(evr_reader_end(x->rd), 0);
}

/* Records of @d bytes in all (a multiple of 8, < size) to move the writer by @d. */
static int fillers(struct ctx *x, uint64_t d, struct want *w)
{
	int n = 0;

	while (d) {
		uint64_t chunk = d <= x->size - 48 ? d : (d / 2) & ~(uint64_t)7;
		/* odd lengths that round up to the same record size */
		size_t len = chunk - 8 - (chunk > 8 ? x->tag % 8 : 0);

		w[n++] = put(x, len);
		d -= chunk;
	}
	return n;
}

static void one_case(struct ctx *x, uint64_t off, size_t len)
{
	uint64_t mask = x->size - 1, d;
	struct want w[4];
	int n;

	if (!backward(x)) {
		d = (off - x->head) & mask;
		n = fillers(x, d, w);
		if (n)
			read_batch(x, w, n);
		w[0] = put(x, len);
		expect_true((w[0].pos & mask) == off,
			    "%s: record at %#" PRIx64 ", want offset %#" PRIx64, x->name, w[0].pos,
			    off);
		read_batch(x, w, 1);
	} else {
		d = (x->head - rec_size(len) - off) & mask;
		n = fillers(x, d, w);
		w[n] = put(x, len);
		expect_true((w[n].pos & mask) == off,
			    "%s: record at %#" PRIx64 ", want offset %#" PRIx64, x->name, w[n].pos,
			    off);
		read_batch(x, w, n + 1);
	}
	x->cases++;
}

static void run(uint64_t size, uint32_t flags, enum api api)
{
	static const size_t small[] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  15,  16,
				       17, 23, 24, 25, 31, 33, 47, 63, 64, 65, 100, 127};
	EVR_OPTS(evr_ring_opts, o, .data_size = size, .flags = flags, .ring_id = 7);
	size_t lens[64], nlens = 0, max = size - 56; /* record + a LOST record fill the ring */
	struct ctx x = {.size = size, .flags = flags, .api = api};
	struct evr_ctrl *c;

	snprintf(x.name, sizeof(x.name), "%s %s %s %" PRIu64, mirror(&x) ? "mirror" : "plain",
		 backward(&x) ? "backward" : "forward", api == API_WRITE ? "write" : "reserve",
		 size);
	for (size_t i = 0; i < sizeof(small) / sizeof(small[0]); i++)
		lens[nlens++] = small[i];
	lens[nlens++] = max / 2 + 3;
	lens[nlens++] = max - 7;
	lens[nlens++] = max - 1;
	lens[nlens++] = max;
	if (size > 1024) {
		lens[nlens++] = 255;
		lens[nlens++] = 1001;
		lens[nlens++] = size / 2 - 8;
		lens[nlens++] = size / 2 + 1;
	}

	assert_true(evr_ring_create(&o, &x.r) == 0, "%s: create", x.name);
	assert_true(evr_reader_create(x.r, NULL, &x.rd) == 0, "%s: reader", x.name);
	c = evr_ring_get_ctrl(x.r);
	x.data = (uint8_t *)c + c->data_offset;
	memset(x.data, 0xa5, size); /* stale bytes the padding must not leak */

	/* one extra len over the limit must be refused, whatever the offset */
	expect_eq(evr_ring_write(x.r, 1, pool, max + 1), -EMSGSIZE);
	/*
	 * Every 8-byte offset in the small ring; in the larger ones, every offset at which the
	 * record wraps or ends right at the end, and a few at the start (the rest are alike).
	 */
	for (size_t l = 0; l < nlens && !t_failures; l++) {
		uint64_t first = size <= 256 ? 0 : size - rec_size(lens[l]) - 16;

		for (uint64_t off = 0; off < 32 && first; off += 8)
			one_case(&x, off, lens[l]);
		for (uint64_t off = first; off < size && !t_failures; off += 8)
			one_case(&x, off, lens[l]);
	}

	/* every record size crossed the end at every offset, so each path ran */
	expect_true(x.wrapped > 0, "%s: no record wrapped", x.name);
	if (!mirror(&x)) {
		expect_true(x.reader_bounce > 0, "%s: reader bounce path never taken", x.name);
		if (api == API_RESERVE)
			expect_true(x.writer_bounce > 0, "%s: writer bounce path never taken",
				    x.name);
	}
	printf("%s: %lu cases, %lu wrapped, bounced: writer %lu reader %lu\n", x.name, x.cases,
	       x.wrapped, x.writer_bounce, x.reader_bounce);
	evr_reader_destroy(x.rd);
	evr_ring_destroy(x.r);
}

int main(void)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), st;

	t_init("ring-wrap");
	st = t_seed;
	for (size_t i = 0; i < sizeof(pool); i += 8) {
		uint64_t v = t_rand(&st);

		memcpy(pool + i, &v, 8);
	}
	for (int api = API_WRITE; api <= API_RESERVE; api++) {
		for (uint32_t bw = 0; bw <= EVR_RING_OVERWRITE; bw += EVR_RING_OVERWRITE) {
			run(256, bw, api);
			run(4096, bw, api);
			run(page, EVR_RING_MIRROR | bw, api);
		}
	}
	return t_done();
}
