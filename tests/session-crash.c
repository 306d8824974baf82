// SPDX-License-Identifier: MIT
/*
 * Processes that die: a session writer SIGKILLed at seeded random moments loses at most the
 * record it was writing, and a new writer takes the ring over; a reader SIGKILLed mid-batch
 * leaves the writer working and a new reader resumes from the published data_tail.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evring.h"
#include "test.h"

#define APP_ID 3u
#define MAX_LEN 400u
#define DATA_SIZE (4 * 4096u)

static uint32_t len_of(uint64_t seed, uint64_t seq)
{
	return 8 + (uint32_t)(t_mix(seed * 131 + seq) % (MAX_LEN - 8));
}

static void fill(uint8_t *buf, uint32_t len, uint64_t seed, uint64_t seq)
{
	uint64_t st = seed ^ (seq * 0x9e3779b97f4a7c15ull);

	memcpy(buf, &seq, 8);
	for (uint32_t i = 8; i < len; i += 8) {
		uint64_t v = t_rand(&st);

		memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
	}
}

static int write_seq(struct evr_ring *r, uint64_t seed, uint64_t seq)
{
	uint8_t buf[MAX_LEN];
	uint32_t len = len_of(seed, seq);

	fill(buf, len, seed, seq);
	return evr_ring_write(r, APP_ID, buf, len);
}

/* The seq an intact record carries, or ~0 if it is not byte for byte what (seed, seq) gives. */
static uint64_t rec_seq(const struct evr_record *rec, uint64_t seed)
{
	uint8_t buf[MAX_LEN];
	uint64_t seq;

	if (!rec->is_app || rec->type != APP_ID || rec->len < 8)
		return ~0ull;
	memcpy(&seq, rec->data, 8);
	if (rec->len != len_of(seed, seq))
		return ~0ull;
	fill(buf, rec->len, seed, seq);
	return memcmp(buf, rec->data, rec->len) ? ~0ull : seq;
}

/*
 * One batch: every application record must be intact and carry *@next; LOST records are summed
 * into *@lost. Returns records read, or -1 after reporting a violation.
 */
static int batch(struct evr_reader *rd, uint64_t seed, uint64_t *next, uint64_t *lost,
		 const char *where)
{
	struct evr_record rec;
	int n, got = 0;

	n = evr_reader_begin(rd);
	if (n < 0) {
		t_report(__FILE__, __LINE__, where, "evr_reader_begin: %d", n);
		evr_reader_end(rd);
		return -1;
	}
	while ((n = evr_reader_next(rd, &rec)) == 1) {
		uint64_t seq;

		if (!rec.is_app && rec.type == EVR_TYPE_LOST && rec.len >= 16) {
			uint64_t l;

			memcpy(&l, (const uint8_t *)rec.data + 8, 8);
			*lost += l;
			continue;
		}
		seq = rec_seq(&rec, seed);
		if (seq != *next) {
			t_report(__FILE__, __LINE__, where,
				 "record at %" PRIu64 ": carries %" PRIu64 " (~0: torn), want %"
				 PRIu64,
				 rec.pos, seq, *next);
			evr_reader_end(rd);
			return -1;
		}
		(*next)++;
		got++;
	}
	evr_reader_end(rd);
	if (n < 0) {
		t_report(__FILE__, __LINE__, where, "evr_reader_next: %d", n);
		return -1;
	}
	return got;
}

/* Child: take ring 0 over and write seeded records from @seq on, forever. */
static void __attribute__((noreturn)) crash_writer(int fd, uint64_t seed, uint64_t seq,
						   uint64_t limit)
{
	struct evr_session *s;
	struct evr_ring *r;

	if (evr_session_open_fd(fd, EVR_SESSION_WRITER, &s) || evr_session_get_ring(s, 0, &r))
		_exit(2);
	while (seq < limit) {
		struct evr_slot slot;
		int err;

		/* odd records are filled inside the reservation: a kill often lands mid-payload */
		if (seq & 1) {
			err = evr_ring_reserve(r, APP_ID, len_of(seed, seq), &slot);
			if (!err) {
				fill(slot.data, slot.len, seed, seq);
				err = evr_ring_commit(r, &slot);
			}
		} else {
			err = write_seq(r, seed, seq);
		}

		if (err == 0)
			seq++;
		else if (err == -ENOSPC)
			sched_yield();
		else
			_exit(3);
	}
	evr_ring_flush(r);
	_exit(0);
}

static void writer_crashes(void)
{
	EVR_OPTS(evr_session_opts, o, .nr_rings = 1, .data_size = DATA_SIZE);
	int iters = t_long() ? 20000 : 1000, fd, status;
	uint64_t seed = t_seed ^ 0x57, next = 0, lost = 0, rng = t_seed, ebad = 0, killed = 0;
	struct evr_session *s;
	struct evr_ring *r;
	struct evr_reader *rd;
	double t0 = t_now();
	pid_t pid;

	assert_eq(evr_session_create(&o, &s), 0);
	assert_eq(evr_session_get_ring(s, 0, &r), 0);
	assert_eq(evr_reader_create(r, NULL, &rd), 0);
	fd = evr_session_get_fd(s);
	for (int i = 0; i <= iters && !t_failures; i++) {
		uint64_t delay = t_rand(&rng) % 3000, start = next, end;
		int last;

		/* a loaded machine gets fewer rounds, never fewer than a few hundred */
		if (!t_long() && i >= 300 && i < iters && t_now() - t0 > 8)
			iters = i;
		last = i == iters;

		pid = fork();
		assert_true(pid >= 0, "fork");
		if (pid == 0)
			crash_writer(fd, seed, next, last ? next + 5000 : ~0ull);
		if (last) {
			/* the final writer is left alone: all its records must arrive */
			double give_up = t_now() + 30;

			while (waitpid(pid, &status, WNOHANG) == 0) {
				if (batch(rd, seed, &next, &lost, "final writer") < 0)
					ebad++;
				if (t_now() > give_up) {
					t_report(__FILE__, __LINE__, "final writer",
						 "no progress after 30 s: read %" PRIu64
						 " of its 5000 records", next - start);
					kill(pid, SIGKILL);
				}
			}
			expect_true(WIFEXITED(status) && WEXITSTATUS(status) == 0,
				    "final writer status %#x", status);
			batch(rd, seed, &next, &lost, "final writer");
			expect_eq(next, start + 5000);
			break;
		}
		/* read while it writes, for a random while; sometimes do not read at all */
		end = (uint64_t)((t_now() - t0) * 1e6) + delay;
		while ((uint64_t)((t_now() - t0) * 1e6) < end)
			if (delay & 1) {
				if (batch(rd, seed, &next, &lost, "during") < 0)
					ebad++;
			} else {
				sched_yield();
			}
		kill(pid, SIGKILL);
		expect_eq(waitpid(pid, &status, 0), pid);
		if (WIFEXITED(status))
			t_report(__FILE__, __LINE__, "writer child", "exited early with %d",
				 WEXITSTATUS(status));
		killed++;
		/* everything it committed is there, intact, in order, nothing torn after it */
		while (batch(rd, seed, &next, &lost, "after the kill") > 0)
			;
	}
	expect_eq(ebad, 0);
	printf("%s: %" PRIu64 " writers killed, %" PRIu64 " records read, %" PRIu64
	       " lost for room (%.1fs)\n", t_name, killed, next, lost, t_now() - t0);
	evr_reader_destroy(rd);
	evr_session_close(s);
}

/* What a reader child publishes about its progress, in shared anonymous memory. */
struct progress {
	uint64_t ended; /* next seq after the last batch whose evr_reader_end() returned */
	uint64_t pending; /* next seq after the batch in flight (published if end was reached) */
	uint64_t failed;
	uint64_t lost;
};

/*
 * Child: read ring @idx from @next on in batches of random length; after @full batches, stop
 * in the middle of one (after begin, some records in, before end) and wait to be killed.
 */
static void __attribute__((noreturn)) crash_reader(int fd, uint32_t idx, uint64_t seed,
						   uint64_t next, int full,
						   volatile struct progress *p,
						   int ready, uint64_t rng)
{
	struct evr_session *s;
	struct evr_ring *r;
	struct evr_reader *rd;
	struct evr_record rec;
	char c = 1;

	alarm(60);
	if (evr_session_open_fd(fd, EVR_SESSION_READER, &s) || evr_session_get_ring(s, idx, &r) ||
	    evr_reader_create(r, NULL, &rd))
		_exit(2);
	for (int b = 0;; b++) {
		int n = evr_reader_begin(rd), take = 1 + (int)(t_rand(&rng) % 8);

		if (n < 0)
			p->failed++;
		while (take-- > 0 && evr_reader_next(rd, &rec) == 1) {
			if (!rec.is_app)
				continue;
			if (rec_seq(&rec, seed) != next)
				p->failed++;
			next++;
			p->pending = next;
		}
		if (b == full) {
			if (write(ready, &c, 1) != 1)
				_exit(4);
			for (;;)
				pause(); /* mid-batch: begun, not ended */
		}
		/* publishes the position after the last record handed out, not the batch end */
		evr_reader_end(rd);
		p->ended = next;
		if (full < 0)
			sched_yield();
	}
}

static void reader_crashes(void)
{
	EVR_OPTS(evr_session_opts, o, .nr_rings = 1, .data_size = DATA_SIZE);
	EVR_OPTS(evr_session_opts, ow, .nr_rings = 1, .data_size = DATA_SIZE,
		 .ring_flags = EVR_RING_OVERWRITE);
	int iters = t_long() ? 5000 : 400, fd, pfd[2], status;
	uint64_t seed = t_seed ^ 0x99, seq = 0, next, lost = 0, rng = t_seed ^ 1, nospc = 0;
	volatile struct progress *p;
	struct evr_session *s;
	struct evr_ring *r;
	struct evr_reader *rd;
	struct evr_ring_stats st = { .sz = sizeof(st) };
	double t0;
	pid_t pid;
	char c;

	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED, "mmap");
	assert_eq(pipe(pfd), 0);
	assert_eq(evr_session_create(&o, &s), 0);
	assert_eq(evr_session_get_ring(s, 0, &r), 0);
	fd = evr_session_get_fd(s);

	/*
	 * Discard mode. Each round: fill the ring, let a child reader take some batches and die
	 * in the middle of the next one; the writer here must keep working (-ENOSPC, counted), and
	 * a new reader must start at the dead one's published tail: re-deliver what it read in the
	 * unfinished batch and skip nothing.
	 */
	next = 0;
	t0 = t_now();
	for (int i = 0; i < iters && !t_failures; i++) {
		int full = (int)(t_rand(&rng) % 4), random_kill = i & 1;
		uint64_t before;

		if (!t_long() && i >= 150 && t_now() - t0 > 5) {
			iters = i;
			break;
		}

		while (!write_seq(r, seed, seq))
			seq++;
		nospc++;
		memset((void *)p, 0, sizeof(*p));
		p->ended = p->pending = next;
		pid = fork();
		assert_true(pid >= 0, "fork");
		if (pid == 0)
			crash_reader(fd, 0, seed, next, random_kill ? -1 : full, p, pfd[1],
				     t_rand(&rng));
		if (random_kill) {
			/* kill at a random moment while both run */
			double until = t_now() + (double)(t_rand(&rng) % 2000) * 1e-6;

			while (t_now() < until) {
				int err = write_seq(r, seed, seq);

				if (!err)
					seq++;
				else if (err == -ENOSPC)
					nospc++;
				else
					expect_eq(err, 0);
			}
		} else {
			expect_eq(read(pfd[0], &c, 1), 1);
		}
		kill(pid, SIGKILL);
		expect_eq(waitpid(pid, &status, 0), pid);
		expect_eq(p->failed, 0);
		/* the writer keeps working: full ring, -ENOSPC, counted */
		evr_ring_get_stats(r, &st);
		before = st.lost_full;
		for (int k = 0; k < 3; k++) {
			int err;

			while (!(err = write_seq(r, seed, seq)))
				seq++;
			expect_eq(err, -ENOSPC);
			nospc++;
		}
		evr_ring_get_stats(r, &st);
		expect_eq(st.lost_full, before + 3);
		/* a new reader: starts at the published tail, which is where a batch ended */
		assert_eq(evr_reader_create(r, NULL, &rd), 0);
		{
			uint64_t first = ~0ull, at = 0;
			struct evr_record rec;

			expect_true(evr_reader_begin(rd) > 0, "data to read");
			while (evr_reader_next(rd, &rec) == 1)
				if (rec.is_app) {
					first = rec_seq(&rec, seed);
					at = rec.pos;
					break;
				}
			if (first != p->ended && first != p->pending)
				t_report(__FILE__, __LINE__, "resume at the published tail",
					 "first record %" PRIu64 " at %" PRIu64 "; the dead reader "
					 "ended at %" PRIu64 ", was at %" PRIu64, first, at,
					 (uint64_t)p->ended, (uint64_t)p->pending);
			if (!random_kill)
				expect_eq(first, p->ended);
			next = first;
			/* restart the batch from the tail: read it all through the checker */
			evr_reader_destroy(rd);
			assert_eq(evr_reader_create(r, NULL, &rd), 0);
		}
		while (batch(rd, seed, &next, &lost, "new reader") > 0)
			;
		expect_eq(next, seq);
		/* the writer, with room again, reports what it lost and goes on */
		expect_eq(write_seq(r, seed, seq), 0);
		seq++;
		while (batch(rd, seed, &next, &lost, "new reader") > 0)
			;
		expect_eq(next, seq);
		evr_reader_destroy(rd);
	}
	evr_ring_get_stats(r, &st);
	printf("%s: %d readers killed; writer -ENOSPC %" PRIu64 ", lost_full %" PRIu64 "\n",
	       t_name, iters, nospc, st.lost_full);
	expect_eq(st.lost_full, nospc);
	evr_session_close(s);

	/*
	 * Overwrite mode: a reader that paused the ring and died mid-snapshot. Writers are refused
	 * (counted as paused) until a new reader resumes them, then overwrite forever; the new
	 * reader's snapshot is the newest records, intact and in order.
	 */
	assert_eq(evr_session_create(&ow, &s), 0);
	assert_eq(evr_session_get_ring(s, 0, &r), 0);
	fd = evr_session_get_fd(s);
	seq = 0;
	for (int i = 0; i < (t_long() ? 500 : 30) && !t_failures; i++) {
		for (int k = 0; k < 100; k++, seq++)
			expect_eq(write_seq(r, seed, seq), 0);
		pid = fork();
		assert_true(pid >= 0, "fork");
		if (pid == 0) {
			struct evr_session *cs;
			struct evr_ring *cr;
			struct evr_reader *crd;
			struct evr_record rec;

			alarm(60);
			if (evr_session_open_fd(fd, EVR_SESSION_READER, &cs) ||
			    evr_session_get_ring(cs, 0, &cr) || evr_reader_create(cr, NULL, &crd))
				_exit(2);
			if (i & 1)
				evr_ring_set_paused(cr, true, 1000);
			evr_reader_begin(crd);
			evr_reader_next(crd, &rec);
			if (write(pfd[1], &c, 1) != 1)
				_exit(4);
			for (;;)
				pause();
		}
		expect_eq(read(pfd[0], &c, 1), 1);
		kill(pid, SIGKILL);
		expect_eq(waitpid(pid, &status, 0), pid);
		if (i & 1) {
			expect_eq(write_seq(r, seed, seq), -ENOSPC);
			expect_eq(evr_ring_set_paused(r, false, 0), 0);
		}
		for (int k = 0; k < 500; k++, seq++)
			expect_eq(write_seq(r, seed, seq), 0);
		assert_eq(evr_reader_create(r, NULL, &rd), 0);
		{
			struct evr_record rec;
			uint64_t want = seq - 1, n = 0;

			expect_true(evr_reader_begin(rd) > 0, "snapshot");
			while (evr_reader_next(rd, &rec) == 1) {
				if (!rec.is_app)
					continue;
				if (rec_seq(&rec, seed) != want) {
					t_report(__FILE__, __LINE__, "overwrite snapshot",
						 "record %" PRIu64 " of the snapshot: want seq %"
						 PRIu64, n, want);
					break;
				}
				want--;
				n++;
			}
			evr_reader_end(rd);
			expect_true(n >= DATA_SIZE / (MAX_LEN + 8) / 2, "snapshot of %" PRIu64, n);
		}
		evr_reader_destroy(rd);
	}
	evr_session_close(s);
	close(pfd[0]);
	close(pfd[1]);
	munmap((void *)p, 4096);
}

int main(void)
{
	t_init("session-crash");
	writer_crashes();
	reader_crashes();
	return t_done();
}
