// SPDX-License-Identifier: MIT
/*
 * Pause (perf's PAUSE_OUTPUT): writes fail -ENOSPC counted as lost_paused and reported by a LOST
 * record with cause EVR_LOST_PAUSED; resume restores writing; pausing while another thread holds
 * a reservation times out (-ETIMEDOUT, ring still paused) and succeeds once it commits; a paused
 * overwrite ring with a writer thread hammering it gives a byte-stable snapshot.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evring.h"
#include "test.h"

#define RING_ID 0x9a05eull

static uint8_t pool[1 << 16];

static const uint8_t *payload(uint64_t seq)
{
	return pool + (t_mix(t_seed ^ seq) % (sizeof(pool) / 2));
}

static struct evr_ring_stats stats(struct evr_ring *r)
{
	EVR_OPTS(evr_ring_stats, st);

	assert_eq(evr_ring_get_stats(r, &st), 0);
	return st;
}

static struct evr_ring *make(uint64_t size, uint32_t flags)
{
	EVR_OPTS(evr_ring_opts, o, .data_size = size, .flags = flags, .ring_id = RING_ID);
	struct evr_ring *r;

	assert_eq(evr_ring_create(&o, &r), 0);
	return r;
}

static uint32_t paused_flag(struct evr_ring *r)
{
	return __atomic_load_n(&evr_ring_get_ctrl(r)->paused, __ATOMIC_RELAXED);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Expect a LOST record of @n losses with @causes. */
static void expect_lost(const struct evr_record *rec, uint64_t n, uint32_t causes)
{
	struct evr_lost_body b;

	assert_true(!rec->is_app && rec->type == EVR_TYPE_LOST && rec->len == sizeof(b),
		    "not a LOST record: type %#x len %u", rec->type, rec->len);
	expect_true(rec->hdr->misc & EVR_MISC_EVRING, "misc %#x", rec->hdr->misc);
	memcpy(&b, rec->data, sizeof(b));
	expect_true(b.lost == n, "LOST count %" PRIu64 ", want %" PRIu64, b.lost, n);
	expect_true(b.causes == causes, "LOST causes %#x, want %#x", b.causes, causes);
	expect_true(b.id == RING_ID, "LOST id %#" PRIx64, b.id);
}

static void expect_app(const struct evr_record *rec, uint32_t id, const void *p, uint32_t len)
{
	expect_true(rec->is_app && rec->type == id && rec->len == len,
		    "record app %d id %u len %u, want id %u len %u", rec->is_app, rec->type,
		    rec->len, id, len);
	if (rec->is_app && rec->len == len)
		expect_true(!memcmp(rec->data, p, len), "payload of id %u", id);
}

/* Discard mode: pause refuses and counts, resume reports the losses with their cause. */
static void basic(void)
{
	struct evr_ring *r = make(1024, 0);
	struct evr_reader *rd;
	struct evr_record rec;
	struct evr_slot s;
	uint64_t head;

	assert_eq(evr_reader_create(r, NULL, &rd), 0);
	expect_eq(evr_ring_write(r, 1, pool, 10), 0);
	head = stats(r).data_head;

	expect_eq(evr_ring_set_paused(r, true, 100), 0);
	expect_eq(paused_flag(r), 1);
	expect_eq(evr_ring_write(r, 2, pool, 10), -ENOSPC);
	expect_eq(evr_ring_write(r, 3, pool, 0), -ENOSPC);
	expect_eq(evr_ring_reserve(r, 4, 10, &s), -ENOSPC);
	expect_eq(evr_ring_write(r, 5, pool, 10), -ENOSPC);
	expect_eq(evr_ring_flush(r), -ENOSPC); /* the LOST record cannot go out either */
	expect_eq(stats(r).lost_paused, 4);
	expect_eq(stats(r).lost_full, 0);
	expect_eq(stats(r).data_head, head);
	expect_eq(evr_ring_get_ctrl(r)->nest, 0);
	expect_eq(evr_ring_set_paused(r, true, 100), 0); /* pausing again is harmless */

	expect_eq(evr_ring_set_paused(r, false, 0), 0);
	expect_eq(paused_flag(r), 0);
	expect_eq(evr_ring_write(r, 6, pool + 1, 17), 0);
	expect_eq(stats(r).lost_paused, 4);

	assert_true(evr_reader_begin(rd) > 0, "begin");
	assert_eq(evr_reader_next(rd, &rec), 1);
	expect_app(&rec, 1, pool, 10);
	assert_eq(evr_reader_next(rd, &rec), 1);
	expect_lost(&rec, 4, EVR_LOST_PAUSED);
	assert_eq(evr_reader_next(rd, &rec), 1);
	expect_app(&rec, 6, pool + 1, 17);
	expect_eq(evr_reader_next(rd, &rec), 0);
	evr_reader_end(rd);

	/* both causes in one LOST record: full, then paused */
	while (evr_ring_write(r, 7, pool, 100) == 0)
		;
	expect_eq(stats(r).lost_full, 1);
	expect_eq(evr_ring_set_paused(r, true, 100), 0);
	expect_eq(evr_ring_write(r, 8, pool, 100), -ENOSPC);
	expect_eq(evr_ring_write(r, 9, pool, 100), -ENOSPC);
	expect_eq(evr_ring_set_paused(r, false, 100), 0);
	expect_eq(stats(r).lost_full, 1);
	expect_eq(stats(r).lost_paused, 6);
	evr_reader_begin(rd);
	while (evr_reader_next(rd, &rec) == 1)
		expect_app(&rec, 7, pool, 100);
	evr_reader_end(rd);
	expect_eq(evr_ring_write(r, 10, pool, 3), 0);
	evr_reader_begin(rd);
	assert_eq(evr_reader_next(rd, &rec), 1);
	expect_lost(&rec, 3, EVR_LOST_FULL | EVR_LOST_PAUSED);
	assert_eq(evr_reader_next(rd, &rec), 1);
	expect_app(&rec, 10, pool, 3);
	evr_reader_end(rd);
	{
		EVR_OPTS(evr_reader_stats, rs);

		evr_reader_get_stats(rd, &rs);
		expect_eq(rs.lost, 7);
	}
	expect_eq(evr_ring_set_paused(NULL, true, 10), -EINVAL);
	expect_eq(evr_ring_set_paused(r, true, -1), -EINVAL);
	evr_reader_destroy(rd);
	evr_ring_destroy(r);
}

/* A writer thread that holds a reservation until told to commit it. */
struct holder {
	struct evr_ring *r;
	atomic_int state; /* 0 start, 1 reserved, 2 commit now, 3 committed */
	int err;
};

static void *hold(void *arg)
{
	struct holder *h = arg;
	struct evr_slot s;

	h->err = evr_ring_reserve(h->r, 42, 24, &s);
	if (h->err) {
		atomic_store(&h->state, 3);
		return NULL;
	}
	atomic_store(&h->state, 1);
	while (atomic_load(&h->state) != 2)
		sleep_ms(1);
	memcpy(s.data, pool + 5, 24);
	h->err = evr_ring_commit(h->r, &s);
	atomic_store(&h->state, 3);
	return NULL;
}

static void in_flight(void)
{
	struct evr_ring *r = make(4096, 0);
	struct holder h = {.r = r};
	struct evr_reader *rd;
	struct evr_record rec;
	pthread_t t;
	double t0, dt;
	int err;

	assert_eq(evr_reader_create(r, NULL, &rd), 0);
	assert_eq(pthread_create(&t, NULL, hold, &h), 0);
	while (atomic_load(&h.state) == 0)
		sleep_ms(1);
	assert_eq(h.err, 0);

	t0 = t_now();
	err = evr_ring_set_paused(r, true, 50);
	dt = t_now() - t0;
	expect_eq(err, -ETIMEDOUT);
	expect_true(dt >= 0.045 && dt < 2.0, "timed out after %.3f s, asked for 0.050", dt);
	expect_eq(paused_flag(r), 1);	  /* paused nonetheless */
	expect_eq(stats(r).data_head, 0); /* the open reservation is not published */

	atomic_store(&h.state, 2);
	pthread_join(t, NULL);
	expect_eq(h.err, 0); /* it started before the pause: it completes */
	expect_eq(evr_ring_set_paused(r, true, 1000), 0);

	/* the writer context is now this thread: paused, it is refused */
	expect_eq(evr_ring_write(r, 43, pool, 8), -ENOSPC);
	expect_eq(stats(r).lost_paused, 1);
	assert_eq(evr_reader_begin(rd), 32);
	assert_eq(evr_reader_next(rd, &rec), 1);
	expect_app(&rec, 42, pool + 5, 24);
	expect_eq(evr_reader_next(rd, &rec), 0);
	evr_reader_end(rd);

	expect_eq(evr_ring_set_paused(r, false, 0), 0);
	expect_eq(evr_ring_write(r, 44, pool, 8), 0);
	evr_reader_begin(rd);
	assert_eq(evr_reader_next(rd, &rec), 1);
	expect_lost(&rec, 1, EVR_LOST_PAUSED);
	assert_eq(evr_reader_next(rd, &rec), 1);
	expect_app(&rec, 44, pool, 8);
	evr_reader_end(rd);
	evr_reader_destroy(rd);
	evr_ring_destroy(r);
}

/* Overwrite ring, writer thread: records are seq (8 bytes) + pooled bytes, one seq per try. */
struct hammer {
	struct evr_ring *r;
	atomic_ulong tries, fails;
	uint64_t after_resume; /* successes after the first failure */
	int bad;
};

static size_t hammer_len(uint64_t seq)
{
	return 8 + t_mix(seq * 31 + t_seed) % 120;
}

static void *hammer(void *arg)
{
	struct hammer *h = arg;
	uint8_t buf[256];

	for (uint64_t seq = 0;; seq++) {
		size_t len = hammer_len(seq);
		int err;

		memcpy(buf, payload(seq), len);
		memcpy(buf, &seq, 8);
		err = evr_ring_write(h->r, (uint32_t)(seq & 0xffff), buf, len);
		atomic_store(&h->tries, seq + 1);
		if (err == -ENOSPC)
			atomic_fetch_add(&h->fails, 1);
		else if (err)
			h->bad = err;
		else if (atomic_load(&h->fails) && ++h->after_resume == 3)
			return NULL; /* three records after the pause */
		if (h->bad)
			return NULL;
	}
}

struct snap {
	uint64_t seq[4096];
	uint64_t pos[4096];
	int n, lost_at;
	uint64_t lost;
	uint32_t causes;
};

/* Read the whole snapshot; every app record must be byte-exact. */
static void take(struct evr_reader *rd, struct snap *sn)
{
	struct evr_record rec;

	sn->n = 0;
	sn->lost_at = -1;
	assert_true(evr_reader_begin(rd) >= 0, "begin");
	while (evr_reader_next(rd, &rec) == 1) {
		assert_true(sn->n < 4096, "snapshot too long");
		if (!rec.is_app) {
			struct evr_lost_body b;

			expect_true(rec.type == EVR_TYPE_LOST && rec.len == sizeof(b), "type %#x",
				    rec.type);
			memcpy(&b, rec.data, sizeof(b));
			sn->lost_at = sn->n;
			sn->lost = b.lost;
			sn->causes = b.causes;
			continue;
		}
		memcpy(&sn->seq[sn->n], rec.data, 8);
		sn->pos[sn->n] = rec.pos;
		expect_true(rec.len == hammer_len(sn->seq[sn->n]) &&
				    rec.type == (sn->seq[sn->n] & 0xffff),
			    "seq %" PRIu64 ": len %u", sn->seq[sn->n], rec.len);
		if (rec.len == hammer_len(sn->seq[sn->n]))
			expect_true(!memcmp((const uint8_t *)rec.data + 8,
					    payload(sn->seq[sn->n]) + 8, rec.len - 8),
				    "payload of seq %" PRIu64, sn->seq[sn->n]);
		sn->n++;
	}
	evr_reader_end(rd);
}

static void overwrite_snapshot(uint64_t size, uint32_t flags)
{
	static struct snap a, b, c;
	struct evr_ring *r = make(size, EVR_RING_OVERWRITE | flags);
	struct evr_ctrl *ctl = evr_ring_get_ctrl(r);
	struct hammer h = {.r = r};
	struct evr_reader *rd;
	uint8_t *raw = malloc(size), *data = (uint8_t *)ctl + ctl->data_offset;
	uint64_t head, fails;
	pthread_t t;
	double t0;

	assert_true(raw != NULL, "malloc");
	assert_eq(evr_reader_create(r, NULL, &rd), 0);
	assert_eq(pthread_create(&t, NULL, hammer, &h), 0);
	/* let it wrap the ring several times */
	t0 = t_now();
	while (atomic_load(&h.tries) < 50 * size / 64 && t_now() - t0 < 5)
		sleep_ms(1);

	assert_eq(evr_ring_set_paused(r, true, 1000), 0);
	take(rd, &a);
	memcpy(raw, data, size);
	head = stats(r).data_head;
	fails = atomic_load(&h.fails);
	t0 = t_now();
	while (atomic_load(&h.fails) < fails + 1000 && t_now() - t0 < 5)
		sleep_ms(1); /* the writer keeps trying, and failing */
	expect_true(atomic_load(&h.fails) >= fails + 1000, "the writer stopped trying");
	take(rd, &b);
	expect_true(!memcmp(raw, data, size), "the paused ring changed under the reader");
	expect_eq(stats(r).data_head, head);
	expect_true(a.n > 0 && a.n == b.n && !memcmp(a.seq, b.seq, a.n * sizeof(a.seq[0])),
		    "snapshots differ: %d and %d records", a.n, b.n);
	expect_true(a.lost_at < 0, "LOST record before any loss");
	/* newest first, consecutive: nothing was lost before the pause */
	for (int i = 1; i < a.n; i++)
		expect_true(a.seq[i] == a.seq[i - 1] - 1, "snapshot seq %" PRIu64 " after %" PRIu64,
			    a.seq[i], a.seq[i - 1]);

	expect_eq(evr_ring_set_paused(r, false, 0), 0);
	pthread_join(t, NULL);
	expect_eq(h.bad, 0);
	fails = atomic_load(&h.fails);
	expect_eq(stats(r).lost_paused, fails);

	/*
	 * Three records after the resume, then (older) the LOST record for the pause, then the
	 * newest record of the paused snapshot.
	 */
	take(rd, &c);
	assert_true(c.n >= 4 && c.lost_at == 3, "after resume: %d records, LOST at %d", c.n,
		    c.lost_at);
	expect_eq(c.lost, fails);
	expect_eq(c.causes, EVR_LOST_PAUSED);
	expect_eq(c.seq[0], c.seq[1] + 1);
	expect_eq(c.seq[1], c.seq[2] + 1);
	expect_true(c.seq[3] == a.seq[0] && c.seq[2] == a.seq[0] + fails + 1,
		    "around the pause: %" PRIu64 " then %" PRIu64 ", before it %" PRIu64
		    ", %" PRIu64 " lost",
		    c.seq[3], c.seq[2], a.seq[0], fails);
	free(raw);
	evr_reader_destroy(rd);
	evr_ring_destroy(r);
}

int main(void)
{
	uint64_t st;

	t_init("ring-pause");
	st = t_seed;
	for (size_t i = 0; i < sizeof(pool); i += 8) {
		uint64_t v = t_rand(&st);

		memcpy(pool + i, &v, 8);
	}
	basic();
	in_flight();
	overwrite_snapshot(4096, 0);
	overwrite_snapshot((uint64_t)sysconf(_SC_PAGESIZE), EVR_RING_MIRROR);
	return t_done();
}
