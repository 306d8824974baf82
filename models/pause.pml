/* SPDX-License-Identifier: MIT */
/*
 * Spin model of the pause handshake (src/ring.c: reserve() and evr_ring_write()'s fast path,
 * output_end()/publish_outer(), evr_ring_set_paused() and wait_quiescent(); src/wait.c:
 * evr__membarrier_all()) on x86-TSO: one writer, one pausing reader. Run by
 * tests/t-model-pause.sh.
 *
 * The protocol (commit "Asymmetric fences for wakeups and pause")
 *   writer, per write: nest = 1 (plain store, B in reserve()); barrier() -- compiler only;
 *                      load paused (acquire: a plain load on TSO);
 *                      paused: count it lost; output_end(): data_head = head (unchanged),
 *                              nest = 0 (release)
 *                      else:   write the payload; output_end(): data_head = head (B),
 *                              nest = 0 (release)
 *   reader, per pause: paused = 1 (WRITE_ONCE); membarrier(); wait until nest == 0 (acquire
 *                      loads); read the snapshot (data_head and the payload); resume:
 *                      paused = 0 (release)
 *   The writer's "store nest; load paused" and the reader's "store paused; load nest" are a
 *   store-load (Dekker) pair: the writer has no fence, the reader's membarrier() makes the
 *   writer's CPU execute one. Either the writer sees paused, or the reader sees nest raised and
 *   waits for the release store of nest = 0, which comes after the writer's payload.
 *
 * x86-TSO and membarrier(): as in models/wakeup.pml. Each CPU has a FIFO store buffer drained
 *   by its own flusher process at nondeterministic times; loads forward from the own buffer;
 *   membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) drains the caller's buffer (syscall entry),
 *   then at one atomic point drains the writer's whole buffer (the IPI: the writer's CPU runs an
 *   mfence between two of its instructions). For a writer process that could not register
 *   (EVR_WRITER_SELF_FENCE in writer_flags) the reader uses MEMBARRIER_CMD_GLOBAL, which
 *   reaches every CPU: the same step in this model. The wait loop of wait_quiescent() is a
 *   blocking guard on memory (the reader never stores nest, so memory is what its loads see).
 *
 * What is checked (assertions)
 *   - no writer store to the payload is issued, and no writer store that changes the payload
 *     or data_head reaches memory, between the reader's snapshot start and end (ghost variable
 *     `reading`: asserted by the writer at its payload store and wherever the writer's buffer
 *     is drained; the paused path's publish_outer() stores the same data_head again, which
 *     changes nothing);
 *   - the snapshot is complete: every record below the data_head it reads is there.
 *
 * Variants (spin -D...):
 *   NO_MEMBARRIER  the reader fences only itself (smp_mb()), the writer has no fence
 *                                                    -> assertion violated
 *   NO_WAIT        the reader does not wait for nest == 0 (the check is live)
 *                                                    -> assertion violated
 *   BIND_RACE      the writer binds while the reader pauses (a flaw in src/ring.c):
 *                  evr__ring_take_writer() of a process whose registration failed stores
 *                  writer_flags = EVR_WRITER_SELF_FENCE (plain store) just before its first
 *                  write; evr_ring_set_paused() reads writer_flags right after its plain store
 *                  paused = 1 and before membarrier(). On TSO both stores can sit in their
 *                  buffers: the reader sees the old flags (0) and uses GLOBAL_EXPEDITED, which
 *                  does not reach the unregistered writer; the writer's paused load passes its
 *                  own nest store; the reader sees nest == 0 and snapshots while the writer
 *                  writes                                  -> assertion violated
 *   BIND_FIX       with BIND_RACE: smp_mb() after the writer_flags store in take_writer() and
 *                  smp_mb() between the reader's paused store and its writer_flags load
 *                                                          -> must hold (each alone fails)
 * Knobs: N (writes attempted), RP (pause/resume rounds).
 */

#ifndef N
#define N	3	/* writes the writer attempts; each one byte */
#endif
#ifndef RP
#define RP	2	/* pause, snapshot, resume rounds of the reader */
#endif
#define SB	4	/* store buffer entries per CPU */

/* addresses in mem[] */
#define NEST	0	/* nest, W */
#define PAUSED	1	/* paused, R */
#define HEAD	2	/* data_head, W */
#define FLAGS	3	/* writer_flags (EVR_WRITER_SELF_FENCE), W */
#define DATA	4	/* DATA + k: the payload byte of record k */
#define NADDR	(DATA + N)

#define W	0
#define R	1

typedef sbuf {
	byte a[SB];
	byte v[SB];
	byte n
};

byte mem[NADDR];
sbuf sb[2];
bit reading;	/* ghost: the reader is between snapshot start and end */
byte lost;	/* writes refused while paused */

inline store(p, addr, val)
{
	d_step {
		sb[p].n < SB ->
		sb[p].a[sb[p].n] = addr;
		sb[p].v[sb[p].n] = val;
		sb[p].n++
	}
}

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

/* the oldest entry of sb[p] reaches memory; inside a d_step; i is scratch */
inline flush_one(p)
{
	/* a write that changes the snapshot (the paused path republishes the same data_head) */
	assert(!(p == W && reading && (sb[p].a[0] >= DATA || sb[p].a[0] == HEAD) &&
		 mem[sb[p].a[0]] != sb[p].v[0]));
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

/* the IPI of membarrier(): the writer's CPU executes a full barrier */
inline ipi_writer()
{
	d_step {
		do
		:: sb[W].n > 0 -> flush_one(W)
		:: else -> break
		od
	}
}

active proctype writer()
{
	byte head = 0, k = 0, pd, i;

#ifdef BIND_RACE
	/* evr__ring_take_writer() of a process whose registration failed */
	store(W, FLAGS, 1);
#ifdef BIND_FIX
	drain(W);	/* smp_mb(): writer_flags is visible before the first nest/paused pair */
#endif
#endif
	do
	:: k < N ->
		store(W, NEST, 1);	/* B in reserve(); barrier() */
		load(W, PAUSED, pd);	/* acquire */
		if
		:: pd ->
			lost++;
			store(W, HEAD, head);	/* publish_outer(): the same head again */
			store(W, NEST, 0)	/* release */
		:: else ->
			assert(!reading);
			store(W, DATA + head, 1);
			head++;
			store(W, HEAD, head);	/* B of output_end() */
			store(W, NEST, 0)	/* release */
		fi;
		k++
	:: else -> break
	od
}

active proctype reader()
{
	byte round = 0, h, v, f, k, i;

	do
	:: round < RP ->
		/* evr_ring_set_paused(r, true, -1) */
		store(R, PAUSED, 1);
#ifdef BIND_RACE
#ifdef BIND_FIX
		drain(R);		/* smp_mb(): paused = 1 is visible first */
#endif
		load(R, FLAGS, f);	/* read before the membarrier() call */
#else
		f = 0;			/* registered writer: GLOBAL_EXPEDITED */
#endif
		/* wait_quiescent(): evr__membarrier_all() */
		drain(R);		/* syscall entry (or smp_mb() under NO_MEMBARRIER) */
#ifndef NO_MEMBARRIER
#ifdef BIND_RACE
		if
		:: f != 0 -> ipi_writer()	/* MEMBARRIER_CMD_GLOBAL: every CPU */
		:: else		/* GLOBAL_EXPEDITED: no IPI to the unregistered writer */
		fi;
#else
		ipi_writer();	/* GLOBAL_EXPEDITED, registered writer */
#endif
#endif
#ifndef NO_WAIT
		mem[NEST] == 0;		/* acquire loads until nest == 0 */
#endif
		/* the snapshot */
		reading = 1;
		load(R, HEAD, h);
		k = 0;
		do
		:: k < h ->
			load(R, DATA + k, v);
			assert(v == 1);
			k++
		:: else -> break
		od;
		reading = 0;
		/* evr_ring_set_paused(r, false, 0): release */
		store(R, PAUSED, 0);
		round++
	:: else -> break
	od
}

init
{
	atomic {
		run flusher(W);
		run flusher(R)
	}
}
