// SPDX-License-Identifier: MIT
/*
 * The reader-ring fuzz target, built by gcc and run without libFuzzer: every file of
 * fuzz/corpus/reader-ring/, mutations of them, then seeded random rings. Single-threaded.
 * Exit 1 when the reader breaks an invariant (trap, ASan, UBSan), 77 without the corpus.
 */
#define _GNU_SOURCE
#define EVR_FUZZ_REPLAY 1
#include "../fuzz/reader-ring.c"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "test.h"

#define CORPUS_DIR "fuzz/corpus/reader-ring"
#define MUTANTS_PER_FILE 64
#define RANDOM_INPUTS 3000
#define REPLAY_MAX_INPUT (FZ_PREAMBLE + FZ_CTRL_SIZE + (64u << 10) + 512)

#ifdef EVR_MISC_TIME
#define MISC_TIME EVR_MISC_TIME /* records that carry a timestamp before the payload */
#else
#define MISC_TIME 0
#endif

/* UBSan in gcc's default build reports and goes on; here a report must fail the test. */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}

/* What the signal handler says and saves: prepared before each input, async-signal-safe. */
static char what[600];
static char dump_path[128];
static const uint8_t *cur_in;
static size_t cur_len;

static void on_fatal(int sig)
{
	int fd = open(dump_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd >= 0) {
		if (write(fd, cur_in, cur_len) < 0)
			(void)0;
		close(fd);
	}
	if (write(2, what, strlen(what)) < 0)
		(void)0;
	_exit(T_FAIL);
}

static void run(const uint8_t *in, size_t len, const char *fmt, const char *name, uint64_t n)
{
	snprintf(what, sizeof(what), "fuzz-replay-reader: crashed on ");
	snprintf(what + strlen(what), sizeof(what) - strlen(what), fmt, name, n);
	snprintf(what + strlen(what), sizeof(what) - strlen(what),
		 " (EVR_SEED=0x%016" PRIx64 "); input saved as %s\n", t_seed, dump_path);
	cur_in = in;
	cur_len = len;
	LLVMFuzzerTestOneInput(in, len);
}

/* Flip a few bytes where they matter: the preamble, head and tail, the data, the ops. */
static size_t mutate(uint8_t *buf, size_t len, uint64_t *rng)
{
	static const size_t hot[] = { 0, 1, 2, FZ_PREAMBLE + 1024, FZ_PREAMBLE + 1032 };
	unsigned int k = 1 + t_rand(rng) % 4;

	while (k--) {
		uint64_t r = t_rand(rng);
		size_t at;

		if (r % 4 == 0)
			at = hot[(r >> 8) % 5] + (r >> 16) % 8;
		else
			at = (r >> 8) % len;
		if (at < len)
			buf[at] ^= (uint8_t)(1u << ((r >> 40) % 8));
	}
	if (t_rand(rng) % 8 == 0) /* ... or cut it short */
		len -= t_rand(rng) % len;
	return len;
}

static int corpus(uint8_t *buf, uint64_t *rng)
{
	DIR *d = opendir(CORPUS_DIR);
	struct dirent *e;
	int files = 0;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char path[4096];
		size_t len;
		FILE *fp;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", CORPUS_DIR, e->d_name);
		fp = fopen(path, "rb");
		if (!fp)
			continue;
		len = fread(buf, 1, REPLAY_MAX_INPUT, fp);
		fclose(fp);
		files++;
		run(buf, len, "%s", path, 0);
		if (!len)
			continue;
		for (uint64_t m = 0; m < MUTANTS_PER_FILE; m++) {
			static uint8_t copy[REPLAY_MAX_INPUT];

			memcpy(copy, buf, len);
			run(copy, mutate(copy, len, rng), "%s, mutant %" PRIu64, path, m);
		}
	}
	closedir(d);
	return files;
}

/* A record header at ring position @pos of a random input's data area. */
static void put_hdr(uint8_t *data, uint64_t mask, uint64_t pos, uint32_t type, uint16_t misc,
		    uint16_t size)
{
	struct evr_record_header h = { .type = type, .misc = misc, .size = size };

	memcpy(data + (pos & mask), &h, sizeof(h));
}

/*
 * A plausible ring: head and tail near each other, a chain of mostly sane records from the tail
 * (forward) or head (backward), some garbage, and a random ops stream.
 */
static size_t random_input(uint8_t *buf, uint64_t *rng)
{
	static const uint64_t bases[] = { 0, 4096, 0ull - 64, 1ull << 32, 0x8000000000000000ull };
	uint64_t r = t_rand(rng), size, mask, head, tail, pos, end;
	unsigned int code = (r % 16 == 0) ? 10 : r % 8, flags = (r >> 8) & 0x1f;
	uint8_t *data = buf + FZ_PREAMBLE + FZ_CTRL_SIZE;
	uint8_t *c = buf + FZ_PREAMBLE;
	size_t nops, len;

	size = 64ull << code;
	mask = size - 1;
	memset(buf, 0, FZ_PREAMBLE + FZ_CTRL_SIZE);
	buf[0] = (uint8_t)code;
	buf[1] = (uint8_t)flags;
	buf[2] = (uint8_t)(r >> 16);
	for (uint64_t i = 0; i < size; i++)
		data[i] = (t_rand(rng) % 4 == 0) ? (uint8_t)t_rand(rng) : 0;

	r = t_rand(rng);
	if (flags & FZ_BACKWARD) {
		head = 0 - (t_rand(rng) % (3 * size / 8 + 1)) * 8;
		tail = t_rand(rng);
		pos = head;
		end = head + (0 - head < size ? 0 - head : size);
	} else {
		tail = (bases[r % 5] + t_rand(rng) % (4 * size)) & ~7ull;
		head = tail + (t_rand(rng) % (size / 8 + 1)) * 8;
		pos = tail;
		end = head;
	}
	if (r % 32 == 1)
		head ^= 1ull << (t_rand(rng) % 64); /* impossible heads, now and then */
	if (r % 32 == 2)
		tail += 4;
	memcpy(c + offsetof(struct evr_ctrl, data_head), &head, sizeof(head));
	memcpy(c + offsetof(struct evr_ctrl, data_tail), &tail, sizeof(tail));

	while (pos != end) {
		uint64_t room = end - pos, x = t_rand(rng);
		uint32_t sz = 8 + (uint32_t)(x % 16) * 8;

		if (x % 4 == 0)
			sz = 8 + (uint32_t)((x >> 8) % 512) * 8;
		if (sz > room)
			sz = (uint32_t)room;
		if (x % 64 == 3)
			sz = (uint32_t)(x >> 20) & 0xffff; /* a lie */
		switch ((x >> 32) % 5) {
		case 0:
			put_hdr(data, mask, pos, EVR_TYPE_LOST, EVR_MISC_EVRING, (uint16_t)sz);
			break;
		case 1:
			put_hdr(data, mask, pos, EVR_TYPE_PAD, 0, (uint16_t)sz);
			break;
		case 2:
			put_hdr(data, mask, pos, (uint32_t)(x >> 40) % 64, 0, (uint16_t)sz);
			break;
		default:
			put_hdr(data, mask, pos, EVR_TYPE_APP + (uint32_t)(x >> 40) % 9,
				(uint16_t)((x >> 48) % 8 | (x & (1ull << 52) ? MISC_TIME : 0)),
				(uint16_t)sz);
			break;
		}
		if (!sz || sz % 8 || sz > room)
			break;
		pos += sz;
	}

	len = FZ_PREAMBLE + FZ_CTRL_SIZE + size;
	nops = t_rand(rng) % 256;
	for (size_t i = 0; i < nops; i++) {
		uint64_t x = t_rand(rng);

		/* ops are one byte each then arguments: bias toward honest records (op 4) */
		buf[len + i] = (x % 3 == 0) ? (uint8_t)(4 + 8 * ((x >> 8) % 32)) :
					      (uint8_t)(x >> 16);
	}
	return len + nops;
}

int main(void)
{
	static uint8_t buf[REPLAY_MAX_INPUT];
	uint64_t rng, records_corpus;
	struct sigaction sa;
	int files;

	t_init("fuzz-replay-reader");
	rng = t_seed;
	snprintf(dump_path, sizeof(dump_path), "/tmp/fuzz-replay-reader-crash-%d", (int)getpid());
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fatal;
	sa.sa_flags = SA_RESETHAND;
	sigaction(SIGILL, &sa, NULL);
	sigaction(SIGTRAP, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGFPE, &sa, NULL);

	files = corpus(buf, &rng);
	if (files < 0)
		t_skip("no " CORPUS_DIR " (run from the repository root)");
	records_corpus = fz_records;
	for (uint64_t i = 0; i < RANDOM_INPUTS; i++)
		run(buf, random_input(buf, &rng), "%s %" PRIu64, "random input", i);
	printf("fuzz-replay-reader: %d corpus files (%d mutants each, %" PRIu64
	       " records), %d random inputs; %" PRIu64 " records, %" PRIu64 " bad headers in all\n",
	       files, MUTANTS_PER_FILE, records_corpus, RANDOM_INPUTS, fz_records, fz_bad);
	expect_true(files > 0, "the corpus is empty");
	expect_true(records_corpus > 0, "the corpus reaches no record");
	return t_done();
}
