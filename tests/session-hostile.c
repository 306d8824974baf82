// SPDX-License-Identifier: MIT
/*
 * Neither side of a session ring trusts the other. A reader scribbling on its control fields
 * (and the writer's nest) cannot make the writer write outside its ring, hang or crash; a writer
 * scribbling on the control page and data cannot make the reader read out of bounds, loop or
 * crash: it gets -EBADMSG, counts it, and reads the good records that follow.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "evring.h"
#include "test.h"

#define VICTIM 1u /* the ring under attack; rings 0 and 2 are its neighbours */

static uint64_t rng;

static uint64_t rnd(void)
{
	return t_rand(&rng);
}

static void on_alarm(int sig)
{
	static const char msg[] = "session-hostile: timed out: a call looped or blocked\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(1);
	_exit(1);
}

struct layout {
	struct evr_session *s;
	struct evr_ring *ring[3];
	struct evr_ctrl *ctrl[3];
	uint8_t *data[3];
	uint64_t size;
	size_t page;
	uint8_t *saved[3]; /* neighbours' bytes, control page and data */
	uint8_t *dir_saved;
	uint8_t victim_ctrl[4096]; /* the victim's control page as created */
};

static void setup(struct layout *l, uint32_t ring_flags)
{
	EVR_OPTS(evr_session_opts, o, .nr_rings = 3, .data_size = 4 * 4096,
		 .ring_flags = ring_flags);

	memset(l, 0, sizeof(*l));
	l->page = (size_t)sysconf(_SC_PAGESIZE);
	assert_eq(evr_session_create(&o, &l->s), 0);
	for (uint32_t i = 0; i < 3; i++) {
		assert_eq(evr_session_get_ring(l->s, i, &l->ring[i]), 0);
		l->ctrl[i] = evr_ring_get_ctrl(l->ring[i]);
		l->data[i] = (uint8_t *)l->ctrl[i] + l->ctrl[i]->data_offset;
	}
	l->size = l->ctrl[0]->data_size;
	/* the neighbours hold a pattern the victim's writer must never touch */
	for (uint32_t i = 0; i < 3; i += 2) {
		for (uint64_t b = 0; b < l->size; b++)
			l->data[i][b] = (uint8_t)t_mix(b + i);
		l->saved[i] = malloc(l->page + l->size);
		assert_true(l->saved[i], "malloc");
		memcpy(l->saved[i], l->ctrl[i], l->page + l->size);
	}
	memcpy(l->victim_ctrl, l->ctrl[VICTIM], sizeof(l->victim_ctrl));
	/* the directory, read through the fd: the session keeps no writable view of it */
	l->dir_saved = malloc(l->page);
	assert_true(l->dir_saved, "malloc");
	assert_eq(pread(evr_session_get_fd(l->s), l->dir_saved, l->page, 0), (long long)l->page);
}

static int neighbours_intact(const struct layout *l)
{
	uint8_t buf[65536];

	for (uint32_t i = 0; i < 3; i += 2)
		if (memcmp(l->saved[i], l->ctrl[i], l->page + l->size))
			return 0;
	if (pread(evr_session_get_fd(l->s), buf, l->page, 0) != (ssize_t)l->page ||
	    memcmp(buf, l->dir_saved, l->page))
		return 0;
	return 1;
}

static void teardown(struct layout *l)
{
	free(l->saved[0]);
	free(l->saved[2]);
	free(l->dir_saved);
	evr_session_close(l->s);
}

/* A hostile value for a 64-bit position near @ref. */
static uint64_t evil_pos(uint64_t ref, uint64_t size)
{
	switch (rnd() % 8) {
	case 0:
		return rnd();
	case 1:
		return ref - size - 8 * (rnd() % 4);
	case 2:
		return ref + 8 * (rnd() % 64);
	case 3:
		return ref - 8 * (rnd() % (size / 8 + 1));
	case 4:
		return ref + 1 + rnd() % 7;
	case 5:
		return ~0ull - rnd() % 64;
	case 6:
		return ref + size + rnd() % 4096;
	default:
		return ref;
	}
}

/*
 * The control page bytes the victim's writer may change: data_head, and its own line (nest,
 * disabled, counters, wakeup words), plus writer_pid/tid. Everything else is someone else's.
 */
static int writer_stays_in_its_fields(const uint8_t *before, const uint8_t *after)
{
	const size_t head = offsetof(struct evr_ctrl, data_head);
	const size_t pid = offsetof(struct evr_ctrl, writer_pid);
	const size_t wline = offsetof(struct evr_ctrl, nest);
	const size_t wend = offsetof(struct evr_ctrl, reserved_2);

	for (size_t i = 0; i < 4096; i++) {
		if ((i >= head && i < head + 8) || (i >= pid && i < pid + 8) ||
		    (i >= wline && i < wend))
			continue;
		if (before[i] != after[i])
			return (int)i + 1;
	}
	return 0;
}

static int is_write_result(int err)
{
	return err == 0 || err == -ENOSPC || err == -EMSGSIZE || err == -EDEADLK ||
	       err == -ESHUTDOWN || err == -EINVAL;
}

/* A reader writes garbage into what it owns (and into nest); the writer must hold. */
static void hostile_reader(uint32_t ring_flags)
{
	struct layout l;
	struct evr_ctrl *c;
	struct evr_ring *r;
	uint8_t before[4096], payload[65536];
	uint64_t rounds = t_long() ? 2000000 : 100000, results[8] = { 0 };
	struct evr_reader *rd;
	struct evr_record rec;
	int bad_field = 0;

	setup(&l, ring_flags);
	c = l.ctrl[VICTIM];
	r = l.ring[VICTIM];
	memset(payload, 0xc3, sizeof(payload));
	for (uint64_t i = 0; i < rounds && !t_failures; i++) {
		uint64_t op = rnd() % 16, len = rnd() % 3 ? rnd() % 600 : rnd() % (l.size + 64);
		struct evr_slot s1, s2;
		int err = 0, off;

		switch (op) {
		case 0:
		case 1:
			c->data_tail = evil_pos(c->data_head, l.size);
			continue;
		case 2:
			c->paused = rnd() % 4 ? 0 : (uint32_t)rnd();
			continue;
		case 3:
			c->watermark = rnd() % 2 ? rnd() % (2 * l.size) : rnd();
			continue;
		case 4:
			c->reader_waiting = rnd() % 4 ? 0 : (uint32_t)rnd();
			continue;
		case 5:
			if (rnd() % 4)
				c->nest = 0;
			else
				c->nest = rnd() % 2 ? (uint32_t)(rnd() % 12) : (uint32_t)rnd();
			continue;
		case 6:
			c->disabled = rnd() % 8 ? 0 : (uint32_t)rnd();
			continue;
		case 7:
			/* a well-behaved moment: the reader caught up */
			c->data_tail = c->data_head;
			continue;
		default:
			break;
		}
		memcpy(before, c, sizeof(before));
		switch (op) {
		case 8:
		case 9:
		case 10:
			err = evr_ring_write(r, (uint32_t)rnd() % 100, payload, len);
			break;
		case 11:
			err = evr_ring_reserve(r, 5, len, &s1);
			if (!err) {
				memset(s1.data, 0x3c, s1.len);
				if (rnd() % 3)
					err = evr_ring_commit(r, &s1);
				else
					err = evr_ring_discard(r, &s1);
			}
			break;
		case 12:
			/* nested, as a signal handler would: hostile nest values in between */
			err = evr_ring_reserve(r, 5, len % 200, &s1);
			if (!err) {
				memset(s1.data, 0x11, s1.len);
				if (rnd() % 4 == 0)
					c->nest = (uint32_t)(rnd() % 10);
				if (!evr_ring_reserve(r, 6, rnd() % 100, &s2)) {
					memset(s2.data, 0x22, s2.len);
					err = evr_ring_commit(r, &s2);
					results[7] += !is_write_result(err);
				}
				err = evr_ring_commit(r, &s1);
			}
			break;
		case 13:
			err = evr_ring_flush(r);
			if (err == 1)
				err = 0;
			break;
		default:
			err = evr_ring_write(r, 9, payload, rnd() % 64);
			break;
		}
		if (!is_write_result(err)) {
			t_report(__FILE__, __LINE__, "write result", "op %" PRIu64 ": %d", op, err);
			results[7]++;
		}
		results[err == 0 ? 0 :
			err == -ENOSPC ? 1 :
			err == -EDEADLK ? 2 :
			err == -ESHUTDOWN ? 3 : 4]++;
		off = writer_stays_in_its_fields(before, (const uint8_t *)c);
		if (off && !bad_field++)
			t_report(__FILE__, __LINE__, "writer fields",
				 "the writer changed byte %d of its control page (not one of its "
				 "fields), op %" PRIu64, off - 1, op);
		if ((i & 15) == 0 && !neighbours_intact(&l)) {
			t_report(__FILE__, __LINE__, "neighbours",
				 "the writer of ring %u changed a "
				 "neighbouring ring or the directory, round %" PRIu64, VICTIM, i);
			break;
		}
	}
	expect_true(neighbours_intact(&l), "neighbours and directory untouched");
	expect_eq(results[7], 0);
	printf("%s: hostile reader, %s: writes ok %" PRIu64 ", -ENOSPC %" PRIu64 ", -EDEADLK %"
	       PRIu64 ", -ESHUTDOWN %" PRIu64 ", other %" PRIu64 "\n", t_name,
	       ring_flags ? "overwrite" : "discard", results[0], results[1], results[2],
	       results[3], results[4]);

	/* the reader behaves again (and repairs the writer fields it broke): writes work */
	c->paused = 0;
	c->watermark = 0;
	c->reader_waiting = 0;
	c->disabled = 0;
	c->nest = 0;
	c->data_tail = c->data_head;
	assert_eq(evr_reader_create(r, NULL, &rd), 0);
	{
		uint64_t v = t_mix(t_seed), got = 0;
		int n, found = 0, err;

		err = evr_ring_write(r, 77, &v, 8);
		if (err == -ENOSPC && !ring_flags) {
			/*
			 * Records the writer wrote while a hostile nest kept it from publishing
			 * may fill the ring: that refusal published them (and counted itself
			 * lost). They may span more than a ring, if the hostile tail let the
			 * writer lap itself: the reader then resynchronises (-EBADMSG, and the
			 * batch's end publishes the new tail). Once the reader has caught up,
			 * the write must go through.
			 */
			for (int k = 0; k < 1000 && (n = evr_reader_begin(rd)) != 0; k++) {
				while (n > 0 && evr_reader_next(rd, &rec) == 1)
					;
				evr_reader_end(rd);
			}
			err = evr_ring_write(r, 77, &v, 8);
		}
		expect_eq(err, 0);
		expect_true(evr_reader_begin(rd) >= 16, "recovered ring has data");
		while ((n = evr_reader_next(rd, &rec)) == 1) {
			/* backward: the newest (ours) comes first; forward: last */
			found = rec.is_app && rec.type == 77 && rec.len == 8;
			if (found)
				memcpy(&got, rec.data, 8);
			if (ring_flags && rec.is_app)
				break;
		}
		evr_reader_end(rd);
		expect_true(found && got == v, "the record written after recovery is read back");
	}
	evr_reader_destroy(rd);
	expect_true(neighbours_intact(&l), "neighbours and directory untouched");
	teardown(&l);
}

/* Every record handed out must lie inside the (mirrored) data area of its ring. */
static int in_bounds(const struct layout *l, const struct evr_record *rec)
{
	const uint8_t *lo = l->data[VICTIM], *hi = lo + 2 * l->size;
	const uint8_t *h = (const uint8_t *)rec->hdr, *d = rec->data;

	/* the payload follows the header (and a timestamp, for stamped records) */
	return h >= lo && h + 8 <= hi && d >= h + 8 && rec->len <= EVR_PAYLOAD_MAX &&
	       d + rec->len <= h + rec->hdr->size && h + rec->hdr->size <= hi;
}

/* One reader batch over whatever is there. Returns -EBADMSG count of the batch, or -1. */
static int read_any(const struct layout *l, struct evr_reader *rd, uint64_t *records)
{
	struct evr_record rec;
	uint64_t calls = 0;
	int n, bad = 0;

	n = evr_reader_begin(rd);
	if (n == -EBADMSG)
		bad++;
	else if (n < 0 || (uint64_t)n > l->size)
		return -1;
	while ((n = evr_reader_next(rd, &rec)) == 1) {
		if (!in_bounds(l, &rec)) {
			t_report(__FILE__, __LINE__, "record in bounds", "record at pos %" PRIu64
				 " len %u type %u: header at %+td, data at %+td of a %" PRIu64
				 "-byte area mapped twice (header size %u)", rec.pos, rec.len,
				 rec.type, (const uint8_t *)rec.hdr - l->data[VICTIM],
				 (const uint8_t *)rec.data - l->data[VICTIM], l->size,
				 rec.hdr->size);
			return -1;
		}
		(*records)++;
		if (++calls > l->size / 8 + 1) {
			t_report(__FILE__, __LINE__, "bounded batch", "more records than fit");
			return -1;
		}
	}
	if (n == -EBADMSG)
		bad++;
	else if (n != 0)
		return -1;
	evr_reader_end(rd);
	return bad;
}

static void garbage(struct layout *l, int whole_page)
{
	struct evr_ctrl *c = l->ctrl[VICTIM];
	uint8_t *d = l->data[VICTIM];
	uint64_t tail = c->data_tail;

	switch (rnd() % 10) {
	case 0:
	case 1:
	case 2:
		c->data_head = evil_pos(tail, l->size);
		break;
	case 3:
		c->data_tail = evil_pos(c->data_head, l->size);
		break;
	case 4:
		c->data_size = rnd();
		c->data_offset = rnd() % 3 ? rnd() : 0;
		break;
	case 5:
		/* random bytes anywhere in the control page */
		if (whole_page) {
			for (size_t i = 0; i < l->page; i += 8) {
				uint64_t v = rnd();

				memcpy((uint8_t *)c + i, &v, 8);
			}
		} else {
			uint64_t off = offsetof(struct evr_ctrl, data_head) + rnd() % 64;

			((uint8_t *)c)[off] ^= (uint8_t)rnd();
		}
		break;
	case 6:
	case 7: {
		/* a plausible but wrong header where the reader looks next */
		uint64_t pos = (tail + 8 * (rnd() % 16)) & (l->size - 1);
		struct evr_record_header h = {
			.type = (uint32_t[]){ EVR_TYPE_LOST, EVR_TYPE_PAD, EVR_TYPE_APP + 1,
					      (uint32_t)rnd() }[rnd() % 4],
			.misc = (uint16_t)(rnd() % 3 ? EVR_MISC_EVRING | (rnd() & 7) : rnd()),
			.size = (uint16_t)(rnd() % 3 ? 8 * (rnd() % 8) : rnd()),
		};

		memcpy(d + pos, &h, sizeof(h));
		if (rnd() % 2)
			c->data_head = tail + 8 * (rnd() % 32);
		break;
	}
	default:
		/* random bytes in the data */
		for (int k = 0; k < 16; k++) {
			uint64_t v = rnd();

			memcpy(d + 8 * (rnd() % (l->size / 8)), &v, 8);
		}
		break;
	}
}

static uint64_t good_seq;

static int good_write(struct evr_ring *r)
{
	uint64_t v[4] = { good_seq, t_mix(good_seq), ~good_seq, t_mix(~good_seq) };
	int err = evr_ring_write(r, 42, v, 8 + 8 * (good_seq % 4));

	if (!err)
		good_seq++;
	return err;
}

static int good_rec(const struct evr_record *rec, uint64_t seq)
{
	uint64_t v[4] = { seq, t_mix(seq), ~seq, t_mix(~seq) };

	return rec->is_app && rec->type == 42 && rec->len == 8 + 8 * (seq % 4) &&
	       !memcmp(rec->data, v, rec->len);
}

/* A writer writes garbage into the control page and the data; the reader must hold. */
static void hostile_writer(uint32_t ring_flags)
{
	struct layout l;
	uint64_t rounds = t_long() ? 20000 : 1000, records = 0, bad = 0, recovered = 0;
	struct evr_reader *rd;
	struct evr_reader_stats st = { .sz = sizeof(st) };
	int fd;

	setup(&l, ring_flags);
	fd = evr_session_get_fd(l.s);
	good_seq = 0;
	for (uint64_t round = 0; round < rounds && !t_failures; round++) {
		EVR_OPTS(evr_reader_opts, ro, .flags = round % 2 ? EVR_READ_OLDEST_FIRST : 0);
		int whole = round % 4 == 0, k;
		struct evr_session *ws;
		struct evr_ring *w;

		if (!ring_flags)
			ro.flags = 0;
		/*
		 * The next good writer maps the session now, while it is intact (open checks
		 * the control pages); it takes the ring over only after the garbage.
		 */
		assert_eq(evr_session_open_fd(fd, EVR_SESSION_WRITER, &ws), 0);
		/* a fresh reader per round: it starts from whatever data_tail the garbage says */
		assert_eq(evr_reader_create(l.ring[VICTIM], &ro, &rd), 0);
		for (k = 0; k < 20; k++) {
			int n;

			garbage(&l, whole);
			n = read_any(&l, rd, &records);
			if (n < 0)
				break;
			bad += (uint64_t)n;
			if (!ring_flags) {
				n = evr_reader_wait(rd, 0);
				if (n < 0 && n != -EBADMSG) {
					t_report(__FILE__, __LINE__, "wait", "evr_reader_wait: %d",
						 n);
					break;
				}
			}
		}
		if (k < 20) {
			t_report(__FILE__, __LINE__, "garbage round", "round %" PRIu64, round);
			break;
		}
		expect_true(neighbours_intact(&l), "garbage stayed in the victim ring");

		/*
		 * The hostile writer is gone; a good one takes the ring over from data_head. The
		 * reader drains one batch (resynchronising), restores its own fields, and must
		 * then read exactly the good records. A dead writer's "disabled" survives a
		 * take-over, so it is cleared here as the new writer's operator would.
		 */
		l.ctrl[VICTIM]->disabled = 0;
		l.ctrl[VICTIM]->paused = 0;
		l.ctrl[VICTIM]->watermark = 0;
		l.ctrl[VICTIM]->reader_waiting = 0;
		assert_eq(evr_session_get_ring(ws, VICTIM, &w), 0);
		if (read_any(&l, rd, &records) < 0)
			break;
		if (!ring_flags) {
			uint64_t first = good_seq, next = good_seq;
			struct evr_record rec;
			int n;

			for (int j = 0; j < 100; j++)
				expect_eq(good_write(w), 0);
			expect_true(evr_reader_begin(rd) > 0, "good records after the garbage");
			while ((n = evr_reader_next(rd, &rec)) == 1)
				if (good_rec(&rec, next))
					next++;
				else
					break;
			evr_reader_end(rd);
			expect_eq(n, 0);
			if (next != first + 100)
				t_report(__FILE__, __LINE__, "recovery", "round %" PRIu64 ": read %"
					 PRIu64 " of 100 good records", round, next - first);
			else
				recovered++;
		} else {
			uint64_t want, n = 0, visible;
			struct evr_record rec;
			struct evr_reader *snap;
			int torn = 0;

			for (int j = 0; j < 40; j++)
				expect_eq(good_write(w), 0);
			want = good_seq - 1;
			/*
			 * A backward reader shows -data_head bytes (what was ever written, as
			 * positions start at 0 and go down): a writer that took over at a
			 * hostile head may have fewer of its records in view. Records of at
			 * most 40 bytes: all 40 are in view once 1600 bytes are.
			 */
			visible = 0 - l.ctrl[VICTIM]->data_head;
			assert_eq(evr_reader_create(l.ring[VICTIM], NULL, &snap), 0);
			expect_true(evr_reader_begin(snap) >= 0, "snapshot");
			while (n < 40 && evr_reader_next(snap, &rec) == 1) {
				if (!good_rec(&rec, want)) {
					torn = 1;
					break;
				}
				want--;
				n++;
			}
			evr_reader_end(snap);
			evr_reader_destroy(snap);
			if (torn || (visible >= 1600 && n != 40))
				t_report(__FILE__, __LINE__, "recovery",
					 "round %" PRIu64 ": snapshot holds %" PRIu64
					 " of the 40 newest good records%s", round, n,
					 torn ? ", then something else" : "");
			else
				recovered++;
		}
		evr_session_close(ws);
		/* put the creator's fields back, or the next writer could not even map it */
		memcpy((uint8_t *)l.ctrl[VICTIM] + offsetof(struct evr_ctrl, data_offset),
		       l.victim_ctrl + offsetof(struct evr_ctrl, data_offset),
		       offsetof(struct evr_ctrl, paused) - offsetof(struct evr_ctrl, data_offset));
		evr_reader_get_stats(rd, &st);
		evr_reader_destroy(rd);
	}
	printf("%s: hostile writer, %s: %" PRIu64 " rounds recovered, %" PRIu64
	       " records of garbage handed out, %" PRIu64 " -EBADMSG\n", t_name,
	       ring_flags ? "overwrite" : "discard", recovered, records, bad);
	expect_eq(recovered, rounds);
	expect_true(bad > 0, "the garbage was noticed");
	teardown(&l);
}

int main(void)
{
	t_init("session-hostile");
	rng = t_seed;
	signal(SIGALRM, on_alarm);
	alarm(t_long() ? 1500 : 100);
	hostile_reader(0);
	hostile_reader(EVR_RING_OVERWRITE);
	hostile_writer(0);
	hostile_writer(EVR_RING_OVERWRITE);
	return t_done();
}
