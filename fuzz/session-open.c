// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: arbitrary bytes as a session object. Opening must fail cleanly or give
 * rings every reader can drain without reading outside them. Single-threaded; one memfd reused.
 *
 * Input: le32 object size (mod 4 MiB + 1), u8 flags (1: also open as writer and write a few
 * records, 2: read overwrite rings oldest first), then patches: le32 offset, le16 length, bytes.
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

#define SO_MAX_SIZE (4u << 20)
#define SO_MAX_RINGS 64u

#define SO_CHECK(c)                                                                              \
	do {                                                                                     \
		if (!(c)) {                                                                      \
			fprintf(stderr, "session-open: %s:%d: %s\n", __FILE__, __LINE__, #c);    \
			abort();                                                                 \
		}                                                                                \
	} while (0)

static int so_fd = -1;

static uint32_t so_le(const uint8_t *p, size_t n)
{
	uint32_t v = 0;

	for (size_t i = 0; i < n; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

/* Drain a few batches of one ring; every record must lie inside its data area. */
static void so_read_ring(struct evr_ring *r, uint32_t flags)
{
	EVR_OPTS(evr_reader_opts, ro, .flags = (flags & 2) ? EVR_READ_OLDEST_FIRST : 0);
	const struct evr_ctrl *c = evr_ring_get_ctrl(r);
	const uint8_t *lo, *hi;
	struct evr_reader *rd;
	struct evr_record rec;
	uint64_t size = c->data_size, sum = 0;

	lo = (const uint8_t *)c + c->data_offset;
	hi = lo + 2 * size;
	if (!(c->flags & EVR_CTRL_BACKWARD))
		ro.flags = 0;
	if (evr_reader_create(r, &ro, &rd))
		return;
	for (int b = 0; b < 3; b++) {
		uint64_t calls = 0;
		int n = evr_reader_begin(rd);

		SO_CHECK(n >= 0 ? (uint64_t)n <= size : n == -EBADMSG);
		while ((n = evr_reader_next(rd, &rec)) == 1) {
			const uint8_t *h = (const uint8_t *)rec.hdr, *d = rec.data;

			SO_CHECK(++calls <= size / 8);
			SO_CHECK(h >= lo && d >= h + 8 && d + rec.len <= h + rec.hdr->size &&
				 h + rec.hdr->size <= hi);
			for (uint32_t i = 0; i < rec.len; i++)
				sum += d[i];
		}
		SO_CHECK(n == 0 || n == -EBADMSG);
		SO_CHECK(evr_reader_end(rd) == 0);
		if (!(c->flags & EVR_CTRL_BACKWARD)) {
			/* the page's flags are informational; the directory's mode rules */
			n = evr_reader_wait(rd, 0);
			SO_CHECK(n >= 0 || n == -EBADMSG || n == -EOPNOTSUPP);
		}
	}
	(void)sum;
	evr_reader_destroy(rd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evr_session *s;
	uint32_t osize, flags, oflags, nr;
	size_t at = 5;
	int err;

	if (size < 5)
		return 0;
	if (so_fd < 0) {
		so_fd = memfd_create("fuzz-session", MFD_CLOEXEC);
		if (so_fd < 0)
			abort();
	}
	osize = so_le(data, 4) % (SO_MAX_SIZE + 1);
	flags = data[4];
	if (ftruncate(so_fd, 0) || ftruncate(so_fd, osize))
		abort();
	while (at + 6 <= size) {
		uint32_t off = so_le(data + at, 4), len = so_le(data + at + 4, 2);

		at += 6;
		if (len > size - at)
			len = (uint32_t)(size - at);
		if (osize && len) {
			off %= osize;
			if (len > osize - off)
				len = osize - off;
			if (pwrite(so_fd, data + at, len, off) != (ssize_t)len)
				abort();
		}
		at += len;
	}
	oflags = EVR_SESSION_READER | ((flags & 1) ? EVR_SESSION_WRITER : 0);
	err = evr_session_open_fd(so_fd, oflags, &s);
	if (err) {
		SO_CHECK(err < 0);
		return 0;
	}
	nr = (uint32_t)evr_session_get_nr_rings(s);
	SO_CHECK(nr >= 1 && nr <= EVR_SESSION_MAX_RINGS);
	for (uint32_t i = 0; i < nr && i < SO_MAX_RINGS; i++) {
		struct evr_ring *r;

		SO_CHECK(evr_session_get_ring(s, i, &r) == 0);
		if (flags & 1) {
			static const uint8_t payload[300];

			for (uint32_t k = 0; k < 8; k++) {
				err = evr_ring_write(r, k, payload, (k * 37u) % sizeof(payload));
				SO_CHECK(err == 0 || err == -ENOSPC || err == -ESHUTDOWN ||
					 err == -EDEADLK || err == -EMSGSIZE);
			}
			evr_ring_flush(r);
		}
		so_read_ring(r, flags);
	}
	evr_session_close(s);
	return 0;
}
