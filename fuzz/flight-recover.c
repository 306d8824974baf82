// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: arbitrary bytes as the image of a session (a copy of its object) handed to
 * evr_flight_recover(). It must refuse or walk it without reading outside the image: every
 * record's payload is read byte by byte (ASan sees an overrun) and must lie inside the image or
 * the library's own copy; the counts must agree with the callback's. The bytes go once into an
 * exact-size 8-byte-aligned buffer and once into a page-aligned one, as a mapping would be.
 * Seeds: fuzz/corpus/flight-recover/, real sessions written by fuzz/gen-corpus.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evring.h"

#define FR_CHECK(c)                                                                              \
	do {                                                                                     \
		if (!(c)) {                                                                      \
			fprintf(stderr, "flight-recover: %s:%d: %s\n", __FILE__, __LINE__, #c);  \
			abort();                                                                 \
		}                                                                                \
	} while (0)

struct fr_walk {
	uint64_t records, app, sum;
	uint32_t last_ring;
};

static int fr_cb(const struct evr_record *rec, void *arg)
{
	struct fr_walk *w = arg;
	const volatile uint8_t *d = rec->data;

	FR_CHECK(rec->hdr && rec->data);
	FR_CHECK(rec->ring >= w->last_ring); /* ring by ring */
	w->last_ring = rec->ring;
	/* the header and the payload: every byte, so ASan sees a read past either */
	for (uint32_t i = 0; i < sizeof(*rec->hdr); i++)
		w->sum += ((const volatile uint8_t *)rec->hdr)[i];
	FR_CHECK(rec->len <= 65536);
	for (uint32_t i = 0; i < rec->len; i++)
		w->sum += d[i];
	if (rec->is_app)
		w->app++;
	w->records++;
	/* a callback may stop the walk; do it now and then, from the payload */
	return rec->len && d[0] == 0xa5 && (w->sum & 0xff) == 0x5a;
}

static void fr_run(const uint8_t *img, size_t len)
{
	struct evr_flight_stats st = { .sz = sizeof(st) };
	struct fr_walk w = { 0 };
	int n;

	n = evr_flight_recover(img, len, fr_cb, &w, &st);
	if (n < 0) {
		FR_CHECK(n == -EBADMSG || n == -EPROTO || n == -EINVAL || n == -ENOMEM);
		return;
	}
	FR_CHECK((uint64_t)n == w.records && st.records == w.records);
	FR_CHECK(st.rings <= EVR_SESSION_MAX_RINGS);
	/* a second walk without a callback finds the same, and a short stats struct is fine */
	{
		struct evr_flight_stats st2 = { .sz = sizeof(size_t) + sizeof(uint64_t) };

		FR_CHECK(evr_flight_recover(img, len, NULL, NULL, &st2) >= n);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uint8_t *buf;
	void *pbuf;

	if (size > (8u << 20))
		return 0;
	/* exact size, so a read one byte past the image is out of bounds */
	buf = malloc(size ? size : 1);
	FR_CHECK(buf);
	memcpy(buf, data, size);
	fr_run(buf, size);
	free(buf);
	/* page-aligned, the size rounded up to whole pages as the object of a session is */
	if (size && posix_memalign(&pbuf, page, (size + page - 1) / page * page) == 0) {
		size_t full = (size + page - 1) / page * page;

		memset(pbuf, 0, full);
		memcpy(pbuf, data, size);
		fr_run(pbuf, full);
		fr_run(pbuf, size);
		free(pbuf);
	}
	return 0;
}
