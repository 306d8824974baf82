// SPDX-License-Identifier: MIT
/*
 * Stress oracle of the flight ring: a writer thread whose SIGUSR1/SIGUSR2 handlers also write
 * (nesting two handler levels deep), on tiny pages so that the head is pushed (overwrite mode)
 * or the ring fills (produce/consume mode) all the time, and a reader on the other CPU that
 * swaps pages out with evr_flight_read(), re-derives every byte, checks per-stream sequences,
 * accounts the LOST records, and now and then takes a snapshot whose records it checks the same
 * way. At the end, exact conservation: every record attempted was read, overwritten or refused.
 *
 * What the design promises and the oracle relies on (src/flight.c):
 *  - a stream (one nest level) reserves its records one after another, and records never move
 *    between pages: the reader sees each stream's sequence numbers strictly increasing;
 *  - every entry pushed out is counted once in overrun and reported by the next swap (F4); every
 *    refused write is counted in lost and reported the same way: the LOST records' sum equals
 *    the sequence gaps, and equals overwritten + refused as the writer counted them;
 *  - a snapshot is a run of pages with consecutive sequences ending at the reader's page, from
 *    the reader's read offset on: called from the reader's own thread, it holds no record the
 *    reader consumed already, and its records come oldest first.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "evring.h"
#include "evring/abi.h"
#include "oracle.h"
#include "stress.h"
#include "test.h"

#ifdef T_TSAN
#define T_UNDER_TSAN 1
#else
#define T_UNDER_TSAN 0
#endif

#define LEVELS 3 /* the thread, a handler, a handler interrupting that handler */
#define SCRATCH 65536
#define RHDR 8u /* struct evr_record_header */

struct config {
	const char *name;
	uint32_t flags; /* EVR_RING_FLIGHT [| EVR_RING_OVERWRITE] */
	uint32_t psize; /* bytes per page, header included */
	uint32_t pages; /* ring pages (a power of two: data_size must be one) */
	struct t_lenmix mix; /* large_max 0: a page's whole payload room */
	uint32_t gap_ns; /* sender's pause between two signals */
	uint32_t usr2_every; /* the sender sends SIGUSR2 instead of SIGUSR1 one time in N */
	uint32_t timer_ns; /* a timer on the writer's CPU sends it SIGUSR2 this often */
	uint32_t raise_every; /* a SIGUSR1 handler raises SIGUSR2 under its open reservation */
	uint32_t snap_every; /* reader: a snapshot every N loop turns */
	uint32_t weight; /* share of the time budget */
};

static const struct config configs[] = {
	{ "ow-256x2", EVR_RING_FLIGHT | EVR_RING_OVERWRITE, 256, 2, { 48, 0, 8 }, 8000, 3, 30000,
	  4, 8, 1 },
	{ "ow-512x4", EVR_RING_FLIGHT | EVR_RING_OVERWRITE, 512, 4, { 64, 0, 6 }, 8000, 3, 30000,
	  4, 16, 1 },
	{ "ow-1024x8", EVR_RING_FLIGHT | EVR_RING_OVERWRITE, 1024, 8, { 120, 0, 10 }, 10000, 4,
	  40000, 8, 16, 1 },
	{ "pc-256x2", EVR_RING_FLIGHT, 256, 2, { 48, 0, 8 }, 8000, 3, 30000, 4, 8, 1 },
	{ "pc-512x4", EVR_RING_FLIGHT, 512, 4, { 64, 0, 6 }, 8000, 3, 30000, 4, 16, 1 },
	{ "pc-1024x8", EVR_RING_FLIGHT, 1024, 8, { 120, 0, 10 }, 10000, 4, 40000, 8, 16, 1 },
};
#define NR_CONFIGS (sizeof(configs) / sizeof(configs[0]))

/* Reader-side accounting of LOST records and snapshots. */
struct lostacct {
	uint64_t sum; /* of every LOST record's count */
	uint64_t only_ow, only_full, mixed; /* by causes */
	uint64_t records;
	uint64_t snaps, snap_records, snap_pages, snap_empty;
	uint64_t written_seen, ow_seen, lost_seen; /* largest counters seen (never go back) */
	uint64_t reads_zero; /* evr_flight_read() returned 0 */
};

/* One run (one config): the writer context owns w[] and rng; main reads after join. */
static struct run {
	const struct config *cfg;
	struct t_lenmix mix;
	struct evr_session *sess;
	struct evr_flight *f;
	uint64_t seed;
	int writer_done; /* atomic */

	struct t_wstream w[LEVELS];
	uint64_t rng[LEVELS];
	uint64_t got_usr1, got_usr2;
	uint64_t raised;
	uint32_t max_depth;

	struct t_oracle o; /* reader thread; main after join */
	struct lostacct la;
	struct t_stress st; /* the threads, their stop flags, the first writer error */
} R;

static __thread int tls_writer;
static __thread int tls_sig;
static __thread uint32_t tls_depth;
static uint8_t scratch[LEVELS][SCRATCH];

static const char *cur_name(void)
{
	return R.cfg ? R.cfg->name : "-";
}

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "flight-stress: FAIL [%s]: ", cur_name());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nflight-stress: replay with EVR_SEED=0x%016" PRIx64 "\n", t_seed);
	fflush(stdout);
	fflush(stderr);
	_exit(T_FAIL);
}

static void note_werr(uint32_t stream, int err)
{
	if (!__atomic_load_n(&R.st.werr, __ATOMIC_RELAXED)) {
		R.st.werr_stream = stream;
		__atomic_store_n(&R.st.werr, err, __ATOMIC_RELAXED);
	}
}

/* ThreadSanitizer delivers asynchronous signals at intercepted calls: give it one. */
static inline void signal_point(void)
{
#ifdef T_TSAN
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
}

enum how { EMIT_WRITE, EMIT_RESERVE, EMIT_RAISE };

/* Emit the next record of @stream (= the nest level). Context: the writer or its handlers. */
static void emit(uint32_t stream, enum how how)
{
	struct t_wstream *w = &R.w[stream];
	uint64_t seq = w->next_seq;
	uint32_t len = t_payload_len(&R.mix, R.seed, stream, seq);
	struct evr_slot s;
	int err;

	if (how == EMIT_WRITE) {
		t_payload_fill(scratch[stream], len, R.seed, stream, seq);
		err = evr_flight_write(R.f, stream, scratch[stream], len);
	} else {
		err = evr_flight_reserve(R.f, stream, len, &s);
		if (!err) {
			if (s.len != len)
				note_werr(stream, -EPROTO);
			t_payload_fill(s.data, len, R.seed, stream, seq);
			signal_point();
			if (how == EMIT_RAISE) {
				/* the other signal runs now, nested, under this reservation */
				R.raised++;
				raise(tls_sig == SIGUSR1 ? SIGUSR2 : SIGUSR1);
			}
			err = evr_flight_commit(R.f, &s);
		}
	}
	err = t_wstream_done(w, err);
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
	int saved = errno;
	uint32_t d;
	uint64_t r;

	if (!tls_writer)
		return;
	d = ++tls_depth;
	if (d >= LEVELS) {
		note_werr(d, -ELOOP);
		tls_depth--;
		return;
	}
	atomic_max32(&R.max_depth, d);
	if (sig == SIGUSR1)
		R.got_usr1++;
	else
		R.got_usr2++;
	r = t_rand(&R.rng[d]);
	if (d == 1 && R.cfg->raise_every && r % R.cfg->raise_every == 0) {
		tls_sig = sig;
		emit(d, EMIT_RAISE);
	} else {
		emit(d, (r >> 8) & 1 ? EMIT_RESERVE : EMIT_WRITE);
	}
	if ((r >> 9) & 1)
		emit(d, EMIT_WRITE);
	tls_depth--;
	errno = saved;
}

static void *writer_main(void *arg)
{
	sigset_t set;

	t_pin(0);
	tls_writer = 1;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	if (R.cfg->timer_ns) {
		struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGUSR2 };
		struct itimerspec it = { { 0, R.cfg->timer_ns }, { 0, R.cfg->timer_ns } };

		sev._sigev_un._tid = gettid();
		if (timer_create(CLOCK_MONOTONIC, &sev, &R.st.timer))
			note_werr(0, -errno);
		else if (timer_settime(R.st.timer, 0, &it, NULL))
			note_werr(0, -errno);
		R.st.have_timer = !R.st.werr;
	}
	__atomic_store_n(&R.st.writer_ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&R.st.stop_writer, __ATOMIC_RELAXED) &&
	       !__atomic_load_n(&R.st.werr, __ATOMIC_RELAXED)) {
		uint64_t r = t_rand(&R.rng[0]);

		emit(0, (r >> 8) & 1 ? EMIT_RESERVE : EMIT_WRITE);
		signal_point();
	}
	sched_yield();
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	tls_writer = 0;
	/* release: the reader's final drain sees every record */
	__atomic_store_n(&R.writer_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void check_lost(const struct evr_record *rec)
{
	struct evr_lost_body b;
	uint32_t ok = EVR_LOST_OVERWRITTEN | EVR_LOST_FULL;

	if (!(rec->hdr->misc & EVR_MISC_EVRING) || rec->len < sizeof(b))
		die("LOST record without evring body (len %u)", rec->len);
	memcpy(&b, rec->data, sizeof(b));
	if (b.lost == 0 || b.id != 0 || !b.causes || (b.causes & ~ok) || b.reserved)
		die("bad LOST record: lost %" PRIu64 " id %" PRIu64 " causes 0x%x reserved %u",
		    b.lost, b.id, b.causes, b.reserved);
	if ((b.causes & EVR_LOST_OVERWRITTEN) && !(R.cfg->flags & EVR_RING_OVERWRITE))
		die("LOST record says OVERWRITTEN (%" PRIu64 ") in produce/consume mode", b.lost);
	R.la.sum += b.lost;
	R.la.records++;
	if (b.causes == EVR_LOST_OVERWRITTEN)
		R.la.only_ow += b.lost;
	else if (b.causes == EVR_LOST_FULL)
		R.la.only_full += b.lost;
	else
		R.la.mixed += b.lost;
}

/* The ring's published counters only grow, as any observer sees them. */
static void check_counters(const char *where)
{
	struct evr_flight_stats st = { .sz = sizeof(st) };

	if (evr_flight_get_stats(R.f, &st))
		die("evr_flight_get_stats");
	if (st.written < R.la.written_seen || st.overwritten < R.la.ow_seen ||
	    st.lost < R.la.lost_seen)
		die("counters went backwards (%s): written %" PRIu64 " after %" PRIu64
		    ", overwritten %" PRIu64 " after %" PRIu64 ", lost %" PRIu64 " after %" PRIu64,
		    where, st.written, R.la.written_seen, st.overwritten, R.la.ow_seen, st.lost,
		    R.la.lost_seen);
	R.la.written_seen = st.written;
	R.la.ow_seen = st.overwritten;
	R.la.lost_seen = st.lost;
}

/* One snapshot's view: per-stream order within it. */
struct snapview {
	uint64_t next[LEVELS]; /* lowest sequence the next record of the stream may carry */
	uint64_t n;
};

/* A snapshot record: whole, in per-stream order, and never one the reader consumed. */
static int snap_cb(const struct evr_record *rec, void *arg)
{
	struct snapview *v = arg;
	struct t_payload_hdr h;
	uint32_t want_len;
	long off;

	if (!rec->is_app)
		die("snapshot: record type %u at pos %" PRIu64 " is not an application record",
		    rec->type, rec->pos);
	if (rec->len < sizeof(h))
		die("snapshot: record at pos %" PRIu64 " (id %u) too short: %u bytes", rec->pos,
		    rec->type, rec->len);
	memcpy(&h, rec->data, sizeof(h));
	if (h.stream >= LEVELS || h.stream != rec->type)
		die("snapshot: record at pos %" PRIu64 ": id %u, stream field %u", rec->pos,
		    rec->type, h.stream);
	if (h.seq < v->next[h.stream])
		die("snapshot: stream %u seq %" PRIu64 " at pos %" PRIu64 " after seq %" PRIu64
		    " in the same snapshot",
		    h.stream, h.seq, rec->pos, v->next[h.stream] - 1);
	if (h.seq < R.o.s[h.stream].next)
		die("snapshot: stream %u seq %" PRIu64 " at pos %" PRIu64
		    ": the reader consumed up to seq %" PRIu64 " already",
		    h.stream, h.seq, rec->pos, R.o.s[h.stream].next - 1);
	want_len = t_payload_len(&R.mix, R.seed, h.stream, h.seq);
	if (rec->len != want_len || h.len != want_len)
		die("snapshot: stream %u seq %" PRIu64 " at pos %" PRIu64
		    ": length %u (header says %u), expected %u",
		    h.stream, h.seq, rec->pos, rec->len, h.len, want_len);
	off = t_payload_diff(rec->data, rec->len, R.seed, h.stream, h.seq);
	if (off >= 0)
		die("snapshot: stream %u seq %" PRIu64 " at pos %" PRIu64
		    ": payload byte %ld of %u differs",
		    h.stream, h.seq, rec->pos, off, rec->len);
	v->next[h.stream] = h.seq + 1;
	v->n++;
	return 0;
}

static void snapshot(void)
{
	struct evr_flight_stats st = { .sz = sizeof(st) };
	struct snapview v;
	int k;

	memset(&v, 0, sizeof(v));
	k = evr_flight_snapshot(R.f, snap_cb, &v, &st);
	if (k < 0)
		die("evr_flight_snapshot: %s", evr_strerror(k));
	if ((uint64_t)k != v.n || st.records != v.n || st.bad)
		die("snapshot: returned %d, handed out %" PRIu64 ", stats say %" PRIu64
		    " records, %" PRIu64 " bad",
		    k, v.n, st.records, st.bad);
	if (st.pages > R.cfg->pages + 1)
		die("snapshot: %" PRIu64 " pages from a ring of %u + the reader's", st.pages,
		    R.cfg->pages);
	R.la.snaps++;
	R.la.snap_records += v.n;
	R.la.snap_pages += st.pages;
	R.la.snap_empty += !v.n;
}

static void *reader_main(void *arg)
{
	struct evr_record rec;
	uint64_t turn = 0;

	t_pin(1);
	for (;;) {
		int done = __atomic_load_n(&R.writer_done, __ATOMIC_ACQUIRE);
		int k;

		while ((k = evr_flight_read(R.f, &rec)) == 1) {
			if (!rec.is_app && rec.type == EVR_TYPE_LOST)
				check_lost(&rec);
			else if (t_oracle_record(&R.o, &rec))
				die("%s", R.o.what);
			if (++turn % R.cfg->snap_every == 0) {
				snapshot();
				check_counters("reader");
			}
		}
		if (k < 0)
			die("evr_flight_read: %s", evr_strerror(k));
		R.la.reads_zero++;
		if (done)
			break;
		if (++turn % R.cfg->snap_every == 0)
			snapshot();
		for (int i = 0; i < 16; i++)
			t_cpu_relax();
	}
	return NULL;
}

static uint32_t max_depth; /* over all configurations */

/*
 * The writer's own error counters, read from the session's memory: nothing here is corrupt,
 * so a writer that called its list corrupt (a loop bound tripped by a busy writer, as one
 * did under ThreadSanitizer) is a bug even when the records still add up.
 */
static void writer_errors(void)
{
	int fd = evr_session_get_fd(R.sess);
	const struct evr_session_hdr *h;
	const struct evr_flight_ctrl *fc;
	size_t len;
	void *m;

	if (fd < 0)
		die("evr_session_get_fd: %s", evr_strerror(fd));
	m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		die("mmap(session header)");
	h = m;
	len = h->size;
	munmap(m, 4096);
	m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		die("mmap(session)");
	h = m;
	if (h->nr_rings != 1 || h->entries[0].offset + 4096 > len)
		die("session directory: %u rings, ring at %" PRIu64, h->nr_rings,
		    h->entries[0].offset);
	fc = (const void *)((const uint8_t *)m + h->entries[0].offset + EVR_FLIGHT_CTRL_OFFSET);
	if (fc->err_corrupt || fc->err_msgsize || fc->err_nest)
		die("writer error counters: corrupt %" PRIu64 ", msgsize %" PRIu64
		    ", nest %" PRIu64,
		    fc->err_corrupt, fc->err_msgsize, fc->err_nest);
	munmap(m, len);
}

/* Exact conservation, once the writer stopped and the reader drained. */
static void conserve(void)
{
	struct evr_flight_stats st = { .sz = sizeof(st) };
	uint64_t attempted = 0, committed = 0, refused = 0, gaps = 0, extra = 0;
	int ow = !!(R.cfg->flags & EVR_RING_OVERWRITE);

	if (evr_flight_get_stats(R.f, &st))
		die("evr_flight_get_stats");
	for (uint32_t i = 0; i < LEVELS; i++) {
		const struct t_wstream *w = &R.w[i];
		const struct t_rstream *s = &R.o.s[i];
		uint64_t gone;

		if (w->next_seq < s->next)
			die("stream %u: read seq %" PRIu64 " never written (%" PRIu64 " attempted)",
			    i, s->next - 1, w->next_seq);
		if (w->attempted < s->read + w->lost)
			die("stream %u: attempted %" PRIu64 " < read %" PRIu64
			    " + refused %" PRIu64,
			    i, w->attempted, s->read, w->lost);
		gone = w->attempted - s->read - w->lost; /* overwritten: only in overwrite mode */
		if (!ow && gone)
			die("stream %u: attempted %" PRIu64 " != read %" PRIu64
			    " + refused %" PRIu64 " in produce/consume mode",
			    i, w->attempted, s->read, w->lost);
		if (s->gaps + (w->next_seq - s->next) != gone + w->lost)
			die("stream %u: sequence gaps %" PRIu64 " != overwritten %" PRIu64
			    " + refused %" PRIu64,
			    i, s->gaps + (w->next_seq - s->next), gone, w->lost);
		attempted += w->attempted;
		refused += w->lost;
		committed += w->attempted - w->lost;
		gaps += s->gaps + (w->next_seq - s->next);
		extra += gone;
	}
	if (st.written != committed || st.lost != refused)
		die("ring counters: written %" PRIu64 " (writers committed %" PRIu64
		    "), lost %" PRIu64 " (writers refused %" PRIu64 ")",
		    st.written, committed, st.lost, refused);
	if (committed != R.o.read + st.overwritten)
		die("conservation: written %" PRIu64 " != read %" PRIu64 " + overwritten %" PRIu64
		    " (the streams' sequence gaps say %" PRIu64
		    " overwritten, the LOST records %" PRIu64 ")",
		    committed, R.o.read, st.overwritten, extra, R.la.sum - refused);
	if (attempted != R.o.read + R.la.sum || R.la.sum != st.overwritten + st.lost ||
	    gaps != R.la.sum)
		die("conservation: attempted %" PRIu64 ", read %" PRIu64
		    ", LOST records' sum %" PRIu64 " (overwritten only %" PRIu64
		    ", refused only %" PRIu64 ", both %" PRIu64
		    "), ring counters overwritten %" PRIu64 " + lost %" PRIu64
		    ", sequence gaps %" PRIu64,
		    attempted, R.o.read, R.la.sum, R.la.only_ow, R.la.only_full, R.la.mixed,
		    st.overwritten, st.lost, gaps);
	if (R.la.only_ow > st.overwritten || R.la.only_full > st.lost ||
	    R.la.only_ow + R.la.mixed < st.overwritten || R.la.only_full + R.la.mixed < st.lost)
		die("LOST causes: overwritten only %" PRIu64 ", refused only %" PRIu64
		    ", both %" PRIu64 "; ring counters overwritten %" PRIu64 ", lost %" PRIu64,
		    R.la.only_ow, R.la.only_full, R.la.mixed, st.overwritten, st.lost);
	if (extra != st.overwritten)
		die("overwritten: %" PRIu64 " by the streams' accounts, %" PRIu64 " by the ring",
		    extra, st.overwritten);
	if (st.records != R.o.read + R.la.records || st.bad)
		die("reader stats: records %" PRIu64 " (checked %" PRIu64 " + %" PRIu64
		    " LOST), bad %" PRIu64,
		    st.records, R.o.read, R.la.records, st.bad);
}

static void run(const struct config *cfg, uint64_t seed, double seconds)
{
	EVR_OPTS(evr_session_opts, so, .nr_rings = 1, .ring_flags = cfg->flags,
		 .data_size = (uint64_t)cfg->psize * cfg->pages, .flight_page_size = cfg->psize);
	struct evr_flight_stats st = { .sz = sizeof(st) };
	uint32_t room = cfg->psize - 32 - RHDR; /* a page's payload room */
	double el;
	int err;

	memset(&R, 0, sizeof(R));
	R.cfg = cfg;
	R.seed = seed;
	R.mix = cfg->mix;
	if (!R.mix.large_max)
		R.mix.large_max = room; /* some records nearly fill a page, some fill it */
	for (int i = 0; i < LEVELS; i++)
		R.rng[i] = t_mix(seed + 0x100 + (uint64_t)i);
	err = evr_session_create(&so, &R.sess);
	if (err)
		die("evr_session_create(%u x %u, 0x%x): %s", cfg->pages, cfg->psize, cfg->flags,
		    evr_strerror(err));
	err = evr_session_get_flight(R.sess, 0, &R.f);
	if (err)
		die("evr_session_get_flight: %s", evr_strerror(err));
	if (t_oracle_init(&R.o, seed, 0, LEVELS, &R.mix))
		die("out of memory");

	R.st.usr2_every = cfg->usr2_every;
	R.st.gap_ns = cfg->gap_ns;
	if (t_stress_run(&R.st, writer_main, reader_main, NULL, seconds))
		die("pthread_create");
	el = R.st.t_end - R.st.t_start;

	if (R.st.werr)
		die("writer context, stream %u: unexpected %s (%d)", R.st.werr_stream,
		    evr_strerror(R.st.werr), R.st.werr);
	conserve();
	writer_errors();
	/* drained: a last snapshot finds nothing the reader has not consumed */
	{
		struct snapview v;

		memset(&v, 0, sizeof(v));
		err = evr_flight_snapshot(R.f, snap_cb, &v, &st);
		if (err != 0)
			die("snapshot after the drain: %d records", err);
	}
	if (R.max_depth > max_depth)
		max_depth = R.max_depth;

	{
		uint64_t attempted = 0, refused = 0;

		for (int i = 0; i < LEVELS; i++) {
			attempted += R.w[i].attempted;
			refused += R.w[i].lost;
		}
		evr_flight_get_stats(R.f, &st);
		printf("flight-stress: %-9s %5.2fs attempted %" PRIu64 " read %" PRIu64
		       " overwritten %" PRIu64 " refused %" PRIu64 " (%" PRIu64
		       " LOST records), pages swapped %" PRIu64 "\n",
		       cfg->name, el, attempted, R.o.read, st.overwritten, refused, R.la.records,
		       st.pages);
		printf("flight-stress: %-9s snapshots %" PRIu64 " (%" PRIu64 " records, %" PRIu64
		       " pages, %" PRIu64 " empty); signals sent %" PRIu64 ", delivered %" PRIu64
		       " (%.1f kHz, %" PRIu64 " raised in a handler), max nest %u handler levels\n",
		       cfg->name, R.la.snaps, R.la.snap_records, R.la.snap_pages, R.la.snap_empty,
		       R.st.sent, R.got_usr1 + R.got_usr2, (R.got_usr1 + R.got_usr2) / el / 1e3,
		       R.raised, R.max_depth);
	}
	t_oracle_fini(&R.o);
	evr_session_destroy(R.sess);
	R.sess = NULL;
	R.f = NULL;
	R.cfg = NULL;
}

static void handle(int sig, void (*fn)(int, siginfo_t *, void *))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = fn;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask); /* the writing handlers do not block each other */
	if (sigaction(sig, &sa, NULL))
		die("sigaction(%d)", sig);
}

/* EVR_FLIGHT_ONLY picks the configurations whose name holds it; all of them run otherwise */
static int picked(const struct config *c, const char *only)
{
	return !only || !*only || strstr(c->name, only) != NULL;
}

int main(void)
{
	const char *env = getenv("EVR_STRESS_SECONDS");
	const char *only = getenv("EVR_FLIGHT_ONLY"); /* configurations whose name holds it */
	double total, weights = 0;
	sigset_t set;

	t_init("flight-stress");
#ifdef T_TSAN
	total = t_long() ? 60 : 2.5;
#else
	total = t_long() ? 300 : 4;
#endif
	if (env && *env)
		total = strtod(env, NULL);
	handle(SIGUSR1, on_signal);
	handle(SIGUSR2, on_signal);
	/* only the writer takes the signals: the others start with them blocked */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	prctl(PR_SET_TIMERSLACK, 1ul, 0, 0, 0);
	printf("flight-stress: seed 0x%016" PRIx64 ", %.1f s over %zu configurations\n", t_seed,
	       total, NR_CONFIGS);
	for (size_t i = 0; i < NR_CONFIGS; i++)
		if (picked(&configs[i], only))
			weights += configs[i].weight;
	for (size_t i = 0; i < NR_CONFIGS; i++)
		if (picked(&configs[i], only))
			run(&configs[i], t_mix(t_seed + i), total * configs[i].weight / weights);
	/* ThreadSanitizer runs deferred handlers with every signal blocked: they cannot nest */
	if (!T_UNDER_TSAN && total >= 1)
		expect_true(max_depth >= 2, "nesting reached only %u handler level(s)", max_depth);
	printf("flight-stress: %s, max nest %u handler levels\n", t_failures ? "FAIL" : "ok",
	       max_depth);
	return t_done();
}
