/* SPDX-License-Identifier: MIT */
/*
 * The flight recorder's private state and the helpers its two files share: src/flight.c (geometry,
 * binding, the writer) and src/flightread.c (the swapping reader, snapshots, post-mortem).
 * Never installed.
 */
#ifndef EVR_FLIGHT_H
#define EVR_FLIGHT_H

#include "atomic.h"
#include "internal.h"

#define HDR ((uint32_t)sizeof(struct evr_flight_page))
#define RHDR ((uint32_t)sizeof(struct evr_record_header))
#define PUSH_LEVELS 0xffull /* fc->pushing: levels inside a push now ... */
#define PUSH_BEGUN (1ull << 8) /* ... and, above, the pushes begun */

/*
 * One handle may serve a writer and a reader on two CPUs (one process, both roles): the three
 * parts below sit on cache lines of their own, so the reader's per-record stores (rread, the
 * counters) do not take the line of the writer's per-record state, nor of what both only read.
 */
struct evr_flight {
	/*
	 * Writer context, touched by the thread and its signal handlers with the local_* ops:
	 * every step a handler may interrupt is one instruction, as the kernel's local_t.
	 */
	uint64_t committing __attribute__((aligned(64))); /* depth: only 1 moves the commit page */
	uint64_t commits; /* reservations started: a commit re-checks it */
	uint64_t tail; /* page reserved on */
	uint64_t commit; /* commit page */
	uint64_t overrun, lost, written; /* published to the shared counters */
	uint64_t *wr; /* [nr] generation, entries, reserve offset (OFF_MASK above) */
	uint64_t *seq; /* [nr] sequence stored in the descriptor */
	uint64_t *missed; /* [nr] entries pushed out just before the page */
	uint32_t *push_ln; /* [nr] link after the page being pushed from page i, as it was */

	/* reader */
	uint32_t rpage __attribute__((aligned(64))); /* the page it owns */
	uint32_t rread; /* bytes of it consumed */
	uint32_t rcommit; /* its commit as last loaded (at most dsize): read up to it first */
	uint64_t last_overrun, last_lost;
	uint32_t head_hint;
	int reader; /* the reader role is taken */
	uint64_t st_records, st_pages, st_bad, st_read;
	uint8_t lost_rec[RHDR + sizeof(struct evr_lost_body)];
	uint64_t pend_ov, pend_lost;
	int lost_pending;
	uint8_t *snap; /* snapshot copy: nr pages */

	/* immutable after bind */
	struct evr_ctrl *ctrl __attribute__((aligned(64)));
	struct evr_flight_ctrl *fc;
	struct evr_flight_desc *desc;
	uint8_t *pages;
	uint32_t nr; /* pages, spare included */
	uint32_t psize, dsize; /* page size; data bytes per page */
	uint32_t pshift; /* log2(psize) */
	uint32_t fast_lim; /* payloads below it may take the fast path: 0 if it is closed */
	uint32_t flags; /* EVR_CTRL_* */
	int can_write, can_read;
	const struct evr_clock_params *clk;
};

static inline struct evr_flight_page *page(const struct evr_flight *f, uint32_t i)
{
	return (struct evr_flight_page *)(f->pages + ((size_t)i << f->pshift));
}

static inline uint8_t *page_data(const struct evr_flight *f, uint32_t i)
{
	return f->pages + ((size_t)i << f->pshift) + HDR;
}

/* The next page after @i, from the shared link; nr (invalid) if the link is out of range. */
static inline uint32_t next_of(const struct evr_flight *f, uint32_t i)
{
	uint32_t n = EVR_FL_TARGET(READ_ONCE(f->desc[i].link));

	return n < f->nr ? n : f->nr;
}

#endif /* EVR_FLIGHT_H */
