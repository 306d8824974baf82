// SPDX-License-Identifier: MIT
/*
 * evring dump: the records still in the flight rings of a session, post-mortem. The session is
 * a POSIX shm name ("/name") or a file holding a copy of one; it is mapped read-only and walked
 * with evr_flight_recover(), which trusts nothing in it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evring.h"

#define DUMP_BYTES 32u

struct dump {
	FILE *out;
	long ring; /* -1: all */
	uint64_t shown;
};

static int dump_rec(const struct evr_record *rec, void *arg)
{
	struct dump *d = arg;
	const uint8_t *p = rec->data;
	uint32_t n = rec->len < DUMP_BYTES ? rec->len : DUMP_BYTES;

	if (d->ring >= 0 && rec->ring != d->ring)
		return 0;
	fprintf(d->out, "ring %u pos %" PRIu64, rec->ring, rec->pos);
	if (rec->has_time)
		fprintf(d->out, " time %" PRIu64 ".%09" PRIu64, rec->time / 1000000000u,
			rec->time % 1000000000u);
	if (rec->is_app)
		fprintf(d->out, " id %u", rec->type);
	else
		fprintf(d->out, " type %u", rec->type);
	fprintf(d->out, " len %u:", rec->len);
	for (uint32_t i = 0; i < n; i++)
		fprintf(d->out, " %02x", p[i]);
	if (rec->len > n)
		fprintf(d->out, " ...");
	fputc('\n', d->out);
	d->shown++;
	return 0;
}

/* "/name" (one leading slash, no other) is a POSIX shm name; anything else a file. */
static int open_session(const char *what)
{
	if (what[0] == '/' && what[1] && !strchr(what + 1, '/')) {
		int fd = shm_open(what, O_RDONLY, 0);

		if (fd >= 0 || errno != ENOENT)
			return fd;
	}
	return open(what, O_RDONLY | O_CLOEXEC);
}

static int dump_usage(void)
{
	fprintf(stderr,
		"usage: evring dump [--ring N] [-o FILE] SESSION\n"
		"  SESSION: a POSIX shm name (/name) or a file holding a copy of a session\n");
	return 2;
}

int cmd_dump(int argc, char **argv);

int cmd_dump(int argc, char **argv)
{
	struct evr_flight_stats st = { .sz = sizeof(st) };
	struct dump d = { .out = stdout, .ring = -1 };
	const char *what = NULL, *out_path = NULL;
	const struct evr_session_hdr *h;
	struct stat sb;
	void *img;
	int fd, n, ret = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--ring") && i + 1 < argc) {
			char *end;

			errno = 0;
			d.ring = strtol(argv[++i], &end, 10);
			if (errno || *end || end == argv[i] || d.ring < 0 ||
			    d.ring >= EVR_SESSION_MAX_RINGS) {
				fprintf(stderr, "evring dump: bad ring number '%s'\n", argv[i]);
				return 2;
			}
		} else if (!strcmp(argv[i], "-o") && i + 1 < argc) {
			out_path = argv[++i];
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			dump_usage();
			return 0;
		} else if (argv[i][0] == '-' && argv[i][1] && argv[i][1] != '-' &&
			   argv[i][0] != '/') {
			fprintf(stderr, "evring dump: unknown option '%s'\n", argv[i]);
			return dump_usage();
		} else if (!what) {
			what = argv[i];
		} else {
			return dump_usage();
		}
	}
	if (!what)
		return dump_usage();
	fd = open_session(what);
	if (fd < 0) {
		fprintf(stderr, "evring dump: %s: %s\n", what,
			errno == ENOENT ? "no such session or file" : strerror(errno));
		return 1;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size <= 0) {
		fprintf(stderr, "evring dump: %s: not a session (%s)\n", what,
			S_ISREG(sb.st_mode) ? "empty" : "not a regular file");
		close(fd);
		return 1;
	}
	img = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (img == MAP_FAILED) {
		fprintf(stderr, "evring dump: %s: mmap: %s\n", what, strerror(errno));
		return 1;
	}
	if (out_path) {
		d.out = fopen(out_path, "w");
		if (!d.out) {
			fprintf(stderr, "evring dump: %s: %s\n", out_path, strerror(errno));
			munmap(img, (size_t)sb.st_size);
			return 1;
		}
	}
	n = evr_flight_recover(img, (size_t)sb.st_size, dump_rec, &d, &st);
	h = img;
	if (n < 0) {
		fprintf(stderr, "evring dump: %s: %s\n", what,
			n == -EBADMSG ? "not a session (bad header or directory, or truncated)"
			: n == -EPROTO ? "a session layout this evring does not read"
				       : evr_strerror(n));
		ret = 1;
	} else if (d.ring >= 0 && (uint32_t)d.ring >= h->nr_rings) {
		fprintf(stderr, "evring dump: %s: no ring %ld (the session has %u)\n", what, d.ring,
			h->nr_rings);
		ret = 1;
	} else if (!st.rings) {
		fprintf(stderr, "evring dump: %s: no flight ring in this session\n", what);
		ret = 1;
	} else {
		if (st.overwritten || st.lost || st.missed)
			fprintf(d.out,
				"LOST %" PRIu64 " overwritten, %" PRIu64
				" refused for room, %" PRIu64 " missed before the oldest page\n",
				st.overwritten, st.lost, st.missed);
		fprintf(d.out,
			"rings %" PRIu64 " records %" PRIu64 " overwritten %" PRIu64
			" lost %" PRIu64 " written %" PRIu64 " missed %" PRIu64 " bad %" PRIu64
			"\n",
			st.rings, d.ring >= 0 ? d.shown : st.records, st.overwritten, st.lost,
			st.written, st.missed, st.bad);
		if (st.bad)
			fprintf(stderr,
				"evring dump: %s: %" PRIu64 " corrupt pages or records skipped\n",
				what, st.bad);
	}
	if (out_path && fclose(d.out)) {
		fprintf(stderr, "evring dump: %s: %s\n", out_path, strerror(errno));
		ret = 1;
	} else if (!out_path && fflush(stdout)) {
		ret = 1;
	}
	munmap(img, (size_t)sb.st_size);
	return ret;
}
