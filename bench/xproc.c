// SPDX-License-Identifier: MIT
/*
 * W2 across processes: the writer is a forked child that opens the session with
 * EVR_SESSION_WRITER, the reader is this process, each pinned to its CPU; interleaved round by
 * round with the in-process W2 (two threads, evr_ring_create()) so the ratio compares like with
 * like on a noisy machine. The reader busy-polls (no waiting) and checks every sequence number;
 * the writer retries on -ENOSPC, so no record is dropped.
 * Prints SAMPLE lines (bench/report), then BENCH (median over rounds) and RATIO lines.
 */
#define _GNU_SOURCE
#include <evring.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

enum { IMPL_XPROC, IMPL_INPROC, NR_IMPLS };

static const char *const impl_names[NR_IMPLS] = { "evring-xproc", "evring" };

/* As bench/w2-stream.c: NSRC source buffers, each stamped AHEAD records before it is copied. */
#define NSRC 16u
#define AHEAD 8u
#define MAX_ROUNDS 64
#define CLEAN_SHARE 0.9 /* a round counts as clean if both sides ran >= 90% of its time */

/* The start line and the way out, in a MAP_SHARED page both processes (or threads) see. */
struct line {
	int ready __attribute__((aligned(64)));
	int stop; /* a side failed: the other gives up */
	uint64_t t0 __attribute__((aligned(64))); /* writer: before its first write */
	uint64_t wcpu_ns; /* writer: CPU time its thread got during the run */
	uint64_t rcpu_ns; /* reader: idem */
	int wpinned;
	char werr[160];
};

/* A command from the parent to the writer child, through a pipe. */
struct cmd {
	size_t len; /* 0: exit */
	uint64_t n;
};

struct side {
	struct evr_ring *ring;
	uint8_t *src; /* NSRC buffers, @stride apart */
	size_t stride, len;
	uint64_t n;
	int cpu;
	struct line *ln;
};

static inline uint8_t *src_buf(const struct side *s, uint64_t seq)
{
	return s->src + (seq % NSRC) * s->stride;
}

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

static void start_line(struct line *ln)
{
	__atomic_fetch_add(&ln->ready, 1, __ATOMIC_ACQ_REL);
	while (__atomic_load_n(&ln->ready, __ATOMIC_ACQUIRE) < 2)
		cpu_relax();
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int stopped(const struct line *ln)
{
	return __atomic_load_n(&ln->stop, __ATOMIC_RELAXED);
}

/* The writer, the same code in the child process and in the writer thread. */
static void write_stream(struct side *s)
{
	size_t len = s->len;
	uint64_t seq, cpu0;
	int err = 0;

	for (seq = 0; seq < AHEAD; seq++)
		stamp(src_buf(s, seq), len, seq);
	start_line(s->ln);
	s->ln->t0 = bench_now_ns();
	cpu0 = thread_cpu_ns();
	for (seq = 0; seq < s->n; seq++) {
		stamp(src_buf(s, seq + AHEAD), len, seq + AHEAD);
		while ((err = evr_ring_write(s->ring, BENCH_ID, src_buf(s, seq), len)) == -ENOSPC) {
			if (stopped(s->ln))
				return;
			cpu_relax(); /* full: wait for the reader */
		}
		if (err) {
			snprintf(s->ln->werr, sizeof(s->ln->werr), "write of record %llu: %d",
				 (unsigned long long)seq, err);
			__atomic_store_n(&s->ln->stop, 1, __ATOMIC_RELAXED);
			return;
		}
	}
	s->ln->wcpu_ns = thread_cpu_ns() - cpu0;
}

/*
 * The reader: busy-polls, checks type, length and sequence number of every record. LOST
 * records are skipped: a writer that retries on -ENOSPC has each refusal counted as a loss,
 * though no record is ever missing (the sequence check proves that). Returns the end time, or
 * 0 after a failure (@err says what).
 */
static uint64_t read_stream(struct evr_reader *rd, struct line *ln, size_t len, uint64_t n,
			    uint64_t *lost_recs, char *err, size_t errsz)
{
	struct evr_record rec;
	uint64_t expect = 0, cpu0;
	int avail, k;

	start_line(ln);
	cpu0 = thread_cpu_ns();
	while (expect < n) {
		avail = evr_reader_begin(rd);
		if (avail <= 0) {
			if (avail < 0) {
				snprintf(err, errsz, "evr_reader_begin: %d", avail);
				goto fail;
			}
			if (stopped(ln))
				return 0;
			cpu_relax();
			continue;
		}
		while ((k = evr_reader_next(rd, &rec)) == 1) {
			if (!rec.is_app && rec.type == EVR_TYPE_LOST) {
				(*lost_recs)++;
				continue;
			}
			if (!rec.is_app || rec.type != BENCH_ID || rec.len != len) {
				snprintf(err, errsz, "record %llu: type %u len %u",
					 (unsigned long long)expect, rec.type, rec.len);
				goto fail;
			}
			if (!stamped(rec.data, len, expect)) {
				snprintf(err, errsz, "record %llu: wrong sequence number",
					 (unsigned long long)expect);
				goto fail;
			}
			expect++;
		}
		evr_reader_end(rd);
		if (k < 0) {
			snprintf(err, errsz, "evr_reader_next: %d", k);
			goto fail;
		}
	}
	ln->rcpu_ns = thread_cpu_ns() - cpu0;
	return bench_now_ns();
fail:
	__atomic_store_n(&ln->stop, 1, __ATOMIC_RELAXED);
	return 0;
}

/* ---- the writer child ---------------------------------------------------------------------- */

static void __attribute__((noreturn)) child_main(int sfd, int cmd_fd, int res_fd, struct line *ln,
						 int cpu, size_t max_len)
{
	struct evr_session *ws;
	struct side s = { .cpu = cpu, .ln = ln };
	struct cmd c;
	int err, pinned;

	err = evr_session_open_fd(sfd, EVR_SESSION_WRITER, &ws);
	if (!err)
		err = evr_session_get_ring(ws, 0, &s.ring);
	if (err) {
		fprintf(stderr, "bench: xproc writer: opening the session: %s\n",
			evr_strerror(err));
		_exit(1);
	}
	pinned = bench_pin(cpu) == 0;
	s.stride = (max_len + 63) & ~(size_t)63;
	s.src = aligned_alloc(64, NSRC * s.stride);
	if (!s.src)
		_exit(1);
	bench_pretouch(s.src, NSRC * s.stride);
	while (read(cmd_fd, &c, sizeof(c)) == (ssize_t)sizeof(c) && c.len) {
		char done = 1;

		s.len = c.len;
		s.n = c.n;
		ln->wpinned = pinned; /* read by the parent after the run */
		write_stream(&s);
		if (write(res_fd, &done, 1) != 1)
			break;
	}
	evr_session_close(ws);
	_exit(0);
}

/*
 * ---- the in-process writer --------------------------------------------------------------------
 * A thread that lives as long as the child and sleeps between runs on a pipe as the child does:
 * both writers then wake with the same scheduler credit (a thread created per run would start
 * behind, and the short runs of BENCH_QUICK would measure that). The reader of both is main().
 */
struct inproc {
	struct side w;
	int cmd_fd, res_fd;
};

static void *inproc_writer(void *arg)
{
	struct inproc *p = arg;
	int pinned = bench_pin(p->w.cpu) == 0;
	struct cmd c;

	while (read(p->cmd_fd, &c, sizeof(c)) == (ssize_t)sizeof(c) && c.len) {
		char done = 1;

		p->w.len = c.len;
		p->w.n = c.n;
		p->w.ln->wpinned = pinned;
		write_stream(&p->w);
		if (write(p->res_fd, &done, 1) != 1)
			break;
	}
	return NULL;
}

/* ---- figures ------------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double quantile(double *v, int n, double q)
{
	double pos;
	int i;

	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	pos = q * (n - 1);
	i = (int)pos;
	if (i + 1 >= n)
		return v[n - 1];
	return v[i] + (pos - i) * (v[i + 1] - v[i]);
}

int main(void)
{
	size_t payloads[BENCH_MAX_PAYLOADS], max_len = 0;
	int nr_payloads = bench_payloads(payloads);
	long rounds = bench_knob("BENCH_XPROC_ROUNDS", 9, 3);
	uint64_t ring = (uint64_t)bench_knob("BENCH_W2_RING", 1 << 20, 1 << 20);
	uint64_t bytes = (uint64_t)bench_knob("BENCH_W2_BYTES", 64 << 20, 4 << 20);
	int wcpu = (int)bench_knob("BENCH_CPU_WRITER", 0, 0);
	int rcpu = (int)bench_knob("BENCH_CPU_READER", 1, 1);
	EVR_OPTS(evr_session_opts, so, .nr_rings = 1, .data_size = ring);
	EVR_OPTS(evr_ring_opts, ro, .data_size = ring, .flags = EVR_RING_MIRROR);
	static double v[NR_IMPLS][BENCH_MAX_PAYLOADS][MAX_ROUNDS];
	static double share[NR_IMPLS][BENCH_MAX_PAYLOADS][MAX_ROUNDS];
	uint64_t lost_recs[NR_IMPLS] = { 0 };
	struct evr_session *s;
	struct evr_ring *xring, *iring;
	struct evr_reader *xrd, *ird;
	struct inproc *ip;
	struct line *ln;
	int cmd_pipe[2], res_pipe[2], icmd_pipe[2], ires_pipe[2], err, pinned_all = 1, status;
	pthread_t iwriter;
	pid_t pid;

	if (rounds < 1 || rounds > MAX_ROUNDS)
		bench_die("BENCH_XPROC_ROUNDS=%ld: want 1..%d", rounds, MAX_ROUNDS);
	for (int i = 0; i < nr_payloads; i++)
		max_len = payloads[i] > max_len ? payloads[i] : max_len;
	if (bench_rec_size(max_len) * 4 > ring)
		bench_die("BENCH_W2_RING=%llu is too small for %zu-byte payloads",
			  (unsigned long long)ring, max_len);

	err = evr_session_create(&so, &s);
	if (!err)
		err = evr_session_get_ring(s, 0, &xring);
	if (!err)
		err = evr_reader_create(xring, NULL, &xrd);
	if (!err)
		err = evr_ring_create(&ro, &iring);
	if (!err)
		err = evr_reader_create(iring, NULL, &ird);
	if (err)
		bench_die("rings of %llu bytes: %s", (unsigned long long)ring, evr_strerror(err));
	{
		struct evr_ctrl *c = evr_ring_get_ctrl(xring);

		bench_pretouch((uint8_t *)c + c->data_offset, 2 * ring);
		c = evr_ring_get_ctrl(iring);
		bench_pretouch((uint8_t *)c + c->data_offset, 2 * ring);
	}
	ln = mmap(NULL, sizeof(*ln), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ln == MAP_FAILED)
		bench_die("mmap: %s", strerror(errno));
	memset(ln, 0, sizeof(*ln));
	ip = aligned_alloc(64, (sizeof(*ip) + 63) & ~(size_t)63);
	if (!ip)
		bench_die("out of memory");
	memset(ip, 0, sizeof(*ip));
	ip->w.ring = iring;
	ip->w.cpu = wcpu;
	ip->w.ln = ln;
	ip->w.stride = (max_len + 63) & ~(size_t)63;
	ip->w.src = aligned_alloc(64, NSRC * ip->w.stride);
	if (!ip->w.src)
		bench_die("out of memory");
	bench_pretouch(ip->w.src, NSRC * ip->w.stride);

	if (pipe(cmd_pipe) || pipe(res_pipe))
		bench_die("pipe: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		bench_die("fork: %s", strerror(errno));
	if (pid == 0) {
		close(cmd_pipe[1]);
		close(res_pipe[0]);
		child_main(evr_session_get_fd(s), cmd_pipe[0], res_pipe[1], ln, wcpu, max_len);
	}
	close(cmd_pipe[0]);
	close(res_pipe[1]);
	if (pipe(icmd_pipe) || pipe(ires_pipe))
		bench_die("pipe: %s", strerror(errno));
	ip->cmd_fd = icmd_pipe[0];
	ip->res_fd = ires_pipe[1];
	if (pthread_create(&iwriter, NULL, inproc_writer, ip))
		bench_die("pthread_create failed");
	/* the reader of both is this thread */
	if (bench_pin(rcpu))
		pinned_all = 0;

	for (int round = -1; round < rounds; round++) {
		for (int pi = 0; pi < nr_payloads; pi++) {
			size_t len = payloads[pi];
			uint64_t n = bytes / bench_rec_size(len);

			if (!n)
				n = 1;
			for (int j = 0; j < NR_IMPLS; j++) {
				int impl = (j + round + 1) % NR_IMPLS, pinned;
				uint64_t t1, lost = 0;
				char rerr[160] = "";
				double mrec, cpu;

				ln->ready = 0;
				ln->stop = 0;
				ln->werr[0] = 0;
				ln->wpinned = 0;
				{
					struct cmd c = { .len = len, .n = n };
					int x = impl == IMPL_XPROC;
					char done;

					if (write(x ? cmd_pipe[1] : icmd_pipe[1], &c, sizeof(c)) !=
					    (ssize_t)sizeof(c))
						bench_die("W2 %s: the writer is gone",
							  impl_names[impl]);
					t1 = read_stream(x ? xrd : ird, ln, len, n, &lost, rerr,
							 sizeof(rerr));
					if (read(x ? res_pipe[0] : ires_pipe[0], &done, 1) != 1)
						bench_die("W2 %s: the writer died",
							  impl_names[impl]);
					pinned = ln->wpinned && pinned_all;
				}
				if (ln->werr[0] || rerr[0] || !t1)
					bench_die("W2 %s payload=%zu: %s%s%s", impl_names[impl],
						  len, ln->werr, ln->werr[0] && rerr[0] ? "; " : "",
						  rerr);
				mrec = (double)n * 1e3 / (double)(t1 - ln->t0);
				/*
				 * Both sides busy-poll: a round where either got less than its CPU
				 * (other load on the machine) measures the scheduler, not the ring.
				 */
				cpu = (double)(ln->wcpu_ns < ln->rcpu_ns ? ln->wcpu_ns
									 : ln->rcpu_ns) /
				      (double)(t1 - ln->t0);
				lost_recs[impl] += lost;
				if (!pinned && pinned_all) {
					fprintf(stderr,
						"bench: xproc: could not pin to CPUs %d and %d, "
						"running unpinned\n",
						wcpu, rcpu);
					pinned_all = 0;
				}
				if (round < 0)
					continue;
				v[impl][pi][round] = mrec;
				share[impl][pi][round] = cpu;
				{
					char extra[160];

					snprintf(extra, sizeof(extra),
						 "ring=%llu bytes=%llu records=%llu onfull=retry "
						 "lost_records=%llu pinned=%d cpu=%.2f",
						 (unsigned long long)ring,
						 (unsigned long long)bytes, (unsigned long long)n,
						 (unsigned long long)lost, pinned, cpu);
					bench_sample("W2", impl_names[impl], len, round, mrec,
						     "Mrec/s", extra);
				}
			}
		}
	}
	{
		struct cmd c = { 0 };

		if (write(cmd_pipe[1], &c, sizeof(c)) != (ssize_t)sizeof(c))
			kill(pid, SIGTERM);
		waitpid(pid, &status, 0);
		if (write(icmd_pipe[1], &c, sizeof(c)) == (ssize_t)sizeof(c))
			pthread_join(iwriter, NULL);
	}

	for (int pi = 0; pi < nr_payloads; pi++) {
		double med[NR_IMPLS];

		for (int impl = 0; impl < NR_IMPLS; impl++) {
			double clean[MAX_ROUNDS], *use = v[impl][pi], p10, p90;
			int nc = 0, nu = (int)rounds;

			/* medians over the rounds where both sides had their CPU, if 3 or more */
			for (int r = 0; r < rounds; r++)
				if (share[impl][pi][r] >= CLEAN_SHARE)
					clean[nc++] = v[impl][pi][r];
			if (nc >= 3) {
				use = clean;
				nu = nc;
			}
			p10 = quantile(use, nu, 0.1);
			p90 = quantile(use, nu, 0.9);
			med[impl] = quantile(use, nu, 0.5);
			printf("BENCH workload=W2 impl=%s payload=%zu value=%.2f unit=Mrec/s "
			       "p10=%.2f "
			       "p90=%.2f rounds=%d clean=%d/%ld ring=%llu bytes=%llu pinned=%d "
			       "lost_records=%llu\n",
			       impl_names[impl], payloads[pi], med[impl], p10, p90, nu, nc, rounds,
			       (unsigned long long)ring, (unsigned long long)bytes, pinned_all,
			       (unsigned long long)lost_recs[impl]);
		}
		printf("RATIO W2 payload=%zu evring-xproc/evring=%.2f (target >= 0.9)\n",
		       payloads[pi], med[IMPL_XPROC] / med[IMPL_INPROC]);
	}
	evr_reader_destroy(xrd);
	evr_reader_destroy(ird);
	evr_ring_destroy(iring);
	evr_session_destroy(s);
	free(ip->w.src);
	free(ip);
	return 0;
}
