// SPDX-License-Identifier: MIT
/*
 * The single-writer ring (the perf ring in user space): creation, and the writer's
 * reserve / commit with nesting, loss accounting, backward (overwrite) writing and pause.
 * Concurrency: one writer context (a thread and the signal handlers that interrupt it) against
 * one reader on any thread or process; see docs/ordering.md for the A-D table.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/membarrier.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "atomic.h"
#include "internal.h"

/* The first 1088 bytes of the control page are struct perf_event_mmap_page. */
#define EVR_SAME_FIELD(f)                                                                          \
	_Static_assert(offsetof(struct evr_ctrl, f) == offsetof(struct perf_event_mmap_page, f) && \
			       sizeof(((struct evr_ctrl *)0)->f) ==                                \
				       sizeof(((struct perf_event_mmap_page *)0)->f),              \
		       "evr_ctrl." #f " must match perf_event_mmap_page")
EVR_SAME_FIELD(version);
EVR_SAME_FIELD(compat_version);
EVR_SAME_FIELD(lock);
EVR_SAME_FIELD(index);
EVR_SAME_FIELD(offset);
EVR_SAME_FIELD(time_enabled);
EVR_SAME_FIELD(time_running);
EVR_SAME_FIELD(capabilities);
EVR_SAME_FIELD(pmc_width);
EVR_SAME_FIELD(time_shift);
EVR_SAME_FIELD(time_mult);
EVR_SAME_FIELD(time_offset);
EVR_SAME_FIELD(time_zero);
EVR_SAME_FIELD(size);
EVR_SAME_FIELD(time_cycles);
EVR_SAME_FIELD(time_mask);
EVR_SAME_FIELD(data_head);
EVR_SAME_FIELD(data_tail);
EVR_SAME_FIELD(data_offset);
EVR_SAME_FIELD(data_size);
EVR_SAME_FIELD(aux_head);
EVR_SAME_FIELD(aux_tail);
EVR_SAME_FIELD(aux_offset);
EVR_SAME_FIELD(aux_size);
_Static_assert(sizeof(struct perf_event_mmap_page) == 1088, "perf page is 1088 bytes");
_Static_assert(offsetof(struct evr_ctrl, data_head) == 1024, "data_head at 1024");
_Static_assert(offsetof(struct evr_ctrl, data_tail) == 1032, "data_tail at 1032");
_Static_assert(offsetof(struct evr_ctrl, magic) == 1088, "evring fields follow perf's");
_Static_assert(offsetof(struct evr_ctrl, paused) % 64 == 0, "reader line");
_Static_assert(offsetof(struct evr_ctrl, nest) % 64 == 0, "writer line");
_Static_assert(offsetof(struct evr_ctrl, disabled) == offsetof(struct evr_ctrl, paused) + 4,
	       "the fast path loads paused and disabled as one word");
_Static_assert(sizeof(struct evr_ctrl) <= 4096, "control page fits one page");
_Static_assert(sizeof(struct evr_record_header) == sizeof(struct perf_event_header),
	       "record header is perf's");
_Static_assert(EVR_TYPE_LOST == PERF_RECORD_LOST, "LOST keeps the kernel's number");
_Static_assert(EVR_LOST_SIZE % EVR_RECORD_ALIGN == 0, "LOST record is aligned");

void evr__ring_init_ctrl(struct evr_ctrl *c, size_t page, uint64_t size, uint32_t flags,
			 uint64_t ring_id)
{
	c->size = 1088;
	c->data_offset = page;
	c->data_size = size;
	c->evr_version = EVR_ABI_VERSION;
	c->evr_compat = EVR_ABI_COMPAT;
	c->kind = (flags & EVR_RING_MULTI) ? EVR_KIND_MPSC : EVR_KIND_SPSC;
	c->flags = ((flags & EVR_RING_OVERWRITE) ? EVR_CTRL_BACKWARD : 0) |
		   ((flags & EVR_RING_MIRROR) ? EVR_CTRL_MIRROR : 0);
	c->ring_id = ring_id;
	c->watermark = size / 2; /* as perf's default: wake at half full */
	c->mp_woke_tail = EVR_WOKE_NONE;
	c->magic = EVR_CTRL_MAGIC;
}

/* Point a handle at a ring's memory; its writer state resumes from the published head. */
void evr__ring_bind(struct evr_ring *r, struct evr_ctrl *c, uint8_t *data, uint64_t size,
		    uint32_t flags)
{
	r->ctrl = c;
	r->data = data;
	r->data_size = size;
	r->mask = size - 1;
	r->efd = -1;
	r->woke_tail = EVR_WOKE_NONE;
	for (int i = 0; i < EVR_MAX_NEST; i++)
		r->open_pos[i] = EVR_POS_NONE;
	evr__ring_set_flags(r, flags);
	/* untrusted: any value is safe for the writer (room checks treat a bad tail as full) */
	r->head = READ_ONCE(c->data_head) & ~(uint64_t)(EVR_RECORD_ALIGN - 1);
	r->tail_cache = READ_ONCE(c->data_tail);
	r->wake_tail = r->tail_cache;
}

void evr__ring_set_flags(struct evr_ring *r, uint32_t flags)
{
	uint64_t lim = r->data_size - EVR_LOST_SIZE - sizeof(struct evr_record_header) - 7;

	r->flags = flags;
	/* the fast path writes whole records into a mirrored forward single-writer ring */
	if ((flags & (EVR_RING_MIRROR | EVR_RING_OVERWRITE | EVR_RING_MULTI | EVR__RING_RDONLY)) !=
	    EVR_RING_MIRROR)
		r->fast_lim = 0;
	else
		r->fast_lim = (uint32_t)(lim < EVR_PAYLOAD_MAX ? lim : EVR_PAYLOAD_MAX + 1);
}

/*
 * Become the writer context of a ring whose previous writer may have died mid-write: whatever it
 * reserved but never published is forgotten, and its nest count with it.
 */
void evr__ring_take_writer(struct evr_ring *r)
{
	r->head = READ_ONCE(r->ctrl->data_head) & ~(uint64_t)(EVR_RECORD_ALIGN - 1);
	r->wake_tail = READ_ONCE(r->ctrl->data_tail);
	store_release(&r->ctrl->nest, 0); /* pairs with the acquire in wait_quiescent() */
	r->self_fence = (uint16_t)evr__membarrier_register();
	WRITE_ONCE(r->ctrl->writer_flags, r->self_fence ? EVR_WRITER_SELF_FENCE : 0);
	/*
	 * Pairs with the smp_mb() in evr_ring_set_paused(): a reader pausing while we bind sees
	 * our flag, or we see its paused (models/pause.pml, BIND_RACE). Binding is rare.
	 */
	smp_mb();
	WRITE_ONCE(r->ctrl->writer_pid, getpid());
	WRITE_ONCE(r->ctrl->writer_tid, gettid());
}

int evr_ring_create(const struct evr_ring_opts *opts, struct evr_ring **out)
{
	size_t page = evr__page_size();
	struct evr_ring *r;
	uint64_t size;
	int err;

	if (!opts || !out || opts->sz < offsetof(struct evr_ring_opts, ring_id) + 8 ||
	    opts->sz > 4096)
		return -EINVAL;
	/* unknown trailing bytes must be zero */
	for (size_t i = sizeof(*opts); i < opts->sz; i++)
		if (((const uint8_t *)opts)[i])
			return -EINVAL;
	size = opts->data_size;
	if (!evr__is_pow2(size) || size < EVR_DATA_MIN || size > EVR_DATA_MAX || opts->pad ||
	    (opts->flags & ~(EVR_RING_MIRROR | EVR_RING_OVERWRITE | EVR_RING_MULTI)))
		return -EINVAL;
	if ((opts->flags & EVR_RING_MIRROR) && size < page)
		return -EINVAL;
	/* multi-producer rings hand out contiguous records only, and do not overwrite */
	if ((opts->flags & EVR_RING_MULTI) &&
	    (!(opts->flags & EVR_RING_MIRROR) || (opts->flags & EVR_RING_OVERWRITE)))
		return -EINVAL;

	r = evr__zalloc_lines(sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->fd = -1;
	if (opts->flags & EVR_RING_MIRROR)
		err = evr__map_mirror(page, size, &r->fd, &r->map, &r->map_len);
	else
		err = evr__map_anon(page, size, &r->map, &r->map_len);
	if (err)
		goto fail;
	if (!(opts->flags & EVR_RING_MIRROR)) {
		r->bounce_size = size < EVR_RECORD_MAX ? (uint32_t)size : EVR_RECORD_MAX;
		r->bounce = malloc((size_t)r->bounce_size * EVR_MAX_NEST);
		if (!r->bounce) {
			err = -ENOMEM;
			goto fail;
		}
	}
	evr__ring_init_ctrl(r->map, page, size, opts->flags, opts->ring_id);
	evr__ring_bind(r, r->map, (uint8_t *)r->map + page, size, opts->flags);
	evr__ring_take_writer(r);
	*out = r;
	return 0;
fail:
	evr__unmap(r->map, r->map_len, r->fd);
	free(r->bounce);
	free(r);
	return err;
}

void evr_ring_destroy(struct evr_ring *r)
{
	if (!r || !r->map)
		return; /* rings of a session go with the session */
	if (r->efd >= 0)
		close(r->efd);
	evr__unmap(r->map, r->map_len, r->fd);
	free(r->bounce);
	free(r);
}

/*
 * The end of every write, successful or not: perf_output_put_handle() after commit 1b038c6.
 * Only the outermost writer (nest == 1) publishes data_head, and it publishes *before* it lowers
 * nest, then looks again: a handler that ran between our read of head and our nest = 0 saw
 * nest > 1 and left its record for us to publish.
 *
 *   A signal landing between the points marked in the margin:
 *   1 and 2 (head read, not yet published): the handler sees nest >= 1, reserves after us and
 *           leaves without publishing; 4 sees that head moved and goes round again.
 *   2 and 3 (head published, nest still 1): the same.
 *   3 and 4 (nest == 0): the handler is outermost and publishes a newer head; ours, older, was
 *           published before, so data_head never goes back; 4 then sees the moved head and
 *           publishes it once more (a harmless repeat).
 *
 * The pre-1b038c6 order (EVR_BROKEN_NEST_ORDER, a must-fail control) lowers nest before it
 * publishes: a handler landing in between publishes its newer head, and then we overwrite it
 * with our older one, so the reader sees data_head go back.
 */
static __attribute__((always_inline)) inline int publish_outer(struct evr_ring *r,
								 struct evr_ctrl *c, uint64_t head)
{
#ifdef EVR_BROKEN_NEST_ORDER
	barrier();
	WRITE_ONCE(c->nest, 0);
	barrier();
	store_release_head(&c->data_head, head); /* B: pairs with C in evr_reader_begin() */
	barrier();
#else
	store_release_head(&c->data_head, head); /*2*/ /* B: pairs with C in evr_reader_begin() */
	barrier();
	/*
	 * release: pairs with the acquire load of nest in wait_quiescent(), so a pausing reader
	 * that sees 0 also sees everything this writer wrote.
	 */
	store_release(&c->nest, 0); /*3*/
	barrier();
#endif
	if (unlikely(head != local_read(&r->head))) { /*4*/
		WRITE_ONCE(c->nest, 1);
		barrier();
		return 1;
	}
	return 0;
}

static __attribute__((always_inline)) inline void output_end(struct evr_ring *r)
{
	struct evr_ctrl *c = r->ctrl;
	uint32_t nest;
	uint64_t head;

	do {
		nest = READ_ONCE(c->nest);
		if (nest > 1) {
			WRITE_ONCE(c->nest, nest - 1); /* an outer writer will publish */
			return;
		}
		head = local_read(&r->head); /*1*/
	} while (publish_outer(r, c, head));
	/*
	 * Wakeups: one compare per commit against the live watermark (a reader-owned word that
	 * stays in our cache); the slow path runs when a watermark may be unread since our last
	 * look at data_tail, i.e. once per watermark of bytes while the reader keeps up, and on
	 * every commit while it lags by more (docs/ordering.md). Overwrite rings have no reader
	 * to wake: they are read as snapshots.
	 */
	if (!(r->flags & EVR_RING_OVERWRITE))
		evr__wake_check_spsc(r, c, head);
}

/*
 * While a loss is pending, tail_cache claims the ring is full: evr_ring_write()'s fast path then
 * falls through to reserve(), which emits the LOST record. Every place that may leave a loss
 * pending calls this: lose() itself, and reserve() when it re-read data_tail without emitting.
 */
static inline void poison_tail(struct evr_ring *r, uint64_t pos)
{
	/*
	 * A record's worth further back too: @pos may include bytes an interrupted fast path
	 * took past the room and then gives back (fast_give_back()), and head minus those
	 * bytes must still find no room here.
	 */
	r->tail_cache = pos - r->data_size - 1 - ((uint64_t)UINT16_MAX + 1);
}

/*
 * Count a lost record; runs between nest++ and output_end(), so it nests like a write.
 * Each cause has its own pending count, taken by put_lost() with its own exchange: a handler
 * that loses a record between two of put_lost()'s exchanges lands either in this LOST record or
 * in the next, with its cause. r->lost is only the hint that something is pending, raised after
 * the count and cleared before it is taken, so at worst it sends a write to the general path
 * for nothing (and a LOST slot becomes padding). first/last are approximate under nesting.
 */
static void lose(struct evr_ring *r, uint64_t cause, uint64_t pos)
{
	if (!local_read(&r->lost))
		WRITE_ONCE(r->lost_first, pos);
	WRITE_ONCE(r->lost_last, pos);
	local_add(&r->lost_n[cause == EVR_LOST_FULL ? 0 : 1], 1);
	barrier();
	local_add(&r->lost, 1);
	poison_tail(r, pos);
	local_add(cause == EVR_LOST_FULL ? &r->ctrl->lost_full : &r->ctrl->lost_paused, 1);
}

/* Fill the LOST record reserved at @pos, or turn it into padding if a handler beat us to it. */
static void put_lost(struct evr_ring *r, uint64_t pos)
{
	struct evr_record_header *h = (void *)(r->data + (pos & r->mask));
	struct evr_lost_body b;
	uint64_t full, paused;
	uint8_t *dst;
	uint32_t off;

	local_xchg(&r->lost, 0);
	barrier();
	full = local_xchg(&r->lost_n[0], 0);
	paused = local_xchg(&r->lost_n[1], 0);
	h->size = EVR_LOST_SIZE;
	if (!full && !paused) {
		h->type = EVR_TYPE_PAD;
		h->misc = 0;
		return;
	}
	h->type = EVR_TYPE_LOST;
	h->misc = EVR_MISC_EVRING;
	b.id = r->ctrl->ring_id;
	b.lost = full + paused;
	b.first_pos = READ_ONCE(r->lost_first);
	b.last_pos = READ_ONCE(r->lost_last);
	b.causes = (full ? EVR_LOST_FULL : 0) | (paused ? EVR_LOST_PAUSED : 0);
	b.reserved = 0;
	off = (uint32_t)((pos + sizeof(*h)) & r->mask);
	dst = r->data + off;
	if ((r->flags & EVR_RING_MIRROR) || off + sizeof(b) <= r->data_size) {
		memcpy(dst, &b, sizeof(b));
	} else {
		uint32_t first = (uint32_t)r->data_size - off;

		memcpy(dst, &b, first);
		memcpy(r->data, (uint8_t *)&b + first, sizeof(b) - first);
	}
}

/* Is there room for @need bytes at @head, given a reader at @tail? Any @tail is safe here. */
static inline int has_room(uint64_t head, uint64_t tail, uint64_t need, uint64_t size)
{
	uint64_t used = head - tail;

	return used <= size && need <= size - used;
}

/*
 * Reserve @len payload bytes for a record of @type. On success the header is written (the
 * reader cannot see it before the outermost commit publishes it) and @s points at the payload.
 * Interleaving points are marked A .. D in the margin; a handler may run between any two of them
 * and runs to completion before we go on: between A and B it finds nest as we found it and
 * restores it; after B it sees nest > 0 and leaves publishing to us; between C and D it moves
 * head and our cmpxchg at D fails and retries (see docs/ordering.md). @count is 0 only for
 * evr_ring_flush()'s carrier, which must not count itself as lost.
 */
static __attribute__((always_inline)) inline int reserve(struct evr_ring *r, uint32_t type,
							  size_t len, struct evr_slot *s, int count)
{
	struct evr_ctrl *c = r->ctrl;
	uint64_t head, new, tail, pos, pend;
	uint32_t size, need, nest, off;
	struct evr_record_header *h;

	if (unlikely(len > EVR_PAYLOAD_MAX ||
		     evr__record_size(len) + EVR_LOST_SIZE > r->data_size)) {
		local_add(&c->err_msgsize, 1);
		return -EMSGSIZE;
	}
	size = evr__record_size(len);

	nest = READ_ONCE(c->nest); /*A*/
	if (unlikely(nest >= EVR_MAX_NEST)) {
		local_add(&c->err_nest, 1);
		return -EDEADLK;
	}
	/*
	 * Not an atomic increment, and need not be: a handler that runs between the read and the
	 * write restores nest before it returns (perf's rb->nest works the same way).
	 */
	WRITE_ONCE(c->nest, nest + 1); /*B*/
	barrier(); /* nest is raised before we look at paused: see wait_quiescent() */

	if (unlikely(READ_ONCE(c->disabled))) {
		local_add(&c->err_shutdown, 1);
		output_end(r);
		return -ESHUTDOWN;
	}
	/* acquire: pairs with the release store in evr_ring_set_paused() (resume) */
	if (unlikely(load_acquire(&c->paused))) {
		if (count)
			lose(r, EVR_LOST_PAUSED, local_read(&r->head));
		output_end(r);
		return -ENOSPC;
	}

	do {
		head = local_read(&r->head); /*C*/
		pend = local_read(&r->lost);
		need = size + (pend ? EVR_LOST_SIZE : 0);
		if (r->flags & EVR_RING_OVERWRITE) {
			new = head - need;
			/*
			 * Open reservations of this writer context span [new, data_head): our
			 * own last publication. Beyond a ring they would share bytes, and an outer
			 * payload would overwrite a nested record's header. The outermost level
			 * has none open: not asking then also lets a writer whose data_head fell
			 * behind (a hostile peer's nest kept it from publishing) recover at once.
			 */
			if (unlikely(nest && READ_ONCE(c->data_head) - new > r->data_size)) {
				if (count)
					lose(r, EVR_LOST_FULL, head);
				output_end(r);
				return -ENOSPC;
			}
		} else {
			tail = r->tail_cache;
			if (unlikely(!has_room(head, tail, need, r->data_size))) {
				/* A: pairs with D in evr_reader_end() */
				tail = load_acquire(&c->data_tail);
				r->tail_cache = tail;
				if (!has_room(head, tail, need, r->data_size)) {
					if (count)
						lose(r, EVR_LOST_FULL, head);
					else if (local_read(&r->lost))
						poison_tail(r, head);
					output_end(r);
					return -ENOSPC;
				}
			}
			new = head + need;
		}
	/* signal-atomic, no memory order: pairs with a handler's cmpxchg on head (see D above) */
	} while (local_cmpxchg(&r->head, head, new) != head); /*D*/

	/* a handler lost a record after we looked at lost, and we may have re-read the tail */
	if (unlikely(!pend && local_read(&r->lost)))
		poison_tail(r, new);

	/* [pos, pos + need) is ours: forward it is [head, new), backward [new, head). */
	pos = (r->flags & EVR_RING_OVERWRITE) ? new : head;
	if (pend) {
		/* Forward, the LOST record comes first; backward it sits after (older than) ours */
		if (r->flags & EVR_RING_OVERWRITE) {
			put_lost(r, pos + size);
		} else {
			put_lost(r, pos);
			pos += EVR_LOST_SIZE;
		}
	}
	off = (uint32_t)(pos & r->mask);
	h = (void *)(r->data + off);
	h->type = type;
	h->misc = (uint16_t)(size - sizeof(*h) - len);
	h->size = (uint16_t)size;
	s->len = (uint32_t)len;
	s->size = size;
	s->pos = pos;
	s->hdr = h;
	s->level = nest;
	s->wrap = 0;
	r->open_pos[nest] = pos; /* this level's open reservation, checked by finish() */
	if (likely(r->flags & EVR_RING_MIRROR)) {
		s->data = h + 1; /* the second view makes it contiguous */
	} else if ((off = (uint32_t)((pos + sizeof(*h)) & r->mask)) + size - sizeof(*h) <=
		   r->data_size) {
		s->data = r->data + off;
	} else {
		s->data = r->bounce + (size_t)nest * r->bounce_size;
		s->wrap = 1;
	}
	/* zero the padding so no stale bytes follow the payload */
	if (size - sizeof(*h) != len)
		memset((uint8_t *)s->data + len, 0, size - sizeof(*h) - len);
	return 0;
}

static __attribute__((always_inline)) inline int finish(struct evr_ring *r, struct evr_slot *s,
							 int discard)
{
	if (unlikely(s->level + 1 != READ_ONCE(r->ctrl->nest) || s->level >= EVR_MAX_NEST ||
		     r->open_pos[s->level] != s->pos))
		return -EINVAL; /* not the innermost open reservation, or committed already */
	r->open_pos[s->level] = EVR_POS_NONE;
	if (discard)
		((struct evr_record_header *)s->hdr)->type = EVR_TYPE_PAD;
	if (unlikely(s->wrap)) {
		uint32_t off = (uint32_t)((s->pos + sizeof(struct evr_record_header)) & r->mask);
		uint32_t body = s->size - (uint32_t)sizeof(struct evr_record_header);
		uint32_t first = (uint32_t)r->data_size - off;

		memcpy(r->data + off, s->data, first);
		memcpy(r->data, (uint8_t *)s->data + first, body - first);
	}
	output_end(r);
	return 0;
}

/* Rings whose writes take another path: read-only handles and multi-producer rings. */
#define SLOW_FLAGS (EVR__RING_RDONLY | EVR_RING_MULTI)

int evr_ring_reserve(struct evr_ring *r, uint32_t id, size_t len, struct evr_slot *s)
{
	if (unlikely(!r || !s || id > EVR_APP_ID_MAX))
		return -EINVAL;
	if (unlikely(r->flags & SLOW_FLAGS))
		return (r->flags & EVR__RING_RDONLY)
			       ? -EINVAL
			       : evr__mp_reserve(r, EVR_TYPE_APP + id, len, s, 1);
	return reserve(r, EVR_TYPE_APP + id, len, s, 1);
}

int evr_ring_commit(struct evr_ring *r, struct evr_slot *s)
{
	if (unlikely(!r || !s))
		return -EINVAL;
	if (unlikely(r->flags & EVR_RING_MULTI))
		return evr__mp_finish(r, s, 0);
	return finish(r, s, 0);
}

int evr_ring_discard(struct evr_ring *r, struct evr_slot *s)
{
	if (unlikely(!r || !s))
		return -EINVAL;
	if (unlikely(r->flags & EVR_RING_MULTI))
		return evr__mp_finish(r, s, 1);
	return finish(r, s, 1);
}

/* Every write the fast path does not take: nested, paused, lossy, unmirrored, multi-producer. */
static __attribute__((noinline, cold)) int write_general(struct evr_ring *r, uint32_t id,
							  const void *data, size_t len)
{
	struct evr_slot s;
	int err;

	if (unlikely(!r || (!data && len) || id > EVR_APP_ID_MAX))
		return -EINVAL;
	if (unlikely(r->flags & SLOW_FLAGS)) {
		if (r->flags & EVR__RING_RDONLY)
			return -EINVAL;
		err = evr__mp_reserve(r, EVR_TYPE_APP + id, len, &s, 1);
		if (unlikely(err))
			return err;
		if (len) /* data may be NULL for an empty record */
			memcpy(s.data, data, len);
		return evr__mp_finish(r, &s, 0);
	}
	err = reserve(r, EVR_TYPE_APP + id, len, &s, 1);
	if (unlikely(err))
		return err;
	if (len)
		memcpy(s.data, data, len);
	return finish(r, &s, 0);
}

/*
 * fast_write() took @size bytes at @pos past the room its cached tail shows. Give them back with
 * one signal-atomic cmpxchg on head (pairs with a handler's cmpxchg on head in reserve()). It
 * fails only if a handler reserved after them, and that handler's room check counted them:
 * they are inside the ring. Then they become padding, published now. Either way the record
 * goes through the general path (models/reserve.pml). A handler that comes in while the bytes
 * are out may be refused although its own record would fit: counted as lost, like any refusal.
 */
static __attribute__((noinline, cold)) void fast_give_back(struct evr_ring *r, uint64_t pos,
							   uint32_t size)
{
	struct evr_record_header *h;

#ifndef EVR_BROKEN_FAST_GIVE_BACK
	/* signal-atomic, no memory order: pairs with a handler's cmpxchg on head (reserve(), D) */
	if (local_cmpxchg(&r->head, pos + size, pos) == pos + size) {
#else
	/* must-fail control: a plain store, although a handler may have reserved after them */
	WRITE_ONCE(r->head, pos);
	if (1) {
#endif
		barrier();
		/* nothing of ours to publish; release: pairs with wait_quiescent()'s acquire */
		store_release(&r->ctrl->nest, 0);
		barrier();
		return;
	}
	h = (void *)(r->data + (pos & r->mask));
	h->type = EVR_TYPE_PAD;
	h->misc = 0;
	h->size = (uint16_t)size;
	barrier();
	output_end(r); /* our level is the outermost: publishes, then nest is 0 */
}

/*
 * fast_write() found no room after its xadd: give the bytes back, then the general path. Called
 * last, so the fast path keeps nothing live across it (fewer registers saved on every write).
 */
static __attribute__((noinline, cold)) int fast_full(struct evr_ring *r, uint64_t pos, uint32_t id,
						     const void *data, size_t len)
{
	fast_give_back(r, pos, evr__record_size(len));
	return write_general(r, id, data, len);
}

static int write_ts_general(struct evr_ring *r, uint32_t type, uint64_t stamp, const void *data,
			    size_t len);

static __attribute__((noinline, cold)) int fast_full_ts(struct evr_ring *r, uint64_t pos,
							uint32_t type, uint64_t stamp,
							const void *data, size_t len)
{
	fast_give_back(r, pos, evr__record_size(len + sizeof(stamp)));
	return write_ts_general(r, type, stamp, data, len);
}

/*
 * The common case, reserve() + finish() specialised: a mirrored forward ring, the outermost
 * writer (nest was 0), not paused or disabled, no loss to report, room per the cached tail.
 * Anything else backs out (nest restored) and returns 1 for the general path; no room after
 * the xadd returns what fast_full() did. A handler that runs anywhere in here sees nest == 1,
 * reserves before our xadd or after it, and never publishes; publish_outer() publishes its
 * record with ours. @ts: the body starts with @stamp.
 */
static __attribute__((always_inline)) inline int fast_write(struct evr_ring *r, uint32_t type,
							     const void *data, size_t len,
							     int ts, uint64_t stamp)
{
	struct evr_ctrl *c = r->ctrl;
	size_t body = len + (ts ? sizeof(stamp) : 0);
	uint64_t head, new, hw;
	uint32_t size, nest;
	uint8_t *h;

	size = evr__record_size(body);
	nest = READ_ONCE(c->nest);
	WRITE_ONCE(c->nest, nest + 1);
	barrier();
	/*
	 * paused and disabled in one load; acquire: pairs with the release in
	 * evr_ring_set_paused(), as in reserve(). A pending loss needs no test here: lose()
	 * poisoned tail_cache, so the room check below sends us to the general path.
	 */
	if (unlikely(nest | load_acquire((const uint64_t *)&c->paused)))
		goto general;
	/*
	 * Reserve with one xadd, not a cmpxchg, and check the room after it: a handler that
	 * comes in before the xadd reserves before us, one after it reserves after us, and no
	 * handler ever finds room that we are about to take. Only the cached tail here:
	 * re-reading data_tail (A) is reserve()'s job, about once per ring of bytes; and a
	 * poisoned cache (lose()) must reach reserve() to emit the LOST record.
	 */
	head = local_fetch_add(&r->head, size); /* signal-atomic, one instruction */
	barrier();
	if (unlikely(!has_room(head, r->tail_cache, size, r->data_size))) {
		int ret = ts ? fast_full_ts(r, head, type, stamp, data, len)
			     : fast_full(r, head, type - EVR_TYPE_APP, data, len);

		if (ret == 1) /* never: 0 or -errno; tells the caller no general path follows */
			__builtin_unreachable();
		return ret;
	}
	new = head + size;
	h = r->data + (head & r->mask);
	hw = (uint64_t)type |
	     (uint64_t)((size - sizeof(struct evr_record_header) - body) |
			(ts ? EVR_MISC_TIME : 0)) << 32 |
	     (uint64_t)size << 48;
	memcpy(h, &hw, sizeof(hw));
	if (body & (EVR_RECORD_ALIGN - 1)) /* the padding first; the payload may overlap it */
		memset(h + size - EVR_RECORD_ALIGN, 0, EVR_RECORD_ALIGN);
	h += sizeof(struct evr_record_header);
	if (ts) {
		memcpy(h, &stamp, sizeof(stamp));
		h += sizeof(stamp);
	}
	memcpy(h, data, len);
	barrier();
	if (unlikely(publish_outer(r, c, new))) {
		output_end(r); /* handlers wrote meanwhile: publish theirs too */
		return 0;
	}
	evr__wake_check_spsc(r, c, new);
	return 0;
general:
	WRITE_ONCE(c->nest, nest);
	barrier();
	return 1;
}

int evr_ring_write(struct evr_ring *r, uint32_t id, const void *data, size_t len)
{
	int ret;

	if (unlikely(!r || len >= r->fast_lim || id > EVR_APP_ID_MAX || !data))
		return write_general(r, id, data, len);
	ret = fast_write(r, EVR_TYPE_APP + id, data, len, 0, 0);
	if (unlikely(ret == 1))
		return write_general(r, id, data, len);
	return ret;
}

static __attribute__((noinline, cold)) int write_ts_general(struct evr_ring *r, uint32_t type,
							      uint64_t stamp, const void *data,
							      size_t len)
{
	struct evr_slot s;
	int err;

	if (unlikely(len > EVR_PAYLOAD_MAX - sizeof(stamp)))
		len = EVR_PAYLOAD_MAX + 1; /* let reserve() count and refuse it */
	if (unlikely(r->flags & SLOW_FLAGS)) {
		if (r->flags & EVR__RING_RDONLY)
			return -EINVAL;
		err = evr__mp_reserve(r, type, len + sizeof(stamp), &s, 1);
		if (unlikely(err))
			return err;
		s.wrap = EVR_MISC_TIME; /* extra misc bits, carried to the commit word */
		memcpy(s.data, &stamp, sizeof(stamp));
		if (len)
			memcpy((uint8_t *)s.data + sizeof(stamp), data, len);
		return evr__mp_finish(r, &s, 0);
	}
	err = reserve(r, type, len + sizeof(stamp), &s, 1);
	if (unlikely(err))
		return err;
	((struct evr_record_header *)s.hdr)->misc |= EVR_MISC_TIME;
	memcpy(s.data, &stamp, sizeof(stamp)); /* slot data is contiguous, bounced or not */
	if (len)
		memcpy((uint8_t *)s.data + sizeof(stamp), data, len);
	return finish(r, &s, 0);
}

int evr__ring_write_ts(struct evr_ring *r, uint32_t type, uint64_t stamp, const void *data,
		       size_t len)
{
	int ret;

	if (unlikely(len + sizeof(stamp) >= r->fast_lim || !data))
		return write_ts_general(r, type, stamp, data, len);
	ret = fast_write(r, type, data, len, 1, stamp);
	if (unlikely(ret == 1))
		return write_ts_general(r, type, stamp, data, len);
	return ret;
}

int evr_ring_flush(struct evr_ring *r)
{
	struct evr_slot s;
	int err;

	if (!r || (r->flags & EVR__RING_RDONLY))
		return -EINVAL;
	if (r->flags & EVR_RING_MULTI) {
		err = 0;
		if (READ_ONCE(r->ctrl->mp_lost)) {
			err = evr__mp_reserve(r, EVR_TYPE_PAD, 0, &s, 0);
			if (!err) {
				evr__mp_finish(r, &s, 0);
				err = 1;
			}
		}
		evr__wake_flush(r);
		return err;
	}
	if (!local_read(&r->lost)) {
		err = 0;
	} else {
		/* a zero-length padding record carries the pending LOST record in front of it */
		err = reserve(r, EVR_TYPE_PAD, 0, &s, 0);
		if (!err) {
			finish(r, &s, 0);
			err = 1;
		}
	}
	if (!(r->flags & EVR_RING_OVERWRITE)) {
		if (READ_ONCE(r->ctrl->nest) == 0) {
			evr__wake_slow(r, local_read(&r->head), 1);
		} else {
			/* inside a write: what we flush is published by the outer commit */
			r->flush_pending = 1;
		}
	}
	return err;
}

/*
 * Wait until no write that could have missed paused == 1 is in flight.
 * Writer: nest = n+1 (B in reserve()); barrier; read paused.  Reader: paused = 1; membarrier;
 * read nest. membarrier() runs a full barrier on every thread of the writers' processes
 * (wait.c), so it is the writer's half of this store-load pair for free: either the writer
 * sees paused, or we see its nest raised and wait for its output_end() (release store of 0,
 * paired with our acquire).
 */
static int wait_quiescent(struct evr_ring *r, int timeout_ms)
{
	struct timespec start, now, nap = { 0, 50000 };
	int err;

	err = evr__membarrier_all(READ_ONCE(r->ctrl->writer_flags) & EVR_WRITER_SELF_FENCE);
	if (err)
		return err;
	clock_gettime(CLOCK_MONOTONIC, &start);
	/* acquire: pairs with the release store of nest = 0 in output_end() */
	while (load_acquire(&r->ctrl->nest) != 0) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >=
		    timeout_ms)
			return -ETIMEDOUT;
		nanosleep(&nap, NULL);
	}
	return 0;
}

int evr_ring_set_paused(struct evr_ring *r, bool paused, int timeout_ms)
{
	if (!r || timeout_ms < 0)
		return -EINVAL;
	if (r->flags & EVR_RING_MULTI)
		return -EOPNOTSUPP; /* no single writer context to wait for */
	if (!paused) {
		/*
		 * release: pairs with the acquire load in reserve(); our reads of the snapshot
		 * happen before any write the resumed writers make.
		 */
		store_release(&r->ctrl->paused, 0u);
		return 0;
	}
	WRITE_ONCE(r->ctrl->paused, 1u);
	smp_mb(); /* pairs with the smp_mb() in evr__ring_take_writer() */
	return wait_quiescent(r, timeout_ms);
}

int evr_ring_get_stats(const struct evr_ring *r, struct evr_ring_stats *st)
{
	const struct evr_ctrl *c;

	if (!r || !st || st->sz < sizeof(size_t))
		return -EINVAL;
	c = r->ctrl;
	struct evr_ring_stats tmp = {
		.sz = st->sz,
		.lost_full = READ_ONCE(c->lost_full),
		.lost_paused = READ_ONCE(c->lost_paused),
		.err_msgsize = READ_ONCE(c->err_msgsize),
		.err_nest = READ_ONCE(c->err_nest),
		.err_shutdown = READ_ONCE(c->err_shutdown),
		.data_head = READ_ONCE(c->data_head),
		.data_tail = READ_ONCE(c->data_tail),
	};
	memcpy(st, &tmp, st->sz < sizeof(tmp) ? st->sz : sizeof(tmp));
	return 0;
}

struct evr_ctrl *evr_ring_get_ctrl(const struct evr_ring *r)
{
	return r ? r->ctrl : NULL;
}

int evr_ring_get_fd(const struct evr_ring *r)
{
	if (!r)
		return -EINVAL;
	return r->fd >= 0 ? r->fd : -EBADF;
}
