// SPDX-License-Identifier: MIT
/*
 * `evring dump` ($O/evring): a named session with a flight ring, written here and closed, is
 * dumped by name and from a file copy: one line per record, oldest first, with its id, length
 * and leading payload bytes, then the LOST and summary lines; --ring and -o; a missing session,
 * a file that is not a session and a bad option fail with a message on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evring.h"
#include "test.h"

extern char **environ;

struct run {
	int status; /* exit code, or -1 if it did not exit normally */
	char out[1 << 16], err[8192];
};

/* Drain two pipes into the buffers (NUL-terminated, truncated to fit) without deadlocking. */
static void slurp2(int fo, char *out, size_t co, int fe, char *err, size_t ce)
{
	size_t no = 0, ne = 0;
	ssize_t k;

	while ((k = read(fo, out + no, co - 1 - no)) > 0 || (k < 0 && errno == EINTR))
		if (k > 0)
			no += (size_t)k;
	while ((k = read(fe, err + ne, ce - 1 - ne)) > 0 || (k < 0 && errno == EINTR))
		if (k > 0)
			ne += (size_t)k;
	out[no] = 0;
	err[ne] = 0;
	close(fo);
	close(fe);
}

static void run(char *const argv[], struct run *res)
{
	posix_spawn_file_actions_t fa;
	int out[2], err[2], st;
	pid_t pid;

	assert_true(pipe(out) == 0 && pipe(err) == 0, "pipe");
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	posix_spawn_file_actions_addclose(&fa, out[0]);
	posix_spawn_file_actions_addclose(&fa, err[0]);
	assert_true(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) == 0, "spawn %s", argv[0]);
	posix_spawn_file_actions_destroy(&fa);
	close(out[1]);
	close(err[1]);
	/* the stderr output is short; the stdout of 60 records is far below a pipe's 64 KiB */
	slurp2(out[0], res->out, sizeof(res->out), err[0], res->err, sizeof(res->err));
	assert_true(waitpid(pid, &st, 0) == pid, "waitpid");
	res->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int count_lines(const char *s, const char *prefix)
{
	int n = 0;

	for (const char *p = s; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p))
		n += !strncmp(p, prefix, strlen(prefix));
	return n;
}

/* Record i: id i % 3 + 1, length 4 + i % 50, bytes i + k. */
static void check_dump(const char *out, int first, int last, const char *what)
{
	const char *p = out;
	char want[512];

	for (int i = first; i <= last; i++) {
		uint32_t len = 4 + (uint32_t)i % 50, n = len < 32 ? len : 32;
		int at;
		const char *nl;

		at = snprintf(want, sizeof(want), " id %d len %u:", i % 3 + 1, len);
		for (uint32_t k = 0; k < n; k++)
			at += snprintf(want + at, sizeof(want) - (size_t)at, " %02x",
				       (uint8_t)(i + k));
		snprintf(want + at, sizeof(want) - (size_t)at, "%s\n", len > 32 ? " ..." : "");
		expect_true(!strncmp(p, "ring 0 pos ", 11), "%s: line for record %d: \"%.80s\"",
			    what, i, p);
		nl = strchr(p, '\n');
		if (!nl) {
			expect_true(0, "%s: output ends before record %d", what, i);
			return;
		}
		expect_true(strstr(p, want) && strstr(p, want) + strlen(want) == nl + 1,
			    "%s: record %d: \"%.*s\", want it to end \"%s\"", what, i,
			    (int)(nl - p), p, want);
		p = nl + 1;
	}
}

int main(void)
{
	const char *o = getenv("O");
	char tool[4096], name[64], copy[128], outf[128], junk[128], summary[256];
	EVR_OPTS(evr_session_opts, so, .nr_rings = 1,
		 .ring_flags = EVR_RING_FLIGHT | EVR_RING_OVERWRITE, .data_size = 2048,
		 .flight_page_size = 256);
	struct evr_flight_stats st = { .sz = sizeof(st) };
	struct evr_session *s;
	struct evr_flight *f;
	static struct run r, r2;
	int first, total = 300, fd;
	uint8_t b[64];

	t_init("cli-dump");
	snprintf(tool, sizeof(tool), "%s/evring", o && *o ? o : "build");
	if (access(tool, X_OK)) {
		if (o && *o) {
			expect_true(0, "%s: not built", tool);
			return t_done();
		}
		t_skip("build/evring not built and O not set");
	}
	snprintf(name, sizeof(name), "/evring-test-%d", (int)getpid());
	snprintf(copy, sizeof(copy), "/tmp/evring-test-%d.copy", (int)getpid());
	snprintf(outf, sizeof(outf), "/tmp/evring-test-%d.out", (int)getpid());
	snprintf(junk, sizeof(junk), "/tmp/evring-test-%d.junk", (int)getpid());
	so.name = name;
	assert_eq(evr_session_create(&so, &s), 0);
	assert_eq(evr_session_get_flight(s, 0, &f), 0);
	for (int i = 0; i < total; i++) {
		uint32_t len = 4 + (uint32_t)i % 50;

		for (uint32_t k = 0; k < len; k++)
			b[k] = (uint8_t)(i + k);
		assert_eq(evr_flight_write(f, (uint32_t)i % 3 + 1, b, len), 0);
	}
	/* what the dump must show: the records a snapshot finds, and the same counters */
	assert_true(evr_flight_snapshot(f, NULL, NULL, &st) > 0, "snapshot");
	first = total - (int)st.records;
	snprintf(summary, sizeof(summary),
		 "rings 1 records %" PRIu64 " overwritten %" PRIu64
		 " lost 0 written %d missed %" PRIu64 " bad 0\n",
		 st.records, st.overwritten, total, st.missed);
	expect_eq(st.overwritten, first);
	/* a copy in a file, as `cp /dev/shm/NAME` makes */
	{
		int in = evr_session_get_fd(s),
		    outfd = open(copy, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		off_t size = lseek(in, 0, SEEK_END);
		static uint8_t buf[1 << 20];

		assert_true(outfd >= 0 && size > 0 && (size_t)size <= sizeof(buf), "copy");
		assert_true(pread(in, buf, (size_t)size, 0) == size &&
				    write(outfd, buf, (size_t)size) == size,
			    "copy the session");
		close(outfd);
	}
	evr_session_close(s);

	{
		char *argv[] = { tool, "dump", name, NULL };

		run(argv, &r);
		expect_true(r.status == 0, "dump %s: exit %d: %s", name, r.status, r.err);
		expect_true(r.err[0] == 0, "dump wrote to stderr: %s", r.err);
		expect_eq(count_lines(r.out, "ring 0 pos "), st.records);
		check_dump(r.out, first, total - 1, "by name");
		expect_true(strstr(r.out, summary) != NULL, "no summary \"%s\" in:\n%s", summary,
			    r.out + (strlen(r.out) > 300 ? strlen(r.out) - 300 : 0));
		expect_true(count_lines(r.out, "LOST ") == 1, "no LOST line");
	}
	{
		char *argv[] = { tool, "dump", "--ring", "0", "-o", outf, copy, NULL };
		FILE *fp;
		size_t n;

		run(argv, &r2);
		expect_true(r2.status == 0 && !r2.out[0], "dump -o: exit %d, stdout \"%.80s\"",
			    r2.status, r2.out);
		fp = fopen(outf, "r");
		assert_true(fp, "%s not written", outf);
		n = fread(r2.out, 1, sizeof(r2.out) - 1, fp);
		r2.out[n] = 0;
		fclose(fp);
		expect_true(!strcmp(r.out, r2.out), "the copy, via -o, dumps differently");
	}
	{
		char *argv[] = { tool, "dump", "--ring", "1", copy, NULL };

		run(argv, &r2);
		expect_true(r2.status == 1 && strstr(r2.err, "no ring 1"),
			    "--ring 1: exit %d, stderr \"%s\"", r2.status, r2.err);
	}
	evr_session_unlink(name);
	{
		char *argv[] = { tool, "dump", name, NULL };

		run(argv, &r2);
		expect_true(r2.status == 1 && strstr(r2.err, name) && strstr(r2.err, "no such"),
			    "unlinked: exit %d, stderr \"%s\"", r2.status, r2.err);
		expect_true(!r2.out[0], "unlinked: stdout \"%s\"", r2.out);
	}
	fd = open(junk, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0 && write(fd, summary, strlen(summary)) > 0, "junk");
	close(fd);
	{
		char *argv[] = { tool, "dump", junk, NULL };

		run(argv, &r2);
		expect_true(r2.status == 1 && strstr(r2.err, "not a session"),
			    "junk: exit %d, stderr \"%s\"", r2.status, r2.err);
	}
	{
		char *argv[] = { tool, "dump", NULL };

		run(argv, &r2);
		expect_true(r2.status == 2 && strstr(r2.err, "usage: evring dump"),
			    "no session: exit %d, stderr \"%s\"", r2.status, r2.err);
	}
	unlink(copy);
	unlink(outf);
	unlink(junk);
	return t_done();
}
