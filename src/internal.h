/* SPDX-License-Identifier: MIT */
/*
 * Internal types shared by the library's files; never installed.
 * struct evr_ring's writer half belongs to one writer context, its mapping half is read-only
 * after creation.
 */
#ifndef EVR_INTERNAL_H
#define EVR_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "atomic.h"
#include "evring.h"

#define EVR_HIDDEN __attribute__((visibility("hidden")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* struct evr_ring.flags bits beyond the public EVR_RING_* ones */
#define EVR__RING_RDONLY 0x100u /* a session opened without EVR_SESSION_WRITER */

#define EVR_POS_NONE 1ull /* never a record position: those are 8-byte aligned */

#define EVR_DATA_MIN 64u
#define EVR_DATA_MAX (1ull << 30)
#define EVR_LOST_SIZE ((uint32_t)(sizeof(struct evr_record_header) + sizeof(struct evr_lost_body)))

/* The compile-time proof that the first 1088 bytes are perf's page lives in ring.c. */

/* woke_tail / mp_woke_tail: no watermark wake to skip a repeat of (none yet, or a flush since) */
#define EVR_WOKE_NONE (~0ull)

struct evr_ring {
	/*
	 * Writer context state: one cache line, touched by the thread and its signal handlers
	 * only, with the signal-atomic local_* operations (src/atomic.h).
	 */
	uint64_t head; /* reserve position: the next byte to hand out (backward: the last one) */
	uint64_t tail_cache; /* last data_tail seen (A); stale only in the safe direction */
	uint64_t lost; /* hint: records may be pending for a LOST record (see lose()) */
	uint64_t lost_first; /* position of the first of them */
	uint64_t lost_last;
	uint64_t lost_n[2]; /* pending lost records by cause: full, paused */
	uint64_t wake_tail; /* data_tail at the last look (evr__wake_slow()): not ahead of it */
	int efd; /* in-process poll eventfd set by the reader, or -1 (read on the slow path) */
	/* nonzero: the commit's wake check leaves its fast path (one load tests both) */
	union {
		struct {
			uint16_t flush_pending; /* a nested flush left the wake to the commit */
			uint16_t self_fence; /* evr__writer_fence when this context bound */
		};
		uint32_t wake_special;
	};

	uint64_t open_pos[EVR_MAX_NEST]; /* position of each level's open reservation */
	uint64_t woke_tail; /* data_tail at our last watermark wake, or EVR_WOKE_NONE (wait.c) */
	uint64_t woke_wm; /* ... and the watermark then */

	/* Immutable after creation. */
	uint32_t fast_lim; /* payloads below this take evr_ring_write()'s fast path; 0: none do */

	struct evr_ctrl *ctrl;
	uint8_t *data;
	uint64_t data_size;
	uint64_t mask;
	uint32_t flags; /* EVR_RING_* */
	int fd; /* memfd, or -1 */
	void *map; /* whole mapping, or NULL when a session owns it */
	size_t map_len;
	uint8_t *bounce; /* without the mirror: EVR_MAX_NEST wrap buffers of bounce_size bytes */
	uint32_t bounce_size;
};

/* clock.c: the timestamp source, fixed at the first use in a process */
struct evr_clock_params {
	uint64_t zero;
	uint32_t mult; /* 0: stamps are CLOCK_MONOTONIC nanoseconds already */
	uint16_t shift;
	uint8_t tsc; /* stamps are TSC cycles */
	uint8_t ordered; /* read the TSC with rdtscp (EVR_CLOCK=tsc-ordered) */
};
EVR_HIDDEN const struct evr_clock_params *evr__clock(void);
/*
 * A stamp in the clock's units to CLOCK_MONOTONIC ns, as perf's mmap page says: zero +
 * (cyc >> shift) * mult + ((cyc & mask) * mult >> shift). Inline: the reader converts every
 * stamped record.
 */
static inline uint64_t evr__cycles_to_ns(const struct evr_clock_params *p, uint64_t cyc)
{
	uint64_t quot, rem;

	if (!p->mult)
		return cyc; /* the clock already counts nanoseconds */
	quot = cyc >> p->shift;
	rem = cyc & ((1ull << p->shift) - 1);
	return p->zero + quot * p->mult + ((rem * p->mult) >> p->shift);
}
EVR_HIDDEN void evr__clock_publish(struct evr_ctrl *c);

static inline uint64_t evr__clock_read(const struct evr_clock_params *p)
{
#if defined(__x86_64__)
	if (likely(p->tsc)) {
		unsigned int aux;

		/*
		 * rdtsc by default, as the kernel's sched_clock: it may run ahead of earlier
		 * loads, so two threads' events causally ordered within the CPU's out-of-order
		 * window (tens of ns) can get swapped stamps. EVR_CLOCK=tsc-ordered takes rdtscp,
		 * which waits for earlier instructions (measured here: 9-14 ns against 16-21).
		 */
		if (unlikely(p->ordered))
			return __builtin_ia32_rdtscp(&aux);
		return __builtin_ia32_rdtsc();
	}
#endif
	{
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	}
}

/* ring.c */
EVR_HIDDEN void evr__ring_bind(struct evr_ring *r, struct evr_ctrl *c, uint8_t *data, uint64_t size,
			       uint32_t flags);
EVR_HIDDEN void evr__ring_init_ctrl(struct evr_ctrl *c, size_t page, uint64_t size, uint32_t flags,
				    uint64_t ring_id);
EVR_HIDDEN void evr__ring_take_writer(struct evr_ring *r);
EVR_HIDDEN void evr__ring_set_flags(struct evr_ring *r, uint32_t flags);
/* a record whose body starts with a u64 timestamp (misc EVR_MISC_TIME) */
EVR_HIDDEN int evr__ring_write_ts(struct evr_ring *r, uint32_t type, uint64_t stamp,
				  const void *data, size_t len);

/* wait.c: the writer's slow path, when a watermark may be unread, or on flush */
EVR_HIDDEN void evr__wake_slow(struct evr_ring *r, uint64_t head, int force);
EVR_HIDDEN void evr__wake_check_special(struct evr_ring *r, uint64_t head);
EVR_HIDDEN void evr__wake_check(struct evr_ring *r, uint64_t head);
EVR_HIDDEN void evr__wake_flush(struct evr_ring *r);
EVR_HIDDEN int evr__membarrier_register(void);
EVR_HIDDEN extern int evr__writer_fence;

/*
 * The commit's wake check, after data_head (B) is published, for single-writer rings. One look
 * at reader_waiting, a reader-owned word written only when the reader goes to sleep, so it
 * stays in our cache: nobody waits, nothing to do, however far behind the reader is. Only
 * while a reader waits: one compare of head against the last tail seen + the live watermark,
 * and past it evr__wake_slow(), which reads data_tail and decides. data_tail is the word a
 * streaming reader stores on every batch: the first version read it on every commit while
 * the reader lagged by a watermark, a cache miss each time (W2 16 B: about 95 against 140
 * Mrec/s with no check at all).
 *
 * W: our store of data_head comes before our load of reader_waiting; pairs with R in
 * evr_reader_wait(), which stores reader_waiting, then runs membarrier(), then loads data_head.
 * The membarrier puts a full barrier between our store and our load if they straddle it, so at
 * least one side sees the other's store; the compiler barrier keeps them in program order. A
 * process whose registration failed fences itself: self_fence, evr__wake_check_special().
 *
 * Why compare against the last tail seen: a reader may go to sleep having read only part of
 * what it saw; it must be woken at its tail + watermark, which can be any head from the tail
 * we last saw + watermark on (models/wakeup.pml, SRC_WAKE_NEXT, shows the lost wakeup of
 * checking later). wake_tail only takes values read from data_tail, never ahead of an honest
 * reader, so a stale one only sends us to evr__wake_slow() early.
 */
static inline void evr__wake_check_spsc(struct evr_ring *r, struct evr_ctrl *c, uint64_t head)
{
	barrier(); /* W: B before the reader_waiting load; pairs with R in evr_reader_wait() */
	if (unlikely(r->wake_special)) {
		evr__wake_check_special(r, head);
		return;
	}
	if (likely(!READ_ONCE(c->reader_waiting)))
		return;
	if (head - r->wake_tail < READ_ONCE(c->watermark))
		return;
	evr__wake_slow(r, head, 0);
}
EVR_HIDDEN int evr__membarrier_all(int self_fencing_writer);

/* mpsc.c: the multi-producer writer */
EVR_HIDDEN int evr__mp_reserve(struct evr_ring *r, uint32_t type, size_t len, struct evr_slot *s,
			       int count);
EVR_HIDDEN int evr__mp_finish(struct evr_ring *r, struct evr_slot *s, int discard);

/* session.c */
struct evr_session;
EVR_HIDDEN int evr__session_create(const struct evr_session_opts *o, const uint32_t *ring_flags,
				   uint32_t policy, struct evr_session **out);
EVR_HIDDEN int evr__session_dir(const uint8_t *img, uint64_t size, size_t page,
				struct evr_session_entry **dir, uint32_t *n);

/* flight.c */
EVR_HIDDEN size_t evr__flight_span(size_t sys_page, uint64_t data_size, uint32_t page_size);
EVR_HIDDEN uint32_t evr__flight_page_size(uint32_t entry_flags, uint64_t data_size);
EVR_HIDDEN void evr__flight_init(struct evr_ctrl *c, size_t sys_page, uint64_t data_size,
				 uint32_t flags, uint64_t ring_id);
EVR_HIDDEN int evr__flight_bind(struct evr_ctrl *c, size_t span, size_t sys_page,
				uint64_t data_size, uint32_t entry_flags, int can_write,
				int can_read, struct evr_flight **out);
EVR_HIDDEN void evr__flight_free(struct evr_flight *f);
EVR_HIDDEN uint32_t evr__session_policy(const struct evr_session *s);
EVR_HIDDEN int evr__session_ring(struct evr_session *s, uint32_t idx, struct evr_ring **out);

/* shm.c */
EVR_HIDDEN int evr__map_anon(size_t page, uint64_t data_size, void **map, size_t *len);
EVR_HIDDEN int evr__map_mirror(size_t page, uint64_t data_size, int *fd, void **map, size_t *len);
EVR_HIDDEN void evr__unmap(void *map, size_t len, int fd);
EVR_HIDDEN int evr__seal_size(int fd);
EVR_HIDDEN int evr__map_ring_views(int fd, uint64_t file_off, size_t page, uint64_t data_size,
				   uint8_t *at);
EVR_HIDDEN size_t evr__page_size(void);

EVR_HIDDEN void *evr__zalloc_lines(size_t size);

static inline int evr__is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

static inline uint32_t evr__record_size(size_t len)
{
	return (uint32_t)((len + sizeof(struct evr_record_header) + EVR_RECORD_ALIGN - 1) &
			  ~(size_t)(EVR_RECORD_ALIGN - 1));
}

#endif /* EVR_INTERNAL_H */
