/* SPDX-License-Identifier: MIT */
/*
 * "ideal": the bare perf ring technique, the yardstick evring is measured against. One writer
 * thread and one reader thread; no nesting, no loss accounting, no validation, no wakeups.
 * Same record format (8-byte header, 8-byte aligned) and the same mirror mapping as evring.
 */
#ifndef EVR_BENCH_IDEAL_H
#define EVR_BENCH_IDEAL_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <evring/abi.h>

/*
 * Ordering: perf's table (DESIGN.md section 4), nothing more.
 *
 *   writer (ideal_write)                     reader (ideal_read_*)
 *   A: tail = load_acquire(&data_tail)       C: head = load_acquire(&data_head)
 *      only when the cached tail says full      read records in [tail, head)
 *      header + memcpy                       D: store_release(&data_tail, tail)
 *   B: store_release(&data_head, head)
 *
 * The hot functions are noinline (and noipa on GCC, so no constant-propagated clone is made for
 * the payload length): each record costs a call, as a library's write does. They are static, so
 * "unused" keeps a file that needs only the writer quiet.
 */
#if defined(__clang__)
#define IDEAL_NOINLINE __attribute__((noinline, unused))
#else
#define IDEAL_NOINLINE __attribute__((noinline, noipa, unused))
#endif

/* The control page keeps perf's offsets: head and tail share one cache line, as in perf. */
struct ideal_ctrl {
	uint8_t perf_fields[1024];
	uint64_t data_head; /* writer: store-release (B) */
	uint64_t data_tail; /* reader: store-release (D) */
};

/* The mapping: [control page][data][data again], the second view an alias of the first. */
struct ideal_ring {
	void *map;
	size_t map_len;
	int fd;
	struct ideal_ctrl *ctrl;
	uint8_t *data;
	uint64_t size;
};

/* Writer state: private to the writing thread, one cache line of its own. */
struct ideal_writer {
	uint64_t head;
	uint64_t tail_cache;
	struct ideal_ctrl *ctrl;
	uint8_t *data;
	uint64_t size;
	uint64_t mask;
} __attribute__((aligned(64)));

/* Reader state: private to the reading thread, one cache line of its own. */
struct ideal_reader {
	uint64_t tail;
	uint64_t head;
	struct ideal_ctrl *ctrl;
	const uint8_t *data;
	uint64_t mask;
} __attribute__((aligned(64)));

/* Create a mirrored ring of @size bytes (a power of two, a multiple of the page size). */
static inline int ideal_ring_create(struct ideal_ring *r, uint64_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uint8_t *base;
	int fd, err;

	memset(r, 0, sizeof(*r));
	if (!size || (size & (size - 1)) || size % page)
		return -EINVAL;
	fd = memfd_create("ideal", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)(page + size)) < 0)
		goto fail;
	base = mmap(NULL, page + 2 * size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		    -1, 0);
	if (base == MAP_FAILED)
		goto fail;
	if (mmap(base, page + size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) ==
		    MAP_FAILED ||
	    mmap(base + page + size, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
		 (off_t)page) == MAP_FAILED) {
		err = -errno;
		munmap(base, page + 2 * size);
		close(fd);
		return err;
	}
	r->map = base;
	r->map_len = page + 2 * size;
	r->fd = fd;
	r->ctrl = (struct ideal_ctrl *)base;
	r->data = base + page;
	r->size = size;
	return 0;
fail:
	err = -errno;
	close(fd);
	return err;
}

static inline void ideal_ring_destroy(struct ideal_ring *r)
{
	if (r->map) {
		munmap(r->map, r->map_len);
		close(r->fd);
	}
	memset(r, 0, sizeof(*r));
}

static inline void ideal_writer_init(struct ideal_writer *w, const struct ideal_ring *r)
{
	w->head = __atomic_load_n(&r->ctrl->data_head, __ATOMIC_RELAXED);
	w->tail_cache = __atomic_load_n(&r->ctrl->data_tail, __ATOMIC_RELAXED);
	w->ctrl = r->ctrl;
	w->data = r->data;
	w->size = r->size;
	w->mask = r->size - 1;
}

static inline void ideal_reader_init(struct ideal_reader *rd, const struct ideal_ring *r)
{
	rd->tail = __atomic_load_n(&r->ctrl->data_tail, __ATOMIC_RELAXED);
	rd->head = rd->tail;
	rd->ctrl = r->ctrl;
	rd->data = r->data;
	rd->mask = r->size - 1;
}

/*
 * One record, with an 8-byte @stamp first in the payload when @stamped; -ENOSPC if it does not
 * fit. The mirror makes every record contiguous.
 */
static inline __attribute__((always_inline)) int ideal_put(struct ideal_writer *w, uint32_t type,
							    int stamped, uint64_t stamp,
							    const void *buf, size_t len)
{
	size_t body = len + (stamped ? sizeof(stamp) : 0);
	uint32_t size = (uint32_t)((body + sizeof(struct evr_record_header) + 7) & ~(size_t)7);
	uint64_t head = w->head;
	struct evr_record_header *h;
	uint8_t *p;

	if (head + size - w->tail_cache > w->size) {
		/* A: pairs with D in ideal_read_end() */
		w->tail_cache = __atomic_load_n(&w->ctrl->data_tail, __ATOMIC_ACQUIRE);
		if (head + size - w->tail_cache > w->size)
			return -ENOSPC;
	}
	h = (struct evr_record_header *)(w->data + (head & w->mask));
	h->type = type;
	h->misc = (uint16_t)(size - sizeof(*h) - body);
	h->size = (uint16_t)size;
	p = (uint8_t *)(h + 1);
	if (stamped) {
		memcpy(p, &stamp, sizeof(stamp));
		p += sizeof(stamp);
	}
	memcpy(p, buf, len);
	w->head = head + size;
	/* B: pairs with C in ideal_read_begin() */
	__atomic_store_n(&w->ctrl->data_head, head + size, __ATOMIC_RELEASE);
	return 0;
}

static IDEAL_NOINLINE int ideal_write(struct ideal_writer *w, uint32_t type, const void *buf,
				      size_t len)
{
	return ideal_put(w, type, 0, 0, buf, len);
}

/* The same, the caller's timestamp (the bench takes the TSC, as evring's channels do) first. */
static IDEAL_NOINLINE int ideal_write_ts(struct ideal_writer *w, uint32_t type, uint64_t stamp,
					 const void *buf, size_t len)
{
	return ideal_put(w, type, 1, stamp, buf, len);
}

/* Start a batch: the bytes readable now. */
static IDEAL_NOINLINE uint64_t ideal_read_begin(struct ideal_reader *rd)
{
	/* C: pairs with B in ideal_write() */
	rd->head = __atomic_load_n(&rd->ctrl->data_head, __ATOMIC_ACQUIRE);
	return rd->head - rd->tail;
}

/* The next record of the batch, or NULL at its end. Trusts the writer completely. */
static IDEAL_NOINLINE const struct evr_record_header *ideal_read_next(struct ideal_reader *rd)
{
	const struct evr_record_header *h;

	if (rd->tail == rd->head)
		return NULL;
	h = (const struct evr_record_header *)(rd->data + (rd->tail & rd->mask));
	rd->tail += h->size;
	return h;
}

/* End a batch: hand the bytes read back to the writer. */
static IDEAL_NOINLINE void ideal_read_end(struct ideal_reader *rd)
{
	/* D: pairs with A in ideal_write() */
	__atomic_store_n(&rd->ctrl->data_tail, rd->tail, __ATOMIC_RELEASE);
}

#endif /* EVR_BENCH_IDEAL_H */
