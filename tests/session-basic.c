// SPDX-License-Identifier: MIT
/*
 * Sessions across processes: memfd and named objects opened by fd and by name as reader and
 * writer in forked children, mirrored rings in every process, records byte-exact across the
 * process boundary with a blocking reader, and the close / destroy / unlink lifetime rules.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evring.h"
#include "test.h"

#define APP_ID 7u
#define MAX_LEN 600u

static char name[64];
static pid_t main_pid;

/* The payload of record @seq: 8 bytes of seq, then bytes derived from (seed, seq). */
static uint32_t len_of(uint64_t seed, uint64_t seq)
{
	return 8 + (uint32_t)(t_mix(seed * 31 + seq) % (MAX_LEN - 8));
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

/* Write record @seq, retrying while the ring is full (the reader is elsewhere). */
static int write_seq(struct evr_ring *r, uint64_t seed, uint64_t seq)
{
	uint8_t buf[MAX_LEN];
	uint32_t len = len_of(seed, seq);
	double t0 = t_now();
	int err;

	fill(buf, len, seed, seq);
	while ((err = evr_ring_write(r, APP_ID, buf, len)) == -ENOSPC) {
		if (t_now() - t0 > 20)
			return -ETIMEDOUT;
		usleep(50);
	}
	return err;
}

static int check_rec(const struct evr_record *rec, uint64_t seed, uint64_t seq)
{
	uint8_t buf[MAX_LEN];
	uint32_t len = len_of(seed, seq);

	if (!rec->is_app || rec->type != APP_ID || rec->len != len)
		return -1;
	fill(buf, len, seed, seq);
	return memcmp(rec->data, buf, len) ? -1 : 0;
}

/* Drain what is there; every application record must be the next in sequence. */
static int drain(struct evr_reader *rd, uint64_t seed, uint64_t *next, uint64_t *lost_recs)
{
	struct evr_record rec;
	int n, bad = 0;

	n = evr_reader_begin(rd);
	if (n < 0) {
		expect_eq(n, 0);
		return -1;
	}
	while ((n = evr_reader_next(rd, &rec)) == 1) {
		if (!rec.is_app) {
			expect_eq(rec.type, EVR_TYPE_LOST);
			(*lost_recs)++;
			continue;
		}
		if (check_rec(&rec, seed, *next)) {
			uint64_t got = 0;

			memcpy(&got, rec.data, rec.len >= 8 ? 8 : 0);
			t_report(__FILE__, __LINE__, "record intact", "seq %" PRIu64
				 " (len %u, carries seq %" PRIu64 ")", *next, rec.len, got);
			bad = -1;
			break;
		}
		(*next)++;
	}
	expect_eq(n < 0 ? n : 0, 0);
	evr_reader_end(rd);
	return n < 0 ? -1 : bad;
}

/*
 * Read @nr records from @r with evr_reader_wait() between batches; the writer is in another
 * process. Returns 0 when all arrived intact and the LOST records account for every -ENOSPC.
 */
static int read_records(struct evr_ring *r, uint64_t seed, uint64_t nr, pid_t writer)
{
	struct evr_reader *rd;
	struct evr_reader_stats st = { .sz = sizeof(st) };
	uint64_t next = 0, lost_recs = 0;
	double t0 = t_now();
	int n;

	assert_eq(evr_reader_create(r, NULL, &rd), 0);
	expect_eq(evr_reader_set_watermark(rd, 1024), 0);
	while (next < nr && t_now() - t0 < 30) {
		n = evr_reader_wait(rd, 200);
		if (n < 0) {
			expect_eq(n, 0);
			break;
		}
		if (drain(rd, seed, &next, &lost_recs))
			break;
	}
	expect_eq(next, nr);
	if (writer > 0) {
		int status = -1;

		expect_eq(waitpid(writer, &status, 0), writer);
		expect_true(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer status %#x",
			    status);
	}
	/* the writer flushed before leaving: its LOST records cover every refused write */
	drain(rd, seed, &next, &lost_recs);
	evr_reader_get_stats(rd, &st);
	expect_eq(st.lost, evr_ring_get_ctrl(r)->lost_full);
	expect_eq(st.bad_headers, 0);
	evr_reader_destroy(rd);
	return next == nr ? 0 : -1;
}

/* The data area is mapped twice back to back: a byte stored through one view shows in both. */
static void check_mirror(struct evr_ring *r)
{
	struct evr_ctrl *c = evr_ring_get_ctrl(r);
	volatile uint8_t *d = (uint8_t *)c + c->data_offset;
	uint64_t size = c->data_size, off = size - 24;
	uint8_t old = d[off];

	d[off] = 0x5a;
	expect_eq(d[size + off], 0x5a);
	d[size + off] = 0xa5;
	expect_eq(d[off], 0xa5);
	d[off] = old;
}

enum how { BY_FD, BY_NAME };

static int open_session(enum how how, int fd, uint32_t flags, struct evr_session **out)
{
	if (how == BY_FD)
		return evr_session_open_fd(fd, flags, out);
	return evr_session_open(name, flags, out);
}

/* Child: open the session, become the writer of ring @idx and write @nr records. */
static void child_writer(enum how how, int fd, uint32_t idx, uint64_t seed, uint64_t nr)
{
	struct evr_session *s;
	struct evr_ring *r;

	alarm(60);
	assert_eq(open_session(how, fd, EVR_SESSION_WRITER, &s), 0);
	expect_eq(evr_session_get_nr_rings(s), 3);
	expect_eq(evr_session_get_ring(s, 3, &r), -EINVAL);
	assert_eq(evr_session_get_ring(s, idx, &r), 0);
	check_mirror(r);
	for (uint64_t seq = 0; seq < nr; seq++) {
		int err = write_seq(r, seed, seq);

		if (err) {
			expect_eq(err, 0);
			break;
		}
	}
	expect_true(evr_ring_flush(r) >= 0, "%s", "evr_ring_flush(r) >= 0");
	evr_session_close(s);
	_exit(t_failures ? 1 : 0);
}

/* Child: open the session read-only and read @nr records of ring @idx. */
static void child_reader(enum how how, int fd, uint32_t idx, uint64_t seed, uint64_t nr, int go)
{
	struct evr_session *s;
	struct evr_ring *r;
	char c = 1;

	alarm(60);
	assert_eq(open_session(how, fd, EVR_SESSION_READER, &s), 0);
	assert_eq(evr_session_get_ring(s, idx, &r), 0);
	check_mirror(r);
	/* a reader-only handle cannot write */
	expect_eq(evr_ring_write(r, APP_ID, "x", 1), -EINVAL);
	expect_eq(evr_ring_flush(r), -EINVAL);
	expect_eq(write(go, &c, 1), 1);
	read_records(r, seed, nr, 0);
	evr_session_close(s);
	_exit(t_failures ? 1 : 0);
}

/* Both directions through one session: child writes / parent reads, parent writes / child reads. */
static void exchange(struct evr_session *s, enum how how, uint64_t nr)
{
	int fd = evr_session_get_fd(s), go[2];
	struct evr_ring *r;
	uint64_t seed = t_seed ^ (uint64_t)how;
	pid_t pid;
	char c;
	int status = -1;

	assert_true(fd >= 0, "%s", "fd >= 0");
	for (uint32_t i = 0; i < 3; i++) {
		assert_eq(evr_session_get_ring(s, i, &r), 0);
		check_mirror(r);
	}
	/* writer in a child, reader here, blocking in evr_reader_wait() */
	pid = fork();
	assert_true(pid >= 0, "%s", "pid >= 0");
	if (pid == 0)
		child_writer(how, fd, 1, seed, nr);
	assert_eq(evr_session_get_ring(s, 1, &r), 0);
	read_records(r, seed, nr, pid);

	/* writer here, reader in a child */
	assert_eq(pipe(go), 0);
	pid = fork();
	assert_true(pid >= 0, "%s", "pid >= 0");
	if (pid == 0)
		child_reader(how, fd, 2, seed + 1, nr, go[1]);
	close(go[1]);
	expect_eq(read(go[0], &c, 1), 1); /* its reader exists: it starts from our head */
	close(go[0]);
	assert_eq(evr_session_get_ring(s, 2, &r), 0);
	for (uint64_t seq = 0; seq < nr; seq++)
		if (write_seq(r, seed + 1, seq)) {
			expect_true(0, "parent write %" PRIu64, seq);
			break;
		}
	expect_true(evr_ring_flush(r) >= 0, "%s", "evr_ring_flush(r) >= 0");
	expect_eq(waitpid(pid, &status, 0), pid);
	expect_true(WIFEXITED(status) && WEXITSTATUS(status) == 0, "reader status %#x", status);
}

/* Write one record through @s's ring 0 and read it back through a fresh reader. */
static int roundtrip(struct evr_session *s, uint64_t seq)
{
	struct evr_ring *r;
	struct evr_reader *rd;
	struct evr_record rec;
	int ok = 0;

	if (evr_session_get_ring(s, 0, &r) || evr_reader_create(r, NULL, &rd))
		return -1;
	if (!write_seq(r, t_seed, seq) && evr_reader_begin(rd) > 0 &&
	    evr_reader_next(rd, &rec) == 1 && !check_rec(&rec, t_seed, seq))
		ok = 1;
	evr_reader_end(rd);
	evr_reader_destroy(rd);
	return ok ? 0 : -1;
}

static void lifetime(void)
{
	EVR_OPTS(evr_session_opts, o, .name = name, .nr_rings = 3, .data_size = 16384);
	EVR_OPTS(evr_session_opts, m, .nr_rings = 1, .data_size = 16384);
	struct evr_session *s, *a, *b;
	char path[96];
	int p1[2], p2[2], status = -1;
	pid_t pid;
	char c = 0;

	snprintf(path, sizeof(path), "/dev/shm%s", name);
	/* destroy by a handle that did not create it leaves the name alone */
	assert_eq(evr_session_create(&o, &s), 0);
	assert_eq(evr_session_open(name, EVR_SESSION_READER, &a), 0);
	expect_eq(evr_session_destroy(a), 0);
	expect_eq(access(path, F_OK), 0);
	assert_eq(evr_session_open(name, EVR_SESSION_READER | EVR_SESSION_WRITER, &b), 0);
	/* the creator's destroy removes the name; mappings live on */
	expect_eq(evr_session_destroy(s), 0);
	expect_eq(evr_session_open(name, EVR_SESSION_READER, &a), -ENOENT);
	expect_true(access(path, F_OK) < 0, "%s", "access(path, F_OK) < 0");
	expect_eq(roundtrip(b, 1), 0);
	evr_session_close(b);
	expect_eq(evr_session_unlink(name), -ENOENT);

	/* close keeps the name, unlink removes it */
	assert_eq(evr_session_create(&o, &s), 0);
	evr_session_close(s);
	assert_eq(evr_session_open(name, EVR_SESSION_READER | EVR_SESSION_WRITER, &a), 0);
	expect_eq(roundtrip(a, 2), 0);
	expect_eq(evr_session_unlink(name), 0);
	expect_eq(evr_session_open(name, EVR_SESSION_READER, &b), -ENOENT);
	expect_eq(roundtrip(a, 3), 0);
	evr_session_close(a);

	/* a memfd session outlives its creator's close while another process maps it */
	assert_eq(evr_session_create(&m, &s), 0);
	expect_eq(roundtrip(s, 4), 0);
	{
		struct evr_ring *r;

		assert_eq(evr_session_get_ring(s, 0, &r), 0);
		for (uint64_t seq = 10; seq < 20; seq++)
			expect_eq(write_seq(r, t_seed, seq), 0);
	}
	assert_eq(pipe(p1), 0);
	assert_eq(pipe(p2), 0);
	pid = fork();
	assert_true(pid >= 0, "%s", "pid >= 0");
	if (pid == 0) {
		struct evr_session *cs;
		struct evr_ring *r;
		struct evr_reader *rd;
		uint64_t next = 10, lost = 0;

		alarm(60);
		assert_eq(evr_session_open_fd(evr_session_get_fd(s), EVR_SESSION_READER |
					      EVR_SESSION_WRITER, &cs), 0);
		close(evr_session_get_fd(s)); /* only our own handle keeps it now */
		expect_eq(write(p1[1], &c, 1), 1);
		expect_eq(read(p2[0], &c, 1), 1); /* the creator has closed */
		assert_eq(evr_session_get_ring(cs, 0, &r), 0);
		/* the reader starts at data_tail: record 4 was consumed, 10..19 were not */
		assert_eq(evr_reader_create(r, NULL, &rd), 0);
		drain(rd, t_seed, &next, &lost);
		expect_eq(next, 20);
		for (uint64_t seq = 20; seq < 40; seq++)
			expect_eq(write_seq(r, t_seed, seq), 0);
		drain(rd, t_seed, &next, &lost);
		expect_eq(next, 40);
		evr_reader_destroy(rd);
		evr_session_close(cs);
		_exit(t_failures ? 1 : 0);
	}
	expect_eq(read(p1[0], &c, 1), 1);
	evr_session_close(s);
	expect_eq(write(p2[1], &c, 1), 1);
	expect_eq(waitpid(pid, &status, 0), pid);
	expect_true(WIFEXITED(status) && WEXITSTATUS(status) == 0, "survivor status %#x", status);
	close(p1[0]);
	close(p1[1]);
	close(p2[0]);
	close(p2[1]);
}

static void cleanup(void)
{
	if (getpid() == main_pid)
		shm_unlink(name);
}

int main(void)
{
	EVR_OPTS(evr_session_opts, m, .nr_rings = 3, .data_size = 16384);
	EVR_OPTS(evr_session_opts, o, .name = name, .nr_rings = 3, .data_size = 16384);
	uint64_t nr = t_long() ? 200000 : 20000;
	struct evr_session *s;
	struct stat st;

	t_init("session-basic");
	main_pid = getpid();
	snprintf(name, sizeof(name), "/evr-test-%d-basic", (int)main_pid);
	atexit(cleanup);

	assert_eq(evr_session_create(&m, &s), 0);
	expect_eq(evr_session_get_nr_rings(s), 3);
	exchange(s, BY_FD, nr);
	evr_session_close(s);

	assert_eq(evr_session_create(&o, &s), 0);
	expect_eq(fstat(evr_session_get_fd(s), &st), 0);
	expect_eq(st.st_mode & 07777, 0600);
	exchange(s, BY_NAME, nr);
	expect_eq(evr_session_destroy(s), 0);

	lifetime();
	return t_done();
}
