// SPDX-License-Identifier: MIT
/*
 * Session creation and opening with bad arguments and bad objects: each fails with its own
 * -errno, changes nothing in the object it looked at, and the real session keeps working.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evring.h"
#include "test.h"

#define NR_RINGS 3u

static char name[64], name2[64];
static pid_t main_pid;
static size_t page;
static struct evr_session *live; /* the session every failed open must leave working */
static uint64_t live_seq;

static void cleanup(void)
{
	if (getpid() != main_pid)
		return;
	shm_unlink(name);
	shm_unlink(name2);
}

/* Write a record into every ring of @s and read it back. */
static int works(struct evr_session *s)
{
	for (uint32_t i = 0; i < (uint32_t)evr_session_get_nr_rings(s); i++) {
		struct evr_ring *r;
		struct evr_reader *rd;
		struct evr_record rec;
		uint64_t v = t_mix(t_seed + ++live_seq), got = 0;
		int ok;

		if (evr_session_get_ring(s, i, &r) || evr_reader_create(r, NULL, &rd))
			return -1;
		ok = !evr_ring_write(r, 1, &v, sizeof(v)) && evr_reader_begin(rd) == 16 &&
		     evr_reader_next(rd, &rec) == 1 && rec.len == 8;
		if (ok)
			memcpy(&got, rec.data, 8);
		evr_reader_end(rd);
		evr_reader_destroy(rd);
		if (!ok || got != v)
			return -1;
	}
	return 0;
}

/* Open @fd expecting @want; on success close the handle. The object must be left unchanged. */
static void expect_open(int fd, int want, const char *what)
{
	struct stat st;
	struct evr_session *s = NULL;
	uint8_t *before = NULL, *after;
	size_t len = 0;
	int got;

	if (fstat(fd, &st) == 0 && st.st_size > 0) {
		len = (size_t)st.st_size;
		before = malloc(len);
		assert_true(before, "malloc");
		assert_eq(pread(fd, before, len, 0), (long long)len);
	}
	got = evr_session_open_fd(fd, EVR_SESSION_READER | EVR_SESSION_WRITER, &s);
	if (got != want)
		t_report(__FILE__, __LINE__, what, "open_fd returned %d (%s), want %d", got,
			 evr_strerror(got), want);
	if (got == 0)
		evr_session_close(s);
	if (before && want) {
		after = malloc(len);
		assert_true(after, "malloc");
		assert_eq(pread(fd, after, len, 0), (long long)len);
		if (memcmp(before, after, len))
			t_report(__FILE__, __LINE__, what, "the failed open wrote to the object");
		free(after);
	}
	free(before);
	if (works(live))
		t_report(__FILE__, __LINE__, what, "the live session stopped working");
}

/* A copy of the live object in a new memfd, to corrupt at will. */
static int copy_live(void)
{
	int src = evr_session_get_fd(live), fd = memfd_create("evr-copy", MFD_CLOEXEC);
	struct stat st;
	uint8_t *buf;

	assert_true(fd >= 0 && fstat(src, &st) == 0, "memfd");
	buf = malloc((size_t)st.st_size);
	assert_true(buf, "malloc");
	assert_eq(pread(src, buf, (size_t)st.st_size, 0), st.st_size);
	assert_eq(pwrite(fd, buf, (size_t)st.st_size, 0), st.st_size);
	free(buf);
	return fd;
}

/* Patch @len bytes at @off of the live object, try to open it, restore the bytes. */
static void patch_live(uint64_t off, const void *val, size_t len, int want, const char *what)
{
	int fd = evr_session_get_fd(live);
	uint8_t old[64];

	assert_true(len <= sizeof(old), "patch size");
	assert_eq(pread(fd, old, len, (off_t)off), (long long)len);
	assert_eq(pwrite(fd, val, len, (off_t)off), (long long)len);
	expect_open(fd, want, what);
	assert_eq(pwrite(fd, old, len, (off_t)off), (long long)len);
	if (works(live))
		t_report(__FILE__, __LINE__, what, "restored session does not work");
}

#define HDR(f) offsetof(struct evr_session_hdr, f)
#define ENT(i, f)                                                                                \
	(offsetof(struct evr_session_hdr, entries) + (i) * sizeof(struct evr_session_entry) +     \
	 offsetof(struct evr_session_entry, f))
#define PATCH32(off, v, want, what)                                                              \
	do {                                                                                     \
		uint32_t v_ = (uint32_t)(v);                                                     \
		patch_live(off, &v_, 4, want, what);                                             \
	} while (0)
#define PATCH64(off, v, want, what)                                                              \
	do {                                                                                     \
		uint64_t v_ = (uint64_t)(v);                                                     \
		patch_live(off, &v_, 8, want, what);                                             \
	} while (0)

static void bad_arguments(void)
{
	char longname[300];
	struct evr_session *s = NULL;
	static const uint64_t bad_sizes[] = { 0, 1, 64, 2048, 4095,
					       12288, 4097, 1ull << 31, ~0ull };

	memset(longname, 'a', sizeof(longname) - 1);
	longname[0] = '/';
	longname[sizeof(longname) - 1] = 0;

	{
		static const char *const bad_names[] = { "noslash", "/a/b", "/", "", "/x/" };

		for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
			EVR_OPTS(evr_session_opts, o, .name = bad_names[i], .nr_rings = 1,
				 .data_size = 4096);

			expect_eq(evr_session_create(&o, &s), -EINVAL);
			expect_eq(evr_session_open(bad_names[i], EVR_SESSION_READER, &s), -EINVAL);
			expect_eq(evr_session_unlink(bad_names[i]), -EINVAL);
		}
	}
	{
		EVR_OPTS(evr_session_opts, o, .name = longname, .nr_rings = 1, .data_size = 4096);

		expect_eq(evr_session_create(&o, &s), -EINVAL);
		expect_eq(evr_session_open(longname, EVR_SESSION_READER, &s), -EINVAL);
		expect_eq(evr_session_unlink(longname), -EINVAL);
	}
	expect_eq(evr_session_open(NULL, EVR_SESSION_READER, &s), -EINVAL);
	expect_eq(evr_session_unlink(NULL), -EINVAL);
	expect_eq(evr_session_open(name2, EVR_SESSION_READER, &s), -ENOENT);
	expect_eq(evr_session_unlink(name2), -ENOENT);

	for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++) {
		EVR_OPTS(evr_session_opts, o, .nr_rings = 1, .data_size = bad_sizes[i]);

		expect_eq(evr_session_create(&o, &s), -EINVAL);
	}
	{
		EVR_OPTS(evr_session_opts, o, .nr_rings = 0, .data_size = 4096);

		expect_eq(evr_session_create(&o, &s), -EINVAL);
		o.nr_rings = EVR_SESSION_MAX_RINGS + 1;
		expect_eq(evr_session_create(&o, &s), -EINVAL);
		o.nr_rings = 1;
		o.ring_flags = EVR_RING_MIRROR;
		expect_eq(evr_session_create(&o, &s), -EINVAL);
		o.ring_flags = 0x80;
		expect_eq(evr_session_create(&o, &s), -EINVAL);
		o.ring_flags = 0;
		expect_eq(evr_session_create(NULL, &s), -EINVAL);
		expect_eq(evr_session_create(&o, NULL), -EINVAL);
		o.sz = 8;
		expect_eq(evr_session_create(&o, &s), -EINVAL);
	}
	{
		/* a larger options struct from a newer caller: trailing bytes must be zero */
		struct {
			struct evr_session_opts o;
			uint64_t more;
		} big = { .o = { .sz = sizeof(big), .nr_rings = 1, .data_size = 4096 }, .more = 1 };

		expect_eq(evr_session_create(&big.o, &s), -EINVAL);
		big.more = 0;
		expect_eq(evr_session_create(&big.o, &s), 0);
		evr_session_close(s);
	}
	{
		int fd = evr_session_get_fd(live), p[2];

		expect_eq(evr_session_open_fd(fd, 0, &s), -EINVAL);
		expect_eq(evr_session_open_fd(fd, 0x4, &s), -EINVAL);
		expect_eq(evr_session_open_fd(fd, EVR_SESSION_READER | 0x100, &s), -EINVAL);
		expect_eq(evr_session_open_fd(fd, EVR_SESSION_READER, NULL), -EINVAL);
		expect_eq(evr_session_open_fd(-1, EVR_SESSION_READER, &s), -EINVAL);
		expect_eq(evr_session_open_fd(1000, EVR_SESSION_READER, &s), -EBADF);
		expect_eq(evr_session_open(name, 0, &s), -EINVAL);
		expect_eq(evr_session_open(name, EVR_SESSION_READER, NULL), -EINVAL);
		assert_eq(pipe(p), 0);
		expect_eq(evr_session_open_fd(p[0], EVR_SESSION_READER, &s), -EBADMSG);
		close(p[0]);
		close(p[1]);
	}
	{
		struct evr_ring *r;

		expect_eq(evr_session_get_ring(live, NR_RINGS, &r), -EINVAL);
		expect_eq(evr_session_get_ring(live, ~0u, &r), -EINVAL);
		expect_eq(evr_session_get_ring(NULL, 0, &r), -EINVAL);
		expect_eq(evr_session_get_ring(live, 0, NULL), -EINVAL);
		expect_eq(evr_session_get_fd(NULL), -EINVAL);
		expect_eq(evr_session_get_nr_rings(NULL), -EINVAL);
		expect_eq(evr_session_destroy(NULL), -EINVAL);
		evr_session_close(NULL);
	}
	/* the name is taken: the existing session is untouched */
	{
		EVR_OPTS(evr_session_opts, o, .name = name, .nr_rings = 1, .data_size = 4096);

		expect_eq(evr_session_create(&o, &s), -EEXIST);
		expect_eq(works(live), 0);
	}
}

/* The object is 0600, and a process of another user cannot open it. */
static void permissions(void)
{
	struct stat st;
	struct evr_session *s;
	char path[96];
	int status = -1;
	pid_t pid;

	expect_eq(fstat(evr_session_get_fd(live), &st), 0);
	expect_eq(st.st_mode & 07777, 0600);
	snprintf(path, sizeof(path), "/dev/shm%s", name);
	if (stat(path, &st) == 0)
		expect_eq(st.st_mode & 07777, 0600);
	{
		EVR_OPTS(evr_session_opts, m, .nr_rings = 1, .data_size = 4096);

		assert_eq(evr_session_create(&m, &s), 0);
		expect_eq(fstat(evr_session_get_fd(s), &st), 0);
		expect_eq(st.st_mode & 07777, 0600);
		evr_session_close(s);
	}
	pid = fork();
	assert_true(pid >= 0, "fork");
	if (pid == 0) {
		gid_t g = 65534;

		if (setgroups(1, &g) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(77);
		if (geteuid() == 0)
			_exit(77);
		_exit(evr_session_open(name, EVR_SESSION_READER, &s) == -EACCES ? 0 : 1);
	}
	expect_eq(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
		printf("%s: cannot drop privileges here; the -EACCES case was not run\n", t_name);
	else
		expect_true(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			    "unprivileged open did not fail with -EACCES (status %#x)", status);
}

static void bad_objects(void)
{
	const uint64_t dsz = 2 * page, span = page + dsz;
	uint64_t size, r0, r1, r2;
	struct stat st;
	int fd;

	assert_eq(fstat(evr_session_get_fd(live), &st), 0);
	size = (uint64_t)st.st_size;
	r0 = page; /* the directory fits one page */
	r1 = r0 + span;
	r2 = r1 + span;
	assert_eq(size, r2 + span);
	expect_open(evr_session_get_fd(live), 0, "the untouched object opens");

	/* versions */
	PATCH32(HDR(compat), EVR_SESSION_VERSION + 1, -EPROTO, "compat from the future");
	PATCH32(HDR(version), 0, -EPROTO, "version 0");
	PATCH32(HDR(version), EVR_SESSION_VERSION + 1, 0, "a newer version that is compatible");
	/* magic */
	PATCH64(HDR(magic), 0x1122334455667788ull, -EBADMSG, "bad magic");
	PATCH64(HDR(magic), EVR_SESSION_MAGIC + 1, -EBADMSG, "bad magic");
	PATCH64(HDR(magic), 0, -EAGAIN, "magic 0: the creator has not finished");
	/* header fields that must agree with the object */
	PATCH64(HDR(size), size - page, -EBADMSG, "header size smaller than the object");
	PATCH64(HDR(size), size + page, -EBADMSG, "header size larger than the object");
	PATCH32(HDR(page_size), page * 4, -EBADMSG, "another page size");
	PATCH32(HDR(nr_rings), 0, -EBADMSG, "no rings");
	PATCH32(HDR(nr_rings), EVR_SESSION_MAX_RINGS + 1, -EBADMSG, "too many rings");
	PATCH32(HDR(nr_rings), 200, -EBADMSG, "more rings than the directory holds");
	PATCH32(HDR(nr_rings), NR_RINGS + 1, -EBADMSG, "an entry past the last ring");
	PATCH32(HDR(dir_size), 0, -EBADMSG, "dir_size 0");
	PATCH32(HDR(dir_size), page + 8, -EBADMSG, "dir_size not a page multiple");
	PATCH32(HDR(dir_size), 2 * page, -EBADMSG, "dir_size larger than written");
	PATCH32(HDR(dir_size), size + page, -EBADMSG, "dir_size past the object");

	/* entries */
	PATCH32(ENT(1, kind), 0, -EBADMSG, "unknown ring kind");
	PATCH32(ENT(1, kind), 77, -EBADMSG, "unknown ring kind");
	PATCH32(ENT(1, flags), 0, -EBADMSG, "ring not mirrored");
	PATCH32(ENT(1, flags), EVR_CTRL_MIRROR | 0x40, -EBADMSG, "unknown ring flag");
	PATCH64(ENT(0, offset), 0, -EBADMSG, "ring over the directory");
	PATCH64(ENT(1, offset), r0, -EBADMSG, "rings 0 and 1 at the same place");
	PATCH64(ENT(1, offset), r0 + page, -EBADMSG, "ring 1 inside ring 0");
	PATCH64(ENT(1, offset), r1 - page, -EBADMSG, "ring 1 overlapping ring 0's end");
	PATCH64(ENT(2, offset), r1 + page, -EBADMSG, "ring 2 inside ring 1");
	PATCH64(ENT(1, offset), r1 + 8, -EBADMSG, "misaligned ring");
	PATCH64(ENT(1, offset), r1 + page / 2, -EBADMSG, "misaligned ring");
	PATCH64(ENT(2, offset), r2 + page, -EBADMSG, "ring 2 past the end");
	PATCH64(ENT(2, offset), size, -EBADMSG, "ring 2 at the end");
	PATCH64(ENT(2, offset), size + page, -EBADMSG, "ring 2 outside the object");
	PATCH64(ENT(2, offset), 1ull << 62, -EBADMSG, "ring 2 far outside");
	PATCH64(ENT(2, offset), -page, -EBADMSG, "ring 2 offset wrapping around");
	PATCH64(ENT(2, data_size), 2 * dsz, -EBADMSG, "ring 2 data past the end");
	PATCH64(ENT(1, data_size), 2 * dsz, -EBADMSG, "ring 1 data over ring 2");
	PATCH64(ENT(1, data_size), 3 * page, -EBADMSG, "data size not a power of two");
	PATCH64(ENT(1, data_size), dsz + 8, -EBADMSG, "data size not a power of two");
	PATCH64(ENT(1, data_size), 0, -EBADMSG, "data size 0");
	PATCH64(ENT(1, data_size), page / 2, -EBADMSG, "data size below a page");
	PATCH64(ENT(1, data_size), page, -EBADMSG, "data size smaller than the ring's page says");
	PATCH64(ENT(1, data_size), 1ull << 63, -EBADMSG, "huge data size");
	PATCH64(ENT(1, data_size), -dsz, -EBADMSG, "data size wrapping around");

	/* a ring's own control page must agree with the directory */
	PATCH64(r1 + offsetof(struct evr_ctrl, magic), 0, -EBADMSG, "ring control page magic 0");
	PATCH64(r1 + offsetof(struct evr_ctrl, magic), EVR_CTRL_MAGIC ^ 1, -EBADMSG,
		"ring control page magic");
	PATCH64(r2 + offsetof(struct evr_ctrl, data_size), dsz / 2, -EBADMSG,
		"ring data_size disagrees with the directory");
	PATCH64(r2 + offsetof(struct evr_ctrl, data_size), dsz * 2, -EBADMSG,
		"ring data_size disagrees with the directory");
	PATCH64(r0 + offsetof(struct evr_ctrl, data_offset), 0, -EBADMSG,
		"ring data_offset disagrees");

	/* truncated, grown, empty, zeroed: copies, since the live mapping must not shrink */
	fd = copy_live();
	expect_open(fd, 0, "a faithful copy opens");
	assert_eq(ftruncate(fd, (off_t)(size - page)), 0);
	expect_open(fd, -EBADMSG, "truncated by a page");
	assert_eq(ftruncate(fd, (off_t)(r1 + 100)), 0);
	expect_open(fd, -EBADMSG, "truncated inside ring 1");
	assert_eq(ftruncate(fd, (off_t)(page / 2)), 0);
	expect_open(fd, -EBADMSG, "truncated inside the directory");
	assert_eq(ftruncate(fd, 100), 0);
	expect_open(fd, -EBADMSG, "truncated inside the header");
	close(fd);
	fd = copy_live();
	assert_eq(ftruncate(fd, (off_t)(size + page)), 0);
	expect_open(fd, -EBADMSG, "grown by a page");
	close(fd);
	/* a creator that has made the object but written nothing yet: not a session yet */
	fd = memfd_create("evr-zero", MFD_CLOEXEC);
	assert_true(fd >= 0, "memfd");
	assert_eq(ftruncate(fd, (off_t)size), 0);
	expect_open(fd, -EAGAIN, "an object of the right size, all zeros");
	close(fd);
	fd = memfd_create("evr-junk", MFD_CLOEXEC);
	assert_true(fd >= 0, "memfd");
	{
		uint8_t junk[4096];
		uint64_t st_ = t_seed;

		for (size_t i = 0; i < sizeof(junk); i += 8) {
			uint64_t v = t_rand(&st_);

			memcpy(junk + i, &v, 8);
		}
		for (uint64_t off = 0; off < size; off += sizeof(junk))
			assert_eq(pwrite(fd, junk, sizeof(junk), (off_t)off), sizeof(junk));
	}
	expect_open(fd, -EBADMSG, "random bytes");
	close(fd);
}

/*
 * An opener racing the creator of a named session sees it absent (-ENOENT), unfinished
 * (-EAGAIN) or complete; never "not a session" (-EBADMSG).
 */
static void racing_open(void)
{
	EVR_OPTS(evr_session_opts, o, .name = name2, .nr_rings = 4, .data_size = 4 * 4096);
	int rounds = t_long() ? 2000 : 200, *seen, status = -1;
	struct evr_session *s;
	pid_t pid;

	seen = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(seen != MAP_FAILED, "mmap");
	pid = fork();
	assert_true(pid >= 0, "fork");
	if (pid == 0) {
		alarm(60);
		while (!__atomic_load_n(&seen[0], __ATOMIC_RELAXED)) {
			int err = evr_session_open(name2, EVR_SESSION_READER, &s);

			if (err == 0) {
				seen[1]++;
				evr_session_close(s);
			} else if (err == -EAGAIN) {
				seen[2]++;
			} else if (err != -ENOENT) {
				seen[3]++;
				seen[4] = err;
			}
		}
		_exit(0);
	}
	for (int i = 0; i < rounds; i++) {
		assert_eq(evr_session_create(&o, &s), 0);
		expect_eq(evr_session_destroy(s), 0);
	}
	__atomic_store_n(&seen[0], 1, __ATOMIC_RELAXED);
	expect_eq(waitpid(pid, &status, 0), pid);
	printf("%s: racing opener: %d opened, %d -EAGAIN, %d other\n", t_name, seen[1], seen[2],
	       seen[3]);
	if (seen[3])
		t_report(__FILE__, __LINE__, "racing open", "%d opens failed with %d (%s)", seen[3],
			 seen[4], evr_strerror(seen[4]));
	munmap(seen, 4096);
}

int main(void)
{
	EVR_OPTS(evr_session_opts, o, .name = name, .nr_rings = NR_RINGS, .data_size = 2 * 4096);

	t_init("session-bad-input");
	page = (size_t)sysconf(_SC_PAGESIZE);
	if (page != 4096)
		t_skip("the object layout below assumes 4 KiB pages");
	main_pid = getpid();
	snprintf(name, sizeof(name), "/evr-test-%d-bad", (int)main_pid);
	snprintf(name2, sizeof(name2), "/evr-test-%d-bad2", (int)main_pid);
	atexit(cleanup);
	assert_eq(evr_session_create(&o, &live), 0);
	assert_eq(works(live), 0);

	bad_arguments();
	permissions();
	bad_objects();
	racing_open();

	expect_eq(works(live), 0);
	expect_eq(evr_session_destroy(live), 0);
	return t_done();
}
