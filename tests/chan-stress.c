// SPDX-License-Identifier: MIT
/*
 * Stress oracle of channels, for each policy (shared, per-CPU, per-thread with fewer slots than
 * threads, so the fallback ring is used too): eight or more writer threads on two CPUs whose
 * SIGUSR1/SIGUSR2 handlers also write (not blocking each other, so they nest), a sender thread
 * signalling them at a high rate, and a concurrent channel reader, merged or unordered.
 *
 * A stream is one (writer thread, nest level). Its records can land in several rings (its slot
 * and the fallback; two CPUs' rings when it migrates), which are ordered among themselves only
 * by timestamp. So the reader checks, per (stream, ring), that sequence numbers strictly
 * increase and times do not go back; per stream, that no sequence number arrives twice and that
 * what was delivered plus what its writer saw refused (-ENOSPC) is exactly what it wrote (by
 * count, and by a hash of the missing sequence numbers). In merged mode, times never go back
 * except for records the reader counted late. At the end every writer flushes and
 * written == read + lost (the LOST records' sum) holds exactly.
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
#include <unistd.h>

#include "evring.h"
#include "oracle.h"
#include "test.h"

#define MAX_WRITERS 12
#define LEVELS 3 /* the thread, a handler, a handler interrupting that handler */
#define MAX_STREAMS (MAX_WRITERS * LEVELS) /* stream = writer * LEVELS + level */
#define SCRATCH 4096

struct config {
	const char *name;
	uint32_t policy;
	uint32_t writers;
	uint32_t slots; /* per-thread: fewer than writers */
	uint32_t unordered; /* EVR_CHAN_READ_UNORDERED */
	uint64_t data_size;
	uint64_t window_ns; /* merged: 0 for the default */
	struct t_lenmix mix;
	uint32_t gap_ns; /* sender's sleep between two signals */
	uint32_t raise_every; /* a level-1 handler raises the other signal */
	uint32_t burst; /* a writer writes this many records, then sleeps */
	uint32_t nap_ns; /* that long, so the reader keeps up with most of it */
};

static const struct config configs[] = {
	{ "shared-merged", EVR_CHAN_SHARED, 8, 0, 0, 1u << 16, 0, { 120, 1500, 64 }, 10000, 4, 64,
	  200000 },
	{ "shared-unord", EVR_CHAN_SHARED, 8, 0, 1, 1u << 14, 0, { 200, 2000, 32 }, 10000, 4, 128,
	  100000 },
	{ "percpu-merged", EVR_CHAN_PERCPU, 8, 0, 0, 1u << 14, 200000, { 120, 1500, 64 }, 10000, 4,
	  64, 200000 },
	{ "percpu-unord", EVR_CHAN_PERCPU, 8, 0, 1, 1u << 16, 0, { 120, 1500, 64 }, 10000, 4, 64,
	  200000 },
	{ "thread-merged", EVR_CHAN_THREAD, 10, 4, 0, 1u << 16, 0, { 120, 1500, 64 }, 10000, 4, 64,
	  200000 },
	{ "thread-unord", EVR_CHAN_THREAD, 10, 4, 1, 1u << 14, 0, { 200, 2000, 32 }, 10000, 4, 128,
	  100000 },
};
#define NR_CONFIGS (sizeof(configs) / sizeof(configs[0]))

/* One stream's writer side: touched only by the level that owns it; main reads after join. */
struct wstream {
	struct t_wstream w;
	uint64_t lost_hash; /* sum of hash(seq) over the sequence numbers refused with -ENOSPC */
};

struct writer {
	pthread_t th;
	uint32_t idx;
	uint64_t rng[LEVELS];
	uint64_t got; /* signals handled */
	uint8_t scratch[LEVELS][SCRATCH];
};

/* One stream's reader side. */
struct rstream {
	uint64_t *bits; /* delivered sequence numbers */
	uint64_t nbits;
	uint64_t read;
	uint64_t dups;
	uint32_t rings_used; /* bit mask, rings < 32 */
};

static struct run {
	const struct config *cfg;
	struct evr_chan *ch;
	uint32_t nr_rings, nr_slots, nstreams;
	uint64_t seed;

	int writers_ready; /* atomics */
	int stop_sender;
	int stop_writers;
	int writers_done;
	int werr;
	uint32_t werr_stream;
	uint32_t max_depth;

	struct wstream ws[MAX_STREAMS];
	struct writer *wr;
	uint64_t sent;

	/* reader thread; main after join */
	struct evr_chan_reader *crd;
	struct rstream rs[MAX_STREAMS];
	uint64_t *last_seq; /* [stream * nr_rings + ring], UINT64_MAX: none yet */
	uint64_t *last_t; /* idem: time of that record */
	int32_t *slot_owner; /* per-thread: the writer whose records a slot holds, -1 */
	int32_t *writer_slot; /* per-thread: the slot a writer's records are in, -1 */
	uint64_t read, lost, lost_records, late, last_time;
	uint64_t ring_app[32], ring_lost[32];
	uint64_t t_min, t_max;
	char what[512];
} R;

static __thread struct writer *tls_w;
static __thread int tls_sig;
static __thread uint32_t tls_depth;

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "chan-stress: FAIL [%s]: ", R.cfg ? R.cfg->name : "-");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nchan-stress: replay with EVR_SEED=0x%016" PRIx64 "\n", t_seed);
	fflush(stdout);
	fflush(stderr);
	_exit(T_FAIL);
}

static inline void signal_point(void)
{
#ifdef T_TSAN
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
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

/* Write the next record of this thread's stream at @level. Context: async-signal-safe. */
static void emit(uint32_t level)
{
	struct writer *wr = tls_w;
	uint32_t stream = wr->idx * LEVELS + level;
	struct wstream *w = &R.ws[stream];
	uint64_t seq = w->w.next_seq;
	uint32_t len = t_payload_len(&R.cfg->mix, R.seed, stream, seq);
	int err;

	t_payload_fill(wr->scratch[level], len, R.seed, stream, seq);
	err = evr_chan_write(R.ch, stream, wr->scratch[level], len);
	if (err == -ENOSPC)
		w->lost_hash += seq_hash(stream, seq);
	err = t_wstream_done(&w->w, err);
	if (err)
		note_werr(stream, err);
}

static void atomic_max32(uint32_t *p, uint32_t v)
{
	uint32_t old = __atomic_load_n(p, __ATOMIC_RELAXED);

	while (old < v && !__atomic_compare_exchange_n(p, &old, v, 0, __ATOMIC_RELAXED,
						      __ATOMIC_RELAXED))
		;
}

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
		tls_depth--; /* deeper than we count: leave it */
		errno = saved;
		return;
	}
	atomic_max32(&R.max_depth, d);
	wr->got++;
	r = t_rand(&wr->rng[d]);
	emit(d);
	if (d == 1 && R.cfg->raise_every && r % R.cfg->raise_every == 0) {
		tls_sig = sig;
		raise(sig == SIGUSR1 ? SIGUSR2 : SIGUSR1); /* runs now, nested */
	}
	if ((r >> 9) & 1)
		emit(d);
	tls_depth--;
	errno = saved;
}

/* Flush, retrying while the reader makes room. */
static void flush_retry(uint32_t stream)
{
	double t0 = t_now();
	int err;

	while ((err = evr_chan_flush(R.ch)) == -ENOSPC) {
		if (t_now() - t0 > 20) {
			note_werr(stream, -ETIMEDOUT);
			return;
		}
		sched_yield();
	}
	if (err < 0)
		note_werr(stream, err);
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
	__atomic_fetch_add(&R.writers_ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&R.stop_writers, __ATOMIC_RELAXED) &&
	       !__atomic_load_n(&R.werr, __ATOMIC_RELAXED)) {
		uint64_t r = t_rand(&wr->rng[0]);

		for (uint32_t i = 0; i < R.cfg->burst; i++) {
			emit(0);
			signal_point();
		}
		/* bursts of random length between naps: losses come and go */
		struct timespec ts = { 0, (long)(r % (2 * R.cfg->nap_ns)) };

		nanosleep(&ts, NULL);
	}
	sched_yield();
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	tls_w = NULL;
	flush_retry(wr->idx * LEVELS);
	return NULL; /* per-thread: the slot is orphaned now, and recycled by the reader */
}

__attribute__((format(printf, 1, 2))) static int bad(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(R.what, sizeof(R.what), fmt, ap);
	va_end(ap);
	die("%s", R.what);
}

static void mark(struct rstream *s, uint32_t stream, uint64_t seq)
{
	if (seq >= s->nbits) {
		uint64_t n = s->nbits ? s->nbits : 1 << 16;

		while (n <= seq)
			n *= 2;
		s->bits = realloc(s->bits, n / 8);
		if (!s->bits)
			die("out of memory");
		memset((uint8_t *)s->bits + s->nbits / 8, 0, (n - s->nbits) / 8);
		s->nbits = n;
	}
	if (s->bits[seq / 64] & (1ull << (seq % 64)))
		bad("stream %u: seq %" PRIu64 " delivered twice", stream, seq);
	s->bits[seq / 64] |= 1ull << (seq % 64);
}

static void check_lost(const struct evr_record *rec)
{
	struct evr_lost_body b;

	if (!(rec->hdr->misc & EVR_MISC_EVRING) || rec->len < sizeof(b))
		bad("LOST record in ring %u without an evring body (len %u)", rec->ring, rec->len);
	memcpy(&b, rec->data, sizeof(b));
	if (b.lost == 0 || b.id != rec->ring || b.causes != EVR_LOST_FULL || b.reserved)
		bad("ring %u: bad LOST record: lost %" PRIu64 " id %" PRIu64 " causes 0x%x",
		    rec->ring, b.lost, b.id, b.causes);
	R.lost += b.lost;
	R.lost_records++;
	R.ring_lost[rec->ring] += b.lost;
}

static void check(const struct evr_record *rec)
{
	const struct config *cfg = R.cfg;
	struct t_payload_hdr h;
	struct rstream *s;
	uint64_t *ls, *lt;
	uint32_t want, writer;
	long off;

	if (rec->ring >= R.nr_rings)
		bad("record from ring %u of %u", rec->ring, R.nr_rings);
	if (!rec->is_app) {
		if (rec->type != EVR_TYPE_LOST)
			bad("unexpected record type %u in ring %u", rec->type, rec->ring);
		check_lost(rec);
		return;
	}
	if (rec->type >= R.nstreams || rec->len < sizeof(h))
		bad("record id %u len %u in ring %u", rec->type, rec->len, rec->ring);
	memcpy(&h, rec->data, sizeof(h));
	if (h.stream != rec->type)
		bad("ring %u: id %u carries stream %u", rec->ring, rec->type, h.stream);
	want = t_payload_len(&cfg->mix, R.seed, h.stream, h.seq);
	if (rec->len != want || h.len != want)
		bad("stream %u seq %" PRIu64 " (ring %u): length %u (header %u), expected %u",
		    h.stream, h.seq, rec->ring, rec->len, h.len, want);
	off = t_payload_diff(rec->data, rec->len, R.seed, h.stream, h.seq);
	if (off >= 0)
		bad("stream %u seq %" PRIu64 " (ring %u): payload byte %ld of %u differs", h.stream,
		    h.seq, rec->ring, off, rec->len);
	if (!rec->has_time)
		bad("stream %u seq %" PRIu64 ": no timestamp", h.stream, h.seq);
	if (rec->time < R.t_min)
		R.t_min = rec->time;
	if (rec->time > R.t_max)
		R.t_max = rec->time;
	/* within one ring a stream's records come in the order it wrote them, times too */
	ls = &R.last_seq[h.stream * R.nr_rings + rec->ring];
	lt = &R.last_t[h.stream * R.nr_rings + rec->ring];
	if (*ls != UINT64_MAX && h.seq <= *ls)
		bad("stream %u in ring %u: seq %" PRIu64 " after seq %" PRIu64, h.stream, rec->ring,
		    h.seq, *ls);
	if (*ls != UINT64_MAX && rec->time < *lt)
		bad("stream %u in ring %u: seq %" PRIu64 " stamped %" PRIu64 ", before seq %" PRIu64
		    " (%" PRIu64 ")",
		    h.stream, rec->ring, h.seq, rec->time, *ls, *lt);
	*ls = h.seq;
	*lt = rec->time;
	s = &R.rs[h.stream];
	mark(s, h.stream, h.seq);
	s->read++;
	s->rings_used |= 1u << rec->ring;
	R.read++;
	R.ring_app[rec->ring]++;
	if (!cfg->unordered) {
		if (rec->time < R.last_time)
			R.late++;
		else
			R.last_time = rec->time;
	}
	/* policy: where may this record be? */
	writer = h.stream / LEVELS;
	if (cfg->policy == EVR_CHAN_SHARED && rec->ring != 0)
		bad("shared channel: record in ring %u", rec->ring);
	if (cfg->policy == EVR_CHAN_THREAD && rec->ring < R.nr_slots) {
		/* a slot holds one thread's records, and a thread has one slot (none exit here) */
		if (R.slot_owner[rec->ring] < 0)
			R.slot_owner[rec->ring] = (int32_t)writer;
		if (R.writer_slot[writer] < 0)
			R.writer_slot[writer] = (int32_t)rec->ring;
		if (R.slot_owner[rec->ring] != (int32_t)writer)
			bad("slot %u holds records of writers %d and %u", rec->ring,
			    R.slot_owner[rec->ring], writer);
		if (R.writer_slot[writer] != (int32_t)rec->ring)
			bad("writer %u has records in slots %d and %u", writer,
			    R.writer_slot[writer], rec->ring);
	}
}

static void *reader_main(void *arg)
{
	struct evr_record rec;
	uint64_t idle = 0;

	for (;;) {
		int done = __atomic_load_n(&R.writers_done, __ATOMIC_ACQUIRE);
		int k = evr_chan_reader_next(R.crd, &rec, done);

		if (k < 0)
			die("evr_chan_reader_next: %s", evr_strerror(k));
		if (k == 1) {
			check(&rec);
			idle = 0;
			continue;
		}
		if (done)
			break; /* everything was published before done, and nothing is left */
		if (++idle % 16 == 0)
			sched_yield();
		else
			for (int i = 0; i < 64; i++)
				t_cpu_relax();
	}
	return NULL;
}

static void *sender_main(void *arg)
{
	uint64_t i = 0;

	while (!__atomic_load_n(&R.stop_sender, __ATOMIC_RELAXED)) {
		struct writer *wr = &R.wr[i % R.cfg->writers];
		int sig = (i / R.cfg->writers) % 3 == 0 ? SIGUSR2 : SIGUSR1;

		struct timespec ts = { 0, R.cfg->gap_ns };

		if (pthread_kill(wr->th, sig))
			break;
		i++;
		R.sent++;
		if (i % 4 == 0)
			nanosleep(&ts, NULL);
	}
	return NULL;
}

static uint32_t max_depth;

static void run(const struct config *cfg, uint64_t seed, double seconds)
{
	EVR_OPTS(evr_chan_opts, co, .policy = cfg->policy, .nr_slots = cfg->slots,
		 .data_size = cfg->data_size);
	EVR_OPTS(evr_chan_reader_opts, ro, .flags = cfg->unordered ? EVR_CHAN_READ_UNORDERED : 0,
		 .window_ns = cfg->window_ns);
	struct evr_chan_stats st = { .sz = sizeof(st) };
	uint64_t attempted = 0, wlost = 0, got = 0, t0, t1, multi = 0;
	pthread_t reader, sender;
	double el, start;
	int err;

	memset(&R, 0, sizeof(R));
	R.cfg = cfg;
	R.seed = seed;
	R.nstreams = cfg->writers * LEVELS;
	R.wr = calloc(cfg->writers, sizeof(*R.wr));
	if (!R.wr)
		die("out of memory");
	err = evr_chan_create(&co, &R.ch);
	if (err)
		die("evr_chan_create: %s", evr_strerror(err));
	R.nr_rings = (uint32_t)evr_session_get_nr_rings(evr_chan_get_session(R.ch));
	R.nr_slots = cfg->policy == EVR_CHAN_THREAD ? R.nr_rings - 1 : 0;
	if (R.nr_rings > 32)
		die("%u rings: the test counts at most 32", R.nr_rings);
	err = evr_chan_reader_create(R.ch, &ro, &R.crd);
	if (err)
		die("evr_chan_reader_create: %s", evr_strerror(err));
	R.last_seq = malloc(R.nstreams * R.nr_rings * sizeof(*R.last_seq));
	R.last_t = calloc(R.nstreams * R.nr_rings, sizeof(*R.last_t));
	R.slot_owner = malloc(R.nr_rings * sizeof(*R.slot_owner));
	R.writer_slot = malloc(cfg->writers * sizeof(*R.writer_slot));
	if (!R.last_seq || !R.last_t || !R.slot_owner || !R.writer_slot)
		die("out of memory");
	memset(R.last_seq, 0xff, R.nstreams * R.nr_rings * sizeof(*R.last_seq));
	memset(R.slot_owner, 0xff, R.nr_rings * sizeof(*R.slot_owner));
	memset(R.writer_slot, 0xff, cfg->writers * sizeof(*R.writer_slot));
	R.t_min = UINT64_MAX;

	start = t_now();
	t0 = evr_clock_now();
	if (pthread_create(&reader, NULL, reader_main, NULL))
		die("pthread_create");
	for (uint32_t i = 0; i < cfg->writers; i++) {
		R.wr[i].idx = i;
		for (int l = 0; l < LEVELS; l++)
			R.wr[i].rng[l] = t_mix(seed + 0x100 + i * LEVELS + (uint64_t)l);
		if (pthread_create(&R.wr[i].th, NULL, writer_main, &R.wr[i]))
			die("pthread_create");
	}
	while (__atomic_load_n(&R.writers_ready, __ATOMIC_ACQUIRE) < (int)cfg->writers)
		sched_yield();
	if (pthread_create(&sender, NULL, sender_main, NULL))
		die("pthread_create");
	while (t_now() - start < seconds && !__atomic_load_n(&R.werr, __ATOMIC_RELAXED)) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	__atomic_store_n(&R.stop_sender, 1, __ATOMIC_RELAXED);
	pthread_join(sender, NULL);
	__atomic_store_n(&R.stop_writers, 1, __ATOMIC_RELAXED);
	for (uint32_t i = 0; i < cfg->writers; i++)
		pthread_join(R.wr[i].th, NULL);
	/* every writer is gone: report whatever their last flushes raced with */
	flush_retry(0);
	t1 = evr_clock_now();
	__atomic_store_n(&R.writers_done, 1, __ATOMIC_RELEASE);
	pthread_join(reader, NULL);
	el = t_now() - start;

	if (R.werr)
		die("writer, stream %u: unexpected %s (%d)", R.werr_stream, evr_strerror(R.werr),
		    R.werr);
	/* per stream: exact conservation, and the very sequence numbers that were refused */
	for (uint32_t i = 0; i < R.nstreams; i++) {
		const struct t_wstream *w = &R.ws[i].w;
		struct rstream *s = &R.rs[i];
		uint64_t hash = 0;

		if (w->attempted != s->read + w->lost)
			die("stream %u: written %" PRIu64 " != read %" PRIu64 " + refused %" PRIu64,
			    i, w->attempted, s->read, w->lost);
		for (uint64_t q = 0; q < s->nbits; q++) {
			int have = !!(s->bits[q / 64] & (1ull << (q % 64)));

			if (have && q >= w->next_seq)
				die("stream %u: seq %" PRIu64 " read, only %" PRIu64 " written", i,
				    q, w->next_seq);
			if (!have && q < w->next_seq)
				hash += seq_hash(i, q);
		}
		for (uint64_t q = s->nbits; q < w->next_seq; q++)
			hash += seq_hash(i, q);
		if (hash != R.ws[i].lost_hash)
			die("stream %u: the sequence numbers missing are not the ones refused "
			    "(%" PRIu64 " refused)",
			    i, w->lost);
		attempted += w->attempted;
		wlost += w->lost;
		multi += __builtin_popcount(s->rings_used) > 1;
		free(s->bits);
	}
	if (evr_chan_reader_get_stats(R.crd, &st))
		die("evr_chan_reader_get_stats");
	if (attempted != R.read + st.lost || st.lost != R.lost || wlost != R.lost)
		die("conservation: written %" PRIu64 " (refused %" PRIu64 ") != read %" PRIu64
		    " + lost %" PRIu64 " (LOST records seen: %" PRIu64 ")",
		    attempted, wlost, R.read, st.lost, R.lost);
	if (st.records != R.read + R.lost_records || st.bad)
		die("reader stats: records %" PRIu64 " (seen %" PRIu64 " + %" PRIu64
		    " LOST), bad %" PRIu64,
		    st.records, R.read, R.lost_records, st.bad);
	if (st.late != R.late)
		die("merged order: %" PRIu64
		    " records went back in time, the reader counted %" PRIu64 " late",
		    R.late, st.late);
	if (R.read && (R.t_min < t0 || R.t_max > t1))
		die("timestamps [%" PRIu64 ", %" PRIu64 "] outside the run [%" PRIu64 ", %" PRIu64
		    "]",
		    R.t_min, R.t_max, t0, t1);
	if (cfg->policy == EVR_CHAN_THREAD) {
		uint32_t fb = R.nr_slots;

		/* every write that found no slot is counted once: read or lost in the fallback */
		expect_true(st.fallback_writes == R.ring_app[fb] + R.ring_lost[fb],
			    "[%s] fallback_writes %" PRIu64
			    " != records in the fallback ring %" PRIu64 " + lost there %" PRIu64
			    " (off by %" PRId64 ")",
			    cfg->name, st.fallback_writes, R.ring_app[fb], R.ring_lost[fb],
			    (int64_t)(st.fallback_writes - R.ring_app[fb] - R.ring_lost[fb]));
		expect_true(st.fallback_writes > 0,
			    "[%s] %u writers, %u slots, yet no fallback write", cfg->name,
			    cfg->writers, R.nr_slots);
		expect_true(st.slots_owned == 0 && st.recycled == R.nr_slots,
			    "[%s] after every writer exited: %u slots owned, %" PRIu64
			    " recycled (of %u slots)",
			    cfg->name, st.slots_owned, st.recycled, R.nr_slots);
	}
	for (uint32_t i = 0; i < cfg->writers; i++)
		got += R.wr[i].got;
	if (R.max_depth > max_depth)
		max_depth = R.max_depth;
	printf("chan-stress: %-13s %5.2fs written %" PRIu64 " read %" PRIu64 " lost %" PRIu64
	       " (%" PRIu64 " LOST records), late %" PRIu64 ", streams in >1 ring %" PRIu64
	       ", fallback writes %" PRIu64 ", recycled %" PRIu64 "\n",
	       cfg->name, el, attempted, R.read, R.lost, R.lost_records, st.late, multi,
	       st.fallback_writes, st.recycled);
	printf("chan-stress: %-13s signals sent %" PRIu64 ", handled %" PRIu64
	       " (%.1f kHz), max nest %u; per ring:",
	       cfg->name, R.sent, got, got / el / 1e3, R.max_depth);
	for (uint32_t i = 0; i < R.nr_rings; i++)
		printf(" %" PRIu64 "/%" PRIu64, R.ring_app[i], R.ring_lost[i]);
	printf("\n");
	evr_chan_reader_destroy(R.crd);
	evr_chan_destroy(R.ch);
	free(R.wr);
	free(R.last_seq);
	free(R.last_t);
	free(R.slot_owner);
	free(R.writer_slot);
	R.cfg = NULL;
}

/*
 * The merge itself, deterministically: two threads take turns writing into their own slots,
 * so consecutive stamps alternate between two rings. The merged reader must hand them out
 * alternating; the unordered one ring by ring.
 */
static struct {
	struct evr_chan *ch;
	int turn; /* atomic */
	int err;
} M;

#define MERGE_N 400

static void *merge_writer(void *arg)
{
	int me = (int)(intptr_t)arg;

	for (uint64_t i = 0; i < MERGE_N; i++) {
		uint64_t v = i * 2 + (uint64_t)me;

		while (__atomic_load_n(&M.turn, __ATOMIC_ACQUIRE) % 2 != me)
			sched_yield();
		/*
		 * Leave 20 us between turns: a stamp taken right after the turn passed was seen to
		 * come out up to a few hundred ns before the other thread's earlier one (a plain
		 * rdtsc is not ordered after the load that saw the turn); this checks the merge.
		 */
		for (double t0 = t_now(); t_now() - t0 < 20e-6;)
			t_cpu_relax();
		if (evr_chan_write(M.ch, (uint32_t)me, &v, sizeof(v)))
			M.err = 1;
		__atomic_fetch_add(&M.turn, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void merge_order(int unordered)
{
	EVR_OPTS(evr_chan_opts, co, .policy = EVR_CHAN_THREAD, .nr_slots = 2, .data_size = 1 << 16);
	EVR_OPTS(evr_chan_reader_opts, ro, .flags = unordered ? EVR_CHAN_READ_UNORDERED : 0);
	struct evr_chan_stats st = { .sz = sizeof(st) };
	struct evr_chan_reader *crd;
	struct evr_record rec;
	pthread_t a, b;
	uint64_t n = 0, v, last = 0;
	int k, switches = 0, prev_ring = -1;

	memset(&M, 0, sizeof(M));
	if (evr_chan_create(&co, &M.ch) || evr_chan_reader_create(M.ch, &ro, &crd))
		die("merge: create");
	if (pthread_create(&a, NULL, merge_writer, (void *)0) ||
	    pthread_create(&b, NULL, merge_writer, (void *)1))
		die("pthread_create");
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	if (M.err)
		die("merge: a write failed");
	while ((k = evr_chan_reader_next(crd, &rec, true)) == 1) {
		if (!rec.is_app || rec.len != 8 || !rec.has_time || rec.ring > 1)
			die("merge: bad record (type %u len %u ring %u)", rec.type, rec.len,
			    rec.ring);
		memcpy(&v, rec.data, 8);
		if (!unordered && v != n)
			die("merge: record %" PRIu64 " is the %" PRIu64
			    "th written (ring %u, time %" PRIu64 ", %" PRId64
			    " ns after the previous one delivered): the merged"
			    " order is not the causal one",
			    n, v, rec.ring, rec.time, (int64_t)(rec.time - last));
		if (n && rec.time < last && !unordered)
			die("merge: time went back");
		last = rec.time;
		switches += prev_ring >= 0 && prev_ring != rec.ring;
		prev_ring = rec.ring;
		n++;
	}
	if (k != 0 || n != 2 * MERGE_N)
		die("merge: %" PRIu64 " records read (%d)", n, k);
	if (unordered && switches != 1)
		die("unordered: %d switches between rings, expected ring by ring", switches);
	evr_chan_reader_get_stats(crd, &st);
	if (st.late || st.slots_owned || st.recycled != 2)
		die("merge: late %" PRIu64 ", slots owned %u, recycled %" PRIu64, st.late,
		    st.slots_owned, st.recycled);
	evr_chan_reader_destroy(crd);
	evr_chan_destroy(M.ch);
}

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
	const char *env = getenv("EVR_STRESS_SECONDS");
	double total;
	sigset_t set;

	t_init("chan-stress");
#ifdef T_TSAN
	total = t_long() ? 60 : 4;
#else
	total = t_long() ? 300 : 7;
#endif
	if (env && *env)
		total = strtod(env, NULL);
	handle(SIGUSR1);
	handle(SIGUSR2);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	prctl(PR_SET_TIMERSLACK, 1ul, 0, 0, 0);
	printf("chan-stress: seed 0x%016" PRIx64 ", %.1f s over %zu configurations\n", t_seed,
	       total, NR_CONFIGS);
	merge_order(0);
	merge_order(1);
	for (size_t i = 0; i < NR_CONFIGS; i++)
		run(&configs[i], t_mix(t_seed + i), total / NR_CONFIGS);
#ifndef T_TSAN
	/* ThreadSanitizer runs deferred handlers with every signal blocked: no nesting there */
	if (total >= 1)
		expect_true(max_depth >= 2, "nesting reached only %u handler level(s)", max_depth);
#endif
	printf("chan-stress: %s, max nest %u handler levels\n", t_failures ? "FAIL" : "ok",
	       max_depth);
	return t_done();
}
