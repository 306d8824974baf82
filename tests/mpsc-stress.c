// SPDX-License-Identifier: MIT
/*
 * Stress oracle of the multi-producer ring: eight writer threads on two CPUs, each interrupted by
 * SIGUSR1/SIGUSR2 handlers that also write (reservations nest within a thread), a concurrent
 * reader that re-derives every byte, and exact conservation at the end. A stepping sweep then
 * interrupts one write at every instruction with a handler that writes and drains.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "evring.h"
#include "oracle.h"
#include "test.h"

/* The sweep needs the x86 trap flag, and signals delivered where they land (not under TSAN). */
#if defined(__x86_64__) && !defined(T_TSAN)
#define T_STEP 1
#endif

#define WRITERS 8
#define LEVELS 3 /* the thread, a handler, a handler interrupting that handler */
#define STREAMS (WRITERS * LEVELS) /* stream = writer * LEVELS + level */
#define SCRATCH 65536

struct config {
	const char *name;
	uint64_t data_size;
	struct t_lenmix mix;
	uint32_t gap_ns; /* sender's pause between two signals (round robin over the writers) */
	uint32_t timer_ns; /* each writer's own timer sends it SIGUSR2 this often (0: none) */
	uint32_t raise_every; /* a level-1 handler raises the other signal under a reservation */
	uint32_t backoff; /* a writer whose record was lost yields (else it retries at once) */
	uint32_t weight; /* share of the time budget */
};

static const struct config configs[] = {
	{ "small-64k", 1u << 16, { 200, 6000, 64 }, 4000, 200000, 4, 0, 2 },
	{ "page-4k", 1u << 12, { 64, 600, 16 }, 8000, 300000, 4, 0, 1 },
	{ "backoff", 1u << 16, { 200, 6000, 64 }, 4000, 200000, 4, 1, 1 },
	{ "big-1m", 1u << 20, { 600, 30000, 128 }, 8000, 200000, 8, 1, 2 },
};
#define NR_CONFIGS (sizeof(configs) / sizeof(configs[0]))

/* One writer thread: its fields are touched by the thread and its handlers, main after join. */
struct writer {
	pthread_t th;
	uint32_t idx;
	timer_t timer;
	int have_timer;
	uint64_t rng[LEVELS];
	uint64_t got; /* signals handled */
	uint64_t raised;
	uint8_t scratch[LEVELS][SCRATCH];
};

static struct run {
	const struct config *cfg;
	struct evr_ring *ring;
	struct evr_ctrl *ctrl;
	uint64_t seed;

	int writers_ready; /* atomics */
	int stop_sender;
	int stop_writers;
	int writers_done;

	struct t_wstream w[STREAMS]; /* stream s: only its writer level touches it */
	struct writer *wr;
	uint64_t sent; /* sender thread */
	uint32_t max_depth; /* atomic max */
	uint64_t nested_discards; /* atomic: discards with a committed record inside */
	uint64_t pairs; /* atomic: two reservations of one stream finished out of order */
	uint64_t flushed; /* atomic: LOST records emitted by evr_ring_flush() */
	uint64_t roomy_enospc; /* atomic: -ENOSPC with the ring less than half full just after */
	int werr; /* first disallowed return in a writer, and where */
	uint32_t werr_stream;

	struct t_oracle o; /* reader thread; main after join */
	uint64_t last_pos; /* reader: position of the last record */
	uint64_t batches, stalls; /* reader: batches, batches that found the next header BUSY/0 */
} R;

static __thread struct writer *tls_w;
static __thread int tls_sig; /* the signal a level-1 handler is handling */
static __thread uint32_t tls_depth; /* handler nesting of this thread */

static const char *cur_name(void)
{
	return R.cfg ? R.cfg->name : "sweep";
}

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mpsc-stress: FAIL [%s]: ", cur_name());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nmpsc-stress: replay with EVR_SEED=0x%016" PRIx64 "\n", t_seed);
	fflush(stdout);
	fflush(stderr);
	_exit(T_FAIL);
}

static void note_werr(uint32_t stream, int err)
{
	int zero = 0;

	if (__atomic_compare_exchange_n(&R.werr, &zero, err, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		__atomic_store_n(&R.werr_stream, stream, __ATOMIC_RELAXED);
}

/*
 * ThreadSanitizer holds asynchronous signals back until the thread calls into an intercepted
 * function; give it such a point inside open reservations so that handlers still land there.
 */
static inline void signal_point(void)
{
#ifdef T_TSAN
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
}

enum how {
	EMIT_WRITE, /* evr_ring_write */
	EMIT_RESERVE, /* reserve, fill, commit */
	EMIT_DISCARD, /* reserve, fill, discard */
	EMIT_RAISE, /* reserve; the other signal's handler writes under it; commit */
	EMIT_RAISE_DISCARD, /* ... and discard: a discarded record with a committed one inside */
	EMIT_HOLD_DISCARD, /* reserve A; the same stream writes its next record; discard A */
	EMIT_PAIR, /* reserve A, B of the same stream; commit both in random order */
	EMIT_PAIR_DISCARD, /* reserve A (dropped), B; discard A and commit B in random order */
};

static void emit(uint32_t level, enum how how);

/* Fill and finish one reservation of @stream carrying @seq; the accounting is the caller's. */
static int fill(struct evr_slot *s, uint32_t stream, uint64_t seq, uint32_t len)
{
	if (s->len != len)
		return -EPROTO;
	t_payload_fill(s->data, len, R.seed, stream, seq);
	return 0;
}

static void done(uint32_t stream, int err)
{
	if (err == -ENOSPC) {
		/*
		 * Informative only (racy by nature): how full was the ring right after the refusal?
		 * A ring less than half full had no reason to refuse.
		 */
		uint64_t t = __atomic_load_n(&R.ctrl->data_tail, __ATOMIC_RELAXED);
		uint64_t h = __atomic_load_n(&R.ctrl->prod_head, __ATOMIC_RELAXED);

		if (h - t < R.cfg->data_size / 2)
			__atomic_fetch_add(&R.roomy_enospc, 1, __ATOMIC_RELAXED);
	}
	err = t_wstream_done(&R.w[stream], err);
	if (err)
		note_werr(stream, err);
}

/*
 * Emit the next record of this thread's stream at @level (= its handler nesting).
 * Context: a writer thread or one of its handlers; async-signal-safe.
 */
static void emit(uint32_t level, enum how how)
{
	struct writer *wr = tls_w;
	uint32_t stream = wr->idx * LEVELS + level;
	struct t_wstream *w = &R.w[stream];
	uint64_t seq = w->next_seq;
	uint32_t len = t_payload_len(&R.cfg->mix, R.seed, stream, seq);
	struct evr_slot a, b;
	int err, e2;

	switch (how) {
	case EMIT_WRITE:
		t_payload_fill(wr->scratch[level], len, R.seed, stream, seq);
		done(stream, evr_ring_write(R.ring, stream, wr->scratch[level], len));
		return;
	case EMIT_RESERVE:
	case EMIT_RAISE:
	case EMIT_DISCARD:
	case EMIT_RAISE_DISCARD:
		err = evr_ring_reserve(R.ring, stream, len, &a);
		if (err) {
			done(stream, err);
			return;
		}
		if ((err = fill(&a, stream, seq, len)))
			note_werr(stream, err);
		signal_point();
		if (how == EMIT_RAISE || how == EMIT_RAISE_DISCARD) {
			/* the other signal runs now, nested, under this reservation */
			wr->raised++;
			raise(tls_sig == SIGUSR1 ? SIGUSR2 : SIGUSR1);
		}
		if (how == EMIT_DISCARD || how == EMIT_RAISE_DISCARD) {
			if ((err = evr_ring_discard(R.ring, &a)))
				note_werr(stream, err);
			w->discarded++; /* the sequence number is used again */
			if (how == EMIT_RAISE_DISCARD)
				__atomic_fetch_add(&R.nested_discards, 1, __ATOMIC_RELAXED);
			return;
		}
		done(stream, evr_ring_commit(R.ring, &a));
		return;
	case EMIT_HOLD_DISCARD:
		/* A is given back; the record reserved after it, inside it, carries seq */
		err = evr_ring_reserve(R.ring, stream, 8 + len % 64, &a);
		if (err) {
			done(stream, err); /* seq lost with A: the nested one takes seq + 1 */
			return;
		}
		memset(a.data, 0xa5, a.len);
		signal_point();
		emit(level, (t_rand(&wr->rng[level]) & 1) ? EMIT_WRITE : EMIT_RESERVE);
		if ((err = evr_ring_discard(R.ring, &a)))
			note_werr(stream, err);
		w->discarded++;
		__atomic_fetch_add(&R.nested_discards, 1, __ATOMIC_RELAXED);
		return;
	case EMIT_PAIR:
	case EMIT_PAIR_DISCARD: {
		int drop = how == EMIT_PAIR_DISCARD;
		uint64_t seq_b = drop ? seq : seq + 1;
		uint32_t len_b = t_payload_len(&R.cfg->mix, R.seed, stream, seq_b);
		int b_first = t_rand(&wr->rng[level]) & 1;

		err = evr_ring_reserve(R.ring, stream, drop ? 16 : len, &a);
		if (err) {
			done(stream, err);
			return;
		}
		if (drop)
			memset(a.data, 0x5a, a.len);
		else if ((e2 = fill(&a, stream, seq, len)))
			note_werr(stream, e2);
		signal_point();
		e2 = evr_ring_reserve(R.ring, stream, len_b, &b);
		if (!e2 && (err = fill(&b, stream, seq_b, len_b)))
			note_werr(stream, err);
		signal_point();
		/* finish in either order: B's record still arrives after A's */
		if (!e2 && b_first && (err = evr_ring_commit(R.ring, &b)))
			note_werr(stream, err);
		signal_point();
		err = drop ? evr_ring_discard(R.ring, &a) : evr_ring_commit(R.ring, &a);
		if (err)
			note_werr(stream, err);
		if (drop)
			w->discarded++;
		else
			done(stream, 0);
		if (!e2 && !b_first && (err = evr_ring_commit(R.ring, &b)))
			note_werr(stream, err);
		done(stream, e2);
		if (b_first)
			__atomic_fetch_add(&R.pairs, 1, __ATOMIC_RELAXED);
		return;
	}
	}
}

static void atomic_max32(uint32_t *p, uint32_t v)
{
	uint32_t old = __atomic_load_n(p, __ATOMIC_RELAXED);

	while (old < v && !__atomic_compare_exchange_n(p, &old, v, 0, __ATOMIC_RELAXED,
						      __ATOMIC_RELAXED))
		;
}

static enum how pick(uint64_t r)
{
	switch (r % 32) {
	case 0:
		return EMIT_DISCARD;
	case 1:
		return EMIT_HOLD_DISCARD;
	case 2:
		return EMIT_PAIR;
	case 3:
		return EMIT_PAIR_DISCARD;
	default:
		return (r >> 8) & 1 ? EMIT_RESERVE : EMIT_WRITE;
	}
}

/*
 * SIGUSR1 and SIGUSR2 do not block each other, so either may interrupt the other's handler;
 * a level-1 handler sometimes raises the other signal while it holds a reservation.
 */
static void on_signal(int sig, siginfo_t *si, void *uc)
{
	struct writer *wr = tls_w;
	int saved = errno;
	uint32_t d;
	uint64_t r;

	if (!wr)
		return;
	d = ++tls_depth;
	if (d >= LEVELS) {
		note_werr(d, -ELOOP);
		tls_depth--;
		return;
	}
	atomic_max32(&R.max_depth, d);
	wr->got++;
	r = t_rand(&wr->rng[d]);
	if (d == 1 && R.cfg->raise_every && r % R.cfg->raise_every == 0) {
		tls_sig = sig;
		emit(d, (r >> 12) & 1 ? EMIT_RAISE_DISCARD : EMIT_RAISE);
	} else {
		emit(d, pick(r >> 16));
	}
	if ((r >> 9) & 1)
		emit(d, EMIT_WRITE);
	tls_depth--;
	errno = saved;
}

/* Report the losses still pending; retry while the reader makes room. */
static void flush_retry(uint32_t stream)
{
	double t0 = t_now();
	int err;

	while ((err = evr_ring_flush(R.ring)) == -ENOSPC) {
		if (t_now() - t0 > 20) {
			note_werr(stream, -ETIMEDOUT);
			return;
		}
		sched_yield();
	}
	if (err < 0)
		note_werr(stream, err);
	else if (err)
		__atomic_fetch_add(&R.flushed, 1, __ATOMIC_RELAXED);
}

static void *writer_main(void *arg)
{
	struct writer *wr = arg;
	sigset_t set;

	tls_w = wr;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	if (R.cfg->timer_ns) {
		struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGUSR2 };
		struct itimerspec it = { { 0, R.cfg->timer_ns }, { 0, R.cfg->timer_ns } };

		sev._sigev_un._tid = gettid();
		if (timer_create(CLOCK_MONOTONIC, &sev, &wr->timer))
			note_werr(wr->idx * LEVELS, -errno);
		else if (timer_settime(wr->timer, 0, &it, NULL))
			note_werr(wr->idx * LEVELS, -errno);
		else
			wr->have_timer = 1;
	}
	__atomic_fetch_add(&R.writers_ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&R.stop_writers, __ATOMIC_RELAXED) &&
	       !__atomic_load_n(&R.werr, __ATOMIC_RELAXED)) {
		uint64_t lost = R.w[wr->idx * LEVELS].lost;

		emit(0, pick(t_rand(&wr->rng[0])));
		if (R.cfg->backoff && R.w[wr->idx * LEVELS].lost != lost)
			sched_yield();
		signal_point();
	}
	if (wr->have_timer)
		timer_delete(wr->timer);
	/* the sender has stopped: let what it sent run, then shut the handlers out */
	sched_yield();
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	tls_w = NULL;
	/* concurrent with the other writers' last records: a flush is just another writer */
	flush_retry(wr->idx * LEVELS);
	return NULL;
}

static void check_head(uint64_t head, const char *where)
{
	if (t_oracle_head(&R.o, head, where))
		die("%s", R.o.what);
}

static inline uint64_t prod_head(void)
{
	return __atomic_load_n(&R.ctrl->prod_head, __ATOMIC_RELAXED);
}

static void *reader_main(void *arg)
{
	struct evr_reader *rd = arg;
	struct evr_record rec;
	int idle = 0;

	R.last_pos = 0;
	for (;;) {
		int finished = __atomic_load_n(&R.writers_done, __ATOMIC_ACQUIRE);
		uint64_t tail = __atomic_load_n(&R.ctrl->data_tail, __ATOMIC_RELAXED);
		int n = evr_reader_begin(rd), k, got = 0;

		if (n < 0)
			die("evr_reader_begin: %s (reader at 0x%" PRIx64 ")", evr_strerror(n),
			    tail);
		if (n) /* 0: the next record is not committed (prod_head not read) */
			check_head(tail + (uint64_t)n, "evr_reader_begin");
		R.batches++;
		while ((k = evr_reader_next(rd, &rec)) == 1) {
			if (rec.pos < tail || (got && rec.pos <= R.last_pos) ||
			    rec.pos % EVR_RECORD_ALIGN)
				die("record at pos 0x%" PRIx64 " after 0x%" PRIx64
				    " (batch from 0x%" PRIx64 ")",
				    rec.pos, R.last_pos, tail);
			if (t_oracle_record(&R.o, &rec))
				die("%s", R.o.what);
			R.last_pos = rec.pos;
			got++;
		}
		if (k < 0)
			die("evr_reader_next: %s in batch from 0x%" PRIx64 " (prod_head 0x%" PRIx64
			    ")",
			    evr_strerror(k), tail, prod_head());
		evr_reader_end(rd);
		if (n == 0 && finished)
			break;
		if (got) {
			idle = 0;
			continue;
		}
		/* nothing committed at the next header: its writer may be preempted, let it run */
		if (prod_head() != tail)
			R.stalls++;
		if (++idle % 16 == 0)
			sched_yield();
		else
			for (int i = 0; i < 32; i++)
				t_cpu_relax();
	}
	return NULL;
}

static void pause_ns(uint64_t ns)
{
	double end = t_now() + (double)ns * 1e-9;

	while (t_now() < end)
		t_cpu_relax();
}

static void *sender_main(void *arg)
{
	uint64_t i = 0;

	while (!__atomic_load_n(&R.stop_sender, __ATOMIC_RELAXED)) {
		struct writer *wr = &R.wr[i % WRITERS];
		int sig = (i / WRITERS) % 3 == 0 ? SIGUSR2 : SIGUSR1;

		if (pthread_kill(wr->th, sig))
			break;
		i++;
		R.sent++;
		pause_ns(R.cfg->gap_ns);
	}
	return NULL;
}

/* Every byte the reader consumed was zeroed, and it consumed everything: the area is zero. */
static void check_zero(void)
{
	const uint8_t *p = (const uint8_t *)R.ctrl + R.ctrl->data_offset;

	for (uint64_t i = 0; i < R.cfg->data_size; i++)
		if (p[i])
			die("data byte %" PRIu64 " is 0x%02x after the final drain: the reader must"
			    " zero what it consumed",
			    i, p[i]);
}

static uint32_t max_depth;

static void run(const struct config *cfg, uint64_t seed, double seconds)
{
	EVR_OPTS(evr_ring_opts, ro, .data_size = cfg->data_size,
		 .flags = EVR_RING_MULTI | EVR_RING_MIRROR, .ring_id = 0x4d50);
	struct evr_ring_stats rs = { .sz = sizeof(rs) };
	struct evr_reader_stats st = { .sz = sizeof(st) };
	struct evr_reader *rd;
	pthread_t reader, sender;
	uint64_t attempts = 0, written = 0, wlost = 0, discarded = 0, got = 0, raised = 0;
	double el;
	int err;

	memset(&R, 0, sizeof(R));
	R.cfg = cfg;
	R.seed = seed;
	R.wr = calloc(WRITERS, sizeof(*R.wr));
	if (!R.wr)
		die("out of memory");
	err = evr_ring_create(&ro, &R.ring);
	if (err == -ENOSYS || err == -EOPNOTSUPP)
		t_skip("no memfd mirror mapping here");
	if (err)
		die("evr_ring_create(%" PRIu64 ", MULTI|MIRROR): %s", cfg->data_size,
		    evr_strerror(err));
	R.ctrl = evr_ring_get_ctrl(R.ring);
	err = evr_reader_create(R.ring, NULL, &rd);
	if (err)
		die("evr_reader_create: %s", evr_strerror(err));
	if (t_oracle_init(&R.o, seed, ro.ring_id, STREAMS, &cfg->mix))
		die("out of memory");

	double t_start = t_now();

	if (pthread_create(&reader, NULL, reader_main, rd))
		die("pthread_create");
	for (uint32_t i = 0; i < WRITERS; i++) {
		R.wr[i].idx = i;
		for (int l = 0; l < LEVELS; l++)
			R.wr[i].rng[l] = t_mix(seed + 0x100 + i * LEVELS + (uint64_t)l);
		if (pthread_create(&R.wr[i].th, NULL, writer_main, &R.wr[i]))
			die("pthread_create");
	}
	while (__atomic_load_n(&R.writers_ready, __ATOMIC_ACQUIRE) < WRITERS)
		sched_yield();
	if (pthread_create(&sender, NULL, sender_main, NULL))
		die("pthread_create");
	while (t_now() - t_start < seconds && !__atomic_load_n(&R.werr, __ATOMIC_RELAXED)) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	__atomic_store_n(&R.stop_sender, 1, __ATOMIC_RELAXED);
	pthread_join(sender, NULL);
	__atomic_store_n(&R.stop_writers, 1, __ATOMIC_RELAXED);
	for (uint32_t i = 0; i < WRITERS; i++)
		pthread_join(R.wr[i].th, NULL);
	/* every writer is gone: this flush reports whatever their last flushes raced with */
	flush_retry(0);
	__atomic_store_n(&R.writers_done, 1, __ATOMIC_RELEASE);
	pthread_join(reader, NULL);
	el = t_now() - t_start;

	if (R.werr)
		die("writer, stream %u: unexpected %s (%d)", R.werr_stream, evr_strerror(R.werr),
		    R.werr);
	if (t_oracle_conserve(&R.o, R.w))
		die("%s", R.o.what);
	for (int i = 0; i < STREAMS; i++) {
		attempts += R.w[i].attempted + R.w[i].discarded;
		written += R.w[i].attempted - R.w[i].lost;
		wlost += R.w[i].lost;
		discarded += R.w[i].discarded;
	}
	for (int i = 0; i < WRITERS; i++) {
		got += R.wr[i].got;
		raised += R.wr[i].raised;
	}
	if (attempts != R.o.read + R.o.lost + discarded)
		die("conservation: attempted %" PRIu64 " != read %" PRIu64 " + lost %" PRIu64
		    " + discarded %" PRIu64,
		    attempts, R.o.read, R.o.lost, discarded);
	evr_ring_get_stats(R.ring, &rs);
	evr_reader_get_stats(rd, &st);
	if (rs.lost_full != R.o.lost || rs.lost_paused || rs.err_msgsize || rs.err_nest ||
	    rs.err_shutdown)
		die("ring counters: lost_full %" PRIu64 " (LOST records say %" PRIu64
		    "), paused %" PRIu64 ", msgsize %" PRIu64 ", nest %" PRIu64
		    ", shutdown %" PRIu64,
		    rs.lost_full, R.o.lost, rs.lost_paused, rs.err_msgsize, rs.err_nest,
		    rs.err_shutdown);
	if (st.lost != R.o.lost || st.bad_headers || st.bytes_skipped)
		die("reader counters: lost %" PRIu64 " (oracle %" PRIu64 "), bad headers %" PRIu64
		    ", bytes skipped %" PRIu64,
		    st.lost, R.o.lost, st.bad_headers, st.bytes_skipped);
	if (__atomic_load_n(&R.ctrl->mp_lost, __ATOMIC_RELAXED) || rs.data_tail != prod_head() ||
	    prod_head() < R.o.head_max)
		die("end state: data_tail 0x%" PRIx64 ", prod_head 0x%" PRIx64
		    " (largest seen 0x%" PRIx64 "), losses still pending %" PRIu64,
		    rs.data_tail, prod_head(), R.o.head_max, R.ctrl->mp_lost);
	check_zero();
	if (R.max_depth > max_depth)
		max_depth = R.max_depth;

	printf("mpsc-stress: %-9s %5.2fs written %" PRIu64 " read %" PRIu64 " lost %" PRIu64
	       " (%" PRIu64 " LOST records, %" PRIu64 " by flush) discarded %" PRIu64
	       " (%" PRIu64 " around a committed one), pairs out of order %" PRIu64 "\n",
	       cfg->name, el, written, R.o.read, R.o.lost, R.o.lost_records, R.flushed, discarded,
	       R.nested_discards, R.pairs);
	printf("mpsc-stress: %-9s -ENOSPC returns with the ring less than half full right after: "
	       "%" PRIu64 " of %" PRIu64 "\n",
	       cfg->name, R.roomy_enospc, wlost);
	printf("mpsc-stress: %-9s signals sent %" PRIu64 ", handled %" PRIu64 " (%.1f kHz; %" PRIu64
	       " raised in a handler), max nest %u handler levels, reader batches %" PRIu64
	       " (%" PRIu64 " stalled at an open reservation)\n",
	       cfg->name, R.sent, got, got / el / 1e3, raised, R.max_depth, R.batches, R.stalls);
	t_oracle_fini(&R.o);
	evr_reader_destroy(rd);
	evr_ring_destroy(R.ring);
	free(R.wr);
	R.ring = NULL;
	R.cfg = NULL;
}

#ifdef T_STEP
/*
 * The sweep: one thread writes one record with the trap flag set; at instruction @target of
 * that write a SIGTRAP handler writes a record of its own (a nested writer) and drains the
 * ring. Every interleaving point of the write path is so visited once, deterministically. The
 * ring never holds more than a few records, so no write may fail for want of room, and the
 * reader must see both records intact, in reservation order.
 */
static struct sweep {
	struct evr_ring *ring;
	struct evr_reader *rd;
	struct t_oracle o;
	struct t_lenmix mix;
	uint64_t seq[2]; /* stream 0: the stepped write, stream 1: the handler's */
	uint64_t lost; /* stream 0's writes refused with -ENOSPC */
	uint32_t step, target;
	int hit, herr;
	int reserve; /* the stepped write goes through reserve/commit */
	uint8_t buf[2][4096];
} S;

static void sweep_drain(void)
{
	struct evr_record rec;
	int k;

	evr_reader_begin(S.rd);
	while ((k = evr_reader_next(S.rd, &rec)) == 1)
		if (t_oracle_record(&S.o, &rec))
			die("%s (target step %u)", S.o.what, S.target);
	if (k < 0)
		die("evr_reader_next: %s (target step %u)", evr_strerror(k), S.target);
	evr_reader_end(S.rd);
}

static int sweep_write(uint32_t stream, int reserve)
{
	uint64_t seq = S.seq[stream];
	uint32_t len = t_payload_len(&S.mix, t_seed, stream, seq);
	struct evr_slot s;
	int err;

	if (!reserve) {
		t_payload_fill(S.buf[stream], len, t_seed, stream, seq);
		err = evr_ring_write(S.ring, stream, S.buf[stream], len);
	} else {
		err = evr_ring_reserve(S.ring, stream, len, &s);
		if (!err) {
			t_payload_fill(s.data, len, t_seed, stream, seq);
			err = evr_ring_commit(S.ring, &s);
		}
	}
	if (!err)
		S.seq[stream]++;
	return err;
}

static void on_trap(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	int saved = errno;

	if (++S.step == S.target) {
		uc->uc_mcontext.gregs[REG_EFL] &= ~0x100ll;
		S.hit = 1;
		/* a nested writer lands here: it writes, and the reader consumes what it can */
		for (int i = 0; i < 3 && !S.herr; i++)
			S.herr = sweep_write(1, i & 1);
		sweep_drain();
	}
	errno = saved;
}

static inline void trap_flag(int on)
{
	uint64_t f;

	__asm__ __volatile__("pushfq; popq %0" : "=r"(f));
	f = on ? f | 0x100 : f & ~0x100ull;
	__asm__ __volatile__("pushq %0; popfq" : : "r"(f) : "cc", "memory");
}

/* Return: the failures found (each reported). */
static int sweep(void)
{
	EVR_OPTS(evr_ring_opts, ro, .data_size = 1u << 16,
		 .flags = EVR_RING_MULTI | EVR_RING_MIRROR, .ring_id = 0x5357);
	struct sigaction sa;
	uint32_t targets = 0, spurious = 0, first = 0;
	int err, fails = 0;

	memset(&S, 0, sizeof(S));
	S.mix = (struct t_lenmix){ 300, 0, 0 };
	if (evr_ring_create(&ro, &S.ring) || evr_reader_create(S.ring, NULL, &S.rd) ||
	    t_oracle_init(&S.o, t_seed, ro.ring_id, 2, &S.mix))
		die("sweep setup");
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_trap;
	sa.sa_flags = SA_SIGINFO;
	sigfillset(&sa.sa_mask);
	if (sigaction(SIGTRAP, &sa, NULL))
		die("sigaction(SIGTRAP)");
	for (S.reserve = 0; S.reserve < 2; S.reserve++) {
		for (S.target = 1;; S.target++) {
			S.step = 0;
			S.hit = 0;
			trap_flag(1);
			err = sweep_write(0, S.reserve);
			trap_flag(0);
			if (S.herr)
				die("the handler's write at step %u failed: %s", S.target,
				    evr_strerror(S.herr));
			if (err == -ENOSPC) {
				/* the ring holds a few hundred bytes at most: never full */
				if (!spurious++)
					first = S.target;
				S.seq[0]++; /* lost: the LOST record accounts for it */
				S.lost++;
			} else if (err) {
				die("%s at step %u: %s", S.reserve ? "reserve/commit" : "write",
				    S.target, evr_strerror(err));
			}
			sweep_drain();
			targets++;
			if (!S.hit)
				break; /* the write ended before the target: every point visited */
			if (S.target > 100000)
				die("the stepped write never ends");
		}
		if (spurious) {
			fprintf(stderr,
				"mpsc-stress: FAIL [sweep]: %s returned -ENOSPC on a ring holding "
				"at "
				"most a few records, when a nested writer wrote and the reader "
				"drained "
				"at %u of its instruction(s) (first: step %u); prod_head 0x%" PRIx64
				", data_tail 0x%" PRIx64 "\n",
				S.reserve ? "evr_ring_reserve" : "evr_ring_write", spurious, first,
				evr_ring_get_ctrl(S.ring)->prod_head,
				evr_ring_get_ctrl(S.ring)->data_tail);
			fails++;
			spurious = 0;
		}
	}
	/* the LOST records of spurious losses, if any: conservation must still hold */
	while ((err = evr_ring_flush(S.ring)) == -ENOSPC)
		sweep_drain();
	sweep_drain();
	{
		struct t_wstream w[2] = { { .next_seq = S.seq[0], .attempted = S.seq[0] },
					  { .next_seq = S.seq[1], .attempted = S.seq[1] } };

		w[0].lost = S.lost;
		if (t_oracle_conserve(&S.o, w))
			die("%s", S.o.what);
	}
	printf("mpsc-stress: sweep     %u interleaving points, %" PRIu64 " records read, %" PRIu64
	       " lost\n",
	       targets, S.o.read, S.o.lost);
	signal(SIGTRAP, SIG_DFL);
	t_oracle_fini(&S.o);
	evr_reader_destroy(S.rd);
	evr_ring_destroy(S.ring);
	return fails;
}
#endif

static void handle(int sig)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask); /* the writing handlers do not block each other */
	if (sigaction(sig, &sa, NULL))
		die("sigaction(%d)", sig);
}

int main(void)
{
	const char *env = getenv("EVR_STRESS_SECONDS"), *sw = getenv("EVR_MPSC_SWEEP");
	double total, weights = 0;
	sigset_t set;

	t_init("mpsc-stress");
#ifdef T_TSAN
	total = t_long() ? 60 : 3;
#else
	total = t_long() ? 300 : 4;
#endif
	if (env && *env)
		total = strtod(env, NULL);
	handle(SIGUSR1);
	handle(SIGUSR2);
	/* only the writers take the signals: the others start with them blocked */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	prctl(PR_SET_TIMERSLACK, 1ul, 0, 0, 0);
	printf("mpsc-stress: seed 0x%016" PRIx64 ", %d writers, %.1f s over %zu configurations\n",
	       t_seed, WRITERS, total, NR_CONFIGS);
	for (size_t i = 0; i < NR_CONFIGS; i++)
		weights += configs[i].weight;
	for (size_t i = 0; i < NR_CONFIGS; i++)
		run(&configs[i], t_mix(t_seed + i), total * configs[i].weight / weights);
#ifdef T_STEP
	if (!sw || strcmp(sw, "0"))
		expect_true(sweep() == 0, "the stepping sweep found failures (above)");
#else
	(void)sw;
#endif
	/* ThreadSanitizer runs deferred handlers with every signal blocked: they cannot nest */
#ifndef T_TSAN
	if (total >= 1)
		expect_true(max_depth >= 2, "nesting reached only %u handler level(s)", max_depth);
#endif
	printf("mpsc-stress: %s, max nest %u handler levels\n", t_failures ? "FAIL" : "ok",
	       max_depth);
	return t_done();
}
