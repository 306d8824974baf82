// SPDX-License-Identifier: MIT
/*
 * The flight recorder: ftrace's lockless page ring in user space (docs/design.md section 19,
 * docs/ordering.md "Flight rings").
 *
 * The ring is a circle of pages linked by index; the spare page the reader owns sits outside.
 * One writer context (a thread and the signal handlers that interrupt it) reserves on the tail
 * page and commits through the commit page, which only its outermost level moves. In overwrite
 * mode a writer that reaches the head pushes it forward (HEAD -> UPDATE on the link that points
 * at it, HEAD on the next link, UPDATE -> NORMAL: each pairs with the reader's swap, F3);
 * otherwise a full ring refuses the write. The reader swaps its spare in for the head page
 * only while that link still says HEAD (pairs with the writer's push, F3), then reads the page
 * it owns up to what is committed (F1); that side is src/flightread.c. Each other ordering
 * below names its partner, F1-F6 in docs/ordering.md section 11.
 *
 * Writer state that decides where bytes go (tail, commit page, the per-page reserve offsets and
 * counts) is private to the writer process: a reader that scribbles on the shared page can make
 * the writer refuse writes or overwrite its own ring, never write outside it or loop forever.
 * Every index read from shared memory is range-checked, by the writer and by the reader.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flight.h"

/*
 * wr[i], the writer's word for page i: bits 0-23 the reserve offset, 24-39 the entries reserved
 * on it, 40-63 its generation. One xadd of ENT1 + size reserves a record and counts it. Neither
 * field carries into the next: a page holds at most 64 KiB / 8 entries, and the offset exceeds
 * the page only by the reservations that crossed its end, one per nesting level at most.
 */
#define OFF_MASK 0xffffffull
#define ENT_SHIFT 24
#define ENT1 (1ull << ENT_SHIFT)
#define ENTRIES(w) (((w) >> ENT_SHIFT) & 0xffff)
#define GEN1 (1ull << 40)
#define GEN_MASK (~(GEN1 - 1))
_Static_assert((EVR_MAX_NEST + 1) * 65536ull <= OFF_MASK, "wr[] offset field too narrow");
_Static_assert(65536 / 8 + EVR_MAX_NEST <= 0xffff, "wr[] entries field too narrow");
#define RESERVE_TRIES_MAX 1000 /* writer: page moves per reservation, commit walk bound */

/* ---------------------------------------------------------------------------------------- */
/* Geometry and creation (session.c calls these) */

size_t evr__flight_span(size_t sys_page, uint64_t data_size, uint32_t page_size)
{
	uint64_t nr = data_size / page_size + 1;
	size_t desc = (nr * sizeof(struct evr_flight_desc) + sys_page - 1) & ~(sys_page - 1);
	size_t span = sys_page + desc + (size_t)nr * page_size;

	return (span + sys_page - 1) & ~(sys_page - 1);
}

/* The geometry a directory entry promises; 0 if it is not a valid flight ring. */
uint32_t evr__flight_page_size(uint32_t entry_flags, uint64_t data_size)
{
	uint32_t shift = EVR_CTRL_PAGE_SHIFT(entry_flags);
	uint64_t ps;

	if (shift < 8 || shift > 16)
		return 0;
	ps = 1ull << shift;
	if (!evr__is_pow2(data_size) || data_size < EVR_FLIGHT_PAGES_MIN * ps ||
	    data_size / ps > EVR_FLIGHT_PAGES_MAX)
		return 0;
	return (uint32_t)ps;
}

/* Creator: lay out an empty ring: pages 0..nr-2 in a circle, head = tail = page 0. */
void evr__flight_init(struct evr_ctrl *c, size_t sys_page, uint64_t data_size, uint32_t flags,
		      uint64_t ring_id)
{
	uint32_t ps = evr__flight_page_size(flags, data_size);
	uint32_t nr = (uint32_t)(data_size / ps) + 1, ring = nr - 1;
	struct evr_flight_ctrl *fc = (void *)((uint8_t *)c + EVR_FLIGHT_CTRL_OFFSET);
	size_t desc_off = sys_page;
	size_t pages_off = sys_page + ((nr * sizeof(struct evr_flight_desc) + sys_page - 1) &
				       ~(sys_page - 1));
	struct evr_flight_desc *d = (void *)((uint8_t *)c + desc_off);

	memset(c, 0, sizeof(*c));
	c->data_offset = pages_off;
	c->data_size = data_size;
	c->magic = EVR_CTRL_MAGIC;
	c->evr_version = EVR_ABI_VERSION;
	c->evr_compat = EVR_ABI_COMPAT;
	c->kind = EVR_KIND_FLIGHT;
	c->flags = flags;
	c->ring_id = ring_id;
	memset(fc, 0, sizeof(*fc));
	fc->page_size = ps;
	fc->nr_pages = nr;
	fc->desc_offset = desc_off;
	fc->pages_offset = pages_off;
	fc->reader_page = ring;
	for (uint32_t i = 0; i < ring; i++) {
		d[i].link = EVR_FL_LINK((i + 1) % ring, (i + 1) % ring == 0 ? EVR_FL_HEAD : 0);
		d[i].prev = (i + ring - 1) % ring;
	}
	d[ring].link = EVR_FL_LINK(0, 0);
	d[ring].prev = ring - 1;
	d[0].seq = 1;
}

void evr__flight_free(struct evr_flight *f)
{
	if (!f)
		return;
	free(f->wr);
	free(f->snap);
	free(f);
}

/*
 * A writer that binds to a ring another writer left: finish a push the dead one left half
 * done. Its HEAD->UPDATE on link[t] happened, maybe its NORMAL->HEAD on link[n] too; nobody
 * will do the rest, and the reader takes no page while an UPDATE is on its way to the head.
 * Do it here, as a handler finishing an interrupted push would: HEAD on the next link if it
 * is still NORMAL, then UPDATE->NORMAL. The dead writer's level is still in the push count
 * (the caller clears it after this), so no reader swaps meanwhile (F6); the cmpxchgs only
 * act on the values read. Links are range-checked; the reader's own page is not in the ring.
 */
static void finish_dead_push(struct evr_flight *f)
{
	uint32_t rp = READ_ONCE(f->fc->reader_page);

	for (uint32_t i = 0; i < f->nr; i++) {
		/* acquire: pairs with the dead writer's HEAD->UPDATE cmpxchg (F3) */
		uint32_t lk = __atomic_load_n(&f->desc[i].link, __ATOMIC_ACQUIRE), n, ln;

		if (i == rp || (lk & EVR_FL_MASK) != EVR_FL_UPDATE)
			continue;
		n = EVR_FL_TARGET(lk);
		if (n >= f->nr || n == rp)
			continue;
		/* acquire: pairs with the reader's swap cmpxchg and a NORMAL->HEAD (F3) */
		ln = __atomic_load_n(&f->desc[n].link, __ATOMIC_ACQUIRE);
		/* acq_rel: as the push's own cmpxchgs; pairs with the reader's swap cmpxchg (F3) */
		if ((ln & EVR_FL_MASK) == EVR_FL_NORMAL)
			__atomic_compare_exchange_n(&f->desc[n].link, &ln,
						    (ln & ~EVR_FL_MASK) | EVR_FL_HEAD, 0,
						    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
		__atomic_compare_exchange_n(&f->desc[i].link, &lk,
					    (lk & ~EVR_FL_MASK) | EVR_FL_NORMAL, 0,
					    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
	}
}

/*
 * Bind a handle to a ring mapped at @c (@span bytes), checking the ring's own page against the
 * directory's promise. The writer's private state starts from what the page says (a new
 * writer after a crash resumes from the published tail and commit page).
 */
int evr__flight_bind(struct evr_ctrl *c, size_t span, size_t sys_page, uint64_t data_size,
		     uint32_t entry_flags, int can_write, int can_read, struct evr_flight **out)
{
	uint32_t ps = evr__flight_page_size(entry_flags, data_size);
	uint32_t nr = ps ? (uint32_t)(data_size / ps) + 1 : 0;
	struct evr_flight_ctrl *fc = (void *)((uint8_t *)c + EVR_FLIGHT_CTRL_OFFSET);
	struct evr_flight *f;
	size_t pages_off;

	if (!ps || sys_page < EVR_FLIGHT_CTRL_OFFSET + sizeof(*fc) ||
	    span < evr__flight_span(sys_page, data_size, ps))
		return -EBADMSG;
	pages_off = sys_page + ((nr * sizeof(struct evr_flight_desc) + sys_page - 1) &
				~(sys_page - 1));
	if (READ_ONCE(fc->page_size) != ps || READ_ONCE(fc->nr_pages) != nr ||
	    READ_ONCE(fc->desc_offset) != sys_page || READ_ONCE(fc->pages_offset) != pages_off)
		return -EBADMSG;
	f = evr__zalloc_lines(sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->wr = calloc((size_t)nr * 4, sizeof(uint64_t));
	if (!f->wr) {
		free(f);
		return -ENOMEM;
	}
	f->seq = f->wr + nr;
	f->missed = f->seq + nr;
	f->push_ln = (uint32_t *)(f->missed + nr);
	f->ctrl = c;
	f->fc = fc;
	f->desc = (void *)((uint8_t *)c + sys_page);
	f->pages = (uint8_t *)c + pages_off;
	f->nr = nr;
	f->psize = ps;
	f->pshift = (uint32_t)__builtin_ctz(ps);
	f->dsize = ps - HDR;
	f->flags = entry_flags;
	f->can_write = can_write;
	/* a record of len + RHDR bytes fits a page; stamped rings take the general entry */
	f->fast_lim = can_write && !(entry_flags & EVR_CTRL_STAMP) ? f->dsize - RHDR + 1 : 0;
	f->can_read = can_read;
	f->clk = evr__clock();
	if (can_write) {
		uint32_t t = READ_ONCE(fc->tail), cp = READ_ONCE(fc->commit_page);

		f->tail = t < nr ? t : 0;
		f->commit = cp < nr ? cp : f->tail;
		/* the writer's fast path counts on commit_page naming its commit page */
		if (cp != f->commit)
			WRITE_ONCE(fc->commit_page, (uint32_t)f->commit);
		for (uint32_t i = 0; i < nr; i++) {
			uint64_t cm = READ_ONCE(page(f, i)->commit);

			/* resume after the last published byte; a crashed reservation is lost */
			f->wr[i] = cm <= f->dsize ? cm : f->dsize;
			f->seq[i] = READ_ONCE(f->desc[i].seq);
			f->missed[i] = READ_ONCE(page(f, i)->missed);
		}
		f->overrun = READ_ONCE(fc->overrun);
		f->lost = READ_ONCE(fc->lost);
		f->written = READ_ONCE(fc->written);
		finish_dead_push(f);
		/*
		 * A writer that died inside a push left its levels in the push count, and the
		 * reader would wait on them for ever: they are gone (one writer at a time). The
		 * begun count moves on, so a search under way looks again. Release: pairs with
		 * the acquire loads of pushing in find_head() (F6).
		 */
		store_release(&fc->pushing, (READ_ONCE(fc->pushing) & ~PUSH_LEVELS) + PUSH_BEGUN);
		WRITE_ONCE(c->writer_pid, getpid());
	}
	*out = f;
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Writer */

/* Is @c the reader's page? It is when the page before it no longer points at it. */
static int is_reader_page(const struct evr_flight *f, uint32_t c)
{
	uint32_t p = READ_ONCE(f->desc[c].prev);

	return p >= f->nr ||
	       EVR_FL_TARGET(__atomic_load_n(&f->desc[p].link, __ATOMIC_ACQUIRE)) != c;
}

/*
 * Publish a writer counter. A handler may bump and publish it between our load and our store;
 * storing again until the value is stable keeps the published count from staying behind (the
 * reader also only ever takes increases).
 */
static void publish_count(uint64_t *shared, const uint64_t *local)
{
	uint64_t v;

	do {
		v = local_read(local);
		/* release: pairs with the reader's load_acquire of the counter in swap_in() (F4) */
		store_release(shared, v);
		barrier();
	} while (v != local_read(local));
}

static void publish_commit(struct evr_flight *f, uint32_t c)
{
	uint64_t w;

	/* re-read: a handler may reserve and finish a record between our load and store */
	do {
		w = local_read(&f->wr[c]) & OFF_MASK;
		if (w > f->dsize)
			w = f->dsize; /* a crossing reservation not yet given back */
		/* release: the records below w are written; pairs with the reader's acquire */
		store_release(&page(f, c)->commit, w);
		barrier();
	} while (w != (local_read(&f->wr[c]) & OFF_MASK) && w != f->dsize);
}

/*
 * Outermost level only: move the commit page up to the tail, publishing each page's committed
 * bytes, then the tail page's. A handler that moves the tail meanwhile makes us go round again.
 */
static void set_commit_to_write(struct evr_flight *f)
{
	/*
	 * A sane list takes fewer than nr steps from the commit page to the tail, but handlers
	 * that interrupt the walk move the tail on and make it longer: the bound is generous
	 * (as for reservations) and is there for a list a hostile reader has corrupted. Cutting
	 * a busy writer's walk short would skip pages whose records were never committed: under
	 * ThreadSanitizer, whose deferred signals land at our atomic stores, a bound of
	 * 2 * nr + 4 did, and flight-stress saw records vanish.
	 */
	for (uint32_t guard = 0, steps = 0; guard < RESERVE_TRIES_MAX; guard++) {
		uint32_t c;

		while ((c = (uint32_t)f->commit) != (uint32_t)local_read(&f->tail)) {
			uint32_t n = next_of(f, c);

			if (n >= f->nr || ++steps > RESERVE_TRIES_MAX + f->nr) {
				/* the list is corrupt: stop at the tail, do not walk on */
				local_add(&f->fc->err_corrupt, 1);
				f->commit = local_read(&f->tail);
				break;
			}
			publish_commit(f, c);
			/*
			 * Publish each move, and before our own copy moves: a reader that sees the
			 * commit page leave @c may take @c as final (it is), and a handler that
			 * interrupts us between the two stores still guards the older page.
			 * Published once per round instead, a handler could push the head past a
			 * commit page the reader still believes, and the reader would swap pages
			 * not yet committed (models/flight.pml, FIX_PUBLISH).
			 */
			/* pairs with load_acquire(commit_page) in swap_in() (F2) */
			store_release(&f->fc->commit_page, n);
			barrier();
			f->commit = n;
			barrier();
		}
		publish_commit(f, (uint32_t)f->commit);
		/* release: the commit values above first (docs/ordering.md F2) */
		store_release(&f->fc->commit_page, (uint32_t)f->commit);
		barrier();
		if (f->commit == local_read(&f->tail))
			return;
	}
}

static inline void start_commit(struct evr_flight *f)
{
	local_add(&f->committing, 1);
	local_add(&f->commits, 1);
	barrier();
}

static void end_commit(struct evr_flight *f)
{
	uint64_t commits;

again:
	commits = local_read(&f->commits);
	barrier();
	if (local_read(&f->committing) == 1) {
		set_commit_to_write(f);
		publish_count(&f->fc->written, &f->written);
	}
	local_add(&f->committing, (uint64_t)-1);
	barrier();
	/* a handler that reserved after our loop but before the decrement left its commit to us */
	if (unlikely(local_read(&f->commits) != commits) && !local_read(&f->committing)) {
		local_add(&f->committing, 1);
		goto again;
	}
}

/*
 * Undo the overflow of page @t by a reservation of @len at @start. The one reservation that
 * crossed the end fills the rest of the page with a PAD record and sets the offset to the end;
 * later ones (handlers that came in after it) just give their bytes back.
 */
static void reset_tail(struct evr_flight *f, uint32_t t, uint32_t start, uint32_t len)
{
	struct evr_record_header *h;

	/* the reservation counted an entry too: give it back with the bytes */
	if (start >= f->dsize) {
		local_add(&f->wr[t], 0 - (ENT1 + len));
		return;
	}
	h = (void *)(page_data(f, t) + start);
	h->type = EVR_TYPE_PAD;
	h->misc = 0;
	h->size = (uint16_t)(f->dsize - start);
	barrier(); /* the commit that publishes it is a release */
	local_add(&f->wr[t], 0 - (ENT1 + start + len - f->dsize));
}

/*
 * Overwrite mode, the tail page @t is followed by the head page: push the head on. @lk is the
 * link of @t as move_tail() read it (the head's index, HEAD or UPDATE, the reader's tag).
 * Return: 0 pushed (by us or a handler we interrupted), 1 retry (a handler already moved it,
 * or the reader swapped the page out or rewrote the link), -EBADMSG corrupt links.
 */
static int push_head(struct evr_flight *f, uint32_t t, uint32_t lk)
{
	uint32_t base = lk & ~EVR_FL_MASK, n = EVR_FL_TARGET(lk), old = base | EVR_FL_HEAD;
	uint32_t type, nn, ln, cur;
	uint64_t entries = ENTRIES(local_read(&f->wr[n]));

	/*
	 * The link after @n, read while @n is still the head: the reader rewrites it only once
	 * the page after @n is the head, which takes this push first. A handler that finds our
	 * UPDATE finishes the push with this value, not with a later read: by then the reader
	 * may have swapped the new head out, and setting HEAD on the link it left would make a
	 * second head.
	 */
	if ((lk & EVR_FL_MASK) == EVR_FL_UPDATE) {
		ln = f->push_ln[t];
	} else {
		ln = __atomic_load_n(&f->desc[n].link, __ATOMIC_ACQUIRE);
		f->push_ln[t] = ln;
		barrier();
	}
	nn = EVR_FL_TARGET(ln);
	if (nn >= f->nr)
		return -EBADMSG;
	/* acq_rel: pairs with the reader's swap cmpxchg on the same link (F3) */
	__atomic_compare_exchange_n(&f->desc[t].link, &old, base | EVR_FL_UPDATE, 0,
				    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
	if ((old & ~EVR_FL_MASK) != base)
		return 1; /* the reader swapped @n out or rewrote the link: look again */
	type = old & EVR_FL_MASK;
	if (type == EVR_FL_NORMAL)
		return 1; /* a handler pushed it before we got here */
	if (type == EVR_FL_HEAD) {
		/*
		 * Ours: the entries of @n go unread. They are counted where they are destroyed,
		 * when the tail moves onto @n (tail_update()); the new head says how many went.
		 */
		f->missed[nn] = f->missed[n] + entries;
		WRITE_ONCE(page(f, nn)->missed, f->missed[nn]);
	} else if (type != EVR_FL_UPDATE) {
		return -EBADMSG;
	}
	cur = (ln & ~EVR_FL_MASK) | EVR_FL_NORMAL;
	if (!__atomic_compare_exchange_n(&f->desc[n].link, &cur, (ln & ~EVR_FL_MASK) | EVR_FL_HEAD,
					 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		/*
		 * A handler of ours set HEAD there already, and the reader may even have swapped
		 * that head out since (the link then names its spare, with a new tag): both mean
		 * the push is done. Only an UPDATE left behind would be wrong: handlers finish what
		 * they start.
		 */
		if ((cur & EVR_FL_MASK) == EVR_FL_UPDATE)
			return -EBADMSG;
	} else {
		uint32_t tl = (uint32_t)local_read(&f->tail);

		/* handlers moved the tail past @n meanwhile: the HEAD we just set is stale */
		if (tl != t && tl != n) {
			cur = (ln & ~EVR_FL_MASK) | EVR_FL_HEAD;
			__atomic_compare_exchange_n(&f->desc[n].link, &cur,
						    (ln & ~EVR_FL_MASK) | EVR_FL_NORMAL, 0,
						    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
		}
	}
	if (type == EVR_FL_HEAD) {
		cur = base | EVR_FL_UPDATE;
		/* release: pairs with the reader's acquire loads of the link (find_head(), F3) */
		if (!__atomic_compare_exchange_n(&f->desc[t].link, &cur, base | EVR_FL_NORMAL, 0,
						 __ATOMIC_RELEASE, __ATOMIC_RELAXED))
			return -EBADMSG;
	}
	return 0;
}

/*
 * push_head() inside the push count the reader checks around its head search (F6): raised
 * before the push touches a link, lowered after its last one (the link cmpxchgs in between are
 * releases: each pairs with the reader's acquire loads of the links in find_head()). A handler's
 * push inside ours nests in the count.
 */
static int handle_head(struct evr_flight *f, uint32_t t, uint32_t lk)
{
	int r;

	/*
	 * Ordered before the push's first link change by that cmpxchg's release, which pairs
	 * with find_head()'s acquire link loads; its second load of pushing then sees this (F6).
	 */
	local_add(&f->fc->pushing, PUSH_BEGUN + 1);
	barrier();
	r = push_head(f, t, lk);
	/* release: pairs with the acquire loads of pushing in find_head() (F6) */
	atomic_thread_fence(memory_order_release);
	local_add(&f->fc->pushing, (uint64_t)-1);
	return r;
}

/* Move the tail from @t onto @n, unless a handler did it first. */
static void tail_update(struct evr_flight *f, uint32_t t, uint32_t n)
{
	uint64_t old_w, old_seq, s;

	/* a new generation of @n: a handler's reservation on it makes our reset below fail */
	old_w = local_fetch_add(&f->wr[n], GEN1) + GEN1;
	barrier();
	if (t != (uint32_t)local_read(&f->tail))
		return;
	/*
	 * The one level whose reset of the entry count and offset succeeds ends @n's old
	 * generation and starts the new one; a level that fails (a handler came in, maybe lapped
	 * the ring while the reader took pages, and moved on) touches nothing more: its view is
	 * stale. Nobody reserves on @n before the tail names it (below): a handler that comes in
	 * from here on finds the tail still at @t, full, and moves it itself, with a new
	 * generation that makes nothing of ours succeed after it.
	 */
	old_seq = f->seq[n];
	/* writer-private, signal-atomic: pairs with a nested level's xadd of GEN1 above */
	if (local_cmpxchg(&f->wr[n], old_w, old_w & GEN_MASK) != old_w)
		return;
	/*
	 * The old generation's entries are lost unless the reader took the page while it held
	 * them. Counting here, where they are destroyed, is exact whatever handlers and the
	 * reader did before; counting at the push, as the kernel does, was not under those
	 * races (a push a handler finished, a page the reader took first, a stale view).
	 */
	/* acquire: pairs with the reader's release of taken (F4) */
	if (ENTRIES(old_w) && load_acquire(&f->desc[n].taken) != old_seq) {
		local_add(&f->overrun, ENTRIES(old_w));
		publish_count(&f->fc->overrun, &f->overrun);
	}
	f->seq[n] = f->seq[t] + 1;
	/*
	 * commit first, then the sequence (release), then a release fence before any record
	 * byte: a snapshot that sees the new sequence sees commit reset, and one that read any
	 * new byte sees the new sequence on its re-check (docs/ordering.md F5). A handler that
	 * starts a newer generation meanwhile publishes its own; republish until stable.
	 */
	WRITE_ONCE(page(f, n)->commit, 0);
	WRITE_ONCE(page(f, n)->time_stamp, 0);
	if (READ_ONCE(page(f, n)->missed) && (READ_ONCE(f->desc[t].link) & EVR_FL_MASK) !=
						     EVR_FL_HEAD)
		WRITE_ONCE(page(f, n)->missed, 0);
	do {
		s = f->seq[n];
		/* pairs with the snapshot's load_acquire of seq in copy_page() (F5) */
		store_release(&f->desc[n].seq, s);
		barrier();
	} while (s != f->seq[n]);
	/* F5: no record byte of the new generation before the new seq; pairs with copy_page()'s
	 * acquire fence before its re-check of seq */
	atomic_thread_fence(memory_order_release);
	/* writer-private: signal-atomic against our own handlers, no cross-CPU order */
	local_cmpxchg(&f->tail, t, n);
	WRITE_ONCE(f->fc->tail, (uint32_t)local_read(&f->tail));
}

/* The reservation at @start..+@len crossed the end of page @t. Return 0 to retry, or -errno. */
static int move_tail(struct evr_flight *f, uint32_t t, uint32_t start, uint32_t len)
{
	uint32_t lk = __atomic_load_n(&f->desc[t].link, __ATOMIC_ACQUIRE), n = EVR_FL_TARGET(lk);
	uint32_t c = (uint32_t)f->commit;
	int r;

	if (n >= f->nr) {
		local_add(&f->fc->err_corrupt, 1);
		reset_tail(f, t, start, len);
		return -EBADMSG;
	}
	/*
	 * Handlers moved the tail on since we reserved: our view of the list is stale, and
	 * acting on it could push the page they are writing. Pad what we crossed and retry on
	 * the tail as it is now; handlers run to completion, so from here on @t stays the tail
	 * unless a new one interrupts us, and its push then makes our cmpxchgs fail.
	 */
	if (t != (uint32_t)local_read(&f->tail))
		goto again;
	if (n == c) {
		/* handlers went all the way round while the outer level holds the commit page */
		goto full;
	}
	if ((lk & EVR_FL_MASK) == EVR_FL_HEAD) {
		/*
		 * The commit page on the tail page is a ring page: the tail page is the one before
		 * the head. (A tail on the reader's page sees its link as the reader left it, not
		 * HEAD, and moves on below without a push.) Asking is_reader_page() there instead,
		 * with links read before the reader swapped pages, could take a ring page for the
		 * reader's and move onto the unread head without a push (models/flight.pml,
		 * FIX_RPTEST).
		 */
		if (c != t && is_reader_page(f, c))
			goto full; /* the commit page is still the reader's and the tail left it */
		if (!(f->flags & EVR_CTRL_OVERWRITE))
			goto full;
		r = handle_head(f, t, lk);
		if (r < 0) {
			local_add(&f->fc->err_corrupt, 1);
			reset_tail(f, t, start, len);
			return r;
		}
		if (r)
			goto again;
	} else if ((lk & EVR_FL_MASK) != EVR_FL_NORMAL) {
		/* UPDATE: we interrupted our own push of @n; finish it */
		r = handle_head(f, t, lk);
		if (r < 0) {
			local_add(&f->fc->err_corrupt, 1);
			reset_tail(f, t, start, len);
			return r;
		}
	}
	tail_update(f, t, n);
again:
	reset_tail(f, t, start, len);
	/* commit what is there (the padding), as the outermost level if we are it, then retry */
	end_commit(f);
	local_add(&f->committing, 1);
	return 0;
full:
	/* a stale view of a ring the reader has made room in since: try again, not a loss */
	if (__atomic_load_n(&f->desc[t].link, __ATOMIC_ACQUIRE) != lk)
		goto again;
	reset_tail(f, t, start, len);
	local_add(&f->lost, 1);
	publish_count(&f->fc->lost, &f->lost);
	return -ENOSPC;
}

/* Reserve @size bytes (a whole record) on the tail page; between start_commit and end_commit. */
static int reserve_bytes(struct evr_flight *f, uint32_t size, uint8_t **out, uint32_t *page_out)
{
	for (uint32_t tries = 0;; tries++) {
		uint32_t t = (uint32_t)local_read(&f->tail), start, end;
		uint64_t w;
		int err;

		/*
		 * Each retry follows a tail move, ours or a handler's. Without handlers two tries
		 * always do; handlers that keep filling the new page (tiny pages, a signal storm)
		 * can make more, so the bound is generous, as the kernel's 1000 loops are: it is
		 * there for a list a hostile reader has corrupted, not for a busy writer.
		 */
		if (unlikely(tries > RESERVE_TRIES_MAX)) {
			local_add(&f->fc->err_corrupt, 1);
			return -EBADMSG;
		}
		/* one instruction: a handler that comes in after it reserves after us */
		w = local_fetch_add(&f->wr[t], ENT1 + size);
		start = (uint32_t)(w & OFF_MASK);
		end = start + size;
		if (unlikely(end > f->dsize)) {
			err = move_tail(f, t, start, size);
			if (err)
				return err;
			continue;
		}
		*out = page_data(f, t) + start;
		*page_out = t;
		return 0;
	}
}

static inline int write_enter(struct evr_flight *f, size_t len, uint32_t *size)
{
	uint32_t sz;

	if (unlikely(!f->can_write))
		return -EPERM;
	sz = (uint32_t)((RHDR + ((f->flags & EVR_CTRL_STAMP) ? 8 : 0) + len + 7) & ~7ull);
	if (unlikely(len > f->dsize || sz > f->dsize)) {
		local_add(&f->fc->err_msgsize, 1);
		return -EMSGSIZE;
	}
	*size = sz;
	return 0;
}

/* -EDEADLK, counted, if a level at @depth may not nest another record */
static inline int nest_check(struct evr_flight *f, uint64_t depth)
{
	if (unlikely(depth >= EVR_MAX_NEST)) {
		local_add(&f->fc->err_nest, 1);
		return -EDEADLK;
	}
	return 0;
}

/* Fill the header (and stamp) of a record reserved at @p; returns where the payload goes. */
static inline uint8_t *put_header(struct evr_flight *f, uint8_t *p, uint32_t type, uint32_t size,
				  size_t len, uint32_t pg)
{
	struct evr_record_header *h = (void *)p;
	uint32_t stamped = (f->flags & EVR_CTRL_STAMP) ? 8 : 0;

	h->type = type;
	h->misc = (uint16_t)((size - RHDR - stamped - len) | (stamped ? EVR_MISC_TIME : 0));
	h->size = (uint16_t)size;
	if (stamped) {
		uint64_t t = evr__clock_read(f->clk);

		memcpy(p + RHDR, &t, 8);
		if ((uint32_t)(p - page_data(f, pg)) == 0)
			WRITE_ONCE(page(f, pg)->time_stamp, t);
	} else if ((uint32_t)(p - page_data(f, pg)) == 0) {
		WRITE_ONCE(page(f, pg)->time_stamp, evr__clock_read(f->clk));
	}
	return p + RHDR + stamped;
}

/* write_outer() once the record did not fit on the tail page: the general path */
static __attribute__((noinline)) int write_outer_full(struct evr_flight *f, uint32_t id,
						       const void *data, size_t len, uint32_t size,
						       uint32_t t, uint32_t start)
{
	uint32_t pg;
	uint8_t *p;
	int err;

	err = move_tail(f, t, start, size);
	if (!err)
		err = reserve_bytes(f, size, &p, &pg);
	if (!err) {
		memcpy(put_header(f, p, EVR_TYPE_APP + id, size, len, pg), data, len);
		local_add(&f->written, 1);
	}
	end_commit(f);
	return err;
}

/*
 * The outermost write (no level of this writer context is inside one): the common case, made
 * short. The steps are the general path's, less two that only matter when nested. The
 * outermost level does not bump commits: it reads commits only to see whether a handler came
 * in, and only handlers' bumps say that. Its record lands on the commit page, which is the
 * tail page (else it backs out, returning 1, and the general path moves the commit page up
 * first). Only the outermost level moves the commit page, so it stays put under us: we publish
 * that page's commit alone, and commit_page (published at each move) does not change.
 * @plain: no timestamp in the record (the header is one store).
 */
static __attribute__((always_inline)) inline int write_outer(struct evr_flight *f, uint32_t id,
							     const void *data, size_t len,
							     uint32_t size, int plain)
{
	uint32_t t, start;
	uint64_t w, commits, written;
	uint8_t *base, *p;

	/*
	 * Plain stores of the depth, 1 here and 0 at the end, as the core ring's nest: it was
	 * 0 when the caller looked, and every handler that comes in puts back the value it
	 * found before it returns. Read-modify-writes would chain each record's two updates
	 * through memory into the next record's.
	 */
	WRITE_ONCE(f->committing, 1);
	barrier();
	/* from here on every handler that comes in bumps commits (start_commit()) */
	commits = local_read(&f->commits);
	barrier();
	t = (uint32_t)local_read(&f->tail);
	if (unlikely(f->commit != t)) {
		/* handlers that came in left their commits to the general path we take now */
		WRITE_ONCE(f->committing, 0);
		barrier();
		return 1;
	}
	/* one instruction: a handler that comes in after it reserves after us */
	w = local_fetch_add(&f->wr[t], ENT1 + size);
	start = (uint32_t)(w & OFF_MASK);
	if (unlikely(start + size > f->dsize))
		return write_outer_full(f, id, data, len, size, t, start);
	base = page_data(f, t);
	if (plain) {
		uint64_t hw = (uint64_t)(EVR_TYPE_APP + id) | (uint64_t)(size - RHDR - len) << 32 |
			      (uint64_t)size << 48;

		p = base + start;
		memcpy(p, &hw, sizeof(hw));
		if (unlikely(!start))
			WRITE_ONCE(page(f, t)->time_stamp, evr__clock_read(f->clk));
		p += RHDR;
	} else {
		p = put_header(f, base + start, EVR_TYPE_APP + id, size, len, t);
	}
	memcpy(p, data, len);
	written = local_fetch_add(&f->written, 1) + 1;
	barrier();
	/*
	 * Publish our record's end as the page's commit (release: the record is written, F1).
	 * Every byte below it is a whole record: ours, or one reserved before our xadd, by an
	 * earlier write or by a handler that came in before it and ran to completion. The page is
	 * still the generation we reserved on: handlers that came in since may have moved the
	 * tail on, but not round to @t, as @t holds the commit page, which no handler passes
	 * (move_tail()). Records they put after ours, and the written count's handler part, are
	 * published by the general path the re-check below sends us round.
	 */
	/* pairs with load_acquire(page->commit) in evr_flight_read() (F1) */
	store_release(&((struct evr_flight_page *)(base - HDR))->commit, (uint64_t)start + size);
	/* a counter, no partner (stats read it relaxed); release keeps it after the commit */
	store_release(&f->fc->written, written);
	barrier();
	WRITE_ONCE(f->committing, 0);
	barrier();
	/* a handler that reserved after our commit left its commit to us (1b038c6) */
	if (unlikely(local_read(&f->commits) != commits) && !local_read(&f->committing)) {
		local_add(&f->committing, 1);
		end_commit(f);
	}
	return 0;
}

/* Everything evr_flight_write()'s fast entry does not take: checks, stamps, nesting. */
static __attribute__((noinline)) int write_slow(struct evr_flight *f, uint32_t id, const void *data,
						size_t len)
{
	uint64_t depth;
	uint32_t size, pg;
	uint8_t *p;
	int err;

	if (unlikely(!f || id > EVR_APP_ID_MAX || (!data && len)))
		return -EINVAL;
	err = write_enter(f, len, &size);
	if (unlikely(err))
		return err;
	depth = local_read(&f->committing);
	if (likely(!depth)) {
		err = write_outer(f, id, data, len, size, !(f->flags & EVR_CTRL_STAMP));
		if (err != 1)
			return err;
	} else {
		err = nest_check(f, depth);
		if (unlikely(err))
			return err;
	}
	start_commit(f);
	err = reserve_bytes(f, size, &p, &pg);
	if (likely(!err)) {
		memcpy(put_header(f, p, EVR_TYPE_APP + id, size, len, pg), data, len);
		local_add(&f->written, 1);
	}
	end_commit(f);
	return err;
}

int evr_flight_write(struct evr_flight *f, uint32_t id, const void *data, size_t len)
{
	/* fast_lim: a writable unstamped ring, and a record that fits a page */
	if (likely(f && len < f->fast_lim && id <= EVR_APP_ID_MAX && data &&
		   !local_read(&f->committing))) {
		int err = write_outer(f, id, data, len, (uint32_t)((RHDR + len + 7) & ~7ull), 1);

		if (likely(err != 1))
			return err;
	}
	return write_slow(f, id, data, len);
}

int evr_flight_reserve(struct evr_flight *f, uint32_t id, size_t len, struct evr_slot *s)
{
	uint32_t size, pg;
	uint8_t *p;
	int err;

	if (unlikely(!f || !s || id > EVR_APP_ID_MAX))
		return -EINVAL;
	err = write_enter(f, len, &size);
	if (!err)
		err = nest_check(f, local_read(&f->committing));
	if (unlikely(err))
		return err;
	start_commit(f);
	err = reserve_bytes(f, size, &p, &pg);
	if (unlikely(err)) {
		end_commit(f);
		return err;
	}
	s->data = put_header(f, p, EVR_TYPE_APP + id, size, len, pg);
	s->len = (uint32_t)len;
	s->size = size;
	s->pos = pg;
	s->hdr = p;
	s->wrap = 0;
	s->level = (uint32_t)local_read(&f->committing);
	return 0;
}

int evr_flight_commit(struct evr_flight *f, struct evr_slot *s)
{
	if (unlikely(!f || !s || !s->hdr || !f->can_write))
		return -EINVAL;
	/* commits come back in stack order, as reservations nest */
	if (unlikely(s->level != (uint32_t)local_read(&f->committing)))
		return -EINVAL;
	s->hdr = NULL;
	local_add(&f->written, 1);
	end_commit(f);
	return 0;
}
