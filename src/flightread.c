// SPDX-License-Identifier: MIT
/*
 * The flight recorder's reader side (docs/design.md section 19, docs/ordering.md "Flight
 * rings"): the reader that swaps its spare page in for the head page, live snapshots, and the
 * post-mortem reader of a dead process's image. Nothing read from the ring is trusted: every
 * index, size and offset is range-checked before use. The writer is in src/flight.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "flight.h"

#define TRIES_MAX 64 /* reader: swap attempts per call before "nothing now" */

/* ---------------------------------------------------------------------------------------- */
/* Records: one decoder for the reader, snapshots and post-mortem; trusts nothing */

/*
 * Decode the record at @off of a page's data @d holding @commit bytes. Return its size (a
 * multiple of 8 within commit), 0 if it is not a valid record. Sets @rec for app records and
 * LOST records; *@skip for padding.
 */
static uint32_t decode(const struct evr_ctrl *c, const uint8_t *d, uint32_t off, uint32_t commit,
		       struct evr_record *rec, int *skip)
{
	const struct evr_record_header *h = (const void *)(d + off);
	uint32_t size, type, pad, stamped;

	if (commit - off < RHDR)
		return 0;
	size = h->size;
	type = h->type;
	if (size < RHDR || size % 8 || size > commit - off)
		return 0;
	*skip = 0;
	if (type == EVR_TYPE_PAD) {
		*skip = 1;
		return size;
	}
	if (type < EVR_TYPE_APP)
		return 0; /* writers of flight rings write nothing else */
	stamped = (h->misc & EVR_MISC_TIME) ? 8 : 0;
	pad = h->misc & EVR_MISC_PAD_MASK;
	if (size < RHDR + stamped + pad)
		return 0;
	memset(rec, 0, sizeof(*rec));
	rec->hdr = h;
	rec->data = d + off + RHDR + stamped;
	rec->len = size - RHDR - stamped - pad;
	rec->type = type - EVR_TYPE_APP;
	rec->is_app = true;
	if (stamped) {
		uint64_t t;

		memcpy(&t, d + off + RHDR, 8);
		rec->time = evr_clock_to_ns(c, t);
		rec->has_time = true;
	}
	return size;
}

static void make_lost(uint8_t *buf, uint64_t id, uint64_t overwritten, uint64_t refused,
		      struct evr_record *rec)
{
	struct evr_record_header h = { EVR_TYPE_LOST, EVR_MISC_EVRING,
				       (uint16_t)(RHDR + sizeof(struct evr_lost_body)) };
	struct evr_lost_body b = { 0 };

	b.id = id;
	b.lost = overwritten + refused;
	b.causes = (overwritten ? EVR_LOST_OVERWRITTEN : 0) | (refused ? EVR_LOST_FULL : 0);
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + RHDR, &b, sizeof(b));
	memset(rec, 0, sizeof(*rec));
	rec->hdr = (const void *)buf;
	rec->data = buf + RHDR;
	rec->len = sizeof(b);
	rec->type = EVR_TYPE_LOST;
}

/* ---------------------------------------------------------------------------------------- */
/* Reader */

/*
 * The head page: the target of the first HEAD link from the page the last swap put in (the
 * one before the hint), taken only while the ring is at rest, i.e. no writer level was inside
 * a push when we started and none began before we finished (fc->pushing unchanged, F6). A ring
 * at rest has exactly one HEAD and no UPDATE, and the links we passed were as we read them, so
 * no stale or second HEAD can be the one we stop at. A push in flight or begun meanwhile is
 * -EAGAIN: look again. Taking the first HEAD without that check swaps mid-push once the writer
 * laps the ring between two swaps (models/flight.pml, NO_PUSH_CHECK); walking the whole ring
 * to count flags, as an earlier version did, is correct but costs a lap per swap. Only the
 * reader changes link targets: a walk that leaves the page range, meets the reader's page or
 * finds no HEAD on a ring at rest is -EBADMSG. In produce/consume mode nothing pushes and the
 * first link looked at is the HEAD.
 */
static int find_head(struct evr_flight *f, uint32_t *head)
{
	uint32_t h = f->head_hint, r = f->rpage, start, p, lk, found = f->nr, before = f->nr;
	uint64_t pushing;

	/* acquire: pairs with the release before handle_head() lowers the count (F6) */
	pushing = load_acquire(&f->fc->pushing);
#ifdef EVR_BROKEN_FLIGHT_NO_PUSH_COUNT
	pushing = 0; /* must-fail control: trust the first HEAD whatever the writer is doing */
#endif
	if (pushing & PUSH_LEVELS)
		return -EAGAIN;
	/* start on a ring page: the one the last swap put before the hint, when it can be */
	start = h < f->nr ? READ_ONCE(f->desc[h].prev) : f->nr;
	if (start >= f->nr || start == r)
		start = h < f->nr && h != r ? h : next_of(f, r);
	p = start;
	for (uint32_t i = 0; i + 1 < f->nr; i++) {
		if (p >= f->nr || p == r)
			return -EBADMSG;
		/* acquire: pairs with the writer's cmpxchg that set HEAD (F3) */
		lk = __atomic_load_n(&f->desc[p].link, __ATOMIC_ACQUIRE);
		if ((lk & EVR_FL_MASK) == EVR_FL_HEAD) {
			found = EVR_FL_TARGET(lk);
			before = p;
			break;
		}
		if ((lk & EVR_FL_MASK) == EVR_FL_UPDATE)
			return -EAGAIN; /* a push began after our first look */
		if ((lk & EVR_FL_MASK) != EVR_FL_NORMAL)
			return -EBADMSG;
		p = EVR_FL_TARGET(lk);
	}
	/* after the link loads (acquire): a push that changed one of them shows here (F6) */
#ifndef EVR_BROKEN_FLIGHT_NO_PUSH_COUNT
	/* acquire: pairs with the release fence before handle_head() lowers pushing (F6) */
	if (load_acquire(&f->fc->pushing) != pushing)
		return -EAGAIN;
#endif
	if (found >= f->nr)
		return -EBADMSG; /* a ring at rest always has a HEAD */
	*head = found;
	if (READ_ONCE(f->desc[found].prev) != before)
		WRITE_ONCE(f->desc[found].prev, before); /* ours: repair it */
	return 0;
}

/* The writer's counters as read now: queue a LOST record for what grew since the last one. */
static void note_losses(struct evr_flight *f, uint64_t ov, uint64_t lo)
{
	/* counters only grow; a hostile writer's decrease reads as no loss */
	if (ov > f->last_overrun || lo > f->last_lost) {
		f->pend_ov = ov > f->last_overrun ? ov - f->last_overrun : 0;
		f->pend_lost = lo > f->last_lost ? lo - f->last_lost : 0;
		f->lost_pending = 1;
	}
	if (ov > f->last_overrun)
		f->last_overrun = ov;
	if (lo > f->last_lost)
		f->last_lost = lo;
	WRITE_ONCE(f->fc->seen_overrun, f->last_overrun);
	WRITE_ONCE(f->fc->seen_lost, f->last_lost);
}

/*
 * Swap the spare page in for the head page. Return 1 swapped, 2 our page has more after all,
 * 0 nothing to swap now (caught up
 * with the writer, or it is mid-push), -EBADMSG the list is corrupt.
 */
static int swap_in(struct evr_flight *f)
{
	uint32_t r = f->rpage, h, p, n, want;
	uint64_t ov, lo;
	int err = -EAGAIN;

	/* acquire: pairs with the release in set_commit_to_write() (F2) */
	if (load_acquire(&f->fc->commit_page) == r)
		return 0; /* the writer's commit is on our page: nothing newer */
	/*
	 * The commit page has left our page, so its commit is final (F2), but it may have grown
	 * since our caller looked: read the rest before giving the page back.
	 */
	{
		uint64_t c = load_acquire(&page(f, r)->commit);

		if ((c < f->dsize ? c : f->dsize) > f->rread)
			return 2;
	}
	WRITE_ONCE(page(f, r)->commit, 0);
	WRITE_ONCE(f->desc[r].read, 0);
	for (uint32_t tries = 0; tries < TRIES_MAX; tries++) {
		err = find_head(f, &h);
		if (err == -EBADMSG)
			return err;
		if (err)
			continue;
		if (h == r)
			return -EBADMSG;
		p = READ_ONCE(f->desc[h].prev);
		n = next_of(f, h);
		if (p >= f->nr || n >= f->nr || p == r || n == r)
			return -EBADMSG;
		/* every link the reader rewrites gets a new tag (see EVR_FL_TAG_SHIFT) */
		WRITE_ONCE(f->desc[r].link, EVR_FL_LINK(n, EVR_FL_HEAD) |
						    EVR_FL_NEXT_TAG(READ_ONCE(f->desc[r].link)));
		WRITE_ONCE(f->desc[r].prev, p);
		/* full barrier: the counters are read after our links are set up, as the kernel */
		smp_mb(); /* pairs with publish_count() (F4) and the push cmpxchgs (F3) */
		ov = load_acquire(&f->fc->overrun); /* pairs with publish_count() (F4) */
		lo = load_acquire(&f->fc->lost); /* pairs with publish_count() (F4) */
		/* pairs with the writer's push cmpxchgs in handle_head() (F3) */
		want = __atomic_load_n(&f->desc[p].link, __ATOMIC_ACQUIRE);
#ifndef EVR_BROKEN_FLIGHT_SWAP
		if ((want & ~EVR_FL_TAG_MASK) != EVR_FL_LINK(h, EVR_FL_HEAD))
			continue; /* a writer is pushing @h, or has: find the head again */
#else
		/*
		 * must-fail control: swap whatever the link says (HEAD, UPDATE or NORMAL), as a
		 * reader that does not check the flag would; the stress oracle must catch it
		 */
		if (EVR_FL_TARGET(want) != h)
			continue;
#endif
		/* acq_rel: only while the link still says HEAD (F3) */
		if (__atomic_compare_exchange_n(&f->desc[p].link, &want,
						EVR_FL_LINK(r, EVR_FL_NORMAL) |
							EVR_FL_NEXT_TAG(want),
						0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			WRITE_ONCE(f->desc[n].prev, r);
			f->head_hint = n;
			WRITE_ONCE(f->fc->head_hint, n);
			/* release: before any later insertion of @h brings the writer to it (F4) */
			store_release(&f->desc[h].taken, READ_ONCE(f->desc[h].seq));
			f->rpage = h;
			f->rread = 0;
			f->rcommit = 0;
			WRITE_ONCE(f->desc[h].read, 0);
			WRITE_ONCE(f->fc->reader_page, h);
			f->st_pages++;
			note_losses(f, ov, lo);
			return 1;
		}
		err = -EAGAIN;
	}
	return 0;
}

static int take_reader(struct evr_flight *f)
{
	uint32_t r = READ_ONCE(f->fc->reader_page), rd;

	if (r >= f->nr)
		return -EBADMSG;
	rd = READ_ONCE(f->desc[r].read);
	f->rpage = r;
	f->rread = rd <= f->dsize ? rd : f->dsize;
	f->rcommit = f->rread;
	f->head_hint = READ_ONCE(f->fc->head_hint);
	/* a reader that attaches after another resumes from what that one reported */
	f->last_overrun = READ_ONCE(f->fc->seen_overrun);
	f->last_lost = READ_ONCE(f->fc->seen_lost);
	f->reader = 1;
	return 0;
}

int evr_flight_read(struct evr_flight *f, struct evr_record *rec)
{
	if (!f || !rec)
		return -EINVAL;
	if (!f->can_read)
		return -EPERM;
	if (unlikely(!f->reader) && take_reader(f))
		return -EBADMSG;
	/* at most a lap of swaps per call: a hostile writer cannot keep us swapping empty pages */
	for (uint32_t swaps = 0; swaps <= f->nr;) {
		uint32_t r = f->rpage, sz;
		uint64_t c;
		int skip, err;

		if (f->lost_pending) {
			f->lost_pending = 0;
			make_lost(f->lost_rec, f->ctrl->ring_id, f->pend_ov, f->pend_lost, rec);
			f->st_records++;
			return 1;
		}
		/*
		 * The page's commit is loaded again only once the records below the last value
		 * are used up: a reader close behind the writer then takes the line the writer
		 * stores commit to once per batch, not once per record.
		 */
		c = f->rcommit;
		if (f->rread >= c) {
			/* acquire: pairs with the writer's release of the page's commit (F1) */
			c = load_acquire(&page(f, r)->commit);
			if (c > f->dsize)
				c = f->dsize; /* a hostile value: read what the page can hold */
			f->rcommit = (uint32_t)c;
		}
		if (f->rread < c) {
			sz = decode(f->ctrl, page_data(f, r), f->rread, (uint32_t)c, rec, &skip);
			if (!sz) {
				f->st_bad++;
				f->rread = (uint32_t)c;
				WRITE_ONCE(f->desc[r].read, f->rread);
				return -EBADMSG;
			}
			rec->pos = (uint64_t)r * f->psize + HDR + f->rread;
			f->rread += sz;
			WRITE_ONCE(f->desc[r].read, f->rread);
			if (skip)
				continue;
			f->st_records++;
			f->st_read++;
			WRITE_ONCE(f->fc->read, f->st_read);
			return 1;
		}
		err = swap_in(f);
		if (err == -EBADMSG)
			f->st_bad++;
		if (err == 0 && !f->lost_pending) {
			/*
			 * Caught up: report losses no swap has seen. A write refused just as the
			 * reader took the writer's page (the ring was full when the writer looked)
			 * would otherwise wait for a swap that, if the writer stops, never comes.
			 * acquire: as in swap_in().
			 */
			note_losses(f, load_acquire(&f->fc->overrun), load_acquire(&f->fc->lost));
			if (f->lost_pending)
				continue;
		}
		if (err <= 0)
			return err;
		if (err == 1)
			swaps++;
	}
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Snapshots (live) and post-mortem (an image): one walk over a view of a ring */

struct view {
	const struct evr_ctrl *ctrl;
	const struct evr_flight_ctrl *fc;
	const struct evr_flight_desc *desc;
	const uint8_t *pages;
	uint32_t nr, psize, dsize, ring;
};

/*
 * Copy @n bytes the writer may be rewriting: the sequence check after the copy decides whether
 * the copy is kept, so the race is expected (a seqlock read); word by word, out of TSAN's view.
 */
__attribute__((no_sanitize("thread"))) static void racy_copy(uint8_t *dst, const uint8_t *src,
							      uint32_t n)
{
	const volatile uint64_t *s = (const volatile uint64_t *)src;
	uint64_t *d = (uint64_t *)dst;

	for (uint32_t i = 0; i < n / 8; i++)
		d[i] = s[i];
}

struct run_page {
	uint32_t idx, start, commit;
	uint64_t missed;
};

static int cmp_seq_desc(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return x[0] < y[0] ? 1 : x[0] > y[0] ? -1 : (x[1] > y[1]) - (x[1] < y[1]);
}

/* Copy page @i into @dst if its sequence is @want before and after; 1 kept, 0 not. */
static int copy_page(const struct view *v, uint32_t i, uint64_t want, uint8_t *dst,
		     struct run_page *rp)
{
	const struct evr_flight_page *pg = (const void *)(v->pages + (size_t)i * v->psize);
	uint64_t c;

	/* acquire: pairs with the writer's release of the sequence (F5) */
	if (load_acquire(&v->desc[i].seq) != want)
		return 0;
	c = load_acquire(&pg->commit);
	if (c > v->dsize)
		return -1;
	rp->idx = i;
	rp->commit = (uint32_t)c;
	rp->missed = READ_ONCE(pg->missed);
	racy_copy(dst, (const uint8_t *)pg + HDR, (uint32_t)c);
	/* acquire fence: the copy above is done before the sequence is read again */
	atomic_thread_fence(memory_order_acquire);
	return READ_ONCE(v->desc[i].seq) == want;
}

/*
 * Walk one ring: find the newest page (highest sequence), follow sequences down page by page
 * copying each into @buf (nr pages) until one is missing or was rewritten during its copy, then
 * hand the records out oldest first. @scratch holds 2 * nr u64 and nr run_page.
 */
static int walk(const struct view *v, uint8_t *buf, uint64_t *scratch, struct run_page *run,
		evr_record_fn fn, void *arg, struct evr_flight_stats *st)
{
	uint32_t rp = READ_ONCE(v->fc->reader_page), nrun = 0, got = 0;
	int stop = 0;

	for (uint32_t i = 0; i < v->nr; i++) {
		scratch[2 * i] = READ_ONCE(v->desc[i].seq);
		scratch[2 * i + 1] = i;
	}
	qsort(scratch, v->nr, 2 * sizeof(uint64_t), cmp_seq_desc);
	for (uint32_t k = 0; k < v->nr && scratch[2 * k]; k++) {
		uint32_t i = (uint32_t)scratch[2 * k + 1];
		struct run_page *p = &run[nrun];
		int kept;

		if (k && scratch[2 * k] != scratch[2 * (k - 1)] - 1)
			break; /* a gap: older pages hold consumed or overwritten data */
		kept = copy_page(v, i, scratch[2 * k], buf + (size_t)nrun * v->dsize, p);
		if (kept < 0) {
			st->bad++;
			break;
		}
		if (!kept)
			break; /* rewritten under us: it and everything older are gone */
		p->start = 0;
		nrun++;
		if (i == rp) {
			/* the reader's page: what it consumed is gone, and all that is older */
			uint32_t rd = READ_ONCE(v->desc[i].read);

			p->start = rd <= p->commit ? rd & ~7u : p->commit;
			break;
		}
	}
	st->pages += nrun;
	if (nrun)
		st->missed += run[nrun - 1].missed;
	/* oldest first */
	for (uint32_t k = nrun; k-- > 0 && !stop;) {
		const struct run_page *p = &run[k];
		const uint8_t *d = buf + (size_t)k * v->dsize;

		for (uint32_t off = p->start; off < p->commit;) {
			struct evr_record rec;
			int skip;
			uint32_t sz = decode(v->ctrl, d, off, p->commit, &rec, &skip);

			if (!sz) {
				st->bad++;
				break;
			}
			if (!skip) {
				rec.pos = (uint64_t)p->idx * v->psize + HDR + off;
				rec.ring = (uint16_t)v->ring;
				got++;
				st->records++;
				if (fn && fn(&rec, arg)) {
					stop = 1;
					break;
				}
			}
			off += sz;
		}
	}
	return stop ? -ECANCELED : (int)got;
}

static void view_of(const struct evr_flight *f, struct view *v)
{
	v->ctrl = f->ctrl;
	v->fc = f->fc;
	v->desc = f->desc;
	v->pages = f->pages;
	v->nr = f->nr;
	v->psize = f->psize;
	v->dsize = f->dsize;
	v->ring = (uint32_t)READ_ONCE(f->ctrl->ring_id);
}

static void counters(const struct evr_flight_ctrl *fc, struct evr_flight_stats *st)
{
	st->overwritten += READ_ONCE(fc->overrun);
	st->lost += READ_ONCE(fc->lost);
	st->written += READ_ONCE(fc->written);
}

static void stats_out(const struct evr_flight_stats *tmp, struct evr_flight_stats *st)
{
	size_t sz;

	if (!st || st->sz < sizeof(size_t))
		return;
	sz = st->sz < sizeof(*tmp) ? st->sz : sizeof(*tmp);
	memcpy((uint8_t *)st + sizeof(size_t), (const uint8_t *)tmp + sizeof(size_t),
	       sz - sizeof(size_t));
}

int evr_flight_snapshot(struct evr_flight *f, evr_record_fn fn, void *arg,
			struct evr_flight_stats *st)
{
	struct evr_flight_stats tmp = { .sz = sizeof(tmp) };
	struct view v;
	uint64_t *scratch;
	struct run_page *run;
	int ret;

	if (!f || (st && st->sz < sizeof(size_t)))
		return -EINVAL;
	if (!f->snap) {
		f->snap = malloc((size_t)f->nr * f->dsize + (size_t)f->nr * 2 * sizeof(uint64_t) +
				 (size_t)f->nr * sizeof(struct run_page));
		if (!f->snap)
			return -ENOMEM;
	}
	scratch = (uint64_t *)(f->snap + (size_t)f->nr * f->dsize);
	run = (struct run_page *)(scratch + 2 * (size_t)f->nr);
	view_of(f, &v);
	counters(f->fc, &tmp);
	ret = walk(&v, f->snap, scratch, run, fn, arg, &tmp);
	stats_out(&tmp, st);
	return ret == -ECANCELED ? (int)tmp.records : ret;
}

int evr_flight_get_stats(const struct evr_flight *f, struct evr_flight_stats *st)
{
	struct evr_flight_stats tmp = { .sz = sizeof(tmp) };

	if (!f || !st || st->sz < sizeof(size_t))
		return -EINVAL;
	counters(f->fc, &tmp);
	tmp.records = f->st_records;
	tmp.pages = f->st_pages;
	tmp.bad = f->st_bad;
	stats_out(&tmp, st);
	return 0;
}

/* Post-mortem over the bytes of a session: the directory is checked as evr_session_open does. */
int evr_flight_recover(const void *image, size_t len, evr_record_fn fn, void *arg,
		       struct evr_flight_stats *st)
{
	struct evr_flight_stats tmp = { .sz = sizeof(tmp) };
	const uint8_t *img = image;
	struct evr_session_entry *dir = NULL;
	uint8_t *buf = NULL;
	uint32_t n = 0;
	size_t page = evr__page_size();
	int err, total = 0;

	if (!image || ((uintptr_t)image & 7) || (st && st->sz < sizeof(size_t)))
		return -EINVAL;
	err = evr__session_dir(img, len, page, &dir, &n);
	if (err)
		return err;
	for (uint32_t i = 0; i < n && err >= 0; i++) {
		const struct evr_session_entry *e = &dir[i];
		uint32_t ps = evr__flight_page_size(e->flags, e->data_size);
		const struct evr_ctrl *c = (const void *)(img + e->offset);
		struct view v;
		uint64_t *scratch;
		struct run_page *run;
		uint8_t *nb;

		if (e->kind != EVR_KIND_FLIGHT)
			continue;
		/* evr__session_dir() checked the span is inside the image */
		v.ctrl = c;
		v.fc = (const void *)((const uint8_t *)c + EVR_FLIGHT_CTRL_OFFSET);
		v.nr = (uint32_t)(e->data_size / ps) + 1;
		v.psize = ps;
		v.dsize = ps - HDR;
		v.ring = i;
		if (READ_ONCE(c->magic) != EVR_CTRL_MAGIC ||
		    READ_ONCE(c->kind) != EVR_KIND_FLIGHT || READ_ONCE(v.fc->page_size) != ps ||
		    READ_ONCE(v.fc->nr_pages) != v.nr || READ_ONCE(v.fc->desc_offset) != page ||
		    READ_ONCE(v.fc->pages_offset) != READ_ONCE(c->data_offset) ||
		    READ_ONCE(c->data_offset) !=
			    page + ((v.nr * sizeof(struct evr_flight_desc) + page - 1) &
				    ~(page - 1))) {
			tmp.bad++;
			continue;
		}
		v.desc = (const void *)((const uint8_t *)c + page);
		v.pages = (const uint8_t *)c + c->data_offset;
		nb = realloc(buf, (size_t)v.nr * v.dsize + (size_t)v.nr * 2 * sizeof(uint64_t) +
					  (size_t)v.nr * sizeof(struct run_page));
		if (!nb) {
			err = -ENOMEM;
			break;
		}
		buf = nb;
		scratch = (uint64_t *)(buf + (size_t)v.nr * v.dsize);
		run = (struct run_page *)(scratch + 2 * (size_t)v.nr);
		tmp.rings++;
		counters(v.fc, &tmp);
		err = walk(&v, buf, scratch, run, fn, arg, &tmp);
		if (err > 0)
			total += err;
	}
	free(buf);
	free(dir);
	stats_out(&tmp, st);
	if (err == -ENOMEM)
		return err;
	return err == -ECANCELED ? (int)tmp.records : total;
}
