/* SPDX-License-Identifier: MIT */
/*
 * The driver of a gcc replay of a libFuzzer target (included after the target's source, with
 * REPLAY_NAME and CORPUS defined): the seed corpus, mutations of it and seeded random inputs,
 * with a fatal-signal handler that saves the input that crashed.
 */
#ifndef REPLAY_NAME
#error "define REPLAY_NAME and CORPUS before including replay-main.h"
#endif

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>

#include "test.h"

/* UBSan in gcc's default build reports and goes on; here a report must fail the test. */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}

/* The input being run, saved by the fatal-signal handler so a crash can be replayed. */
static const uint8_t *cur_in;
static size_t cur_len;
static char dump_path[96];

static void on_fatal(int sig)
{
	static const char msg[] = "fuzz-replay: crashed; input saved to ";
	int fd = open(dump_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd >= 0) {
		if (write(fd, cur_in, cur_len) < 0)
			(void)0;
		close(fd);
	}
	if (write(2, msg, sizeof(msg) - 1) < 0 || write(2, dump_path, strlen(dump_path)) < 0 ||
	    write(2, "\n", 1) < 0)
		(void)0;
	signal(sig, SIG_DFL);
	raise(sig);
}

static void run(const uint8_t *in, size_t len)
{
	cur_in = in;
	cur_len = len;
	LLVMFuzzerTestOneInput(in, len);
}

static uint8_t *load(const char *dir, const char *name, size_t *len)
{
	char path[512];
	FILE *f;
	uint8_t *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return buf;
}

int main(void)
{
	uint8_t *seeds[256];
	size_t lens[256], nseeds = 0;
	uint64_t rng, runs = t_long() ? 200000 : 3000;
	struct dirent *de;
	DIR *d;

	t_init(REPLAY_NAME);
	rng = t_seed;
	snprintf(dump_path, sizeof(dump_path), "/tmp/" REPLAY_NAME "-crash-%d", (int)getpid());
	signal(SIGABRT, on_fatal);
	signal(SIGSEGV, on_fatal);
	signal(SIGBUS, on_fatal);
	signal(SIGILL, on_fatal);
	d = opendir(CORPUS);
	if (!d)
		t_skip("no " CORPUS " (run from the source tree)");
	while ((de = readdir(d)) && nseeds < 256) {
		if (de->d_name[0] == '.')
			continue;
		seeds[nseeds] = load(CORPUS, de->d_name, &lens[nseeds]);
		if (seeds[nseeds]) {
			run(seeds[nseeds], lens[nseeds]);
			nseeds++;
		}
	}
	closedir(d);
	expect_true(nseeds > 0, "%s", "the corpus has inputs");
	for (uint64_t i = 0; i < runs; i++) {
		static uint8_t buf[1 << 16];
		size_t n;

		if (nseeds && i % 4) {
			/* a seed with a few bytes flipped, copied or cut short */
			size_t k = t_rand(&rng) % nseeds, flips = 1 + t_rand(&rng) % 8;

			n = lens[k] < sizeof(buf) ? lens[k] : sizeof(buf);
			memcpy(buf, seeds[k], n);
			for (size_t f = 0; f < flips && n; f++) {
				size_t at = t_rand(&rng) % n;

				if (t_rand(&rng) % 2)
					buf[at] ^= (uint8_t)(1u << (t_rand(&rng) % 8));
				else
					buf[at] = (uint8_t)t_rand(&rng);
			}
			if (t_rand(&rng) % 8 == 0)
				n = t_rand(&rng) % (n + 1);
		} else {
			n = t_rand(&rng) % 4096;
			for (size_t b = 0; b < n; b++)
				buf[b] = (uint8_t)t_rand(&rng);
		}
		run(buf, n);
	}
	for (size_t k = 0; k < nseeds; k++)
		free(seeds[k]);
	printf("%s: %zu corpus inputs, %" PRIu64 " generated\n", t_name, nseeds, runs);
	return t_done();
}
