// SPDX-License-Identifier: MIT
/*
 * Thread churn on a per-thread channel with few slots: thousands of short-lived threads, a few
 * alive at once and now and then a burst of more than there are slots, each writing a few
 * records (some with their very first write, the slot claim, in a signal handler), while the
 * reader drains and recycles the slots of threads that exited. At the end: every record is read
 * or reported lost (exactly, per stream, and the very sequence numbers refused), a slot never
 * held two threads' records at once nor a thread two slots, no slot is left owned, every claim
 * was recycled, and the writes that found no slot were counted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evring.h"
#include "oracle.h"
#include "test.h"

#define SLOTS 16u
#define LEVELS 2 /* the thread, its signal handler */
#define MAX_RECS 256 /* per stream */
#define WINDOW 32 /* threads alive at most */

static const struct t_lenmix mix = { 96, 600, 32 };

struct wstream {
	struct t_wstream w;
	uint64_t lost_hash;
};

struct rstream {
	uint64_t bits[MAX_RECS / 64];
	uint64_t read;
	int ring; /* the ring of the last record, -1 */
	uint64_t last_seq;
};

static struct run {
	struct evr_chan *ch;
	struct evr_chan_reader *crd;
	uint32_t nthreads, nstreams;
	int unordered;
	uint64_t seed;
	int done; /* atomic */
	int hold; /* atomic: a burst's threads keep their slots until main lets them go */
	int werr; /* atomic */
	uint32_t werr_stream;
	uint64_t handler_first; /* threads whose first write was in a handler */

	struct wstream *ws; /* [thread * LEVELS + level]: its level only */
	struct rstream *rs; /* reader */
	int32_t slot_cur[SLOTS]; /* reader: the thread whose records slot i holds now, -1 */
	int32_t *thread_slot; /* reader: the slot a thread's records were in, -1 */
	uint8_t *thread_closed; /* reader: another thread's records followed in its slot */
	uint64_t read, lost, lost_records, ring_app[SLOTS + 1], ring_lost[SLOTS + 1];
} R;

static __thread uint32_t tls_thread;
static __thread int tls_in;

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "chan-churn: FAIL [%s]: ", R.unordered ? "unordered" : "merged");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nchan-churn: replay with EVR_SEED=0x%016" PRIx64 "\n", t_seed);
	fflush(stdout);
	fflush(stderr);
	_exit(T_FAIL);
}

static inline uint64_t seq_hash(uint32_t stream, uint64_t seq)
{
	return t_mix(((uint64_t)stream << 40) ^ seq ^ 0x6c6f7374ull);
}

static void note_werr(uint32_t stream, int err)
{
	int zero = 0;

	if (__atomic_compare_exchange_n(&R.werr, &zero, err, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		__atomic_store_n(&R.werr_stream, stream, __ATOMIC_RELAXED);
}

/* Context: the thread or its handler; async-signal-safe. */
static void emit(uint32_t level)
{
	uint32_t stream = tls_thread * LEVELS + level;
	struct wstream *w = &R.ws[stream];
	uint64_t seq = w->w.next_seq;
	uint32_t len = t_payload_len(&mix, R.seed, stream, seq);
	uint8_t buf[600];
	int err;

	if (seq >= MAX_RECS) {
		note_werr(stream, -E2BIG);
		return;
	}
	t_payload_fill(buf, len, R.seed, stream, seq);
	err = evr_chan_write(R.ch, stream, buf, len);
	if (err == -ENOSPC)
		w->lost_hash += seq_hash(stream, seq);
	err = t_wstream_done(&w->w, err);
	if (err)
		note_werr(stream, err);
}

static void on_signal(int sig)
{
	int saved = errno;

	if (tls_in) {
		emit(1);
		if (seq_hash(tls_thread, 7) & 1)
			emit(1);
	}
	errno = saved;
}

static void *thread_main(void *arg)
{
	uint32_t idx = (uint32_t)(uintptr_t)arg;
	uint64_t r = t_mix(R.seed ^ ((uint64_t)idx << 20));
	uint32_t n = 5 + (uint32_t)(r % 120), sig_at = UINT32_MAX;
	sigset_t set;
	int err;

	tls_thread = idx;
	tls_in = 1;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	if ((r >> 8) % 3 == 0) {
		/* the first write, and so the slot claim, happens in the handler */
		__atomic_fetch_add(&R.handler_first, 1, __ATOMIC_RELAXED);
		raise(SIGUSR1);
	} else if ((r >> 8) % 3 == 1) {
		sig_at = (uint32_t)(r >> 16) % n;
	}
	for (uint32_t i = 0; i < n; i++) {
		emit(0);
		while (i == 0 && __atomic_load_n(&R.hold, __ATOMIC_ACQUIRE)) {
			struct timespec ts = { 0, 50000 };

			nanosleep(&ts, NULL);
		}
		if (i == sig_at)
			raise(SIGUSR1);
		if ((r >> (20 + i % 32)) & 1 && i % 16 == 15)
			sched_yield();
	}
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	tls_in = 0;
	/* report our losses; retry while the reader makes room */
	for (double t0 = t_now(); (err = evr_chan_flush(R.ch)) == -ENOSPC;) {
		if (t_now() - t0 > 20) {
			err = -ETIMEDOUT;
			break;
		}
		sched_yield();
	}
	if (err < 0)
		note_werr(idx * LEVELS, err);
	return NULL; /* the destructor orphans the slot; the reader recycles it */
}

static void check(const struct evr_record *rec)
{
	struct t_payload_hdr h;
	struct rstream *s;
	uint32_t thread;
	long off;

	if (rec->ring > SLOTS)
		die("record from ring %u", rec->ring);
	if (!rec->is_app) {
		struct evr_lost_body b;

		if (rec->type != EVR_TYPE_LOST || !(rec->hdr->misc & EVR_MISC_EVRING) ||
		    rec->len < sizeof(b))
			die("ring %u: unexpected record type %u len %u", rec->ring, rec->type,
			    rec->len);
		memcpy(&b, rec->data, sizeof(b));
		if (!b.lost || b.id != rec->ring || b.causes != EVR_LOST_FULL)
			die("ring %u: bad LOST record (lost %" PRIu64 ", id %" PRIu64 ")",
			    rec->ring, b.lost, b.id);
		R.lost += b.lost;
		R.lost_records++;
		R.ring_lost[rec->ring] += b.lost;
		return;
	}
	if (rec->type >= R.nstreams || rec->len < sizeof(h))
		die("ring %u: record id %u len %u", rec->ring, rec->type, rec->len);
	memcpy(&h, rec->data, sizeof(h));
	if (h.stream != rec->type || h.seq >= MAX_RECS)
		die("ring %u: id %u carries stream %u seq %" PRIu64, rec->ring, rec->type, h.stream,
		    h.seq);
	if (rec->len != t_payload_len(&mix, R.seed, h.stream, h.seq) || h.len != rec->len)
		die("stream %u seq %" PRIu64 ": length %u", h.stream, h.seq, rec->len);
	off = t_payload_diff(rec->data, rec->len, R.seed, h.stream, h.seq);
	if (off >= 0)
		die("stream %u seq %" PRIu64 " (ring %u): payload byte %ld differs", h.stream,
		    h.seq, rec->ring, off);
	if (!rec->has_time)
		die("stream %u seq %" PRIu64 ": no time", h.stream, h.seq);
	s = &R.rs[h.stream];
	if (s->bits[h.seq / 64] & (1ull << (h.seq % 64)))
		die("stream %u: seq %" PRIu64 " delivered twice", h.stream, h.seq);
	s->bits[h.seq / 64] |= 1ull << (h.seq % 64);
	if (s->ring == (int)rec->ring && h.seq <= s->last_seq)
		die("stream %u in ring %u: seq %" PRIu64 " after %" PRIu64, h.stream, rec->ring,
		    h.seq, s->last_seq);
	s->ring = (int)rec->ring;
	s->last_seq = h.seq;
	s->read++;
	R.read++;
	R.ring_app[rec->ring]++;
	thread = h.stream / LEVELS;
	if (rec->ring < SLOTS) {
		int32_t cur = R.slot_cur[rec->ring];

		/* one thread at a time per slot, one slot per thread, never back to an old one */
		if (cur != (int32_t)thread) {
			if (cur >= 0)
				R.thread_closed[cur] = 1;
			R.slot_cur[rec->ring] = (int32_t)thread;
		}
		if (R.thread_closed[thread])
			die("slot %u: thread %u's records again after another thread's", rec->ring,
			    thread);
		if (R.thread_slot[thread] < 0)
			R.thread_slot[thread] = (int32_t)rec->ring;
		if (R.thread_slot[thread] != (int32_t)rec->ring)
			die("thread %u has records in slots %d and %u", thread,
			    R.thread_slot[thread], rec->ring);
	}
}

static void *reader_main(void *arg)
{
	struct evr_record rec;
	int idle = 0;

	for (;;) {
		int done = __atomic_load_n(&R.done, __ATOMIC_ACQUIRE);
		int k = evr_chan_reader_next(R.crd, &rec, done);

		if (k < 0)
			die("evr_chan_reader_next: %s", evr_strerror(k));
		if (k) {
			check(&rec);
			idle = 0;
			continue;
		}
		if (done)
			break;
		if (++idle % 8 == 0) {
			struct timespec ts = { 0, 20000 };

			nanosleep(&ts, NULL);
		} else {
			sched_yield();
		}
	}
	return NULL;
}

static void run(uint32_t nthreads, int unordered, uint64_t seed)
{
	EVR_OPTS(evr_chan_opts, co, .policy = EVR_CHAN_THREAD, .nr_slots = SLOTS,
		 .data_size = 1u << 14);
	EVR_OPTS(evr_chan_reader_opts, ro, .flags = unordered ? EVR_CHAN_READ_UNORDERED : 0);
	struct evr_chan_stats st = { .sz = sizeof(st) };
	pthread_t win[WINDOW], reader;
	uint32_t head = 0, tail = 0, max_alive = 0;
	uint64_t attempted = 0, wlost = 0, claims = 0;
	double start = t_now();
	int err;

	memset(&R, 0, sizeof(R));
	R.nthreads = nthreads;
	R.nstreams = nthreads * LEVELS;
	R.unordered = unordered;
	R.seed = seed;
	R.ws = calloc(R.nstreams, sizeof(*R.ws));
	R.rs = calloc(R.nstreams, sizeof(*R.rs));
	R.thread_slot = malloc(nthreads * sizeof(*R.thread_slot));
	R.thread_closed = calloc(nthreads, 1);
	if (!R.ws || !R.rs || !R.thread_slot || !R.thread_closed)
		die("out of memory");
	memset(R.thread_slot, 0xff, nthreads * sizeof(*R.thread_slot));
	memset(R.slot_cur, 0xff, sizeof(R.slot_cur));
	for (uint32_t i = 0; i < R.nstreams; i++)
		R.rs[i].ring = -1;
	err = evr_chan_create(&co, &R.ch);
	if (err)
		die("evr_chan_create: %s", evr_strerror(err));
	err = evr_chan_reader_create(R.ch, &ro, &R.crd);
	if (err)
		die("evr_chan_reader_create: %s", evr_strerror(err));
	if (pthread_create(&reader, NULL, reader_main, NULL))
		die("pthread_create");
	for (uint32_t i = 0; i < nthreads && !__atomic_load_n(&R.werr, __ATOMIC_RELAXED); i++) {
		/* mostly a few at once; every 256 threads a burst of more than there are slots */
		uint32_t target = (i / 64) % 4 == 3 ? WINDOW : 4;

		/* a burst holds its first writes: more threads own (or want) a slot than exist */
		if (i % 256 == 192)
			__atomic_store_n(&R.hold, 1, __ATOMIC_RELEASE);
		if (head - tail >= target)
			__atomic_store_n(&R.hold, 0, __ATOMIC_RELEASE);
		while (head - tail >= target)
			pthread_join(win[tail++ % WINDOW], NULL);
		err = pthread_create(&win[head % WINDOW], NULL, thread_main, (void *)(uintptr_t)i);
		if (err == EAGAIN) {
			i--;
			if (head != tail)
				pthread_join(win[tail++ % WINDOW], NULL);
			continue;
		}
		if (err)
			die("pthread_create: %d", err);
		head++;
		if (head - tail > max_alive)
			max_alive = head - tail;
	}
	__atomic_store_n(&R.hold, 0, __ATOMIC_RELEASE);
	while (tail != head)
		pthread_join(win[tail++ % WINDOW], NULL);
	/* every thread has exited (destructors included): drain, then nothing may stay owned */
	__atomic_store_n(&R.done, 1, __ATOMIC_RELEASE);
	pthread_join(reader, NULL);
	if (R.werr)
		die("writer stream %u: unexpected %s (%d)", R.werr_stream, evr_strerror(R.werr),
		    R.werr);

	for (uint32_t i = 0; i < R.nstreams; i++) {
		const struct t_wstream *w = &R.ws[i].w;
		const struct rstream *s = &R.rs[i];
		uint64_t hash = 0;

		if (w->attempted != s->read + w->lost)
			die("stream %u: written %" PRIu64 " != read %" PRIu64 " + refused %" PRIu64,
			    i, w->attempted, s->read, w->lost);
		for (uint64_t q = 0; q < MAX_RECS; q++) {
			int have = !!(s->bits[q / 64] & (1ull << (q % 64)));

			if (have && q >= w->next_seq)
				die("stream %u: seq %" PRIu64 " read, never written", i, q);
			if (!have && q < w->next_seq)
				hash += seq_hash(i, q);
		}
		if (hash != R.ws[i].lost_hash)
			die("stream %u: the sequence numbers missing are not those refused", i);
		attempted += w->attempted;
		wlost += w->lost;
	}
	if (evr_chan_reader_get_stats(R.crd, &st))
		die("evr_chan_reader_get_stats");
	if (attempted != R.read + st.lost || st.lost != R.lost || wlost != R.lost ||
	    st.records != R.read + R.lost_records || st.bad)
		die("conservation: written %" PRIu64 " (refused %" PRIu64 ") != read %" PRIu64
		    " + lost %" PRIu64 " (LOST records: %" PRIu64 "), records %" PRIu64
		    ", bad %" PRIu64,
		    attempted, wlost, R.read, st.lost, R.lost, st.records, st.bad);
	for (uint32_t i = 0; i < SLOTS; i++) {
		struct evr_ring *r;
		const struct evr_ctrl *c;

		if (evr_session_get_ring(evr_chan_get_session(R.ch), i, &r))
			die("evr_session_get_ring");
		c = evr_ring_get_ctrl(r);
		claims += __atomic_load_n(&c->slot_gen, __ATOMIC_RELAXED);
		expect_true(__atomic_load_n(&c->slot_state, __ATOMIC_ACQUIRE) == EVR_SLOT_FREE,
			    "slot %u left in state %u (writer tid %d) after every thread exited "
			    "and the reader drained",
			    i, c->slot_state, c->writer_tid);
	}
	expect_eq(st.slots_owned, 0);
	expect_true(st.recycled > 0 && st.recycled == claims,
		    "%" PRIu64 " slot claims, %" PRIu64 " recycled", claims, st.recycled);
	expect_true(st.fallback_writes == R.ring_app[SLOTS] + R.ring_lost[SLOTS],
		    "fallback_writes %" PRIu64 " != records in the fallback %" PRIu64
		    " + lost there %" PRIu64,
		    st.fallback_writes, R.ring_app[SLOTS], R.ring_lost[SLOTS]);
	expect_true(st.fallback_writes > 0, "slots never ran out (max %u threads alive)",
		    max_alive);
	printf("chan-churn: %-9s %5.2fs %u threads (up to %u alive, %" PRIu64
	       " claimed in a handler): written %" PRIu64 " read %" PRIu64 " lost %" PRIu64
	       ", fallback writes %" PRIu64 ", %" PRIu64 " claims, %" PRIu64 " recycled\n",
	       unordered ? "unordered" : "merged", t_now() - start, nthreads, max_alive,
	       R.handler_first, attempted, R.read, R.lost, st.fallback_writes, claims,
	       st.recycled);
	evr_chan_reader_destroy(R.crd);
	evr_chan_destroy(R.ch);
	free(R.ws);
	free(R.rs);
	free(R.thread_slot);
	free(R.thread_closed);
}

int main(void)
{
	struct sigaction sa;
	sigset_t set;
	uint32_t n;

	t_init("chan-churn");
#ifdef T_TSAN
	n = t_long() ? 20000 : 1000;
#else
	n = t_long() ? 100000 : 3000;
#endif
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL))
		die("sigaction");
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	printf("chan-churn: seed 0x%016" PRIx64 "\n", t_seed);
	run(n, 0, t_mix(t_seed));
	run(n, 1, t_mix(t_seed + 1));
	return t_done();
}
