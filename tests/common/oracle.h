/* SPDX-License-Identifier: MIT */
/*
 * The stress oracle (the kernel ring-buffer self-test's idea): writers emit seeded payloads, a
 * reader re-derives each one byte for byte, checks per-stream sequences, data_head monotonicity
 * and, at the end, exact conservation. Writer helpers are async-signal-safe; the checker is not.
 */
#ifndef EVR_TEST_ORACLE_H
#define EVR_TEST_ORACLE_H

#include <stdint.h>

#include "evring.h"

/*
 * Every payload starts with this header; the rest is derived from (seed, stream, seq), and so
 * is the length. A stream is one (writer, nest level) pair: its records are reserved one after
 * another, so the reader must see its sequence numbers strictly increasing.
 */
struct t_payload_hdr {
	uint32_t stream;
	uint32_t len; /* whole payload, header included */
	uint64_t seq;
};

#define T_PAYLOAD_MIN ((uint32_t)sizeof(struct t_payload_hdr))

/* Length profile: most records in [MIN, small_max], one in large_every up to large_max. */
struct t_lenmix {
	uint32_t small_max;
	uint32_t large_max;
	uint32_t large_every; /* 0: never large */
};

/* The payload length of record @seq of @stream. Context: async-signal-safe. */
uint32_t t_payload_len(const struct t_lenmix *m, uint64_t seed, uint32_t stream, uint64_t seq);

/* Fill @len bytes at @buf (len >= T_PAYLOAD_MIN). Context: async-signal-safe. */
void t_payload_fill(void *buf, uint32_t len, uint64_t seed, uint32_t stream, uint64_t seq);

/*
 * Compare @len bytes at @buf with the payload of (seed, stream, seq).
 * Return: -1 if they match, else the offset of the first byte that differs.
 */
long t_payload_diff(const void *buf, uint32_t len, uint64_t seed, uint32_t stream, uint64_t seq);

/*
 * Writer-side accounting of one stream; touched only by the nest level that owns the stream, so
 * plain fields are enough (read by other threads only after a join).
 */
struct t_wstream {
	uint64_t next_seq; /* the sequence number the next attempt carries */
	uint64_t attempted; /* records committed or refused with -ENOSPC */
	uint64_t lost; /* of which -ENOSPC */
	uint64_t discarded; /* reservations given back (their seq is reused, not counted) */
};

/*
 * Account for one attempt of @w that ended with @err (0 or -ENOSPC advance the sequence).
 * Return: 0, or @err when it is an error the stress does not allow.
 * Context: async-signal-safe.
 */
int t_wstream_done(struct t_wstream *w, int err);

/* Per-stream reader-side state. */
struct t_rstream {
	uint64_t next; /* lowest sequence number the next record may carry */
	uint64_t read;
	uint64_t gaps; /* sequence numbers skipped so far */
};

/* The reader-side checker of one ring. */
struct t_oracle {
	uint64_t seed;
	uint64_t ring_id;
	struct t_lenmix mix;
	uint32_t nr_streams;
	struct t_rstream *s;
	uint64_t read; /* application records checked */
	uint64_t lost; /* sum of the LOST records' counts */
	uint64_t lost_records;
	uint64_t head_max; /* largest data_head seen */
	uint64_t head_samples;
	int failed;
	char what[768]; /* the first violation, for the report */
};

int t_oracle_init(struct t_oracle *o, uint64_t seed, uint64_t ring_id, uint32_t nr_streams,
		  const struct t_lenmix *mix);
void t_oracle_fini(struct t_oracle *o);

/*
 * Check one record from evr_reader_next(): a LOST record (counted) or an application record
 * whose id is its stream. Return: 0, or -1 with o->what describing the first violation.
 */
int t_oracle_record(struct t_oracle *o, const struct evr_record *rec);

/* data_head as seen at @where: it must never go back. Return: 0 or -1 as above. */
int t_oracle_head(struct t_oracle *o, uint64_t head, const char *where);

/*
 * Exact conservation at the end, once the writer flushed and the reader drained: per stream
 * attempted == read + lost by the writer; in total the LOST records' sum == records lost == the
 * sequence gaps the reader saw. @w holds the writer's o->nr_streams streams.
 * Return: 0 or -1 as above.
 */
int t_oracle_conserve(struct t_oracle *o, const struct t_wstream *w);

#endif
