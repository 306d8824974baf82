/* SPDX-License-Identifier: MIT */
/*
 * Spin model of the core ring's reservation with a nested writer (src/ring.c: fast_write() and
 * reserve()): the outermost fast path takes its bytes with one xadd, after checking the room
 * against its cached tail, and a signal handler that runs between that check and the xadd must
 * leave those bytes free. Run by tests/t-model-reserve.sh.
 *
 * What is modelled
 *   A ring of CAP units. head is the writer context's reserve position (r->head), dhead the
 *   published data_head, tail the reader's data_tail, tcache the writer's cached tail
 *   (r->tail_cache, never ahead of tail), need the bytes the fast path announced
 *   (r->fast_need). The reader consumes published units whenever it likes.
 *   The thread writes WO records of 1 or 2 units through the fast path:
 *     F3 need = size; F4 h = head; F5 room check of h + size against tcache (no room: need = 0,
 *     and the general path below); F6 pos = head, head += size (xadd: one instruction, so one
 *     step); F7 need = 0; then it publishes (dhead = head) as the outermost level.
 *   The general path (reserve()) re-reads tail into tcache, checks the room for size + need
 *   and takes the bytes with a cmpxchg that fails if a handler moved head in between: one step
 *   here, since a retry sees what the handler did. The handler fires NIRQ times between any two
 *   steps of the thread (in_irq freezes the thread), each time writing WI records of 1 or 2
 *   units through the general path, and publishes them only if the thread is not inside a
 *   write (else the thread's publication covers them: the 1b038c6 rule, see models/pause.pml).
 *
 * What is checked: every reservation [pos, pos + size) lies within tail + CAP for the tail as
 *   it is at that step (tail only grows afterwards), i.e. no writer ever takes bytes the reader
 *   has not consumed; and at the end everything reserved was published.
 *
 * Variants:
 *   NO_NEED   the general path ignores need: a handler that lands between F5 and F6 takes
 *             the room the fast path counted on, and the xadd then runs past the reader's
 *             tail                                         -> assertion violated
 *   CMPXCHG   the fast path as it was: F6 is a cmpxchg from h that fails (and takes the general
 *             path) if a handler moved head; no need     -> must hold
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

byte head, dhead, tail, tcache, need;
bit in_irq, inwrite, wdone;

/* a step of the thread: it stands still while its handler runs */
#define G	(!in_irq)

inline check(pos, sz)
{
	assert(pos + sz <= tail + CAP)
}

/* the general path: one step for the level that runs it (see above) */
inline general(sz, extra, got)
{
	tcache = tail;	/* A: re-read data_tail */
	if
	:: head + sz + extra <= tcache + CAP ->
		check(head, sz);
		head = head + sz;
		got = 1
	:: else -> got = 0
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
#ifdef NO_NEED
			ex = 0;
#else
			ex = need;
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
#ifndef CMPXCHG
		atomic { G -> need = sz };	/* F3 */
#endif
		atomic { G -> h = head };	/* F4 */
		if
		:: (G && h + sz <= tcache + CAP) ->	/* F5: room per the cached tail */
#ifdef CMPXCHG
			atomic { G ->
				if
				:: head == h -> pos = head; check(pos, sz); head = head + sz; got = 1
				:: else -> got = 0
				fi };
			if
			:: !got -> atomic { G -> general(sz, 0, got) }
			:: else
			fi
#else
			atomic { G -> pos = head; check(pos, sz); head = head + sz };	/* F6: xadd */
			atomic { G -> need = 0 }	/* F7 */
#endif
		:: (G && h + sz > tcache + CAP) ->
#ifndef CMPXCHG
			atomic { G -> need = 0 };
#endif
			atomic { G -> general(sz, 0, got) }
		fi;
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
