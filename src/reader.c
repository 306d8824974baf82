// SPDX-License-Identifier: MIT
/*
 * The validating reader of a single-writer ring: batches bounded by one read of data_head (C)
 * and one publication of data_tail (D), records handed out zero-copy or through a bounce buffer.
 * Nothing read from the ring is trusted. One reader per ring; it may run on any thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomic.h"
#include "internal.h"
#include "reader.h"

static int reader_init(struct evr_reader *rd, struct evr_ctrl *ctrl, void *data, uint64_t size,
		       bool mirror, bool backward, const struct evr_reader_opts *opts)
{
	rd->ctrl = ctrl;
	rd->data = data;
	rd->size = size;
	rd->mask = size - 1;
	rd->mirror = mirror;
	rd->backward = backward;
	rd->flags = opts ? opts->flags : 0;
	if (!mirror) {
		rd->bounce = malloc(size < EVR_RECORD_MAX ? size : EVR_RECORD_MAX);
		if (!rd->bounce)
			return -ENOMEM;
	}
	if (backward && (rd->flags & EVR_READ_OLDEST_FIRST)) {
		rd->order = malloc((size / EVR_RECORD_ALIGN) * sizeof(*rd->order));
		if (!rd->order)
			return -ENOMEM;
	}
	/* untrusted: a bad starting tail is caught (and resynchronised) by the first batch */
	rd->multi = !backward && mirror && READ_ONCE(ctrl->kind) == EVR_KIND_MPSC;
	rd->simple = mirror && !backward && !rd->multi;
	rd->tail = backward ? 0 : READ_ONCE(ctrl->data_tail);
	if (rd->multi)
		rd->tail &= ~(uint64_t)(EVR_RECORD_ALIGN - 1);
	rd->pub_tail = rd->tail;
	rd->flush_seen = READ_ONCE(ctrl->flush_seq);
	return 0;
}

static int check_opts(const struct evr_reader_opts *opts)
{
	if (!opts)
		return 0;
	if (opts->sz < sizeof(*opts) || opts->sz > 4096 || opts->pad ||
	    (opts->flags & ~EVR_READ_OLDEST_FIRST))
		return -EINVAL;
	for (size_t i = sizeof(*opts); i < opts->sz; i++)
		if (((const uint8_t *)opts)[i])
			return -EINVAL;
	return 0;
}

int evr_reader_create_raw(struct evr_ctrl *ctrl, void *data, uint64_t data_size, bool mirror,
			  bool backward, const struct evr_reader_opts *opts,
			  struct evr_reader **out)
{
	struct evr_reader *rd;
	int err;

	if (!ctrl || !data || !out || !evr__is_pow2(data_size) || data_size < EVR_DATA_MIN ||
	    data_size > EVR_DATA_MAX || check_opts(opts))
		return -EINVAL;
	/* lines of its own: the reader's stores (tail, per record) must not share a writer's */
	rd = evr__zalloc_lines(sizeof(*rd));
	if (!rd)
		return -ENOMEM;
	err = reader_init(rd, ctrl, data, data_size, mirror, backward, opts);
	if (err) {
		evr_reader_destroy(rd);
		return err;
	}
	*out = rd;
	return 0;
}

int evr_reader_create(struct evr_ring *r, const struct evr_reader_opts *opts,
		      struct evr_reader **out)
{
	int err;

	if (!r)
		return -EINVAL;
	err = evr_reader_create_raw(r->ctrl, r->data, r->data_size, r->flags & EVR_RING_MIRROR,
				    r->flags & EVR_RING_OVERWRITE, opts, out);
	if (!err) {
		(*out)->ring = r;
		WRITE_ONCE(r->ctrl->reader_pid, (uint32_t)getpid()); /* informational */
	}
	return err;
}

void evr_reader_destroy(struct evr_reader *rd)
{
	if (!rd)
		return;
	free(rd->bounce);
	free(rd->order);
	free(rd);
}

/* Give up on the rest of the batch: count it and restart from its end next time. */
static int corrupt(struct evr_reader *rd, uint64_t skipped)
{
	rd->st.bad_headers++;
	rd->st.bytes_skipped += skipped;
	rd->broken = 1;
	return -EBADMSG;
}

/* Copy the header at @pos into a local: it is read once, then only the copy is trusted. */
static inline struct evr_record_header peek(const struct evr_reader *rd, uint64_t pos)
{
	struct evr_record_header h;

	/* pos is 8-aligned and data_size a multiple of 8: a header never wraps */
	memcpy(&h, rd->data + (pos & rd->mask), sizeof(h));
	return h;
}

/*
 * The stamp conversion of the ring (untrusted: wrong values give wrong times, never a fault),
 * copied once per batch so records need no loads of the shared page.
 */
static void clock_refresh(struct evr_reader *rd)
{
	rd->clk.mult = READ_ONCE(rd->ctrl->time_mult);
	rd->clk.shift = READ_ONCE(rd->ctrl->time_shift) & 63;
	rd->clk.zero = READ_ONCE(rd->ctrl->time_zero);
	if (rd->clk.shift > 40)
		rd->clk.mult = 0; /* nonsense: hand raw stamps out */
}

/* Walk a backward snapshot once to list its records, for oldest-first delivery. */
static void index_snapshot(struct evr_reader *rd)
{
	uint64_t pos = rd->head;

	rd->nr_order = 0;
	while (pos != rd->end) {
		struct evr_record_header h = peek(rd, pos);

		if (h.size < sizeof(h) || h.size % EVR_RECORD_ALIGN || h.size > rd->end - pos)
			break; /* never written, or cut by the overwrite boundary */
		rd->order[rd->nr_order++] = (uint32_t)(pos - rd->head);
		pos += h.size;
	}
	rd->next_order = rd->nr_order;
}

int evr_reader_begin(struct evr_reader *rd)
{
	uint64_t head, avail;

	if (!rd)
		return -EINVAL;
	rd->broken = 0;
	rd->st.batches++;
	clock_refresh(rd);
	if (rd->multi) {
		/*
		 * Records are found by their headers (F, in next_multi()). Nothing committed
		 * at our position: nothing to read (a drain loop stops here even if a writer
		 * holds its reservation forever), and no look at prod_head, the line the
		 * writers' cmpxchg works on. Otherwise prod_head only sizes the batch. A plain
		 * load, ordering nothing: next_multi() loads the word again with F.
		 */
		uint64_t w = READ_ONCE(*(const uint64_t *)(rd->data + (rd->tail & rd->mask)));
		struct evr_record_header h;

		memcpy(&h, &w, sizeof(h));
		rd->head = rd->tail;
		if (!w || (h.misc & EVR_MISC_BUSY))
			return 0;
		avail = READ_ONCE(rd->ctrl->prod_head) - rd->tail;
		return (int)(avail - 1 < rd->size ? avail : rd->size); /* untrusted: 0 too */
	}
	head = load_acquire(&rd->ctrl->data_head); /* C: pairs with B in output_end() */
	if (rd->backward) {
		/* Positions started at 0 and went down: -head bytes were ever written. */
		avail = 0 - head;
		if (avail > rd->size)
			avail = rd->size;
		if (head % EVR_RECORD_ALIGN) {
			rd->head = rd->end = rd->tail = head;
			return corrupt(rd, 0);
		}
		rd->head = rd->tail = head;
		rd->end = head + avail;
		if (rd->order)
			index_snapshot(rd);
		return (int)avail;
	}
	avail = head - rd->tail;
	if (avail > rd->size || (avail % EVR_RECORD_ALIGN) || (rd->tail % EVR_RECORD_ALIGN)) {
		/* a head behind us, too far ahead, or misaligned: resynchronise to it */
		uint64_t skipped = avail > rd->size ? rd->size : avail;

		rd->head = rd->tail = head & ~(uint64_t)(EVR_RECORD_ALIGN - 1);
		return corrupt(rd, skipped);
	}
	rd->head = head;
	return (int)avail;
}

/* Fill @rec from the validated header @h of the record at @pos. */
static int deliver(struct evr_reader *rd, struct evr_record_header h, uint64_t pos,
		   struct evr_record *rec)
{
	uint64_t off = pos & rd->mask;
	const struct evr_record_header *p;
	uint32_t body = h.size - (uint32_t)sizeof(h), pad = 0;

	if (h.type >= EVR_TYPE_PAD) {
		pad = h.misc & EVR_MISC_PAD_MASK;
		if (pad > body)
			return -1;
	}
	if (rd->mirror || off + h.size <= rd->size) {
		p = (const void *)(rd->data + off);
	} else {
		uint64_t first = rd->size - off;

		memcpy(rd->bounce, rd->data + off, first);
		memcpy(rd->bounce + first, rd->data, h.size - first);
		memcpy(rd->bounce, &h, sizeof(h)); /* the validated copy, not a re-read */
		p = (const void *)rd->bounce;
	}
	rec->hdr = p;
	rec->data = p + 1;
	rec->len = body - pad;
	rec->pos = pos;
	rec->has_time = false;
	rec->time = 0;
	rec->ring = 0;
	if (h.type >= EVR_TYPE_PAD && (h.misc & EVR_MISC_TIME) && rec->len >= sizeof(uint64_t)) {
		uint64_t stamp;

		memcpy(&stamp, rec->data, sizeof(stamp));
		rec->time = evr__cycles_to_ns(&rd->clk, stamp);
		rec->has_time = true;
		rec->data = (const uint8_t *)rec->data + sizeof(stamp);
		rec->len -= (uint32_t)sizeof(stamp);
	}
	rec->is_app = h.type >= EVR_TYPE_APP;
	rec->type = rec->is_app ? h.type - EVR_TYPE_APP : h.type;
	if (h.type == EVR_TYPE_LOST && (h.misc & EVR_MISC_EVRING)) {
		struct evr_lost_body b;

		if (body < sizeof(b))
			return -1;
		memcpy(&b, p + 1, sizeof(b));
		rd->st.lost += b.lost;
	}
	rd->st.records++;
	return 0;
}

static int next_backward(struct evr_reader *rd, struct evr_record *rec)
{
	for (;;) {
		struct evr_record_header h;
		uint64_t pos;

		if (rd->order) {
			if (!rd->next_order)
				return 0;
			pos = rd->head + rd->order[--rd->next_order];
		} else {
			pos = rd->tail;
			if (pos == rd->end)
				return 0;
		}
		h = peek(rd, pos);
		if (h.size < sizeof(h) || h.size % EVR_RECORD_ALIGN || h.size > rd->end - pos) {
			/* the snapshot's natural end: unwritten or overwritten */
			rd->tail = rd->end;
			if (rd->order) /* indexed before: the writer changed it since */
				return corrupt(rd, 0);
			return 0;
		}
		if (!rd->order)
			rd->tail = pos + h.size;
		if (h.type == EVR_TYPE_PAD)
			continue;
		if (deliver(rd, h, pos, rec) < 0)
			return corrupt(rd, h.size);
		return 1;
	}
}

/*
 * Multi-producer ring: the next record is committed iff its header word is neither 0 (reserved,
 * not yet written, or free) nor BUSY. The batch may take up to a whole ring.
 */
static int next_multi(struct evr_reader *rd, struct evr_record *rec)
{
	for (;;) {
		uint64_t pos = rd->tail, used = pos - rd->pub_tail, w;
		struct evr_record_header h;

		if (used >= rd->size)
			return 0; /* a whole ring in one batch: end it to make room */
		/* F: pairs with E, the writer's release store in publish() (mpsc.c) */
		w = load_acquire((const uint64_t *)(rd->data + (pos & rd->mask)));
		if (!w)
			return 0;
		memcpy(&h, &w, sizeof(h));
		if (h.misc & EVR_MISC_BUSY)
			return 0;
		if (h.size < sizeof(h) || h.size % EVR_RECORD_ALIGN || h.size > rd->size - used) {
			/* resynchronise at the writers' reserve position; what is between: lost */
			uint64_t to = READ_ONCE(rd->ctrl->prod_head);

			if (to - rd->pub_tail > rd->size || to - pos > rd->size ||
			    to % EVR_RECORD_ALIGN || to == pos)
				to = pos + EVR_RECORD_ALIGN; /* even that is garbage: step a word */
			rd->tail = to;
			return corrupt(rd, to - pos);
		}
		rd->tail = pos + h.size;
		if (h.type == EVR_TYPE_PAD || (h.misc & EVR_MISC_DISCARD))
			continue;
		h.misc &= (uint16_t)~EVR_MISC_BUSY;
		if (deliver(rd, h, pos, rec) < 0)
			return corrupt(rd, h.size);
		return 1;
	}
}

/* Zero what the batch consumed, then hand it back: D. */
static void end_multi(struct evr_reader *rd)
{
	uint64_t n = rd->tail - rd->pub_tail;

	if (!n)
		return;
	/* the mirror makes [pub_tail, tail) contiguous; n <= size by next_multi() */
#ifndef EVR_BROKEN_MPSC_NO_ZERO /* must-fail control: stale headers must be caught */
	memset((uint8_t *)rd->data + (rd->pub_tail & rd->mask), 0, n);
#endif
	store_release(&rd->ctrl->data_tail, rd->tail); /* D: pairs with A in evr__mp_reserve() */
	rd->pub_tail = rd->tail;
}

int evr_reader_next(struct evr_reader *rd, struct evr_record *rec)
{
	if (!rd || !rec)
		return -EINVAL;
	/*
	 * The common record, specialised: an application event without a timestamp in a
	 * mirrored forward single-writer ring. Same checks as below (size >= 8, aligned, within
	 * the batch; padding within the body), on the one header word read once.
	 */
	if (likely(rd->simple && rd->tail != rd->head && !rd->broken)) {
		uint64_t pos = rd->tail, w;
		const uint8_t *p = rd->data + (pos & rd->mask);
		uint32_t size, misc, type;

		memcpy(&w, p, sizeof(w));
		type = (uint32_t)w;
		misc = (uint32_t)(w >> 32) & 0xffff;
		size = (uint32_t)(w >> 48);
		uint32_t pad = misc & EVR_MISC_PAD_MASK, stamped = !!(misc & EVR_MISC_TIME);
		uint32_t min = (uint32_t)sizeof(struct evr_record_header) + pad +
			       stamped * (uint32_t)sizeof(uint64_t);

		if (likely(type >= EVR_TYPE_APP && !(misc & ~(EVR_MISC_PAD_MASK | EVR_MISC_TIME)) &&
			   size >= min && !(size % EVR_RECORD_ALIGN) && size <= rd->head - pos)) {
			rec->hdr = (const void *)p;
			rec->data = p + sizeof(struct evr_record_header);
			rec->len = size - (uint32_t)sizeof(struct evr_record_header) - pad;
			rec->pos = pos;
			rec->time = 0;
			rec->type = type - EVR_TYPE_APP;
			rec->is_app = true;
			rec->has_time = stamped;
			rec->ring = 0;
			if (stamped) {
				uint64_t stamp;

				memcpy(&stamp, rec->data, sizeof(stamp));
				rec->time = evr__cycles_to_ns(&rd->clk, stamp);
				rec->data = (const uint8_t *)rec->data + sizeof(stamp);
				rec->len -= (uint32_t)sizeof(stamp);
			}
			rd->tail = pos + size;
			rd->st.records++;
			return 1;
		}
	}
	if (rd->broken)
		return 0; /* the rest of a corrupt batch is skipped */
	if (rd->multi)
		return next_multi(rd, rec);
	if (rd->backward)
		return next_backward(rd, rec);
	while (rd->tail != rd->head) {
		uint64_t avail = rd->head - rd->tail, pos = rd->tail;
		struct evr_record_header h = peek(rd, pos);

		if (h.size < sizeof(h) || h.size % EVR_RECORD_ALIGN || h.size > avail) {
			rd->tail = rd->head;
			return corrupt(rd, avail);
		}
		rd->tail = pos + h.size;
		if (h.type == EVR_TYPE_PAD)
			continue;
		if (deliver(rd, h, pos, rec) < 0) {
			rd->tail = rd->head;
			return corrupt(rd, avail);
		}
		return 1;
	}
	return 0;
}

int evr_reader_end(struct evr_reader *rd)
{
	if (!rd)
		return -EINVAL;
	if (rd->backward)
		return 0; /* overwrite rings have no consumer position */
	if (rd->multi) {
		end_multi(rd);
		return 0;
	}
	if (rd->broken)
		rd->tail = rd->head;
	store_release(&rd->ctrl->data_tail, rd->tail); /* D: pairs with A in reserve() */
	return 0;
}

int evr_reader_get_stats(const struct evr_reader *rd, struct evr_reader_stats *st)
{
	if (!rd || !st || st->sz < sizeof(size_t))
		return -EINVAL;
	struct evr_reader_stats tmp = rd->st;

	tmp.sz = st->sz;
	memcpy(st, &tmp, st->sz < sizeof(tmp) ? st->sz : sizeof(tmp));
	return 0;
}
