/* SPDX-License-Identifier: MIT */
/*
 * Spin model of the wakeup protocol on x86-TSO: one writer, one reader, the kernel futex and
 * membarrier(). Writer: a commit as evr_ring_write()/output_end() make it (payload, then B, the
 * data_head store), then evr__wake_check_spsc() (src/internal.h), evr__wake_slow() and
 * wake_now() (src/wait.c); evr_ring_flush() (src/ring.c) between commits, and a flush from a
 * signal handler inside a write (flush_pending). Reader: evr_reader_begin/next/end, then
 * evr_reader_wait(rd, -1) (src/wait.c). Run by tests/t-model-wakeup.sh; see there for the
 * build flags.
 *
 * The protocol (commit "Asymmetric fences for wakeups and pause")
 *   writer, after B:   barrier()  -- compiler only: program order, no mfence (W)
 *                      if flush_pending: evr__wake_slow(head, 0)  (it forces)
 *                      else if reader_waiting and head - wake_tail >= WM:
 *                          evr__wake_slow(head, 0)
 *                      (a self-fencing writer, WRITER_FENCE: if head - wake_tail >= WM:
 *                       tail = data_tail; wake_tail = tail; if head - tail >= WM: smp_mb();
 *                       if reader_waiting: evr__wake_slow(head, 0))
 *   evr__wake_slow:    tail = data_tail; wake_tail = tail; flush_pending -> force;
 *                      if !force and head - tail < WM: return;
 *                      if force: lock xadd flush_seq; wake_now()
 *   wake_now:          barrier() (W again); if reader_waiting: unless !force and tail ==
 *                      woke_tail (a watermark wake at this tail was issued already):
 *                      woke_tail = force ? none : tail; lock xadd wake_seq; FUTEX_WAKE
 *   evr_ring_flush:    (nest == 0) evr__wake_slow(head, 1); inside a write: flush_pending = 1
 *   reader:            seq = wake_seq; lock or reader_waiting; membarrier(GLOBAL_EXPEDITED) (R);
 *                      load data_head (C) and flush_seq; if nothing due: FUTEX_WAIT(seq)
 *   W and R are the two halves of a store-load (Dekker) pair: writer "store data_head; load
 *   reader_waiting", reader "store reader_waiting; load data_head". The writer has no fence; the
 *   reader's membarrier() makes the writer's CPU execute one.
 *
 * x86-TSO
 *   Each CPU (writer W, reader R) has a FIFO store buffer sb[p]. A store appends to it; a
 *   separate flusher process per CPU moves the oldest entry to mem[] at any time (Promela's
 *   interleaving makes the drain timing nondeterministic). A load returns the newest entry for
 *   its address in the own buffer, else mem[] (store forwarding). smp_mb() (mfence) blocks until
 *   the own buffer is empty; a locked RMW (lock xadd on wake_seq and flush_seq, lock or/and on
 *   reader_waiting) waits for the own buffer to drain and then updates mem[] directly; a futex
 *   system call is fenced too (the bucket spinlock). Stores are FIFO and loads are not reordered
 *   with loads, so acquire/release and compiler barriers are plain program order on TSO: the
 *   only reordering left is a later load passing an earlier buffered store.
 *
 * membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)
 *   A system call: smp_mb on entry and exit, so the reader's buffer is drained first. Then, at
 *   one atomic point during the call, the IPI makes the writer's CPU execute a full barrier:
 *   the writer's whole buffer is moved to mem[] in one step, between two of the writer's
 *   instructions (wherever the IPI lands). Only a registered writer process gets the IPI; an
 *   unregistered one (registration refused) fences itself instead: WRITER_FENCE.
 *
 * What is checked
 *   safety:  every byte the reader consumes or is told is ready was written (B pairs with C);
 *            assert() failures are errors.
 *   no lost wakeup: an end-state check. The reader's FUTEX_WAIT has exactly two ways out: a
 *            FUTEX_WAKE, or -- once the writer has returned from its last call and its store
 *            buffer has drained, so memory is final -- a "legitimate eternal sleep" exit taken
 *            only if the reader's wait condition (unread >= watermark, or a flush it has not
 *            seen) is false in that final memory. A reader still blocked with its condition
 *            true has no executable statement and is not at an end label: pan reports "invalid
 *            end state", i.e. a lost wakeup. No LTL or fairness is needed: the writer runs a
 *            bounded number of commits, so every execution terminates.
 *
 * Variants (spin -D...):
 *   WRITER_FENCE       writer process not registered: smp_mb() at W (evr__writer_fence), and the
 *                      reader's membarrier(GLOBAL_EXPEDITED) does not IPI it (it fences the
 *                      reader only)                                     -> must hold
 *   NO_MEMBARRIER_IPI  the reader fences only itself (smp_mb()) while the writer has no fence;
 *                      also "an unregistered writer that forgot to fence" -> lost wakeup
 *   NO_READER_MB       the reader has neither membarrier() nor smp_mb() -> lost wakeup
 *   PLAIN_WAITING      reader_waiting set/cleared by plain stores instead of lock or/and. With
 *                      WRITER_FENCE NO_READER_MB PLAIN_WAITING           -> lost wakeup (the
 *                      reader's half of the pair is live); with WRITER_FENCE NO_READER_MB and
 *                      the locked or the model holds: on x86 the lock or is itself R
 *   SRC_WAKE_NEXT      the first wake_next rule of src/wait.c: after a check that found a
 *                      watermark unread (or forced), the next check comes a watermark after
 *                      head (wake_tail = head), as if the reader had consumed up to head
 *                                                                       -> lost wakeup (not a
 *                      memory-ordering flaw: a reader that consumed less sleeps through its
 *                      watermark); fails with or without NO_FLUSH
 *   SRC_WOKE_ON_FORCE  the first woke_tail rule of src/wait.c: a forced wake (a flush) also
 *                      recorded its tail, so a later watermark crossing at that same tail was
 *                      taken for one already woken and skipped, though the flush may have found
 *                      nothing unread and the reader slept again      -> lost wakeup (found by
 *                      tests/wake-stress under TSAN: flush just after the reader emptied the
 *                      ring, then a one-record burst)
 *   WAITING_BEFORE_HEAD  the commit's load of reader_waiting placed before its data_head
 *                      store (what a missing compiler barrier allows) -> lost wakeup: the
 *                      reader's membarrier() cannot order a load the writer already made
 *   HEAD_FIRST         publish data_head before the payload            -> assertion violated
 *                      (the safety check is live)
 * Other knobs: NO_FLUSH (no evr_ring_flush() calls, neither between commits nor nested), N,
 * WM, RR.
 *
 * Why wake_tail = the tail seen: a reader that sleeps now saw head (or later, by W/R) and
 * sleeps with rtail > head - WM, and rtail >= every tail the writer has loaded, so it must be
 * woken at rtail + WM, which is at least tail_seen + WM and may be exactly that: the writer
 * must look at every commit from tail_seen + WM on, re-reading data_tail as it goes.
 *
 * Not modelled: timeouts and the reader's fallback when membarrier() itself fails (smp_mb and
 * FUTEX_WAIT capped at 10 ms: a late wakeup, not a lost one; a timed-out wait only hides a
 * lost wakeup), the poll fd (EVR_WAITING_POLL: the same pair, an eventfd write instead of the
 * futex), multi-producer rings, set_watermark, hostile values.
 *
 * Scale: records are one byte; the writer commits N of them, the watermark is WM bytes, the
 * reader calls evr_reader_wait(rd, -1) RR times and consumes a nondeterministic amount before
 * each call.
 */

#ifndef N
#define N	3	/* records (bytes) the writer commits */
#endif
#ifndef WM
#define WM	2	/* watermark, bytes; c->watermark, fixed (set_watermark not modelled) */
#endif
#ifndef RR
#define RR	2	/* evr_reader_wait() calls */
#endif
#define SB	4	/* store buffer entries per CPU; a full buffer stalls the store */

/* addresses in mem[] */
#define HEAD	0	/* data_head, W */
#define TAIL	1	/* data_tail, R */
#define WAITING	2	/* reader_waiting (the EVR_WAITING_FUTEX bit), R */
#define WSEQ	3	/* wake_seq, the futex word, W */
#define FSEQ	4	/* flush_seq, W */
#define DATA	5	/* DATA + k: the payload byte of record k */
#define NADDR	(DATA + N)

#define W	0
#define R	1
#define NONE	255	/* woke_tail before any watermark wake (~0 in src/ring.c) */

typedef sbuf {
	byte a[SB];	/* address, oldest first */
	byte v[SB];	/* value */
	byte n		/* entries in use */
};

byte mem[NADDR];
sbuf sb[2];
bit blocked;	/* the futex queue: the reader sleeps in FUTEX_WAIT */
bit wdone;	/* the writer returned from its last call */

inline store(p, addr, val)
{
	d_step {
		sb[p].n < SB ->
		sb[p].a[sb[p].n] = addr;
		sb[p].v[sb[p].n] = val;
		sb[p].n++
	}
}

/* newest own buffered store to addr, else memory; i is the caller's scratch */
inline load(p, addr, res)
{
	d_step {
		res = mem[addr];
		i = 0;
		do
		:: i < sb[p].n ->
			if
			:: sb[p].a[i] == addr -> res = sb[p].v[i]
			:: else
			fi;
			i++
		:: else -> break
		od;
		i = 0
	}
}

/* smp_mb(): wait until the own buffer is empty */
inline drain(p)
{
	sb[p].n == 0
}

/* a locked RMW that sets mem[addr] = val (lock or/and, lock xadd): drained, then in memory */
inline locked_set(p, addr, val)
{
	d_step { sb[p].n == 0 -> mem[addr] = val }
}

/* move the oldest entry of sb[p] to memory; caller is in a d_step; i is scratch */
inline flush_one(p)
{
	mem[sb[p].a[0]] = sb[p].v[0];
	i = 1;
	do
	:: i < sb[p].n ->
		sb[p].a[i - 1] = sb[p].a[i];
		sb[p].v[i - 1] = sb[p].v[i];
		i++
	:: else -> break
	od;
	sb[p].n--;
	sb[p].a[sb[p].n] = 0;
	sb[p].v[sb[p].n] = 0;
	i = 0
}

proctype flusher(byte p)
{
	byte i;
end:
	do
	:: d_step { sb[p].n > 0 -> flush_one(p) }
	od
}

/*
 * R, the reader's half of the pair, after its lock or of reader_waiting.
 * membarrier(GLOBAL_EXPEDITED): entry fence, then the IPI drains the writer's whole buffer at
 * one atomic point (the writer's CPU runs an mfence there), then the exit fence (nothing new).
 */
inline reader_fence()
{
#if defined(NO_READER_MB)
	skip
#elif defined(NO_MEMBARRIER_IPI) || defined(WRITER_FENCE)
	drain(R)	/* smp_mb(), or a membarrier() that does not reach the writer */
#else
	drain(R);	/* syscall entry */
	d_step {	/* the IPI: the writer's CPU executes a full barrier */
		do
		:: sb[W].n > 0 -> flush_one(W)
		:: else -> break
		od
	}
#endif
}

/* W, the writer's half: barrier() (nothing, program order), or smp_mb() if self-fencing */
inline writer_fence()
{
#ifdef WRITER_FENCE
	drain(W)
#else
	skip
#endif
}

/*
 * wake_now(): W, then the reader_waiting load; the wake under lock xadd + futex. A watermark
 * wake at a tail the last watermark wake already used is skipped (woke_tail); a forced wake
 * forgets that tail, since it may have found nothing unread (SRC_WOKE_ON_FORCE: it kept it).
 */
inline wake_now()
{
	writer_fence();
	load(W, WAITING, waiting);
	if
	:: waiting && !force && woke == tail
	:: waiting && (force || woke != tail) ->
#ifdef SRC_WOKE_ON_FORCE
		woke = tail;
#else
		woke = (force -> NONE : tail);
#endif
		d_step { sb[W].n == 0 -> mem[WSEQ]++ };	/* lock xadd */
		/* FUTEX_WAKE: under the bucket lock, after the increment is in memory */
		blocked = 0
	:: else
	fi
}

/* evr__wake_slow(r, head, force); force is the caller's local */
inline wake_slow()
{
	load(W, TAIL, tail);
	wake_tail = tail;
	if
	:: fpend -> fpend = 0; force = 1
	:: else
	fi;
	if
	:: !force && head - tail < WM
	:: else ->
#ifdef SRC_WAKE_NEXT
		wake_tail = head;
#endif
		if
		:: force -> d_step { sb[W].n == 0 -> mem[FSEQ]++ }	/* lock xadd */
		:: else
		fi;
		wake_now()
	fi;
	force = 0
}

/*
 * evr__wake_check_spsc(r, c, head), after B (WAITING_BEFORE_HEAD: before it); a pending flush
 * or a self-fencing writer goes to evr__wake_check_special() (src/wait.c).
 */
inline wake_check()
{
	if
	:: fpend -> wake_slow()	/* forced: wake_slow() sees fpend */
	:: else ->
#ifdef WRITER_FENCE
		/* look at reader_waiting (and fence) only while a watermark may be unread */
		if
		:: head - wake_tail >= WM ->
			load(W, TAIL, tail);
			wake_tail = tail;
			if
			:: head - tail >= WM ->
				writer_fence();
				load(W, WAITING, waiting);
				if
				:: waiting -> wake_slow()
				:: else
				fi
			:: else
			fi
		:: else
		fi
#else
#ifndef WAITING_BEFORE_HEAD
		load(W, WAITING, waiting);	/* W: program order after B, no fence */
#endif
		if
		:: waiting && head - wake_tail >= WM -> wake_slow()
		:: else
		fi
#endif
	fi
}

active proctype writer()
{
	byte head = 0, wake_tail = 0, tail, waiting, i, woke = NONE;
	bit force = 0, fpend = 0;

	do
	:: head < N ->
		/* evr_ring_write(): payload first, then publish (output_end) */
#ifndef NO_FLUSH
		/* a signal handler's evr_ring_flush() inside this write (nest != 0) */
		if
		:: fpend = 1
		:: skip
		fi;
#endif
#ifndef HEAD_FIRST
		store(W, DATA + head, 1);
		head++;
#ifdef WAITING_BEFORE_HEAD
		load(W, WAITING, waiting);	/* the check's load hoisted above B */
#endif
		store(W, HEAD, head);	/* B: pairs with C in the reader */
#else
		store(W, HEAD, head + 1);
		store(W, DATA + head, 1);
		head++;
#endif
		wake_check();
#ifndef NO_FLUSH
		/* maybe evr_ring_flush() now (nest == 0 here); only the wake part is modelled */
		if
		:: force = 1; wake_slow()
		:: skip
		fi
#endif
	:: else -> break
	od;
	wdone = 1
}

/* reader_waiting |= / &= EVR_WAITING_FUTEX */
inline set_waiting(val)
{
#ifdef PLAIN_WAITING
	store(R, WAITING, val)
#else
	locked_set(R, WAITING, val)
#endif
}

active proctype reader()
{
	byte rtail = 0, seen = 0, seq, h, f, t, v, i, k, round = 0;

	do
	:: round < RR ->
		/* evr_reader_begin/next/end: take any prefix of what is published */
		load(R, HEAD, h);	/* C: pairs with B */
		t = rtail;
		do
		:: t < h -> t++
		:: break
		od;
		k = rtail;
		do
		:: k < t ->
			load(R, DATA + k, v);
			assert(v == 1);
			k++
		:: else -> break
		od;
		if
		:: t != rtail ->
			rtail = t;
			store(R, TAIL, rtail)	/* D */
		:: else
		fi;

		/* evr_reader_wait(rd, -1) */
again:
		load(R, WSEQ, seq);
		set_waiting(1);
		reader_fence();		/* R: pairs with W */
		load(R, HEAD, h);	/* C */
		load(R, FSEQ, f);
		if
		:: h - rtail >= WM || f != seen ->
			set_waiting(0);
			seen = f;
			/* "ready": what it reports as unread is there */
			k = rtail;
			do
			:: k < h ->
				load(R, DATA + k, v);
				assert(v == 1);
				k++
			:: else -> break
			od;
			round++
		:: else ->
			drain(R);	/* the futex syscall's locked ops */
			atomic {
				if
				:: mem[WSEQ] == seq -> blocked = 1
				:: else	/* EAGAIN */
				fi
			}
			if
			:: blocked == 0	/* woken, or never slept */
			:: atomic {
				blocked && wdone && sb[W].n == 0 &&
				!(mem[HEAD] - rtail >= WM || mem[FSEQ] != seen) ->
				goto asleep	/* nothing will ever be due: a legitimate eternal sleep */
			   }
			fi;
			goto again
		fi
	:: else -> break
	od;
asleep:
	skip
}

init
{
	atomic {
		run flusher(W);
		run flusher(R)
	}
}
