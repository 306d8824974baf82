// SPDX-License-Identifier: MIT
/*
 * W2, streaming: a writer thread and a reader thread, pinned to two cores, move BENCH_W2_BYTES of
 * records through a BENCH_W2_RING ring, evring against ideal, in Mrec/s. The reader checks every
 * sequence number; on -ENOSPC the writer waits for room and retries, so no record is ever lost.
 * evring counts each -ENOSPC as a lost record and says so in a LOST record before the retried one;
 * the reader accepts those (nothing is missing) and checks that they add up.
 *
 * The flight recorder (a session ring of BENCH_W2_RING bytes in 4 KiB pages, evr_flight_write
 * and evr_flight_read) runs the same stream in both modes:
 *   evring-flight-pc  produce/consume: as above, the writer waits on -ENOSPC and retries, the
 *                     reader sees every record; the ring's count of refusals must match.
 *   evring-flight-ow  overwrite: the writer never waits and laps the reader; the figures are
 *                     the records the reader got per second (evring-flight-ow), the writer's
 *                     rate (evring-flight-ow-write) and the percentage of records overwritten
 *                     unread (evring-flight-ow-overwritten). The reader checks that the LOST
 *                     records add up to the gaps in the sequence (a LOST record may come a
 *                     page early or late: late= counts those gaps), and that records read plus
 *                     the ring's overwritten count add up to records written.
 */
#define _GNU_SOURCE
#include <evring.h>

#include "bench.h"
#include "ideal.h"

enum { IMPL_EVRING, IMPL_IDEAL, IMPL_FLIGHT_PC, IMPL_FLIGHT_OW, NR_IMPLS };

static const char *const impl_names[NR_IMPLS] = { "evring", "ideal", "evring-flight-pc",
						  "evring-flight-ow" };

#define FLIGHT_PAGE 4096u

static inline int is_flight(int impl)
{
	return impl == IMPL_FLIGHT_PC || impl == IMPL_FLIGHT_OW;
}

/*
 * The writer copies from NSRC source buffers in turn and stamps a sequence number into the one it
 * will use AHEAD records later: the stamping stores retire long before the copy loads them, so
 * no store-forwarding stall is timed.
 */
#define NSRC 16u
#define AHEAD 8u

struct stream {
	/* set up by main() before the threads start, read-only afterwards */
	int impl;
	int payload_idx;
	size_t len;
	uint64_t n; /* records to move */
	int wcpu, rcpu;
	long idle; /* BENCH_W2_IDLE: pause loops of a reader that found nothing */
	struct evr_ring *ev;
	struct evr_reader *rd;
	struct ideal_ring *ir;
	struct evr_flight *fl[2]; /* produce/consume, overwrite */
	uint8_t *src; /* NSRC buffers, @stride bytes apart */
	size_t stride;

	/* the start line and the way out, shared */
	int ready __attribute__((aligned(64)));
	int stop; /* a side failed: the other gives up */
	int wdone; /* flight-ow: the writer wrote its last record (release) */
	uint64_t consumed; /* flight: records the reader took so far (relaxed, for wait_flight) */

	/* written by one thread each, read by main() after the joins */
	uint64_t t0 __attribute__((aligned(64)));
	uint64_t enospc; /* writes refused for want of room, then retried */
	long wpreempted; /* involuntary context switches during the run */
	int wpinned;
	char werr[160];
	uint64_t tw1; /* the writer's end */
	uint64_t t1 __attribute__((aligned(64)));
	uint64_t lost_seen; /* sum of the LOST records the reader met */
	uint64_t nread; /* flight: records read */
	uint64_t ow_ring; /* flight-ow: overwritten during the run, by the ring's count */
	uint64_t ow_seen; /* flight-ow: entries LOST records said were overwritten */
	uint64_t stale; /* flight: records read again, older than one read before */
	uint64_t unannounced; /* flight: skipped records no LOST record accounted for (or the
			       * other way round) by the end */
	uint64_t late; /* flight: gaps not matched by the LOST records that came before them */
	long rpreempted;
	int rpinned;
	char rerr[160];

	/* private to the writer and to the reader thread */
	struct ideal_writer iw;
	struct ideal_reader ird;
};

static inline uint8_t *src_buf(struct stream *s, uint64_t seq)
{
	return s->src + (seq % NSRC) * s->stride;
}

/* The payload carries its sequence number at both ends: a torn record fails either check. */
static inline void stamp(uint8_t *p, size_t len, uint64_t seq)
{
	memcpy(p, &seq, sizeof(seq));
	memcpy(p + len - sizeof(seq), &seq, sizeof(seq));
}

static inline int stamped(const uint8_t *p, size_t len, uint64_t seq)
{
	uint64_t a, b;

	memcpy(&a, p, sizeof(a));
	memcpy(&b, p + len - sizeof(b), sizeof(b));
	return a == seq && b == seq;
}

static void start_line(struct stream *s)
{
	unsigned int spins = 0;

	__atomic_fetch_add(&s->ready, 1, __ATOMIC_ACQ_REL);
	while (__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE) < 2)
		bench_backoff(&spins);
}

static int stopped(struct stream *s)
{
	return __atomic_load_n(&s->stop, __ATOMIC_RELAXED);
}

/*
 * After -ENOSPC: wait until the reader has freed room for this record and a LOST record, reading
 * the shared positions as any perf-style client may. The reader frees a whole batch at a time, so
 * a writer that outruns it waits about once per reader batch, not once per record.
 */
static void wait_room(struct stream *s)
{
	const uint64_t *head, *tail;
	uint64_t size, need = bench_rec_size(s->len) + 64;
	unsigned int spins = 0;

	if (s->impl == IMPL_EVRING) {
		struct evr_ctrl *c = evr_ring_get_ctrl(s->ev);

		head = &c->data_head;
		tail = &c->data_tail;
		size = c->data_size;
	} else {
		head = &s->ir->ctrl->data_head;
		tail = &s->ir->ctrl->data_tail;
		size = s->ir->size;
	}
	/* the writer's own head; acquire on tail: pairs with D in the reader (as A does) */
	while (__atomic_load_n(head, __ATOMIC_RELAXED) + need -
		       __atomic_load_n(tail, __ATOMIC_ACQUIRE) > size &&
	       !stopped(s))
		bench_backoff(&spins);
}

/*
 * Flight, after -ENOSPC: pages are freed only when the reader swaps one out, so wait until it
 * has taken about half a page of records more, or a while (then the retry may be refused again,
 * and counted again).
 */
static void wait_flight(struct stream *s)
{
	uint64_t c0 = __atomic_load_n(&s->consumed, __ATOMIC_RELAXED);
	uint64_t step = (FLIGHT_PAGE - 32) / bench_rec_size(s->len) / 2 + 1;
	unsigned int spins = 0;

	while (__atomic_load_n(&s->consumed, __ATOMIC_RELAXED) - c0 < step && spins < (1u << 16) &&
	       !stopped(s))
		bench_backoff(&spins);
}

static void *writer(void *arg)
{
	struct stream *s = arg;
	const uint32_t type = EVR_TYPE_APP + BENCH_ID;
	size_t len = s->len;
	uint64_t seq, enospc = 0;
	int err = 0;

	s->wpinned = bench_pin(s->wcpu) == 0;
	for (seq = 0; seq < AHEAD; seq++)
		stamp(src_buf(s, seq), len, seq);
	start_line(s);
	s->wpreempted = bench_preemptions();
	s->t0 = bench_now_ns();
	for (seq = 0; seq < s->n; seq++) {
		stamp(src_buf(s, seq + AHEAD), len, seq + AHEAD);
		for (;;) {
			if (s->impl == IMPL_EVRING)
				err = evr_ring_write(s->ev, BENCH_ID, src_buf(s, seq), len);
			else if (s->impl == IMPL_IDEAL)
				err = ideal_write(&s->iw, type, src_buf(s, seq), len);
			else
				err = evr_flight_write(s->fl[s->impl == IMPL_FLIGHT_OW], BENCH_ID,
						       src_buf(s, seq), len);
			if (err != -ENOSPC)
				break;
			/* full: wait for the reader, nothing is dropped */
			enospc++;
			if (stopped(s))
				return NULL;
			if (is_flight(s->impl))
				wait_flight(s);
			else
				wait_room(s);
		}
		if (err) {
			snprintf(s->werr, sizeof(s->werr), "write of record %llu: %d",
				 (unsigned long long)seq, err);
			__atomic_store_n(&s->stop, 1, __ATOMIC_RELAXED);
			return NULL;
		}
	}
	s->tw1 = bench_now_ns();
	s->enospc = enospc;
	s->wpreempted = bench_preemptions() - s->wpreempted;
	__atomic_store_n(&s->wdone, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *reader_fail(struct stream *s, uint64_t seq, const char *what, long v)
{
	snprintf(s->rerr, sizeof(s->rerr), "record %llu: %s (%ld)", (unsigned long long)seq, what,
		 v);
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELAXED);
	return NULL;
}

/*
 * A reader that found nothing new: BENCH_W2_IDLE pause instructions first (default none: poll
 * again at once), then the usual backoff. The same for every impl of a run.
 */
static void reader_idle(const struct stream *s, unsigned int *spins)
{
	for (long i = 0; i < s->idle; i++)
		cpu_relax();
	bench_backoff(spins);
}

static void *read_evring(struct stream *s)
{
	struct evr_record rec;
	struct evr_lost_body lost;
	uint64_t expect = 0;
	unsigned int spins = 0;
	int avail, k;

	while (expect < s->n) {
		avail = evr_reader_begin(s->rd);
		if (avail < 0)
			return reader_fail(s, expect, "evr_reader_begin", avail);
		if (!avail) {
			if (stopped(s))
				return NULL;
			reader_idle(s, &spins);
			continue;
		}
		while ((k = evr_reader_next(s->rd, &rec)) == 1) {
			if (!rec.is_app && rec.type == EVR_TYPE_LOST && rec.len >= sizeof(lost)) {
				/* refused writes the writer retried: counted, not missing */
				memcpy(&lost, rec.data, sizeof(lost));
				s->lost_seen += lost.lost;
				continue;
			}
			if (!rec.is_app || rec.type != BENCH_ID || rec.len != s->len)
				return reader_fail(s, expect, "unexpected record type or length",
						   (long)rec.type);
			if (!stamped(rec.data, s->len, expect))
				return reader_fail(s, expect, "wrong sequence number", 0);
			expect++;
		}
		if (k < 0)
			return reader_fail(s, expect, "evr_reader_next", k);
		evr_reader_end(s->rd);
	}
	return NULL;
}

/*
 * Flight: produce/consume reads every sequence number in order; overwrite mode reads increasing
 * ones until the writer is done and the ring is empty, the LOST records adding up to the gaps.
 */
static void *read_flight(struct stream *s)
{
	struct evr_flight *f = s->fl[s->impl == IMPL_FLIGHT_OW];
	const int ow = s->impl == IMPL_FLIGHT_OW;
	struct evr_lost_body lost;
	struct evr_record rec;
	uint64_t expect = 0, seq;
	int64_t bal = 0; /* overwritten records the LOST records announced, less those skipped */
	unsigned int spins = 0;
	int k, done = 0;

	while (ow ? 1 : expect < s->n) {
		k = evr_flight_read(f, &rec);
		if (k < 0)
			return reader_fail(s, expect, "evr_flight_read", k);
		if (!k) {
			if (done)
				break; /* empty after the writer's last record */
			if (ow && __atomic_load_n(&s->wdone, __ATOMIC_ACQUIRE)) {
				done = 1; /* one more pass: what was committed before wdone */
				continue;
			}
			if (stopped(s))
				return NULL;
			reader_idle(s, &spins);
			continue;
		}
		if (!rec.is_app && rec.type == EVR_TYPE_LOST && rec.len >= sizeof(lost)) {
			memcpy(&lost, rec.data, sizeof(lost));
			if (lost.causes & EVR_LOST_OVERWRITTEN) {
				s->ow_seen += lost.lost;
				bal += (int64_t)lost.lost;
			} else {
				s->lost_seen += lost.lost; /* refused, then retried */
			}
			continue;
		}
		if (!rec.is_app || rec.type != BENCH_ID || rec.len != s->len)
			return reader_fail(s, expect, "unexpected record type or length",
					   (long)rec.type);
		memcpy(&seq, rec.data, sizeof(seq));
		if (!stamped(rec.data, s->len, seq))
			return reader_fail(s, expect, "torn record", 0);
		s->nread++;
		/* not fatal, counted and reported: the figure still says what the ring did */
		if (seq < expect) {
			if (!s->stale++)
				fprintf(stderr,
					"bench: W2 %s payload=%zu: record %llu again after %llu\n",
					impl_names[s->impl], s->len, (unsigned long long)seq,
					(unsigned long long)expect - 1);
			continue;
		}
		if (!ow && seq != expect) {
			if (!s->unannounced++)
				fprintf(stderr,
					"bench: W2 %s payload=%zu: record %llu after %llu\n",
					impl_names[s->impl], s->len, (unsigned long long)seq,
					(unsigned long long)expect - 1);
		}
		/*
		 * Overwrite mode: a LOST record can come a page before or after the gap it
		 * explains (docs/design.md 19.4, 19.7); count the gaps it did not match there,
		 * and require the sums to agree at the end.
		 */
		if (ow && seq != expect) {
			bal -= (int64_t)(seq - expect);
			if (bal)
				s->late++;
		}
		expect = seq + 1;
		__atomic_store_n(&s->consumed, s->nread, __ATOMIC_RELAXED);
	}
	if (ow && expect != s->n)
		return reader_fail(s, expect, "the newest records never arrived", (long)s->n);
	if (bal) {
		fprintf(stderr, "bench: W2 %s payload=%zu: LOST records said %lld more than the "
			"sequence gaps\n", impl_names[s->impl], s->len, (long long)bal);
		s->unannounced += (uint64_t)(bal < 0 ? -bal : bal);
	}
	return NULL;
}

static void *read_ideal(struct stream *s)
{
	const uint32_t type = EVR_TYPE_APP + BENCH_ID;
	const size_t rec = bench_rec_size(s->len);
	const struct evr_record_header *h;
	uint64_t expect = 0;
	unsigned int spins = 0;

	while (expect < s->n) {
		if (!ideal_read_begin(&s->ird)) {
			if (stopped(s))
				return NULL;
			reader_idle(s, &spins);
			continue;
		}
		while ((h = ideal_read_next(&s->ird))) {
			if (h->type != type || h->size != rec)
				return reader_fail(s, expect, "unexpected record type or size",
						   (long)h->size);
			if (!stamped((const uint8_t *)(h + 1), s->len, expect))
				return reader_fail(s, expect, "wrong sequence number", 0);
			expect++;
		}
		ideal_read_end(&s->ird);
	}
	return NULL;
}

static void *reader(void *arg)
{
	struct stream *s = arg;
	void *ret;

	s->rpinned = bench_pin(s->rcpu) == 0;
	start_line(s);
	s->rpreempted = bench_preemptions();
	ret = s->impl == IMPL_EVRING ? read_evring(s)
	      : s->impl == IMPL_IDEAL ? read_ideal(s)
				      : read_flight(s);
	s->t1 = bench_now_ns();
	s->rpreempted = bench_preemptions() - s->rpreempted;
	return ret;
}

static uint64_t flight_stale[NR_IMPLS], flight_unannounced[NR_IMPLS];

/* One run: both threads, all records. Returns Mrec/s. */
static double run_once(struct stream *s, int *pinned)
{
	pthread_t w, r;
	int err;

	struct evr_flight_stats st0 = { .sz = sizeof(st0) }, st1 = { .sz = sizeof(st1) };
	struct evr_flight *f = is_flight(s->impl) ? s->fl[s->impl == IMPL_FLIGHT_OW] : NULL;

	s->ready = 0;
	s->stop = 0;
	s->wdone = 0;
	s->enospc = s->lost_seen = 0;
	s->consumed = s->nread = s->ow_seen = s->stale = s->unannounced = s->late = 0;
	if (f)
		evr_flight_get_stats(f, &st0);
	s->werr[0] = s->rerr[0] = 0;
	if (s->impl == IMPL_IDEAL) {
		ideal_writer_init(&s->iw, s->ir);
		ideal_reader_init(&s->ird, s->ir);
	}
	err = pthread_create(&r, NULL, reader, s);
	if (!err)
		err = pthread_create(&w, NULL, writer, s);
	if (err)
		bench_die("pthread_create: %s", strerror(err));
	pthread_join(w, NULL);
	pthread_join(r, NULL);
	if (s->werr[0] || s->rerr[0])
		bench_die("W2 %s payload=%zu: %s%s%s", impl_names[s->impl], s->len, s->werr,
			  s->werr[0] && s->rerr[0] ? "; " : "", s->rerr);
	if (s->impl == IMPL_EVRING && s->lost_seen != s->enospc)
		bench_die("W2 evring payload=%zu: %llu writes refused, LOST records say %llu",
			  s->len, (unsigned long long)s->enospc, (unsigned long long)s->lost_seen);
	*pinned = s->wpinned && s->rpinned;
	if (f) {
		evr_flight_get_stats(f, &st1);
		s->ow_ring = st1.overwritten - st0.overwritten;
		/* the ring counts every refusal; LOST records may trail the last record read */
		flight_stale[s->impl] += s->stale;
		flight_unannounced[s->impl] += s->unannounced;
		if (st1.lost - st0.lost != s->enospc || s->lost_seen > s->enospc ||
		    s->nread - s->stale + s->ow_ring != s->n || s->ow_seen > s->ow_ring)
			fprintf(stderr,
				"bench: W2 %s payload=%zu: WRONG: %llu refused, ring counted %llu, "
				"LOST said %llu; %llu read (%llu again) + %llu overwritten (LOST "
				"said %llu) of %llu\n",
				impl_names[s->impl], s->len, (unsigned long long)s->enospc,
				(unsigned long long)(st1.lost - st0.lost),
				(unsigned long long)s->lost_seen, (unsigned long long)s->nread,
				(unsigned long long)s->stale, (unsigned long long)s->ow_ring,
				(unsigned long long)s->ow_seen, (unsigned long long)s->n);
		if (s->impl == IMPL_FLIGHT_OW)
			return (double)s->nread * 1e3 / (double)(s->t1 - s->t0);
	}
	return (double)s->n * 1e3 / (double)(s->t1 - s->t0);
}

static uint64_t disturbed[NR_IMPLS];

/*
 * A run during which either thread was preempted measured the machine's other work as much as
 * the ring: run again, up to @attempts in all, and keep the first undisturbed run, or the fastest
 * if none was (the same rule for every impl). Returns Mrec/s.
 */
static double run(struct stream *s, int *pinned, long attempts)
{
	double best = 0;

	for (long a = 0; a < attempts || a == 0; a++) {
		double v = run_once(s, pinned);

		if (!s->wpreempted && !s->rpreempted)
			return v;
		disturbed[s->impl]++;
		best = v > best ? v : best;
	}
	return best;
}

/* Every refusal the ring counted reached the reader as a LOST record; nothing was corrupt. */
static void check_accounting(struct stream *s)
{
	struct evr_ring_stats rs = { .sz = sizeof(rs) };
	struct evr_reader_stats st = { .sz = sizeof(st) };

	evr_ring_get_stats(s->ev, &rs);
	evr_reader_get_stats(s->rd, &st);
	if (rs.lost_full != st.lost || rs.lost_paused || st.bad_headers || st.bytes_skipped)
		bench_die("W2 evring: ring counted %llu refusals, reader saw %llu, %llu bad",
			  (unsigned long long)rs.lost_full, (unsigned long long)st.lost,
			  (unsigned long long)st.bad_headers);
}

static uint64_t enospc[NR_IMPLS][BENCH_MAX_PAYLOADS];

/* One figure of one round (round -1 warms up and is not reported). */
static void measure(struct stream *s, int round, uint64_t ring, uint64_t bytes, long attempts)
{
	static int warned;
	char extra[224];
	const char *wl;
	int pinned;
	double v;

	v = run(s, &pinned, attempts);
	if (!pinned && !warned++)
		fprintf(stderr, "bench: W2: could not pin to CPUs %d and %d, running unpinned\n",
			s->wcpu, s->rcpu);
	if (round < 0)
		return;
	wl = s->idle ? "W2-paced" : "W2";
	if (s->impl == IMPL_FLIGHT_OW) {
		/* the reader's rate, the writer's, and the share the reader never saw */
		snprintf(extra, sizeof(extra),
			 "ring=%llu page=%u bytes=%llu records=%llu onfull=overwrite reread=%llu "
			 "unannounced=%llu late=%llu idle=%ld pinned=%d",
			 (unsigned long long)ring, FLIGHT_PAGE, (unsigned long long)bytes,
			 (unsigned long long)s->n, (unsigned long long)s->stale,
			 (unsigned long long)s->unannounced, (unsigned long long)s->late, s->idle,
			 pinned);
		bench_sample(wl, "evring-flight-ow", s->len, round, v, "Mrec/s-read", extra);
		bench_sample(wl, "evring-flight-ow-write", s->len, round,
			     (double)s->n * 1e3 / (double)(s->tw1 - s->t0), "Mrec/s", extra);
		bench_sample(wl, "evring-flight-ow-overwritten", s->len, round,
			     100.0 * (double)s->ow_ring / (double)s->n, "%", extra);
		return;
	}
	if (s->impl == IMPL_FLIGHT_PC)
		snprintf(extra, sizeof(extra),
			 "ring=%llu page=%u bytes=%llu records=%llu onfull=wait-retry reread=%llu "
			 "unannounced=%llu idle=%ld pinned=%d",
			 (unsigned long long)ring, FLIGHT_PAGE, (unsigned long long)bytes,
			 (unsigned long long)s->n, (unsigned long long)s->stale,
			 (unsigned long long)s->unannounced, s->idle, pinned);
	else
		snprintf(extra, sizeof(extra),
			 "ring=%llu bytes=%llu records=%llu onfull=wait-retry missing=0 idle=%ld "
			 "pinned=%d",
			 (unsigned long long)ring, (unsigned long long)bytes,
			 (unsigned long long)s->n, s->idle, pinned);
	bench_sample(wl, impl_names[s->impl], s->len, round, v, "Mrec/s", extra);
	enospc[s->impl][s->payload_idx] += s->enospc;
}

int main(void)
{
	size_t payloads[BENCH_MAX_PAYLOADS], max_len = 0;
	int nr_payloads = bench_payloads(payloads);
	long rounds = bench_knob("BENCH_W2_ROUNDS", 15, 3);
	long attempts = bench_knob("BENCH_W2_ATTEMPTS", 3, 1);
	uint64_t ring = (uint64_t)bench_knob("BENCH_W2_RING", 1 << 20, 1 << 20);
	uint64_t bytes = (uint64_t)bench_knob("BENCH_W2_BYTES", 64 << 20, 4 << 20);
	struct evr_ring_opts o = { .sz = sizeof(o), .data_size = ring, .flags = EVR_RING_MIRROR };
	struct stream *s;
	struct ideal_ring ir;
	struct evr_session *fs[2];
	struct evr_ctrl *c;
	int err;

	s = aligned_alloc(64, (sizeof(*s) + 63) & ~(size_t)63);
	if (!s)
		bench_die("out of memory");
	memset(s, 0, sizeof(*s));
	s->wcpu = (int)bench_knob("BENCH_CPU_WRITER", 0, 0);
	s->rcpu = (int)bench_knob("BENCH_CPU_READER", 1, 1);
	s->idle = bench_knob("BENCH_W2_IDLE", 0, 0);
	for (int i = 0; i < nr_payloads; i++)
		max_len = payloads[i] > max_len ? payloads[i] : max_len;
	if (bench_rec_size(max_len) * 4 > ring)
		bench_die("BENCH_W2_RING=%llu is too small for %zu-byte payloads",
			  (unsigned long long)ring, max_len);

	err = evr_ring_create(&o, &s->ev);
	if (!err)
		err = evr_reader_create(s->ev, NULL, &s->rd);
	if (err)
		bench_die("evring ring of %llu bytes: %s", (unsigned long long)ring,
			  evr_strerror(err));
	err = ideal_ring_create(&ir, ring);
	if (err)
		bench_die("ideal_ring_create(%llu): %s", (unsigned long long)ring, strerror(-err));
	s->ir = &ir;
	for (int m = 0; m < 2; m++) {
		struct evr_record rec;

		bench_flight_open(ring, FLIGHT_PAGE, m, &fs[m], &s->fl[m]);
		/* fault the pages in: two laps of writes, consumed as they go */
		for (uint64_t w = 0; w < 2 * ring / 16; w++)
			if (evr_flight_write(s->fl[m], BENCH_ID, &w, sizeof(w)))
				while (evr_flight_read(s->fl[m], &rec) == 1)
					;
		while (evr_flight_read(s->fl[m], &rec) == 1)
			;
	}
	s->stride = (max_len + 63) & ~(size_t)63;
	s->src = aligned_alloc(64, NSRC * s->stride);
	if (!s->src)
		bench_die("out of memory");
	bench_pretouch(s->src, NSRC * s->stride);
	c = evr_ring_get_ctrl(s->ev);
	bench_pretouch((uint8_t *)c + c->data_offset, 2 * ring);
	bench_pretouch(ir.data, 2 * ring);

	for (int round = -1; round < rounds; round++) {
		for (int pi = 0; pi < nr_payloads; pi++) {
			s->len = payloads[pi];
			s->payload_idx = pi;
			s->n = bytes / bench_rec_size(s->len);
			if (!s->n)
				s->n = 1;
			for (int j = 0; j < NR_IMPLS; j++) {
				s->impl = (j + round + 1) % NR_IMPLS;
				if (bench_impl_wanted(impl_names[s->impl]))
					measure(s, round, ring, bytes, attempts);
			}
		}
	}
	check_accounting(s);
	for (int i = 0; i < NR_IMPLS; i++)
		if (disturbed[i])
			fprintf(stderr, "bench: W2 %s: %llu runs preempted\n", impl_names[i],
				(unsigned long long)disturbed[i]);
	for (int i = 0; i < NR_IMPLS; i++)
		if (flight_stale[i] || flight_unannounced[i])
			fprintf(stderr,
				"bench: W2 %s: WRONG: %llu records read again, %llu sequence "
				"skipped without LOST records to match by the end\n",
				impl_names[i], (unsigned long long)flight_stale[i],
				(unsigned long long)flight_unannounced[i]);
	for (int pi = 0; pi < nr_payloads && rounds > 0; pi++)
		for (int i = 0; i < NR_IMPLS; i++)
			fprintf(stderr, "bench: W2 %s payload=%zu: full %.1f times per run\n",
				impl_names[i], payloads[pi],
				(double)enospc[i][pi] / (double)rounds);

	evr_reader_destroy(s->rd);
	evr_ring_destroy(s->ev);
	evr_session_destroy(fs[0]);
	evr_session_destroy(fs[1]);
	ideal_ring_destroy(&ir);
	free(s->src);
	free(s);
	return 0;
}
