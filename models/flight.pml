/* SPDX-License-Identifier: MIT */
/*
 * Spin model of the flight recorder's page ring (src/flight.c, docs/design.md section 19): the
 * HEAD/UPDATE flags on the links, the nested writer levels that push the head and move the tail
 * and commit pages, and the reader that swaps its spare page in for the head. Run by
 * tests/t-model-flight.sh.
 *
 * What is modelled
 *   Pages 0..N-1 form the ring, page N is the reader's spare. link[i] is next << 2 | flag
 *   (NORMAL, HEAD: the page it points at is the head, UPDATE: a writer is pushing that head);
 *   prv[i] is the reader's. A page holds P slots; a record takes one slot (two with VARLEN) and
 *   carries its number (1, 2, ... in reservation order, which is buffer order); 0 in a slot
 *   means garbage (reserved and not yet written, or a page reset for a new generation), PAD
 *   means padding. PREFILL pages start full of committed records (the ring as a writer left
 *   it), so pushes start at once; the tail and commit page are then the last of them.
 *   Writer levels: the thread writes WO records; the handler (a signal handler in the same
 *   writer context) fires NIRQ times, between any two steps of the thread, and writes WI
 *   records to completion each time (in_irq freezes the thread: every step of the thread is
 *   guarded by G). Both share the writer context's own state: tail, commit page, committing,
 *   commits, per page the reserve offset wr[] and entry count ent[], each with a generation
 *   in the high bits. One reader runs concurrently with both. pushw, shared with the reader,
 *   counts the levels inside handle_head() and the pushes begun (src/flight.c fc->pushing).
 *   Writer, per record (write_one): committing++, commits++; reserve on the tail page by
 *   adding to wr[]; if that overflows the page, move_tail() (refuse on a commit overrun;
 *   link says HEAD: is the commit page the reader's? no: push the head with handle_head(), or
 *   refuse in produce/consume mode; yes: refuse if the tail left the commit page, else move on
 *   without a push; link says UPDATE: finish the push we interrupted; then tail_update()),
 *   reset_tail() (the crossing reservation pads, the others give their slots back), commit
 *   what there is and retry; else ent[]++ and write the payload; end_commit(): only the level
 *   that finds committing == 1 runs set_commit() (commit each page up to the tail, publish the
 *   commit page), and it goes again if commits changed meanwhile.
 *   Reader: if its page has committed slots beyond what it read, read them; else if the
 *   published commit page is its page, nothing is new (wait; stop once the writer is done);
 *   else find the head (load pushw; with no push in flight, follow the links from the one
 *   before its hint to the first HEAD; an UPDATE, no HEAD, or pushw changed meanwhile: retry),
 *   point the spare at the head's next with HEAD, copy prv, read overrun and dropped,
 *   cmpxchg the link before the head from head|HEAD to the spare; on failure find the head
 *   again; then fix prv of the next page, and the old head is the reader's page.
 *
 * Memory model: every load, store and cmpxchg is one atomic step, and the steps are
 *   sequentially consistent. src/flight.c makes every access to a word the other side uses an
 *   acquire load, a release store or a cmpxchg (docs/ordering.md section 11), and x86 is TSO,
 *   so the only reordering the hardware could add (a later load passing an earlier store to
 *   another word) is not relied on here by any pair. Between the thread and its handler there
 *   is no reordering at all (same CPU, local_* instructions). A step that also touches the
 *   writer level's own locals or ghosts is still one access to shared memory; set_commit()
 *   loads commit_l and tail in one step, which is exact because no other level moves commit_l
 *   while this one commits. The reader takes the committed records of its page in one step:
 *   nothing writes there any more, which the writer's asserts check at each of its stores.
 *
 * What is checked (assertions)
 *   - the ring (check_ring(), after every step that changes a link): the pages other than the
 *     reader's form one cycle; the number of UPDATE links equals the number of levels between
 *     their HEAD->UPDATE and UPDATE->NORMAL (own[]); a second HEAD exists only while a level
 *     that set HEAD on the next link has not yet looked at the tail to undo it (pend[]); with
 *     no level in handle_head(), exactly one HEAD and no UPDATE;
 *   - the writer never resets, pads or writes a slot of the reader's page below its commit
 *     count, and never moves its tail onto the reader's page; commit counts never exceed P;
 *     the push's final UPDATE->NORMAL finds UPDATE; the next link is NORMAL or HEAD;
 *   - the reader reads only written, committed records (no garbage), in strictly increasing
 *     order (so never one twice), and a two-slot record whole;
 *   - at the end (writer done, reader caught up): written == read + overrun + dropped, and
 *     the losses the swaps reported add up to overrun;
 *   - no invalid end state (the reader stops once the writer is done and all is read).
 *
 * The algorithm as specified (no -D) fails. Each flaw has a FIX_ variant; -DFIXED turns on
 * all four, and the model then holds in every configuration tests/t-model-flight.sh runs:
 *   FIX_READ_ORDER  the reader loads the commit page before its page's commit count. Without:
 *                   it reads commit(R) == read, the writer commits more on R and moves the
 *                   commit page on, the reader sees the commit page left R and swaps: the
 *                   records committed in between are never read nor counted. (src/flight.c:
 *                   swap_in() loads commit_page, then its page's commit once more.)
 *   FIX_RPTEST      when the commit page is the tail page, move_tail() treats it as a ring
 *                   page (push, or refuse in produce mode), and drops the branch "commit and
 *                   tail on the reader's page: move onto the head without a push". Without:
 *                   that branch runs on a stale view, two ways: the link of the tail page was
 *                   loaded before the reader swapped three pages (the tail page among them), so
 *                   the tail moves onto a page behind the head and the commit walk then commits
 *                   the head page's old contents (read twice); or prv[c] was loaded before the
 *                   reader's fix-up after a swap and the link after its next swap setup, so a
 *                   ring page is taken for the reader's and the tail moves onto the unread head
 *                   without a push. (src/flight.c's move_tail() had that branch until the
 *                   model found it.)
 *   FIX_PUBLISH     the commit page is published at every move, before the writer's own copy
 *                   moves. Without (published
 *                   once per set_commit() round, as src/flight.c did until the model found
 *                   it): the thread moves its commit
 *                   page but is interrupted before publishing it; its handler pushes the head
 *                   past the published one; the reader, seeing the stale commit page is not
 *                   its page, swaps page after page of uncommitted records, and takes the page
 *                   the handler moves its tail onto next.
 *   FIX_ENT_FIRST   the pushing level reads the head page's entry count before its HEAD->UPDATE
 *                   cmpxchg (src/flight.c and the kernel do). Read after it, a handler that
 *                   interrupts the push has already finished it, moved onto the page and reset
 *                   the count: overrun misses the page's old entries. (src/flight.c counts at
 *                   the page's destruction instead: docs/design.md 19.3.)
 *
 * Variants (spin -D...), each on top of FIXED in the test:
 *   SWAP_NO_HEAD_CHECK   the reader's swap cmpxchg accepts the head's link with any flag
 *                                                       -> assertion violated (UPDATE leaves)
 *   NO_UPDATE_FLAG       a push turns HEAD into NORMAL at once, no UPDATE -> assertion violated
 *   UPDATE_AS_NORMAL     a level that finds UPDATE on its link moves on as if NORMAL instead of
 *                        finishing the push                         -> assertion violated
 *   PUBLISH_AFTER        FIX_PUBLISH's two stores the other way round: the writer's own copy
 *                        of the commit page moves first, then the published one: a handler
 *                        lapping the ring in between pushes past the published page
 *                                                                     -> assertion violated
 *   NO_RECHECK           the outermost level does not re-check commits after lowering
 *                        committing (the order perf commit 1b038c6 fixed): a handler's record
 *                        stays uncommitted                            -> assertion violated
 *   FAST_BEFORE_WRITE    write_outer() publishes its own record's end before writing the
 *                        record: the reader may read it unwritten    -> assertion violated
 *   BUMP_ALWAYS          the outermost level bumps commits too (the kernel does; src/flight.c's
 *                        write_outer() does not, and the model holds either way)
 *   COMMIT_NOT_OUTERMOST every level moves the commit page           -> assertion violated
 *   SCAN_HINT            find_head() as src/flight.c once had it: the hint's link if it says HEAD,
 *                        else the first flagged link from the hint; the reader swaps while a
 *                        push is in flight, a handler then flags the spare HEAD: two heads
 *                                                                     -> assertion violated
 *   NO_PUSH_CHECK        the writer keeps no pushw and the reader takes the first HEAD from the
 *                        link before its hint (UPDATE: retry). When the writer laps the ring
 *                        between two swaps, that link is the one a push in flight has just
 *                        flagged HEAD, past its UPDATE: the reader swaps mid-push, and then
 *                        takes the writer's tail page                 -> assertion violated
 *   NO_PUSH_SEQ          the reader checks only that no push is in flight when it starts and
 *                        ends its search, not that none began in between -> holds too (the
 *                        swap's HEAD check covers it); src/flight.c checks both
 *   EXACT_GAP            also check each swap's report: the records skipped before the next
 *                        one read are exactly the overrun reported since. Fails: the writer
 *                        pushes a whole lap between the reader's overrun load and its cmpxchg,
 *                        which finds head|HEAD again; the count comes one swap late (the sum is
 *                        right)                                      -> assertion violated
 *   REPORT_DROPS         also check that the reader reported every refused write by the end
 *                                                                     -> must hold
 *   NO_REPORT_IDLE       the reader reports the counters only at a swap, not also when it is
 *                        caught up. With REPORT_DROPS: a write refused after the reader's last
 *                        swap (the ring was full when the writer looked, then the reader took
 *                        every page, the writer's too) is never reported -> assertion violated
 *   RPTEST_EXACT         assert the reader's-page test answers exactly (it may say "reader's"
 *                        for a ring page: a needless refusal, counted) -> assertion violated
 *   PRODUCE              produce/consume mode: refuse instead of pushing -> must hold
 *   VARLEN               records of one or two slots: a reservation that crosses the page end
 *                        pads the rest of the page (use P=3)          -> must hold
 * Knobs: N (3 or 4), P, PREFILL, WO, WI, NIRQ.
 *
 * Trails: spin -DNO_HIDDEN ... -a flight.pml, cc -DBFS for the shortest, ./pan, then
 * spin -DNO_HIDDEN ... -t flight.pml prints each step as a line (W0 thread, W1 handler, R reader).
 * Not modelled: timestamps and sequences in the page descriptors (snapshots, post-mortem), the
 * reader's page commit reset, range checks against corrupt links, crashes, more than one reader
 * or writer context, more than one handler level.
 */

#ifdef FIXED
#define FIX_READ_ORDER
#define FIX_RPTEST
#define FIX_PUBLISH
#define FIX_ENT_FIRST
#endif

#ifndef N
#define N	3	/* ring pages; page N is the reader's spare */
#endif
#ifndef P
#define P	2	/* slots per page */
#endif
#ifndef PREFILL
#define PREFILL	0	/* ring pages full of committed records at the start, 0..N */
#endif
#ifndef WO
#define WO	3	/* records the thread writes */
#endif
#ifndef WI
#define WI	2	/* records the handler writes each time it fires */
#endif
#ifndef NIRQ
#define NIRQ	1	/* times the handler fires */
#endif
#define W	(PREFILL * P + WO + NIRQ * WI)	/* records written in all */
#define NP	(N + 1)
#define NS	(NP * P)

/* a link word: next page << 2 | flag */
#define NORMAL	0
#define HEADF	1
#define UPDATE	2
#define TGT(v)	((v) >> 2)
#define FLG(v)	((v) & 3)
#define MK(t, f)	(((t) << 2) | (f))

/*
 * wr[] and ent[]: generation << 4 | reserve offset (entry count). The generation is kept mod 4:
 * it only has to differ across the few steps between a level's bump and its cmpxchg.
 */
#define GEN	16
#define OFF(v)	((v) & 15)
#define GENOF(v)	((v) & 48)
#define BUMP(v)	(((v) + GEN) & 63)

#define PAD	255	/* the content of a padding slot; 0 is garbage, else a record */

#ifdef VARLEN
#define LEN	ln
#else
#define LEN	1
#endif

/* shared by the writer context and the reader */
byte link[NP];
byte prv[NP];		/* kept by the reader; the writer reads it */
byte cm[NP];		/* each page's committed slots */
unsigned cpub : 3;	/* the commit page, as published to the reader */
unsigned overrun : 6;	/* entries pushed out unread */
unsigned dropped : 6;	/* writes refused: ring full, commit overrun */
byte pushw;		/* pushes: levels inside handle_head() (bits 0-1) + pushes begun << 2 */
byte data[NS];		/* slot contents */

/* the writer context's own: the thread and its handler */
byte wr[NP];
byte ent[NP];
unsigned tail : 3;
unsigned commit_l : 3;
unsigned committing : 3;
unsigned commits : 6;
bit in_irq;		/* the handler runs; the thread stands still */

/* the reader's own (global for the final checks) */
unsigned nread : 6;	/* records read */
unsigned lastseq : 6;	/* the last record read */
unsigned rep : 6;	/* losses reported by swaps since the last record read */
unsigned last_ov : 6;	/* overrun as of the last swap */
unsigned last_dr : 6;	/* dropped as of the last swap */

/* ghosts */
unsigned wdone : 2;	/* writer levels finished */
unsigned seqno : 6;	/* the last record number handed out by a reservation */
unsigned rpage : 3 = N;	/* the reader's page: switched by its successful swap cmpxchg */
bit own[2];		/* level me turned HEAD into UPDATE and has not cleared it */
bit pend[2];		/* level me set HEAD on the next link and has not yet checked the tail */
bit inhh[2];		/* level me is inside handle_head() */
#ifdef VARLEN
byte rlen[W + 1];	/* slots of each record */
#endif
#ifdef NO_HIDDEN
#define HIDDEN		/* pan -DBFS (shortest trails) refuses hidden variables */
#else
#define HIDDEN	hidden
#endif
HIDDEN byte mi;		/* scratch, within one atomic step */
HIDDEN byte cycle;
HIDDEN byte heads, updates;

/* coverage probes: spin -DPROBE=k makes pan look for a run that reaches COVER(k) */
#ifdef PROBE
#define COVER(k)	assert(PROBE != k)
#else
#define COVER(k)	skip
#endif

/* a step of level me: the thread does nothing while its handler runs */
#define G	(me == 1 || !in_irq)

/*
 * The structure, checked after every step that changes a link: the pages other than the
 * reader's form one cycle (from the first of them, N links lead back to it and no fewer, past
 * no reader's page); each UPDATE on the ring belongs to a level that is pushing; a second HEAD
 * exists only while a level that set it has not yet looked at the tail; with no level in
 * handle_head(), exactly one HEAD and no UPDATE. No link carries both flags.
 */
#define NX(p)	TGT(link[p])
#define S0	(rpage == 0 -> 1 : 0)
#define P1	NX(S0)
#define P2	NX(P1)
#define P3	NX(P2)
#define P4	NX(P3)
#if N == 3
#define CYCLE	(P1 != S0 && P2 != S0 && P3 == S0 && P1 != rpage && P2 != rpage)
#elif N == 4
#define CYCLE	(P1 != S0 && P2 != S0 && P3 != S0 && P4 == S0 && \
		 P1 != rpage && P2 != rpage && P3 != rpage)
#else
#error N must be 3 or 4
#endif
/* flag f on the link of page p, p on the ring */
#define FL(p, f)	((p) <= N && (p) != rpage && FLG(link[(p) % NP]) == (f) -> 1 : 0)
#define NFLAG(f)	(FL(0, f) + FL(1, f) + FL(2, f) + FL(3, f) + FL(4, f))

inline check_ring()
{
	cycle = CYCLE;
	heads = NFLAG(HEADF);
	updates = NFLAG(UPDATE);
	assert(cycle && NFLAG(3) == 0);
	assert(updates == own[0] + own[1]);
	assert(heads <= 1 + pend[0] + pend[1]);
	assert(inhh[0] || inhh[1] || (heads == 1 && updates == 0));
	cycle = 0;
	heads = 0;
	updates = 0
}

/* outermost level: move the commit page up to the tail, committing each page on the way */
inline set_commit()
{
	do
	:: atomic { G -> c = commit_l; tt = tail };
		atomic { G -> w = wr[c] };
		atomic { G -> assert(OFF(w) <= P); cm[c] = OFF(w);
			printf("W%d: commit page %d = %d\n", me, c, OFF(w)) };
		if
		:: c != tt ->
#ifdef FIX_PUBLISH
			/* one commit page word, seen by the reader as soon as it moves */
			atomic { G -> x = TGT(link[c]) };
			/*
			 * as src/flight.c: publish first, then move our own copy; a handler that
			 * comes in between guards the older (fully committed) page
			 */
#ifdef PUBLISH_AFTER
			/* the other order: our own copy first, then the published one */
			atomic { G -> commit_l = x };
			atomic { G -> cpub = x; x = 0; printf("W%d: publish commit page %d\n", me, cpub) }
#else
			atomic { G -> cpub = x; printf("W%d: publish commit page %d\n", me, cpub) };
			atomic { G -> commit_l = x; x = 0 }
#endif
#else
			atomic { G -> commit_l = TGT(link[c]) }
#endif
		:: else ->
			atomic { G -> cpub = c; printf("W%d: publish commit page %d\n", me, c) };
			atomic { G -> tt = tail };
			if
			:: c == tt -> break
			:: else -> COVER(11)
			fi
		fi
	od;
	c = 0;
	tt = 0;
	w = 0
}

inline end_commit()
{
	do
	:: atomic { G -> c0 = commits };
#ifdef COMMIT_NOT_OUTERMOST
		atomic { G -> b = (committing >= 1) };
#else
		atomic { G -> b = (committing == 1) };
#endif
		if
		:: b -> set_commit()
		:: else
		fi;
		atomic { G -> committing-- };
#ifdef NO_RECHECK
		b = 0;	/* the pre-1b038c6 commit: no look at commits after lowering committing */
#else
		atomic { G -> b = (commits != c0) };
#endif
		if
		:: b ->
			atomic { G -> b = (committing == 0) };
			if
			:: b -> atomic { G -> committing++ }; COVER(10)
			:: else -> break
			fi
		:: else -> break
		fi
	od;
	c0 = 0;
	b = 0
}

/* push the head page n on, from the tail page t; hr = 1: retry the reservation */
inline handle_head()
{
	hr = 0;
#ifndef NO_PUSH_CHECK
	/* announced before any link is touched: a head search that overlaps it starts again */
	atomic { G -> pushw = pushw + 5 };
#endif
#ifdef FIX_ENT_FIRST
	atomic { G -> e = OFF(ent[n]) };	/* before the cmpxchg, as the kernel */
#endif
	atomic { G -> inhh[me] = 1;
		old = link[t];
		if
		:: old == MK(n, HEADF) ->
#ifdef NO_UPDATE_FLAG
			link[t] = MK(n, NORMAL);
			printf("W%d: push: link[%d] HEAD -> NORMAL (head %d)\n", me, t, n);
#else
			link[t] = MK(n, UPDATE);
			own[me] = 1;
			printf("W%d: push: link[%d] HEAD -> UPDATE (head %d)\n", me, t, n);
#endif
			check_ring()
		:: else ->
			printf("W%d: push: link[%d] is %d|%d, not %d|HEAD\n", me, t, TGT(old), FLG(old), n)
		fi };
	if
	:: old == MK(n, HEADF) ->
		typ = HEADF;
#ifndef FIX_ENT_FIRST
		atomic { G -> e = OFF(ent[n]) };
#endif
		atomic { G -> overrun = overrun + e; printf("W%d: overrun += %d\n", me, e) };
		e = 0
	:: old == MK(n, UPDATE) ->
		typ = UPDATE;	/* we interrupted the push of n: finish it */
		COVER(1)
	:: TGT(old) == n && FLG(old) == NORMAL ->
		hr = 1;		/* a handler pushed n */
		COVER(6)
	:: else ->
		hr = 1;		/* the reader swapped n out */
		COVER(7)
	fi;
	if
	:: hr == 0 ->
		atomic { G -> nn = TGT(link[n]) };
		atomic { G -> r = link[n];
			if
			:: r == MK(nn, NORMAL) ->
				link[n] = MK(nn, HEADF);
				pend[me] = 1;
				printf("W%d: push: link[%d] NORMAL -> HEAD (head %d)\n", me, n, nn);
				check_ring()
			:: else ->
				COVER(15);
				printf("W%d: push: link[%d] is %d|%d already\n", me, n, TGT(r), FLG(r))
			fi };
		assert(FLG(r) == NORMAL || FLG(r) == HEADF);
		if
		:: r == MK(nn, NORMAL) ->
			atomic { G -> tt = tail;
				if
				:: tt == t || tt == n -> pend[me] = 0
				:: else
				fi };
			if
			:: pend[me] ->
				/* handlers moved the tail past n: the HEAD we set is stale */
				atomic { G ->
					if
					:: link[n] == MK(nn, HEADF) ->
						link[n] = MK(nn, NORMAL);
						COVER(2);
						printf("W%d: push: tail moved on, undo HEAD on link[%d]\n", me, n)
					:: else
					fi;
					pend[me] = 0;
					check_ring() }
			:: else
			fi
		:: else
		fi;
#ifndef NO_UPDATE_FLAG
		if
		:: typ == HEADF ->
			atomic { G -> r = link[t];
				assert(r == MK(n, UPDATE));
				link[t] = MK(n, NORMAL);
				own[me] = 0;
				printf("W%d: push: link[%d] UPDATE -> NORMAL\n", me, t);
				check_ring() }
		:: else
		fi;
#endif
		skip
	:: else
	fi;
	atomic { G -> inhh[me] = 0; check_ring() };
#ifndef NO_PUSH_CHECK
	atomic { G -> pushw = pushw - 1 };
#endif
	e = 0;
	old = 0;
	nn = 0;
	r = 0;
	typ = 0;
	tt = 0
}

/* move the tail from t onto n, unless a handler has done it */
inline tail_update()
{
	/* wr[] and ent[] are one word in src/flight.c: bumped, and reset, together */
	atomic { G -> ow = BUMP(wr[n]); wr[n] = ow; oe = BUMP(ent[n]); ent[n] = oe };
	atomic { G -> tt = tail };
	if
	:: tt == t ->
		atomic { G ->
			if
			:: wr[n] == ow ->
				assert(n != rpage && ent[n] == oe);
				wr[n] = GENOF(ow);
				ent[n] = GENOF(oe);
				/* ghost: a new generation, the old contents are garbage */
				mi = 0;
				do
				:: mi < P -> data[n * P + mi] = 0; mi++
				:: else -> break
				od;
				mi = 0
			:: else -> COVER(9)
			fi };
		atomic { G -> assert(n != rpage); cm[n] = 0 };
		atomic { G ->
			if
			:: tail == t ->
				assert(n != rpage);
				tail = n;
				printf("W%d: tail %d -> %d\n", me, t, n)
			:: else
			fi }
	:: else
	fi;
	ow = 0;
	oe = 0;
	tt = 0
}

/* is the commit page c the reader's? rp = 1 if the page before it no longer links to it */
inline reader_page_test()
{
	atomic { G -> q = prv[c] };
	atomic { G -> x = TGT(link[q]); rp = (x != c);
#ifdef RPTEST_EXACT
		assert(rp == (c == rpage));
#endif
		/* the direction that would push the head with the commit page out of the ring */
		assert(rp || c != rpage);
		printf("W%d: commit page %d is the reader's: %d (prev %d links to %d; reader's %d)\n",
			me, c, rp, q, x, rpage) };
	q = 0;
	x = 0
}

/* the reservation on t overflowed the page: mv = 0 moved on, 1 refused, 2 retry */
inline move_tail()
{
	mv = 0;
	hh = 0;
	atomic { G -> lk = link[t]; n = TGT(lk) };
	atomic { G -> c = commit_l;
		printf("W%d: move_tail from %d: link %d|%d, commit page %d\n", me, t, n, FLG(lk), c) };
	if
	:: n == c ->
		mv = 1;	/* handlers went all the way round */
		COVER(3)
	:: else ->
		if
		:: FLG(lk) == HEADF ->
#ifdef FIX_RPTEST
			/* commit on the tail page: the tail page is the one before the head */
			atomic { G -> tt = tail };
			if
			:: tt == c -> rp = 0
			:: else -> reader_page_test()
			fi;
#else
			reader_page_test();
#endif
			if
			:: !rp ->
#ifdef PRODUCE
				mv = 1
#else
				hh = 1
#endif
			:: else ->
				/* the commit page is the reader's */
#ifdef FIX_RPTEST
				mv = 1;	/* and the tail is not on it: full */
				COVER(4)
#else
				atomic { G -> tt = tail };
				if
				:: tt != c -> mv = 1; COVER(4)	/* and the tail left it: full */
				:: else -> COVER(5)	/* tail on it too: the head is empty, move on */
				fi
#endif
			fi
#ifndef UPDATE_AS_NORMAL
		:: FLG(lk) == UPDATE ->
			hh = 1	/* we interrupted our thread's push of n: finish it */
#endif
		:: else
		fi;
		if
		:: hh ->
			handle_head();
			if
			:: hr -> mv = 2
			:: else
			fi
		:: else
		fi;
		if
		:: mv == 0 -> tail_update()
		:: mv == 1 -> printf("W%d: refused\n", me)
		:: else -> printf("W%d: retry\n", me)
		fi
	fi;
	lk = 0;
	c = 0;
	tt = 0;
	hr = 0;
	rp = 0;
	hh = 0
}

/* give back an overflowing reservation; the one that crossed the page end pads the page */
inline reset_tail()
{
	if
	:: OFF(w) - LEN < P ->
		atomic { G ->
			COVER(14);
			mi = OFF(w) - LEN;
			do
			:: mi < P ->
				assert(t != rpage || mi >= cm[t]);
				data[t * P + mi] = PAD;
				mi++
			:: else -> break
			od;
			mi = 0 };
		/* the reservation counted an entry with its bytes: both go back */
		atomic { G -> wr[t] = wr[t] - (OFF(w) - P); ent[t] = ent[t] - 1 }
	:: else ->
		atomic { G -> wr[t] = wr[t] - LEN; ent[t] = ent[t] - 1 }
	fi
}

/*
 * write_outer() publishes its own record's end as the page's commit, not the page's offset;
 * the general commit after it then adds what handlers reserved after it (in src/flight.c only
 * when one came in; else the offset is that end and the general commit changes nothing).
 */
inline fast_commit()
{
	if
	:: fast ->
		atomic { G -> assert(OFF(w) >= cm[t]); cm[t] = OFF(w);
			printf("W%d: fast commit page %d = %d\n", me, t, OFF(w)) }
	:: else
	fi
}

/*
 * One record: reserve, write, commit. st: 0 reserving, 1 reserved, 2 refused, 3 the tail
 * moved (or must be looked at again): commit what there is, then reserve again.
 */
inline write_one()
{
#ifdef VARLEN
	if
	:: ln = 1
	:: ln = 2
	fi;
#endif
#ifdef BUMP_ALWAYS
	atomic { G -> committing++ };
	atomic { G -> commits++ };
#else
	/*
	 * as src/flight.c's write_outer(): the outermost level does not bump commits (only a
	 * handler's bump has to tell it that someone reserved during its commit)
	 */
	atomic { G -> b = (committing == 0); committing++ };
	if
	:: b -> b = 0; fast = 1
	:: else -> atomic { G -> commits++ }
	fi;
#endif
	do
	:: atomic { G -> t = tail };
		/* write_outer(): its first try, on the commit page; else the general path */
		atomic { G -> fast = fast && commit_l == t };
		/* one xadd in src/flight.c reserves the bytes and counts the entry */
		atomic { G -> w = wr[t] + LEN; wr[t] = w; ent[t] = ent[t] + 1;
			if
			:: OFF(w) <= P ->
				seqno++;
				s = seqno;
				k = OFF(w) - LEN;
				data[t * P + k] = 0;	/* ghost: garbage until written */
#ifdef VARLEN
				rlen[s] = ln;
				if
				:: ln == 2 -> data[t * P + k + 1] = 0
				:: else
				fi;
#endif
				printf("W%d: reserve record %d: page %d slot %d\n", me, s, t, k)
			:: else ->
				printf("W%d: reservation overflows page %d\n", me, t)
			fi };
		if
		:: OFF(w) <= P ->
#ifdef FAST_BEFORE_WRITE
			fast_commit();
#endif
			/* the payload, never where the reader may read */
			atomic { G -> assert(t != rpage || k >= cm[t]);
				if
				:: t == rpage -> COVER(8)
				:: else
				fi;
				data[t * P + k] = s;
#ifdef VARLEN
				if
				:: ln == 2 -> data[t * P + k + 1] = s
				:: else
				fi;
#endif
				printf("W%d: write record %d\n", me, s) };
#ifndef FAST_BEFORE_WRITE
			fast_commit();
#endif
			st = 1
		:: else ->
			fast = 0;
			move_tail();
			reset_tail();
			if
			:: mv == 1 -> atomic { G -> dropped++ }; st = 2
			:: else -> st = 3
			fi
		fi;
		end_commit();
		if
		:: st == 3 -> atomic { G -> committing++ }
		:: else -> break
		fi
	od;
	st = 0;
	fast = 0;
	t = 0;
	n = 0;
	w = 0;
	k = 0;
	s = 0;
	mv = 0;
	ln = 0
}

/*
 * A writer level: the thread (me 0) writes WO records; the handler (me 1) fires NIRQ times,
 * between any two steps of the thread, and writes WI records each time, to completion.
 */
proctype writer(bit me)
{
	unsigned f : 3, i : 4, t : 3, n : 3, nn : 3, c : 3, q : 3, tt : 3, k : 3, st : 2, mv : 2;
	unsigned lk : 5, x : 5, old : 5, r : 5, typ : 2, e : 4, s : 6, ln : 2, c0 : 6;
	byte w, ow, oe;
	bit b, hr, rp, hh, fast;

	do
	:: (me == 0 && f < 1) || (me == 1 && f < NIRQ) ->
		if
		:: me == 1 -> atomic { in_irq = 1; printf("W1: handler fires\n") }
		:: else
		fi;
		do
		:: (me == 0 && i < WO) || (me == 1 && i < WI) -> write_one(); i++
		:: else -> break
		od;
		i = 0;
		if
		:: me == 1 -> atomic { in_irq = 0; printf("W1: handler returns\n") }
		:: else
		fi;
		f++
	:: else -> break
	od;
	atomic { G -> wdone++ }
}

proctype reader()
{
	unsigned R : 3 = N;
	unsigned rread : 3, hint : 3, c : 3, cl : 3, h : 3, p : 3, q : 3, nn : 3, i : 4, nh : 3;
	unsigned lk : 5, x : 5, ov : 6, dr : 6;
	byte v, s1, s2;
	bit d, bad, ok;

	do
	::
		/* d: the writer had finished before these loads (a ghost; a real reader is told) */
#ifdef FIX_READ_ORDER
		atomic { d = (wdone == 2); cl = cpub };
		atomic { c = cm[R]; printf("R: page %d, read %d, committed %d\n", R, rread, c) };
#else
		atomic { d = (wdone == 2); c = cm[R];
			printf("R: page %d, read %d, committed %d\n", R, rread, c) };
#endif
		if
		:: rread < c ->
			/*
			 * the committed records, in one step: nothing writes there any more (the
			 * writer asserts that at each of its stores into the reader's page)
			 */
			d_step {
				do
				:: rread < c ->
					v = data[R * P + rread];
					printf("R: page %d slot %d: %d\n", R, rread, v);
					assert(v != 0);	/* written and committed */
					if
					:: v == PAD -> rread++
					:: else ->
#ifdef VARLEN
						if
						:: rlen[v] == 2 ->
							assert(rread + 1 < c);
							assert(data[R * P + rread + 1] == v)
						:: else
						fi;
						rread = rread + rlen[v];
#else
						rread++;
#endif
						assert(v > lastseq);	/* in order, none twice */
#ifdef EXACT_GAP
						/* the records skipped are exactly those the swaps reported */
						assert(v - lastseq - 1 == rep);
#endif
						rep = 0;
						lastseq = v;
						nread++
					fi
				:: else -> break
				od;
				v = 0
			}
		:: else ->
#ifndef FIX_READ_ORDER
			atomic { cl = cpub };
#endif
			if
			:: cl == R ->
#ifndef NO_REPORT_IDLE
				/*
				 * caught up: report what the counters say grew since the last report
				 * (src/flight.c evr_flight_read(), note_losses())
				 */
				atomic { ov = overrun };
				atomic { dr = dropped };
				rep = rep + ov - last_ov;
				last_ov = ov;
				last_dr = dr;
				ov = 0;
				dr = 0;
#endif
				if
				:: d -> break
				:: else ->
					/* nothing new: poll until something changes */
					atomic { wdone == 2 || cpub != R || cm[R] != rread }
				fi
			:: else ->
find:
				h = NP;
#ifdef SCAN_HINT
				/* an old find_head(): the hint, then the first flagged link */
				atomic { lk = link[prv[hint]] };
				if
				:: lk == MK(hint, HEADF) -> h = hint
				:: else ->
					q = hint;
					i = 0;
					do
					:: i < 2 * N ->
						atomic { lk = link[q] };
						if
						:: FLG(lk) == UPDATE -> goto find
						:: FLG(lk) == HEADF -> h = TGT(lk); break
						:: else -> q = TGT(lk); i++
						fi
					:: else -> goto find
					od
				fi;
#else
				/*
				 * src/flight.c find_head(): no push may begin or be in flight during the
				 * search (pushw unchanged, no level inside handle_head()); then the first
				 * HEAD from the hint is the only one, and no UPDATE is on the ring
				 */
				atomic { s1 = pushw };
				if
				:: s1 & 3 -> s1 = 0; goto find
				:: else
				fi;
				q = prv[hint];
				i = 0;
				bad = 0;
				do
				:: i < N ->
					atomic { lk = link[q] };
					if
					:: FLG(lk) == UPDATE -> bad = 1; break
					:: FLG(lk) == HEADF -> h = TGT(lk); break
					:: else -> q = TGT(lk); i++
					fi
				:: else -> break
				od;
				atomic { s2 = pushw };
#ifdef NO_PUSH_SEQ
				/* only "no push in flight now", not "none began meanwhile" */
				if
				:: bad || h == NP || (s2 & 3) -> COVER(16);
#else
				if
				:: bad || h == NP || s2 != s1 -> COVER(16);
#endif
					i = 0; q = 0; lk = 0; bad = 0; s1 = 0; s2 = 0; h = NP; goto find
				:: else
				fi;
				s1 = 0;
				s2 = 0;
#endif
				i = 0;
				q = 0;
				lk = 0;
				nh = 0;
				bad = 0;
				assert(h != R);
				nn = TGT(link[h]);	/* targets change only here, in the reader */
				atomic { link[R] = MK(nn, HEADF) };
				atomic { prv[R] = prv[h] };
				atomic { ov = overrun };
				atomic { dr = dropped };
				atomic {
					p = prv[h];
					x = link[p];
#ifdef SWAP_NO_HEAD_CHECK
					if
					:: TGT(x) == h ->
#else
					if
					:: x == MK(h, HEADF) ->
#endif
						link[p] = MK(R, NORMAL);
						rpage = h;
						ok = 1;
						printf("R: swap: link[%d] %d|%d -> %d; reader's page %d, overrun %d\n",
							p, h, FLG(x), R, h, ov);
						check_ring()
					:: else ->
						ok = 0;
						COVER(12);
						printf("R: swap of %d fails: link[%d] = %d|%d\n", h, p, TGT(x), FLG(x))
					fi };
				p = 0;
				x = 0;
				if
				:: !ok -> goto find
				:: else
				fi;
				atomic { prv[nn] = R };
				hint = nn;
				R = h;
				rread = 0;
				rep = rep + ov - last_ov;
				last_ov = ov;
				last_dr = dr;
				h = 0;
				nn = 0;
				ov = 0;
				dr = 0;
				ok = 0
			fi
		fi;
		c = 0;
		cl = 0
	od;
	/* the writer is done and everything is read */
	assert(nread + overrun + dropped == W);
	assert(last_ov == overrun);
#ifdef REPORT_DROPS
	assert(last_dr == dropped);
#endif
	skip
}

init
{
	byte i;

	atomic {
		do
		:: i < N ->
			link[i] = MK((i + 1) % N, ((i + 1) % N == 0 -> HEADF : NORMAL));
			prv[i] = (i + N - 1) % N;
			i++
		:: else -> break
		od;
		link[N] = MK(0, NORMAL);
		prv[N] = N - 1;
		/* pages 0..PREFILL-1 written and committed, the tail on the last of them */
		i = 0;
		do
		:: i < PREFILL * P ->
			seqno++;
			data[i] = seqno;
#ifdef VARLEN
			rlen[seqno] = 1;
#endif
			i++
		:: else -> break
		od;
		i = 0;
		do
		:: i < PREFILL ->
			wr[i] = P;
			ent[i] = P;
			cm[i] = P;
			i++
		:: else -> break
		od;
		tail = (PREFILL > 0 -> PREFILL - 1 : 0);
		commit_l = tail;
		cpub = tail;
		i = 0;
		run writer(0);
		run writer(1);
		run reader()
	}
}
