// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: arbitrary bytes become a ring (control page + data area) that the validating
 * reader drains in batches while a hostile "writer" rewrites head, tail and records in between.
 * Single-threaded; also #included by tests/fuzz-replay-reader.c to replay the corpus under gcc.
 *
 * Input layout (every part zero-filled when the input is short):
 *
 *   0        1       2        3         4            4100           4100 + data_size
 *   | size   | flags | batches | unused  | evr_ctrl (4096) | data area | ops ... |
 *
 *   size    data_size = 64 << (size % 11): 64 B .. 64 KiB
 *   flags   FZ_MIRROR, FZ_BACKWARD, FZ_OLDEST, FZ_MIDBATCH, FZ_NULL_OPTS
 *   batches 1 + batches % 8 begin/next/end rounds
 *   ops     the writer's moves between batches (and after each record with FZ_MIDBATCH), see
 *           writer_op()
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "evring.h"

#define FZ_MIRROR 0x01u /* data allocated twice back to back, both copies kept equal */
#define FZ_BACKWARD 0x02u /* an overwrite (backward) ring: snapshots, no tail */
#define FZ_OLDEST 0x04u /* EVR_READ_OLDEST_FIRST */
#define FZ_MIDBATCH 0x08u /* the writer also moves after every delivered record */
#define FZ_NULL_OPTS 0x10u /* evr_reader_create_raw(..., NULL opts, ...) */

#define FZ_PREAMBLE 4u
#define FZ_CTRL_SIZE 4096u
#define FZ_SIZE_CODES 11u
#define FZ_MAX_BATCHES 8u

/*
 * An invariant the reader promised and broke. The replay test says where before it dies; the
 * fuzzer gets a bare trap, which it reports with a stack.
 */
#ifdef EVR_FUZZ_REPLAY
#include <stdio.h>
#define fz_check(c)                                                                              \
	do {                                                                                     \
		if (!(c)) {                                                                      \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #c); \
			__builtin_trap();                                                        \
		}                                                                                \
	} while (0)
/* what the replay test reports, so a corpus that stopped reaching records shows */
static uint64_t fz_records, fz_bad;
#else
#define fz_check(c)                                                                              \
	do {                                                                                     \
		if (!(c))                                                                        \
			__builtin_trap();                                                        \
	} while (0)
#endif

struct fz {
	const uint8_t *in; /* the ops stream */
	size_t in_len;
	size_t in_pos;

	struct evr_ctrl *ctrl;
	uint8_t *buf; /* data area: data_size bytes, or 2 * data_size with FZ_MIRROR */
	size_t buf_len;
	uint64_t size;
	uint64_t mask;
	unsigned int flags;
	int oldest; /* the reader was asked for EVR_READ_OLDEST_FIRST */
	int multi; /* the page says multi-producer: records are found by headers, not data_head */
};

static uint8_t take8(struct fz *f)
{
	return f->in_pos < f->in_len ? f->in[f->in_pos++] : 0;
}

static uint16_t take16(struct fz *f)
{
	uint16_t v = take8(f);

	return (uint16_t)(v | (uint16_t)take8(f) << 8);
}

static uint64_t take64(struct fz *f)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)take8(f) << (8 * i);
	return v;
}

/* Store one byte of the ring at ring position @pos, in both views when mirrored. */
static void put(struct fz *f, uint64_t pos, uint8_t b)
{
	uint64_t off = pos & f->mask;

	f->buf[off] = b;
	if (f->flags & FZ_MIRROR)
		f->buf[off + f->size] = b;
}

static void put_bytes(struct fz *f, uint64_t pos, const void *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put(f, pos + i, ((const uint8_t *)src)[i]);
}

/* The header an honest writer gives a record of @kind with about @len payload bytes. */
static struct evr_record_header shape(const struct fz *f, uint8_t kind, uint32_t *len)
{
	uint32_t max = f->size < EVR_RECORD_MAX ? (uint32_t)f->size : EVR_RECORD_MAX;
	struct evr_record_header h = { 0 };

	switch (kind % 4) {
	case 0:
		h.type = EVR_TYPE_APP + kind;
		break;
	case 1:
		h.type = EVR_TYPE_LOST;
		h.misc = EVR_MISC_EVRING;
		*len = sizeof(struct evr_lost_body);
		break;
	case 2:
		h.type = EVR_TYPE_PAD;
		break;
	default:
		h.type = kind % 64; /* a kernel record type */
		break;
	}
	*len %= max - (uint32_t)sizeof(h) + 1;
	h.size = (uint16_t)(((uint32_t)sizeof(h) + *len + EVR_RECORD_ALIGN - 1) &
			    ~(EVR_RECORD_ALIGN - 1));
	if (h.type >= EVR_TYPE_PAD)
		h.misc = (uint16_t)(h.size - sizeof(h) - *len);
	return h;
}

/* Write the record shape() describes at @pos, payload first, header last. */
static void put_record(struct fz *f, uint64_t pos, struct evr_record_header h, uint8_t kind)
{
	uint32_t i = 0;

	if (h.type == EVR_TYPE_LOST) {
		struct evr_lost_body b = { .id = 7, .lost = kind, .causes = EVR_LOST_FULL };

		put_bytes(f, pos + sizeof(h), &b, sizeof(b));
		i = sizeof(b);
	}
	for (; i < h.size - sizeof(h); i++)
		put(f, pos + sizeof(h) + i, (uint8_t)(pos + i));
	put_bytes(f, pos, &h, sizeof(h));
}

/* One move of the hostile writer. Shared memory only; the reader's private state is its own. */
static void writer_op(struct fz *f)
{
	struct evr_ctrl *c = f->ctrl;
	uint8_t op = take8(f);

	switch (op % 8) {
	case 0:
		__atomic_store_n(&c->data_head, take64(f), __ATOMIC_RELEASE);
		break;
	case 1:
		c->data_tail = take64(f);
		break;
	case 2: /* a small step, so heads stay plausible */
		c->data_head += (uint64_t)(int64_t)(int16_t)take16(f) * EVR_RECORD_ALIGN;
		break;
	case 3: { /* a raw header anywhere */
		uint64_t pos = (uint64_t)take16(f) * EVR_RECORD_ALIGN;
		uint8_t h[8];

		for (int i = 0; i < 8; i++)
			h[i] = take8(f);
		put_bytes(f, pos, h, sizeof(h));
		break;
	}
	case 4: { /* an honest record, published */
		uint8_t kind = take8(f);
		uint32_t len = take16(f);
		struct evr_record_header h = shape(f, kind, &len);
		uint64_t head = c->data_head;

		if (f->flags & FZ_BACKWARD) {
			head -= h.size;
			put_record(f, head, h, kind);
		} else {
			put_record(f, head, h, kind);
			head += h.size;
		}
		__atomic_store_n(&c->data_head, head, __ATOMIC_RELEASE);
		break;
	}
	case 5: { /* raw bytes anywhere */
		uint64_t pos = take16(f);
		uint8_t n = take8(f) % 64;

		for (uint8_t i = 0; i < n; i++)
			put(f, pos + i, take8(f));
		break;
	}
	case 6:
		c->data_tail = c->data_head;
		break;
	default: { /* one bit */
		uint64_t pos = take16(f);

		put(f, pos, (uint8_t)(f->buf[pos & f->mask] ^ (1u << (take8(f) % 8))));
		break;
	}
	}
}

/* Everything evr_reader_next() promised about one record, checked byte by byte. */
static void check_record(struct fz *f, const struct evr_record *rec, uint64_t head,
			 uint64_t *prev_dist, uint64_t *prev_pos, int first)
{
	const uint8_t *hdr = (const uint8_t *)rec->hdr, *data = rec->data;
	uint64_t off = rec->pos & f->mask, dist;
	struct evr_record_header h;
	uint32_t pad = 0, skip = sizeof(h);

	fz_check(rec->len <= EVR_PAYLOAD_MAX);
	fz_check(rec->pos % EVR_RECORD_ALIGN == 0);
	memcpy(&h, hdr, sizeof(h)); /* a bounce copy or our own buffer: ASan checks both */
	fz_check(h.size >= sizeof(h) && h.size % EVR_RECORD_ALIGN == 0 && h.size <= f->size);
	fz_check(h.type != EVR_TYPE_PAD);
	if (h.type >= EVR_TYPE_PAD)
		pad = h.misc & EVR_MISC_PAD_MASK;
	/* the payload follows the header, and a timestamp when the record carries one */
#ifdef EVR_MISC_TIME
	if (h.type >= EVR_TYPE_PAD && (h.misc & EVR_MISC_TIME) && h.size - sizeof(h) - pad >= 8)
		skip += sizeof(uint64_t);
#endif
	fz_check(data == hdr + skip);
	fz_check(rec->len + skip + pad == h.size);
	fz_check(rec->is_app == (h.type >= EVR_TYPE_APP));
	fz_check(rec->type == (rec->is_app ? h.type - EVR_TYPE_APP : h.type));
	if (h.type == EVR_TYPE_LOST && (h.misc & EVR_MISC_EVRING))
		fz_check(rec->len >= sizeof(struct evr_lost_body));

	/* Zero-copy records lie wholly inside our buffer; only wrapped ones may be bounced. */
	if (hdr >= f->buf && hdr < f->buf + f->buf_len) {
		fz_check(hdr == f->buf + off);
		fz_check(h.size <= f->buf_len - off);
	} else {
		fz_check(!(f->flags & FZ_MIRROR) && off + h.size > f->size);
	}

	/* The record lies in the batch: [tail, head) forward, [head, end) backward. */
	if (f->multi) {
		dist = first ? 0 : *prev_dist + (rec->pos - *prev_pos);
		fz_check(first || (rec->pos - *prev_pos) > 0);
		fz_check(dist < f->size);
	} else if (f->flags & FZ_BACKWARD) {
		uint64_t avail = 0 - head < f->size ? 0 - head : f->size;

		dist = rec->pos - head;
		fz_check(dist < f->size && h.size <= avail - dist);
		if (!first)
			fz_check(f->oldest ? dist < *prev_dist : dist > *prev_dist);
	} else {
		dist = head - rec->pos;
		fz_check(dist <= f->size && h.size <= dist);
		if (!first)
			fz_check(dist < *prev_dist);
	}
	*prev_dist = dist;
	*prev_pos = rec->pos;

	/* Nothing moved since the reader looked: what it hands out is what the ring holds. */
	for (uint32_t i = 0; i < sizeof(h); i++)
		fz_check(hdr[i] == f->buf[(off + i) & f->mask]);
	for (uint32_t i = 0; i < rec->len; i++)
		fz_check(data[i] == f->buf[(rec->pos + skip + i) & f->mask]);
}

/*
 * The two views of a real mirror are one memory; ours are two copies. The reader writes only
 * zeroes (a multi-producer reader clears what it consumed), through either view: carry them over.
 */
static void sync_mirror(struct fz *f)
{
	for (uint64_t i = 0; i < f->size; i++) {
		if (f->buf[i] != f->buf[i + f->size])
			f->buf[i] = f->buf[i + f->size] = 0;
	}
}

/* One begin/next.../end round; returns the records delivered. */
static uint64_t run_batch(struct fz *f, struct evr_reader *rd)
{
	uint64_t head = __atomic_load_n(&f->ctrl->data_head, __ATOMIC_ACQUIRE);
	uint64_t limit = f->size / EVR_RECORD_ALIGN + 1, calls = 0, n = 0, prev = 0, prev_pos = 0;
	uint64_t tail;
	struct evr_record rec;
	int ret;

	ret = evr_reader_begin(rd);
	fz_check(ret == -EBADMSG || (ret >= 0 && (uint64_t)ret <= f->size));
	for (;;) {
		fz_check(++calls <= limit);
		memset(&rec, 0, sizeof(rec));
		ret = evr_reader_next(rd, &rec);
		if (ret != 1)
			break;
		check_record(f, &rec, head, &prev, &prev_pos, n == 0);
		n++;
		if (f->flags & FZ_MIDBATCH)
			writer_op(f);
	}
	fz_check(ret == 0 || ret == -EBADMSG);
	if (ret == -EBADMSG) /* the rest of the batch is skipped */
		fz_check(evr_reader_next(rd, &rec) == 0);
	tail = f->ctrl->data_tail;
	fz_check(evr_reader_end(rd) == 0);
	/* a tail the reader publishes is aligned; a hostile one it left alone may not be */
	if (!(f->flags & FZ_BACKWARD) && f->ctrl->data_tail != tail)
		fz_check(f->ctrl->data_tail % EVR_RECORD_ALIGN == 0);
	if (f->flags & FZ_MIRROR)
		sync_mirror(f);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len)
{
	struct evr_reader_opts opts = { .sz = sizeof(opts) };
	struct evr_reader_stats st = { .sz = sizeof(st) };
	uint8_t pre[FZ_PREAMBLE] = { 0 };
	struct evr_reader *rd = NULL;
	struct fz f = { 0 };
	uint64_t records = 0;
	unsigned int batches;
	size_t off, n;
	int ret;

	memcpy(pre, in, len < sizeof(pre) ? len : sizeof(pre));
	f.size = 64ull << (pre[0] % FZ_SIZE_CODES);
	f.mask = f.size - 1;
	f.flags = pre[1];
	batches = 1 + pre[2] % FZ_MAX_BATCHES;
	f.buf_len = (f.flags & FZ_MIRROR) ? 2 * f.size : f.size;

	f.ctrl = calloc(1, FZ_CTRL_SIZE);
	f.buf = calloc(1, f.buf_len);
	if (!f.ctrl || !f.buf)
		goto out;
	off = sizeof(pre);
	n = len > off ? len - off : 0;
	memcpy(f.ctrl, in + off, n < FZ_CTRL_SIZE ? n : FZ_CTRL_SIZE);
	off += FZ_CTRL_SIZE;
	n = len > off ? len - off : 0;
	memcpy(f.buf, in + off, n < f.size ? n : f.size);
	if (f.flags & FZ_MIRROR)
		memcpy(f.buf + f.size, f.buf, f.size);
	off += f.size;
	f.in = in;
	f.in_len = len;
	f.in_pos = len > off ? off : len;

	opts.flags = (f.flags & FZ_OLDEST) ? EVR_READ_OLDEST_FIRST : 0;
	f.oldest = (f.flags & FZ_OLDEST) && !(f.flags & FZ_NULL_OPTS);
#ifdef EVR_KIND_MPSC
	f.multi = (f.flags & FZ_MIRROR) && !(f.flags & FZ_BACKWARD) &&
		  f.ctrl->kind == EVR_KIND_MPSC;
#endif
	ret = evr_reader_create_raw(f.ctrl, f.buf, f.size, f.flags & FZ_MIRROR,
				    f.flags & FZ_BACKWARD, (f.flags & FZ_NULL_OPTS) ? NULL : &opts,
				    &rd);
	fz_check(ret == 0 && rd);

	for (unsigned int b = 0; b < batches; b++) {
		if (b) {
			for (unsigned int k = take8(&f) % 4; k; k--)
				writer_op(&f);
		}
		records += run_batch(&f, rd);
	}
	fz_check(evr_reader_get_stats(rd, &st) == 0);
	fz_check(st.records == records);
	fz_check(st.batches == batches);
#ifdef EVR_FUZZ_REPLAY
	fz_records += st.records;
	fz_bad += st.bad_headers;
#endif
out:
	evr_reader_destroy(rd);
	free(f.buf);
	free(f.ctrl);
	return 0;
}
