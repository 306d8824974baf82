// SPDX-License-Identifier: MIT
/*
 * W3, several writers: two writer threads pinned to two cores and one reader thread (unpinned by
 * default) move records through 1 MiB of rings, evring's channels against bare SPSC rings and the
 * peers a user would pick (Concurrency Kit ck_ring, liburcu wfcqueue), in Mrec/s. The reader
 * checks every sequence number of every writer; on full a writer waits and retries (no loss).
 *
 * How each impl holds 1 MiB (BENCH_W3_RING) and moves one record:
 *  evring-shared  EVR_CHAN_SHARED channel, one multi-producer ring of 1 MiB; evr_chan_write()
 *                 (stamps a timestamp); evr_chan_reader_next(), EVR_CHAN_READ_UNORDERED.
 *                 Built with -DNO_CHAN: an EVR_RING_MULTI ring, evr_ring_write(), evr_reader_*.
 *  evring-percpu  EVR_CHAN_PERCPU channel, 1 MiB / nr_cpus per ring (512 KiB here).
 *  evring-thread  EVR_CHAN_THREAD channel, two slots of 512 KiB (plus the 512 KiB shared fallback
 *                 ring the channel always has; it must stay unused, which is checked).
 *  ideal          one bench/ideal.h SPSC ring of 512 KiB per writer; the reader visits both.
 *  ideal-ts       the same rings, each record stamped with the TSC first (ideal_write_ts(),
 *                 8 more bytes, as evring's channels stamp): what the timestamp alone costs
 *                 the bare technique; informational, the target compares with ideal.
 *  ck-mpsc        ck_ring is a ring of pointers: each writer owns a pool of 512 KiB of record
 *                 slots (8-byte header {writer, len} + payload, 8-byte aligned: the same bytes an
 *                 evring record takes), fills slot seq % pool_n and enqueues its address with
 *                 ck_ring_enqueue_mpsc(); the reader takes it with ck_ring_dequeue_mpsc() (the
 *                 single-consumer dequeue), copies the payload out and checks it, and gives the
 *                 slots back by publishing, per writer, how many it has consumed (a release store
 *                 every 256 records and when idle). A writer may reuse slot i once that count
 *                 says so: the pools are the byte budget (1 MiB in all); the pointer ring (the
 *                 next power of two above both pools' slot count, 8 B per entry, extra memory) is
 *                 sized so that it never fills first.
 *  urcu-wfcq      liburcu's wait-free concurrent queue (_LGPL_SOURCE: the inline fast paths):
 *                 nodes come from a per-writer pool of 512 KiB (node link + the same 8-byte header
 *                 + payload), are enqueued with cds_wfcq_enqueue(); the reader splices the whole
 *                 queue out with __cds_wfcq_splice_blocking(), walks it, copies each payload out
 *                 and returns nodes exactly as ck-mpsc returns slots (per-writer consumed count).
 *
 * Same work per record everywhere: the writer copies the payload in (header + memcpy), the reader
 * copies it out into a scratch buffer and checks the writer id and the sequence number stamped at
 * both ends of it. evring's channels also take a timestamp per record; the others do not.
 * On full every writer does the same: back off until the reader says it freed something (a
 * progress counter it bumps once per batch) or 512 pauses passed, then retry.
 *
 * Three threads on two cores: the reader shares a core with a writer. Runs are not filtered for
 * preemption (every run is preempted); figures are medians over interleaved rounds.
 */
#define _GNU_SOURCE
#define _LGPL_SOURCE
#include <evring.h>

#include <ck_ring.h>
#include <urcu/wfcqueue.h>

#include "bench.h"
#include "ideal.h"

enum { IMPL_SHARED, IMPL_PERCPU, IMPL_THREAD, IMPL_IDEAL, IMPL_CK, IMPL_URCU, IMPL_IDEAL_TS,
       NR_IMPLS };

static const char *const impl_names[NR_IMPLS] = { "evring-shared", "evring-percpu",
						   "evring-thread", "ideal",
						   "ck-mpsc",	    "urcu-wfcq",
						   "ideal-ts" };

#define NW 2 /* writers */
#define NSRC 16u
#define AHEAD 8u
#define RELEASE_EVERY 256u /* ck/urcu: consumed counts published at least this often */
#define FULL_WAIT 512u /* pauses a full writer waits for reader progress before retrying */

/* The 8-byte header of a ck/urcu slot: the same bytes an evring record header takes. */
struct slot_hdr {
	uint32_t writer;
	uint32_t len;
};

struct wfcq_rec {
	struct cds_wfcq_node node;
	struct slot_hdr h;
	uint8_t payload[];
};

/* Private to one writer thread; written by it, read by main() after the join. */
struct wstate {
	int id;
	int pinned;
	struct ideal_writer iw;
	uint64_t freed_cache; /* ck/urcu: the reader's consumed count, last seen */
	uint64_t enospc;
	uint8_t *src; /* NSRC buffers of stride bytes */
	uint8_t *pool; /* ck/urcu slots */
	char err[160];
	struct w3 *s;
} __attribute__((aligned(64)));

struct w3 {
	/* set by main() before the threads start, read-only during a run */
	int impl;
	size_t len;
	uint64_t n; /* records per writer */
	int wcpu[NW], rcpu;
	uint64_t ring; /* bytes of rings in all */
	size_t stride;
	size_t slot_size; /* ck: slot; urcu: node */
	uint64_t pool_n; /* slots per writer pool */
	struct evr_ring *mring; /* evring-shared without channels */
	struct evr_reader *mrd;
	struct evr_chan *ch[3];
	struct evr_chan_reader *crd[3];
	struct ideal_ring ir[NW];
	struct ck_ring *ckr;
	ck_ring_buffer_t *ckbuf;
	struct __cds_wfcq_head qh;
	struct cds_wfcq_tail qt __attribute__((aligned(64)));

	int ready __attribute__((aligned(64)));
	int stop;

	/* written by the reader only */
	uint64_t progress __attribute__((aligned(64))); /* bumped once per batch: room was freed */
	uint64_t freed[NW][8]
		__attribute__((aligned(64))); /* ck/urcu: consumed per writer, [i][0] */
	uint64_t t0 __attribute__((aligned(64)));
	uint64_t t1;
	uint64_t lost_seen;
	int rpinned;
	char rerr[160];
	struct ideal_reader ird[NW];
	uint8_t *scratch;

	struct wstate w[NW];
};

static inline uint8_t *src_buf(struct wstate *w, uint64_t seq)
{
	return w->src + (seq % NSRC) * w->s->stride;
}

/* ideal-ts: the stamp evring's channels take by default (rdtsc, unordered) */
static inline uint64_t tsc(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __builtin_ia32_rdtsc();
#else
	return bench_now_ns();
#endif
}

static inline uint64_t tag(int writer, uint64_t seq)
{
	return (uint64_t)writer << 56 | seq;
}

/* The payload carries writer and sequence number at both ends: a torn record fails a check. */
static inline void stamp(uint8_t *p, size_t len, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
	memcpy(p + len - sizeof(v), &v, sizeof(v));
}

static void start_line(struct w3 *s)
{
	unsigned int spins = 0;

	__atomic_fetch_add(&s->ready, 1, __ATOMIC_ACQ_REL);
	while (__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE) < NW + 1)
		bench_backoff(&spins);
}

static int stopped(struct w3 *s)
{
	return __atomic_load_n(&s->stop, __ATOMIC_RELAXED);
}

/* Full: wait until the reader reports progress (or FULL_WAIT pauses: never a deadlock). */
static void wait_room(struct w3 *s, uint64_t seen, unsigned int *spins)
{
	for (unsigned int i = 0; i < FULL_WAIT; i++) {
		if (__atomic_load_n(&s->progress, __ATOMIC_RELAXED) != seen || stopped(s))
			return;
		bench_backoff(spins);
	}
}

/* ck-mpsc / urcu-wfcq: is slot @seq of this writer's pool free again? */
static inline int pool_room(struct wstate *w, uint64_t seq)
{
	struct w3 *s = w->s;

	if (seq - w->freed_cache < s->pool_n)
		return 1;
	/* acquire: pairs with the reader's release in give_back(); it is done with the slot */
	w->freed_cache = __atomic_load_n(&s->freed[w->id][0], __ATOMIC_ACQUIRE);
	return seq - w->freed_cache < s->pool_n;
}

/* One record, or -ENOSPC. @slot: the writer's running pool index (seq % pool_n). */
static inline int write_one(struct wstate *w, const uint8_t *buf, uint64_t seq, uint64_t slot)
{
	struct w3 *s = w->s;
	size_t len = s->len;

	switch (s->impl) {
#ifndef NO_CHAN
	case IMPL_SHARED:
		return evr_chan_write(s->ch[IMPL_SHARED], BENCH_ID, buf, len);
	case IMPL_PERCPU:
	case IMPL_THREAD:
		return evr_chan_write(s->ch[s->impl], BENCH_ID, buf, len);
#else
	case IMPL_SHARED:
		return evr_ring_write(s->mring, BENCH_ID, buf, len);
#endif
	case IMPL_IDEAL:
		return ideal_write(&w->iw, EVR_TYPE_APP + BENCH_ID, buf, len);
	case IMPL_IDEAL_TS:
		return ideal_write_ts(&w->iw, EVR_TYPE_APP + BENCH_ID, tsc(), buf, len);
	case IMPL_CK: {
		struct slot_hdr *h;

		if (!pool_room(w, seq))
			return -ENOSPC;
		h = (struct slot_hdr *)(w->pool + slot * s->slot_size);
		h->writer = (uint32_t)w->id;
		h->len = (uint32_t)len;
		memcpy(h + 1, buf, len);
		/* the pointer ring holds more entries than both pools: it cannot be full here */
		if (!ck_ring_enqueue_mpsc(s->ckr, s->ckbuf, h))
			return -EOVERFLOW;
		return 0;
	}
	case IMPL_URCU: {
		struct wfcq_rec *r;

		if (!pool_room(w, seq))
			return -ENOSPC;
		r = (struct wfcq_rec *)(w->pool + slot * s->slot_size);
		cds_wfcq_node_init(&r->node);
		r->h.writer = (uint32_t)w->id;
		r->h.len = (uint32_t)len;
		memcpy(r->payload, buf, len);
		cds_wfcq_enqueue(&s->qh, &s->qt, &r->node);
		return 0;
	}
	}
	return -EINVAL;
}

static void *writer(void *arg)
{
	struct wstate *w = arg;
	struct w3 *s = w->s;
	uint64_t seq, slot = 0, enospc = 0;
	unsigned int spins = 0;
	int err = 0;

	w->pinned = bench_pin(s->wcpu[w->id]) == 0;
	for (seq = 0; seq < AHEAD; seq++)
		stamp(src_buf(w, seq), s->len, tag(w->id, seq));
	start_line(s);
	for (seq = 0; seq < s->n; seq++) {
		stamp(src_buf(w, seq + AHEAD), s->len, tag(w->id, seq + AHEAD));
		for (;;) {
			uint64_t seen = __atomic_load_n(&s->progress, __ATOMIC_RELAXED);

			err = write_one(w, src_buf(w, seq), seq, slot);
			if (err != -ENOSPC)
				break;
			enospc++;
			if (stopped(s))
				return NULL;
			wait_room(s, seen, &spins);
		}
		if (err) {
			snprintf(w->err, sizeof(w->err), "writer %d, write of record %llu: %d",
				 w->id, (unsigned long long)seq, err);
			__atomic_store_n(&s->stop, 1, __ATOMIC_RELAXED);
			return NULL;
		}
		if (++slot == s->pool_n)
			slot = 0;
	}
	w->enospc = enospc;
	return NULL;
}

static int reader_fail(struct w3 *s, const char *what, long v)
{
	snprintf(s->rerr, sizeof(s->rerr), "%s (%ld)", what, v);
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELAXED);
	return -1;
}

/* Copy the payload out and check it is the next record of the writer it names. */
static inline int check(struct w3 *s, uint64_t *expect, const void *data, size_t len)
{
	uint64_t a, b, w;

	if (len != s->len)
		return reader_fail(s, "wrong length", (long)len);
	memcpy(s->scratch, data, len);
	memcpy(&a, s->scratch, sizeof(a));
	memcpy(&b, s->scratch + len - sizeof(b), sizeof(b));
	w = a >> 56;
	if (a != b || w >= NW)
		return reader_fail(s, "torn record or bad writer id", (long)w);
	if ((a & ((1ull << 56) - 1)) != expect[w]) {
		snprintf(s->rerr, sizeof(s->rerr), "writer %d: record %llu where %llu was due",
			 (int)w, (unsigned long long)(a & ((1ull << 56) - 1)),
			 (unsigned long long)expect[w]);
		__atomic_store_n(&s->stop, 1, __ATOMIC_RELAXED);
		return -1;
	}
	expect[w]++;
	return 0;
}

static inline void bump(struct w3 *s)
{
	__atomic_store_n(&s->progress, s->progress + 1, __ATOMIC_RELAXED);
}

static inline uint64_t remaining(struct w3 *s, const uint64_t *expect)
{
	return 2 * s->n - expect[0] - expect[1];
}

/* An evring record: LOST records are retried writes (counted, not missing). */
static inline int check_evring(struct w3 *s, uint64_t *expect, const struct evr_record *rec)
{
	if (!rec->is_app && rec->type == EVR_TYPE_LOST &&
	    rec->len >= sizeof(struct evr_lost_body)) {
		struct evr_lost_body lost;

		memcpy(&lost, rec->data, sizeof(lost));
		s->lost_seen += lost.lost;
		return 0;
	}
	if (!rec->is_app || rec->type != BENCH_ID)
		return reader_fail(s, "unexpected record type", (long)rec->type);
	return check(s, expect, rec->data, rec->len);
}

#ifndef NO_CHAN
static void read_chan(struct w3 *s, uint64_t *expect)
{
	struct evr_chan_reader *crd = s->crd[s->impl];
	struct evr_record rec;
	unsigned int spins = 0, k = 0;
	int got;

	while (remaining(s, expect)) {
		got = evr_chan_reader_next(crd, &rec, true);
		if (got < 0) {
			reader_fail(s, "evr_chan_reader_next", got);
			return;
		}
		if (!got) {
			bump(s);
			if (stopped(s))
				return;
			bench_backoff(&spins);
			continue;
		}
		if (check_evring(s, expect, &rec))
			return;
		/* the library frees room at each batch end; tell waiting writers now and then */
		if (++k % RELEASE_EVERY == 0)
			bump(s);
	}
}
#else
static void read_mring(struct w3 *s, uint64_t *expect)
{
	struct evr_record rec;
	unsigned int spins = 0;
	int avail, k;

	while (remaining(s, expect)) {
		avail = evr_reader_begin(s->mrd);
		if (avail < 0) {
			reader_fail(s, "evr_reader_begin", avail);
			return;
		}
		if (!avail) {
			if (stopped(s))
				return;
			bench_backoff(&spins);
			continue;
		}
		while ((k = evr_reader_next(s->mrd, &rec)) == 1)
			if (check_evring(s, expect, &rec))
				return;
		evr_reader_end(s->mrd);
		bump(s);
		if (k < 0) {
			reader_fail(s, "evr_reader_next", k);
			return;
		}
	}
}
#endif

static void read_ideal(struct w3 *s, uint64_t *expect)
{
	const uint32_t type = EVR_TYPE_APP + BENCH_ID;
	const size_t ts = s->impl == IMPL_IDEAL_TS ? sizeof(uint64_t) : 0;
	const size_t rec = bench_rec_size(s->len + ts);
	const struct evr_record_header *h;
	unsigned int spins = 0;

	while (remaining(s, expect)) {
		int any = 0;

		for (int i = 0; i < NW; i++) {
			if (!ideal_read_begin(&s->ird[i]))
				continue;
			any = 1;
			while ((h = ideal_read_next(&s->ird[i]))) {
				if (h->type != type || h->size != rec) {
					reader_fail(s, "unexpected record type or size", h->size);
					return;
				}
				if (check(s, expect, (const uint8_t *)(h + 1) + ts, s->len))
					return;
			}
			ideal_read_end(&s->ird[i]);
		}
		if (any) {
			bump(s);
			continue;
		}
		if (stopped(s))
			return;
		bench_backoff(&spins);
	}
}

/* ck/urcu: the slots consumed so far may be reused (release: we are done reading them). */
static void give_back(struct w3 *s, const uint64_t *expect)
{
	for (int i = 0; i < NW; i++)
		__atomic_store_n(&s->freed[i][0], expect[i], __ATOMIC_RELEASE);
	bump(s);
}

static void read_ck(struct w3 *s, uint64_t *expect)
{
	unsigned int spins = 0, k = 0;
	struct slot_hdr *h;

	while (remaining(s, expect)) {
		if (!ck_ring_dequeue_mpsc(s->ckr, s->ckbuf, &h)) {
			give_back(s, expect);
			if (stopped(s))
				return;
			bench_backoff(&spins);
			continue;
		}
		if (h->writer >= NW || h->len != s->len) {
			reader_fail(s, "bad slot header", (long)h->len);
			return;
		}
		if (check(s, expect, h + 1, h->len))
			return;
		if (++k % RELEASE_EVERY == 0)
			give_back(s, expect);
	}
	give_back(s, expect);
}

static void read_urcu(struct w3 *s, uint64_t *expect)
{
	struct __cds_wfcq_head lh;
	struct cds_wfcq_tail lt;
	struct cds_wfcq_node *node, *next;
	unsigned int spins = 0, k = 0;

	while (remaining(s, expect)) {
		__cds_wfcq_init(&lh, &lt);
		if (__cds_wfcq_splice_blocking(&lh, &lt, &s->qh, &s->qt) ==
		    CDS_WFCQ_RET_SRC_EMPTY) {
			give_back(s, expect);
			if (stopped(s))
				return;
			bench_backoff(&spins);
			continue;
		}
		/* _safe: next is fetched before the body, so the node may be given back in it */
		__cds_wfcq_for_each_blocking_safe(&lh, &lt, node, next)
		{
			struct wfcq_rec *r = caa_container_of(node, struct wfcq_rec, node);

			if (r->h.writer >= NW || r->h.len != s->len) {
				reader_fail(s, "bad node header", (long)r->h.len);
				return;
			}
			if (check(s, expect, r->payload, r->h.len))
				return;
			if (++k % RELEASE_EVERY == 0)
				give_back(s, expect);
		}
		give_back(s, expect);
	}
}

static void *reader(void *arg)
{
	struct w3 *s = arg;
	uint64_t expect[NW] = { 0 };

	s->rpinned = s->rcpu < 0 || bench_pin(s->rcpu) == 0;
	start_line(s);
	s->t0 = bench_now_ns();
	switch (s->impl) {
#ifndef NO_CHAN
	case IMPL_SHARED:
	case IMPL_PERCPU:
	case IMPL_THREAD:
		read_chan(s, expect);
		break;
#else
	case IMPL_SHARED:
		read_mring(s, expect);
		break;
#endif
	case IMPL_IDEAL:
	case IMPL_IDEAL_TS:
		read_ideal(s, expect);
		break;
	case IMPL_CK:
		read_ck(s, expect);
		break;
	case IMPL_URCU:
		read_urcu(s, expect);
		break;
	}
	s->t1 = bench_now_ns();
	return NULL;
}

/* One run: all records of both writers. Returns Mrec/s (both writers together). */
static double run_once(struct w3 *s, int *pinned)
{
	pthread_t w[NW], r;
	int err;

	s->ready = 0;
	s->stop = 0;
	s->lost_seen = 0;
	s->rerr[0] = 0;
	for (int i = 0; i < NW; i++) {
		s->w[i].err[0] = 0;
		s->w[i].enospc = 0;
		s->w[i].freed_cache = 0;
		s->freed[i][0] = 0;
		if (s->impl == IMPL_IDEAL || s->impl == IMPL_IDEAL_TS) {
			ideal_writer_init(&s->w[i].iw, &s->ir[i]);
			ideal_reader_init(&s->ird[i], &s->ir[i]);
		}
	}
	if (s->impl == IMPL_CK)
		ck_ring_init(s->ckr, (unsigned int)ck_ring_capacity(s->ckr));
	if (s->impl == IMPL_URCU)
		__cds_wfcq_init(&s->qh, &s->qt);
	err = pthread_create(&r, NULL, reader, s);
	for (int i = 0; i < NW && !err; i++)
		err = pthread_create(&w[i], NULL, writer, &s->w[i]);
	if (err)
		bench_die("pthread_create: %s", strerror(err));
	for (int i = 0; i < NW; i++)
		pthread_join(w[i], NULL);
	pthread_join(r, NULL);
	if (s->rerr[0] || s->w[0].err[0] || s->w[1].err[0])
		bench_die("W3 %s payload=%zu: %s %s %s", impl_names[s->impl], s->len, s->rerr,
			  s->w[0].err, s->w[1].err);
	if (s->impl <= IMPL_THREAD && s->lost_seen != s->w[0].enospc + s->w[1].enospc)
		bench_die("W3 %s payload=%zu: %llu writes refused, LOST records say %llu",
			  impl_names[s->impl], s->len,
			  (unsigned long long)(s->w[0].enospc + s->w[1].enospc),
			  (unsigned long long)s->lost_seen);
	*pinned = s->w[0].pinned && s->w[1].pinned && s->rpinned;
	return (double)(2 * s->n) * 1e3 / (double)(s->t1 - s->t0);
}

#ifndef NO_CHAN
/*
 * After a per-thread run: its writers exited, so their slots are orphans; a reader pass over
 * every ring recycles them (untimed), so that the next run's writers find free slots.
 */
static void settle(struct w3 *s)
{
	struct evr_chan_stats st = { .sz = sizeof(st) };
	struct evr_record rec;

	for (int i = 0; i < 16; i++) {
		while (evr_chan_reader_next(s->crd[IMPL_THREAD], &rec, true) > 0)
			;
		evr_chan_reader_get_stats(s->crd[IMPL_THREAD], &st);
		if (!st.slots_owned)
			return;
		usleep(1000);
	}
}

static void make_chan(struct w3 *s, int impl, uint32_t policy, uint64_t size)
{
	EVR_OPTS(evr_chan_opts, o, .policy = policy, .data_size = size, .nr_slots = NW);
	EVR_OPTS(evr_chan_reader_opts, ro, .flags = EVR_CHAN_READ_UNORDERED);
	int err;

	err = evr_chan_create(&o, &s->ch[impl]);
	if (!err)
		err = evr_chan_reader_create(s->ch[impl], &ro, &s->crd[impl]);
	if (err)
		bench_die("%s: channel of %llu-byte rings: %s", impl_names[impl],
			  (unsigned long long)size, evr_strerror(err));
}
#endif

static __attribute__((unused)) uint64_t pow2_floor(uint64_t v)
{
	return v ? 1ull << (63 - __builtin_clzll(v)) : 0;
}

int main(void)
{
	size_t payloads[BENCH_MAX_PAYLOADS], max_len = 0;
	int nr_payloads = bench_payloads(payloads);
	long rounds = bench_knob("BENCH_W3_ROUNDS", 11, 3);
	uint64_t ring = (uint64_t)bench_knob("BENCH_W3_RING", 1 << 20, 1 << 20);
	uint64_t bytes = (uint64_t)bench_knob("BENCH_W3_BYTES", 32 << 20, 4 << 20);
	long rcpu = getenv("BENCH_W3_CPU_READER") ? bench_knob("BENCH_W3_CPU_READER", 0, 0) : -1;
	uint64_t half = ring / NW, ck_entries;
	size_t pool_bytes;
	struct w3 *s;
	char extra[200];
	int err, warned = 0;

	s = aligned_alloc(64, (sizeof(*s) + 63) & ~(size_t)63);
	if (!s)
		bench_die("out of memory");
	memset(s, 0, sizeof(*s));
	s->ring = ring;
	s->wcpu[0] = (int)bench_knob("BENCH_CPU_WRITER", 0, 0);
	s->wcpu[1] = (int)bench_knob("BENCH_CPU_READER", 1, 1);
	s->rcpu = (int)rcpu;
	for (int i = 0; i < nr_payloads; i++)
		max_len = payloads[i] > max_len ? payloads[i] : max_len;
	if (ring & (ring - 1) || bench_rec_size(max_len) * 8 > half)
		bench_die("BENCH_W3_RING=%llu: want a power of two, room for 8 records per writer",
			  (unsigned long long)ring);

#ifndef NO_CHAN
	{
		long cpus = sysconf(_SC_NPROCESSORS_CONF);
		uint64_t per = pow2_floor(ring / (uint64_t)(cpus > 0 ? cpus : 1));

		make_chan(s, IMPL_SHARED, EVR_CHAN_SHARED, ring);
		make_chan(s, IMPL_PERCPU, EVR_CHAN_PERCPU, per);
		make_chan(s, IMPL_THREAD, EVR_CHAN_THREAD, half);
	}
#else
	{
		EVR_OPTS(evr_ring_opts, o, .data_size = ring,
			 .flags = EVR_RING_MIRROR | EVR_RING_MULTI);

		err = evr_ring_create(&o, &s->mring);
		if (!err)
			err = evr_reader_create(s->mring, NULL, &s->mrd);
		if (err)
			bench_die("evring-shared: multi ring of %llu bytes: %s",
				  (unsigned long long)ring, evr_strerror(err));
		bench_pretouch((uint8_t *)evr_ring_get_ctrl(s->mring) +
				       evr_ring_get_ctrl(s->mring)->data_offset,
			       2 * ring);
	}
#endif
	for (int i = 0; i < NW; i++) {
		err = ideal_ring_create(&s->ir[i], half);
		if (err)
			bench_die("ideal_ring_create(%llu): %s", (unsigned long long)half,
				  strerror(-err));
		bench_pretouch(s->ir[i].data, 2 * half);
	}

	/* ck/urcu pools: half the budget each; the pointer ring: more entries than both pools */
	pool_bytes = half;
	ck_entries = 2;
	while (ck_entries <= 2 * (half / bench_rec_size(8)))
		ck_entries <<= 1;
	s->ckr = aligned_alloc(64, (sizeof(*s->ckr) + 63) & ~(size_t)63);
	s->ckbuf = aligned_alloc(64, ck_entries * sizeof(*s->ckbuf));
	s->stride = (max_len + 63) & ~(size_t)63;
	s->scratch = aligned_alloc(64, s->stride);
	if (!s->ckr || !s->ckbuf || !s->scratch)
		bench_die("out of memory");
	memset(s->ckr, 0, sizeof(*s->ckr));
	ck_ring_init(s->ckr, (unsigned int)ck_entries);
	bench_pretouch(s->ckbuf, ck_entries * sizeof(*s->ckbuf));
	for (int i = 0; i < NW; i++) {
		s->w[i].id = i;
		s->w[i].s = s;
		s->w[i].src = aligned_alloc(64, NSRC * s->stride);
		s->w[i].pool = aligned_alloc(4096, pool_bytes);
		if (!s->w[i].src || !s->w[i].pool)
			bench_die("out of memory");
		bench_pretouch(s->w[i].src, NSRC * s->stride);
		bench_pretouch(s->w[i].pool, pool_bytes);
	}

	for (int round = -1; round < rounds; round++) {
		for (int pi = 0; pi < nr_payloads; pi++) {
			s->len = payloads[pi];
			s->n = bytes / bench_rec_size(s->len) / NW;
			if (!s->n)
				s->n = 1;
			for (int j = 0; j < NR_IMPLS; j++) {
				int impl = (j + round + 1) % NR_IMPLS, pinned;
				double v;

#ifdef NO_CHAN
				if (impl == IMPL_PERCPU || impl == IMPL_THREAD)
					continue;
#endif
				if (!bench_impl_wanted(impl_names[impl]))
					continue;
				s->impl = impl;
				s->slot_size = impl == IMPL_URCU
						       ? (sizeof(struct wfcq_rec) + s->len + 7) &
								 ~7ul
						       : bench_rec_size(s->len);
				s->pool_n = pool_bytes / s->slot_size;
				v = run_once(s, &pinned);
#ifndef NO_CHAN
				if (impl == IMPL_THREAD)
					settle(s);
#endif
				if (!pinned && !warned++)
					fprintf(stderr,
						"bench: W3: could not pin, running unpinned\n");
				if (round < 0)
					continue;
				snprintf(extra, sizeof(extra),
					 "ring=%llu bytes=%llu writers=%d onfull=wait-retry "
					 "missing=0 pinned=%d reader_cpu=%d%s",
					 (unsigned long long)ring, (unsigned long long)bytes, NW,
					 pinned, s->rcpu,
#ifdef NO_CHAN
					 impl == IMPL_SHARED ? " via=multi-ring" : "");
#else
					 "");
#endif
				bench_sample("W3", impl_names[impl], s->len, round, v, "Mrec/s",
					     extra);
			}
		}
	}

#ifndef NO_CHAN
	{
		struct evr_chan_stats st = { .sz = sizeof(st) };

		evr_chan_reader_get_stats(s->crd[IMPL_THREAD], &st);
		if (st.fallback_writes)
			fprintf(stderr,
				"bench: W3 evring-thread: %llu writes went to the shared "
				"fallback\n",
				(unsigned long long)st.fallback_writes);
		for (int i = IMPL_SHARED; i <= IMPL_THREAD; i++) {
			evr_chan_reader_destroy(s->crd[i]);
			evr_chan_destroy(s->ch[i]);
		}
	}
#else
	evr_reader_destroy(s->mrd);
	evr_ring_destroy(s->mring);
#endif
	for (int i = 0; i < NW; i++) {
		ideal_ring_destroy(&s->ir[i]);
		free(s->w[i].src);
		free(s->w[i].pool);
	}
	free(s->ckr);
	free(s->ckbuf);
	free(s->scratch);
	free(s);
	return 0;
}
