/* SPDX-License-Identifier: MIT */
/*
 * Spin model of the wakeup protocol (src/wait.c evr__wake_slow() and evr_reader_wait(), with
 * output_end() and evr_ring_flush() of src/ring.c) on x86-TSO: one writer, one reader, the
 * kernel futex. Run by tests/t-model-wakeup.sh; see there for the build flags.
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
 * x86-TSO
 *   Each CPU (writer W, reader R) has a FIFO store buffer sb[p]. A store appends to it; a
 *   separate flusher process per CPU moves the oldest entry to mem[] at any time (Promela's
 *   interleaving makes the drain timing nondeterministic). A load returns the newest entry for
 *   its address in the own buffer, else mem[] (store forwarding). smp_mb() (mfence) blocks until
 *   the own buffer is empty; so does a locked RMW (lock xadd on wake_seq) and a futex system
 *   call (the kernel takes the hash-bucket spinlock, a locked instruction). Stores are FIFO and
 *   loads are not reordered with loads, so acquire/release are plain accesses on TSO: the only
 *   reordering left is a later load passing an earlier buffered store -- the one the W/R
 *   barriers exist for.
 *
 * Must-fail variants (spin -D...):
 *   NO_WRITER_MB   drop W, the smp_mb() in evr__wake_slow()        -> lost wakeup
 *   NO_READER_MB   drop R, the smp_mb() in evr_reader_wait()       -> lost wakeup
 *   SRC_WAKE_NEXT  the first wake_next rule of src/wait.c           -> lost wakeup (a flaw in the
 *                  C code, not a memory-ordering one: see "wake_next" below); it fails with
 *                  or without NO_FLUSH
 *   HEAD_FIRST     publish data_head before the payload            -> assertion violated (shows
 *                  the safety check is live)
 * Other knobs: NO_FLUSH (no evr_ring_flush() calls), N, WM, RR.
 *
 * The default model uses the rule src/wait.c now implements (there as wake_tail: the next check
 * comes when head - tail_seen reaches the watermark, i.e. at tail + WM, or at the very next
 * commit with a watermark or more unread); SRC_WAKE_NEXT keeps the earlier, broken rule.
 *
 * Scale: records are one byte; the writer commits N of them, the watermark is WM bytes, the
 * reader calls evr_reader_wait(rd, -1) RR times and consumes a nondeterministic amount before
 * each call. Timeouts are not modelled: a timed-out wait only hides a lost wakeup.
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

inline drain(p)
{
	sb[p].n == 0
}

proctype flusher(byte p)
{
	byte i;
end:
	do
	:: d_step {
		sb[p].n > 0 ->
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
	od
}

/*
 * evr__wake_slow(r, head, force).
 *
 * wake_next: the writer checks again only when head reaches wake_next. It must not pass the
 * point where a reader that sleeps now needs waking: that reader saw head (or later, by the
 * W/R pair) and sleeps with rtail > head - WM, and rtail >= the tail we loaded, so its target
 * rtail + WM is at least max(head + 1, tail + WM) -- and may be exactly that. src/wait.c uses
 * head + WM whenever unread >= WM or force, which assumes the reader will have consumed up to
 * head; a reader that consumed less (or published data_tail just after we loaded it) sleeps
 * through its watermark (SRC_WAKE_NEXT).
 */
inline wake_slow(force)
{
	load(W, TAIL, tail);
	unread = head - tail;
	if
	:: !force && unread < WM ->
		wake_next = head + (WM - unread)
	:: else ->
#ifdef SRC_WAKE_NEXT
		wake_next = head + WM;
#else
		if
		:: unread < WM -> wake_next = head + (WM - unread)
		:: else -> wake_next = head + 1
		fi;
#endif
		if
		:: force ->
			load(W, FSEQ, v);
			store(W, FSEQ, v + 1)
		:: else
		fi;
#ifndef NO_WRITER_MB
		drain(W);	/* W: smp_mb(), pairs with R */
#endif
		load(W, WAITING, waiting);
		if
		:: waiting ->
			drain(W);	/* lock xadd: a full barrier */
			d_step { mem[WSEQ]++ };
			/* FUTEX_WAKE: under the bucket lock, after the increment is in memory */
			blocked = 0
		:: else
		fi
	fi
}

active proctype writer()
{
	byte head = 0, wake_next = 0, tail, unread, waiting, v, i;

	/* evr__ring_bind(): wake_next = head, so the first commit looks */
	do
	:: head < N ->
		/* evr_ring_write(): payload first, then publish (output_end) */
#ifndef HEAD_FIRST
		store(W, DATA + head, 1);
		head++;
		store(W, HEAD, head);	/* B: pairs with C in the reader */
#else
		store(W, HEAD, head + 1);
		store(W, DATA + head, 1);
		head++;
#endif
		if
		:: head >= wake_next -> wake_slow(0)
		:: else
		fi;
#ifndef NO_FLUSH
		/* maybe evr_ring_flush() now (nest == 0 here); only the wake part is modelled */
		if
		:: wake_slow(1)
		:: skip
		fi
#endif
	:: else -> break
	od;
	wdone = 1
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
		store(R, WAITING, 1);
#ifndef NO_READER_MB
		drain(R);	/* R: smp_mb(), pairs with W */
#endif
		load(R, HEAD, h);	/* C */
		load(R, FSEQ, f);
		if
		:: h - rtail >= WM || f != seen ->
			store(R, WAITING, 0);
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
