// SPDX-License-Identifier: MIT
/*
 * The multi-producer ring's writer side: lock-free reserve by cmpxchg on prod_head, a header
 * written BUSY at once and committed by one release store. Any number of threads and their
 * signal handlers may write at once; the single reader is in reader.c (next_multi()).
 *
 * Invariants the reader relies on (docs/ordering.md, "Multi-producer ring"):
 *  - every byte in [data_tail, data_tail + size) that no writer has reserved reads as zero: the
 *    area starts zeroed and the reader zeroes what it consumed before publishing data_tail (D);
 *  - a reserved record's header word is 0 until its writer stores it BUSY, and BUSY until the
 *    writer's release store (E) commits it; the reader stops at the first 0 or BUSY header.
 * So a writer stalled between reserve and commit delays the records after it, never corrupts.
 */
#include <errno.h>
#include <string.h>

#include "atomic.h"
#include "internal.h"

static inline uint64_t hdr_word(uint32_t type, uint32_t misc, uint32_t size)
{
	struct evr_record_header h = { type, (uint16_t)misc, (uint16_t)size };
	uint64_t w;

	memcpy(&w, &h, sizeof(w));
	return w;
}

/* Give a reservation's header its final value: E, the commit. */
static inline void publish(uint64_t *hdr, uint64_t w)
{
#ifdef EVR_BROKEN_MPSC_RELAXED_COMMIT /* must-fail control: TSAN must report the reader's reads */
	__atomic_store_n(hdr, w, __ATOMIC_RELAXED);
#else
	store_release(hdr, w); /* E: pairs with F, the reader's acquire load in next_multi() */
#endif
}

/*
 * The wake check of a commit ending at @end, in the order of evr__wake_check_spsc(): one look
 * at reader_waiting, which the reader writes only when it goes to sleep, and nothing more while
 * nobody waits. The first version compared @end with mp_wake_tail first: that word lives in the
 * prod_head line, which the other writers' cmpxchg takes away between our reserve and our
 * commit, so every commit missed the cache on it (W3 evring-shared 16 B: 8.4-8.8 Mrec/s then,
 * 11.6-12.5 with this order).
 *
 * W: our commit (E) and our reservation before it come before our load of reader_waiting;
 * pairs with R in evr_reader_wait(), which stores reader_waiting, runs membarrier() and then
 * loads prod_head: either we see the reader waiting, or it sees our reservation in prod_head,
 * counts our bytes as unread and does not sleep past them (docs/ordering.md 7.6). A process
 * whose membarrier registration failed fences itself (evr__writer_fence): it keeps the old
 * order, so that it pays its full barrier only once the reader is a watermark behind.
 *
 * While a reader waits, evr__wake_check() measures the lag (src/wait.c).
 */
static inline void maybe_wake(struct evr_ring *r, uint64_t end)
{
	if (likely(!evr__writer_fence)) {
		barrier(); /* W: E before the reader_waiting load; pairs with R in evr_reader_wait() */
		if (likely(!READ_ONCE(r->ctrl->reader_waiting)))
			return;
	}
	evr__wake_check(r, end); /* W again in wake_now(), a full barrier if self-fenced */
}

int evr__mp_reserve(struct evr_ring *r, uint32_t type, size_t len, struct evr_slot *s, int count)
{
	struct evr_ctrl *c = r->ctrl;
	uint64_t head, tail, need, pend;
	uint32_t size;
	int reloads = 0, fresh = 0;
	uint8_t *p;

	if (unlikely(len > EVR_PAYLOAD_MAX ||
		     evr__record_size(len) + EVR_LOST_SIZE > r->data_size)) {
		__atomic_fetch_add(&c->err_msgsize, 1, __ATOMIC_RELAXED);
		return -EMSGSIZE;
	}
	size = evr__record_size(len);
	if (unlikely(READ_ONCE(c->disabled))) {
		__atomic_fetch_add(&c->err_shutdown, 1, __ATOMIC_RELAXED);
		return -ESHUTDOWN;
	}
	head = READ_ONCE(c->prod_head);
	/*
	 * The tail the writers share in the prod_head line, so that a reservation need not
	 * touch the reader's line. Acquire: pairs with the release below, made by a writer that
	 * loaded this value from data_tail with A; the reader's zeroing before its D is thus
	 * ours too. Any value a writer stored is a tail the reader published, so it can only be
	 * behind: a stale one makes us look at data_tail sooner, never take unread space.
	 */
	tail = load_acquire(&c->mp_tail_cache);
	for (;;) {
		pend = READ_ONCE(c->mp_lost);
		need = size + (pend ? EVR_LOST_SIZE : 0);
		if (unlikely(!fresh &&
			     (head - tail > r->data_size || need > r->data_size - (head - tail)))) {
			/* A: pairs with D in end_multi(): the space we take was read and zeroed */
			tail = load_acquire(&c->data_tail);
			/* release: pairs with the acquire load of the cache above, in any writer */
			store_release(&c->mp_tail_cache, tail);
			fresh = 1;
		}
		/*
		 * Our head may be older than the tail: others (a handler of ours, too) reserved
		 * and the reader consumed since we read it. Read it again (a few times: handlers
		 * may keep landing here); a tail that stays ahead is a hostile reader's, and we
		 * refuse rather than spin.
		 */
		if (unlikely((int64_t)(tail - head) > 0)) {
			/* a head read after this tail is at least this tail, unless hostile */
			head = READ_ONCE(c->prod_head);
			if (unlikely((int64_t)(tail - head) > 0 && ++reloads > 16))
				return -ENOSPC;
			continue;
		}
		if (unlikely(head - tail > r->data_size || need > r->data_size - (head - tail))) {
			if (count) {
				__atomic_fetch_add(&c->mp_lost, 1, __ATOMIC_RELAXED);
				__atomic_fetch_add(&c->lost_full, 1, __ATOMIC_RELAXED);
			}
			return -ENOSPC;
		}
		/*
		 * relaxed: prod_head orders nothing by itself; the reader never reads it, and the
		 * space it hands out was made safe by A. A failed cmpxchg reloads head.
		 */
		if (cmpxchg_relaxed(&c->prod_head, &head, head + need))
			break;
		fresh = 0; /* "full" is only ever decided on a data_tail loaded after this head */
	}
	p = r->data + (head & r->mask);
	if (pend) {
		uint64_t n = __atomic_exchange_n(&c->mp_lost, 0, __ATOMIC_RELAXED);
		struct evr_lost_body b = { .id = c->ring_id, .lost = n, .first_pos = head,
					   .last_pos = head, .causes = EVR_LOST_FULL };

		if (n) {
			memcpy(p + sizeof(struct evr_record_header), &b, sizeof(b));
			publish((uint64_t *)p,
				hdr_word(EVR_TYPE_LOST, EVR_MISC_EVRING, EVR_LOST_SIZE));
		} else {
			publish((uint64_t *)p, hdr_word(EVR_TYPE_PAD, 0, EVR_LOST_SIZE));
		}
		head += EVR_LOST_SIZE;
		/*
		 * Address the record through the first view, as the reader does: the bytes are
		 * the same either way, but the compiler and ThreadSanitizer only relate accesses
		 * made through the same address.
		 */
		p = r->data + (head & r->mask);
	}
	/* relaxed: the reader treats BUSY like 0, so this store needs no order of its own */
	WRITE_ONCE(*(uint64_t *)p,
		   hdr_word(type,
			    EVR_MISC_BUSY |
				    (uint32_t)(size - sizeof(struct evr_record_header) - len),
			    size));
	s->hdr = p;
	s->data = p + sizeof(struct evr_record_header);
	s->len = (uint32_t)len;
	s->size = size;
	s->pos = head;
	s->wrap = 0;
	s->level = type; /* remembered for the commit word */
	if (size - sizeof(struct evr_record_header) != len)
		memset((uint8_t *)s->data + len, 0, size - sizeof(struct evr_record_header) - len);
	return 0;
}

int evr__mp_finish(struct evr_ring *r, struct evr_slot *s, int discard)
{
	uint32_t pad = s->size - (uint32_t)sizeof(struct evr_record_header) - s->len;
	uint32_t misc = pad | (discard ? EVR_MISC_DISCARD : 0) | (s->wrap & EVR_MISC_TIME);

	uint64_t busy = hdr_word(s->level, EVR_MISC_BUSY | pad, s->size);

	if (unlikely(!s->hdr || (uint8_t *)s->hdr != r->data + (s->pos & r->mask)))
		return -EINVAL;
	/*
	 * Only an open reservation may be finished: committed once already, its header is no
	 * longer BUSY (or was consumed and zeroed, or reused by another writer's reservation,
	 * whose BUSY word would have to match ours exactly to fool this).
	 */
	if (unlikely(READ_ONCE(*(uint64_t *)s->hdr) != busy))
		return -EINVAL;
	publish(s->hdr, hdr_word(s->level, misc, s->size));
	maybe_wake(r, s->pos + s->size);
	return 0;
}
