// SPDX-License-Identifier: MIT
/*
 * The stress oracle's out-of-line half: seeded payloads (writer side, async-signal-safe) and the
 * checker a single reader thread runs over each ring it drains.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oracle.h"
#include "test.h"

/* One key per record; every payload word and the length are derived from it. */
static inline uint64_t payload_key(uint64_t seed, uint32_t stream, uint64_t seq)
{
	return t_mix(seed ^ t_mix(((uint64_t)stream << 48) ^ seq));
}

uint32_t t_payload_len(const struct t_lenmix *m, uint64_t seed, uint32_t stream, uint64_t seq)
{
	uint64_t r = t_mix(payload_key(seed, stream, seq) ^ 0x6c656e677468ull);
	uint32_t max = m->small_max;

	if (m->large_every && (r & 0xffff) % m->large_every == 0)
		max = m->large_max;
	if (max <= T_PAYLOAD_MIN)
		return T_PAYLOAD_MIN;
	return T_PAYLOAD_MIN + (uint32_t)((r >> 16) % (max - T_PAYLOAD_MIN + 1));
}

void t_payload_fill(void *buf, uint32_t len, uint64_t seed, uint32_t stream, uint64_t seq)
{
	struct t_payload_hdr h = { .stream = stream, .len = len, .seq = seq };
	uint64_t key = payload_key(seed, stream, seq);
	uint8_t *p = buf;
	uint32_t i;

	memcpy(p, &h, sizeof(h));
	for (i = sizeof(h); i + 8 <= len; i += 8) {
		uint64_t w = t_mix(key + i);

		memcpy(p + i, &w, 8);
	}
	if (i < len) {
		uint64_t w = t_mix(key + i);

		memcpy(p + i, &w, len - i);
	}
}

long t_payload_diff(const void *buf, uint32_t len, uint64_t seed, uint32_t stream, uint64_t seq)
{
	struct t_payload_hdr h = { .stream = stream, .len = len, .seq = seq };
	uint64_t key = payload_key(seed, stream, seq);
	const uint8_t *p = buf;
	uint8_t want[8];
	uint32_t i, n;

	for (i = 0; i < sizeof(h) && i < len; i++)
		if (p[i] != ((const uint8_t *)&h)[i])
			return i;
	for (i = sizeof(h); i < len; i += 8) {
		uint64_t w = t_mix(key + i);

		n = len - i < 8 ? len - i : 8;
		memcpy(want, &w, 8);
		if (memcmp(p + i, want, n))
			for (uint32_t k = 0; k < n; k++)
				if (p[i + k] != want[k])
					return i + k;
	}
	return -1;
}

int t_wstream_done(struct t_wstream *w, int err)
{
	if (err && err != -ENOSPC)
		return err;
	w->next_seq++;
	w->attempted++;
	if (err)
		w->lost++;
	return 0;
}

int t_oracle_init(struct t_oracle *o, uint64_t seed, uint64_t ring_id, uint32_t nr_streams,
		  const struct t_lenmix *mix)
{
	memset(o, 0, sizeof(*o));
	o->seed = seed;
	o->ring_id = ring_id;
	o->mix = *mix;
	o->nr_streams = nr_streams;
	o->s = calloc(nr_streams, sizeof(*o->s));
	return o->s ? 0 : -ENOMEM;
}

void t_oracle_fini(struct t_oracle *o)
{
	free(o->s);
	o->s = NULL;
}

__attribute__((format(printf, 2, 3))) static int violation(struct t_oracle *o, const char *fmt,
							    ...)
{
	va_list ap;
	int n;

	if (o->failed++)
		return -1; /* keep the first one */
	n = snprintf(o->what, sizeof(o->what), "seed 0x%016" PRIx64 " ring %" PRIu64 ": ", o->seed,
		     o->ring_id);
	va_start(ap, fmt);
	vsnprintf(o->what + n, sizeof(o->what) - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static int check_lost(struct t_oracle *o, const struct evr_record *rec)
{
	struct evr_lost_body b;

	if (!(rec->hdr->misc & EVR_MISC_EVRING) || rec->len < sizeof(b))
		return violation(o, "LOST record at pos %" PRIu64 " without evring body (len %u)",
				 rec->pos, rec->len);
	memcpy(&b, rec->data, sizeof(b));
	if (b.lost == 0 || b.id != o->ring_id || (b.causes & ~(uint32_t)EVR_LOST_FULL) ||
	    !b.causes || b.reserved)
		return violation(o,
				 "bad LOST record at pos %" PRIu64 ": lost %" PRIu64 " id %" PRIu64
				 " causes 0x%x reserved %u",
				 rec->pos, b.lost, b.id, b.causes, b.reserved);
	o->lost += b.lost;
	o->lost_records++;
	return 0;
}

int t_oracle_record(struct t_oracle *o, const struct evr_record *rec)
{
	struct t_payload_hdr h;
	struct t_rstream *s;
	uint32_t want_len;
	long off;

	if (!rec->is_app) {
		if (rec->type == EVR_TYPE_LOST)
			return check_lost(o, rec);
		return violation(o, "unexpected record type %u at pos %" PRIu64, rec->type,
				 rec->pos);
	}
	if (rec->len < sizeof(h))
		return violation(o, "record at pos %" PRIu64 " (id %u) too short: %u bytes",
				 rec->pos, rec->type, rec->len);
	memcpy(&h, rec->data, sizeof(h));
	if (h.stream >= o->nr_streams || h.stream != rec->type)
		return violation(o, "record at pos %" PRIu64 ": id %u, stream field %u (of %u)",
				 rec->pos, rec->type, h.stream, o->nr_streams);
	s = &o->s[h.stream];
	if (h.seq < s->next)
		return violation(o,
				 "stream %u: seq %" PRIu64 " at pos %" PRIu64
				 " after seq %" PRIu64 " (expected >= %" PRIu64 ")",
				 h.stream, h.seq, rec->pos, s->next - 1, s->next);
	want_len = t_payload_len(&o->mix, o->seed, h.stream, h.seq);
	if (rec->len != want_len || h.len != want_len)
		return violation(o,
				 "stream %u seq %" PRIu64 " at pos %" PRIu64
				 ": length %u (header says %u), expected %u",
				 h.stream, h.seq, rec->pos, rec->len, h.len, want_len);
	off = t_payload_diff(rec->data, rec->len, o->seed, h.stream, h.seq);
	if (off >= 0) {
		uint8_t *want = malloc(want_len);
		unsigned int exp = 0x100; /* "unknown" if out of memory */

		if (want) {
			t_payload_fill(want, want_len, o->seed, h.stream, h.seq);
			exp = want[off];
			free(want);
		}
		return violation(o,
				 "stream %u seq %" PRIu64 " at pos %" PRIu64
				 ": payload byte %ld of %u is 0x%02x, expected 0x%02x",
				 h.stream, h.seq, rec->pos, off, rec->len,
				 ((const uint8_t *)rec->data)[off], exp);
	}
	s->gaps += h.seq - s->next;
	s->next = h.seq + 1;
	s->read++;
	o->read++;
	return 0;
}

int t_oracle_head(struct t_oracle *o, uint64_t head, const char *where)
{
	o->head_samples++;
	if (head < o->head_max)
		return violation(o,
				 "data_head went backwards (%s): 0x%" PRIx64 " after 0x%" PRIx64
				 " (by %" PRIu64 " bytes)",
				 where, head, o->head_max, o->head_max - head);
	o->head_max = head;
	return 0;
}

int t_oracle_conserve(struct t_oracle *o, const struct t_wstream *w)
{
	uint64_t attempted = 0, wlost = 0, gaps = 0;

	for (uint32_t i = 0; i < o->nr_streams; i++) {
		const struct t_rstream *s = &o->s[i];

		if (w[i].next_seq < s->next)
			return violation(o,
					 "stream %u: read seq %" PRIu64 " never written (%" PRIu64
					 " attempted)",
					 i, s->next - 1, w[i].next_seq);
		if (w[i].attempted != s->read + w[i].lost)
			return violation(o,
					 "stream %u: attempted %" PRIu64 " != read %" PRIu64
					 " + lost %" PRIu64,
					 i, w[i].attempted, s->read, w[i].lost);
		attempted += w[i].attempted;
		wlost += w[i].lost;
		gaps += s->gaps + (w[i].next_seq - s->next); /* the trailing gap */
	}
	if (attempted != o->read + o->lost)
		return violation(o,
				 "conservation: attempted %" PRIu64 " != read %" PRIu64
				 " + lost (LOST records) %" PRIu64,
				 attempted, o->read, o->lost);
	if (gaps != o->lost || wlost != o->lost)
		return violation(o,
				 "conservation: sequence gaps %" PRIu64
				 ", writers' -ENOSPC %" PRIu64 ", LOST records' sum %" PRIu64,
				 gaps, wlost, o->lost);
	return 0;
}
