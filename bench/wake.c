// SPDX-License-Identifier: MIT
/*
 * The cost of blocking reads, two figures:
 *  WAKE    latency from the commit that crosses the watermark to the reader running again: a
 *          writer process stamps CLOCK_MONOTONIC into the record right before committing it,
 *          the reader (this process, asleep in evr_reader_wait()) stamps when the call returns.
 *          Interleaved sample by sample with a bare futex ping of the same shape (impl=futex),
 *          the floor any futex-based wakeup pays.
 *  COMMIT  the writer's ns/record, W1-style (one thread writes a timed batch, then drains it as
 *          the reader, never waiting), with a watermark the batches cross (impl=evring-nowaiter)
 *          against a watermark of the whole ring (impl=evring-nowake). With the first wake
 *          check, crossing meant a look at data_tail on every commit past the watermark; the
 *          check now looks at reader_waiting first, so both take the same path and the ratio
 *          guards against that cost coming back. Interleaved rounds, medians.
 * Prints BENCH lines (and SAMPLE lines for the COMMIT rounds) and a RATIO line per payload.
 */
#define _GNU_SOURCE
#include <evring.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define MAX_ROUNDS 64

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* @v is sorted by the first call with a new array (callers pass sorted = 0 once). */
static double quantile(double *v, size_t n, double q, int sorted)
{
	double pos;
	size_t i;

	if (!sorted)
		qsort(v, n, sizeof(*v), cmp_double);
	pos = q * (double)(n - 1);
	i = (size_t)pos;
	if (i + 1 >= n)
		return v[n - 1];
	return v[i] + (pos - (double)i) * (v[i + 1] - v[i]);
}

/* ---- WAKE ---------------------------------------------------------------------------------- */

enum { WK_EVRING, WK_FUTEX, NR_WK };

static const char *const wk_names[NR_WK] = { "evring", "futex" };

/* Shared by the reader (this process) and the writer child. */
struct wake_shared {
	uint32_t r_sleeping __attribute__((aligned(64))); /* R: about to block in the sample */
	uint32_t r_kind; /* R: WK_* of the sample */
	uint32_t r_sample; /* R: sample number */
	uint32_t r_quit; /* R */
	uint32_t futex_word __attribute__((aligned(64))); /* W: the bare futex of WK_FUTEX */
	uint64_t futex_stamp; /* W: its stamp */
	uint32_t w_done __attribute__((aligned(64))); /* W: last sample it served */
	int w_err;
};

static inline long futex(uint32_t *uaddr, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

/* 'S' when @fd (/proc/<pid>/stat) says the task sleeps, else the state letter or '?'. */
static char task_state(int fd)
{
	char buf[512], *p;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return '?';
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

/*
 * The writer child: for each sample, wait until the reader is asleep in the kernel (its task
 * state is S, checked through /proc), then stamp and commit the crossing record (or bump the
 * bare futex and wake it).
 */
static void __attribute__((noreturn)) wake_writer(int sfd, struct wake_shared *sh, int cpu,
						  pid_t reader, uint32_t wm)
{
	struct evr_session *ws;
	struct evr_ring *ring;
	char path[64];
	uint32_t served = 0;
	int err, fd;

	err = evr_session_open_fd(sfd, EVR_SESSION_WRITER, &ws);
	if (!err)
		err = evr_session_get_ring(ws, 0, &ring);
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)reader);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (err || fd < 0) {
		sh->w_err = err ? err : -errno;
		__atomic_store_n(&sh->w_done, UINT32_MAX, __ATOMIC_RELEASE);
		_exit(1);
	}
	bench_pin(cpu);
	while (!__atomic_load_n(&sh->r_quit, __ATOMIC_ACQUIRE)) {
		uint32_t sample = __atomic_load_n(&sh->r_sample, __ATOMIC_ACQUIRE);
		uint64_t t;

		if (sample == served || !__atomic_load_n(&sh->r_sleeping, __ATOMIC_ACQUIRE)) {
			cpu_relax();
			continue;
		}
		/* asleep: state S, and still the same sample (the state is read, not locked) */
		if (task_state(fd) != 'S')
			continue;
		if (__atomic_load_n(&sh->r_kind, __ATOMIC_RELAXED) == WK_EVRING) {
			struct evr_slot slot;

			err = evr_ring_reserve(ring, BENCH_ID, wm - 8, &slot);
			if (err) {
				sh->w_err = err;
				__atomic_store_n(&sh->w_done, UINT32_MAX, __ATOMIC_RELEASE);
				_exit(1);
			}
			memset(slot.data, 0, slot.len);
			t = bench_now_ns();
			memcpy(slot.data, &t, sizeof(t));
			evr_ring_commit(ring, &slot); /* crosses the watermark: wakes the reader */
		} else {
			t = bench_now_ns();
			__atomic_store_n(&sh->futex_stamp, t, __ATOMIC_RELAXED);
			__atomic_fetch_add(&sh->futex_word, 1, __ATOMIC_RELEASE);
			futex(&sh->futex_word, FUTEX_WAKE, INT_MAX, NULL);
		}
		served = sample;
		__atomic_store_n(&sh->w_done, served, __ATOMIC_RELEASE);
	}
	evr_session_close(ws);
	_exit(0);
}

static void run_wake(int wcpu, int rcpu)
{
	long nsamples = bench_knob("BENCH_WAKE_SAMPLES", 20000, 1000);
	const uint32_t wm = 64; /* one 64-byte record crosses it */
	EVR_OPTS(evr_session_opts, so, .nr_rings = 1, .data_size = 65536);
	struct evr_session *s;
	struct evr_ring *ring;
	struct evr_reader *rd;
	struct wake_shared *sh;
	double *lat[NR_WK];
	size_t n[NR_WK] = { 0 };
	int err, status, pinned;
	pid_t pid;

	err = evr_session_create(&so, &s);
	if (!err)
		err = evr_session_get_ring(s, 0, &ring);
	if (!err)
		err = evr_reader_create(ring, NULL, &rd);
	if (!err)
		err = evr_reader_set_watermark(rd, wm);
	if (err)
		bench_die("WAKE: session: %s", evr_strerror(err));
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	lat[0] = calloc((size_t)nsamples, sizeof(double));
	lat[1] = calloc((size_t)nsamples, sizeof(double));
	if (sh == MAP_FAILED || !lat[0] || !lat[1])
		bench_die("WAKE: out of memory");
	memset(sh, 0, sizeof(*sh));
	pinned = bench_pin(rcpu) == 0;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		bench_die("fork: %s", strerror(errno));
	if (pid == 0)
		wake_writer(evr_session_get_fd(s), sh, wcpu, getppid(), wm);

	/* sample 0 and 1 are warm-up; then evring and the bare futex alternate */
	for (uint32_t i = 1; i <= (uint32_t)nsamples * 2 + 2; i++) {
		int kind = (int)(i % 2);
		uint64_t t1, stamp = 0;

		__atomic_store_n(&sh->r_kind, (uint32_t)kind, __ATOMIC_RELAXED);
		__atomic_store_n(&sh->r_sample, i, __ATOMIC_RELEASE);
		if (kind == WK_EVRING) {
			struct evr_record rec;
			int ret;

			__atomic_store_n(&sh->r_sleeping, 1, __ATOMIC_RELEASE);
			ret = evr_reader_wait(rd, 5000);
			t1 = bench_now_ns();
			__atomic_store_n(&sh->r_sleeping, 0, __ATOMIC_RELAXED);
			if (ret < (int)wm)
				bench_die("WAKE: evr_reader_wait returned %d (timeout, sample %u)",
					  ret, i);
			if (evr_reader_begin(rd) <= 0 || evr_reader_next(rd, &rec) != 1 ||
			    !rec.is_app || rec.len < 8)
				bench_die("WAKE: no stamped record after the wakeup");
			memcpy(&stamp, rec.data, sizeof(stamp));
			while (evr_reader_next(rd, &rec) == 1)
				;
			evr_reader_end(rd);
		} else {
			uint32_t seq = __atomic_load_n(&sh->futex_word, __ATOMIC_ACQUIRE);
			uint64_t give_up = bench_now_ns() + 5000000000ull;

			__atomic_store_n(&sh->r_sleeping, 1, __ATOMIC_RELEASE);
			while (__atomic_load_n(&sh->futex_word, __ATOMIC_ACQUIRE) == seq) {
				struct timespec ts = { 1, 0 };

				futex(&sh->futex_word, FUTEX_WAIT, seq, &ts);
				if (bench_now_ns() > give_up)
					bench_die("WAKE: the bare futex was never woken");
			}
			t1 = bench_now_ns();
			__atomic_store_n(&sh->r_sleeping, 0, __ATOMIC_RELAXED);
			stamp = __atomic_load_n(&sh->futex_stamp, __ATOMIC_RELAXED);
		}
		/* the writer marks the sample served before it looks for the next one */
		while (__atomic_load_n(&sh->w_done, __ATOMIC_ACQUIRE) != i) {
			if (__atomic_load_n(&sh->w_done, __ATOMIC_RELAXED) == UINT32_MAX)
				bench_die("WAKE: writer failed: %d", sh->w_err);
			cpu_relax();
		}
		if (i > 2)
			lat[kind][n[kind]++] = (double)(t1 - stamp) / 1e3;
	}
	__atomic_store_n(&sh->r_quit, 1, __ATOMIC_RELEASE);
	waitpid(pid, &status, 0);

	for (int k = 0; k < NR_WK; k++) {
		double med = quantile(lat[k], n[k], 0.5, 0), p10 = quantile(lat[k], n[k], 0.1, 1);
		double p90 = quantile(lat[k], n[k], 0.9, 1), p99 = quantile(lat[k], n[k], 0.99, 1);
		double max = lat[k][n[k] - 1];

		printf("BENCH workload=WAKE impl=%s stat=median value=%.2f unit=us samples=%zu "
		       "p10=%.2f p90=%.2f max=%.1f pinned=%d\n",
		       wk_names[k], med, n[k], p10, p90, max, pinned);
		printf("BENCH workload=WAKE impl=%s stat=p99 value=%.2f unit=us samples=%zu\n",
		       wk_names[k], p99, n[k]);
	}
	fflush(stdout);
	free(lat[0]);
	free(lat[1]);
	munmap(sh, sizeof(*sh));
	evr_reader_destroy(rd);
	evr_session_destroy(s);
}

/* ---- COMMIT -------------------------------------------------------------------------------- */

enum { CM_NOWAITER, CM_NOWAKE, NR_CM };

static const char *const cm_names[NR_CM] = { "evring-nowaiter", "evring-nowake" };

struct commit_ring {
	struct evr_ring *ring;
	struct evr_reader *rd;
};

/* Untimed: the reader takes everything (no waiting, ever). */
static void drain(struct evr_reader *rd)
{
	struct evr_record rec;

	while (evr_reader_begin(rd) > 0) {
		while (evr_reader_next(rd, &rec) == 1)
			;
		evr_reader_end(rd);
	}
}

/* W1: @n records of @len bytes in timed batches of @batch records. Returns ns spent writing. */
static uint64_t commit_run(struct commit_ring *cr, const uint8_t *src, size_t len, uint64_t n,
			   uint64_t batch)
{
	uint64_t ns = 0;

	while (n) {
		uint64_t k = n < batch ? n : batch, t0, t1;
		int err = 0;

		t0 = bench_now_ns();
		for (uint64_t i = 0; i < k; i++)
			err |= evr_ring_write(cr->ring, BENCH_ID, src, len);
		t1 = bench_now_ns();
		drain(cr->rd);
		if (err)
			bench_die("COMMIT: a write into a ring that cannot be full failed (%d)",
				  err);
		ns += t1 - t0;
		n -= k;
	}
	return ns;
}

static void run_commit(int cpu)
{
	size_t payloads[BENCH_MAX_PAYLOADS];
	int nr_payloads = bench_payloads(payloads);
	long rounds = bench_knob("BENCH_ROUNDS", 15, 3);
	uint64_t ring = (uint64_t)bench_knob("BENCH_W1_RING", 256 << 10, 64 << 10);
	uint64_t bytes = (uint64_t)bench_knob("BENCH_W1_BYTES", 16 << 20, 1 << 20);
	uint64_t wm = (uint64_t)bench_knob("BENCH_COMMIT_WM", (long)ring / 4, (long)ring / 4);
	uint64_t batch_bytes = ring / 2;
	EVR_OPTS(evr_session_opts, so, .nr_rings = NR_CM, .data_size = ring);
	static double v[NR_CM][BENCH_MAX_PAYLOADS][MAX_ROUNDS];
	struct commit_ring cr[NR_CM];
	struct evr_session *s;
	uint8_t *src;
	int pinned = bench_pin(cpu) == 0, err;
	char extra[160];

	if (rounds < 1 || rounds > MAX_ROUNDS)
		bench_die("BENCH_ROUNDS=%ld: want 1..%d", rounds, MAX_ROUNDS);
	if (!wm || wm >= batch_bytes)
		bench_die("BENCH_COMMIT_WM=%llu: the batches (%llu bytes) must cross it",
			  (unsigned long long)wm, (unsigned long long)batch_bytes);
	err = evr_session_create(&so, &s);
	for (int k = 0; !err && k < NR_CM; k++) {
		err = evr_session_get_ring(s, (uint32_t)k, &cr[k].ring);
		if (!err)
			err = evr_reader_create(cr[k].ring, NULL, &cr[k].rd);
		if (!err)
			err = evr_reader_set_watermark(cr[k].rd, k == CM_NOWAKE ? ring : wm);
	}
	if (err)
		bench_die("COMMIT: session of %d rings of %llu bytes: %s", NR_CM,
			  (unsigned long long)ring, evr_strerror(err));
	src = aligned_alloc(64, 65536);
	if (!src)
		bench_die("out of memory");
	bench_pretouch(src, 65536);
	for (int k = 0; k < NR_CM; k++) {
		struct evr_ctrl *c = evr_ring_get_ctrl(cr[k].ring);

		bench_pretouch((uint8_t *)c + c->data_offset, 2 * ring);
	}

	for (int round = -1; round < rounds; round++) {
		for (int pi = 0; pi < nr_payloads; pi++) {
			size_t len = payloads[pi];
			uint64_t n = bytes / bench_rec_size(len);
			uint64_t batch = batch_bytes / bench_rec_size(len);

			if (!batch)
				bench_die("COMMIT: payload %zu does not fit a batch", len);
			for (int j = 0; j < NR_CM; j++) {
				int k = (j + round + 1) % NR_CM;
				double ns =
					(double)commit_run(&cr[k], src, len, n, batch) / (double)n;

				if (round < 0)
					continue;
				v[k][pi][round] = ns;
				snprintf(extra, sizeof(extra),
					 "ring=%llu wm=%llu batch=%llu bytes=%llu pinned=%d",
					 (unsigned long long)ring,
					 (unsigned long long)(k == CM_NOWAKE ? ring : wm),
					 (unsigned long long)batch_bytes, (unsigned long long)bytes,
					 pinned);
				bench_sample("COMMIT", cm_names[k], len, round, ns, "ns/rec",
					     extra);
			}
		}
	}
	for (int pi = 0; pi < nr_payloads; pi++) {
		double med[NR_CM];

		for (int k = 0; k < NR_CM; k++) {
			double p10, p90;

			med[k] = quantile(v[k][pi], (size_t)rounds, 0.5, 0);
			p10 = quantile(v[k][pi], (size_t)rounds, 0.1, 1);
			p90 = quantile(v[k][pi], (size_t)rounds, 0.9, 1);
			printf("BENCH workload=COMMIT impl=%s payload=%zu value=%.3f unit=ns/rec "
			       "p10=%.3f p90=%.3f rounds=%ld ring=%llu wm=%llu batch=%llu "
			       "pinned=%d\n",
			       cm_names[k], payloads[pi], med[k], p10, p90, rounds,
			       (unsigned long long)ring,
			       (unsigned long long)(k == CM_NOWAKE ? ring : wm),
			       (unsigned long long)batch_bytes, pinned);
		}
		printf("RATIO COMMIT payload=%zu nowaiter/nowake=%.2f (target <= 1.05)\n",
		       payloads[pi], med[CM_NOWAITER] / med[CM_NOWAKE]);
	}
	for (int k = 0; k < NR_CM; k++)
		evr_reader_destroy(cr[k].rd);
	evr_session_destroy(s);
	free(src);
}

int main(void)
{
	int wcpu = (int)bench_knob("BENCH_CPU_WRITER", 0, 0);
	int rcpu = (int)bench_knob("BENCH_CPU_READER", 1, 1);
	const char *only = getenv("BENCH_ONLY");

	if (!only || !*only || !strcmp(only, "WAKE"))
		run_wake(wcpu, rcpu);
	if (!only || !*only || !strcmp(only, "COMMIT"))
		run_commit(wcpu);
	return 0;
}
