// SPDX-License-Identifier: MIT
/*
 * The channel reader: one reader per ring of the channel, records merged in timestamp order
 * within a bounded window (copied into a heap, since a ring batch cannot stay open while records
 * wait), late records delivered and counted; orphaned per-thread slots recycled once drained.
 * Single-threaded: one channel reader per channel, on one thread at a time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "atomic.h"
#include "chan.h"

struct held {
	uint64_t time;
	uint64_t seq; /* arrival order: ties keep it */
	struct evr_record rec; /* hdr and data point into buf */
	uint8_t *buf;
};

struct evr_chan_reader {
	struct evr_chan *ch;
	struct evr_reader **rds;
	uint64_t *ring_time; /* last stamp seen per ring: untimed records (LOST) take it */
	uint32_t flags;
	uint64_t window_ns;
	uint64_t buffer_bytes;

	struct held *heap; /* min-heap on (time, seq) */
	size_t n, cap;
	uint64_t held_bytes;
	uint64_t seq;
	uint64_t last_time; /* of the last record delivered in order */
	uint8_t *out; /* the record handed out last, freed on the next call */

	uint32_t cur; /* unordered: the ring being read, and whether a batch is open */
	int open;
	uint64_t next_check_ns; /* next look for dead writer processes */
	struct evr_chan_stats st;
};

static int check_opts(const struct evr_chan_reader_opts *o)
{
	if (!o)
		return 0;
	if (o->sz < sizeof(*o) || o->sz > 4096 || o->pad || (o->flags & ~EVR_CHAN_READ_UNORDERED))
		return -EINVAL;
	for (size_t i = sizeof(*o); i < o->sz; i++)
		if (((const uint8_t *)o)[i])
			return -EINVAL;
	return 0;
}

void evr_chan_reader_destroy(struct evr_chan_reader *crd)
{
	if (!crd)
		return;
	for (uint32_t i = 0; crd->rds && i < crd->ch->nr_rings; i++)
		evr_reader_destroy(crd->rds[i]);
	for (size_t i = 0; i < crd->n; i++)
		free(crd->heap[i].buf);
	free(crd->out);
	free(crd->heap);
	free(crd->rds);
	free(crd->ring_time);
	free(crd);
}

int evr_chan_reader_create(struct evr_chan *ch, const struct evr_chan_reader_opts *opts,
			   struct evr_chan_reader **out)
{
	struct evr_chan_reader *crd;
	int err;

	if (!ch || !out || check_opts(opts))
		return -EINVAL;
	crd = calloc(1, sizeof(*crd));
	if (!crd)
		return -ENOMEM;
	crd->ch = ch;
	crd->flags = opts ? opts->flags : 0;
	crd->window_ns = opts && opts->window_ns ? opts->window_ns : 1000000;
	crd->buffer_bytes = opts && opts->buffer_bytes ? opts->buffer_bytes : 4u << 20;
	crd->rds = calloc(ch->nr_rings, sizeof(*crd->rds));
	crd->ring_time = calloc(ch->nr_rings, sizeof(*crd->ring_time));
	if (!crd->rds || !crd->ring_time) {
		evr_chan_reader_destroy(crd);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < ch->nr_rings; i++) {
		err = evr_reader_create(ch->rings[i], NULL, &crd->rds[i]);
		if (err) {
			evr_chan_reader_destroy(crd);
			return err;
		}
	}
	*out = crd;
	return 0;
}

/*
 * Hand an orphaned slot back once everything its thread published has been read. A slot whose
 * writer process died (not just the thread) is orphaned here too; the next owner resumes from
 * the published head, dropping what the dead one left unpublished.
 */
static void recycle(struct evr_chan_reader *crd, uint32_t i, int check_dead)
{
	struct evr_ctrl *c = crd->ch->rings[i]->ctrl;
	/* acquire: pairs with the release in slot_release(); its records are visible to us */
	uint32_t st = load_acquire(&c->slot_state);

	if (st == EVR_SLOT_OWNED && check_dead) {
		pid_t pid = READ_ONCE(c->writer_pid);

		if (pid > 0 && kill(pid, 0) < 0 && errno == ESRCH) {
			uint32_t owned = EVR_SLOT_OWNED;

			/* its writer process is gone: same as an exited thread */
			__atomic_compare_exchange_n(&c->slot_state, &owned, EVR_SLOT_ORPHAN, 0,
						    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
			st = EVR_SLOT_ORPHAN;
		}
	}
	if (st != EVR_SLOT_ORPHAN)
		return;
	if (load_acquire(&c->data_head) != READ_ONCE(c->data_tail))
		return; /* not drained yet */
	/* release: pairs with the acquire cmpxchg in claim(); the next owner sees our data_tail */
	if (__atomic_compare_exchange_n(&c->slot_state, &st, EVR_SLOT_FREE, 0, __ATOMIC_RELEASE,
					__ATOMIC_RELAXED))
		crd->st.recycled++;
}

static void heap_swap(struct held *a, struct held *b)
{
	struct held t = *a;

	*a = *b;
	*b = t;
}

static int held_less(const struct held *a, const struct held *b)
{
	return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

static int heap_push(struct evr_chan_reader *crd, const struct evr_record *rec, uint32_t ring)
{
	struct held h;
	size_t i;

	if (crd->n == crd->cap) {
		size_t cap = crd->cap ? crd->cap * 2 : 256;
		struct held *p = realloc(crd->heap, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		crd->heap = p;
		crd->cap = cap;
	}
	h.buf = malloc(rec->len + sizeof(struct evr_record_header));
	if (!h.buf)
		return -ENOMEM;
	/* the validated fields, not a re-read of the ring */
	h.rec = *rec;
	memcpy(h.buf + sizeof(struct evr_record_header), rec->data, rec->len);
	memcpy(h.buf, rec->hdr, sizeof(struct evr_record_header));
	h.rec.hdr = (const void *)h.buf;
	h.rec.data = h.buf + sizeof(struct evr_record_header);
	h.rec.ring = (uint16_t)ring;
	if (rec->has_time)
		crd->ring_time[ring] = rec->time;
	h.time = rec->has_time ? rec->time : crd->ring_time[ring];
	h.seq = crd->seq++;
	crd->held_bytes += rec->len + sizeof(struct held);
	i = crd->n++;
	crd->heap[i] = h;
	while (i && held_less(&crd->heap[i], &crd->heap[(i - 1) / 2])) {
		heap_swap(&crd->heap[i], &crd->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	return 0;
}

static struct held heap_pop(struct evr_chan_reader *crd)
{
	struct held top = crd->heap[0];
	size_t i = 0;

	crd->heap[0] = crd->heap[--crd->n];
	for (;;) {
		size_t l = 2 * i + 1, m = i;

		if (l < crd->n && held_less(&crd->heap[l], &crd->heap[m]))
			m = l;
		if (l + 1 < crd->n && held_less(&crd->heap[l + 1], &crd->heap[m]))
			m = l + 1;
		if (m == i)
			break;
		heap_swap(&crd->heap[i], &crd->heap[m]);
		i = m;
	}
	crd->held_bytes -= top.rec.len + sizeof(struct held);
	return top;
}

static void count(struct evr_chan_reader *crd, const struct evr_record *rec)
{
	crd->st.records++;
	if (!rec->is_app && rec->type == EVR_TYPE_LOST && (rec->hdr->misc & EVR_MISC_EVRING) &&
	    rec->len >= sizeof(struct evr_lost_body)) {
		struct evr_lost_body b;

		memcpy(&b, rec->data, sizeof(b));
		crd->st.lost += b.lost;
	}
}

/* Writer processes are checked for death at most every 100 ms (a kill(pid, 0) per slot). */
static int dead_check_due(struct evr_chan_reader *crd)
{
	uint64_t now = evr_clock_now();

	if (crd->ch->policy != EVR_CHAN_THREAD || now < crd->next_check_ns)
		return 0;
	crd->next_check_ns = now + 100000000ull;
	return 1;
}

/* Pull what every ring has into the heap, up to the buffer limit. */
static int pull(struct evr_chan_reader *crd)
{
	struct evr_chan *ch = crd->ch;
	int bad = 0, check_dead = dead_check_due(crd);

	for (uint32_t i = 0; i < ch->nr_rings; i++) {
		struct evr_record rec;
		int got;

		if (crd->held_bytes >= crd->buffer_bytes)
			break;
		if (evr_reader_begin(crd->rds[i]) < 0)
			bad = 1;
		while (crd->held_bytes < crd->buffer_bytes &&
		       (got = evr_reader_next(crd->rds[i], &rec)) != 0) {
			if (got < 0) {
				bad = 1;
				break;
			}
			if (heap_push(crd, &rec, i) < 0) {
				/* out of memory: this record is taken; count it, leave the rest */
				crd->st.dropped++;
				break;
			}
		}
		evr_reader_end(crd->rds[i]);
		if (i < ch->nr_slots)
			recycle(crd, i, check_dead);
	}
	if (bad)
		crd->st.bad++;
	return bad ? -EBADMSG : 0;
}

static int next_unordered(struct evr_chan_reader *crd, struct evr_record *rec)
{
	struct evr_chan *ch = crd->ch;

	for (uint32_t tries = 0; tries <= ch->nr_rings; tries++) {
		int got;

		if (!crd->open) {
			if (evr_reader_begin(crd->rds[crd->cur]) < 0)
				crd->st.bad++;
			crd->open = 1;
		}
		got = evr_reader_next(crd->rds[crd->cur], rec);
		if (got == 1) {
			rec->ring = (uint16_t)crd->cur;
			count(crd, rec);
			return 1;
		}
		if (got < 0)
			crd->st.bad++;
		evr_reader_end(crd->rds[crd->cur]);
		if (crd->cur < ch->nr_slots)
			recycle(crd, crd->cur, crd->cur == 0 && dead_check_due(crd));
		crd->open = 0;
		crd->cur = (crd->cur + 1) % ch->nr_rings;
	}
	return 0;
}

int evr_chan_reader_next(struct evr_chan_reader *crd, struct evr_record *rec, bool drain)
{
	struct held h;
	int err = 0;

	if (!crd || !rec)
		return -EINVAL;
	if (crd->out) { /* the ordered read's copy of the last record, now given up */
		free(crd->out);
		crd->out = NULL;
	}
	if (crd->flags & EVR_CHAN_READ_UNORDERED)
		return next_unordered(crd, rec);
	if (!crd->n || (!drain && crd->heap[0].time + crd->window_ns > evr_clock_now()))
		err = pull(crd);
	if (!crd->n)
		return err;
	if (!drain && crd->held_bytes < crd->buffer_bytes &&
	    crd->heap[0].time + crd->window_ns > evr_clock_now())
		return err; /* the oldest is not due yet: a writer may still have older ones */
	h = heap_pop(crd);
	if (h.rec.has_time) {
		if (h.time < crd->last_time)
			crd->st.late++;
		else
			crd->last_time = h.time;
	}
	crd->out = h.buf;
	*rec = h.rec;
	count(crd, rec);
	return 1;
}

int evr_chan_reader_get_stats(const struct evr_chan_reader *crd, struct evr_chan_stats *st)
{
	struct evr_chan_stats tmp;
	const struct evr_chan *ch;

	if (!crd || !st || st->sz < sizeof(size_t))
		return -EINVAL;
	ch = crd->ch;
	tmp = crd->st;
	tmp.sz = st->sz;
	tmp.fallback_writes = 0;
	tmp.slots_owned = 0;
	if (ch->policy == EVR_CHAN_THREAD) {
		tmp.fallback_writes = READ_ONCE(ch->rings[ch->nr_slots]->ctrl->fallback_writes);
		for (uint32_t i = 0; i < ch->nr_slots; i++)
			tmp.slots_owned += READ_ONCE(ch->rings[i]->ctrl->slot_state) ==
					   EVR_SLOT_OWNED;
	}
	memcpy(st, &tmp, st->sz < sizeof(tmp) ? st->sz : sizeof(tmp));
	return 0;
}
