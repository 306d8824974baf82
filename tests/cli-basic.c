// SPDX-License-Identifier: MIT
/*
 * The evring command ($O/evring; the runner exports O, default "build"): `version` and `help`
 * exit 0 with the expected text, an unknown command exits 2 with a message on stderr.
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
	char out[8192], err[8192];
};

/* Drain @fd into @buf (NUL-terminated, truncated to fit). */
static void slurp(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	ssize_t k;

	while ((k = read(fd, buf + n, cap - 1 - n)) > 0 || (k < 0 && errno == EINTR))
		if (k > 0)
			n += (size_t)k;
	buf[n] = 0;
	close(fd);
}

static void run(const char *tool, const char *arg, struct run *res)
{
	char *argv[] = {(char *)tool, (char *)arg, NULL};
	posix_spawn_file_actions_t fa;
	int out[2], err[2], st;
	pid_t pid;

	assert_true(pipe(out) == 0 && pipe(err) == 0, "pipe");
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	posix_spawn_file_actions_addclose(&fa, out[0]);
	posix_spawn_file_actions_addclose(&fa, err[0]);
	if (!arg)
		argv[1] = NULL;
	assert_true(posix_spawn(&pid, tool, &fa, NULL, argv, environ) == 0, "spawn %s", tool);
	posix_spawn_file_actions_destroy(&fa);
	close(out[1]);
	close(err[1]);
	slurp(out[0], res->out,
	      sizeof(res->out)); /* the outputs here are far below a pipe's size */
	slurp(err[0], res->err, sizeof(res->err));
	assert_true(waitpid(pid, &st, 0) == pid, "waitpid");
	res->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(void)
{
	const char *o = getenv("O");
	char tool[4096], want[64];
	struct run r;

	t_init("cli-basic");
	snprintf(tool, sizeof(tool), "%s/evring", o && *o ? o : "build");
	if (access(tool, X_OK)) {
		if (o && *o) {
			expect_true(0, "%s: not built", tool);
			return t_done();
		}
		t_skip("build/evring not built and O not set");
	}

	snprintf(want, sizeof(want), "evring %d.%d.%d\n", EVR_VERSION_MAJOR, EVR_VERSION_MINOR,
		 EVR_VERSION_PATCH);
	run(tool, "version", &r);
	expect_true(r.status == 0, "version: exit %d", r.status);
	expect_true(!strcmp(r.out, want), "version printed \"%s\", want \"%s\"", r.out, want);
	expect_true(!strncmp(r.out + 7, evr_version_string(), strlen(evr_version_string())),
		    "version printed \"%s\", library says %s", r.out, evr_version_string());
	expect_true(r.err[0] == 0, "version wrote to stderr: %s", r.err);

	run(tool, "--version", &r);
	expect_true(r.status == 0 && !strcmp(r.out, want), "--version: exit %d, \"%s\"", r.status,
		    r.out);

	run(tool, "help", &r);
	expect_true(r.status == 0, "help: exit %d", r.status);
	expect_true(!strncmp(r.out, "usage: evring ", 14), "help starts \"%.40s\"", r.out);
	expect_true(strstr(r.out, "\n  version ") != NULL, "help does not list version:\n%s",
		    r.out);
	expect_true(strstr(r.out, "\n  help ") != NULL, "help does not list help:\n%s", r.out);
	expect_true(r.err[0] == 0, "help wrote to stderr: %s", r.err);

	run(tool, "no-such-command", &r);
	expect_true(r.status == 2, "unknown command: exit %d, want 2", r.status);
	expect_true(strstr(r.err, "unknown command") && strstr(r.err, "no-such-command"),
		    "unknown command: stderr \"%s\"", r.err);
	expect_true(r.out[0] == 0, "unknown command wrote to stdout: %s", r.out);

	run(tool, NULL, &r);
	expect_true(r.status == 2, "no command: exit %d, want 2", r.status);
	expect_true(strstr(r.out, "usage: evring") || strstr(r.err, "usage: evring"),
		    "no command: no usage text");
	return t_done();
}
