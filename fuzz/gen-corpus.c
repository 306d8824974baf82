// SPDX-License-Identifier: MIT
/*
 * An honest writer's rings, for two uses. Built with -DEVR_GEN_MAIN it writes the seed inputs of
 * fuzz/corpus/ (cc -DEVR_GEN_MAIN -Iinclude -o gen fuzz/gen-corpus.c && ./gen fuzz/corpus).
 * Built by `make fuzz` it is the round-trip target: a script of writes and reads, and the reader
 * must hand back exactly what was written, in order, without a false alarm. Single-threaded.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evring.h"

#ifndef EVR_GEN_MAIN
/* The reader-ring target comes along under another name: each script's ring is fed to it too. */
#define LLVMFuzzerTestOneInput reader_ring_one
#include "reader-ring.c"
#undef LLVMFuzzerTestOneInput
#else
/* The flags and layout of reader-ring.c's input, which the seeds must follow. */
#define FZ_MIRROR 0x01u
#define FZ_BACKWARD 0x02u
#define FZ_OLDEST 0x04u
#define FZ_MIDBATCH 0x08u
#define FZ_NULL_OPTS 0x10u
#define FZ_PREAMBLE 4u
#define FZ_CTRL_SIZE 4096u
#define fz_check(c)                                                                              \
	do {                                                                                     \
		if (!(c))                                                                        \
			__builtin_trap();                                                        \
	} while (0)
#endif

#define GEN_MAX_SIZE_CODE 10u /* 64 KiB */
#define GEN_MAX_RECS 4096u

/* A record as written, to compare with what the reader hands out. */
struct gen_rec {
	uint64_t pos;
	uint32_t type; /* raw header type */
	uint32_t size;
	uint32_t len;
};

struct gen {
	uint64_t size;
	uint64_t mask;
	unsigned int flags; /* FZ_* */
	struct evr_ctrl *ctrl; /* FZ_CTRL_SIZE bytes */
	uint8_t *data; /* size bytes, twice with FZ_MIRROR */
	uint64_t head; /* the writer's position */
	uint64_t tail; /* forward: the oldest position still held */
	struct gen_rec rec[GEN_MAX_RECS];
	unsigned int nr; /* forward: unread records; backward: all records, newest last */
};

static int gen_init(struct gen *g, unsigned int size_code, unsigned int flags, uint64_t start)
{
	memset(g, 0, sizeof(*g));
	g->size = 64ull << size_code;
	g->mask = g->size - 1;
	g->flags = flags;
	g->ctrl = calloc(1, FZ_CTRL_SIZE);
	g->data = calloc((flags & FZ_MIRROR) ? 2 : 1, g->size);
	if (!g->ctrl || !g->data)
		return -ENOMEM;
	/* overwrite rings start at 0 and go down; forward ones may start anywhere aligned */
	g->head = g->tail = (flags & FZ_BACKWARD) ? 0 : start & ~(uint64_t)(EVR_RECORD_ALIGN - 1);
	g->ctrl->data_head = g->ctrl->data_tail = g->head;
	g->ctrl->data_offset = FZ_CTRL_SIZE;
	g->ctrl->data_size = g->size;
	g->ctrl->size = 1088;
	g->ctrl->magic = EVR_CTRL_MAGIC;
	g->ctrl->evr_version = EVR_ABI_VERSION;
	g->ctrl->evr_compat = EVR_ABI_COMPAT;
	g->ctrl->kind = EVR_KIND_SPSC;
	g->ctrl->flags = ((flags & FZ_BACKWARD) ? EVR_CTRL_BACKWARD : 0) |
			 ((flags & FZ_MIRROR) ? EVR_CTRL_MIRROR : 0);
	return 0;
}

static void gen_free(struct gen *g)
{
	free(g->ctrl);
	free(g->data);
}

static void gen_put(struct gen *g, uint64_t pos, const void *src, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t off = (pos + i) & g->mask;

		g->data[off] = ((const uint8_t *)src)[i];
		if (g->flags & FZ_MIRROR)
			g->data[off + g->size] = ((const uint8_t *)src)[i];
	}
}

static void gen_publish(struct gen *g)
{
	__atomic_store_n(&g->ctrl->data_head, g->head, __ATOMIC_RELEASE);
}

/*
 * Write one record of raw @type with @len payload bytes; @lost > 0 makes it an evring LOST
 * record. Forward, it fails (-ENOSPC) without room after the published data_tail.
 */
static int gen_write(struct gen *g, uint32_t type, uint32_t len, uint64_t lost)
{
	struct evr_record_header h = { .type = type };
	uint32_t size;
	uint64_t pos;
	uint8_t pay[EVR_RECORD_MAX];

	if (lost) {
		struct evr_lost_body b = {
			.id = 42, .lost = lost, .first_pos = g->head, .last_pos = g->head,
			.causes = EVR_LOST_FULL,
		};

		h.type = type = EVR_TYPE_LOST;
		h.misc = EVR_MISC_EVRING;
		len = sizeof(b);
		memcpy(pay, &b, sizeof(b));
	}
	size = ((uint32_t)sizeof(h) + len + EVR_RECORD_ALIGN - 1) & ~(EVR_RECORD_ALIGN - 1);
	if (size > g->size || size > EVR_RECORD_MAX)
		return -EMSGSIZE;
	if (type >= EVR_TYPE_PAD)
		h.misc = (uint16_t)(size - sizeof(h) - len);
	h.size = (uint16_t)size;
	if (g->nr == GEN_MAX_RECS)
		return -ENOSPC; /* the history must cover every record a snapshot can hold */
	if (g->flags & FZ_BACKWARD) {
		pos = g->head - size;
	} else {
		uint64_t tail = __atomic_load_n(&g->ctrl->data_tail, __ATOMIC_ACQUIRE);

		if (g->head - tail > g->size || size > g->size - (g->head - tail))
			return -ENOSPC;
		pos = g->head;
	}
	for (uint32_t i = lost ? len : 0; i < size - sizeof(h); i++)
		pay[i] = (uint8_t)((pos >> 3) * 31 + i);
	gen_put(g, pos + sizeof(h), pay, size - sizeof(h));
	gen_put(g, pos, &h, sizeof(h));
	g->head = (g->flags & FZ_BACKWARD) ? pos : pos + size;
	g->rec[g->nr++] = (struct gen_rec){ .pos = pos, .type = type, .size = size,
					    .len = type >= EVR_TYPE_PAD ? len : size - 8 };
	return 0;
}

#ifdef EVR_GEN_MAIN
/* ------------------------------------------------------------------------------------------ */
/* Seeds: one reader-ring input per interesting ring, plus round-trip scripts. */

static const char *out_dir;
static int failed;

static void emit(const char *target, const char *name, const void *a, size_t an, const void *b,
		 size_t bn)
{
	char path[4096];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s/%s", out_dir, target, name);
	fp = fopen(path, "wb");
	if (!fp || fwrite(a, 1, an, fp) != an || (bn && fwrite(b, 1, bn, fp) != bn) || fclose(fp)) {
		perror(path);
		failed = 1;
		return;
	}
	printf("%s: %zu bytes\n", path, an + bn);
}

/* Serialize @g as a reader-ring input: preamble, control page, data area, writer ops. */
static void emit_ring(const char *name, struct gen *g, unsigned int size_code, unsigned int batches,
		      const uint8_t *ops, size_t nops)
{
	size_t n = FZ_PREAMBLE + FZ_CTRL_SIZE + g->size + nops;
	uint8_t *buf = calloc(1, n);

	if (!buf) {
		failed = 1;
		return;
	}
	gen_publish(g);
	buf[0] = (uint8_t)size_code;
	buf[1] = (uint8_t)g->flags;
	buf[2] = (uint8_t)(batches - 1);
	memcpy(buf + FZ_PREAMBLE, g->ctrl, FZ_CTRL_SIZE);
	memcpy(buf + FZ_PREAMBLE + FZ_CTRL_SIZE, g->data, g->size);
	memcpy(buf + FZ_PREAMBLE + FZ_CTRL_SIZE + g->size, ops, nops);
	emit("reader-ring", name, buf, n, NULL, 0);
	free(buf);
}

/* A forward ring of mixed records from @start (near the end of the area: they wrap). */
static void seed_forward(const char *name, unsigned int code, unsigned int flags, uint64_t start,
			 const uint8_t *ops, size_t nops, unsigned int batches)
{
	struct gen g;

	if (gen_init(&g, code, flags, start))
		return;
	gen_write(&g, EVR_TYPE_APP + 1, 13, 0);
	gen_write(&g, EVR_TYPE_LOST, 0, 5);
	gen_write(&g, EVR_TYPE_APP + 2, 24, 0);
	gen_write(&g, EVR_TYPE_PAD, 0, 0);
	gen_write(&g, 9 /* PERF_RECORD_SAMPLE */, 16, 0);
	gen_write(&g, EVR_TYPE_APP + 0x3fffffff, 0, 0);
	gen_write(&g, EVR_TYPE_PAD + 5, 3, 0);
	gen_write(&g, EVR_TYPE_APP + 3, 37, 0);
	while (gen_write(&g, EVR_TYPE_APP + 4, 5, 0) == 0 && g.head - g.tail < g.size / 2)
		;
	emit_ring(name, &g, code, batches, ops, nops);
	gen_free(&g);
}

/* An overwrite ring after @n writes: once it wrapped, the oldest record is cut by the boundary. */
static void seed_backward(const char *name, unsigned int code, unsigned int flags, unsigned int n,
			  const uint8_t *ops, size_t nops, unsigned int batches)
{
	struct gen g;

	if (gen_init(&g, code, flags, 0))
		return;
	for (unsigned int i = 0; i < n; i++)
		gen_write(&g, i % 5 == 4 ? EVR_TYPE_PAD : EVR_TYPE_APP + i, 3 + i % 29,
			  i % 7 == 3 ? i : 0);
	emit_ring(name, &g, code, batches, ops, nops);
	gen_free(&g);
}

#ifdef EVR_GEN_FLIGHT
/*
 * Seeds of the flight-recover target: the bytes of real sessions with flight rings, written by
 * the library (so this part links it: cc -DEVR_GEN_MAIN -DEVR_GEN_FLIGHT -Iinclude -o gen
 * fuzz/gen-corpus.c build/libevring.a -lpthread && ./gen fuzz/corpus).
 */
#include <unistd.h>

static void seed_flight(const char *name, uint32_t nr_rings, uint32_t flags, uint32_t psize,
			uint64_t data_size, unsigned int writes, unsigned int reads,
			unsigned int more)
{
	EVR_OPTS(evr_session_opts, o, .nr_rings = nr_rings, .ring_flags = flags,
		 .data_size = data_size, .flight_page_size = psize);
	struct evr_session *s = NULL;
	struct evr_record rec;
	uint8_t pay[256], *img;
	off_t size;
	int fd;

	if (evr_session_create(&o, &s)) {
		fprintf(stderr, "%s: evr_session_create failed\n", name);
		failed = 1;
		return;
	}
	for (uint32_t r = 0; r < nr_rings; r++) {
		struct evr_flight *f;

		if (evr_session_get_flight(s, r, &f))
			continue;
		for (unsigned int i = 0; i < writes + reads + more; i++) {
			uint32_t len = (i * 37u + r * 11u) % 120u;

			for (uint32_t k = 0; k < len; k++)
				pay[k] = (uint8_t)(i * 31 + k);
			if (i >= writes && i < writes + reads) {
				evr_flight_read(
					f, &rec); /* the reader takes a page: recovery skips it */
				continue;
			}
			evr_flight_write(f, i % 5, pay, len);
		}
	}
	fd = evr_session_get_fd(s);
	size = lseek(fd, 0, SEEK_END);
	img = size > 0 ? malloc((size_t)size) : NULL;
	if (!img || pread(fd, img, (size_t)size, 0) != size) {
		fprintf(stderr, "%s: cannot copy the session\n", name);
		failed = 1;
	} else {
		emit("flight-recover", name, img, (size_t)size, NULL, 0);
	}
	free(img);
	evr_session_destroy(s);
}

static void seeds_flight(void)
{
	seed_flight("empty", 1, EVR_RING_FLIGHT, 256, 1024, 0, 0, 0);
	seed_flight("overwrite-wrapped", 1, EVR_RING_FLIGHT | EVR_RING_OVERWRITE, 256, 2048, 300,
		    0, 0);
	seed_flight("stamp-2-rings", 2, EVR_RING_FLIGHT | EVR_RING_OVERWRITE | EVR_RING_STAMP, 512,
		    2048, 90, 0, 0);
	seed_flight("consume-reader-page", 1, EVR_RING_FLIGHT, 256, 1024, 20, 7, 12);
	seed_flight("full-refused", 1, EVR_RING_FLIGHT, 256, 1024, 200, 0, 0);
}
#endif

int main(int argc, char **argv)
{
	/* writer ops between batches: (count, op, args...) per gap, see writer_op() */
	static const uint8_t grow[] = {
		3, 4, 0x10, 20, 0, 4, 0x11, 0, 0, 4, 0x13, 9, 0,	/* app, LOST, kernel */
		2, 4, 0x20, 40, 0, 4, 0x22, 8, 0,			/* app, PAD */
		1, 6,							/* tail = head */
	};
	static const uint8_t hostile[] = {
		2, 0, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,	/* head = -8 */
		1, 0x12, 0x34, 0x00,					/* head -= 8 * 0xcc */
		3, 3, 2, 0, 1, 0, 0, 0, 0xf0, 0xff, 4, 0x30, 9, 0,	/* bad size, a record */
		1, 1, 3, 0, 0, 0, 0, 0, 0, 0,				/* misaligned tail */
		2, 7, 10, 0, 3, 5, 16, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8,	/* bit flip, raw bytes */
	};
	static const uint8_t midbatch[] = {
		0, 4, 0x14, 33, 0, 3, 1, 0, 9, 0, 0, 0, 16, 0, 0, 0, 7, 12, 0, 1,
		2, 4, 0x15, 0, 0, 4, 0x16, 0, 0,
	};
	static const uint8_t no_ops[] = { 0 };

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR (holding reader-ring/ and gen-corpus/)\n",
			argv[0]);
		return 2;
	}
	out_dir = argv[1];

	seed_forward("fwd-plain", 3, 0, 0, no_ops, 0, 1);
	seed_forward("fwd-wrap-bounce", 3, 0, 512 - 24, grow, sizeof(grow), 4);
	seed_forward("fwd-wrap-mirror", 6, FZ_MIRROR, (4096 - 40) + (7ull << 32), grow,
		     sizeof(grow), 4);
	seed_forward("fwd-u64-wrap", 2, FZ_NULL_OPTS, 0ull - 64, grow, sizeof(grow), 3);
	seed_forward("fwd-hostile", 4, 0, 1000, hostile, sizeof(hostile), 6);
	seed_forward("fwd-midbatch", 4, FZ_MIDBATCH, 96, midbatch, sizeof(midbatch), 3);
	seed_forward("fwd-8k-mirror", 7, FZ_MIRROR, 0, no_ops, 0, 1);
	seed_backward("bwd-fresh", 3, FZ_BACKWARD, 6, no_ops, 0, 1);
	seed_backward("bwd-overwritten", 3, FZ_BACKWARD, 40, grow, sizeof(grow), 3);
	seed_backward("bwd-oldest-first", 4, FZ_BACKWARD | FZ_OLDEST, 90, grow, sizeof(grow), 3);
	seed_backward("bwd-oldest-mirror", 6, FZ_BACKWARD | FZ_OLDEST | FZ_MIRROR, 200, hostile,
		      sizeof(hostile), 6);
	seed_backward("bwd-midbatch", 4, FZ_BACKWARD | FZ_OLDEST | FZ_MIDBATCH, 60, midbatch,
		      sizeof(midbatch), 3);

	/* round-trip scripts for the gen-corpus target: see gen_script() */
	static const uint8_t s_fwd[] = { 3, 0, 0x10, 0, 0, 0, 0, 0, 0, 0,
					 0x01, 12, 0x02, 0x05, 0x13, 40, 0x80, 0x21, 7, 0x80 };
	static const uint8_t s_wrap[] = { 2, 0, 0xf0, 0x00, 0, 0, 0, 0, 0, 0,
					  0x01, 30, 0x01, 30, 0x80, 0x01, 30, 0x41, 50,
					  0x80, 0x01, 90, 0x80 };
	static const uint8_t s_mirror[] = { 6, FZ_MIRROR, 0xd0, 0x0f, 0, 0, 1, 0, 0, 0,
					    0x01, 200, 0x13, 0x80, 0x02, 0x09, 0x01, 100, 0x80 };
	static const uint8_t s_bwd[] = { 3, FZ_BACKWARD, 0, 0, 0, 0, 0, 0, 0, 0,
					 0x01, 20, 0x02, 3, 0x21, 17, 0x80, 0x01, 200,
					 0x01, 60, 0x01, 60, 0x80 };
	static const uint8_t s_old[] = { 4, FZ_BACKWARD | FZ_OLDEST, 0, 0, 0, 0, 0, 0, 0, 0,
					 0x01, 20, 0x02, 3, 0x21, 17, 0x01, 99, 0x01, 99,
					 0x01, 99, 0x01, 99, 0x80 };

	emit("gen-corpus", "fwd", s_fwd, sizeof(s_fwd), NULL, 0);
	emit("gen-corpus", "fwd-wrap", s_wrap, sizeof(s_wrap), NULL, 0);
	emit("gen-corpus", "fwd-mirror", s_mirror, sizeof(s_mirror), NULL, 0);
	emit("gen-corpus", "bwd", s_bwd, sizeof(s_bwd), NULL, 0);
	emit("gen-corpus", "bwd-oldest", s_old, sizeof(s_old), NULL, 0);
#ifdef EVR_GEN_FLIGHT
	seeds_flight();
#endif
	return failed;
}

#else /* the round-trip target */
/* ------------------------------------------------------------------------------------------ */

/* The records a backward snapshot holds, newest first, as the reader must find them. */
static unsigned int snapshot(const struct gen *g, unsigned int *idx)
{
	uint64_t avail = 0 - g->head < g->size ? 0 - g->head : g->size;
	unsigned int n = 0;

	for (unsigned int i = g->nr; i--;) {
		const struct gen_rec *r = &g->rec[i];

		if (r->pos - g->head + r->size > avail)
			break;
		idx[n++] = i;
	}
	return n;
}

/* One batch; every record must be the next one written, byte for byte. */
static void read_batch(struct gen *g, struct evr_reader *rd, int oldest)
{
	static unsigned int idx[GEN_MAX_RECS];
	unsigned int n = 0, want = 0;
	struct evr_record rec;
	uint64_t avail;
	int ret;

	if (g->flags & FZ_BACKWARD) {
		avail = 0 - g->head < g->size ? 0 - g->head : g->size;
		want = snapshot(g, idx);
	} else {
		avail = g->head - g->tail;
		want = g->nr;
		for (unsigned int i = 0; i < want; i++)
			idx[i] = i;
	}
	ret = evr_reader_begin(rd);
	fz_check(ret >= 0 && (uint64_t)ret == avail);
	for (;;) {
		const struct gen_rec *r;
		unsigned int k;

		ret = evr_reader_next(rd, &rec);
		fz_check(ret == 0 || ret == 1);
		if (!ret)
			break;
		/* PAD records are skipped, never handed out */
		do {
			fz_check(n < want);
			k = idx[oldest ? want - 1 - n : n];
			n++;
		} while (g->rec[k].type == EVR_TYPE_PAD);
		r = &g->rec[k];
		fz_check(rec.pos == r->pos && rec.hdr->type == r->type && rec.hdr->size == r->size);
		fz_check(rec.len == r->len);
		for (uint32_t i = 0; i < rec.len; i++)
			fz_check(((const uint8_t *)rec.data)[i] ==
				 g->data[(r->pos + sizeof(*rec.hdr) + i) & g->mask]);
	}
	while (n < want)
		fz_check(g->rec[idx[oldest ? want - 1 - n++ : n++]].type == EVR_TYPE_PAD);
	fz_check(evr_reader_end(rd) == 0);
	if (!(g->flags & FZ_BACKWARD)) {
		fz_check(g->ctrl->data_tail == g->head);
		g->tail = g->head;
		g->nr = 0;
	}
}

/*
 * Script: size code, flags (FZ_MIRROR, FZ_BACKWARD, FZ_OLDEST), u64 start position, then
 * commands: 0x80 reads a batch; otherwise the low 6 bits pick a record kind (kind % 4: app,
 * LOST, PAD, kernel) and the next byte its length (bit 6 of the command multiplies it by 64).
 */
static void gen_script(const uint8_t *in, size_t len)
{
	struct evr_reader_opts opts = { .sz = sizeof(opts) };
	struct evr_reader_stats st = { .sz = sizeof(st) };
	uint64_t start = 0, lost = 0;
	struct evr_reader *rd = NULL;
	unsigned int code, flags;
	struct gen *g;
	size_t i;

	if (len < 10)
		return;
	code = in[0] % (GEN_MAX_SIZE_CODE + 1);
	flags = in[1] & (FZ_MIRROR | FZ_BACKWARD | FZ_OLDEST);
	for (i = 0; i < 8; i++)
		start |= (uint64_t)in[2 + i] << (8 * i);
	g = malloc(sizeof(*g));
	if (!g || gen_init(g, code, flags, start))
		goto out;
	opts.flags = (flags & FZ_OLDEST) ? EVR_READ_OLDEST_FIRST : 0;
	fz_check(evr_reader_create_raw(g->ctrl, g->data, g->size, flags & FZ_MIRROR,
				       flags & FZ_BACKWARD, &opts, &rd) == 0);
	for (i = 10; i < len; i++) {
		uint8_t cmd = in[i], kind = cmd & 0x3f;
		uint32_t n;

		if (cmd == 0x80) {
			read_batch(g, rd, (flags & FZ_OLDEST) && (flags & FZ_BACKWARD));
			continue;
		}
		n = i + 1 < len ? in[++i] : 0;
		if (cmd & 0x40)
			n *= 64;
		switch (kind % 4) {
		case 0:
			gen_write(g, EVR_TYPE_APP + kind, n, 0);
			break;
		case 1:
			if (gen_write(g, EVR_TYPE_LOST, 0, n + 1) == 0)
				lost += n + 1;
			break;
		case 2:
			gen_write(g, EVR_TYPE_PAD + (kind >> 2), n, 0);
			break;
		default:
			gen_write(g, kind >> 2, n, 0);
			break;
		}
		gen_publish(g);
	}
	read_batch(g, rd, (flags & FZ_OLDEST) && (flags & FZ_BACKWARD));
	fz_check(evr_reader_get_stats(rd, &st) == 0);
	fz_check(st.bad_headers == 0 && st.bytes_skipped == 0);
	if (!(flags & FZ_BACKWARD))
		fz_check(st.lost == lost);
out:
	evr_reader_destroy(rd);
	if (g)
		gen_free(g);
	free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len)
{
	gen_script(in, len);
	return 0;
}
#endif
