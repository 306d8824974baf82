// SPDX-License-Identifier: MIT
/*
 * Loss accounting in discard mode: a full ring refuses with -ENOSPC and counts it (lost_full);
 * the next record that fits is preceded by exactly one LOST record carrying the count, the ring
 * id, the cause and the positions; evr_ring_flush() emits a pending LOST record without counting
 * itself; the reader sums them, and written == read + lost holds record by record.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "evring.h"
#include "internal.h"
#include "test.h"

#define RING_ID 0x5eed0123abcdull

static uint8_t pool[1 << 17];

static uint32_t rec_size(size_t len)
{
	return (uint32_t)((len + sizeof(struct evr_record_header) + 7) & ~(size_t)7);
}

/* Records carry their sequence number in the first 8 bytes (when they are that long). */
static const uint8_t *payload(uint64_t seq)
{
	return pool + (t_mix(t_seed ^ seq) % (sizeof(pool) / 2));
}

/* What the reader must see, in order: app records and LOST records, as the writer produced them. */
struct item {
	uint64_t v;   /* app: seq; LOST: count */
	uint32_t len; /* app: payload length */
	int lost;
};

#define QLEN 65536u

struct ctx {
	struct evr_ring *r;
	struct evr_reader *rd;
	uint64_t size;
	const char *name;
	uint64_t seq; /* next sequence number: one per write attempt */
	/* pending: failed since the last LOST record */
	uint64_t attempts, ok, failed, pending;
	struct item q[QLEN];
	uint64_t q_in, q_out;

	/* reader side */
	uint64_t read, lost_read, lost_records;
};

static struct evr_ring_stats stats(const struct ctx *x)
{
	EVR_OPTS(evr_ring_stats, st);

	assert_eq(evr_ring_get_stats(x->r, &st), 0);
	return st;
}

static void expect_item(struct ctx *x, int lost, uint64_t v, uint32_t len)
{
	assert_true(x->q_in - x->q_out < QLEN, "%s: queue overflow", x->name);
	x->q[x->q_in++ % QLEN] = (struct item){.v = v, .len = len, .lost = lost};
}

/* One write attempt of @len bytes: record seq, then the pooled bytes. */
static int attempt(struct ctx *x, size_t len, int reserve)
{
	uint8_t buf[4096];
	uint64_t seq = x->seq++;
	int err;

	assert_true(len <= sizeof(buf), "len %zu", len);
	memcpy(buf, payload(seq), len);
	if (len >= 8)
		memcpy(buf, &seq, 8);
	if (reserve) {
		struct evr_slot s;

		err = evr_ring_reserve(x->r, (uint32_t)(len & 0xff), len, &s);
		if (!err) {
			memcpy(s.data, buf, len);
			err = evr_ring_commit(x->r, &s);
		}
	} else {
		err = evr_ring_write(x->r, (uint32_t)(len & 0xff), buf, len);
	}
	x->attempts++;
	if (err == 0) {
		x->ok++;
		if (x->pending)
			expect_item(x, 1, x->pending, 0);
		x->pending = 0;
		expect_item(x, 0, seq, (uint32_t)len);
	} else if (err == -ENOSPC) {
		x->failed++;
		x->pending++;
	} else {
		expect_true(0, "%s: write of %zu bytes: %d", x->name, len, err);
	}
	return err;
}

static int flush(struct ctx *x)
{
	int err = evr_ring_flush(x->r);

	if (err == 1) {
		expect_true(x->pending > 0, "%s: flush wrote a LOST record for nothing", x->name);
		expect_item(x, 1, x->pending, 0);
		x->pending = 0;
	} else if (err == 0) {
		expect_true(x->pending == 0, "%s: flush left %" PRIu64 " losses unreported",
			    x->name, x->pending);
	} else {
		expect_true(err == -ENOSPC, "%s: flush: %d", x->name, err);
	}
	return err;
}

static void check_lost(struct ctx *x, const struct evr_record *rec, uint64_t *count)
{
	struct evr_lost_body b;

	expect_true(!rec->is_app && rec->type == EVR_TYPE_LOST, "%s: type %#x", x->name, rec->type);
	expect_true(rec->hdr->misc & EVR_MISC_EVRING, "%s: LOST misc %#x", x->name, rec->hdr->misc);
	assert_true(rec->len == sizeof(b), "%s: LOST body of %u bytes", x->name, rec->len);
	memcpy(&b, rec->data, sizeof(b));
	expect_true(b.id == RING_ID, "%s: LOST id %#" PRIx64, x->name, b.id);
	expect_true(b.lost > 0, "%s: LOST record with a zero count", x->name);
	expect_true(b.causes == EVR_LOST_FULL, "%s: causes %#x", x->name, b.causes);
	expect_true(b.reserved == 0, "%s: reserved %#x", x->name, b.reserved);
	/*
	 * Discard mode, one writer: the head cannot move between the failures and the LOST
	 * record, so all three positions are the same.
	 */
	expect_true(b.first_pos == rec->pos && b.last_pos == rec->pos,
		    "%s: LOST at %#" PRIx64 " says first %#" PRIx64 " last %#" PRIx64, x->name,
		    rec->pos, b.first_pos, b.last_pos);
	*count = b.lost;
}

/* Drain one batch; every record must be the next one the writer side expects. */
static int drain(struct ctx *x)
{
	struct evr_record rec;
	int n = 0, got;

	assert_true(evr_reader_begin(x->rd) >= 0, "%s: begin", x->name);
	while ((got = evr_reader_next(x->rd, &rec)) == 1) {
		struct item it;

		n++;
		assert_true(x->q_out < x->q_in, "%s: a record nobody wrote at %#" PRIx64, x->name,
			    rec.pos);
		it = x->q[x->q_out++ % QLEN];
		if (!rec.is_app) {
			uint64_t k = 0;

			expect_true(it.lost, "%s: LOST record where seq %" PRIu64 " belongs",
				    x->name, it.v);
			check_lost(x, &rec, &k);
			expect_true(k == it.v, "%s: LOST count %" PRIu64 ", want %" PRIu64, x->name,
				    k, it.v);
			x->lost_read += k;
			x->lost_records++;
			continue;
		}
		expect_true(!it.lost, "%s: app record where a LOST record of %" PRIu64 " belongs",
			    x->name, it.v);
		x->read++;
		expect_true(rec.len == it.len && rec.type == (it.len & 0xff),
			    "%s: record len %u id %u, want len %u", x->name, rec.len, rec.type,
			    it.len);
		if (rec.len == it.len) {
			uint8_t want[4096];

			memcpy(want, payload(it.v), it.len);
			if (it.len >= 8)
				memcpy(want, &it.v, 8);
			expect_true(!memcmp(rec.data, want, it.len), "%s: payload of seq %" PRIu64,
				    x->name, it.v);
		}
	}
	expect_eq(got, 0);
	expect_eq(evr_reader_end(x->rd), 0);
	return n;
}

static struct ctx ctx_mem;

static void setup(struct ctx *x, uint64_t size, uint32_t flags, const char *name)
{
	EVR_OPTS(evr_ring_opts, o, .data_size = size, .flags = flags, .ring_id = RING_ID);

	memset(x, 0, sizeof(*x));
	x->size = size;
	x->name = name;
	assert_true(evr_ring_create(&o, &x->r) == 0, "%s: create", name);
	assert_true(evr_reader_create(x->r, NULL, &x->rd) == 0, "%s: reader", name);
}

static void teardown(struct ctx *x)
{
	EVR_OPTS(evr_reader_stats, rs);

	evr_reader_get_stats(x->rd, &rs);
	expect_true(rs.lost == x->lost_read,
		    "%s: reader stats lost %" PRIu64 ", records say %" PRIu64, x->name, rs.lost,
		    x->lost_read);
	evr_reader_destroy(x->rd);
	evr_ring_destroy(x->r);
}

/* The exact sequence: fill, fail, drain, recover, with every count and position checked. */
static void exact(uint64_t size, uint32_t flags, const char *name)
{
	const size_t len = 120; /* 128-byte records tile every ring exactly */
	const uint32_t rs = rec_size(len);
	uint64_t n = size / rs, full_at;
	struct evr_record rec;
	struct evr_ring_stats st;
	struct ctx *x = &ctx_mem;

	setup(x, size, flags, name);
	expect_eq(flush(x), 0); /* nothing pending: nothing written */
	expect_eq(stats(x).data_head, 0);

	for (uint64_t i = 0; i < n; i++)
		assert_true(attempt(x, len, i & 1) == 0, "%s: write %" PRIu64 " of %" PRIu64, name,
			    i, n);
	full_at = n * rs;
	expect_eq(stats(x).data_head, full_at);
	expect_eq(attempt(x, len, 0), -ENOSPC);
	expect_eq(stats(x).lost_full, 1);
	expect_eq(attempt(x, 8, 1), -ENOSPC); /* through reserve too, and small ones */
	expect_eq(attempt(x, 0, 0), -ENOSPC);
	expect_eq(attempt(x, 3, 1), -ENOSPC);
	st = stats(x);
	expect_eq(st.lost_full, 4);
	expect_eq(st.lost_paused, 0);
	expect_eq(st.data_head, full_at);
	/* the LOST record does not fit either: -ENOSPC, and flushing is not a loss */
	expect_eq(flush(x), -ENOSPC);
	expect_eq(stats(x).lost_full, 4);
	expect_eq(evr_ring_get_ctrl(x->r)->nest, 0);

	expect_eq(drain(x), n); /* the records that made it; the LOST record is not out yet */
	expect_eq(x->lost_records, 0);

	/* now it fits: exactly one LOST record first, then the record */
	expect_eq(attempt(x, len, 0), 0);
	expect_eq(stats(x).data_head, full_at + EVR_LOST_SIZE + rs);
	assert_eq(evr_reader_begin(x->rd), EVR_LOST_SIZE + rs);
	assert_eq(evr_reader_next(x->rd, &rec), 1);
	{
		uint64_t k = 0;

		check_lost(x, &rec, &k);
		expect_eq(k, 4);
		expect_eq(rec.pos, full_at);
	}
	assert_eq(evr_reader_next(x->rd, &rec), 1);
	expect_true(rec.is_app && rec.len == len && rec.pos == full_at + EVR_LOST_SIZE,
		    "%s: record after LOST: app %d len %u pos %#" PRIx64, name, rec.is_app, rec.len,
		    rec.pos);
	expect_eq(evr_reader_next(x->rd, &rec), 0);
	evr_reader_end(x->rd);
	x->q_out += 2; /* both checked by hand */
	x->read++;
	x->lost_read += 4;
	x->lost_records++;

	/* the next record is not preceded by another LOST record */
	expect_eq(attempt(x, len, 1), 0);
	expect_eq(drain(x), 1);
	expect_eq(x->lost_records, 1);

	/*
	 * Room for the record but not for the LOST record in front of it: still a loss. Fill all
	 * but rs bytes, lose one big record, then a record of exactly rs bytes must fail too.
	 */
	{
		uint64_t head = stats(x).data_head, fill = size - rs;

		while (fill) {
			uint64_t chunk = fill > size / 2 ? size / 2 : fill;

			assert_eq(attempt(x, chunk - 8, 0), 0);
			fill -= chunk;
		}
		head = stats(x).data_head;
		expect_eq(attempt(x, len + 8, 0), -ENOSPC);
		expect_eq(attempt(x, len, 0), -ENOSPC);
		expect_eq(stats(x).lost_full, 6);
		expect_eq(stats(x).data_head, head);
		drain(x);
		expect_eq(attempt(x, len, 0), 0);
		drain(x);
		expect_eq(x->lost_records, 2);
		expect_eq(x->lost_read, 6);
	}

	/*
	 * A flush that cannot place the LOST record must not open the way for a small record to
	 * slip in ahead of it: with 16 bytes free and a loss pending, a 16-byte record does not
	 * fit (it needs 16 + a LOST record) whether or not a flush was tried in between.
	 */
	{
		uint64_t head, fill = size - 16;

		while (fill) {
			uint64_t chunk = fill > size / 2 ? size / 2 : fill;

			assert_eq(attempt(x, chunk - 8, 0), 0);
			fill -= chunk;
		}
		head = stats(x).data_head;
		expect_eq(attempt(x, len, 0), -ENOSPC);
		expect_eq(flush(x), -ENOSPC);
		expect_true(
			attempt(x, 8, 0) == -ENOSPC,
			"%s: a 16-byte record written into 16 free bytes ahead of a pending LOST "
			"record (after a failed flush)",
			name);
		expect_eq(attempt(x, 0, 0), -ENOSPC);
		expect_eq(flush(x), -ENOSPC);
		expect_eq(attempt(x, 3, 1), -ENOSPC);
		expect_eq(stats(x).data_head, head);
		expect_eq(stats(x).lost_full, 10);
		drain(x);
		expect_eq(attempt(x, len, 0), 0);
		drain(x);
		expect_eq(x->lost_read, 10);
	}

	/* flush: emits the pending LOST record, counts nothing, then has nothing to do */
	{
		uint64_t head, lost_full, before_records = x->lost_records;

		while (attempt(x, len, 0) == 0)
			;
		expect_eq(attempt(x, len, 0), -ENOSPC);
		expect_eq(attempt(x, len, 1), -ENOSPC);
		lost_full = stats(x).lost_full;
		expect_eq(lost_full, 13);
		drain(x);
		head = stats(x).data_head;
		expect_eq(flush(x), 1);
		expect_eq(stats(x).lost_full, lost_full);
		expect_true(stats(x).data_head > head, "%s: flush published nothing", name);
		expect_eq(flush(x), 0);
		head = stats(x).data_head;
		expect_eq(flush(x), 0);
		expect_eq(stats(x).data_head, head);
		expect_eq(drain(x), 1); /* the LOST record alone; its carrier is padding */
		expect_eq(x->lost_records, before_records + 1);
		expect_eq(x->lost_read, 13);
		/* after a flush, the next record has no LOST record in front of it */
		expect_eq(attempt(x, len, 0), 0);
		expect_eq(drain(x), 1);
		expect_eq(x->lost_records, before_records + 1);
	}
	expect_eq(x->ok + x->failed, x->attempts);
	expect_eq(x->read, x->ok);
	expect_eq(x->lost_read, x->failed);
	expect_eq(stats(x).lost_full, x->failed);
	teardown(x);
}

/* Seeded mix of writes, reads and flushes: conservation, record by record. */
static void random_mix(uint64_t size, uint32_t flags, const char *name, int ops)
{
	uint64_t rng = t_seed ^ size ^ flags;
	struct ctx *x = &ctx_mem;

	setup(x, size, flags, name);
	for (int i = 0; i < ops && t_failures == 0; i++) {
		uint64_t v = t_rand(&rng);
		unsigned what = v % 100;

		if (what < 85) {
			size_t len = (v >> 8) % 3 ? (v >> 16) % 64 : (v >> 16) % (size / 4);

			attempt(x, len < 8 && (v >> 40) % 2 ? 8 : len, (v >> 32) & 1);
		} else if (what < 97) {
			drain(x);
		} else {
			flush(x);
		}
	}
	drain(x);
	if (flush(x) == 1)
		drain(x);
	expect_eq(flush(x), 0);
	expect_true(x->failed > 0 && x->lost_records > 0, "%s: the mix never filled the ring",
		    name);
	expect_eq(x->ok + x->failed, x->attempts);
	expect_true(x->read == x->ok, "%s: read %" PRIu64 ", written %" PRIu64, name, x->read,
		    x->ok);
	expect_true(x->lost_read == x->failed, "%s: LOST records say %" PRIu64 ", failed %" PRIu64,
		    name, x->lost_read, x->failed);
	expect_true(stats(x).lost_full == x->failed, "%s: lost_full %" PRIu64 ", failed %" PRIu64,
		    name, stats(x).lost_full, x->failed);
	printf("%s: %" PRIu64 " attempts, %" PRIu64 " lost in %" PRIu64 " LOST records\n", name,
	       x->attempts, x->failed, x->lost_records);
	expect_eq(x->pending, 0);
	expect_true(x->q_out == x->q_in, "%s: %" PRIu64 " records never read", name,
		    x->q_in - x->q_out);
	teardown(x);
}

int main(void)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), st;

	t_init("ring-lost");
	st = t_seed;
	for (size_t i = 0; i < sizeof(pool); i += 8) {
		uint64_t v = t_rand(&st);

		memcpy(pool + i, &v, 8);
	}
	exact(1024, 0, "plain 1024");
	exact(256, 0, "plain 256");
	exact(page, EVR_RING_MIRROR, "mirror");
	random_mix(1024, 0, "mix plain 1024", 20000);
	random_mix(4096, 0, "mix plain 4096", 20000);
	random_mix(page, EVR_RING_MIRROR, "mix mirror", 20000);
	return t_done();
}
