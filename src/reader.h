/* SPDX-License-Identifier: MIT */
/*
 * The reader's private state, shared by reader.c (batches) and wait.c (blocking, poll fd).
 * One reader per ring; no field here is ever seen by another process.
 */
#ifndef EVR_READER_H
#define EVR_READER_H

#include "internal.h"

struct evr_reader {
	struct evr_ctrl *ctrl;
	const uint8_t *data;
	uint64_t size;
	uint64_t mask;
	int mirror;
	int backward;
	int multi; /* a multi-producer ring: committed records are found by their headers */
	int simple; /* mirrored forward single-writer ring: evr_reader_next()'s fast path applies */
	uint32_t flags;

	uint64_t tail; /* private read position; published as data_tail at batch end */
	uint64_t pub_tail; /* multi: the last published data_tail; [pub_tail, tail) is zeroed */
	uint64_t head; /* data_head as read at batch start */
	uint64_t end; /* backward: where the snapshot stops */
	int broken; /* the rest of this batch is skipped */

	uint32_t *order; /* backward, oldest first: record offsets from head, newest first */
	uint32_t nr_order;
	uint32_t next_order;

	struct evr_ring *ring; /* the in-process handle, when made by evr_reader_create() */
	uint32_t flush_seen; /* flush_seq at the last return of evr_reader_wait() */

	struct evr_clock_params clk; /* the ring's stamp conversion, copied at batch start */

	uint8_t *bounce; /* one record, for records that wrap without a mirror */
	struct evr_reader_stats st;
};

#endif
