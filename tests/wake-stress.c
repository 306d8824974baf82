// SPDX-License-Identifier: MIT
/*
 * Lost-wakeup stress of blocking reads: a reader sleeps in evr_reader_wait() and is woken
 * hundreds of thousands of times by a writer in another process (a forked child that opens the
 * session with EVR_SESSION_WRITER), then a few thousand times through the poll fd by a writer
 * thread. The test fails if the reader ever sleeps through a crossed watermark or a flush until
 * its timeout (a lost wakeup), or if a record is wrong.
 *
 * The writer's bursts (seeded shapes, see enum shape) each end in a state where a reader that
 * waits now must be woken: at least a watermark unread or a flush issued, and the writer then
 * waits until the reader has consumed everything. It re-reads data_tail while it waits: if the
 * reader consumed only part and sleeps legitimately (less than a watermark unread), the writer
 * tops the ring up across the watermark again. So a wait that lasts its whole timeout while the
 * writer has been waiting for more than half of it is a lost wakeup. Records carry a sequence
 * number and a seeded tail word that the reader checks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evring.h"
#include "test.h"

#define REC_ID 7u
#define TIMEOUT_MS 2000 /* generous: a 2-core machine under a parallel build */
#define MAX_LOST 3 /* lost wakeups reported before the run gives up (each costs a timeout) */
#define HIST_US 100000 /* latency histogram: 1 us buckets up to 100 ms */

/* Burst shapes, chosen per burst from the seed. */
enum shape {
	S_ONE, /* one record takes the unread bytes from 0 to >= watermark */
	S_MANY, /* small records; the last crosses (often landing exactly on the watermark) */
	S_FLUSH, /* records below the watermark, then evr_ring_flush() */
	S_OVERLAP, /* paced records over several watermarks while the reader drains concurrently */
	NR_SHAPES
};
static const char *const shape_names[NR_SHAPES] = { "one", "many", "flush", "overlap" };

/*
 * How much the reader takes before it waits again. A reader that drains until the ring is empty
 * is the easy case; one that waits after one batch (begun before the writer's last records) or
 * after part of one sleeps with less unread than the writer last saw, and must still be woken
 * when the watermark is crossed from its own tail.
 */
enum { R_EMPTY, R_BATCH, R_PART, NR_RMODES };

/* writer states (shared.w_state) */
enum { W_WRITING, W_WAITING, W_DONE };

/*
 * What the two sides share besides the ring: a MAP_SHARED page in the process test (mapped
 * before fork), plain memory in the thread test. Each field has one writer.
 */
struct shared {
	uint64_t kick_ns; /* W: CLOCK_MONOTONIC just before the commit or flush meant to wake */
	uint64_t burst; /* W: bursts begun */
	uint64_t final_head; /* W: head_of() at the end, stored before w_state = W_DONE */
	uint32_t w_state; /* W: W_*, release */
	uint32_t w_shape; /* W: shape of the current burst */
	uint64_t shapes[NR_SHAPES]; /* W: bursts per shape */
	uint64_t topups; /* W: crossings written again for a reader that consumed part */
	uint64_t reflushes; /* W: flushes issued again for the same reason */
	uint64_t records; /* W */
	int w_failed; /* W */
	char w_msg[256]; /* W */
	uint32_t r_sleeping __attribute__((aligned(64))); /* R: about to block, or blocked */
	uint32_t stop; /* R: give up */
};

struct config {
	const char *name;
	uint64_t ring; /* data_size */
	uint64_t wm; /* 0: the default (half the ring) */
	unsigned weight; /* share of the iterations and of the time budget */
	uint32_t ring_flags; /* EVR_RING_MULTI: the multi-producer writer's wake check */
};

static const struct config configs[] = {
	{ "wm256-ring16k", 16384, 256, 5, 0 },
	{ "wm2k-ring64k", 65536, 2048, 3, 0 },
	{ "wmdefault-ring16k", 16384, 0, 1, 0 },
	{ "mpsc-wm256-ring16k", 16384, 256, 3, EVR_RING_MULTI },
};
#define NR_CONFIGS (sizeof(configs) / sizeof(configs[0]))

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* Spin politely: two cores, and the other side (and other builds) need them. */
static inline void backoff(unsigned *spins)
{
	if (++*spins % 64)
		relax();
	else
		sched_yield();
}

static inline uint64_t rec_size(size_t len)
{
	return (len + 8 + 7) & ~(uint64_t)7;
}

static inline uint64_t tag_of(uint64_t seed, uint64_t seq)
{
	return t_mix(seed ^ (seq * 0x100000001b3ull));
}

/* ---- the writer (a child process or a thread) ---------------------------------------------- */

struct writer {
	struct evr_ring *ring;
	struct evr_ctrl *ctrl;
	struct shared *sh;
	uint64_t wm, ring_size, seed, rng, seq, bursts;
	uint64_t deadline_ns;
	uint8_t buf[65536];
};

static void w_fail(struct writer *w, const char *fmt, long a, long b)
{
	if (!w->sh->w_failed)
		snprintf(w->sh->w_msg, sizeof(w->sh->w_msg), fmt, a, b);
	__atomic_store_n(&w->sh->w_failed, 1, __ATOMIC_RELEASE);
}

static int stopped(const struct writer *w)
{
	return __atomic_load_n(&w->sh->stop, __ATOMIC_ACQUIRE) ||
	       __atomic_load_n(&w->sh->w_failed, __ATOMIC_RELAXED);
}

/* What the reader counts as written: data_head, or prod_head on a multi-producer ring. */
static uint64_t head_of(struct evr_ctrl *c)
{
	if (c->kind == EVR_KIND_MPSC)
		return __atomic_load_n(&c->prod_head, __ATOMIC_ACQUIRE);
	return __atomic_load_n(&c->data_head, __ATOMIC_ACQUIRE);
}

/* Our own publication: we are the only writer, and each put() commits before it returns. */
static uint64_t w_head(const struct writer *w)
{
	return head_of(w->ctrl);
}

static uint64_t w_tail(const struct writer *w)
{
	return __atomic_load_n(&w->ctrl->data_tail, __ATOMIC_ACQUIRE);
}

/* Write one record of @len payload bytes (8..), retrying while the ring is full. */
static int put(struct writer *w, size_t len, int kick)
{
	uint64_t tag = tag_of(w->seed, w->seq);
	unsigned spins = 0;
	int err;

	memcpy(w->buf, &w->seq, 8);
	if (len >= 16)
		memcpy(w->buf + len - 8, &tag, 8);
	if (kick)
		__atomic_store_n(&w->sh->kick_ns, now_ns(), __ATOMIC_RELEASE);
	while ((err = evr_ring_write(w->ring, REC_ID, w->buf, len)) == -ENOSPC) {
		if (stopped(w))
			return -1;
		backoff(&spins);
	}
	if (err) {
		w_fail(w, "evr_ring_write(len %ld): %ld", (long)len, err);
		return -1;
	}
	w->seq++;
	__atomic_store_n(&w->sh->records, w->seq, __ATOMIC_RELAXED);
	return 0;
}

/*
 * Small records from head until head - @base reaches the watermark; the record that gets there
 * is stamped (kick). Half the time the last one lands exactly on the watermark.
 */
static int cross_from(struct writer *w, uint64_t base)
{
	for (;;) {
		uint64_t unread = w_head(w) - base, left, len;

		if (unread >= w->wm)
			return 0; /* the reader consumed nothing meanwhile and we are there */
		left = w->wm - unread;
		len = 8 + 8 * (t_rand(&w->rng) % 8);
		if (left <= 72 && left >= 16 && (t_rand(&w->rng) & 1))
			len = left - 8;
		if (put(w, len, unread + rec_size(len) >= w->wm))
			return -1;
	}
}

static int burst_one(struct writer *w)
{
	uint64_t max = w->ring_size / 2 < 65528 ? w->ring_size / 2 : 65528;
	uint64_t len = w->wm + 8 * (t_rand(&w->rng) % 9); /* record of wm + 8 .. wm + 72 bytes */

	if (len > max - 8)
		len = max - 8;
	if (len < 8)
		len = 8;
	return put(w, len, 1);
}

static int burst_flush(struct writer *w, uint64_t *kicked_tail)
{
	uint64_t base = w_head(w), n = 1 + t_rand(&w->rng) % 8;
	int err;

	for (uint64_t i = 0; i < n; i++) {
		uint64_t len = 8 + 8 * (t_rand(&w->rng) % 8);

		if (w_head(w) - base + rec_size(len) >= w->wm)
			break;
		if (put(w, len, 0))
			return -1;
	}
	if (w_head(w) == base && put(w, 8, 0)) /* at least one record: its consumption is the ack */
		return -1;
	/* before the flush: a reader woken by it may consume before the call returns */
	*kicked_tail = w_tail(w);
	__atomic_store_n(&w->sh->kick_ns, now_ns(), __ATOMIC_RELEASE);
	err = evr_ring_flush(w->ring);
	if (err < 0) {
		w_fail(w, "evr_ring_flush: %ld%ld", err, 0);
		return -1;
	}
	return 0;
}

static int burst_overlap(struct writer *w)
{
	uint64_t total = w->wm * (1 + t_rand(&w->rng) % 4) + 8 * (t_rand(&w->rng) % 64);
	uint64_t maxlen = w->wm / 2 > 256 ? 256 : (w->wm / 2 < 8 ? 8 : w->wm / 2);
	uint64_t base = w_head(w);

	while (w_head(w) - base < total) {
		uint64_t len = 8 * (1 + t_rand(&w->rng) % (maxlen / 8));
		unsigned pace = (unsigned)(t_rand(&w->rng) % 400);

		if (put(w, len, 0))
			return -1;
		for (unsigned i = 0; i < pace; i++) /* up to a few microseconds */
			relax();
	}
	return 0;
}

/*
 * Wait until the reader consumed everything. While it has consumed part and less than a
 * watermark is left, it may sleep legitimately: cross the watermark again from its tail
 * (unless a flush already covers what is unread: flush_seq tells a waiter "return").
 */
static int settle(struct writer *w, int flushed, uint64_t kicked_tail)
{
	unsigned spins = 0;

	__atomic_store_n(&w->sh->w_state, W_WAITING, __ATOMIC_RELEASE);
	for (;;) {
		uint64_t tail = w_tail(w), head = w_head(w);

		if (tail == head)
			return 0;
		if (flushed && tail != kicked_tail && head - tail < w->wm) {
			/* it took part after our flush and may wait again: the flush was used up */
			kicked_tail = tail;
			__atomic_store_n(&w->sh->kick_ns, now_ns(), __ATOMIC_RELEASE);
			if (evr_ring_flush(w->ring) < 0) {
				w_fail(w, "evr_ring_flush failed%ld%ld", 0, 0);
				return -1;
			}
			w->sh->reflushes++;
			continue;
		}
		if (!flushed && head - tail < w->wm) {
			__atomic_store_n(&w->sh->w_state, W_WRITING, __ATOMIC_RELEASE);
			if (cross_from(w, tail))
				return -1;
			w->sh->topups++;
			__atomic_store_n(&w->sh->w_state, W_WAITING, __ATOMIC_RELEASE);
			continue;
		}
		if (stopped(w))
			return -1;
		if (now_ns() > w->deadline_ns + 30ull * 1000000000) {
			w_fail(w, "the reader stopped consuming (head - tail = %ld, burst %ld)",
			       (long)(head - tail), (long)w->sh->burst);
			return -1;
		}
		backoff(&spins);
	}
}

/*
 * Before most bursts, wait until the reader is about to block (or blocked), so that the burst
 * needs a wakeup; sometimes wait a little longer so it is in the kernel, sometimes not at all
 * so the crossing races the reader's check of data_head.
 */
static void await_sleeper(struct writer *w)
{
	uint64_t r = t_rand(&w->rng), until = now_ns() + 50000000;
	unsigned spins = 0;

	if (r % 8 == 0)
		return;
	while (!__atomic_load_n(&w->sh->r_sleeping, __ATOMIC_ACQUIRE)) {
		if (stopped(w) || now_ns() > until)
			return;
		backoff(&spins);
	}
	if (r % 4 == 1)
		for (unsigned i = (unsigned)(r >> 8) % 4000; i; i--)
			relax();
}

static void writer_run(struct writer *w)
{
	struct shared *sh = w->sh;
	uint64_t kicked_tail = 0;
	int shape = 0;

	for (uint64_t b = 0; b < w->bursts && now_ns() < w->deadline_ns && !stopped(w); b++) {
		uint64_t r = t_rand(&w->rng) % 100;
		int err;

		shape = r < 30 ? S_ONE : r < 65 ? S_MANY : r < 82 ? S_FLUSH : S_OVERLAP;
		await_sleeper(w);
		__atomic_store_n(&sh->w_state, W_WRITING, __ATOMIC_RELEASE);
		__atomic_store_n(&sh->w_shape, (uint32_t)shape, __ATOMIC_RELAXED);
		__atomic_store_n(&sh->burst, b + 1, __ATOMIC_RELAXED);
		sh->shapes[shape]++;
		switch (shape) {
		case S_ONE:
			err = burst_one(w);
			break;
		case S_MANY:
			err = cross_from(w, w_head(w));
			break;
		case S_FLUSH:
			err = burst_flush(w, &kicked_tail);
			break;
		default:
			err = burst_overlap(w);
			break;
		}
		if (err || settle(w, shape == S_FLUSH, kicked_tail))
			break;
	}
	/* the end: a flush wakes a reader that checked w_state just before we changed it */
	__atomic_store_n(&sh->final_head, w_head(w), __ATOMIC_RELAXED);
	__atomic_store_n(&sh->kick_ns, now_ns(), __ATOMIC_RELAXED);
	__atomic_store_n(&sh->w_state, W_DONE, __ATOMIC_RELEASE);
	evr_ring_flush(w->ring);
}

/* ---- the reader -------------------------------------------------------------------------- */

struct rstats {
	uint64_t waits, slept, wakeups, timeouts, stalls, lost, records, bytes, lost_records;
	uint64_t modes[NR_RMODES]; /* batches taken per reader pattern */
	uint64_t lat_max_ns, lat_n;
	uint32_t *hist; /* HIST_US + 1 buckets */
};

static void lat_add(struct rstats *st, uint64_t ns)
{
	uint64_t us = ns / 1000;

	st->hist[us < HIST_US ? us : HIST_US]++;
	st->lat_n++;
	if (ns > st->lat_max_ns)
		st->lat_max_ns = ns;
}

static double lat_quantile_us(const struct rstats *st, double q)
{
	uint64_t want = (uint64_t)(q * (double)st->lat_n), seen = 0;

	for (uint64_t i = 0; i <= HIST_US; i++) {
		seen += st->hist[i];
		if (seen > want)
			return (double)i + 0.5;
	}
	return (double)HIST_US;
}

/* Take records (per @mode); check each. Returns 0, or -1 after reporting. */
static int drain(struct evr_reader *rd, uint64_t seed, uint64_t *expect, struct rstats *st,
		 const char *cfg, int mode, uint64_t *rng)
{
	struct evr_record rec;
	int avail, k = 0;

	while ((avail = evr_reader_begin(rd)) > 0) {
		uint64_t take = mode == R_PART ? 1 + t_rand(rng) % 16 : UINT64_MAX;

		st->bytes += (uint64_t)avail;
		while (take && (k = evr_reader_next(rd, &rec)) == 1) {
			uint64_t seq, tag;

			take--;

			if (!rec.is_app && rec.type == EVR_TYPE_LOST) {
				/* a retry on -ENOSPC counts as a loss; the record is written */
				st->lost_records++;
				continue;
			}
			if (!rec.is_app || rec.type != REC_ID || rec.len < 8) {
				t_report(__FILE__, __LINE__, "record", "%s: record %" PRIu64
					 ": type %u len %u is_app %d", cfg, *expect, rec.type,
					 rec.len, rec.is_app);
				return -1;
			}
			memcpy(&seq, rec.data, 8);
			if (seq != *expect) {
				t_report(__FILE__, __LINE__, "seq", "%s: got seq %" PRIu64
					 ", expected %" PRIu64, cfg, seq, *expect);
				return -1;
			}
			if (rec.len >= 16) {
				memcpy(&tag, (const uint8_t *)rec.data + rec.len - 8, 8);
				if (tag != tag_of(seed, seq)) {
					t_report(__FILE__, __LINE__, "payload",
						 "%s: record %" PRIu64 " has a wrong tail word",
						 cfg, seq);
					return -1;
				}
			}
			(*expect)++;
			st->records++;
		}
		evr_reader_end(rd);
		if (take && k < 0) {
			t_report(__FILE__, __LINE__, "evr_reader_next", "%s: %d", cfg, k);
			return -1;
		}
		st->modes[mode]++;
		if (mode != R_EMPTY)
			return 0;
	}
	if (avail < 0) {
		t_report(__FILE__, __LINE__, "evr_reader_begin", "%s: %d", cfg, avail);
		return -1;
	}
	return 0;
}

/*
 * A wait that lasted its whole timeout: lost if the writer had finished its kick (a crossing,
 * a flush, the final flush) more than half a timeout before, and was waiting for us since.
 */
static void judge_timeout(struct shared *sh, struct evr_ctrl *c, struct rstats *st, int ret,
			  uint64_t wm, const char *cfg, const char *how)
{
	uint32_t state = __atomic_load_n(&sh->w_state, __ATOMIC_ACQUIRE);
	uint64_t kick = __atomic_load_n(&sh->kick_ns, __ATOMIC_ACQUIRE), t = now_ns();
	uint64_t head = head_of(c);
	uint64_t tail = __atomic_load_n(&c->data_tail, __ATOMIC_ACQUIRE);

	st->timeouts++;
	if (state == W_WRITING || t - kick < (uint64_t)TIMEOUT_MS * 500000) {
		st->stalls++; /* the writer itself did not run: not the protocol's fault */
		printf("%s: a %d ms %s timed out while the writer was %s (%.1f ms after its kick); "
		       "not counted\n",
		       cfg, TIMEOUT_MS, how, state == W_WRITING ? "writing" : "waiting",
		       (double)(t - kick) / 1e6);
		return;
	}
	st->lost++;
	t_report(__FILE__, __LINE__, "lost wakeup",
		 "%s: %s slept %d ms through %s: burst %" PRIu64 " (shape %s), returned %d, "
		 "unread %" PRIu64 " (head %" PRIu64 " tail %" PRIu64 "), watermark %" PRIu64
		 ", kicked %.1f ms before, writer %s, %" PRIu64 " records, %" PRIu64 " top-ups",
		 cfg, how, TIMEOUT_MS,
		 head - tail >= wm ? "a crossed watermark" : "a flush", sh->burst,
		 shape_names[sh->w_shape % NR_SHAPES], ret, head - tail, head, tail, wm,
		 (double)(t - kick) / 1e6, state == W_DONE ? "done" : "waiting for the reader",
		 sh->records, sh->topups);
}

/* The reader's loop: drain, then block (futex wait, or poll on @efd >= 0), until the end. */
static int reader_run(struct evr_reader *rd, struct evr_ctrl *c, struct shared *sh, int efd,
		      uint64_t wm, uint64_t seed, struct rstats *st, const char *cfg,
		      uint64_t give_up_ns)
{
	struct evr_reader_stats rs = { .sz = sizeof(rs) };
	uint64_t expect = 0, rng = seed ^ 0x7ead;

	for (;;) {
		uint64_t t0, t1, kick, wk0, r = t_rand(&rng) % 8;
		int ret, mode = r < 4 ? R_EMPTY : r < 6 ? R_BATCH : R_PART;

		/*
		 * At the end the writer flushes once: take all it wrote. The poll fd is an edge
		 * (evr_reader_get_fd(): read it, then drain the ring), so its reader always drains.
		 */
		if (efd >= 0 || __atomic_load_n(&sh->w_state, __ATOMIC_ACQUIRE) == W_DONE)
			mode = R_EMPTY;
		if (drain(rd, seed, &expect, st, cfg, mode, &rng))
			return -1;
		if (__atomic_load_n(&sh->w_state, __ATOMIC_ACQUIRE) == W_DONE &&
		    __atomic_load_n(&c->data_tail, __ATOMIC_ACQUIRE) ==
			    __atomic_load_n(&sh->final_head, __ATOMIC_RELAXED) &&
		    head_of(c) == __atomic_load_n(&sh->final_head, __ATOMIC_RELAXED))
			return 0;
		if (st->lost >= MAX_LOST || now_ns() > give_up_ns) {
			if (st->lost < MAX_LOST)
				t_report(__FILE__, __LINE__, "progress",
					 "%s: the writer did not finish in time", cfg);
			return -1;
		}
		evr_reader_get_stats(rd, &rs);
		wk0 = rs.wakeups;
		__atomic_store_n(&sh->r_sleeping, 1, __ATOMIC_RELEASE);
		t0 = now_ns();
		if (efd < 0) {
			ret = evr_reader_wait(rd, TIMEOUT_MS);
		} else {
			struct pollfd p = { .fd = efd, .events = POLLIN };

			ret = poll(&p, 1, TIMEOUT_MS);
			if (ret < 0)
				ret = errno == EINTR ? 1 : -errno;
		}
		t1 = now_ns();
		__atomic_store_n(&sh->r_sleeping, 0, __ATOMIC_RELAXED);
		st->waits++;
		if (ret < 0) {
			t_report(__FILE__, __LINE__, efd < 0 ? "evr_reader_wait" : "poll", "%s: %d",
				 cfg, ret);
			return -1;
		}
		if (efd >= 0) {
			uint64_t v;
			ssize_t n = read(efd, &v, sizeof(v)); /* re-arm, then drain */

			(void)n;
		}
		if (t1 - t0 >= (uint64_t)TIMEOUT_MS * 1000000 - 5000000) {
			if (efd < 0)
				judge_timeout(sh, c, st, ret, wm, cfg, "evr_reader_wait()");
			else if (ret == 0)
				judge_timeout(sh, c, st, ret, wm, cfg, "poll()");
			continue;
		}
		kick = __atomic_load_n(&sh->kick_ns, __ATOMIC_ACQUIRE);
		if (efd < 0) {
			evr_reader_get_stats(rd, &rs);
			if (rs.wakeups == wk0)
				continue; /* it never blocked: the data was there */
		}
		st->slept++;
		if (kick >= t0 && kick <= t1) {
			st->wakeups++;
			lat_add(st, t1 - kick);
		}
	}
}

/* ---- the two setups ------------------------------------------------------------------------ */

static void print_stats(const char *cfg, const char *how, const struct shared *sh,
			const struct rstats *st, double secs)
{
	printf("%s (%s): %" PRIu64 " bursts (one %" PRIu64 ", many %" PRIu64 ", flush %" PRIu64
	       ", overlap %" PRIu64 "), %" PRIu64 " top-ups, %" PRIu64 " re-flushes, %" PRIu64
	       " records in %.1f s; reader batches empty/one/part %" PRIu64 "/%" PRIu64 "/%" PRIu64
	       ", "
	       "%" PRIu64 " waits, %" PRIu64 " blocked, %" PRIu64 " wakeups timed, %" PRIu64
	       " timeouts (%" PRIu64 " writer stalls), %" PRIu64 " lost",
	       cfg, how, sh->burst, sh->shapes[S_ONE], sh->shapes[S_MANY], sh->shapes[S_FLUSH],
	       sh->shapes[S_OVERLAP], sh->topups, sh->reflushes, st->records, secs,
	       st->modes[R_EMPTY], st->modes[R_BATCH], st->modes[R_PART], st->waits, st->slept,
	       st->wakeups, st->timeouts, st->stalls, st->lost);
	if (st->lat_n)
		printf("; wake latency median %.1f us, p99 %.1f us, max %.1f us\n",
		       lat_quantile_us(st, 0.5), lat_quantile_us(st, 0.99),
		       (double)st->lat_max_ns / 1e3);
	else
		printf("\n");
}

static void rstats_merge(struct rstats *all, const struct rstats *st)
{
	all->waits += st->waits;
	all->slept += st->slept;
	all->wakeups += st->wakeups;
	all->timeouts += st->timeouts;
	all->stalls += st->stalls;
	all->lost += st->lost;
	all->records += st->records;
	all->lat_n += st->lat_n;
	for (int i = 0; i < NR_RMODES; i++)
		all->modes[i] += st->modes[i];
	if (st->lat_max_ns > all->lat_max_ns)
		all->lat_max_ns = st->lat_max_ns;
	for (int i = 0; i <= HIST_US; i++)
		all->hist[i] += st->hist[i];
}

/* The reader in this process, the writer a forked child that opens the session by fd. */
static void run_process(const struct config *cfg, uint64_t bursts, double budget_s,
			struct rstats *all, uint64_t *total_bursts)
{
	EVR_OPTS(evr_session_opts, so, .nr_rings = 1, .data_size = cfg->ring,
		 .ring_flags = cfg->ring_flags);
	struct evr_session *s = NULL;
	struct evr_ring *ring;
	struct evr_reader *rd = NULL;
	struct shared *sh;
	struct rstats st = { 0 };
	uint64_t seed = t_mix(t_seed ^ t_mix((uint64_t)(cfg - configs) + 1));
	uint64_t wm = cfg->wm ? cfg->wm : cfg->ring / 2;
	double t0 = t_now();
	int status = 0, err;
	pid_t pid;

	st.hist = calloc(HIST_US + 1, sizeof(*st.hist));
	assert_true(st.hist != NULL, "out of memory");
	assert_eq(evr_session_create(&so, &s), 0);
	assert_eq(evr_session_get_ring(s, 0, &ring), 0);
	assert_eq(evr_reader_create(ring, NULL, &rd), 0);
	assert_eq(evr_reader_set_watermark(rd, cfg->wm), 0);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(sh != MAP_FAILED, "mmap: %s", strerror(errno));
	memset(sh, 0, sizeof(*sh));
	fflush(NULL);

	pid = fork();
	assert_true(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		struct evr_session *ws;
		struct writer *w = calloc(1, sizeof(*w));

		if (!w)
			_exit(2);
		err = evr_session_open_fd(evr_session_get_fd(s), EVR_SESSION_WRITER, &ws);
		if (!err)
			err = evr_session_get_ring(ws, 0, &w->ring);
		if (err) {
			snprintf(sh->w_msg, sizeof(sh->w_msg), "writer: open: %d", err);
			__atomic_store_n(&sh->w_failed, 1, __ATOMIC_RELEASE);
			__atomic_store_n(&sh->w_state, W_DONE, __ATOMIC_RELEASE);
			_exit(1);
		}
		w->ctrl = evr_ring_get_ctrl(w->ring);
		w->sh = sh;
		w->wm = wm;
		w->ring_size = cfg->ring;
		w->seed = seed;
		w->rng = seed ^ 0x5eed;
		w->bursts = bursts;
		w->deadline_ns = now_ns() + (uint64_t)(budget_s * 1e9);
		writer_run(w);
		evr_session_close(ws);
		_exit(sh->w_failed ? 1 : 0);
	}

	err = reader_run(rd, evr_ring_get_ctrl(ring), sh, -1, wm, seed, &st, cfg->name,
			 now_ns() + (uint64_t)((budget_s + 60) * 1e9));
	if (err)
		__atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
	waitpid(pid, &status, 0);
	expect_true(WIFEXITED(status) && WEXITSTATUS(status) == 0 && !sh->w_failed,
		    "%s: writer process: status 0x%x: %s", cfg->name, status, sh->w_msg);
	expect_eq(st.lost, 0);
	if (!err) {
		expect_eq(st.records, sh->records);
		expect_true(sh->burst > 0, "%s: no burst written", cfg->name);
	}
	print_stats(cfg->name, "processes, futex", sh, &st, t_now() - t0);
	rstats_merge(all, &st);
	*total_bursts += sh->burst;
	free(st.hist);
	munmap(sh, sizeof(*sh));
	evr_reader_destroy(rd);
	evr_session_destroy(s);
}

struct poll_writer {
	struct writer w;
	pthread_t tid;
};

static void *poll_writer_main(void *arg)
{
	writer_run(&((struct poll_writer *)arg)->w);
	return NULL;
}

/* In-process: a writer thread, the reader in poll() on evr_reader_get_fd(). */
static void run_poll(const struct config *cfg, uint64_t bursts, double budget_s,
		     struct rstats *all, uint64_t *total_bursts)
{
	EVR_OPTS(evr_ring_opts, o, .data_size = cfg->ring, .flags = EVR_RING_MIRROR);
	struct evr_ring *ring = NULL;
	struct evr_reader *rd = NULL;
	struct poll_writer *pw;
	struct shared *sh;
	struct rstats st = { 0 };
	uint64_t seed = t_mix(t_seed ^ 0x9011);
	uint64_t wm = cfg->wm ? cfg->wm : cfg->ring / 2;
	double t0 = t_now();
	int efd, err;
	char name[64];

	snprintf(name, sizeof(name), "%s", cfg->name);
	st.hist = calloc(HIST_US + 1, sizeof(*st.hist));
	pw = calloc(1, sizeof(*pw));
	sh = calloc(1, sizeof(*sh));
	assert_true(st.hist && pw && sh, "out of memory");
	assert_eq(evr_ring_create(&o, &ring), 0);
	assert_eq(evr_reader_create(ring, NULL, &rd), 0);
	assert_eq(evr_reader_set_watermark(rd, cfg->wm), 0);
	efd = evr_reader_get_fd(rd);
	assert_true(efd >= 0, "evr_reader_get_fd: %d", efd);

	pw->w.ring = ring;
	pw->w.ctrl = evr_ring_get_ctrl(ring);
	pw->w.sh = sh;
	pw->w.wm = wm;
	pw->w.ring_size = cfg->ring;
	pw->w.seed = seed;
	pw->w.rng = seed ^ 0x5eed;
	pw->w.bursts = bursts;
	pw->w.deadline_ns = now_ns() + (uint64_t)(budget_s * 1e9);
	assert_eq(pthread_create(&pw->tid, NULL, poll_writer_main, pw), 0);
	err = reader_run(rd, evr_ring_get_ctrl(ring), sh, efd, wm, seed, &st, name,
			 now_ns() + (uint64_t)((budget_s + 60) * 1e9));
	if (err)
		__atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
	pthread_join(pw->tid, NULL);
	expect_true(!sh->w_failed, "%s: writer thread: %s", name, sh->w_msg);
	expect_eq(st.lost, 0);
	if (!err)
		expect_eq(st.records, sh->records);
	print_stats(name, "threads, poll fd", sh, &st, t_now() - t0);
	rstats_merge(all, &st);
	*total_bursts += sh->burst;
	free(st.hist);
	free(sh);
	free(pw);
	evr_reader_destroy(rd);
	evr_ring_destroy(ring);
}

int main(void)
{
	int lng;
	uint64_t iters, poll_iters, total = 0, poll_total = 0;
	double budget, poll_budget, t0 = t_now();
	unsigned weights = 0;
	struct rstats all = { 0 }, pall = { 0 };

	t_init("wake-stress");
	lng = t_long();
	iters = lng ? 3000000 : 200000;
	budget = lng ? 1500 : 13;
	poll_iters = lng ? 200000 : 4000;
	poll_budget = lng ? 120 : 2;
	if (getenv("WAKE_STRESS_ITERS"))
		iters = strtoull(getenv("WAKE_STRESS_ITERS"), NULL, 0);
	printf("wake-stress: seed 0x%016" PRIx64 ", %" PRIu64 " bursts across processes "
	       "(budget %.0f s), %" PRIu64 " through the poll fd, timeout %d ms\n",
	       t_seed, iters, budget, poll_iters, TIMEOUT_MS);
	all.hist = calloc(HIST_US + 1, sizeof(*all.hist));
	pall.hist = calloc(HIST_US + 1, sizeof(*pall.hist));
	assert_true(all.hist && pall.hist, "out of memory");

	for (size_t i = 0; i < NR_CONFIGS; i++)
		weights += configs[i].weight;
	for (size_t i = 0; i < NR_CONFIGS && all.lost < MAX_LOST; i++)
		run_process(&configs[i], iters * configs[i].weight / weights,
			    budget * configs[i].weight / weights, &all, &total);
	run_poll(&configs[0], poll_iters, poll_budget, &pall, &poll_total);

	printf("wake-stress: %" PRIu64 " iterations across processes, %" PRIu64
	       " wakeups timed, %" PRIu64 " lost; wake latency median %.1f us, p99 %.1f us, "
	       "max %.1f us\n",
	       total, all.wakeups, all.lost, lat_quantile_us(&all, 0.5),
	       lat_quantile_us(&all, 0.99), (double)all.lat_max_ns / 1e3);
	printf("wake-stress: %" PRIu64 " iterations through the poll fd, %" PRIu64
	       " wakeups timed, %" PRIu64 " lost; wake latency median %.1f us, p99 %.1f us, "
	       "max %.1f us; %.1f s in all\n",
	       poll_total, pall.wakeups, pall.lost, lat_quantile_us(&pall, 0.5),
	       lat_quantile_us(&pall, 0.99), (double)pall.lat_max_ns / 1e3, t_now() - t0);
	free(all.hist);
	free(pall.hist);
	return t_done();
}
