// SPDX-License-Identifier: MIT
/*
 * A handler at every instruction of a write: the writer is single-stepped with the x86 trap
 * flag, and in run k the SIGTRAP handler writes a record of its own at the k-th instruction,
 * for every k from the call of evr_ring_write() until it has returned. Each run must deliver
 * both records byte for byte, lose nothing and publish them all.
 *
 * The write is set up to take the fast path's rarest branch: the writer's cached tail is stale
 * (the reader has emptied the ring since), so after its xadd the fast path finds no room per
 * the cache and gives the bytes back; a handler that lands between that xadd and the give-back
 * re-reads the tail, finds room and reserves after those bytes, and the fast path must then
 * turn them into padding (fast_give_back() in src/ring.c, models/reserve.pml). The test
 * requires that some run did: its published bytes include the padding.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#include "evring.h"
#include "test.h"

#define RING 4096
#define FILL 56 /* payload of the records that fill the ring: 64 bytes each */
#define NFILL 63 /* 4032 bytes: 64 left per the cached tail */
#define OUTER 120 /* the stepped write: a 128-byte record, more than the cached room */
#define INNER 8 /* the handler's record: 16 bytes */
#define MAX_K 20000

#if defined(__x86_64__) && !defined(T_TSAN)
static struct evr_ring *ring;
static uint8_t outer_buf[OUTER], inner_buf[INNER];
static volatile sig_atomic_t done, wrote, every;
static volatile int k_left, inner_err, tries, not_refused;

static void on_trap(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	int err;

	if (done || (wrote && !every)) {
		uc->uc_mcontext.gregs[REG_EFL] &= ~0x100ll;
		return;
	}
	if (--k_left > 0)
		return;
	err = evr_ring_write(ring, 2, inner_buf, INNER);
	if (!wrote)
		inner_err = err;
	wrote = 1;
	tries++;
	if (err != -ENOSPC)
		not_refused++;
	if (!every)
		uc->uc_mcontext.gregs[REG_EFL] &= ~0x100ll;
}

static void on_arm(int sig, siginfo_t *si, void *ucv)
{
	((ucontext_t *)ucv)->uc_mcontext.gregs[REG_EFL] |= 0x100; /* TF from the return on */
}

static void handle(int sig, void (*fn)(int, siginfo_t *, void *))
{
	struct sigaction sa = { 0 };

	sa.sa_sigaction = fn;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	assert_eq(sigaction(sig, &sa, NULL), 0);
}

/* Take every record; check the two app records (in either order) and count them. */
static int take_all(struct evr_reader *rd, int k)
{
	struct evr_record rec;
	int n, got = 0;

	while ((n = evr_reader_begin(rd)) > 0) {
		while (evr_reader_next(rd, &rec) == 1) {
			const uint8_t *want = rec.type == 1 ? outer_buf : inner_buf;
			uint32_t len = rec.type == 1 ? OUTER : INNER;

			expect_true(rec.is_app && (rec.type == 1 || rec.type == 2) &&
					    rec.len == len && !memcmp(rec.data, want, len),
				    "k %d: record type %u len %u is_app %d is not what was written",
				    k, rec.type, rec.len, rec.is_app);
			got++;
		}
		evr_reader_end(rd);
	}
	expect_true(n == 0, "k %d: evr_reader_begin: %d", k, n);
	return got;
}

/* One run: the handler writes at instruction @k. Returns 1 if it wrote inside the call. */
static int run(int k, int *padded)
{
	EVR_OPTS(evr_ring_opts, o, .data_size = RING, .flags = EVR_RING_MIRROR);
	struct evr_ring_stats rs = { .sz = sizeof(rs) };
	struct evr_reader *rd;
	const struct evr_ctrl *c;
	uint64_t head0, bytes;
	uint8_t fill[FILL] = { 0 };
	int err, got, inside;

	assert_eq(evr_ring_create(&o, &ring), 0);
	assert_eq(evr_reader_create(ring, NULL, &rd), 0);
	c = evr_ring_get_ctrl(ring);
	for (int i = 0; i < NFILL; i++)
		assert_eq(evr_ring_write(ring, 3, fill, FILL), 0);
	while (evr_reader_begin(rd) > 0) { /* empty it: the writer's cached tail is now stale */
		struct evr_record rec;

		while (evr_reader_next(rd, &rec) == 1)
			;
		evr_reader_end(rd);
	}
	head0 = __atomic_load_n(&c->data_head, __ATOMIC_ACQUIRE);

	done = 0;
	wrote = 0;
	inner_err = 0;
	k_left = k;
	raise(SIGUSR1); /* returns with the trap flag set */
	err = evr_ring_write(ring, 1, outer_buf, OUTER);
	done = 1;
	inside = wrote;
	if (!wrote) /* stepping ended at done: write it now, as the control case */
		inner_err = evr_ring_write(ring, 2, inner_buf, INNER);

	expect_true(err == 0 && inner_err == 0, "k %d: outer write %d, handler write %d", k, err,
		    inner_err);
	bytes = __atomic_load_n(&c->data_head, __ATOMIC_ACQUIRE) - head0;
	got = take_all(rd, k);
	expect_true(got == 2, "k %d: %d records delivered, 2 written", k, got);
	assert_eq(evr_ring_get_stats(ring, &rs), 0);
	expect_true(rs.lost_full == 0 && rs.lost_paused == 0, "k %d: lost %llu/%llu", k,
		    (unsigned long long)rs.lost_full, (unsigned long long)rs.lost_paused);
	/* both records, and at most the outer record's size again as padding */
	expect_true(bytes == 128 + 16 || bytes == 128 + 16 + 128,
		    "k %d: %llu bytes published for a 128- and a 16-byte record", k,
		    (unsigned long long)bytes);
	if (bytes == 128 + 16 + 128)
		(*padded)++;
	evr_reader_destroy(rd);
	evr_ring_destroy(ring);
	return inside;
}

/*
 * The ring full and nothing read: from instruction k on, the handler tries a small record at
 * every instruction of the write. Everything must be refused and counted, and nothing written
 * over the unread records. A handler refused inside the fast path's give-back window poisons
 * the cached tail from a head that includes the bytes being given back; the poison must still
 * say "full" once head is back (it once left room for a record smaller than those bytes).
 */
static int run_full(int k)
{
	EVR_OPTS(evr_ring_opts, o, .data_size = RING, .flags = EVR_RING_MIRROR);
	struct evr_reader *rd;
	struct evr_record rec;
	uint8_t fill[FILL];
	int err, n, got = 0, inside;
	uint64_t lost = 0;

	assert_eq(evr_ring_create(&o, &ring), 0);
	assert_eq(evr_reader_create(ring, NULL, &rd), 0);
	for (int i = 0; i < RING / (FILL + 8); i++) {
		memset(fill, i, sizeof(fill));
		assert_eq(evr_ring_write(ring, 3, fill, FILL), 0);
	}
	done = 0;
	wrote = 0;
	every = 1;
	tries = 0;
	not_refused = 0;
	k_left = k;
	raise(SIGUSR1);
	err = evr_ring_write(ring, 1, outer_buf, OUTER);
	done = 1;
	inside = wrote;
	expect_true(err == -ENOSPC && not_refused == 0,
		    "k %d: full ring: outer write %d, %d of %d handler writes not refused", k, err,
		    not_refused, tries);
	/* the unread records are intact */
	while ((n = evr_reader_begin(rd)) > 0) {
		while (evr_reader_next(rd, &rec) == 1) {
			memset(fill, got, sizeof(fill));
			expect_true(rec.is_app && rec.type == 3 && rec.len == FILL &&
					    !memcmp(rec.data, fill, FILL),
				    "k %d: unread record %d overwritten (type %u len %u)", k, got,
				    rec.type, rec.len);
			got++;
		}
		evr_reader_end(rd);
	}
	expect_true(got == RING / (FILL + 8), "k %d: %d of %d unread records left", k, got,
		    RING / (FILL + 8));
	/* then every refusal is reported, in one LOST record before the next record */
	assert_eq(evr_ring_write(ring, 4, inner_buf, INNER), 0);
	got = 0;
	while (evr_reader_begin(rd) > 0) {
		while (evr_reader_next(rd, &rec) == 1) {
			if (!rec.is_app && rec.type == EVR_TYPE_LOST && rec.len >= 16)
				memcpy(&lost, (const uint8_t *)rec.data + 8, 8);
			else
				expect_true(rec.is_app && rec.type == 4,
					    "k %d: unexpected record type %u", k, rec.type);
			got++;
		}
		evr_reader_end(rd);
	}
	expect_true(got == 2 && lost == (uint64_t)tries + 1,
		    "k %d: %d records after the refusals, LOST reports %llu of %d", k, got,
		    (unsigned long long)lost, tries + 1);
	every = 0;
	evr_reader_destroy(rd);
	evr_ring_destroy(ring);
	return inside;
}

int main(void)
{
	int k, padded = 0, inside = 0, full_inside = 0;

	t_init("ring-step");
	memset(outer_buf, 0xa5, sizeof(outer_buf));
	memset(inner_buf, 0x3c, sizeof(inner_buf));
	for (int i = 0; i < OUTER; i += 8)
		outer_buf[i] = (uint8_t)i;
	handle(SIGTRAP, on_trap);
	handle(SIGUSR1, on_arm);
	for (k = 1; k < MAX_K && !t_failures; k++) {
		if (!run(k, &padded))
			break; /* the handler no longer lands inside the write */
		inside++;
	}
	for (int j = 1; j < MAX_K && !t_failures; j++) {
		if (!run_full(j))
			break;
		full_inside++;
	}
	printf("ring-step: a handler wrote at each of %d instruction points of the write; "
	       "%d of them made the fast path pad its bytes; into a full ring, handlers from each "
	       "of %d points on were all refused and counted\n",
	       inside, padded, full_inside);
	expect_true(full_inside > 20, "full ring: only %d instruction points stepped", full_inside);
	expect_true(k < MAX_K, "the write did not end within %d instructions", MAX_K);
	expect_true(inside > 20, "only %d instruction points stepped", inside);
	expect_true(padded > 0, "no run reached the fast path's padding (fast_give_back)");
	return t_done();
}
#else
int main(void)
{
	t_init("ring-step");
	t_skip("needs the x86-64 trap flag and signals delivered where they land (not under TSAN)");
}
#endif
