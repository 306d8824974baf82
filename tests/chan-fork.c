// SPDX-License-Identifier: MIT
/*
 * Per-thread channels across fork(): a child claims its own slot (never its parent's, which
 * stays the parent's), both streams arrive intact and in order; a child that exits or is
 * SIGKILLed while it owns a slot leaves it to the reader, which reads what it committed,
 * orphans the slot once the process is gone and recycles it; the next thread to claim it
 * resumes cleanly from what the dead writer published.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evring.h"
#include "oracle.h"
#include "test.h"

#define SLOTS 4u
#define STREAMS 4 /* 0: parent, 1: first child, 2: killed child, 3: thread after recycling */
#define KILL_CAP 12000u /* records the killed child writes at most: they fit the ring */

static const struct t_lenmix mix = { 48, 48, 0 };

static struct evr_chan *ch;
static struct evr_chan_reader *crd;
static uint64_t seq[STREAMS]; /* next sequence number per stream (in the process writing it) */
static uint8_t buf[256];
static pid_t parent_pid;

/* What the reader saw, per stream. */
static struct {
	uint64_t next; /* the next seq expected: streams here are complete and in order */
	int ring; /* the one ring the stream used, or -1 */
} rs[STREAMS];
static uint64_t last_time, nrec, order_errs;
static int order_log[64]; /* streams in delivery order, the first few */

static int write_rec(uint32_t stream)
{
	uint32_t len = t_payload_len(&mix, t_seed, stream, seq[stream]);
	int err;

	t_payload_fill(buf, len, t_seed, stream, seq[stream]);
	err = evr_chan_write(ch, stream, buf, len);
	if (!err)
		seq[stream]++;
	return err;
}

static struct evr_ctrl *slot_ctrl(uint32_t i)
{
	struct evr_ring *r;

	/* the channel's creator took every ring's writer role: this takes nothing more */
	if (evr_session_get_ring(evr_chan_get_session(ch), i, &r))
		return NULL;
	return evr_ring_get_ctrl(r);
}

static uint32_t slot_state(uint32_t i)
{
	return __atomic_load_n(&slot_ctrl(i)->slot_state, __ATOMIC_ACQUIRE);
}

/* The slot owned by (@pid, @tid), -1 if none, -2 if more than one. */
static int owned_by(pid_t pid, pid_t tid)
{
	int found = -1;

	for (uint32_t i = 0; i < SLOTS; i++) {
		struct evr_ctrl *c = slot_ctrl(i);

		if (slot_state(i) == EVR_SLOT_OWNED &&
		    __atomic_load_n(&c->writer_pid, __ATOMIC_RELAXED) == pid &&
		    (!tid || __atomic_load_n(&c->writer_tid, __ATOMIC_RELAXED) == tid))
			found = found == -1 ? (int)i : -2;
	}
	return found;
}

/* Check one delivered record against the oracle; streams must be complete and ordered. */
static void check(const struct evr_record *rec)
{
	struct t_payload_hdr h;
	long off;

	assert_true(rec->is_app, "unexpected record type %u (LOST?) from ring %u", rec->type,
		    rec->ring);
	assert_true(rec->type < STREAMS && rec->len >= sizeof(h), "record id %u len %u",
		    rec->type, rec->len);
	memcpy(&h, rec->data, sizeof(h));
	assert_true(h.stream == rec->type, "id %u carries stream %u", rec->type, h.stream);
	expect_true(h.seq == rs[h.stream].next,
		    "stream %u: seq %" PRIu64 ", expected %" PRIu64 " (ring %u)", h.stream, h.seq,
		    rs[h.stream].next, rec->ring);
	expect_eq(rec->len, t_payload_len(&mix, t_seed, h.stream, h.seq));
	off = t_payload_diff(rec->data, rec->len, t_seed, h.stream, h.seq);
	expect_true(off < 0, "stream %u seq %" PRIu64 ": payload differs at byte %ld", h.stream,
		    h.seq, off);
	if (rs[h.stream].ring < 0)
		rs[h.stream].ring = rec->ring;
	expect_true(rs[h.stream].ring == rec->ring,
		    "stream %u seq %" PRIu64 " in ring %u, earlier records in ring %d", h.stream,
		    h.seq, rec->ring, rs[h.stream].ring);
	expect_true(rec->has_time, "stream %u seq %" PRIu64 " has no time", h.stream, h.seq);
	if (rec->time < last_time && !order_errs++)
		t_report(__FILE__, __LINE__, "merged order",
			 "stream %u seq %" PRIu64 " at %" PRIu64 " after a record at %" PRIu64,
			 h.stream, h.seq, rec->time, last_time);
	else
		last_time = rec->time;
	if (nrec < 64)
		order_log[nrec] = (int)h.stream;
	nrec++;
	rs[h.stream].next = h.seq + 1;
}

/* Read everything there is (drain: ignore the window). */
static void drain(void)
{
	struct evr_record rec;
	int got;

	while ((got = evr_chan_reader_next(crd, &rec, true)) == 1)
		check(&rec);
	assert_eq(got, 0);
}

/* Keep reading until slot @i is free again (the reader looks for dead writers every 100 ms). */
static void wait_recycled(uint32_t i, const char *what)
{
	double t0 = t_now();

	while (slot_state(i) != EVR_SLOT_FREE && t_now() - t0 < 5) {
		struct timespec ts = { 0, 5 * 1000 * 1000 };

		drain();
		nanosleep(&ts, NULL);
	}
	expect_true(slot_state(i) == EVR_SLOT_FREE,
		    "%s: slot %u still in state %u after 5 s (writer pid %d)", what, i,
		    slot_state(i), slot_ctrl(i)->writer_pid);
}

static volatile sig_atomic_t handler_err = 1;

static void on_usr1(int sig)
{
	handler_err = write_rec(1);
}

/* The first child: its first write comes from a signal handler and must claim its own slot. */
static int child_a(int pslot)
{
	struct sigaction sa;
	int me;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	if (sigaction(SIGUSR1, &sa, NULL) || raise(SIGUSR1))
		return 10;
	if (handler_err)
		return 11;
	for (int i = 0; i < 200; i++)
		if (write_rec(1))
			return 12;
	me = owned_by(getpid(), 0);
	if (me < 0 || me == pslot)
		return 13; /* no slot of its own, two, or the parent's */
	if (owned_by(parent_pid, 0) != pslot)
		return 14; /* the parent's slot changed hands */
	if (slot_ctrl((uint32_t)me)->writer_tid != gettid())
		return 15;
	if (evr_chan_flush(ch) < 0)
		return 16;
	return 0; /* _exit: no thread-exit destructor runs; the reader finds the process gone */
}

/* The second child writes until killed; everything it committed must be readable. */
static void child_b(int fd)
{
	char c = 1;

	for (uint32_t i = 0; i < KILL_CAP; i++) {
		double t0 = t_now();

		while (t_now() - t0 < 500e-9) /* ~6 ms in all: the kill lands while it writes */
			;
		if (write_rec(2))
			_exit(20);
		if (i == 1000 && write(fd, &c, 1) != 1)
			_exit(21);
	}
	for (;;)
		pause();
}

static void *late_thread(void *arg)
{
	int *slot = arg;

	for (int i = 0; i < 300; i++)
		if (write_rec(3))
			return (void *)1;
	*slot = owned_by(getpid(), gettid());
	return NULL; /* the destructor flushes and orphans the slot */
}

int main(void)
{
	EVR_OPTS(evr_chan_opts, o, .policy = EVR_CHAN_THREAD, .nr_slots = SLOTS,
		 .data_size = 1u << 20);
	struct evr_chan_stats st = { .sz = sizeof(st) };
	int pslot, aslot, bslot, tslot = -1, status, pfd[2];
	uint64_t b_seen;
	pid_t pid;
	pthread_t th;
	void *ret;

	t_init("chan-fork");
	parent_pid = getpid();
	for (int i = 0; i < STREAMS; i++)
		rs[i].ring = -1;
	assert_eq(evr_chan_create(&o, &ch), 0);
	assert_eq(evr_chan_reader_create(ch, NULL, &crd), 0);

	/* the parent claims a slot */
	for (int i = 0; i < 100; i++)
		assert_eq(write_rec(0), 0);
	pslot = owned_by(parent_pid, gettid());
	assert_true(pslot >= 0, "the parent owns no slot after writing (%d)", pslot);

	/* a child writes too, into a slot of its own */
	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0, "fork");
	if (pid == 0)
		_exit(child_a(pslot));
	assert_eq(waitpid(pid, &status, 0), pid);
	expect_true(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "first child: status 0x%x (10-12: write failed, 13: no slot of its own or the "
		    "parent's, 14: the parent's slot changed hands, 15: wrong tid, 16: flush)",
		    status);
	aslot = owned_by(pid, 0);
	expect_true(aslot >= 0 && aslot != pslot, "first child's slot %d (parent's %d)", aslot,
		    pslot);
	expect_eq(owned_by(parent_pid, gettid()), pslot);
	/* the parent goes on in its own slot */
	for (int i = 0; i < 100; i++)
		assert_eq(write_rec(0), 0);
	expect_eq(owned_by(parent_pid, gettid()), pslot);
	drain();
	/* merged: the parent's first 100, the child's 201, the parent's next 100 */
	expect_eq(nrec, 401);
	expect_eq(rs[0].next, 200);
	expect_eq(rs[1].next, 201);
	expect_eq(rs[0].ring, pslot);
	expect_eq(rs[1].ring, aslot);
	for (int i = 0; i < 64; i++)
		expect_true(order_log[i] == 0, "record %d of the merged stream is from stream %d",
			    i, order_log[i]);
	if (aslot >= 0) {
		wait_recycled((uint32_t)aslot, "exited child");
		expect_eq(owned_by(pid, 0), -1);
	}
	expect_eq(owned_by(parent_pid, gettid()), pslot); /* a live writer's slot stays */

	/* a child killed while it owns a slot (and, at times, in the middle of a write) */
	assert_eq(pipe(pfd), 0);
	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0, "fork");
	if (pid == 0) {
		close(pfd[0]);
		child_b(pfd[1]);
	}
	close(pfd[1]);
	{
		char c;
		struct timespec ts = { 0, (long)(t_mix(t_seed) % 3000000) };

		assert_eq(read(pfd[0], &c, 1), 1);
		close(pfd[0]);
		bslot = owned_by(pid, 0);
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		assert_eq(waitpid(pid, &status, 0), pid);
		expect_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			    "killed child: status 0x%x", status);
	}
	expect_true(bslot >= 0 && bslot != pslot, "killed child's slot %d (parent's %d)", bslot,
		    pslot);
	if (bslot >= 0) {
		wait_recycled((uint32_t)bslot, "killed child");
		drain();
	}
	b_seen = rs[2].next;
	expect_true(b_seen > 1000 && b_seen <= KILL_CAP,
		    "killed child: %" PRIu64 " records read, it wrote more than 1000", b_seen);
	expect_eq(rs[2].ring, bslot);

	/* a new thread claims the lowest free slot: the killed child's, and resumes cleanly */
	assert_eq(pthread_create(&th, NULL, late_thread, &tslot), 0);
	assert_eq(pthread_join(th, &ret), 0);
	expect_true(ret == NULL, "the thread's writes failed");
	expect_eq(tslot, bslot);
	for (int i = 0; i < 50; i++)
		assert_eq(write_rec(0), 0);
	drain();
	expect_eq(rs[3].next, 300);
	expect_eq(rs[3].ring, tslot);
	expect_eq(rs[0].next, 250);
	if (tslot >= 0)
		wait_recycled((uint32_t)tslot, "exited thread");
	assert_eq(evr_chan_reader_get_stats(crd, &st), 0);
	expect_eq(st.lost, 0);
	expect_eq(st.bad, 0);
	expect_eq(st.fallback_writes, 0);
	expect_eq(st.slots_owned, 1); /* the parent's main thread */
	expect_eq(st.recycled, 3);
	expect_eq(st.records, nrec);
	expect_eq(st.late, 0);
	printf("chan-fork: parent slot %d, child slots %d and %d (killed after %" PRIu64
	       " records), thread after recycling: slot %d; %" PRIu64 " records, %" PRIu64
	       " recycled\n",
	       pslot, aslot, bslot, b_seen, tslot, nrec, st.recycled);
	evr_chan_reader_destroy(crd);
	evr_chan_destroy(ch);
	return t_done();
}
