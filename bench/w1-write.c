// SPDX-License-Identifier: MIT
/*
 * W1, the writer's cost: one thread writes records into a ring that never fills (a batch of
 * BENCH_W1_FILL percent of the ring is timed, then the ring is drained untimed), in ns per record,
 * for evring, ideal and a flat memcpy of the same records. Single-threaded; SAMPLE lines out.
 *
 * The flight recorder (evr_flight_write, a session ring of BENCH_W1_RING bytes in pages of
 * BENCH_FLIGHT_PAGE bytes, 4 KiB by default, ftrace's size) is
 * timed the same way in both its modes: evring-flight-pc (produce/consume: the batch is consumed
 * untimed with evr_flight_read, as the core ring's is freed) and evring-flight-ow (overwrite:
 * nothing reads, the writer laps the ring and pushes the head page on, a cost it pays for real).
 */
#define _GNU_SOURCE
#include <evring.h>

#include "bench.h"
#include "ideal.h"

/* The same source, built with -DEVR_LOCAL_C11 by bench/run.sh, measures the other local ops. */
#ifdef EVR_LOCAL_C11
#define EVRING_IMPL "evring-c11local"
#else
#define EVRING_IMPL "evring"
#endif

/* The flight impls run in the default build only (the -DEVR_LOCAL_C11 pass: the core ring) */
#ifdef EVR_LOCAL_C11
enum { IMPL_EVRING, IMPL_IDEAL, IMPL_MEMCPY, NR_IMPLS, IMPL_FLIGHT_PC, IMPL_FLIGHT_OW };

static const char *const impl_names[NR_IMPLS] = { EVRING_IMPL, "ideal", "memcpy-rec" };
#else
enum { IMPL_EVRING, IMPL_IDEAL, IMPL_MEMCPY, IMPL_FLIGHT_PC, IMPL_FLIGHT_OW, NR_IMPLS };

static const char *const impl_names[NR_IMPLS] = { EVRING_IMPL, "ideal", "memcpy-rec",
						  "evring-flight-pc", "evring-flight-ow" };
#endif

struct w1 {
	struct evr_ring *ev;
	struct evr_ctrl *ev_ctrl;
	struct ideal_ring ir;
	struct ideal_writer iw;
	struct evr_session *fs[2]; /* flight rings: produce/consume, overwrite */
	struct evr_flight *fl[2];
	uint8_t *flat; /* memcpy-rec's destination, ring_size bytes */
	const uint8_t *src; /* the payload, the same for every record */
	uint64_t ring_size;
};

/* memcpy-rec: header + payload into a flat buffer; noinline like the rings' write functions. */
static IDEAL_NOINLINE uint8_t *memrec_write(uint8_t *p, uint32_t type, const void *buf, size_t len)
{
	struct evr_record_header *h = (struct evr_record_header *)p;
	size_t size = bench_rec_size(len);

	h->type = type;
	h->misc = (uint16_t)(size - sizeof(*h) - len);
	h->size = (uint16_t)size;
	memcpy(h + 1, buf, len);
	return p + size;
}

/* Untimed: play the reader and free everything written (D, as evr_reader_end() would). */
static void drain_evring(struct w1 *b)
{
	uint64_t head = __atomic_load_n(&b->ev_ctrl->data_head, __ATOMIC_ACQUIRE);

	__atomic_store_n(&b->ev_ctrl->data_tail, head, __ATOMIC_RELEASE);
}

static void drain_ideal(struct w1 *b)
{
	uint64_t head = __atomic_load_n(&b->ir.ctrl->data_head, __ATOMIC_ACQUIRE);

	__atomic_store_n(&b->ir.ctrl->data_tail, head, __ATOMIC_RELEASE);
}

/* Untimed: consume every record of the flight ring (pages swapped out, as a reader would). */
static void drain_flight(struct evr_flight *f)
{
	struct evr_record rec;
	int k;

	while ((k = evr_flight_read(f, &rec)) == 1)
		;
	if (k < 0)
		bench_die("W1 evring-flight-pc: evr_flight_read: %s", evr_strerror(k));
}

/* Batches discarded because the thread was preempted while writing them, per impl. */
static uint64_t redone[NR_IMPLS];

/*
 * Write @n records of @len bytes in batches of @batch, each batch timed on its own; the loops
 * are alike so that only the write call differs. A batch during which the thread was preempted
 * is written again (up to 8 times), so that a busy machine costs time, not accuracy. Returns
 * the nanoseconds spent writing.
 */
static uint64_t run(struct w1 *b, int impl, size_t len, uint64_t n, uint64_t batch)
{
	const uint32_t type = EVR_TYPE_APP + BENCH_ID;
	uint64_t ns = 0;
	int retries = 0;

	while (n) {
		uint64_t k = n < batch ? n : batch, t0, t1, i;
		long preempted = bench_preemptions();
		uint8_t *p = b->flat;
		int err = 0;

		switch (impl) {
		case IMPL_EVRING:
			t0 = bench_now_ns();
			for (i = 0; i < k; i++)
				err |= evr_ring_write(b->ev, BENCH_ID, b->src, len);
			t1 = bench_now_ns();
			drain_evring(b);
			break;
		case IMPL_IDEAL:
			t0 = bench_now_ns();
			for (i = 0; i < k; i++)
				err |= ideal_write(&b->iw, type, b->src, len);
			t1 = bench_now_ns();
			drain_ideal(b);
			break;
		case IMPL_FLIGHT_PC:
			t0 = bench_now_ns();
			for (i = 0; i < k; i++)
				err |= evr_flight_write(b->fl[0], BENCH_ID, b->src, len);
			t1 = bench_now_ns();
			drain_flight(b->fl[0]);
			break;
		case IMPL_FLIGHT_OW:
			t0 = bench_now_ns();
			for (i = 0; i < k; i++)
				err |= evr_flight_write(b->fl[1], BENCH_ID, b->src, len);
			t1 = bench_now_ns();
			break;
		default:
			t0 = bench_now_ns();
			for (i = 0; i < k; i++)
				p = memrec_write(p, type, b->src, len);
			t1 = bench_now_ns();
			break;
		}
		if (err)
			bench_die("W1 %s: a write into a ring that cannot be full failed (%d)",
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

int main(void)
{
	size_t payloads[BENCH_MAX_PAYLOADS], max_len = 0;
	int nr_payloads = bench_payloads(payloads);
	long rounds = bench_knob("BENCH_ROUNDS", 21, 3);
	uint64_t ring = (uint64_t)bench_knob("BENCH_W1_RING", 256 << 10, 64 << 10);
	long fpage = bench_knob("BENCH_FLIGHT_PAGE", 4096, 4096);
	uint64_t bytes = (uint64_t)bench_knob("BENCH_W1_BYTES", 16 << 20, 1 << 20);
	long fill = bench_knob("BENCH_W1_FILL", 25, 25);
	int cpu = (int)bench_knob("BENCH_CPU_WRITER", 0, 0);
	int pinned = bench_pin(cpu) == 0;
	struct w1 b = { .ring_size = ring };
	struct evr_ring_opts o = { .sz = sizeof(o), .data_size = ring, .flags = EVR_RING_MIRROR };
	uint8_t *src, *ev_data;
	char extra[96];
	int err;

	for (int i = 0; i < nr_payloads; i++)
		max_len = payloads[i] > max_len ? payloads[i] : max_len;
	if (bench_rec_size(max_len) * 4 > ring)
		bench_die("BENCH_W1_RING=%llu is too small for %zu-byte payloads",
			  (unsigned long long)ring, max_len);

	err = evr_ring_create(&o, &b.ev);
	if (err)
		bench_die("evr_ring_create(%llu, MIRROR): %s", (unsigned long long)ring,
			  evr_strerror(err));
	for (int m = 0; m < 2; m++) {
		bench_flight_open(ring, (uint32_t)fpage, m, &b.fs[m], &b.fl[m]);
		/* pretouch: a lap of the ring (overwrite), or of writes and reads (pc) */
		for (uint64_t w = 0; w < 2 * ring / 16; w++) {
			if (evr_flight_write(b.fl[m], BENCH_ID, &w, sizeof(w)))
				drain_flight(b.fl[m]);
		}
		drain_flight(b.fl[m]);
	}
	err = ideal_ring_create(&b.ir, ring);
	if (err)
		bench_die("ideal_ring_create(%llu): %s", (unsigned long long)ring, strerror(-err));
	ideal_writer_init(&b.iw, &b.ir);
	b.ev_ctrl = evr_ring_get_ctrl(b.ev);
	b.flat = aligned_alloc(4096, ring);
	src = aligned_alloc(64, (max_len + 63) & ~(size_t)63);
	if (!b.flat || !src)
		bench_die("out of memory");
	for (size_t i = 0; i < max_len; i++)
		src[i] = (uint8_t)(i * 7 + 1);
	b.src = src;

	/* Both views of both mirrors, so that no page fault lands in a timed batch. */
	ev_data = (uint8_t *)b.ev_ctrl + b.ev_ctrl->data_offset;
	bench_pretouch(ev_data, 2 * ring);
	bench_pretouch(b.ir.data, 2 * ring);
	bench_pretouch(b.flat, ring);

	snprintf(extra, sizeof(extra), "ring=%llu fill=%ld%% pinned=%d", (unsigned long long)ring,
		 fill, pinned);
	if (!pinned)
		fprintf(stderr, "bench: W1: could not pin to CPU %d, running unpinned\n", cpu);

	/* Round -1 warms caches, TLBs and the clock up and is not reported. */
	for (int round = -1; round < rounds; round++) {
		for (int pi = 0; pi < nr_payloads; pi++) {
			size_t len = payloads[pi], rec = bench_rec_size(len);
			uint64_t n = bytes / rec, batch = ring * (uint64_t)fill / 100 / rec;

			if (!n)
				n = 1;
			if (batch >= ring / rec)
				batch = ring / rec - 1;
			if (!batch)
				batch = 1;
			/* Round-robin, each round starting one further: no impl always first */
			for (int j = 0; j < NR_IMPLS; j++) {
				int impl = (j + round + 1) % NR_IMPLS;
				uint64_t ns;

				if (!bench_impl_wanted(impl_names[impl]))
					continue;
				ns = run(&b, impl, len, n, batch);
				if (round >= 0)
					bench_sample("W1", impl_names[impl], len, round,
						     (double)ns / (double)n, "ns/rec", extra);
			}
		}
	}

	for (int i = 0; i < NR_IMPLS; i++)
		if (redone[i])
			fprintf(stderr, "bench: W1 %s: %llu preempted batches written again\n",
				impl_names[i], (unsigned long long)redone[i]);

	evr_ring_destroy(b.ev);
	evr_session_destroy(b.fs[0]);
	evr_session_destroy(b.fs[1]);
	ideal_ring_destroy(&b.ir);
	free(b.flat);
	free(src);
	return 0;
}
