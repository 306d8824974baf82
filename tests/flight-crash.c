// SPDX-License-Identifier: MIT
/*
 * A flight-ring writer that dies: a child writes seeded records in a tight loop and is SIGKILLed
 * (a few times: SIGSEGV from a timer's handler, mid-write) at a seeded random moment; the parent
 * recovers the ring post-mortem with evr_flight_recover() over a read-only mapping and checks
 * that every record is byte-exact, the sequences run without a hole up to the last record the
 * child published as committed (or one past it, never a torn one), and the accounting: in
 * overwrite mode overwritten + recovered == written; in produce/consume mode (the parent reads
 * while the child writes) what was read and what is recovered join without a gap or overlap.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evring.h"
#include "oracle.h"
#include "test.h"

#define PAGE_SIZE 512u
#define NR_PAGES 8u
#define MAX_RECS 4096u

static const struct t_lenmix mix = { .small_max = 64, .large_max = 400, .large_every = 16 };

/* What the child publishes, in a MAP_SHARED page of its own (not the session). */
struct shared {
	uint64_t last; /* seq of the last record evr_flight_write() returned 0 for, + 1 (0: none) */
	uint64_t refused; /* -ENOSPC returns */
	uint64_t bad; /* any other return */
	uint64_t started; /* the child is about to write its first record */
};

/* A walk's records: their sequences, each checked byte for byte. */
struct seen {
	uint64_t seed;
	uint64_t seq[MAX_RECS]; /* the first MAX_RECS */
	uint32_t n;
	uint64_t count; /* all records */
	uint64_t out_of_order; /* records whose seq is not their index (count) */
	uint64_t lost_recs, lost, torn, foreign;
	char first_bad[128];
};

static int check_rec(const struct evr_record *rec, struct seen *sn)
{
	struct t_payload_hdr h;

	if (!rec->is_app) {
		struct evr_lost_body b;

		if (rec->type != EVR_TYPE_LOST || rec->len < sizeof(b)) {
			sn->foreign++;
			return 0;
		}
		memcpy(&b, rec->data, sizeof(b));
		sn->lost_recs++;
		sn->lost += b.lost;
		return 0;
	}
	if (rec->type != 0 || rec->len < sizeof(h)) {
		sn->foreign++;
		return 0;
	}
	memcpy(&h, rec->data, sizeof(h));
	if (h.stream != 0 || h.len != rec->len ||
	    rec->len != t_payload_len(&mix, sn->seed, 0, h.seq) ||
	    t_payload_diff(rec->data, rec->len, sn->seed, 0, h.seq) != -1) {
		sn->torn++;
		return 0;
	}
	if (h.seq != sn->count && !sn->out_of_order)
		snprintf(sn->first_bad, sizeof(sn->first_bad),
			 "record %" PRIu64 " carries seq %" PRIu64 " (page %" PRIu64
			 " offset %" PRIu64 ")",
			 sn->count, h.seq, rec->pos / PAGE_SIZE, rec->pos % PAGE_SIZE);
	if (h.seq != sn->count)
		sn->out_of_order++;
	sn->count++;
	if (sn->n < MAX_RECS)
		sn->seq[sn->n++] = h.seq;
	return 0;
}

static int cb(const struct evr_record *rec, void *arg)
{
	return check_rec(rec, arg);
}

static volatile int *no_access; /* a PROT_NONE page */

static void on_alarm(int sig)
{
	(void)sig;
	/* a real fault, in a handler that interrupted evr_flight_write() somewhere; the default
	 * action, not a sanitizer's handler, must end the process */
	signal(SIGSEGV, SIG_DFL);
	*no_access = 1;
}

/* Child: write seq 0, 1, ... forever; -ENOSPC retries the same seq. */
static void __attribute__((noreturn)) writer(struct evr_flight *f, uint64_t seed,
					     volatile struct shared *sh, long segv_us)
{
	uint8_t buf[512];

	if (segv_us > 0) {
		struct rlimit nocore = { 0, 0 };
		struct itimerval it = { .it_value = { 0, segv_us } };

		setrlimit(RLIMIT_CORE, &nocore);
		no_access = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (no_access == MAP_FAILED)
			_exit(4);
		signal(SIGALRM, on_alarm);
		setitimer(ITIMER_REAL, &it, NULL);
	}
	__atomic_store_n(&sh->started, 1, __ATOMIC_RELEASE);
	for (uint64_t seq = 0;;) {
		uint32_t len = t_payload_len(&mix, seed, 0, seq);
		int err;

		t_payload_fill(buf, len, seed, 0, seq);
		err = evr_flight_write(f, 0, buf, len);
		if (err == 0) {
			seq++;
			__atomic_store_n(&sh->last, seq, __ATOMIC_RELEASE);
		} else if (err == -ENOSPC) {
			__atomic_store_n(&sh->refused, sh->refused + 1, __ATOMIC_RELEASE);
		} else {
			sh->bad++;
			_exit(3);
		}
	}
}

/* Sequences @s[0..n) must be consecutive from @first; reports and returns -1 otherwise. */
static int contiguous(const uint64_t *s, uint32_t n, uint64_t first, const char *what, int it)
{
	for (uint32_t i = 0; i < n; i++)
		if (s[i] != first + i) {
			t_report(__FILE__, __LINE__, what,
				 "iteration %d: record %u carries seq %" PRIu64 ", want %" PRIu64,
				 it, i, s[i], first + i);
			return -1;
		}
	return 0;
}

/*
 * Does the image show the writer inside a push of the head (a link still says UPDATE, or the
 * tail's link no longer says HEAD while pages were pushed out)? Then the page being pushed may
 * be counted as overwritten and still be intact, or be emptied without being counted yet; the
 * count is exact only outside such a push.
 */
static int mid_push(const uint8_t *img, size_t len)
{
	const struct evr_session_hdr *h = (const void *)img;
	const struct evr_session_entry *e = &h->entries[0];
	const struct evr_ctrl *c = (const void *)(img + e->offset);
	const struct evr_flight_ctrl *fc =
		(const void *)((const uint8_t *)c + EVR_FLIGHT_CTRL_OFFSET);
	const struct evr_flight_desc *d = (const void *)((const uint8_t *)c + fc->desc_offset);

	(void)len;
	for (uint32_t i = 0; i < fc->nr_pages; i++)
		if ((d[i].link & EVR_FL_MASK) == EVR_FL_UPDATE)
			return 1;
	return fc->tail < fc->nr_pages && (d[fc->tail].link & EVR_FL_MASK) != EVR_FL_HEAD;
}

struct totals {
	uint64_t iters, recovered, overwritten, exact, plus_one, consumed, segv, empty;
};

static void one(int it, uint64_t *rng, int overwrite, int segv, struct totals *tt)
{
	uint32_t flags = EVR_RING_FLIGHT | (overwrite ? EVR_RING_OVERWRITE : 0) |
			 ((t_rand(rng) & 3) == 0 ? EVR_RING_STAMP : 0);
	EVR_OPTS(evr_session_opts, o, .nr_rings = 1, .ring_flags = flags,
		 .data_size = PAGE_SIZE * NR_PAGES, .flight_page_size = PAGE_SIZE);
	struct evr_flight_stats st = { .sz = sizeof(st) };
	static struct seen rec, rd, dr;
	volatile struct shared *sh;
	struct evr_session *s;
	struct evr_flight *f;
	uint64_t seed = t_mix(t_seed ^ (uint64_t)it), delay_us = t_rand(rng) % 3000, last, oldest;
	int fd, status, k, mp = 0;
	struct evr_record r;
	double end;
	size_t size;
	void *img;
	pid_t pid;

	memset(&rec, 0, sizeof(rec));
	memset(&rd, 0, sizeof(rd));
	memset(&dr, 0, sizeof(dr));
	rec.seed = rd.seed = dr.seed = seed;
	sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(sh != MAP_FAILED, "mmap");
	assert_eq(evr_session_create(&o, &s), 0);
	assert_eq(evr_session_get_flight(s, 0, &f), 0);
	pid = fork();
	assert_true(pid >= 0, "fork");
	if (pid == 0)
		writer(f, seed, sh, segv ? 1 + (long)delay_us : 0);

	/* the child writes through the handle it inherited; in produce/consume mode we read */
	if (t_rand(rng) & 3) /* mostly from its first write on; sometimes before it even starts */
		while (!__atomic_load_n(&sh->started, __ATOMIC_ACQUIRE))
			sched_yield();
	end = t_now() + (segv ? 0.5 : delay_us / 1e6);
	while (t_now() < end) {
		if (overwrite) {
			sched_yield();
		} else {
			k = evr_flight_read(f, &r);
			if (k == 1)
				check_rec(&r, &rd);
			else
				expect_eq(k, 0);
		}
		if (segv && waitpid(pid, &status, WNOHANG) == pid)
			goto dead;
	}
	if (segv) {
		expect_true(0, "iteration %d: the SIGSEGV child is still alive", it);
		kill(pid, SIGKILL);
	} else {
		kill(pid, SIGKILL);
	}
	assert_eq(waitpid(pid, &status, 0), pid);
dead:
	expect_true(WIFSIGNALED(status) && WTERMSIG(status) == (segv ? SIGSEGV : SIGKILL),
		    "iteration %d: child status %#x", it, status);
	expect_eq(sh->bad, 0);
	last = __atomic_load_n(&sh->last, __ATOMIC_ACQUIRE); /* records committed */

	/* post-mortem, over a read-only mapping of the whole object */
	fd = evr_session_get_fd(s);
	size = (size_t)lseek(fd, 0, SEEK_END);
	img = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(img != MAP_FAILED, "mmap the session");
	k = evr_flight_recover(img, size, cb, &rec, &st);
	expect_true(k >= 0, "iteration %d: recover %d", it, k);
	expect_eq(rec.torn, 0);
	expect_eq(rec.foreign, 0);
	expect_eq(rec.lost_recs, 0); /* recovery hands out what the pages hold, no LOST records */
	expect_eq(st.rings, 1);
	expect_eq(st.bad, 0);
	expect_eq(k, rec.n);
	assert_true(rec.count < MAX_RECS, "a ring of %u pages holds %" PRIu64 " records", NR_PAGES,
		    rec.count);
	/* what was read, then what is recovered: one run, no hole, ending at last or last + 1 */
	expect_true(rd.out_of_order == 0,
		    "iteration %d: read live: %" PRIu64 " records out of order, the first: %s", it,
		    rd.out_of_order, rd.first_bad);
	oldest = rec.n ? rec.seq[0] : rd.count;
	if (!overwrite)
		expect_true(oldest == rd.count, "iteration %d: read 0..%" PRIu64
			    ", recovered from %" PRIu64, it, rd.count, oldest);
	contiguous(rec.seq, rec.n, oldest, "recovered", it);
	expect_true(oldest + rec.n == last || oldest + rec.n == last + 1,
		    "iteration %d: recovered up to %" PRIu64 " (exclusive), the child committed %"
		    PRIu64, it, oldest + rec.n, last);
	if (oldest + rec.n == last + 1)
		tt->plus_one++;
	/* written is published after the record's commit, the child's count after that */
	expect_true(st.written >= last && st.written <= oldest + rec.n,
		    "iteration %d: written %" PRIu64 ", committed %" PRIu64
		    ", recovered to %" PRIu64,
		    it, st.written, last, oldest + rec.n);
	if (overwrite) {
		/*
		 * Everything before the oldest recovered record was pushed out and counted, and
		 * nothing else, except while a push was under way: its page is counted before it
		 * is emptied (so at most one page of records is both counted and recovered), and
		 * no page is emptied before it is counted.
		 */
		mp = mid_push(img, size);
		expect_true(st.overwritten >= oldest && st.overwritten <= oldest + PAGE_SIZE / 24,
			    "iteration %d: overwritten %" PRIu64 ", oldest recovered %" PRIu64, it,
			    st.overwritten, oldest);
		if (!mp) {
			expect_true(st.overwritten == oldest && st.missed == st.overwritten,
				    "iteration %d: overwritten %" PRIu64 " missed %" PRIu64
				    ", oldest recovered %" PRIu64,
				    it, st.overwritten, st.missed, oldest);
			tt->exact++;
		}
		expect_eq(st.lost, 0);
	} else {
		uint64_t refused = __atomic_load_n(&sh->refused, __ATOMIC_ACQUIRE);

		expect_eq(st.overwritten, 0);
		expect_true(st.lost >= refused && st.lost <= refused + 1,
			    "iteration %d: lost %" PRIu64 ", the child was refused %" PRIu64, it,
			    st.lost, refused);
		/* the reader drains the rest: a prefix of what was recovered (the same, unless the
		 * child died between publishing a page's commit and the commit page) */
		while ((k = evr_flight_read(f, &r)) == 1)
			check_rec(&r, &dr);
		expect_eq(k, 0);
		expect_eq(dr.torn + rd.torn, 0);
		expect_true(dr.n <= rec.n && !memcmp(dr.seq, rec.seq, dr.n * sizeof(uint64_t)),
			    "iteration %d: drained %u records, recovered %u", it, dr.n, rec.n);
		expect_true(rd.lost + dr.lost <= st.lost,
			    "LOST records say %" PRIu64 " of %" PRIu64, rd.lost + dr.lost, st.lost);
		tt->consumed += rd.count;
	}
	tt->iters++;
	tt->recovered += rec.n;
	tt->overwritten += st.overwritten;
	tt->segv += segv;
	tt->empty += last == 0;
	munmap(img, size);
	munmap((void *)sh, 4096);
	evr_session_destroy(s);
}

int main(void)
{
	int iters = t_long() ? 5000 : 600, segv_iters = t_long() ? 200 : 12;
	uint64_t rng = t_seed ^ 0xf11e;
	struct totals tt = { 0 };
	double t0;

	t_init("flight-crash");
	t0 = t_now();
	for (int i = 0; i < iters && !t_failures; i++) {
		/* a loaded machine gets fewer rounds, never fewer than a couple of hundred */
		if (!t_long() && i >= 200 && t_now() - t0 > 5)
			break;
		one(i, &rng, i % 3 != 2, 0, &tt);
	}
	for (int i = 0; i < segv_iters && !t_failures; i++)
		one(iters + i, &rng, i & 1, 1, &tt);
	printf("%s: %" PRIu64 " writers killed (%" PRIu64 " by SIGSEGV), %" PRIu64
	       " recovered, %" PRIu64 " overwritten, %" PRIu64 " read live; exact overwrite counts "
	       "in %" PRIu64 ", the record in flight recovered in %" PRIu64 ", %" PRIu64
	       " died before a write (%.1fs)\n",
	       t_name, tt.iters, tt.segv, tt.recovered, tt.overwritten, tt.consumed, tt.exact,
	       tt.plus_one, tt.empty, t_now() - t0);
	return t_done();
}
