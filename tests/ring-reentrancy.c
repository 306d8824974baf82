// SPDX-License-Identifier: MIT
/*
 * Writers re-entered by signal handlers (jemalloc-style reentrancy reruns): a write/read sequence
 * run normally and again from inside a SIGUSR1 handler; then two nested levels (SIGUSR1 holding a
 * reservation raises SIGUSR2, which writes): every record arrives in reservation order, nested
 * records sit after the reservation they interrupted, and only the outermost commit publishes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "evring.h"
#include "test.h"

/*
 * ThreadSanitizer defers a signal raised inside a handler until that handler returns, so there
 * the second level is entered by calling its handler: the same nesting as far as the ring can
 * tell (it never looks at signals, only at its nest count).
 */
#if defined(__SANITIZE_THREAD__)
#define NESTED_BY_CALL 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define NESTED_BY_CALL 1
#endif
#endif

static uint8_t pool[1 << 16];

static uint32_t rec_size(size_t len)
{
	return (uint32_t)((len + sizeof(struct evr_record_header) + 7) & ~(size_t)7);
}

static const uint8_t *payload(uint32_t id)
{
	return pool + (t_mix(t_seed ^ id) % (sizeof(pool) / 2));
}

static uint64_t data_head(struct evr_ring *r)
{
	return __atomic_load_n(&evr_ring_get_ctrl(r)->data_head, __ATOMIC_ACQUIRE);
}

static uint32_t nest(struct evr_ring *r)
{
	return __atomic_load_n(&evr_ring_get_ctrl(r)->nest, __ATOMIC_RELAXED);
}

/* ---- the rerun: one write/read sequence, from main and from a handler ------------------------ */

static struct evr_ring *g_ring;
static struct evr_reader *g_rd;
static volatile sig_atomic_t g_ran;
static uint32_t g_base;

/* Write 20 records (both APIs, odd and empty lengths), read them back exactly. */
static void sequence(struct evr_ring *r, struct evr_reader *rd, uint32_t base, const char *where)
{
	struct evr_record rec;
	uint32_t i;
	int got;

	for (i = 0; i < 20; i++) {
		uint32_t id = base + i, len = (id * 7) % 61;

		if (i & 1) {
			struct evr_slot s;

			assert_true(evr_ring_reserve(r, id, len, &s) == 0, "%s: reserve %u", where,
				    i);
			memcpy(s.data, payload(id), len);
			assert_true(evr_ring_commit(r, &s) == 0, "%s: commit %u", where, i);
		} else {
			assert_true(evr_ring_write(r, id, payload(id), len) == 0, "%s: write %u",
				    where, i);
		}
	}
	expect_eq(nest(r), 0);
	assert_true(evr_reader_begin(rd) >= 0, "%s: begin", where);
	for (i = 0; i < 20; i++) {
		uint32_t id = base + i, len = (id * 7) % 61;

		got = evr_reader_next(rd, &rec);
		if (got != 1) {
			expect_true(0, "%s: record %u missing: %d", where, i, got);
			break;
		}
		expect_true(rec.is_app && rec.type == id && rec.len == len &&
				    !memcmp(rec.data, payload(id), len),
			    "%s: record %u: id %u len %u, want id %u len %u", where, i, rec.type,
			    rec.len, id, len);
	}
	expect_true(evr_reader_next(rd, &rec) == 0, "%s: extra record", where);
	evr_reader_end(rd);
}

static void on_usr1_rerun(int sig)
{
	int saved = errno;

	sequence(g_ring, g_rd, g_base, "in SIGUSR1");
	g_ran++;
	errno = saved;
}

static void rerun(uint64_t size, uint32_t flags, const char *name)
{
	EVR_OPTS(evr_ring_opts, o, .data_size = size, .flags = flags);
	struct sigaction sa = {.sa_handler = on_usr1_rerun};

	assert_eq(evr_ring_create(&o, &g_ring), 0);
	assert_eq(evr_reader_create(g_ring, NULL, &g_rd), 0);
	sigemptyset(&sa.sa_mask);
	assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	/* alternate: from main, then from the handler; the ring wraps many times on the way */
	for (uint32_t round = 0; round < 100 && !t_failures; round++) {
		g_base = 1000 * round;
		if (round & 1) {
			g_ran = 0;
			raise(SIGUSR1);
			expect_true(g_ran == 1, "%s: the handler did not run in raise()", name);
		} else {
			sequence(g_ring, g_rd, g_base, name);
		}
	}
	signal(SIGUSR1, SIG_DFL);
	evr_reader_destroy(g_rd);
	evr_ring_destroy(g_ring);
}

/* ---- two nested levels --------------------------------------------------------------------- */

enum { M0, M1, H1A, H1B, H1C, H2A, H2B, H1D, M2, NREC };

/* Reservation order is ring order; ids are the enum values + 1, lengths fixed and odd. */
static const uint32_t lens[NREC] = {5, 13, 0, 7, 20, 1, 9, 3, 16};

static struct {
	struct evr_ring *r;
	uint64_t h0; /* data_head while M1 is open */
	volatile sig_atomic_t h1_ran, h2_ran;
	int overwrite;
} n;

static void put(struct evr_ring *r, int k)
{
	expect_true(evr_ring_write(r, (uint32_t)k + 1, payload((uint32_t)k + 1), lens[k]) == 0,
		    "write %d", k);
}

static void on_usr2(int sig)
{
	int saved = errno;

	expect_eq(nest(n.r), 2); /* main's M1 and the SIGUSR1 handler's H1C are open */
	put(n.r, H2A);
	expect_eq(data_head(n.r), n.h0);
	put(n.r, H2B);
	expect_eq(data_head(n.r), n.h0);
	expect_eq(nest(n.r), 2);
	n.h2_ran = 1;
	errno = saved;
}

static void on_usr1(int sig)
{
	int saved = errno;
	struct evr_slot s;

	expect_eq(nest(n.r), 1);
	expect_eq(data_head(n.r), n.h0);
	put(n.r, H1A);
	put(n.r, H1B);
	expect_eq(data_head(n.r), n.h0); /* nested: not published */
	if (evr_ring_reserve(n.r, H1C + 1, lens[H1C], &s) == 0) {
		/* half now, half after the nested handler: its bounce buffer must survive it */
		memcpy(s.data, payload(H1C + 1), lens[H1C] / 2);
#ifdef NESTED_BY_CALL
		on_usr2(SIGUSR2);
#else
		raise(SIGUSR2);
#endif
		expect_true(n.h2_ran, "SIGUSR2 did not run inside the SIGUSR1 handler");
		memcpy((uint8_t *)s.data + lens[H1C] / 2, payload(H1C + 1) + lens[H1C] / 2,
		       lens[H1C] - lens[H1C] / 2);
		expect_eq(evr_ring_commit(n.r, &s), 0);
	} else {
		expect_true(0, "reserve in SIGUSR1");
	}
	expect_eq(data_head(n.r), n.h0);
	put(n.r, H1D);
	expect_eq(data_head(n.r), n.h0);
	n.h1_ran = 1;
	errno = saved;
}

/* One nested round with the writer at ring offset @off. */
static void nested_round(struct evr_ring *r, struct evr_reader *rd, uint64_t off, uint64_t size,
			 const char *name)
{
	uint64_t pos[NREC], total = 0, mask = size - 1, h;
	struct evr_record rec;
	struct evr_slot s;
	int got;

	/* move the writer to @off: a filler record (and read it, forward) */
	h = data_head(r);
	{
		uint64_t d = n.overwrite ? (h - off) & mask : (off - h) & mask;

		while (d) {
			uint64_t chunk = d > size / 2 ? size / 2 : d;

			assert_true(evr_ring_write(r, 999, pool, chunk - 8) == 0, "filler");
			d -= chunk;
		}
		if (!n.overwrite) {
			evr_reader_begin(rd);
			while (evr_reader_next(rd, &rec) == 1)
				expect_true(rec.type == 999, "%s: filler", name);
			evr_reader_end(rd);
		}
	}
	h = data_head(r);
	expect_true((h & mask) == off, "%s: at %#" PRIx64 ", want offset %#" PRIx64, name, h, off);
	for (int k = 0; k < NREC; k++) {
		uint32_t sz = rec_size(lens[k]);

		pos[k] = n.overwrite ? h - total - sz : h + total;
		total += sz;
	}

	n.r = r;
	n.h1_ran = n.h2_ran = 0;
	put(r, M0);
	n.h0 = data_head(r);
	expect_eq(n.h0, n.overwrite ? pos[M0] : pos[M0] + rec_size(lens[M0]));
	assert_true(evr_ring_reserve(r, M1 + 1, lens[M1], &s) == 0, "%s: reserve M1", name);
	memcpy(s.data, payload(M1 + 1), 4);
	raise(SIGUSR1);
	expect_true(n.h1_ran, "%s: SIGUSR1 did not run in raise()", name);
	expect_eq(data_head(r), n.h0); /* M1 still open: nothing of the handlers is visible */
	expect_eq(nest(r), 1);
	memcpy((uint8_t *)s.data + 4, payload(M1 + 1) + 4, lens[M1] - 4);
	expect_eq(evr_ring_commit(r, &s), 0);
	/* the outermost commit publishes everything at once */
	expect_eq(data_head(r), n.overwrite ? pos[H1D] : pos[H1D] + rec_size(lens[H1D]));
	expect_eq(nest(r), 0);
	put(r, M2);

	/* forward: in reservation order; backward (newest first): the reverse */
	assert_true(evr_reader_begin(rd) >= 0, "%s: begin", name);
	for (int i = 0; i < NREC; i++) {
		int k = n.overwrite ? NREC - 1 - i : i;

		got = evr_reader_next(rd, &rec);
		if (got != 1) {
			expect_true(0, "%s: record %d missing: %d", name, k, got);
			break;
		}
		expect_true(rec.is_app && rec.type == (uint32_t)k + 1 && rec.len == lens[k] &&
				    rec.pos == pos[k],
			    "%s at %#" PRIx64 ": record %d is id %u len %u pos %#" PRIx64
			    ", want id %d len %u pos %#" PRIx64,
			    name, off, k, rec.type, rec.len, rec.pos, k + 1, lens[k], pos[k]);
		if (rec.len == lens[k])
			expect_true(!memcmp(rec.data, payload((uint32_t)k + 1), lens[k]),
				    "%s: payload of record %d", name, k);
	}
	if (!n.overwrite)
		expect_true(evr_reader_next(rd, &rec) == 0, "%s: extra record", name);
	evr_reader_end(rd);
}

static void nested(uint64_t size, uint32_t flags, const char *name)
{
	EVR_OPTS(evr_ring_opts, o, .data_size = size, .flags = flags);
	struct sigaction s1 = {.sa_handler = on_usr1}, s2 = {.sa_handler = on_usr2};
	struct evr_ring *r;
	struct evr_reader *rd;

	n.overwrite = !!(flags & EVR_RING_OVERWRITE);
	sigemptyset(&s1.sa_mask);
	sigemptyset(&s2.sa_mask);
	assert_eq(sigaction(SIGUSR1, &s1, NULL), 0);
	assert_eq(sigaction(SIGUSR2, &s2, NULL), 0);
	assert_eq(evr_ring_create(&o, &r), 0);
	assert_eq(evr_reader_create(r, NULL, &rd), 0);
	/* every start offset: each of the records straddles the end of the ring at some point */
	for (uint64_t off = 0; off < size && !t_failures; off += 8)
		nested_round(r, rd, off, size, name);
	signal(SIGUSR1, SIG_DFL);
	signal(SIGUSR2, SIG_DFL);
	evr_reader_destroy(rd);
	evr_ring_destroy(r);
}

int main(void)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), st;

	t_init("ring-reentrancy");
	st = t_seed;
	for (size_t i = 0; i < sizeof(pool); i += 8) {
		uint64_t v = t_rand(&st);

		memcpy(pool + i, &v, 8);
	}
	rerun(1024, 0, "rerun plain");
	rerun(page, EVR_RING_MIRROR, "rerun mirror");
	nested(256, 0, "nested plain forward");
	nested(page, EVR_RING_MIRROR, "nested mirror forward");
	nested(256, EVR_RING_OVERWRITE, "nested plain backward");
	nested(page, EVR_RING_MIRROR | EVR_RING_OVERWRITE, "nested mirror backward");
	return t_done();
}
