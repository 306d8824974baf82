// SPDX-License-Identifier: MIT
/*
 * Multi-producer ring: reservations committed and discarded in any order. A single-threaded
 * model checks, after every commit or discard, exactly which records the reader sees; then
 * threads holding several reservations each finish them in seeded random order while a reader
 * checks that exactly the committed ones arrive, in reservation order, intact.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evring.h"
#include "oracle.h"
#include "test.h"

#define LOST_SIZE ((uint32_t)(sizeof(struct evr_record_header) + sizeof(struct evr_lost_body)))

__attribute__((noreturn, format(printf, 2, 3))) static void die(const char *part,
								 const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mpsc-discard: FAIL [%s]: ", part);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nmpsc-discard: replay with EVR_SEED=0x%016" PRIx64 "\n", t_seed);
	fflush(stdout);
	fflush(stderr);
	_exit(T_FAIL);
}

static struct evr_ring *make_ring(uint64_t size, uint64_t id)
{
	EVR_OPTS(evr_ring_opts, ro, .data_size = size, .flags = EVR_RING_MULTI | EVR_RING_MIRROR,
		 .ring_id = id);
	struct evr_ring *r;
	int err = evr_ring_create(&ro, &r);

	if (err == -ENOSYS || err == -EOPNOTSUPP)
		t_skip("no memfd mirror mapping here");
	if (err)
		die("setup", "evr_ring_create: %s", evr_strerror(err));
	return r;
}

static void shuffle(uint32_t *v, uint32_t n, uint64_t *rng)
{
	for (uint32_t i = n; i > 1; i--) {
		uint32_t j = (uint32_t)(t_rand(rng) % i), t = v[i - 1];

		v[i - 1] = v[j];
		v[j] = t;
	}
}

/* ---- part 1: one thread, an exact model of what the reader must see ---------------------- */

enum state { OPEN, COMMITTED, DISCARDED };

struct ent {
	uint64_t pos;
	uint64_t seq; /* APP: payload key; LOST: the count it must carry */
	uint32_t len;
	int lost; /* a LOST record the library put in front of the next reservation */
	enum state state;
	int fate_discard; /* planned */
	int hold; /* rounds it stays open beyond its own */
	struct evr_slot slot;
};

#define MAXENT 4096

static struct model {
	struct evr_ring *ring;
	struct evr_reader *rd;
	struct t_lenmix mix;
	struct ent e[MAXENT]; /* reservation order, a window [lo, hi) */
	uint32_t lo, hi; /* lo: next the reader must deliver (or skip) */
	uint64_t seq;
	uint64_t pending_lost; /* -ENOSPC since the last LOST record */
	uint64_t read, lost, discarded, committed, blocked_checks;
	uint32_t round;
} M;

static struct ent *ent(uint32_t i)
{
	return &M.e[i % MAXENT];
}

/* The payload of an open reservation is the writer's alone: nothing may have touched it. */
static void check_open_intact(const char *when)
{
	for (uint32_t i = M.lo; i < M.hi; i++) {
		struct ent *x = ent(i);
		long off;

		if (x->lost || x->state != OPEN)
			continue;
		off = t_payload_diff(x->slot.data, x->len, t_seed, 0, x->seq);
		if (off >= 0)
			die("model",
			    "round %u, %s: open reservation seq %" PRIu64 " at pos 0x%" PRIx64
			    " changed at payload byte %ld",
			    M.round, when, x->seq, x->pos, off);
	}
}

/* Drain the ring; what arrives must be exactly the committed prefix up to the first open one. */
static void model_drain(const char *when)
{
	struct evr_record rec;
	int k;

	for (;;) {
		int n = evr_reader_begin(M.rd), got = 0;

		if (n < 0)
			die("model", "round %u, %s: evr_reader_begin: %s", M.round, when,
			    evr_strerror(n));
		while ((k = evr_reader_next(M.rd, &rec)) == 1) {
			struct ent *x;

			while (M.lo < M.hi && ent(M.lo)->state == DISCARDED)
				M.lo++;
			if (M.lo == M.hi || ent(M.lo)->state == OPEN)
				die("model",
				    "round %u, %s: record at pos 0x%" PRIx64 " (type %u, %u bytes) "
				    "delivered, but %s",
				    M.round, when, rec.pos, rec.type, rec.len,
				    M.lo == M.hi ? "nothing is committed" :
						   "the next reservation is still open");
			x = ent(M.lo++);
			if (rec.pos != x->pos)
				die("model",
				    "round %u, %s: record at pos 0x%" PRIx64
				    ", expected seq %" PRIu64 " at 0x%" PRIx64,
				    M.round, when, rec.pos, x->seq, x->pos);
			if (x->lost) {
				struct evr_lost_body b;

				if (rec.is_app || rec.type != EVR_TYPE_LOST || rec.len < sizeof(b))
					die("model",
					    "round %u: expected a LOST record at 0x%" PRIx64,
					    M.round, x->pos);
				memcpy(&b, rec.data, sizeof(b));
				if (b.lost != x->seq)
					die("model",
					    "round %u: LOST record at 0x%" PRIx64 " says %" PRIu64
					    ", expected %" PRIu64,
					    M.round, x->pos, b.lost, x->seq);
				M.lost += b.lost;
			} else {
				long off;

				if (!rec.is_app || rec.type != 0 || rec.len != x->len)
					die("model",
					    "round %u: at 0x%" PRIx64
					    " type %u app %d len %u, expected "
					    "seq %" PRIu64 " of %u bytes",
					    M.round, x->pos, rec.type, rec.is_app, rec.len, x->seq,
					    x->len);
				off = t_payload_diff(rec.data, rec.len, t_seed, 0, x->seq);
				if (off >= 0)
					die("model",
					    "round %u, %s: seq %" PRIu64 " at 0x%" PRIx64
					    ": payload byte %ld of %u differs",
					    M.round, when, x->seq, x->pos, off, x->len);
				M.read++;
			}
			got++;
		}
		if (k < 0)
			die("model", "round %u, %s: evr_reader_next: %s", M.round, when,
			    evr_strerror(k));
		evr_reader_end(M.rd);
		if (!got)
			break;
	}
	while (M.lo < M.hi && ent(M.lo)->state == DISCARDED)
		M.lo++;
	if (M.lo < M.hi && ent(M.lo)->state != OPEN)
		die("model",
		    "round %u, %s: committed seq %" PRIu64 " at 0x%" PRIx64 " not delivered",
		    M.round, when, ent(M.lo)->seq, ent(M.lo)->pos);
	if (M.lo < M.hi) {
		/* a reservation held open: the reader stopped at it, and published no further */
		uint64_t tail = __atomic_load_n(&evr_ring_get_ctrl(M.ring)->data_tail,
						__ATOMIC_RELAXED);

		if (tail > ent(M.lo)->pos)
			die("model",
			    "round %u, %s: data_tail 0x%" PRIx64 " past the open reservation "
			    "at 0x%" PRIx64,
			    M.round, when, tail, ent(M.lo)->pos);
		M.blocked_checks++;
	}
	check_open_intact(when);
}

static struct ent *push(void)
{
	if (M.hi - M.lo >= MAXENT)
		die("model", "model window full");
	return ent(M.hi++);
}

/* Reserve one record in the model; a LOST record in front of it if losses are pending. */
static struct ent *model_reserve(uint64_t *rng, int write_now)
{
	uint64_t seq = M.seq;
	uint32_t len = t_payload_len(&M.mix, t_seed, 0, seq);
	struct evr_slot s;
	struct ent *x;
	int err;

	if (write_now) {
		uint8_t buf[20000];

		t_payload_fill(buf, len, t_seed, 0, seq);
		err = evr_ring_write(M.ring, 0, buf, len);
		s.pos = 0;
	} else {
		err = evr_ring_reserve(M.ring, 0, len, &s);
	}
	M.seq++; /* a discarded or lost record's key is not used again: simpler for the model */
	if (err == -ENOSPC) {
		M.pending_lost++;
		return NULL;
	}
	if (err)
		die("model", "round %u: %s: %s", M.round, write_now ? "write" : "reserve",
		    evr_strerror(err));
	if (write_now) {
		/* one thread: it landed right below the reserve position */
		s.pos = __atomic_load_n(&evr_ring_get_ctrl(M.ring)->prod_head, __ATOMIC_RELAXED) -
			((sizeof(struct evr_record_header) + len + EVR_RECORD_ALIGN - 1) &
			 ~(uint64_t)(EVR_RECORD_ALIGN - 1));
	}
	if (M.pending_lost) {
		x = push();
		memset(x, 0, sizeof(*x));
		x->lost = 1;
		x->seq = M.pending_lost;
		x->state = COMMITTED;
		x->pos = s.pos - LOST_SIZE;
		M.pending_lost = 0;
	}
	x = push();
	memset(x, 0, sizeof(*x));
	x->seq = seq;
	x->len = len;
	x->pos = s.pos;
	if (write_now) {
		x->state = COMMITTED;
		M.committed++;
		return x;
	}
	x->slot = s;
	x->state = OPEN;
	x->fate_discard = t_rand(rng) % 3 == 0;
	x->hold = t_rand(rng) % 10 == 0 ? 1 + (int)(t_rand(rng) % 24) : 0;
	t_payload_fill(s.data, len, t_seed, 0, seq);
	return x;
}

static void model_finish(struct ent *x, const char *when)
{
	int err = x->fate_discard ? evr_ring_discard(M.ring, &x->slot) :
				    evr_ring_commit(M.ring, &x->slot);

	if (err)
		die("model", "round %u: %s: %s", M.round, x->fate_discard ? "discard" : "commit",
		    evr_strerror(err));
	x->state = x->fate_discard ? DISCARDED : COMMITTED;
	if (x->fate_discard)
		M.discarded++;
	else
		M.committed++;
	model_drain(when);
}

static void part_model(uint32_t rounds)
{
	uint64_t rng = t_mix(t_seed ^ 0x6d6f64656cull);
	struct ent *open[64];
	uint32_t order[64];

	memset(&M, 0, sizeof(M));
	M.mix = (struct t_lenmix){ 700, 12000, 16 };
	M.ring = make_ring(1u << 16, 0x4d44);
	if (evr_reader_create(M.ring, NULL, &M.rd))
		die("setup", "evr_reader_create");
	for (M.round = 0; M.round < rounds; M.round++) {
		uint32_t k = 1 + (uint32_t)(t_rand(&rng) % 8), n = 0;

		/* this round's reservations, with plain writes between them */
		for (uint32_t i = 0; i < k; i++) {
			model_reserve(&rng, 0);
			if (t_rand(&rng) % 4 == 0 && model_reserve(&rng, 1))
				model_drain("a write after an open reservation");
		}
		model_drain("after reserving");
		/* every open reservation, this round's and held ones, in random order */
		for (uint32_t i = M.lo; i < M.hi && n < 64; i++)
			if (!ent(i)->lost && ent(i)->state == OPEN)
				open[n++] = ent(i);
		for (uint32_t i = 0; i < n; i++)
			order[i] = i;
		shuffle(order, n, &rng);
		for (uint32_t i = 0; i < n; i++) {
			struct ent *x = open[order[i]];

			if (x->hold > 0) {
				x->hold--;
				continue; /* stays open: later rounds' records queue up behind it */
			}
			model_finish(x, x->fate_discard ? "after a discard" : "after a commit");
		}
	}
	/* close everything still held, in random order, then report the pending losses */
	{
		uint32_t n = 0;

		for (uint32_t i = M.lo; i < M.hi && n < 64; i++)
			if (!ent(i)->lost && ent(i)->state == OPEN)
				open[n++] = ent(i);
		for (uint32_t i = 0; i < n; i++)
			order[i] = i;
		shuffle(order, n, &rng);
		for (uint32_t i = 0; i < n; i++)
			model_finish(open[order[i]], "closing");
	}
	if (M.pending_lost) {
		int err = evr_ring_flush(M.ring);
		struct ent *x;

		if (err != 1)
			die("model", "evr_ring_flush: %d with %" PRIu64 " losses pending", err,
			    M.pending_lost);
		x = push();
		memset(x, 0, sizeof(*x));
		x->lost = 1;
		x->seq = M.pending_lost;
		x->state = COMMITTED;
		x->pos = __atomic_load_n(&evr_ring_get_ctrl(M.ring)->prod_head, __ATOMIC_RELAXED) -
			 EVR_RECORD_ALIGN - LOST_SIZE; /* then a PAD record of a bare header */
		M.pending_lost = 0;
	}
	model_drain("at the end");
	if (M.lo != M.hi)
		die("model", "%u reservations never resolved", M.hi - M.lo);
	{
		struct evr_ring_stats rs = { .sz = sizeof(rs) };

		evr_ring_get_stats(M.ring, &rs);
		if (rs.lost_full != M.lost)
			die("model", "lost_full %" PRIu64 " but LOST records say %" PRIu64,
			    rs.lost_full, M.lost);
	}
	printf("mpsc-discard: model    %u rounds: %" PRIu64 " committed (%" PRIu64
	       " read), %" PRIu64 " discarded, %" PRIu64
	       " lost; reader stopped at an open reservation %" PRIu64 " times\n",
	       rounds, M.committed, M.read, M.discarded, M.lost, M.blocked_checks);
	evr_reader_destroy(M.rd);
	evr_ring_destroy(M.ring);
}

/* ---- part 2: threads holding several reservations each ----------------------------------- */

#define THREADS 6
#define HOLD 4 /* reservations a thread holds at once, at most */
#define FATE_COMMIT 1
#define FATE_DISCARD 2
#define FATE_LOST 3

struct holder {
	pthread_t th;
	uint32_t idx;
	uint64_t rng;
	uint8_t *fate; /* per seq; written before the record's commit/discard (or on -ENOSPC) */
	uint64_t nseq;
	uint64_t committed, discarded, lost, blocked_checks;
};

static struct threads {
	struct evr_ring *ring;
	struct evr_ctrl *ctrl;
	struct t_lenmix mix;
	uint64_t max_seq;
	struct holder h[THREADS];
	int stop, done; /* atomics */
	uint64_t delivered_pos; /* atomic: reader, position of the last record it delivered + 1 */
	int werr;
	char what[256];

	/* reader thread */
	uint64_t next[THREADS]; /* the lowest seq the next record of a thread may carry */
	uint64_t read, lost;
} P;

static void werr(const char *fmt, ...)
{
	int zero = 0;
	va_list ap;

	if (!__atomic_compare_exchange_n(&P.werr, &zero, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return;
	va_start(ap, fmt);
	vsnprintf(P.what, sizeof(P.what), fmt, ap);
	va_end(ap);
}

static void *holder_main(void *arg)
{
	struct holder *h = arg;

	while (!__atomic_load_n(&P.stop, __ATOMIC_RELAXED) &&
	       !__atomic_load_n(&P.werr, __ATOMIC_RELAXED) && h->nseq + HOLD < P.max_seq) {
		struct evr_slot s[HOLD];
		uint64_t seq[HOLD];
		uint32_t len[HOLD], order[HOLD], k = 1 + (uint32_t)(t_rand(&h->rng) % HOLD), n = 0;
		uint64_t first = UINT64_MAX;

		for (uint32_t i = 0; i < k; i++) {
			uint64_t q = h->nseq++;
			int err;

			len[n] = t_payload_len(&P.mix, t_seed, h->idx, q);
			err = evr_ring_reserve(P.ring, h->idx, len[n], &s[n]);
			if (err == -ENOSPC) {
				h->fate[q] = FATE_LOST;
				h->lost++;
				sched_yield(); /* let the reader, or the holder blocking it, run */
				continue;
			}
			if (err) {
				werr("thread %u: reserve: %s", h->idx, evr_strerror(err));
				return NULL;
			}
			seq[n] = q;
			h->fate[q] = t_rand(&h->rng) % 3 == 0 ? FATE_DISCARD : FATE_COMMIT;
			t_payload_fill(s[n].data, len[n], t_seed, h->idx, q);
			if (s[n].pos < first)
				first = s[n].pos;
			n++;
		}
		for (uint32_t i = 0; i < n; i++)
			order[i] = i;
		shuffle(order, n, &h->rng);
		for (uint32_t i = 0; i < n; i++) {
			uint32_t j = order[i];
			uint64_t seen, tail, low = UINT64_MAX;
			long off;
			int err;

			if (t_rand(&h->rng) % 8 == 0)
				sched_yield(); /* hold them a while: others queue up behind */
			for (uint32_t m = i; m < n; m++)
				if (s[order[m]].pos < low)
					low = s[order[m]].pos;
			/*
			 * Our oldest open reservation blocks the reader: nothing at or after it was
			 * delivered, and the space it sits in was not handed back.
			 */
			seen = __atomic_load_n(&P.delivered_pos, __ATOMIC_ACQUIRE);
			tail = __atomic_load_n(&P.ctrl->data_tail, __ATOMIC_ACQUIRE);
			if (seen > low || tail > low) {
				werr("thread %u: reader delivered up to 0x%" PRIx64
				     ", data_tail 0x%" PRIx64
				     ", past our open reservation at 0x%" PRIx64,
				     h->idx, seen, tail, low);
				return NULL;
			}
			h->blocked_checks++;
			off = t_payload_diff(s[j].data, len[j], t_seed, h->idx, seq[j]);
			if (off >= 0) {
				werr("thread %u: open reservation seq %" PRIu64 " at 0x%" PRIx64
				     " changed at payload byte %ld",
				     h->idx, seq[j], s[j].pos, off);
				return NULL;
			}
			if (h->fate[seq[j]] == FATE_DISCARD) {
				err = evr_ring_discard(P.ring, &s[j]);
				h->discarded++;
			} else {
				err = evr_ring_commit(P.ring, &s[j]);
				h->committed++;
			}
			if (err) {
				werr("thread %u: commit/discard: %s", h->idx, evr_strerror(err));
				return NULL;
			}
		}
	}
	return NULL;
}

static void reader_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mpsc-discard: FAIL [threads]: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nmpsc-discard: replay with EVR_SEED=0x%016" PRIx64 "\n", t_seed);
	fflush(stderr);
	_exit(T_FAIL);
}

static void check_record(const struct evr_record *rec)
{
	struct t_payload_hdr ph;
	struct holder *h;
	long off;

	if (!rec->is_app) {
		struct evr_lost_body b;

		if (rec->type != EVR_TYPE_LOST || rec->len < sizeof(b))
			reader_fail("unexpected record type %u at 0x%" PRIx64, rec->type, rec->pos);
		memcpy(&b, rec->data, sizeof(b));
		if (!b.lost)
			reader_fail("empty LOST record at 0x%" PRIx64, rec->pos);
		P.lost += b.lost;
		return;
	}
	if (rec->type >= THREADS || rec->len < sizeof(ph))
		reader_fail("record at 0x%" PRIx64 ": id %u, %u bytes", rec->pos, rec->type,
			    rec->len);
	memcpy(&ph, rec->data, sizeof(ph));
	h = &P.h[rec->type];
	if (ph.stream != rec->type || ph.seq >= P.max_seq)
		reader_fail("record at 0x%" PRIx64 ": id %u, stream %u, seq %" PRIu64, rec->pos,
			    rec->type, ph.stream, ph.seq);
	if (ph.seq < P.next[rec->type])
		reader_fail("thread %u: seq %" PRIu64 " at 0x%" PRIx64 " after %" PRIu64
			    ": not in reservation order",
			    rec->type, ph.seq, rec->pos, P.next[rec->type] - 1);
	/* what it skipped was discarded or lost; the fates were stored before this commit */
	for (uint64_t q = P.next[rec->type]; q < ph.seq; q++)
		if (h->fate[q] != FATE_DISCARD && h->fate[q] != FATE_LOST)
			reader_fail("thread %u: seq %" PRIu64
				    " (fate %u) missing before seq %" PRIu64 " at 0x%" PRIx64,
				    rec->type, q, h->fate[q], ph.seq, rec->pos);
	if (h->fate[ph.seq] != FATE_COMMIT)
		reader_fail("thread %u: seq %" PRIu64 " at 0x%" PRIx64 " delivered, its fate is %s",
			    rec->type, ph.seq, rec->pos,
			    h->fate[ph.seq] == FATE_DISCARD ? "discard" : "unknown");
	if (rec->len != t_payload_len(&P.mix, t_seed, rec->type, ph.seq))
		reader_fail("thread %u seq %" PRIu64 ": length %u", rec->type, ph.seq, rec->len);
	off = t_payload_diff(rec->data, rec->len, t_seed, rec->type, ph.seq);
	if (off >= 0)
		reader_fail("thread %u seq %" PRIu64 " at 0x%" PRIx64 ": payload byte %ld differs",
			    rec->type, ph.seq, rec->pos, off);
	P.next[rec->type] = ph.seq + 1;
	P.read++;
}

static void *reader_main(void *arg)
{
	struct evr_reader *rd = arg;
	struct evr_record rec;

	for (;;) {
		int finished = __atomic_load_n(&P.done, __ATOMIC_ACQUIRE);
		int n = evr_reader_begin(rd), k, got = 0;

		if (n < 0)
			reader_fail("evr_reader_begin: %s", evr_strerror(n));
		while ((k = evr_reader_next(rd, &rec)) == 1) {
			check_record(&rec);
			__atomic_store_n(&P.delivered_pos, rec.pos + 1, __ATOMIC_RELEASE);
			got++;
		}
		if (k < 0)
			reader_fail("evr_reader_next: %s", evr_strerror(k));
		evr_reader_end(rd);
		if (!n && finished)
			break;
		if (!got)
			sched_yield();
	}
	return NULL;
}

static void part_threads(double seconds)
{
	struct evr_reader *rd;
	pthread_t reader;
	uint64_t committed = 0, discarded = 0, lost = 0, checks = 0;
	double t0;
	int err;

	memset(&P, 0, sizeof(P));
	P.mix = (struct t_lenmix){ 400, 9000, 32 };
	P.max_seq = t_long() ? 1u << 24 : 1u << 21;
	P.ring = make_ring(1u << 15, 0x4454);
	P.ctrl = evr_ring_get_ctrl(P.ring);
	if (evr_reader_create(P.ring, NULL, &rd))
		die("setup", "evr_reader_create");
	if (pthread_create(&reader, NULL, reader_main, rd))
		die("setup", "pthread_create");
	for (uint32_t i = 0; i < THREADS; i++) {
		P.h[i].idx = i;
		P.h[i].rng = t_mix(t_seed ^ (0x7468726561640000ull + i));
		P.h[i].fate = calloc(P.max_seq, 1);
		if (!P.h[i].fate || pthread_create(&P.h[i].th, NULL, holder_main, &P.h[i]))
			die("setup", "out of memory or threads");
	}
	t0 = t_now();
	while (t_now() - t0 < seconds && !__atomic_load_n(&P.werr, __ATOMIC_RELAXED)) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	__atomic_store_n(&P.stop, 1, __ATOMIC_RELAXED);
	for (uint32_t i = 0; i < THREADS; i++)
		pthread_join(P.h[i].th, NULL);
	while ((err = evr_ring_flush(P.ring)) == -ENOSPC)
		sched_yield();
	if (err < 0)
		die("threads", "evr_ring_flush: %s", evr_strerror(err));
	__atomic_store_n(&P.done, 1, __ATOMIC_RELEASE);
	pthread_join(reader, NULL);
	if (P.werr)
		die("threads", "%s", P.what);
	for (uint32_t i = 0; i < THREADS; i++) {
		struct holder *h = &P.h[i];

		/* every committed record arrived: nothing committed after the last one read */
		for (uint64_t q = P.next[i]; q < h->nseq; q++)
			if (h->fate[q] == FATE_COMMIT)
				die("threads", "thread %u: committed seq %" PRIu64 " never arrived",
				    i, q);
		committed += h->committed;
		discarded += h->discarded;
		lost += h->lost;
		checks += h->blocked_checks;
		free(h->fate);
	}
	if (P.read != committed || P.lost != lost)
		die("threads",
		    "read %" PRIu64 " of %" PRIu64 " committed; LOST records say %" PRIu64
		    ", -ENOSPC returns %" PRIu64,
		    P.read, committed, P.lost, lost);
	printf("mpsc-discard: threads  %u threads %.2fs: %" PRIu64 " committed (all read), %" PRIu64
	       " discarded, %" PRIu64 " lost; %" PRIu64 " checks that an open reservation blocks\n",
	       THREADS, t_now() - t0, committed, discarded, lost, checks);
	evr_reader_destroy(rd);
	evr_ring_destroy(P.ring);
}

/*
 * evr_reader_begin() on a multi-producer ring: 0 while the record at the reader's position is
 * not committed (whatever is reserved or committed after it), then the bytes reserved so far;
 * an impossible prod_head sizes the batch as a whole ring, never as 0.
 */
static void part_begin(void)
{
	struct evr_ring *r = make_ring(4096, 9);
	struct evr_ctrl *c = evr_ring_get_ctrl(r);
	struct evr_reader *rd;
	struct evr_slot a, b;
	struct evr_record rec;
	int n, k, got = 0;

	if (evr_reader_create(r, NULL, &rd))
		die("begin", "evr_reader_create failed");
	if ((n = evr_reader_begin(rd)) != 0)
		die("begin", "empty ring: evr_reader_begin() = %d", n);
	evr_reader_end(rd);
	if (evr_ring_reserve(r, 1, 16, &a) || evr_ring_reserve(r, 2, 16, &b))
		die("begin", "evr_ring_reserve failed");
	if ((n = evr_reader_begin(rd)) != 0)
		die("begin", "two reserved, none committed: evr_reader_begin() = %d", n);
	evr_reader_end(rd);
	if (evr_ring_commit(r, &b))
		die("begin", "evr_ring_commit failed");
	if ((n = evr_reader_begin(rd)) != 0)
		die("begin", "the second committed, the first not: evr_reader_begin() = %d", n);
	if ((k = evr_reader_next(rd, &rec)) != 0)
		die("begin", "the first not committed: evr_reader_next() = %d", k);
	evr_reader_end(rd);
	if (evr_ring_commit(r, &a))
		die("begin", "evr_ring_commit failed");
	if ((n = evr_reader_begin(rd)) != (int)c->prod_head)
		die("begin", "both committed: evr_reader_begin() = %d, %" PRIu64 " reserved", n,
		    c->prod_head);
	while ((k = evr_reader_next(rd, &rec)) == 1)
		got++;
	evr_reader_end(rd);
	if (k || got != 2)
		die("begin", "read %d records (last next() = %d), not 2", got, k);
	if ((n = evr_reader_begin(rd)) != 0)
		die("begin", "drained: evr_reader_begin() = %d", n);
	evr_reader_end(rd);
	if (evr_ring_write(r, 3, "12345678", 8))
		die("begin", "evr_ring_write failed");
	c->prod_head = c->data_tail; /* a hostile writer: nothing reserved, yet a record */
	if ((n = evr_reader_begin(rd)) != 4096)
		die("begin", "prod_head at the tail: evr_reader_begin() = %d, not the ring", n);
	if ((k = evr_reader_next(rd, &rec)) != 1 || rec.type != 3)
		die("begin", "prod_head at the tail: the record not read (%d)", k);
	evr_reader_end(rd);
	evr_reader_destroy(rd);
	evr_ring_destroy(r);
}

int main(void)
{
	const char *env = getenv("EVR_STRESS_SECONDS");
	double seconds = t_long() ? 60 : 1.5;

	t_init("mpsc-discard");
	if (env && *env)
		seconds = strtod(env, NULL);
	printf("mpsc-discard: seed 0x%016" PRIx64 "\n", t_seed);
	part_begin();
	part_model(t_long() ? 200000 : 20000);
	part_threads(seconds);
	printf("mpsc-discard: ok\n");
	return t_done();
}
