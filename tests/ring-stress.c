// SPDX-License-Identifier: MIT
/*
 * Stress oracle of the single-writer ring: a writer thread whose SIGUSR1/SIGUSR2 handlers also
 * write (nesting two handler levels deep), a reader on the other CPU that re-derives every byte,
 * and exact conservation at the end. data_head must never go back, as any observer sees it.
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
#include "stress.h"
#include "test.h"

/*
 * The stepping observer needs the x86 trap flag and signals delivered where they land;
 * ThreadSanitizer defers asynchronous signals to its own safe points, so it is off there.
 */
#if defined(__x86_64__) && !defined(T_TSAN)
#define T_STEP 1
#endif
#ifdef T_TSAN
#define T_UNDER_TSAN 1
#else
#define T_UNDER_TSAN 0
#endif

#define LEVELS 3 /* the thread, a handler, a handler interrupting that handler */
#define SCRATCH 65536

struct config {
	const char *name;
	uint64_t data_size;
	uint32_t flags; /* EVR_RING_* */
	struct t_lenmix mix;
	uint32_t gap_ns; /* sender's pause between two signals */
	uint32_t usr2_every; /* the sender sends SIGUSR2 instead of SIGUSR1 one time in N */
	uint32_t timer_ns; /* and a timer on the writer's CPU sends it SIGUSR2 this often */
	uint32_t raise_every; /* a SIGUSR1 handler raises SIGUSR2 under its open reservation */
	uint32_t steps; /* instructions single-stepped after a handler (stepping observer) */
	uint32_t weight; /* share of the time budget */
};

/*
 * "hunt" is tuned for the nest-order control: tiny records and a signal every few microseconds,
 * so handlers often land on the instruction between lowering nest and publishing data_head.
 */
static const struct config configs[] = {
	{ "hunt", 1u << 16, EVR_RING_MIRROR, { 40, 0, 0 }, 5000, 2, 30000, 4, 3, 1 },
	{ "mirror-16k", 1u << 14, EVR_RING_MIRROR, { 300, 5000, 24 }, 10000, 4, 40000, 8, 2, 1 },
	{ "plain-32k", 1u << 15, 0, { 300, 9000, 32 }, 10000, 3, 40000, 8, 2, 1 },
	{ "mirror-1m", 1u << 20, EVR_RING_MIRROR, { 1200, 40000, 64 }, 20000, 4, 50000, 8, 2, 1 },
	{ "plain-1m", 1u << 20, 0, { 600, 30000, 64 }, 15000, 4, 50000, 8, 2, 1 },
};
#define NR_CONFIGS (sizeof(configs) / sizeof(configs[0]))

/* One run (one config): the writer context owns w[], counters and rng; main reads after join. */
static struct run {
	const struct config *cfg;
	struct evr_ring *ring;
	struct evr_ctrl *ctrl;
	uint64_t seed;
	int writer_done; /* atomic */

	struct t_wstream w[LEVELS];
	uint64_t rng[LEVELS];
	uint64_t got_usr1, got_usr2; /* each touched by one handler kind */
	uint64_t raised; /* by level-1 handlers only */
	uint32_t max_depth, max_ring_nest;
	uint32_t steps; /* cfg->steps, or EVR_STRESS_STEPS */
	uint64_t steps_taken;

	struct t_oracle o; /* reader thread; main after join */
	struct t_stress st; /* the threads, their stop flags, the first writer error */
} R;

static __thread int tls_writer;
static __thread int tls_sig; /* the signal a level-1 handler is handling */
static __thread uint32_t tls_depth; /* handler nesting of this thread */
static uint8_t scratch[LEVELS][SCRATCH];

static const char *cur_name(void)
{
	return R.cfg ? R.cfg->name : "-";
}

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ring-stress: FAIL [%s]: ", cur_name());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nring-stress: replay with EVR_SEED=0x%016" PRIx64 "\n", t_seed);
	fflush(stdout);
	fflush(stderr);
	_exit(T_FAIL);
}

/* orders against a signal handler on this thread (a compiler barrier) */
#define barrier_signal() __atomic_signal_fence(__ATOMIC_SEQ_CST)

static inline uint64_t head_now(void)
{
	return __atomic_load_n(&R.ctrl->data_head, __ATOMIC_ACQUIRE);
}

static void note_werr(uint32_t stream, int err)
{
	if (!__atomic_load_n(&R.st.werr, __ATOMIC_RELAXED)) {
		R.st.werr_stream = stream;
		__atomic_store_n(&R.st.werr, err, __ATOMIC_RELAXED);
	}
}

/*
 * ThreadSanitizer holds asynchronous signals back until the thread calls into an intercepted
 * function; give it such a point inside open reservations so that handlers still nest there.
 */
static inline void signal_point(void)
{
#ifdef T_TSAN
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
}

enum how { EMIT_WRITE, EMIT_RESERVE, EMIT_RAISE, EMIT_DISCARD };

/*
 * Emit the next record of @stream (= the current nest level). Context: the writer thread or
 * one of its handlers; async-signal-safe.
 */
static void emit(uint32_t stream, enum how how)
{
	struct t_wstream *w = &R.w[stream];
	uint64_t seq = w->next_seq;
	uint32_t len = t_payload_len(&R.cfg->mix, R.seed, stream, seq);
	struct evr_slot s;
	int err;

	if (how == EMIT_WRITE) {
		t_payload_fill(scratch[stream], len, R.seed, stream, seq);
		err = evr_ring_write(R.ring, stream, scratch[stream], len);
	} else {
		err = evr_ring_reserve(R.ring, stream, len, &s);
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
			if (how == EMIT_DISCARD) {
				err = evr_ring_discard(R.ring, &s);
				if (err)
					note_werr(stream, err);
				w->discarded++; /* the sequence number is used again */
				return;
			}
			err = evr_ring_commit(R.ring, &s);
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

#ifdef T_STEP
static __thread uint64_t tls_seen; /* largest data_head this thread has observed */
static __thread uint64_t tls_seen_pc; /* where (0: at the end of a handler) */
static __thread uint32_t tls_steps; /* single steps still to take */

/* Async-signal-safe reporting for the stepping observer: hex numbers and text, then exit. */
static size_t put_str(char *b, size_t n, const char *s)
{
	while (*s)
		b[n++] = *s++;
	return n;
}

static size_t put_hex(char *b, size_t n, uint64_t v)
{
	n = put_str(b, n, "0x");
	for (int i = 60; i >= 0; i -= 4)
		b[n++] = "0123456789abcdef"[(v >> i) & 0xf];
	return n;
}

/*
 * The stepping observer. A handler that just wrote resumes the code it interrupted under the
 * trap flag for a few instructions, and after each of them SIGTRAP looks at data_head. The
 * writer context is data_head's only writer, so this thread must see it only ever grow: with
 * the pre-1b038c6 order, a handler that lands between "nest = 0" and the outer writer's store
 * publishes a newer head, and the very next instruction stores the older one over it.
 */
static void observe_violation(uint64_t head, uint64_t seen, uint64_t pc, uint64_t seen_pc)
{
	char b[256];
	size_t n = 0;

	n = put_str(b, n, "ring-stress: FAIL [stepping observer]: data_head went backwards in the "
			  "writer context: ");
	n = put_hex(b, n, head);
	n = put_str(b, n, " after ");
	n = put_hex(b, n, seen);
	n = put_str(b, n, " (seen at pc ");
	n = put_hex(b, n, seen_pc);
	n = put_str(b, n, ", now at pc ");
	n = put_hex(b, n, pc);
	n = put_str(b, n, "; pc 0: the end of a handler");
	n = put_str(b, n, ")\nring-stress: replay with EVR_SEED=");
	n = put_hex(b, n, t_seed);
	n = put_str(b, n, "\n");
	if (write(2, b, n) < 0)
		_exit(T_FAIL);
	_exit(T_FAIL);
}

/*
 * Compare with what was seen *before* our load: a handler may run between the load and the
 * compare, publish and record a newer head, and our older value would then look like a step back.
 * A handler landing after the compare may make the update below lower tls_seen a little; that
 * weakens the next check, never makes it report a false step back.
 */
static void observe(uint64_t pc)
{
	uint64_t seen = tls_seen, seen_pc = tls_seen_pc, h;

	barrier_signal();
	h = head_now();
	if (h < seen)
		observe_violation(h, seen, pc, seen_pc);
	if (h > tls_seen) {
		tls_seen = h;
		tls_seen_pc = pc;
	}
}

static void on_trap(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	int saved = errno;

	if (!tls_writer)
		return;
	observe((uint64_t)uc->uc_mcontext.gregs[REG_RIP]);
	R.steps_taken++;
	if (tls_steps)
		tls_steps--;
	if (!tls_steps)
		uc->uc_mcontext.gregs[REG_EFL] &= ~0x100ll;
	errno = saved;
}

static void step_after(void *ucv)
{
	ucontext_t *uc = ucv;

	observe(0);
	if (R.steps) {
		tls_steps = R.steps;
		uc->uc_mcontext.gregs[REG_EFL] |= 0x100; /* TF */
	}
}
#else
static void step_after(void *ucv)
{
}
#endif

/*
 * SIGUSR1 and SIGUSR2 do not block each other, so either may interrupt the other's handler;
 * a SIGUSR1 handler at level 1 also raises SIGUSR2 while it holds a reservation.
 */
static void on_signal(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;
	uint32_t d, nest;
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
	nest = __atomic_load_n(&R.ctrl->nest, __ATOMIC_RELAXED); /* reservations we interrupted */
	atomic_max32(&R.max_ring_nest, nest + 1);
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
	/*
	 * Step only the thread's own code: a handler's code may call raise(), which blocks every
	 * signal for a moment, and a trap taken with SIGTRAP blocked would kill the process.
	 */
	if (d == 1)
		step_after(uc);
	errno = saved;
}

static void *writer_main(void *arg)
{
	sigset_t set;
	int err;

	t_pin(0);
	tls_writer = 1;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	/*
	 * The sender's signals cost an interprocessor interrupt each and arrive at a few kHz on
	 * this kind of machine; a timer interrupt on the writer's own CPU delivers tens of kHz.
	 */
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

		if (r % 64 == 0)
			emit(0, EMIT_DISCARD);
		else
			emit(0, (r >> 8) & 1 ? EMIT_RESERVE : EMIT_WRITE);
		signal_point();
	}
	/* Sender and timer have stopped: let what they sent run, then shut the handlers out. */
	sched_yield();
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	tls_writer = 0;
	/* Report the losses still pending; retry while the reader makes room. */
	for (double t0 = t_now(); (err = evr_ring_flush(R.ring)) == -ENOSPC;) {
		if (t_now() - t0 > 10) {
			note_werr(0, -ETIMEDOUT);
			break;
		}
		sched_yield();
	}
	if (err < 0 && err != -ENOSPC)
		note_werr(0, err);
	/* release: the reader's final drain sees everything, flush included */
	__atomic_store_n(&R.writer_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void check_head(uint64_t head, const char *where)
{
	if (t_oracle_head(&R.o, head, where))
		die("%s", R.o.what);
}

static void *reader_main(void *arg)
{
	struct evr_reader *rd = arg;
	struct evr_record rec;
	uint64_t tail = 0;

	t_pin(1);
	for (;;) {
		int done = __atomic_load_n(&R.writer_done, __ATOMIC_ACQUIRE);
		int n = evr_reader_begin(rd), k;
		uint64_t head;

		if (n < 0)
			die("evr_reader_begin: %s (reader at 0x%" PRIx64
			    ", data_head now 0x%" PRIx64 ", largest seen 0x%" PRIx64
			    "): data_head went backwards or is corrupt",
			    evr_strerror(n), tail, head_now(), R.o.head_max);
		head = tail + (uint64_t)n;
		check_head(head, "evr_reader_begin");
		while ((k = evr_reader_next(rd, &rec)) == 1) {
			if (t_oracle_record(&R.o, &rec))
				die("%s", R.o.what);
			check_head(head_now(), "acquire load");
		}
		if (k < 0)
			die("evr_reader_next: %s in batch [0x%" PRIx64 ", 0x%" PRIx64 ")",
			    evr_strerror(k), tail, head);
		evr_reader_end(rd);
		tail = head;
		if (n == 0) {
			if (done)
				break;
			for (int i = 0; i < 32; i++) {
				check_head(head_now(), "acquire load");
				t_cpu_relax();
			}
		}
	}
	return NULL;
}

static const char *steps_env;
static uint32_t max_depth; /* over all configurations */

static void run(const struct config *cfg, uint64_t seed, double seconds)
{
	EVR_OPTS(evr_ring_opts, ro, .data_size = cfg->data_size, .flags = cfg->flags,
		 .ring_id = 0x5354);
	struct evr_ring_stats rs = { .sz = sizeof(rs) };
	struct evr_reader_stats st = { .sz = sizeof(st) };
	struct evr_reader *rd;
	uint64_t written = 0, wlost = 0, discarded = 0;
	double el;
	int err;

	memset(&R, 0, sizeof(R));
	R.cfg = cfg;
	R.seed = seed;
	R.steps = steps_env ? (uint32_t)atoi(steps_env) : cfg->steps;
	for (int i = 0; i < LEVELS; i++)
		R.rng[i] = t_mix(seed + 0x100 + (uint64_t)i);
	err = evr_ring_create(&ro, &R.ring);
	if (err)
		die("evr_ring_create(%" PRIu64 ", 0x%x): %s", cfg->data_size, cfg->flags,
		    evr_strerror(err));
	R.ctrl = evr_ring_get_ctrl(R.ring);
	err = evr_reader_create(R.ring, NULL, &rd);
	if (err)
		die("evr_reader_create: %s", evr_strerror(err));
	if (t_oracle_init(&R.o, seed, ro.ring_id, LEVELS, &cfg->mix))
		die("out of memory");

	R.st.usr2_every = cfg->usr2_every;
	R.st.gap_ns = cfg->gap_ns;
	if (t_stress_run(&R.st, writer_main, reader_main, rd, seconds))
		die("pthread_create");
	el = R.st.t_end - R.st.t_start;

	if (R.st.werr)
		die("writer context, stream %u: unexpected %s (%d)", R.st.werr_stream,
		    evr_strerror(R.st.werr), R.st.werr);
	if (t_oracle_conserve(&R.o, R.w))
		die("%s", R.o.what);
	evr_ring_get_stats(R.ring, &rs);
	evr_reader_get_stats(rd, &st);
	for (int i = 0; i < LEVELS; i++) {
		written += R.w[i].attempted - R.w[i].lost;
		wlost += R.w[i].lost;
		discarded += R.w[i].discarded;
	}
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
	if (rs.data_head != R.o.head_max || rs.data_tail != rs.data_head)
		die("end state: data_head 0x%" PRIx64 ", data_tail 0x%" PRIx64
		    ", reader reached 0x%" PRIx64,
		    rs.data_head, rs.data_tail, R.o.head_max);
	if (R.max_depth > max_depth)
		max_depth = R.max_depth;

	printf("ring-stress: %-10s %5.2fs written %" PRIu64 " read %" PRIu64 " lost %" PRIu64
	       " (%" PRIu64 " LOST records) discarded %" PRIu64 "\n",
	       cfg->name, el, written, R.o.read, R.o.lost, R.o.lost_records, discarded);
	printf("ring-stress: %-10s signals sent %" PRIu64 " (%.1f kHz), delivered %" PRIu64
	       " (%.1f kHz: USR1 %" PRIu64 ", USR2 %" PRIu64 "; %" PRIu64 " raised in a handler)"
	       ", max nest %u handler levels / ring nest %u, steps %" PRIu64
	       ", head samples %" PRIu64 "\n",
	       cfg->name, R.st.sent, R.st.sent / el / 1e3, R.got_usr1 + R.got_usr2,
	       (R.got_usr1 + R.got_usr2) / el / 1e3, R.got_usr1, R.got_usr2, R.raised, R.max_depth,
	       R.max_ring_nest, R.steps_taken, R.o.head_samples);
	t_oracle_fini(&R.o);
	evr_reader_destroy(rd);
	evr_ring_destroy(R.ring);
	R.ring = NULL;
	R.cfg = NULL;
}

static void handle(int sig, void (*fn)(int, siginfo_t *, void *), int block_usr)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = fn;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask); /* the writing handlers do not block each other */
	if (block_usr) {
		sigaddset(&sa.sa_mask, SIGUSR1);
		sigaddset(&sa.sa_mask, SIGUSR2);
	}
	if (sigaction(sig, &sa, NULL))
		die("sigaction(%d)", sig);
}

int main(void)
{
	const char *env = getenv("EVR_STRESS_SECONDS");
	double total, weights = 0;
	sigset_t set;

	t_init("ring-stress");
	steps_env = getenv("EVR_STRESS_STEPS"); /* 0: the reader is the only observer */
#ifdef T_TSAN
	total = t_long() ? 60 : 2.5;
#else
	total = t_long() ? 300 : 4;
#endif
	if (env && *env)
		total = strtod(env, NULL);
	handle(SIGUSR1, on_signal, 0);
	handle(SIGUSR2, on_signal, 0);
#ifdef T_STEP
	/* nothing may set the trap flag on the trap handler itself: it runs with SIGTRAP blocked */
	handle(SIGTRAP, on_trap, 1);
#endif
	/* only the writer takes the signals: the others start with them blocked */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	prctl(PR_SET_TIMERSLACK, 1ul, 0, 0, 0);
	printf("ring-stress: seed 0x%016" PRIx64 ", %.1f s over %zu configurations%s\n", t_seed,
	       total, NR_CONFIGS,
#ifdef T_STEP
	       ", stepping observer on"
#else
	       ""
#endif
	);
	for (size_t i = 0; i < NR_CONFIGS; i++)
		weights += configs[i].weight;
	for (size_t i = 0; i < NR_CONFIGS; i++)
		run(&configs[i], t_mix(t_seed + i), total * configs[i].weight / weights);
	/*
	 * ThreadSanitizer runs deferred handlers with every signal blocked, so they cannot nest
	 * there; everywhere else two handler levels are required.
	 */
	if (!T_UNDER_TSAN && total >= 1)
		expect_true(max_depth >= 2, "nesting reached only %u handler level(s)", max_depth);
	printf("ring-stress: %s, max nest %u handler levels\n", t_failures ? "FAIL" : "ok",
	       max_depth);
	return t_done();
}
