// SPDX-License-Identifier: MIT
/*
 * The channel API's argument checking: every bad argument fails with -EINVAL (or its own
 * -errno) and creates nothing; a session that is not a channel opens as -EPROTO; the reader's
 * options are validated like every options struct; an empty write (NULL, 0) is a record.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "evring.h"
#include "test.h"

static char name[64], name2[64];
static pid_t main_pid;

static void cleanup(void)
{
	if (getpid() != main_pid)
		return;
	shm_unlink(name);
	shm_unlink(name2);
}

/* An options struct with trailing bytes past the known fields, as a newer caller passes it. */
struct chan_opts_big {
	struct evr_chan_opts o;
	uint8_t extra[24];
};

struct reader_opts_big {
	struct evr_chan_reader_opts o;
	uint8_t extra[24];
};

static int create(uint32_t policy, uint32_t nr_slots, uint64_t data_size, struct evr_chan **ch)
{
	EVR_OPTS(evr_chan_opts, o, .policy = policy, .nr_slots = nr_slots,
		 .data_size = data_size);

	return evr_chan_create(&o, ch);
}

static void bad_create(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct evr_chan *ch = (struct evr_chan *)0x1;
	struct chan_opts_big big;
	int err;

	expect_eq(evr_chan_create(NULL, &ch), -EINVAL);
	{
		EVR_OPTS(evr_chan_opts, o, .policy = EVR_CHAN_SHARED, .data_size = page);

		expect_eq(evr_chan_create(&o, NULL), -EINVAL);
		o.sz = sizeof(size_t);
		expect_eq(evr_chan_create(&o, &ch), -EINVAL); /* too small to hold data_size */
		o.sz = offsetof(struct evr_chan_opts, data_size);
		expect_eq(evr_chan_create(&o, &ch), -EINVAL);
		o.sz = 8192;
		expect_eq(evr_chan_create(&o, &ch), -EINVAL); /* absurd size */
		o.sz = 0;
		expect_eq(evr_chan_create(&o, &ch), -EINVAL);
	}
	/* bad policies */
	expect_eq(create(0, 0, page, &ch), -EINVAL);
	expect_eq(create(4, 0, page, &ch), -EINVAL);
	expect_eq(create(~0u, 0, page, &ch), -EINVAL);
	expect_eq(create(EVR_CHAN_SHARED | EVR_CHAN_PERCPU | 0x100, 0, page, &ch), -EINVAL);
	/* bad sizes, for every policy */
	for (uint32_t p = EVR_CHAN_SHARED; p <= EVR_CHAN_THREAD; p++) {
		expect_eq(create(p, 2, 0, &ch), -EINVAL);
		expect_eq(create(p, 2, page + 8, &ch), -EINVAL); /* not a power of two */
		expect_eq(create(p, 2, page / 2, &ch), -EINVAL); /* below a page */
		expect_eq(create(p, 2, 64, &ch), -EINVAL);
		expect_eq(create(p, 2, 1ull << 31, &ch), -EINVAL); /* above 1 GiB */
		expect_eq(create(p, 2, ~0ull, &ch), -EINVAL);
	}
	/* per-thread: more slots than a session has rings (one more is the fallback) */
	expect_eq(create(EVR_CHAN_THREAD, EVR_SESSION_MAX_RINGS, page, &ch), -EINVAL);
	expect_eq(create(EVR_CHAN_THREAD, ~0u, page, &ch), -EINVAL);
	/* trailing option bytes: zero is fine, anything else is refused */
	memset(&big, 0, sizeof(big));
	big.o.sz = sizeof(big);
	big.o.policy = EVR_CHAN_SHARED;
	big.o.data_size = page;
	for (size_t i = 0; i < sizeof(big.extra); i += 7) {
		big.extra[i] = 1;
		expect_eq(evr_chan_create(&big.o, &ch), -EINVAL);
		big.extra[i] = 0;
	}
	big.extra[sizeof(big.extra) - 1] = 0x80;
	expect_eq(evr_chan_create(&big.o, &ch), -EINVAL);
	big.extra[sizeof(big.extra) - 1] = 0;
	err = evr_chan_create(&big.o, &ch);
	expect_eq(err, 0);
	if (!err)
		evr_chan_destroy(ch);
	/* bad names */
	{
		EVR_OPTS(evr_chan_opts, o, .policy = EVR_CHAN_SHARED, .data_size = page,
			 .name = "no-slash");

		expect_eq(evr_chan_create(&o, &ch), -EINVAL);
		o.name = "/a/b";
		expect_eq(evr_chan_create(&o, &ch), -EINVAL);
		o.name = "/";
		expect_eq(evr_chan_create(&o, &ch), -EINVAL);
	}
	/* nothing above may have left a channel behind: a named create still succeeds */
	{
		EVR_OPTS(evr_chan_opts, o, .policy = EVR_CHAN_PERCPU, .data_size = page,
			 .name = name);

		err = evr_chan_create(&o, &ch);
		expect_eq(err, 0);
		if (!err) {
			struct evr_chan *ch2;

			expect_eq(evr_chan_create(&o, &ch2), -EEXIST);
			expect_eq(evr_chan_destroy(ch), 0);
		}
	}
}

static void bad_open(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct evr_chan *ch = NULL;
	struct evr_session *s;
	int err;

	expect_eq(evr_chan_open(NULL, EVR_SESSION_READER, &ch), -EINVAL);
	expect_eq(evr_chan_open("nope", EVR_SESSION_READER, &ch), -EINVAL);
	expect_eq(evr_chan_open(name, EVR_SESSION_READER, NULL), -EINVAL);
	expect_eq(evr_chan_open(name, EVR_SESSION_READER, &ch), -ENOENT); /* destroyed above */
	expect_eq(evr_chan_open_fd(-1, EVR_SESSION_READER, &ch), -EINVAL);

	/* a plain session is not a channel: by fd and by name */
	{
		EVR_OPTS(evr_session_opts, so, .name = name2, .nr_rings = 2, .data_size = page);

		err = evr_session_create(&so, &s);
		assert_eq(err, 0);
		expect_eq(evr_chan_open_fd(evr_session_get_fd(s), EVR_SESSION_READER, &ch),
			  -EPROTO);
		expect_eq(evr_chan_open_fd(evr_session_get_fd(s),
					   EVR_SESSION_READER | EVR_SESSION_WRITER, &ch),
			  -EPROTO);
		expect_eq(evr_chan_open(name2, EVR_SESSION_WRITER, &ch), -EPROTO);
		expect_eq(evr_session_destroy(s), 0);
	}
	{
		EVR_OPTS(evr_session_opts, so, .nr_rings = 1, .data_size = page,
			 .ring_flags = EVR_RING_MULTI);

		err = evr_session_create(&so, &s);
		assert_eq(err, 0);
		expect_eq(evr_chan_open_fd(evr_session_get_fd(s), EVR_SESSION_READER, &ch),
			  -EPROTO);
		evr_session_close(s);
	}
	/* a real channel's fd, with bad flags, then good ones */
	{
		struct evr_chan *c1, *c2;

		err = create(EVR_CHAN_THREAD, 3, page, &c1);
		assert_eq(err, 0);
		int fd = evr_session_get_fd(evr_chan_get_session(c1));

		expect_eq(evr_chan_open_fd(fd, 0, &c2), -EINVAL);
		expect_eq(evr_chan_open_fd(fd, 0x80, &c2), -EINVAL);
		expect_eq(evr_chan_open_fd(fd, EVR_SESSION_READER, NULL), -EINVAL);
		err = evr_chan_open_fd(fd, EVR_SESSION_READER, &c2);
		expect_eq(err, 0);
		if (!err) {
			expect_eq(evr_session_get_nr_rings(evr_chan_get_session(c2)), 4);
			evr_chan_close(c2);
		}
		evr_chan_destroy(c1);
	}
}

static void bad_reader(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct evr_chan_reader *crd = NULL;
	struct evr_chan_stats st;
	struct evr_record rec;
	struct reader_opts_big big;
	struct evr_chan *ch;
	int err;

	assert_eq(create(EVR_CHAN_SHARED, 0, page, &ch), 0);
	expect_eq(evr_chan_reader_create(NULL, NULL, &crd), -EINVAL);
	expect_eq(evr_chan_reader_create(ch, NULL, NULL), -EINVAL);
	{
		EVR_OPTS(evr_chan_reader_opts, o);

		o.flags = 0x2;
		expect_eq(evr_chan_reader_create(ch, &o, &crd), -EINVAL);
		o.flags = ~0u;
		expect_eq(evr_chan_reader_create(ch, &o, &crd), -EINVAL);
		o.flags = EVR_CHAN_READ_UNORDERED | 0x80000000u;
		expect_eq(evr_chan_reader_create(ch, &o, &crd), -EINVAL);
		o.flags = 0;
		o.pad = 1;
		expect_eq(evr_chan_reader_create(ch, &o, &crd), -EINVAL);
		o.pad = 0;
		o.sz = 0;
		expect_eq(evr_chan_reader_create(ch, &o, &crd), -EINVAL);
		o.sz = sizeof(size_t);
		expect_eq(evr_chan_reader_create(ch, &o, &crd), -EINVAL);
		o.sz = sizeof(o) + 4096;
		expect_eq(evr_chan_reader_create(ch, &o, &crd), -EINVAL);
		o.sz = sizeof(o);
		o.window_ns = 5000000;
		o.buffer_bytes = 1 << 16;
		o.flags = EVR_CHAN_READ_UNORDERED;
		err = evr_chan_reader_create(ch, &o, &crd);
		expect_eq(err, 0);
		if (!err)
			evr_chan_reader_destroy(crd);
	}
	memset(&big, 0, sizeof(big));
	big.o.sz = sizeof(big);
	for (size_t i = 0; i < sizeof(big.extra); i += 5) {
		big.extra[i] = 0xff;
		expect_eq(evr_chan_reader_create(ch, &big.o, &crd), -EINVAL);
		big.extra[i] = 0;
	}
	err = evr_chan_reader_create(ch, &big.o, &crd);
	expect_eq(err, 0);
	if (!err)
		evr_chan_reader_destroy(crd);

	err = evr_chan_reader_create(ch, NULL, &crd);
	assert_eq(err, 0);
	expect_eq(evr_chan_reader_next(NULL, &rec, true), -EINVAL);
	expect_eq(evr_chan_reader_next(crd, NULL, true), -EINVAL);
	expect_eq(evr_chan_reader_get_stats(NULL, &st), -EINVAL);
	expect_eq(evr_chan_reader_get_stats(crd, NULL), -EINVAL);
	st.sz = 0;
	expect_eq(evr_chan_reader_get_stats(crd, &st), -EINVAL);
	/* an older, shorter stats struct gets its prefix */
	{
		struct {
			size_t sz;
			uint64_t records;
			uint64_t canary;
		} small = { .sz = offsetof(struct evr_chan_stats, lost), .canary = 0x5a5a };

		expect_eq(evr_chan_reader_get_stats(crd, (struct evr_chan_stats *)&small), 0);
		expect_eq(small.sz, offsetof(struct evr_chan_stats, lost));
		expect_eq(small.records, 0);
		expect_eq(small.canary, 0x5a5a);
	}
	evr_chan_reader_destroy(crd);
	evr_chan_reader_destroy(NULL);
	evr_chan_destroy(ch);
}

/* Every write argument check, and a NULL/0 write that is a real (empty, stamped) record. */
static void writes(uint32_t policy)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct evr_chan_reader *crd;
	struct evr_chan_stats st = { .sz = sizeof(st) };
	struct evr_record rec;
	uint64_t v = 0x0123456789abcdefull, t0, t1;
	static uint8_t huge[EVR_PAYLOAD_MAX + 16];
	struct evr_chan *ch;
	int got, n = 0, err;

	assert_eq(create(policy, 2, page, &ch), 0);
	assert_eq(evr_chan_reader_create(ch, NULL, &crd), 0);
	expect_eq(evr_chan_write(NULL, 1, &v, sizeof(v)), -EINVAL);
	expect_eq(evr_chan_write(ch, EVR_APP_ID_MAX + 1, &v, sizeof(v)), -EINVAL);
	expect_eq(evr_chan_write(ch, ~0u, &v, sizeof(v)), -EINVAL);
	expect_eq(evr_chan_write(ch, 1, NULL, 8), -EINVAL);
	expect_eq(evr_chan_write(ch, 1, huge, sizeof(huge)), -EMSGSIZE); /* larger than a record */
	expect_eq(evr_chan_write(ch, 1, huge, page), -EMSGSIZE); /* larger than the ring */
	expect_eq(evr_chan_flush(NULL), -EINVAL);
	t0 = evr_clock_now();
	expect_eq(evr_chan_write(ch, 7, NULL, 0), 0);
	expect_eq(evr_chan_write(ch, EVR_APP_ID_MAX, &v, sizeof(v)), 0);
	expect_eq(evr_chan_write(ch, 0, &v, 0), 0); /* data ignored for len 0 */
	t1 = evr_clock_now();
	expect_true(evr_chan_flush(ch) >= 0, "policy %u: flush failed", policy);
	while ((got = evr_chan_reader_next(crd, &rec, true)) == 1) {
		expect_true(rec.is_app, "policy %u record %d: type %u", policy, n, rec.type);
		expect_true(rec.has_time, "policy %u record %d has no time", policy, n);
		expect_true(rec.time >= t0 && rec.time <= t1,
			    "policy %u record %d: time %" PRIu64 " outside [%" PRIu64 ", %" PRIu64
			    "]",
			    policy, n, rec.time, t0, t1);
		switch (n) {
		case 0:
			expect_eq(rec.type, 7);
			expect_eq(rec.len, 0);
			break;
		case 1:
			expect_eq(rec.type, EVR_APP_ID_MAX);
			expect_eq(rec.len, sizeof(v));
			expect_true(rec.len == sizeof(v) && !memcmp(rec.data, &v, sizeof(v)),
				    "policy %u: payload differs", policy);
			break;
		case 2:
			expect_eq(rec.type, 0);
			expect_eq(rec.len, 0);
			break;
		}
		n++;
	}
	expect_eq(got, 0);
	expect_eq(n, 3);
	err = evr_chan_reader_get_stats(crd, &st);
	expect_eq(err, 0);
	expect_eq(st.records, 3);
	expect_eq(st.lost, 0);
	expect_eq(st.bad, 0);
	if (policy == EVR_CHAN_THREAD) {
		expect_eq(st.slots_owned, 1); /* this thread's */
		expect_eq(st.fallback_writes, 0);
	}
	evr_chan_reader_destroy(crd);
	expect_eq(evr_chan_destroy(ch), 0);
}

int main(void)
{
	t_init("chan-api");
	main_pid = getpid();
	snprintf(name, sizeof(name), "/evr-chan-api-%d", (int)main_pid);
	snprintf(name2, sizeof(name2), "/evr-chan-api2-%d", (int)main_pid);
	atexit(cleanup);

	bad_create();
	bad_open();
	bad_reader();
	for (uint32_t p = EVR_CHAN_SHARED; p <= EVR_CHAN_THREAD; p++)
		writes(p);
	expect_eq(evr_chan_destroy(NULL), -EINVAL);
	evr_chan_close(NULL);
	expect_true(evr_chan_get_session(NULL) == NULL, "a session for NULL");
	return t_done();
}
