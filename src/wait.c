// SPDX-License-Identifier: MIT
/*
 * Wakeups: a reader blocks on a shared futex word in the control page; a writer enters the kernel
 * only when a watermark's worth of bytes is unread (or on flush) and a reader is waiting.
 * The "reader waiting" flag and data_head form a store-load pair (docs/ordering.md, Wakeups).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "atomic.h"
#include "internal.h"
#include "reader.h"

/*
 * The store-load pairs between writers and a reader (wakeups here, pause in ring.c) are
 * asymmetric: writers, on the hot path, order their store and their load with a compiler
 * barrier only; the reader, on its rare path, issues membarrier(), which runs a full barrier on
 * every CPU running a thread of a registered process. Writer processes register once. Where the
 * kernel refuses, that process's writers fence themselves (writer_fence) and say so in each
 * ring they write (EVR_WRITER_SELF_FENCE), so a pausing reader knows to use the slow global
 * membarrier, which needs no registration.
 */
static pthread_once_t register_once = PTHREAD_ONCE_INIT;
int evr__writer_fence;

static void do_register(void)
{
	if (syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) < 0)
		evr__writer_fence = 1;
}

int evr__membarrier_register(void)
{
	pthread_once(&register_once, do_register);
	return evr__writer_fence;
}

/* The reader's half: every writer has run a full barrier when this returns 0. */
int evr__membarrier_all(int self_fencing_writer)
{
	if (!self_fencing_writer &&
	    syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == 0)
		return 0;
	if (syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) == 0)
		return 0; /* slow (a grace period), but covers unregistered processes */
	return -errno;
}

static uint64_t watermark_of(const struct evr_ctrl *c, uint64_t size)
{
	uint64_t wm = READ_ONCE(c->watermark); /* reader-owned and untrusted: clamp it */

	if (wm == 0 || wm > size)
		wm = size / 2;
	return wm;
}

/*
 * The writer's slow path: from the commit's wake check when a reader waits and a watermark may
 * be unread, or a flush is pending; from evr_ring_flush() (@force). Async-signal-safe: the
 * only system calls are FUTEX_WAKE and an eventfd write, and errno is preserved for the
 * interrupted code.
 */
static void wake_now(struct evr_ring *r, uint64_t tail, int force);

void evr__wake_slow(struct evr_ring *r, uint64_t head, int force)
{
	struct evr_ctrl *c = r->ctrl;
	uint64_t tail = READ_ONCE(c->data_tail); /* a distance only: nothing is read through it */

	if (head - tail > r->data_size)
		tail = head - r->data_size; /* a hostile tail: fall back to "full" */
	r->wake_tail = tail;
	if (r->flush_pending) {
		r->flush_pending = 0;
		force = 1;
	}
	if (!force && head - tail < watermark_of(c, r->data_size))
		return;
	if (force)
		__atomic_fetch_add(&c->flush_seq, 1, __ATOMIC_RELAXED);
	wake_now(r, tail, force);
}

/*
 * The commit's wake check when its fast path does not apply (evr__wake_check_spsc()): a flush
 * left pending by a signal handler, or a writer process that fences itself because membarrier
 * registration failed. That writer pays a full barrier for each look at reader_waiting, so it
 * looks only while a watermark may be unread, by the data_tail it reads first.
 */
void evr__wake_check_special(struct evr_ring *r, uint64_t head)
{
	struct evr_ctrl *c = r->ctrl;
	uint64_t wm = READ_ONCE(c->watermark), tail;

	if (r->flush_pending) {
		evr__wake_slow(r, head, 0); /* forced: it sees flush_pending */
		return;
	}
	if (head - r->wake_tail < wm)
		return;
	tail = READ_ONCE(c->data_tail); /* a distance only: nothing is read through it */
	r->wake_tail = tail;
	if (head - tail < wm)
		return;
	smp_mb(); /* W, self-fenced: pairs with R (reader_waiting, membarrier) in evr_reader_wait() */
	if (READ_ONCE(c->reader_waiting))
		evr__wake_slow(r, head, 0);
}

/*
 * The multi-producer commit's check past its look at reader_waiting (maybe_wake() in mpsc.c),
 * for a commit ending at @head. The last tail seen is mp_wake_tail, in the control page: the
 * writers have no private state to keep it in. They race on it harmlessly: any value stored is
 * a tail some writer loaded, never ahead of the real one, so a stale value only makes the next
 * look at data_tail come early (docs/ordering.md 7.6).
 */
void evr__wake_check(struct evr_ring *r, uint64_t head)
{
	struct evr_ctrl *c = r->ctrl;
	uint64_t wm = watermark_of(c, r->data_size), tail;

	if (head - READ_ONCE(c->mp_wake_tail) < wm)
		return;
	tail = READ_ONCE(c->data_tail); /* a distance only: nothing is read through it */
	WRITE_ONCE(c->mp_wake_tail, tail);
	if (head - tail >= wm)
		wake_now(r, tail, 0);
}

void evr__wake_flush(struct evr_ring *r)
{
	__atomic_fetch_add(&r->ctrl->flush_seq, 1, __ATOMIC_RELAXED);
	wake_now(r, READ_ONCE(r->ctrl->data_tail), 1);
}

static void wake_now(struct evr_ring *r, uint64_t tail, int force)
{
	struct evr_ctrl *c = r->ctrl;
	int multi = !!(r->flags & EVR_RING_MULTI);
	uint64_t *woke = multi ? &c->mp_woke_tail : &r->woke_tail;
	uint64_t *woke_wm = multi ? &c->mp_woke_wm : &r->woke_wm;
	uint64_t wm = READ_ONCE(c->watermark);
	uint32_t waiting;
	int saved;

	/* W: see evr__wake_check() in internal.h */
	if (unlikely(evr__writer_fence))
		smp_mb();
	else
		barrier();
	waiting = READ_ONCE(c->reader_waiting);
	if (!waiting)
		return;
	/*
	 * A watermark wake at this tail and this watermark was issued already: the reader has
	 * not run yet (it will see the data when it does: it sleeps only with less than a
	 * watermark unread, so to sleep again it must consume, or raise its watermark) or it is
	 * dead. Either way another system call is no use; this keeps a dead or hostile reader
	 * from costing one per write. A forced wake (flush) proves nothing of the kind: it may
	 * have found nothing unread, and the reader may sleep again at this very tail, so it
	 * forgets the tail (models/wakeup.pml, SRC_WOKE_ON_FORCE, shows the lost wakeup).
	 */
	if (!force && READ_ONCE(*woke) == tail && READ_ONCE(*woke_wm) == wm)
		return;
	WRITE_ONCE(*woke, force ? EVR_WOKE_NONE : tail);
	WRITE_ONCE(*woke_wm, wm);
	saved = errno;
	if (waiting & EVR_WAITING_FUTEX) {
		/* release: pairs with the acquire load of wake_seq in evr_reader_wait() */
		__atomic_fetch_add(&c->wake_seq, 1, __ATOMIC_RELEASE);
		syscall(SYS_futex, &c->wake_seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
		__atomic_fetch_add(&c->wakeups, 1, __ATOMIC_RELAXED);
	}
	if ((waiting & EVR_WAITING_POLL) && READ_ONCE(r->efd) >= 0) {
		uint64_t one = 1;
		ssize_t n = write(READ_ONCE(r->efd), &one, sizeof(one));

		(void)n; /* a full eventfd counter already means "readable" */
	}
	errno = saved;
}

#define POLL_MS 10 /* longest sleep when membarrier() is unavailable */

static int64_t ms_left(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

int evr_reader_wait(struct evr_reader *rd, int timeout_ms)
{
	struct evr_ctrl *c;
	struct timespec deadline;
	uint64_t head, unread, wm;
	uint32_t seq, flush;
	int ret, mb_ok;

	if (!rd || timeout_ms < -1)
		return -EINVAL;
	if (rd->backward)
		return -EOPNOTSUPP; /* snapshots are taken, not waited for */
	c = rd->ctrl;
	wm = watermark_of(c, rd->size);
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	if (timeout_ms > 0) {
		deadline.tv_sec += timeout_ms / 1000;
		deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
		if (deadline.tv_nsec >= 1000000000) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000;
		}
	}
	for (;;) {
		/* first a plain look: after a wakeup, or with data there, no fence is needed */
		if (rd->multi)
			head = READ_ONCE(c->prod_head);
		else
			head = load_acquire(&c->data_head); /* C: pairs with B in output_end() */
		unread = head - rd->tail;
		flush = READ_ONCE(c->flush_seq);
		if (unread >= wm || flush != rd->flush_seen || timeout_ms == 0)
			break;
		/* acquire: pairs with the release increment in wake_now() */
		seq = load_acquire(&c->wake_seq);
		__atomic_fetch_or(&c->reader_waiting, EVR_WAITING_FUTEX, __ATOMIC_RELAXED);
		/*
		 * R: pairs with W in wake_now(). Without membarrier we cannot stand in for the
		 * writers' fence: then sleep at most POLL_MS at a time (a late wakeup, not a lost
		 * one).
		 */
		mb_ok = evr__membarrier_all(0) == 0;
		if (!mb_ok)
			smp_mb();
		if (rd->multi) /* reserved, maybe not yet committed: at worst we look too early */
			head = READ_ONCE(c->prod_head);
		else
			head = load_acquire(&c->data_head); /* C: pairs with B in output_end() */
		unread = head - rd->tail;
		flush = READ_ONCE(c->flush_seq);
		if (unread >= wm || flush != rd->flush_seen || timeout_ms == 0)
			break;
		if (timeout_ms > 0 || !mb_ok) {
			int64_t left = timeout_ms > 0 ? ms_left(&deadline) : POLL_MS;
			struct timespec ts;

			if (left <= 0)
				break;
			if (!mb_ok && left > POLL_MS)
				left = POLL_MS;
			ts.tv_sec = left / 1000;
			ts.tv_nsec = (left % 1000) * 1000000;
			ret = (int)syscall(SYS_futex, &c->wake_seq, FUTEX_WAIT, seq, &ts, NULL, 0);
		} else {
			ret = (int)syscall(SYS_futex, &c->wake_seq, FUTEX_WAIT, seq, NULL, NULL, 0);
		}
		if (ret < 0 && errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT) {
			ret = -errno;
			__atomic_fetch_and(&c->reader_waiting, ~EVR_WAITING_FUTEX,
					   __ATOMIC_RELAXED);
			return ret;
		}
		rd->st.wakeups++;
	}
	__atomic_fetch_and(&c->reader_waiting, ~EVR_WAITING_FUTEX, __ATOMIC_RELAXED);
	rd->flush_seen = flush;
	if (unread > rd->size)
		return -EBADMSG; /* the next evr_reader_begin() resynchronises */
	return (int)unread;
}

int evr_reader_set_watermark(struct evr_reader *rd, uint64_t bytes)
{
	if (!rd || bytes > rd->size)
		return -EINVAL;
	/* writers compare against this word on every commit: a new value applies at once */
	WRITE_ONCE(rd->ctrl->watermark, bytes ? bytes : rd->size / 2);
	return 0;
}

/*
 * The poll fd: an eventfd owned by the ring handle (closed with it, never while a writer of
 * this process might still write it), written by the writer's slow path while the POLL bit is
 * set. Writers in other processes cannot reach it: there, a thread blocked in
 * evr_reader_wait() forwards to whatever the event loop watches.
 */
int evr_reader_get_fd(struct evr_reader *rd)
{
	struct evr_ring *r;
	int fd;

	if (!rd)
		return -EINVAL;
	r = rd->ring;
	if (!r || rd->backward)
		return -EOPNOTSUPP;
	if (r->efd < 0) {
		fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fd < 0)
			return -errno;
		WRITE_ONCE(r->efd, fd);
	}
	__atomic_fetch_or(&rd->ctrl->reader_waiting, EVR_WAITING_POLL, __ATOMIC_RELAXED);
	/* R: as in evr_reader_wait(); afterwards every writer's wake check sees the bit */
	if (evr__membarrier_all(0) < 0)
		smp_mb(); /* R fallback: pairs with W in wake_now() (writers see the bit late) */
	return r->efd;
}
