// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: a reader that owns the control page writes whatever it likes into it
 * between the writer's calls; the writer must stay inside its mapping and every call return.
 * Single-threaded; one ring per input, with PROT_NONE guard pages around it where possible.
 *
 * Input: u8 ring shape (bit 0 mirror, bit 1 overwrite, bits 2-5 size), then ops: u8 opcode and
 * its arguments (little-endian, zero once the input runs out).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "evring.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define WC_MAX_OPS 4000
#define WC_SLOTS 12

#define WC_CHECK(c)                                                                              \
	do {                                                                                     \
		if (!(c)) {                                                                      \
			fprintf(stderr, "writer-ctrl: %s:%d: %s\n", __FILE__, __LINE__, #c);     \
			abort();                                                                 \
		}                                                                                \
	} while (0)

struct wc_in {
	const uint8_t *p;
	size_t n, at;
};

static uint64_t wc_get(struct wc_in *in, size_t bytes)
{
	uint64_t v = 0;

	for (size_t i = 0; i < bytes; i++, in->at++)
		if (in->at < in->n)
			v |= (uint64_t)in->p[in->at] << (8 * i);
	return v;
}

/* A PROT_NONE page at @at, if nothing is mapped there; returns it or NULL. */
static void *wc_guard(void *at, size_t page)
{
	void *g = mmap(at, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1,
		       0);

	if (g == MAP_FAILED)
		return NULL;
	if (g != at) {
		munmap(g, page); /* an old kernel took the hint only */
		return NULL;
	}
	return g;
}

static int wc_write_result(int err)
{
	return err == 0 || err == -ENOSPC || err == -EMSGSIZE || err == -EDEADLK ||
	       err == -ESHUTDOWN || err == -EINVAL;
}

static void wc_read(struct evr_reader *rd, const uint8_t *lo, const uint8_t *hi, int mirror,
		    uint64_t size)
{
	struct evr_record rec;
	uint64_t calls = 0, sum = 0;
	int n = evr_reader_begin(rd);

	WC_CHECK(n >= 0 ? (uint64_t)n <= size : n == -EBADMSG);
	while ((n = evr_reader_next(rd, &rec)) == 1) {
		const uint8_t *d = rec.data;

		WC_CHECK(++calls <= size / 8);
		WC_CHECK(rec.len <= EVR_PAYLOAD_MAX);
		if (mirror)
			WC_CHECK((const uint8_t *)rec.hdr >= lo && d + rec.len <= hi);
		for (uint32_t i = 0; i < rec.len; i++)
			sum += d[i]; /* a bounce buffer overrun shows under ASan */
	}
	WC_CHECK(n == 0 || n == -EBADMSG);
	evr_reader_end(rd);
	(void)sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wc_in in = { data, size, 0 };
	size_t page = (size_t)sysconf(_SC_PAGESIZE), span;
	uint32_t shape = (uint32_t)wc_get(&in, 1), nslots = 0;
	struct evr_slot slots[WC_SLOTS];
	struct evr_ring *r;
	struct evr_reader *rd = NULL;
	struct evr_ctrl *c;
	uint8_t *lo, *hi, *before, *after;
	uint64_t dsize = 1ull << (6 + (shape >> 2) % 11);
	int mirror = shape & 1, err;
	static uint8_t payload[EVR_PAYLOAD_MAX + 64];

	if (mirror && dsize < page)
		dsize = page;
	{
		EVR_OPTS(evr_ring_opts, o, .data_size = dsize,
			 .flags = (mirror ? EVR_RING_MIRROR : 0) |
				  ((shape & 2) ? EVR_RING_OVERWRITE : 0));

		if (evr_ring_create(&o, &r))
			return 0;
	}
	c = evr_ring_get_ctrl(r);
	lo = (uint8_t *)c + page;
	hi = lo + (mirror ? 2 : 1) * dsize;
	span = (size_t)(hi - (uint8_t *)c);
	before = wc_guard((uint8_t *)c - page, page);
	after = wc_guard((uint8_t *)c + span, page);
	if (shape & 0x40) {
		EVR_OPTS(evr_reader_opts, ro, .flags = (shape & 0x80) && (shape & 2) ?
							       EVR_READ_OLDEST_FIRST : 0);

		WC_CHECK(evr_reader_create(r, &ro, &rd) == 0);
	}
	for (int ops = 0; ops < WC_MAX_OPS && in.at < in.n; ops++) {
		uint32_t op = (uint32_t)wc_get(&in, 1) % 16;
		size_t len;

		switch (op) {
		case 0:
			c->data_tail = wc_get(&in, 8);
			break;
		case 1:
			c->data_tail = c->data_head + 8 * (int64_t)(int8_t)wc_get(&in, 1);
			break;
		case 2:
			c->paused = (uint32_t)wc_get(&in, 1);
			break;
		case 3:
			c->nest = (uint32_t)wc_get(&in, 1) % 12;
			break;
		case 4:
			c->watermark = wc_get(&in, 8);
			break;
		case 5:
			c->reader_waiting = (uint32_t)wc_get(&in, 4);
			break;
		case 6:
			c->disabled = (uint32_t)wc_get(&in, 1) % 3 == 2;
			break;
		case 7:
			c->data_head = wc_get(&in, 8);
			break;
		case 8:
		case 9:
			len = (size_t)wc_get(&in, 2);
			err = evr_ring_write(r, (uint32_t)wc_get(&in, 1), payload, len);
			WC_CHECK(wc_write_result(err));
			break;
		case 10:
			if (nslots == WC_SLOTS)
				break;
			len = (size_t)wc_get(&in, 2);
			err = evr_ring_reserve(r, 1, len, &slots[nslots]);
			WC_CHECK(wc_write_result(err));
			if (!err) {
				struct evr_slot *s = &slots[nslots++];

				WC_CHECK(s->len == len);
				if (mirror)
					WC_CHECK((uint8_t *)s->data >= lo &&
						 (uint8_t *)s->data + s->len <= hi);
				memset(s->data, 0xa5, s->len);
			}
			break;
		case 11:
		case 12:
			if (!nslots)
				break;
			nslots--;
			err = op == 11 ? evr_ring_commit(r, &slots[nslots]) :
					 evr_ring_discard(r, &slots[nslots]);
			WC_CHECK(err == 0 || err == -EINVAL);
			break;
		case 13:
			err = evr_ring_flush(r);
			WC_CHECK(err == 0 || err == 1 || err == -ENOSPC || err == -ESHUTDOWN ||
				 err == -EDEADLK);
			break;
		case 14:
			if (rd)
				wc_read(rd, lo, hi, mirror, dsize);
			break;
		default:
			c->nest = (uint32_t)wc_get(&in, 4);
			break;
		}
	}
	if (rd) {
		if (!(shape & 2)) {
			err = evr_reader_wait(rd, 0);
			WC_CHECK(err >= 0 || err == -EBADMSG);
		}
		evr_reader_destroy(rd);
	}
	evr_ring_destroy(r);
	if (before)
		munmap(before, page);
	if (after)
		munmap(after, page);
	return 0;
}
