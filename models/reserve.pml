/* SPDX-License-Identifier: MIT */
/*
 * Spin model of the core ring's reservation with a nested writer (src/ring.c: fast_write() and
 * reserve()): the outermost fast path takes its bytes with one xadd and checks the room against
 * its cached tail afterwards, giving the bytes back if there was none. A signal handler may
 * run between any two of its steps. Run by tests/t-model-reserve.sh.
 *
 * What is modelled
 *   A ring of CAP units. head is the writer context's reserve position (r->head), dhead the
 *   published data_head, tail the reader's data_tail, tcache the writer's cached tail
 *   (r->tail_cache, never ahead of tail). The reader consumes published units whenever it
 *   likes. The thread writes WO records of 1 or 2 units through the fast path:
 *     F3 pos = head, head += size (xadd: one instruction, so one step), with no check first;
 *     F4 room check of pos + size against tcache: room, the bytes are kept; else
 *     F5 give them back with a cmpxchg of head from pos + size to pos (one instruction). It
 *     fails only if a handler reserved after them, and that handler's own room check counted
 *     them: they are within the ring, and become padding. Either way the record then goes
 *     through the general path.
 *   Then it publishes (dhead = head) as the outermost level.
 *   The general path (reserve()) checks the room for size (+ need in the NEED variant) against
 *   tcache, re-reads tail into tcache only if that shows none, and takes the bytes with a
 *   cmpxchg that fails if a handler moved head in between: one step here, since a retry sees
 *   what the handler did. Refused, it poisons tcache (lose(): head - CAP - 1 - MARGIN) so the
 *   next write re-reads the tail. The handler fires
 *   NIRQ times between any two steps of the thread (in_irq freezes the thread), each time
 *   writing WI records of 1 or 2 units through the general path, and publishes them only if
 *   the thread is not inside a write (else the thread's publication covers them: the 1b038c6
 *   rule, see models/pause.pml).
 *
 * What is checked: every reservation that is kept (written: a record or padding) lies within
 *   tail + CAP for the tail as it is at that step (tail only grows afterwards), i.e. no writer
 *   ever writes bytes the reader has not consumed; and at the end everything reserved was
 *   published. Bytes the fast path takes past the room and gives back are never written.
 *
 * Variants:
 *   KEEP_OVERRUN  no give-back: the fast path keeps bytes past its room  -> assertion violated
 *   NEED      the previous fast path: announce the size in need (r->fast_need), read head,
 *             check the room, xadd, withdraw need; the general path leaves need bytes free
 *                                                                        -> must hold
 *   NO_NEED   NEED with a general path that ignores need: a handler that lands between the
 *             check and the xadd takes the room the fast path counted on -> assertion violated
 *   CMPXCHG   the first fast path: a cmpxchg from the head it checked, which fails (and takes
 *             the general path) if a handler moved head                  -> must hold
 *   POISON_NO_MARGIN  the first poison_tail() with the xadd-first fast path: a handler refused
 *             while the fast path's bytes are out poisons the cache from a head that includes
 *             them; once they are given back the cache shows room again, and a later write
 *             skips the re-read of the tail                              -> assertion violated
 * Knobs: CAP, WO, WI, NIRQ.
 */

#ifndef CAP
#define CAP	4
#endif
#ifndef WO
#define WO	3
#endif
#ifndef WI
#define WI	2
#endif
#ifndef NIRQ
#define NIRQ	2
#endif

#ifdef POISON_NO_MARGIN
#define MARGIN	0
#else
#define MARGIN	2	/* the largest record: poison_tail()'s extra distance */
#endif

byte head, dhead, tail, need;
int tcache;	/* may be poisoned below zero */
bit in_irq, inwrite, wdone;

/* a step of the thread: it stands still while its handler runs */
#define G	(!in_irq)

inline check(pos, sz)
{
	assert(pos + sz <= tail + CAP)
}

/*
 * the general path: one step for the level that runs it (see above). The cached tail first;
 * only if it shows no room, re-read data_tail (A); still none: refused, and lose() poisons
 * the cache so that the next write re-reads too.
 */
inline general(sz, extra, got)
{
	if
	:: head + sz + extra <= tcache + CAP ->
		check(head, sz);
		head = head + sz;
		got = 1
	:: else ->
		tcache = tail;	/* A: re-read data_tail */
		if
		:: head + sz + extra <= tcache + CAP ->
			check(head, sz);
			head = head + sz;
			got = 1
		:: else ->
			tcache = head - CAP - 1 - MARGIN;	/* poison_tail() */
			got = 0
		fi
	fi
}

proctype handler()
{
	byte i, k, sz, ex;
	bit got;

	do
	:: k < NIRQ ->
		in_irq = 1;	/* fires between any two steps of the thread */
		i = 0;
		do
		:: i < WI ->
			if
			:: sz = 1
			:: sz = 2
			fi;
#ifdef NEED
			ex = need;
#else
			ex = 0;
#endif
			atomic { general(sz, ex, got) };
			i++
		:: else -> break
		od;
		atomic {
			if
			:: !inwrite -> dhead = head	/* outermost: publishes its own */
			:: else		/* the thread's publication covers them */
			fi;
			in_irq = 0
		};
		k++
	:: else -> break
	od
}

proctype thread()
{
	byte i, sz, h, pos;
	bit got;

	do
	:: i < WO ->
		if
		:: sz = 1
		:: sz = 2
		fi;
		atomic { G -> inwrite = 1 };
#if defined(NEED) || defined(NO_NEED)
		atomic { G -> need = sz };	/* N3 */
		atomic { G -> h = head };	/* N4 */
		if
		:: (G && h + sz <= tcache + CAP) ->	/* N5: room per the cached tail */
			atomic { G -> pos = head; check(pos, sz); head = head + sz };	/* N6: xadd */
			atomic { G -> need = 0 }	/* N7 */
		:: (G && h + sz > tcache + CAP) ->
			atomic { G -> need = 0 };
			atomic { G -> general(sz, 0, got) }
		fi;
#elif defined(CMPXCHG)
		atomic { G -> h = head };
		if
		:: (G && h + sz <= tcache + CAP) ->
			atomic { G ->
				if
				:: head == h -> pos = head; check(pos, sz); head = head + sz; got = 1
				:: else -> got = 0
				fi };
			if
			:: !got -> atomic { G -> general(sz, 0, got) }
			:: else
			fi
		:: (G && h + sz > tcache + CAP) -> atomic { G -> general(sz, 0, got) }
		fi;
#else
		atomic { G -> pos = head; head = head + sz };	/* F3: xadd, unchecked */
		if
		:: atomic { G && pos + sz <= tcache + CAP -> check(pos, sz) }	/* F4: keep */
		:: (G && pos + sz > tcache + CAP) ->
			atomic { G ->
#ifdef KEEP_OVERRUN
				check(pos, sz)
#else
				if
				:: head == pos + sz -> head = pos	/* F5: cmpxchg gives them back */
				:: else -> check(pos, sz)	/* a handler took bytes after ours: pad */
				fi
#endif
			};
			atomic { G -> general(sz, 0, got) }
		fi;
#endif
		atomic { G -> dhead = head; inwrite = 0 };	/* publish, as the outermost level */
		i++
	:: else -> break
	od;
	wdone = 1
}

proctype reader()
{
	do
	:: atomic { tail < dhead -> tail++ }
	:: wdone -> break
	od
}

init
{
	atomic {
		run thread();
		run handler();
		run reader()
	}
	/* at the end, everything reserved was published */
	_nr_pr == 1;
	assert(dhead == head)
}
