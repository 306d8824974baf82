// SPDX-License-Identifier: MIT
/*
 * W1 with timestamps, the writer's cost against LTTng-UST: one thread (pinned) writes timestamped
 * events in batches, each batch timed, into a buffer that never fills (evring: drained untimed
 * after each batch; LTTng: its consumer daemon drains it concurrently), in ns per event.
 * Single-threaded writer; SAMPLE lines out. bench/run-peers.sh sets up the LTTng session.
 *
 *  evring-ts        evr_chan_write() on an EVR_CHAN_THREAD channel (the thread's own
 *                   single-writer ring): TSC stamp + reserve + copy + commit. The target
 *                   (LTTng-UST at least 5x the cost) is against this one.
 *  evring-ts-shared evr_chan_write() on an EVR_CHAN_SHARED channel (one multi-producer ring,
 *                   BENCH_W1_RING bytes), for information. Built with -DNO_CHAN: evr_clock_now()
 *                   + evr_ring_write() on a mirrored single-writer ring (says via=ring+clock).
 *  lttng-ust         lttng_ust_tracepoint(evring_bench, rec, ...) (bench/lttng-tp.h: the payload
 *                    as a CTF sequence of bytes) in an active session; measured only if the
 *                    tracepoint is enabled when main() starts (else skipped, said on stderr).
 */
#define _GNU_SOURCE
#include <evring.h>

#include "bench.h"

#define LTTNG_UST_TRACEPOINT_CREATE_PROBES
#define LTTNG_UST_TRACEPOINT_DEFINE
#include "lttng-tp.h"

enum { IMPL_TS, IMPL_TS_THREAD, IMPL_LTTNG, NR_IMPLS };

/*
 * evring-ts is the per-thread channel: what a hot path that cares about cost writes to (one
 * single-writer ring per thread, as LTTng-UST's per-CPU buffers are one per CPU); the shared
 * channel (one multi-producer ring, a locked cmpxchg per event) is reported beside it.
 */
static const char *const impl_names[NR_IMPLS] = { "evring-ts-shared", "evring-ts", "lttng-ust" };

struct w1ts {
	struct evr_chan *ch[2];
	struct evr_chan_reader *crd[2];
	struct evr_ring *ring; /* -DNO_CHAN stand-in */
	struct evr_ctrl *ctrl;
	const uint8_t *src;
	int lttng_on;
};

/* Untimed: read everything back, as the channel's reader would (it zeroes what it consumed). */
static void drain(struct w1ts *b, int impl)
{
#ifndef NO_CHAN
	struct evr_record rec;
	int got;

	while ((got = evr_chan_reader_next(b->crd[impl], &rec, true)) > 0)
		;
	if (got < 0)
		bench_die("W1 %s: evr_chan_reader_next: %d", impl_names[impl], got);
#else
	uint64_t head = __atomic_load_n(&b->ctrl->data_head, __ATOMIC_ACQUIRE);

	__atomic_store_n(&b->ctrl->data_tail, head, __ATOMIC_RELEASE);
#endif
}

static uint64_t redone[NR_IMPLS];

/* As bench/w1-write.c: batches timed one by one, a preempted batch written again (up to 8). */
static uint64_t run(struct w1ts *b, int impl, size_t len, uint64_t n, uint64_t batch)
{
	uint64_t ns = 0;
	int retries = 0;

	while (n) {
		uint64_t k = n < batch ? n : batch, t0, t1, i;
		long preempted = bench_preemptions();
		int err = 0;

		switch (impl) {
		case IMPL_LTTNG:
			t0 = bench_now_ns();
			for (i = 0; i < k; i++)
				lttng_ust_tracepoint(evring_bench, rec, b->src, (uint16_t)len);
			t1 = bench_now_ns();
			break;
#ifndef NO_CHAN
		default:
			t0 = bench_now_ns();
			for (i = 0; i < k; i++)
				err |= evr_chan_write(b->ch[impl], BENCH_ID, b->src, len);
			t1 = bench_now_ns();
			drain(b, impl);
			break;
#else
		default: {
			static volatile uint64_t sink __attribute__((unused));

			t0 = bench_now_ns();
			for (i = 0; i < k; i++) {
				sink = evr_clock_now();
				err |= evr_ring_write(b->ring, BENCH_ID, b->src, len);
			}
			t1 = bench_now_ns();
			drain(b, impl);
			break;
		}
#endif
		}
		if (err)
			bench_die("W1 %s: a write into a buffer that cannot be full failed (%d)",
				  impl_names[impl], err);
		if (bench_preemptions() != preempted && retries < 8) {
			retries++;
			redone[impl]++;
			continue;
		}
		retries = 0;
		ns += t1 - t0;
		n -= k;
	}
	return ns;
}

/* The session daemon enables the events while the process registers (before main()). */
static int lttng_enabled(void)
{
	for (int i = 0; i < 100; i++) {
		if (lttng_ust_tracepoint_enabled(evring_bench, rec))
			return 1;
		usleep(10000);
	}
	return 0;
}

int main(void)
{
	size_t payloads[BENCH_MAX_PAYLOADS], max_len = 0;
	int nr_payloads = bench_payloads(payloads);
	long rounds = bench_knob("BENCH_ROUNDS", 15, 3);
	uint64_t ring = (uint64_t)bench_knob("BENCH_W1_RING", 256 << 10, 64 << 10);
	uint64_t bytes = (uint64_t)bench_knob("BENCH_W1TS_BYTES", 4 << 20, 1 << 20);
	long fill = bench_knob("BENCH_W1_FILL", 25, 25);
	int cpu = (int)bench_knob("BENCH_CPU_WRITER", 0, 0);
	int pinned = bench_pin(cpu) == 0;
	struct w1ts b = { 0 };
	uint8_t *src;
	char extra[128];
	int err;

	for (int i = 0; i < nr_payloads; i++)
		max_len = payloads[i] > max_len ? payloads[i] : max_len;
	if (bench_rec_size(max_len + 8) * 4 > ring || max_len > UINT16_MAX)
		bench_die("BENCH_W1_RING=%llu is too small for %zu-byte payloads",
			  (unsigned long long)ring, max_len);
#ifndef NO_CHAN
	for (int i = IMPL_TS; i <= IMPL_TS_THREAD; i++) {
		EVR_OPTS(evr_chan_opts, o,
			 .policy = i == IMPL_TS ? EVR_CHAN_SHARED : EVR_CHAN_THREAD, .nr_slots = 1,
			 .data_size = ring);
		EVR_OPTS(evr_chan_reader_opts, ro, .flags = EVR_CHAN_READ_UNORDERED);

		err = evr_chan_create(&o, &b.ch[i]);
		if (!err)
			err = evr_chan_reader_create(b.ch[i], &ro, &b.crd[i]);
		if (err)
			bench_die("%s: channel of a %llu-byte ring: %s", impl_names[i],
				  (unsigned long long)ring, evr_strerror(err));
	}
#else
	{
		EVR_OPTS(evr_ring_opts, o, .data_size = ring, .flags = EVR_RING_MIRROR);

		err = evr_ring_create(&o, &b.ring);
		if (err)
			bench_die("evr_ring_create(%llu): %s", (unsigned long long)ring,
				  evr_strerror(err));
		b.ctrl = evr_ring_get_ctrl(b.ring);
		bench_pretouch((uint8_t *)b.ctrl + b.ctrl->data_offset, 2 * ring);
	}
#endif
	src = aligned_alloc(64, (max_len + 63) & ~(size_t)63);
	if (!src)
		bench_die("out of memory");
	for (size_t i = 0; i < max_len; i++)
		src[i] = (uint8_t)(i * 7 + 1);
	b.src = src;
	b.lttng_on = lttng_enabled();
	if (!b.lttng_on)
		fprintf(stderr, "bench: W1 lttng-ust: tracepoint evring_bench:rec not enabled (no "
				"active session, see bench/run-peers.sh): skipped\n");
	if (!pinned)
		fprintf(stderr, "bench: W1: could not pin to CPU %d, running unpinned\n", cpu);

	for (int round = -1; round < rounds; round++) {
		for (int pi = 0; pi < nr_payloads; pi++) {
			size_t len = payloads[pi], rec = bench_rec_size(len + 8); /* + the stamp */
			uint64_t n = bytes / rec, batch = ring * (uint64_t)fill / 100 / rec;

			if (!n)
				n = 1;
			if (batch >= ring / rec)
				batch = ring / rec - 1;
			if (!batch)
				batch = 1;
			for (int j = 0; j < NR_IMPLS; j++) {
				int impl = (j + round + 1) % NR_IMPLS;
				uint64_t ns;

				if (!bench_impl_wanted(impl_names[impl]) ||
				    (impl == IMPL_LTTNG && !b.lttng_on))
					continue;
#ifdef NO_CHAN
				if (impl == IMPL_TS_THREAD)
					continue;
#endif
				ns = run(&b, impl, len, n, batch);
				if (round < 0)
					continue;
				snprintf(extra, sizeof(extra), "ring=%llu fill=%ld%% pinned=%d%s",
					 (unsigned long long)ring, fill, pinned,
#ifdef NO_CHAN
					 impl == IMPL_TS ? " via=ring+clock" : "");
#else
					 impl == IMPL_LTTNG ? " session=active" : "");
#endif
				bench_sample("W1", impl_names[impl], len, round,
					     (double)ns / (double)n, "ns/rec", extra);
			}
		}
	}

	for (int i = 0; i < NR_IMPLS; i++)
		if (redone[i])
			fprintf(stderr, "bench: W1 %s: %llu preempted batches written again\n",
				impl_names[i], (unsigned long long)redone[i]);
#ifndef NO_CHAN
	for (int i = IMPL_TS; i <= IMPL_TS_THREAD; i++) {
		evr_chan_reader_destroy(b.crd[i]);
		evr_chan_destroy(b.ch[i]);
	}
#else
	evr_ring_destroy(b.ring);
#endif
	free(src);
	return 0;
}
