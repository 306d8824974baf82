// SPDX-License-Identifier: MIT
/*
 * The reader against corrupt rings: bad data_head/data_tail and bad record headers return
 * -EBADMSG, are counted (bad_headers, bytes_skipped), never make it read out of bounds (raw
 * readers over heap memory, so ASan sees every byte) or loop, and good records read again after.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evring.h"
#include "test.h"

static uint8_t pool[1 << 16];

static uint32_t rec_size(size_t len)
{
	return (uint32_t)((len + sizeof(struct evr_record_header) + 7) & ~(size_t)7);
}

static const uint8_t *payload(uint64_t tag)
{
	return pool + (t_mix(t_seed ^ tag) % (sizeof(pool) / 2));
}

static struct evr_reader_stats rstats(const struct evr_reader *rd)
{
	EVR_OPTS(evr_reader_stats, st);

	assert_eq(evr_reader_get_stats(rd, &st), 0);
	return st;
}

/* Touch every byte a delivered record claims, so ASan checks the reader's pointers. */
static unsigned touch(const struct evr_record *rec)
{
	const uint8_t *p = rec->data, *body = (const uint8_t *)(rec->hdr + 1);
	unsigned sum = 0;

	/* the payload follows the header, or its timestamp (EVR_MISC_TIME) */
	assert_true(rec->hdr && (p == body || (rec->has_time && p == body + 8)),
		    "record pointers: data at header + %td", p - (const uint8_t *)rec->hdr);
	assert_true(rec->len + (uint32_t)(p - (const uint8_t *)rec->hdr) <= rec->hdr->size,
		    "len %u beyond its header's size %u", rec->len, rec->hdr->size);
	for (uint32_t i = 0; i < rec->len; i++)
		sum += p[i];
	return sum;
}

/* ---- a real ring: every kind of damage, exact counts, then recovery ------------------------- */

struct ctx {
	struct evr_ring *r;
	struct evr_reader *rd;
	struct evr_ctrl *c;
	uint8_t *data;
	uint64_t size;
	const char *name;
	uint64_t tag;
};

struct rec_want {
	uint64_t pos, tag;
	uint32_t len;
};

static struct rec_want put(struct ctx *x, size_t len)
{
	EVR_OPTS(evr_ring_stats, st);
	struct rec_want w = {.tag = ++x->tag, .len = (uint32_t)len};

	evr_ring_get_stats(x->r, &st);
	w.pos = st.data_head;
	assert_true(evr_ring_write(x->r, (uint32_t)(w.tag & 0xffff), payload(w.tag), len) == 0,
		    "%s: write", x->name);
	return w;
}

static void expect_rec(struct ctx *x, const struct evr_record *rec, const struct rec_want *w)
{
	expect_true(rec->is_app && rec->type == (w->tag & 0xffff) && rec->len == w->len &&
			    rec->pos == w->pos,
		    "%s: record id %u len %u pos %#" PRIx64 ", want id %u len %u pos %#" PRIx64,
		    x->name, rec->type, rec->len, rec->pos, (unsigned)(w->tag & 0xffff), w->len,
		    w->pos);
	if (rec->len == w->len)
		expect_true(!memcmp(rec->data, payload(w->tag), w->len), "%s: payload", x->name);
	touch(rec);
}

static struct evr_record_header *hdr_at(struct ctx *x, uint64_t pos)
{
	return (void *)(x->data + (pos & (x->size - 1)));
}

/* A clean round: @n fresh records come out exactly, and no new error is counted. */
static void good_round(struct ctx *x, int n, const char *after)
{
	struct evr_reader_stats before = rstats(x->rd);
	struct rec_want w[8];
	struct evr_record rec;
	int i, got;

	for (i = 0; i < n; i++)
		w[i] = put(x, 3 + 11 * i);
	got = evr_reader_begin(x->rd);
	expect_true(got >= 0, "%s: after %s: begin %d", x->name, after, got);
	for (i = 0; i < n; i++) {
		got = evr_reader_next(x->rd, &rec);
		if (got != 1) {
			expect_true(0, "%s: after %s: record %d: %d", x->name, after, i, got);
			break;
		}
		expect_rec(x, &rec, &w[i]);
	}
	expect_true(evr_reader_next(x->rd, &rec) == 0, "%s: after %s: extra record", x->name,
		    after);
	evr_reader_end(x->rd);
	expect_true(rstats(x->rd).bad_headers == before.bad_headers,
		    "%s: after %s: clean round counted corruption", x->name, after);
}

/*
 * Damage the header of the second of three records; the first comes out, then -EBADMSG, and
 * the rest of the batch (second and third) is counted as skipped.
 */
typedef void (*damage_fn)(struct ctx *x, struct evr_record_header *h, uint64_t head, uint64_t pos);

static void dmg_size0(struct ctx *x, struct evr_record_header *h, uint64_t head, uint64_t pos)
{
	h->size = 0;
}

static void dmg_size4(struct ctx *x, struct evr_record_header *h, uint64_t head, uint64_t pos)
{
	h->size = 4;
}

static void dmg_unaligned(struct ctx *x, struct evr_record_header *h, uint64_t head, uint64_t pos)
{
	h->size += 4;
}

static void dmg_beyond(struct ctx *x, struct evr_record_header *h, uint64_t head, uint64_t pos)
{
	h->size = (uint16_t)(head - pos + 8);
}

static void dmg_huge(struct ctx *x, struct evr_record_header *h, uint64_t head, uint64_t pos)
{
	h->size = EVR_RECORD_MAX;
}

static void dmg_lost_short(struct ctx *x, struct evr_record_header *h, uint64_t head, uint64_t pos)
{
	h->type = EVR_TYPE_LOST;
	h->misc = EVR_MISC_EVRING;
	h->size = 16; /* body of 8 bytes: no room for struct evr_lost_body */
}

static void header_damage(struct ctx *x, const char *what, damage_fn fn, int pad_case)
{
	struct evr_reader_stats before = rstats(x->rd);
	struct rec_want w[3];
	struct evr_record rec;
	uint64_t head;
	int got, good = pad_case ? 2 : 1;

	w[0] = put(x, 10);
	if (pad_case) {
		w[1] = put(x, 20);
		w[2] = put(x, 0); /* no body: any pad count is larger than it */
		hdr_at(x, w[2].pos)->misc = 3;
	} else {
		w[1] = put(x, 20);
		w[2] = put(x, 5);
		head = w[2].pos + rec_size(5);
		fn(x, hdr_at(x, w[1].pos), head, w[1].pos);
	}
	head = w[2].pos + rec_size(w[2].len);
	got = evr_reader_begin(x->rd);
	expect_true(got == (int)(head - w[0].pos), "%s: %s: begin %d", x->name, what, got);
	for (int i = 0; i < good; i++) {
		got = evr_reader_next(x->rd, &rec);
		expect_true(got == 1, "%s: %s: good record %d: %d", x->name, what, i, got);
		if (got == 1)
			expect_rec(x, &rec, &w[i]);
	}
	got = evr_reader_next(x->rd, &rec);
	expect_true(got == -EBADMSG, "%s: %s: next returned %d, not -EBADMSG", x->name, what, got);
	for (int i = 0; i < 3; i++)
		expect_true(evr_reader_next(x->rd, &rec) == 0, "%s: %s: records after -EBADMSG",
			    x->name, what);
	evr_reader_end(x->rd);
	{
		struct evr_reader_stats st = rstats(x->rd);

		expect_true(st.bad_headers == before.bad_headers + 1,
			    "%s: %s: bad_headers +%" PRIu64, x->name, what,
			    st.bad_headers - before.bad_headers);
		expect_true(st.bytes_skipped == before.bytes_skipped + (head - w[good].pos),
			    "%s: %s: bytes_skipped +%" PRIu64 ", want +%" PRIu64, x->name, what,
			    st.bytes_skipped - before.bytes_skipped, head - w[good].pos);
	}
	good_round(x, 5, what);
}

/*
 * Damage data_head (or data_tail) itself: the batch fails with -EBADMSG and is counted; the
 * reader and the writer find each other again within a few rounds, then read cleanly.
 */
static void ctrl_damage(struct ctx *x, const char *what, uint64_t bad_head, int exact_skip)
{
	struct evr_reader_stats before = rstats(x->rd);
	struct evr_record rec;
	uint64_t skipped;
	int got, rounds;

	__atomic_store_n(&x->c->data_head, bad_head, __ATOMIC_RELEASE);
	got = evr_reader_begin(x->rd);
	expect_true(got == -EBADMSG, "%s: %s: begin returned %d, not -EBADMSG", x->name, what, got);
	expect_true(evr_reader_next(x->rd, &rec) == 0, "%s: %s: a record from a bad batch", x->name,
		    what);
	evr_reader_end(x->rd);
	skipped = rstats(x->rd).bytes_skipped - before.bytes_skipped;
	expect_true(rstats(x->rd).bad_headers == before.bad_headers + 1, "%s: %s: not counted",
		    x->name, what);
	expect_true(skipped <= x->size, "%s: %s: skipped %" PRIu64 " bytes of a %" PRIu64 " ring",
		    x->name, what, skipped, x->size);
	if (exact_skip >= 0)
		expect_true(skipped == (uint64_t)exact_skip, "%s: %s: skipped %" PRIu64 ", want %d",
			    x->name, what, skipped, exact_skip);

	/* write a marker and read, until a batch is clean and ends with it */
	for (rounds = 0; rounds < 4; rounds++) {
		uint64_t tag = x->tag + 1;
		int err = evr_ring_write(x->r, (uint32_t)(++x->tag & 0xffff), payload(tag), 9);
		int bad = 0, last_is_marker = 0, n = 0;

		if (evr_reader_begin(x->rd) < 0)
			bad = 1;
		while ((got = evr_reader_next(x->rd, &rec)) != 0 && n++ <= (int)(x->size / 8)) {
			if (got < 0) {
				bad = 1;
				continue;
			}
			touch(&rec);
			last_is_marker = rec.is_app && rec.type == (tag & 0xffff) && rec.len == 9;
		}
		expect_true(n <= (int)(x->size / 8), "%s: %s: a batch that never ends", x->name,
			    what);
		evr_reader_end(x->rd);
		if (!err && !bad && last_is_marker)
			break;
	}
	expect_true(rounds < 3, "%s: %s: no clean batch after %d rounds", x->name, what, rounds);
	good_round(x, 5, what);
}

static void ring_cases(uint64_t size, uint32_t flags, const char *name)
{
	EVR_OPTS(evr_ring_opts, o, .data_size = size, .flags = flags);
	struct ctx x = {.size = size, .name = name};
	struct evr_record rec;
	uint64_t head, tail;

	assert_eq(evr_ring_create(&o, &x.r), 0);
	assert_eq(evr_reader_create(x.r, NULL, &x.rd), 0);
	x.c = evr_ring_get_ctrl(x.r);
	x.data = (uint8_t *)x.c + x.c->data_offset;

	/* go round the ring several times so damage also lands across its end */
	for (int lap = 0; lap < 6; lap++) {
		good_round(&x, 5, "start");
		header_damage(&x, "size 0", dmg_size0, 0);
		header_damage(&x, "size 4", dmg_size4, 0);
		header_damage(&x, "size not a multiple of 8", dmg_unaligned, 0);
		header_damage(&x, "size beyond data_head", dmg_beyond, 0);
		header_damage(&x, "size beyond the ring", dmg_huge, 0);
		header_damage(&x, "LOST too short", dmg_lost_short, 0);
		header_damage(&x, "pad larger than the body", NULL, 1);

		/* data_head misaligned: the batch is skipped up to its aligned value */
		put(&x, 30);
		put(&x, 31);
		head = __atomic_load_n(&x.c->data_head, __ATOMIC_ACQUIRE);
		tail = __atomic_load_n(&x.c->data_tail, __ATOMIC_ACQUIRE);
		ctrl_damage(&x, "misaligned head", head + 4, (int)(head + 4 - tail));

		head = __atomic_load_n(&x.c->data_head, __ATOMIC_ACQUIRE);
		ctrl_damage(&x, "head more than data_size ahead", head + size + 8, -1);
		head = __atomic_load_n(&x.c->data_head, __ATOMIC_ACQUIRE);
		ctrl_damage(&x, "head behind tail", head - 64, -1);
		ctrl_damage(&x, "garbage head", 0xdeadbeefdeadbee8ull + lap, -1);
		head = __atomic_load_n(&x.c->data_head, __ATOMIC_ACQUIRE);
		ctrl_damage(&x, "head just past a whole ring", head + size + 64, -1);
	}

	/* a misaligned data_tail, as a new reader finds it */
	put(&x, 12);
	head = __atomic_load_n(&x.c->data_head, __ATOMIC_ACQUIRE);
	evr_reader_destroy(x.rd);
	__atomic_store_n(&x.c->data_tail, head - 5, __ATOMIC_RELEASE);
	assert_eq(evr_reader_create(x.r, NULL, &x.rd), 0);
	expect_eq(evr_reader_begin(x.rd), -EBADMSG);
	expect_eq(evr_reader_next(x.rd, &rec), 0);
	evr_reader_end(x.rd);
	expect_eq(rstats(x.rd).bad_headers, 1);
	expect_eq(rstats(x.rd).bytes_skipped, 5);
	expect_eq(__atomic_load_n(&x.c->data_tail, __ATOMIC_ACQUIRE), head);
	good_round(&x, 5, "misaligned tail");

	evr_reader_destroy(x.rd);
	evr_ring_destroy(x.r);
}

/* ---- raw readers over heap memory: bad arguments, then random damage under ASan ------------ */

static void raw_args(void)
{
	struct evr_ctrl *c = calloc(1, 4096);
	uint8_t *d = calloc(1, 4096);
	struct evr_reader *rd = NULL;
	uint8_t big[sizeof(struct evr_reader_opts) + 16] = {0};
	struct evr_reader_opts *bo = (void *)big;

	assert_true(c && d, "calloc");
	expect_eq(evr_reader_create_raw(NULL, d, 4096, false, false, NULL, &rd), -EINVAL);
	expect_eq(evr_reader_create_raw(c, NULL, 4096, false, false, NULL, &rd), -EINVAL);
	expect_eq(evr_reader_create_raw(c, d, 4096, false, false, NULL, NULL), -EINVAL);
	expect_eq(evr_reader_create_raw(c, d, 0, false, false, NULL, &rd), -EINVAL);
	expect_eq(evr_reader_create_raw(c, d, 32, false, false, NULL, &rd), -EINVAL);
	expect_eq(evr_reader_create_raw(c, d, 96, false, false, NULL, &rd), -EINVAL);
	expect_eq(evr_reader_create_raw(c, d, 4095, false, false, NULL, &rd), -EINVAL);
	expect_eq(evr_reader_create_raw(c, d, 1ull << 31, false, false, NULL, &rd), -EINVAL);
	expect_eq(evr_reader_create_raw(c, d, ~0ull, false, false, NULL, &rd), -EINVAL);
	{
		EVR_OPTS(evr_reader_opts, o, .flags = 0x80);

		expect_eq(evr_reader_create_raw(c, d, 4096, false, false, &o, &rd), -EINVAL);
		o.flags = 0;
		o.pad = 1;
		expect_eq(evr_reader_create_raw(c, d, 4096, false, false, &o, &rd), -EINVAL);
		o.pad = 0;
		o.sz = 4;
		expect_eq(evr_reader_create_raw(c, d, 4096, false, false, &o, &rd), -EINVAL);
	}
	/* a newer caller's larger struct: zero tail accepted, non-zero tail refused */
	bo->sz = sizeof(big);
	bo->flags = EVR_READ_OLDEST_FIRST;
	expect_eq(evr_reader_create_raw(c, d, 4096, false, true, bo, &rd), 0);
	evr_reader_destroy(rd);
	rd = NULL;
	big[sizeof(big) - 1] = 1;
	expect_eq(evr_reader_create_raw(c, d, 4096, false, true, bo, &rd), -EINVAL);
	expect_true(rd == NULL, "out set on failure");
	expect_eq(evr_reader_begin(NULL), -EINVAL);
	expect_eq(evr_reader_end(NULL), -EINVAL);
	expect_eq(evr_reader_get_stats(NULL, NULL), -EINVAL);
	evr_reader_destroy(NULL);
	/* the smallest ring is fine */
	expect_eq(evr_reader_create_raw(c, d, 64, false, false, NULL, &rd), 0);
	evr_reader_destroy(rd);
	free(c);
	free(d);
}

/* A writer of our own, writing the perf format into the heap ring as a kernel would. */
struct raw {
	struct evr_ctrl *c;
	uint8_t *d;
	uint64_t size, wpos;
	struct evr_reader *rd;
};

static void raw_put(struct raw *w, uint64_t *rng, int n)
{
	for (int i = 0; i < n; i++) {
		uint64_t v = t_rand(rng),
			 tail = __atomic_load_n(&w->c->data_tail, __ATOMIC_ACQUIRE);
		uint32_t len = (uint32_t)(v % (w->size / 3)), size = rec_size(len);
		struct evr_record_header h = {.type = EVR_TYPE_APP + (uint32_t)(v >> 40),
					      .misc = (uint16_t)(size - 8 - len),
					      .size = (uint16_t)size};

		if (w->wpos - tail > w->size || size > w->size - (w->wpos - tail))
			break; /* full, or a reader gone wild: publish what we have */
		for (uint32_t j = 0; j < size; j++) {
			uint8_t b = j < 8 ? ((uint8_t *)&h)[j] : (uint8_t)(v >> (j % 7));

			w->d[(w->wpos + j) & (w->size - 1)] = b;
		}
		w->wpos += size;
	}
	__atomic_store_n(&w->c->data_head, w->wpos, __ATOMIC_RELEASE);
}

/* Overwrite mode: records go toward lower positions, the newest at data_head. */
static void raw_put_backward(struct raw *w, uint64_t *rng, int n)
{
	for (int i = 0; i < n; i++) {
		uint64_t v = t_rand(rng);
		uint32_t len = (uint32_t)(v % (w->size / 3)), size = rec_size(len);
		struct evr_record_header h = {.type = EVR_TYPE_APP + (uint32_t)(v >> 40),
					      .misc = (uint16_t)(size - 8 - len),
					      .size = (uint16_t)size};

		w->wpos -= size;
		for (uint32_t j = 0; j < size; j++) {
			uint8_t b = j < 8 ? ((uint8_t *)&h)[j] : (uint8_t)(v >> (j % 7));

			w->d[(w->wpos + j) & (w->size - 1)] = b;
		}
	}
}

static void raw_fuzz(uint64_t size, int backward, int oldest_first, int iters)
{
	EVR_OPTS(evr_reader_opts, ro, .flags = oldest_first ? EVR_READ_OLDEST_FIRST : 0);
	struct raw w = {.size = size};
	uint64_t rng = t_seed ^ size ^ (uint64_t)backward << 7 ^ (uint64_t)oldest_first << 9;
	uint64_t errors = 0, records = 0;
	unsigned sink = 0;

	w.c = calloc(1, 4096);
	w.d = malloc(size); /* exactly the data area: ASan flags any byte beyond it */
	assert_true(w.c && w.d, "alloc");
	memset(w.d, 0, size);
	assert_eq(evr_reader_create_raw(w.c, w.d, size, false, backward, &ro, &w.rd), 0);

	for (int it = 0; it < iters && !t_failures; it++) {
		uint64_t v = t_rand(&rng), bad_before = rstats(w.rd).bad_headers;
		struct evr_record rec;
		int got, calls = 0, errs = 0;

		if (backward) {
			/* a backward writer's records, some bytes damaged, sometimes a bad head */
			raw_put_backward(&w, &rng, (int)(v % 6));
			if ((v >> 8) % 3 == 0) {
				uint64_t r2 = t_rand(&rng);

				w.d[r2 % size] ^= (uint8_t)(r2 >> 32 | 1);
			}
			w.c->data_head = (v >> 12) % 4 ? w.wpos : t_rand(&rng);
		} else {
			raw_put(&w, &rng, (int)(v % 6));
			if ((v >> 8) % 3 == 0) {
				/* damage: header bytes or data_head */
				uint64_t r2 = t_rand(&rng);

				if ((v >> 12) % 4)
					w.d[r2 % size] ^= (uint8_t)(r2 >> 32 | 1);
				else
					w.c->data_head =
						(v >> 14) % 2 ? r2 : w.wpos + r2 % (2 * size);
			}
		}
		got = evr_reader_begin(w.rd);
		if (got < 0) {
			expect_true(got == -EBADMSG, "begin: %d", got);
			errs++;
		} else {
			expect_true((uint64_t)got <= size,
				    "begin: %d bytes from a %" PRIu64 " ring", got, size);
		}
		while ((got = evr_reader_next(w.rd, &rec)) != 0) {
			if (++calls > (int)(size / 8) + 2) {
				expect_true(0, "batch of more than %" PRIu64 " records", size / 8);
				break;
			}
			if (got < 0) {
				expect_true(got == -EBADMSG, "next: %d", got);
				errs++;
				continue;
			}
			records++;
			sink += touch(&rec);
			expect_true(rec.hdr->size <= size, "record of %u bytes", rec.hdr->size);
		}
		evr_reader_end(w.rd);
		expect_true(errs <= 1, "%d errors in one batch", errs);
		expect_true(rstats(w.rd).bad_headers == bad_before + errs,
			    "bad_headers moved by %" PRIu64 " for %d errors",
			    rstats(w.rd).bad_headers - bad_before, errs);
		errors += errs;
		if (!backward && errs)
			w.c->data_head = w.wpos; /* as the real writer does at its next commit */
	}
	expect_true(errors > 0 && records > 0, "fuzz: %" PRIu64 " errors, %" PRIu64 " records",
		    errors, records);
	printf("raw %s%s %" PRIu64 ": %" PRIu64 " records, %" PRIu64 " errors (%u)\n",
	       backward ? "backward" : "forward", oldest_first ? " oldest-first" : "", size,
	       records, errors, sink & 1);
	evr_reader_destroy(w.rd);
	free(w.c);
	free(w.d);
}

int main(void)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), st;

	t_init("reader-corrupt");
	st = t_seed;
	for (size_t i = 0; i < sizeof(pool); i += 8) {
		uint64_t v = t_rand(&st);

		memcpy(pool + i, &v, 8);
	}
	ring_cases(1024, 0, "plain");
	ring_cases(page, EVR_RING_MIRROR, "mirror");
	raw_args();
	raw_fuzz(256, 0, 0, 20000);
	raw_fuzz(4096, 0, 0, 5000);
	raw_fuzz(256, 1, 0, 5000);
	raw_fuzz(256, 1, 1, 5000);
	raw_fuzz(1024, 1, 1, 2000);
	return t_done();
}
