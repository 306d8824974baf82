// SPDX-License-Identifier: MIT
/*
 * The flight ring, single-threaded: records come back whole and in order through page swaps;
 * overwrite mode pushes the oldest pages out and says exactly how many entries went; produce/
 * consume mode refuses writes when full and counts them; a record that does not fit pads the
 * page; the size limits and bad arguments; snapshots and post-mortem recovery of the same data;
 * nested reservations; a session reopened by fd sees the same ring.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "evring.h"
#include "evring/abi.h"
#include "test.h"

struct got {
	uint64_t n, lost, overwritten, refused, next, bad;
	uint32_t last_len;
};

static void fill(uint8_t *b, uint32_t len, uint64_t seq)
{
	for (uint32_t i = 0; i < len; i++)
		b[i] = (uint8_t)(seq * 131 + i);
}

/* Records carry their sequence in the first 8 bytes and a pattern after. */
static int check_rec(const struct evr_record *rec, struct got *g)
{
	uint8_t want[4096];
	uint64_t seq;

	if (!rec->is_app) {
		struct evr_lost_body b;

		expect_eq(rec->type, EVR_TYPE_LOST);
		memcpy(&b, rec->data, sizeof(b));
		g->lost += b.lost;
		if (b.causes & EVR_LOST_OVERWRITTEN)
			g->overwritten += b.lost;
		else
			g->refused += b.lost;
		return 0;
	}
	expect_true(rec->len >= 8 && rec->len <= sizeof(want), "len %u", rec->len);
	memcpy(&seq, rec->data, 8);
	fill(want, rec->len, seq);
	memcpy(want, &seq, 8);
	if (memcmp(want, rec->data, rec->len)) {
		g->bad++;
		return 0;
	}
	expect_true(seq >= g->next, "seq %" PRIu64 " after %" PRIu64, seq, g->next);
	g->next = seq + 1;
	g->n++;
	g->last_len = rec->len;
	return 0;
}

static int put(struct evr_flight *f, uint64_t seq, uint32_t len)
{
	uint8_t b[4096];

	fill(b, len, seq);
	memcpy(b, &seq, 8);
	return evr_flight_write(f, 7, b, len);
}

static uint32_t len_of(uint64_t seq)
{
	return 8 + (uint32_t)((seq * 2654435761u) % 300);
}

static int cb(const struct evr_record *rec, void *arg)
{
	return check_rec(rec, arg);
}

static struct evr_session *make(uint32_t flags, uint32_t psize, uint64_t data_size)
{
	EVR_OPTS(evr_session_opts, o, .nr_rings = 1, .ring_flags = flags, .data_size = data_size,
		 .flight_page_size = psize);
	struct evr_session *s = NULL;

	assert_eq(evr_session_create(&o, &s), 0);
	return s;
}

static void drain(struct evr_flight *f, struct got *g)
{
	struct evr_record rec;
	int k;

	while ((k = evr_flight_read(f, &rec)) == 1)
		check_rec(&rec, g);
	expect_eq(k, 0);
}

static void test_stream(void)
{
	struct evr_session *s = make(EVR_RING_FLIGHT, 1024, 8192);
	struct evr_flight *f;
	struct got g = { 0 };
	uint64_t seq = 0;

	assert_eq(evr_session_get_flight(s, 0, &f), 0);
	/* write and read interleaved, many times round the ring */
	for (int round = 0; round < 200; round++) {
		for (int i = 0; i < 9; i++, seq++)
			assert_eq(put(f, seq, len_of(seq)), 0);
		drain(f, &g);
		expect_eq(g.n, seq);
	}
	expect_eq(g.lost, 0);
	expect_eq(g.bad, 0);
	evr_session_destroy(s);
}

static void test_modes(int overwrite)
{
	struct evr_session *s =
		make(EVR_RING_FLIGHT | (overwrite ? EVR_RING_OVERWRITE : 0), 512, 4096);
	struct evr_flight_stats st = { .sz = sizeof(st) };
	struct evr_flight *f;
	struct got g = { 0 }, snap = { 0 };
	uint64_t written = 0, refused = 0, n = 2000;
	int err;

	assert_eq(evr_session_get_flight(s, 0, &f), 0);
	for (uint64_t seq = 0; seq < n; seq++) {
		err = put(f, seq, 40);
		if (err == -ENOSPC)
			refused++;
		else if (err == 0)
			written++;
		else
			expect_eq(err, 0);
	}
	if (overwrite) {
		expect_eq(refused, 0);
	} else {
		expect_true(refused > 0, "a full ring refused nothing");
	}
	/* a snapshot first (non-consuming), then the consuming read: the same newest records */
	err = evr_flight_snapshot(f, cb, &snap, &st);
	expect_true(err > 0, "snapshot %d", err);
	expect_eq(snap.bad, 0);
	expect_eq(st.written, written);
	drain(f, &g);
	expect_eq(g.bad, 0);
	expect_eq(g.n + g.lost, n);
	expect_eq(g.n, snap.n);
	expect_eq(g.next, snap.next);
	assert_eq(evr_flight_get_stats(f, &st), 0);
	if (overwrite) {
		expect_eq(g.overwritten, st.overwritten);
		expect_eq(st.overwritten + g.n, n);
		expect_eq(g.next, n); /* the newest survive */
	} else {
		expect_eq(g.refused, refused);
		expect_eq(st.lost, refused);
		expect_eq(g.n, written);
	}
	/* the ring is empty now: a snapshot finds nothing */
	memset(&snap, 0, sizeof(snap));
	err = evr_flight_snapshot(f, cb, &snap, NULL);
	expect_eq(err, 0);
	evr_session_destroy(s);
}

static void test_limits(void)
{
	struct evr_session *s = make(EVR_RING_FLIGHT, 256, 1024);
	struct evr_flight *f;
	struct evr_slot sl, sl2;
	uint8_t b[256] = { 0 };
	struct got g = { 0 };

	assert_eq(evr_session_get_flight(s, 0, &f), 0);
	/* a page is 256 bytes: 32 of header, so 224 bytes of record, 216 of payload */
	expect_eq(evr_flight_write(f, 1, b, 216), 0);
	expect_eq(evr_flight_write(f, 1, b, 217), -EMSGSIZE);
	expect_eq(evr_flight_write(f, EVR_APP_ID_MAX + 1, b, 8), -EINVAL);
	expect_eq(evr_flight_write(NULL, 1, b, 8), -EINVAL);
	expect_eq(evr_flight_write(f, 1, NULL, 8), -EINVAL);
	expect_eq(evr_flight_read(NULL, NULL), -EINVAL);
	/* nested reservations commit in stack order */
	assert_eq(evr_flight_reserve(f, 1, 8, &sl), 0);
	memset(sl.data, 1, 8);
	assert_eq(evr_flight_reserve(f, 2, 16, &sl2), 0);
	memset(sl2.data, 2, 16);
	expect_eq(evr_flight_commit(f, &sl), -EINVAL);
	expect_eq(evr_flight_commit(f, &sl2), 0);
	expect_eq(evr_flight_commit(f, &sl), 0);
	{
		struct evr_record rec;
		int k, seen = 0;

		while ((k = evr_flight_read(f, &rec)) == 1) {
			if (!rec.is_app)
				continue;
			seen++;
			if (seen == 3) {
				expect_eq(rec.type, 2); /* the inner reservation was made second */
				expect_eq(rec.len, 16);
			}
		}
		expect_eq(seen, 3);
	}
	(void)g;
	evr_session_destroy(s);
}

static void test_stamp_and_recover(void)
{
	struct evr_session *s = make(EVR_RING_FLIGHT | EVR_RING_OVERWRITE | EVR_RING_STAMP, 1024,
				     16384);
	struct evr_flight_stats st = { .sz = sizeof(st) }, st2 = { .sz = sizeof(st2) };
	struct evr_flight *f;
	struct got g = { 0 }, snap = { 0 };
	uint64_t t0 = evr_clock_now(), n = 5000;
	void *img;
	off_t size;
	int fd, k;

	assert_eq(evr_session_get_flight(s, 0, &f), 0);
	for (uint64_t seq = 0; seq < n; seq++)
		assert_eq(put(f, seq, len_of(seq)), 0);
	/* post-mortem over a read-only mapping of the whole object */
	fd = evr_session_get_fd(s);
	size = lseek(fd, 0, SEEK_END);
	img = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(img != MAP_FAILED, "mmap");
	k = evr_flight_recover(img, (size_t)size, cb, &g, &st);
	expect_true(k > 0, "recover %d", k);
	expect_eq(g.bad, 0);
	expect_eq(g.next, n);
	expect_eq(st.rings, 1);
	expect_eq(st.written, n);
	/* every record is either recovered or counted overwritten */
	expect_eq(g.n + st.overwritten, n);
	expect_eq(st.missed, st.overwritten);
	k = evr_flight_snapshot(f, cb, &snap, &st2);
	expect_eq(snap.n, g.n);
	{
		struct evr_record rec;
		int any = 0;

		while (evr_flight_read(f, &rec) == 1) {
			if (!rec.is_app)
				continue;
			expect_true(rec.has_time && rec.time >= t0 && rec.time <= evr_clock_now(),
				    "time %" PRIu64, rec.time);
			any = 1;
		}
		expect_true(any, "no records after the snapshot");
	}
	/* a truncated or shifted image is refused, never read out of bounds */
	expect_eq(evr_flight_recover(img, (size_t)size - 4096, cb, &g, NULL), -EBADMSG);
	expect_eq(evr_flight_recover((uint8_t *)img + 1, 100, cb, &g, NULL), -EINVAL);
	munmap(img, (size_t)size);
	evr_session_destroy(s);
}

static void test_reopen(void)
{
	struct evr_session *s = make(EVR_RING_FLIGHT, 4096, 16384), *r = NULL;
	struct evr_flight *fw, *fr;
	struct evr_ring *ring;
	struct got g = { 0 };

	assert_eq(evr_session_get_flight(s, 0, &fw), 0);
	expect_eq(evr_session_get_ring(s, 0, &ring), -EPROTO);
	for (uint64_t seq = 0; seq < 60; seq++)
		assert_eq(put(fw, seq, len_of(seq)), 0);
	assert_eq(evr_session_open_fd(evr_session_get_fd(s), EVR_SESSION_READER, &r), 0);
	assert_eq(evr_session_get_flight(r, 0, &fr), 0);
	expect_eq(put(fr, 0, 8), -EPERM);
	drain(fr, &g);
	expect_eq(g.n, 60);
	evr_session_close(r);
	evr_session_destroy(s);
}

/* Map the whole session behind @fd read-write (*@m, *@len) and return its ring 0's flight
 * control block, as a peer process would see it. */
static struct evr_flight_ctrl *map_ring0(int fd, void **m, size_t *len)
{
	struct evr_session_hdr *h;

	*m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(*m != MAP_FAILED, "map the session header");
	*len = ((struct evr_session_hdr *)*m)->size;
	munmap(*m, 4096);
	*m = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(*m != MAP_FAILED, "map the session");
	h = *m;
	return (void *)((uint8_t *)*m + h->entries[0].offset + EVR_FLIGHT_CTRL_OFFSET);
}

/* Count the links of the ring's pages (the reader's own page left out) that carry @flag. */
static int count_flag(const struct evr_flight_ctrl *fc, int flag)
{
	const struct evr_flight_desc *d =
		(const void *)((const uint8_t *)fc - EVR_FLIGHT_CTRL_OFFSET + fc->desc_offset);
	int n = 0;

	for (uint32_t i = 0; i < fc->nr_pages; i++)
		n += i != fc->reader_page && (int)(d[i].link & EVR_FL_MASK) == flag;
	return n;
}

/*
 * A writer that dies inside a push leaves its level in the push count (fc->pushing, F6) and,
 * if it died between its HEAD->UPDATE and its UPDATE->NORMAL (@update), the UPDATE on a link:
 * nobody finishes that push. The reader swaps only while no push is in flight, so it takes no
 * page until a writer that binds to the ring finishes the push and clears the dead level
 * (finish_dead_push(), evr__flight_bind()); then there is one HEAD, no UPDATE, and the reader
 * reads what the new writer writes.
 */
static void test_dead_pusher(int update)
{
	struct evr_session *s = make(EVR_RING_FLIGHT | EVR_RING_OVERWRITE, 512, 4096);
	struct evr_session *w2 = NULL, *r = NULL;
	struct evr_flight *fw, *fw2, *fr;
	struct evr_flight_desc *d;
	struct evr_flight_ctrl *fc;
	struct got g = { 0 };
	int fd = evr_session_get_fd(s), marked = 0;
	uint64_t seq = 0;
	size_t len;
	void *m;

	assert_eq(evr_session_get_flight(s, 0, &fw), 0);
	for (; seq < 200; seq++)
		assert_eq(put(fw, seq, 40), 0); /* several laps of 8 pages: pushes */
	fc = map_ring0(fd, &m, &len);
	d = (void *)((uint8_t *)fc - EVR_FLIGHT_CTRL_OFFSET + fc->desc_offset);
	expect_eq(fc->pushing & 0xff, 0);
	expect_true(fc->pushing >> 8 > 0, "the writer counted its pushes");
	expect_eq(count_flag(fc, EVR_FL_HEAD), 1);
	/* the writer dies inside a push: its level counted, maybe after its HEAD->UPDATE */
	fc->pushing += 1;
	for (uint32_t i = 0; update && i < fc->nr_pages && !marked; i++) {
		if (i != fc->reader_page && (d[i].link & EVR_FL_MASK) == EVR_FL_HEAD) {
			d[i].link = (d[i].link & ~EVR_FL_MASK) | EVR_FL_UPDATE;
			marked = 1;
		}
	}
	expect_true(marked == update, "found the HEAD link");

	assert_eq(evr_session_open_fd(fd, EVR_SESSION_READER, &r), 0);
	assert_eq(evr_session_get_flight(r, 0, &fr), 0);
	drain(fr, &g);
	expect_eq(g.n, 0); /* a push in flight: no swap */

	assert_eq(evr_session_open_fd(fd, EVR_SESSION_WRITER, &w2), 0);
	assert_eq(evr_session_get_flight(w2, 0, &fw2), 0);
	expect_eq(fc->pushing & 0xff, 0);
	expect_eq(count_flag(fc, EVR_FL_UPDATE), 0);
	expect_eq(count_flag(fc, EVR_FL_HEAD), 1);
	for (; seq < 400; seq++)
		assert_eq(put(fw2, seq, 40), 0);
	expect_eq(count_flag(fc, EVR_FL_UPDATE), 0);
	drain(fr, &g);
	expect_true(g.n > 0, "the reader takes pages again once a new writer took over");
	expect_eq(g.bad, 0);
	munmap(m, len);
	evr_session_close(w2);
	evr_session_close(r);
	evr_session_destroy(s);
}

static void test_bad_opts(void)
{
	struct evr_session *s = NULL;

	{
		EVR_OPTS(evr_session_opts, o, .nr_rings = 1, .ring_flags = EVR_RING_FLIGHT,
			 .data_size = 4096, .flight_page_size = 3000);
		expect_eq(evr_session_create(&o, &s), -EINVAL);
	}
	{
		EVR_OPTS(evr_session_opts, o, .nr_rings = 1, .ring_flags = EVR_RING_FLIGHT,
			 .data_size = 4096, .flight_page_size = 4096); /* one page: too few */
		expect_eq(evr_session_create(&o, &s), -EINVAL);
	}
	{
		EVR_OPTS(evr_session_opts, o, .nr_rings = 1,
			 .ring_flags = EVR_RING_FLIGHT | EVR_RING_MULTI, .data_size = 16384);
		expect_eq(evr_session_create(&o, &s), -EINVAL);
	}
	{
		EVR_OPTS(evr_session_opts, o, .nr_rings = 1, .ring_flags = EVR_RING_STAMP,
			 .data_size = 16384);
		expect_eq(evr_session_create(&o, &s), -EINVAL);
	}
}

int main(void)
{
	t_init("flight-basic");
	test_stream();
	test_modes(0);
	test_modes(1);
	test_limits();
	test_stamp_and_recover();
	test_reopen();
	test_dead_pusher(0);
	test_dead_pusher(1);
	test_bad_opts();
	return t_done();
}
