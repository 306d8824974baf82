/* SPDX-License-Identifier: MIT */
/*
 * evring public API: lock-free event rings in (shared) memory, written from hot paths and signal
 * handlers, read by a consumer that validates everything it reads.
 * Functions return >= 0 on success and -errno on failure; none reads or sets errno.
 */
#ifndef EVRING_H
#define EVRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <evring/abi.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EVR_API __attribute__((visibility("default")))

#define EVR_VERSION_MAJOR 0
#define EVR_VERSION_MINOR 1
#define EVR_VERSION_PATCH 0

/* Deepest nesting of one writer context (the thread plus handlers interrupting it). */
#define EVR_MAX_NEST 8

/*
 * Options structs start with their own size (libbpf style): fill them with EVR_OPTS(), which sets
 * sz; fields a newer library adds read as zero, and unknown trailing bytes must be zero.
 */
#define EVR_OPTS(TYPE, NAME, ...)                                                                \
	struct TYPE NAME = { .sz = sizeof(struct TYPE), __VA_ARGS__ }

/* evr_ring_opts.flags */
#define EVR_RING_MIRROR 0x1u /* memfd-backed, data area mapped twice: records never wrap */
#define EVR_RING_OVERWRITE 0x2u /* flight-recorder mode: writes backward, never fails for room */
#define EVR_RING_MULTI 0x4u /* several writer threads at once (lock-free); needs EVR_RING_MIRROR */
/* sessions only: a flight-recorder page ring (evr_session_get_flight()); with OVERWRITE the
 * oldest page is pushed out when full, without it a full ring refuses writes */
#define EVR_RING_FLIGHT 0x8u
#define EVR_RING_STAMP 0x10u /* flight rings: every record carries a timestamp */

struct evr_ring_opts {
	size_t sz;
	uint64_t data_size; /* power of two, 64 B..1 GiB (>= page size with EVR_RING_MIRROR) */
	uint32_t flags; /* EVR_RING_* */
	uint32_t pad;
	uint64_t ring_id; /* copied into the control page and LOST records */
};

struct evr_ring;

/**
 * evr_ring_create() - create a ring in this process.
 * @opts: data size and flags; NULL is invalid.
 * @out: receives the ring.
 *
 * Context: allocates; not async-signal-safe.
 * Return: 0, -EINVAL for a bad size or flag, -ENOMEM, or the -errno of memfd_create/mmap.
 */
EVR_API int evr_ring_create(const struct evr_ring_opts *opts, struct evr_ring **out);

/**
 * evr_ring_destroy() - unmap and free a ring; NULL is a no-op.
 * Context: no writer or reader of @ring may be running.
 */
EVR_API void evr_ring_destroy(struct evr_ring *ring);

/* A reserved record, filled between evr_ring_reserve() and evr_ring_commit(). */
struct evr_slot {
	void *data; /* payload, contiguous, @len bytes */
	uint32_t len;
	/* private to the library */
	uint32_t size;
	uint64_t pos;
	void *hdr;
	uint32_t wrap;
	uint32_t level;
};

/**
 * evr_ring_reserve() - reserve room for a record of type EVR_TYPE_APP + @id.
 * @ring: the ring; the caller must be its writer context.
 * @id: application event id, <= EVR_APP_ID_MAX.
 * @len: payload bytes.
 * @slot: filled in; write @len bytes at slot->data, then commit or discard it.
 *
 * Reservations nest (a signal handler may reserve while its thread holds one) and must be
 * committed or discarded in LIFO order.
 *
 * Context: async-signal-safe, lock-free, no syscall; nests up to EVR_MAX_NEST deep.
 * Return: 0; -ENOSPC (discard mode, full: counted as lost, reported by a LOST record before the
 * next record that fits), -EMSGSIZE (larger than the ring or EVR_PAYLOAD_MAX), -EDEADLK (nested
 * deeper than EVR_MAX_NEST), -ESHUTDOWN (ring disabled), -EINVAL (bad argument).
 */
EVR_API int evr_ring_reserve(struct evr_ring *ring, uint32_t id, size_t len, struct evr_slot *slot);

/**
 * evr_ring_commit() - publish a reserved record.
 * Context: async-signal-safe, lock-free; as evr_ring_reserve().
 * Return: 0, or -EINVAL if @slot is not the innermost open reservation.
 */
EVR_API int evr_ring_commit(struct evr_ring *ring, struct evr_slot *slot);

/**
 * evr_ring_discard() - give a reservation back: it becomes padding the reader skips.
 * Context: async-signal-safe, lock-free; as evr_ring_reserve().
 * Return: 0, or -EINVAL as evr_ring_commit().
 */
EVR_API int evr_ring_discard(struct evr_ring *ring, struct evr_slot *slot);

/**
 * evr_ring_write() - reserve, copy and commit one record.
 * Context: async-signal-safe, lock-free, no syscall; nests up to EVR_MAX_NEST deep.
 * Return: as evr_ring_reserve().
 */
EVR_API int evr_ring_write(struct evr_ring *ring, uint32_t id, const void *data, size_t len);

/**
 * evr_ring_flush() - emit the pending LOST record now, if records were lost since the last one.
 * Context: writer context; async-signal-safe.
 * Return: 1 if a LOST record was written, 0 if nothing was pending, -ENOSPC if it did not fit.
 */
EVR_API int evr_ring_flush(struct evr_ring *ring);

/**
 * evr_ring_set_paused() - pause or resume writers (perf's PAUSE_OUTPUT).
 * @paused: true to pause.
 *
 * While paused, writes fail with -ENOSPC and are counted as lost (cause EVR_LOST_PAUSED).
 * Pausing waits until no write that started before the pause is still in flight, so what the
 * reader sees afterwards is stable.
 *
 * Context: reader side; may sleep (membarrier, bounded wait of @timeout_ms).
 * Return: 0, -ETIMEDOUT if a writer stayed in flight longer than @timeout_ms (the ring is
 * paused nonetheless), or the -errno of membarrier.
 */
EVR_API int evr_ring_set_paused(struct evr_ring *ring, bool paused, int timeout_ms);

/* Counters, as the writer published them in the control page. */
struct evr_ring_stats {
	size_t sz;
	uint64_t lost_full;
	uint64_t lost_paused;
	uint64_t err_msgsize;
	uint64_t err_nest;
	uint64_t err_shutdown;
	uint64_t data_head;
	uint64_t data_tail;
};

/**
 * evr_ring_get_stats() - copy the ring's counters.
 * Context: any thread.
 * Return: 0, -EINVAL.
 */
EVR_API int evr_ring_get_stats(const struct evr_ring *ring, struct evr_ring_stats *stats);

/**
 * evr_ring_get_ctrl() - the ring's control page (struct evr_ctrl), for tools and tests.
 * Context: any thread.
 */
EVR_API struct evr_ctrl *evr_ring_get_ctrl(const struct evr_ring *ring);

/**
 * evr_ring_get_fd() - the memfd behind a mirrored ring (control page at offset 0, data at
 * data_offset), or -EBADF for a ring in process memory.
 */
EVR_API int evr_ring_get_fd(const struct evr_ring *ring);

/* ---------------------------------------------------------------------------------------- */
/* The reader */

/* evr_reader_opts.flags */
#define EVR_READ_OLDEST_FIRST 0x1u /* overwrite rings: hand the snapshot out oldest first */

struct evr_reader_opts {
	size_t sz;
	uint32_t flags;
	uint32_t pad;
};

struct evr_reader;

/* One record, as handed out by evr_reader_next(); valid until the next call or batch end. */
struct evr_record {
	const struct evr_record_header *hdr; /* whole record, contiguous */
	const void *data; /* payload */
	uint32_t type; /* hdr->type, minus EVR_TYPE_APP for application events */
	uint32_t len; /* exact payload length */
	uint64_t pos; /* ring position of the record */
	uint64_t time; /* CLOCK_MONOTONIC ns, if has_time */
	bool is_app; /* an application event (type is its id) */
	bool has_time; /* the record carried a timestamp (channels write them) */
	uint16_t ring; /* channel readers: index of the ring it came from */
};

/**
 * evr_reader_create() - make the (single) reader of @ring.
 * Context: allocates; not async-signal-safe.
 * Return: 0, -EINVAL, -ENOMEM.
 */
EVR_API int evr_reader_create(struct evr_ring *ring, const struct evr_reader_opts *opts,
			      struct evr_reader **out);

/**
 * evr_reader_create_raw() - make a reader of a ring mapped by someone else (a kernel perf
 * buffer, another process's ring): @ctrl points at a perf_event_mmap_page-compatible page,
 * @data at the data area of @data_size bytes, mapped twice back to back if @mirror.
 * Nothing in *@ctrl is trusted.
 * Return: 0, -EINVAL, -ENOMEM.
 */
EVR_API int evr_reader_create_raw(struct evr_ctrl *ctrl, void *data, uint64_t data_size,
				  bool mirror, bool backward, const struct evr_reader_opts *opts,
				  struct evr_reader **out);

EVR_API void evr_reader_destroy(struct evr_reader *rd);

/**
 * evr_reader_begin() - start a batch: read data_head once (acquire).
 * Context: the reader's thread; never blocks.
 * Return: bytes available in the batch (>= 0), or -EBADMSG if the head is impossible (the
 * reader resynchronises to it and counts what it skipped).
 */
EVR_API int evr_reader_begin(struct evr_reader *rd);

/**
 * evr_reader_next() - take the next record of the batch.
 * Return: 1 with *@rec filled, 0 at the end of the batch, -EBADMSG for a corrupt header (the
 * rest of the batch is skipped and counted; the next batch starts clean).
 */
EVR_API int evr_reader_next(struct evr_reader *rd, struct evr_record *rec);

/**
 * evr_reader_end() - finish the batch: publish data_tail (release), freeing the space.
 * Return: 0.
 */
EVR_API int evr_reader_end(struct evr_reader *rd);

struct evr_reader_stats {
	size_t sz;
	uint64_t records; /* records handed out (LOST and application records) */
	uint64_t lost; /* sum of the LOST records seen */
	uint64_t bad_headers; /* corruption events */
	uint64_t bytes_skipped; /* bytes dropped to resynchronise */
	uint64_t batches;
	uint64_t wakeups; /* times evr_reader_wait() came back from the kernel */
};

EVR_API int evr_reader_get_stats(const struct evr_reader *rd, struct evr_reader_stats *stats);

/**
 * evr_reader_wait() - block until a watermark's worth of bytes is unread, a writer flushed, or
 * @timeout_ms passed (-1: forever, 0: just look).
 *
 * Call it between batches (after evr_reader_end()). Writers enter the kernel only when they
 * cross the watermark or flush, and only while a reader waits; a wakeup is never lost
 * (docs/ordering.md). Works across processes (shared futex in the control page).
 *
 * Context: the reader's thread; sleeps.
 * Return: bytes unread (>= 0; below the watermark after a timeout or flush), -EINVAL,
 * -EOPNOTSUPP for an overwrite ring, -EBADMSG for an impossible head, or a futex -errno.
 */
EVR_API int evr_reader_wait(struct evr_reader *rd, int timeout_ms);

/**
 * evr_reader_set_watermark() - wake the reader when @bytes are unread (0: half the ring, the
 * default, as perf). Writers read it on each commit while a reader waits: a new value applies
 * at once.
 * Return: 0, -EINVAL if @bytes exceeds the ring.
 */
EVR_API int evr_reader_set_watermark(struct evr_reader *rd, uint64_t bytes);

/**
 * evr_reader_get_fd() - an eventfd that becomes readable when writers of this process cross the
 * watermark or flush; for epoll/poll loops. Read it (8 bytes) to re-arm, then drain the ring.
 * The fd belongs to the ring; do not close it.
 *
 * Context: in-process rings (or rings of a session this process maps and writes). Writers in
 * other processes do not signal it: wait with evr_reader_wait() on a thread instead.
 * Return: the fd, -EOPNOTSUPP for a raw reader or an overwrite ring, or the -errno of eventfd.
 */
EVR_API int evr_reader_get_fd(struct evr_reader *rd);

/* ---------------------------------------------------------------------------------------- */
/* Sessions: rings in one shared-memory object that several processes map */

/* evr_session_open() flags */
#define EVR_SESSION_READER 0x1u /* read rings (publishes data_tail, waits) */
#define EVR_SESSION_WRITER 0x2u /* write rings: evr_session_get_ring() takes the writer role */

struct evr_session_opts {
	size_t sz;
	const char *name; /* NULL: anonymous memfd; else a POSIX shm name "/x", O_EXCL 0600 */
	uint32_t nr_rings; /* 1..EVR_SESSION_MAX_RINGS */
	uint32_t ring_flags; /* EVR_RING_OVERWRITE or EVR_RING_MULTI or 0; always mirrored; or
				EVR_RING_FLIGHT [| EVR_RING_OVERWRITE] [| EVR_RING_STAMP] */
	uint64_t data_size; /* per ring: power of two, page size..1 GiB (flight: all its pages) */
	uint32_t flight_page_size; /* flight: bytes per page, power of two 256..64 KiB; 0: 4096 */
	uint32_t pad;
};

struct evr_session;

/**
 * evr_session_create() - create a session and all its rings; the caller may read and write.
 * Context: allocates, makes system calls.
 * Return: 0, -EINVAL (bad options or name), -EEXIST (name taken), or the -errno of
 * shm_open/memfd_create/ftruncate/mmap.
 */
EVR_API int evr_session_create(const struct evr_session_opts *opts, struct evr_session **out);

/**
 * evr_session_open() / evr_session_open_fd() - map an existing session by name or by fd (the fd
 * is duplicated; the caller keeps its own). Every field is checked against the object's size.
 * @flags: EVR_SESSION_READER and/or EVR_SESSION_WRITER.
 * Return: 0, -EINVAL, -ENOENT, -EACCES, -EAGAIN (its creator has not finished), -EPROTO (a
 * layout version this library does not read), -EBADMSG (not a session, truncated, or corrupt),
 * -ENOMEM.
 */
EVR_API int evr_session_open(const char *name, uint32_t flags, struct evr_session **out);
EVR_API int evr_session_open_fd(int fd, uint32_t flags, struct evr_session **out);

/**
 * evr_session_close() - unmap; the object lives on while others map it or, if named, until
 * unlinked. evr_session_destroy() also unlinks the name if this handle created it.
 * Context: no writer or reader of its rings may be running in this process.
 */
EVR_API void evr_session_close(struct evr_session *s);
EVR_API int evr_session_destroy(struct evr_session *s);
EVR_API int evr_session_unlink(const char *name);

EVR_API int evr_session_get_fd(const struct evr_session *s);
EVR_API int evr_session_get_nr_rings(const struct evr_session *s);

/**
 * evr_session_get_ring() - the handle of ring @idx, owned by the session (do not destroy it).
 * With EVR_SESSION_WRITER the first call makes this process's caller the ring's writer context:
 * it resumes from the published data_head, dropping whatever a dead predecessor left
 * unpublished. Without it, writes through the handle fail with -EINVAL.
 * Return: 0, -EINVAL.
 */
EVR_API int evr_session_get_ring(struct evr_session *s, uint32_t idx, struct evr_ring **out);

/* ---------------------------------------------------------------------------------------- */
/* Flight recorder rings: ftrace's lockless page ring, in a session (EVR_RING_FLIGHT) */

struct evr_flight;

/**
 * evr_session_get_flight() - the handle of flight ring @idx, owned by the session. A session
 * opened with EVR_SESSION_WRITER makes this process the ring's writer context; one opened
 * with EVR_SESSION_READER may read it (one consuming reader per ring).
 * Return: 0, -EINVAL, -EPROTO if ring @idx is not a flight ring.
 */
EVR_API int evr_session_get_flight(struct evr_session *s, uint32_t idx, struct evr_flight **out);

/**
 * evr_flight_write() - write one record (type EVR_TYPE_APP + @id) on the tail page.
 * Context: async-signal-safe, lock-free, no syscall; nests up to EVR_MAX_NEST deep.
 * Return: 0; -ENOSPC when the ring is full and not in overwrite mode (counted); -EMSGSIZE
 * above a page minus its header; -EDEADLK nested too deep; -EPERM on a read-only handle;
 * -EINVAL; -EBADMSG if the shared page list is corrupt (nothing written outside the ring).
 */
EVR_API int evr_flight_write(struct evr_flight *f, uint32_t id, const void *data, size_t len);

/* Reserve then commit, as evr_ring_reserve()/evr_ring_commit(); same context and returns. */
EVR_API int evr_flight_reserve(struct evr_flight *f, uint32_t id, size_t len,
			       struct evr_slot *slot);
EVR_API int evr_flight_commit(struct evr_flight *f, struct evr_slot *slot);

/**
 * evr_flight_read() - the next record, consuming it: whole pages are swapped out of the ring
 * into the reader's hands. A record (EVR_TYPE_LOST, causes EVR_LOST_OVERWRITTEN and/or
 * EVR_LOST_FULL) reports entries overwritten or refused since the previous one. @rec stays
 * valid until the next call.
 * Context: the single reader of the ring; never blocks (a writer mid-push is retried later).
 * Return: 1 record, 0 none now, -EBADMSG a corrupt page was skipped, -EINVAL, -EPERM.
 */
EVR_API int evr_flight_read(struct evr_flight *f, struct evr_record *rec);

/* Called per record by evr_flight_snapshot()/evr_flight_recover(); nonzero stops the walk. */
typedef int (*evr_record_fn)(const struct evr_record *rec, void *arg);

struct evr_flight_stats {
	size_t sz;
	uint64_t records; /* records handed out (LOST records included) */
	uint64_t overwritten; /* entries pushed out unread (overwrite mode), total */
	uint64_t lost; /* writes refused for want of room, total */
	uint64_t written; /* records committed, total (as published by the writer) */
	uint64_t pages; /* pages read */
	uint64_t bad; /* pages or records rejected as corrupt */
	uint64_t missed; /* snapshot/recover: entries lost before the oldest page returned */
	uint64_t rings; /* recover: flight rings found */
};

/**
 * evr_flight_snapshot() - every committed record still in the ring, oldest first, without
 * stopping or disturbing the writer and without consuming: pages are copied newest first and
 * each kept only if the writer did not reuse it during the copy. Records not yet read in the
 * reader's page come first. Allocates a copy of the ring (once per handle).
 * Return: records handed to @fn, or -EINVAL, -ENOMEM.
 */
EVR_API int evr_flight_snapshot(struct evr_flight *f, evr_record_fn fn, void *arg,
				struct evr_flight_stats *st);

/**
 * evr_flight_recover() - post-mortem: walk the bytes of a whole session (@image, @len: a copy
 * or a read-only mapping, e.g. of a named session whose writer died) and hand out every
 * committed record still in each flight ring, oldest first, ring by ring (evr_record.ring).
 * Trusts nothing in @image; never reads outside it.
 * Return: records handed to @fn, or -EINVAL, -EBADMSG (not a session), -ENOMEM.
 */
EVR_API int evr_flight_recover(const void *image, size_t len, evr_record_fn fn, void *arg,
			       struct evr_flight_stats *st);

/* Counters of one ring, read from the shared page. */
EVR_API int evr_flight_get_stats(const struct evr_flight *f, struct evr_flight_stats *st);

/* ---------------------------------------------------------------------------------------- */
/* Channels: a set of rings with one policy, in a session; records carry timestamps */

#define EVR_CHAN_SHARED 1u /* one multi-producer ring */
#define EVR_CHAN_PERCPU 2u /* one multi-producer ring per CPU, chosen by sched_getcpu() */
#define EVR_CHAN_THREAD 3u /* one single-writer ring per thread (slots) + a shared fallback */

struct evr_chan_opts {
	size_t sz;
	const char *name; /* as evr_session_opts.name */
	uint32_t policy; /* EVR_CHAN_* */
	uint32_t nr_slots; /* EVR_CHAN_THREAD: thread slots (0: 64); others: ignored */
	uint64_t data_size; /* per ring */
};

struct evr_chan;

/**
 * evr_chan_create() - create a channel (and the session behind it).
 * Context: allocates; not async-signal-safe.
 * Return: 0, -EINVAL, or as evr_session_create().
 */
EVR_API int evr_chan_create(const struct evr_chan_opts *opts, struct evr_chan **out);

/**
 * evr_chan_open() / evr_chan_open_fd() - map a channel made by another process.
 * @flags: EVR_SESSION_READER and/or EVR_SESSION_WRITER.
 * Return: as evr_session_open(); -EPROTO if the session is not a channel.
 */
EVR_API int evr_chan_open(const char *name, uint32_t flags, struct evr_chan **out);
EVR_API int evr_chan_open_fd(int fd, uint32_t flags, struct evr_chan **out);

/* Unmap (close) or also unlink a name this handle created (destroy). No writer may be running. */
EVR_API void evr_chan_close(struct evr_chan *ch);
EVR_API int evr_chan_destroy(struct evr_chan *ch);
EVR_API struct evr_session *evr_chan_get_session(const struct evr_chan *ch);

/**
 * evr_chan_write() - write one timestamped event, whatever the channel's policy.
 *
 * Per-thread channels: a thread's first write claims a free slot (cmpxchg, no malloc, no lock,
 * so it may happen in a signal handler); the slot is orphaned when the thread exits and
 * recycled by the reader once drained; after fork() the child claims its own. With no slot
 * left, the write goes to the shared fallback ring and is counted (never dropped silently).
 *
 * Context: async-signal-safe, lock-free; no system call except a thread's first write
 * (gettid) on per-thread channels.
 * Return: as evr_ring_write().
 */
EVR_API int evr_chan_write(struct evr_chan *ch, uint32_t id, const void *data, size_t len);

/**
 * evr_chan_flush() - emit pending LOST records and wake a waiting reader: on a per-thread
 * channel for the caller's slot and the shared fallback, otherwise for every ring. A thread's
 * slot is also flushed when the thread exits.
 * Context: async-signal-safe; per-thread channels: the writing thread.
 * Return: LOST records written (>= 0), -EINVAL, -ENOSPC if one did not fit.
 */
EVR_API int evr_chan_flush(struct evr_chan *ch);

/* evr_chan_reader_opts.flags */
#define EVR_CHAN_READ_UNORDERED 0x1u /* ring by ring, zero-copy, no merge */

struct evr_chan_reader_opts {
	size_t sz;
	uint32_t flags;
	uint32_t pad;
	uint64_t window_ns; /* merge window: hold records this long to sort them (0: 1 ms) */
	uint64_t buffer_bytes; /* records held for merging at most (0: 4 MiB) */
};

struct evr_chan_reader;

/**
 * evr_chan_reader_create() - the channel's single reader: records of all its rings, merged in
 * timestamp order within a bounded window; a record arriving later than the window is still
 * delivered, and counted as late.
 * Return: 0, -EINVAL, -ENOMEM.
 */
EVR_API int evr_chan_reader_create(struct evr_chan *ch, const struct evr_chan_reader_opts *opts,
				   struct evr_chan_reader **out);
EVR_API void evr_chan_reader_destroy(struct evr_chan_reader *crd);

/**
 * evr_chan_reader_next() - the next record, or 0 if none is due yet.
 * @drain: deliver everything held, ignoring the window (at the end of a recording).
 * The record is valid until the next call.
 * Return: 1, 0, or -EBADMSG (a ring was corrupt: skipped and counted).
 */
EVR_API int evr_chan_reader_next(struct evr_chan_reader *crd, struct evr_record *rec, bool drain);

struct evr_chan_stats {
	size_t sz;
	uint64_t records;
	uint64_t lost; /* sum of LOST records */
	uint64_t late; /* delivered after a record with a later timestamp */
	uint64_t bad; /* corrupt ring batches */
	uint64_t fallback_writes; /* per-thread: writes that found no slot */
	uint64_t recycled; /* per-thread: slots recycled after their thread exited */
	uint32_t slots_owned; /* per-thread: slots now owned by a thread */
	uint32_t pad;
	uint64_t dropped; /* records the merged reader could not hold (out of memory) */
};

EVR_API int evr_chan_reader_get_stats(const struct evr_chan_reader *crd, struct evr_chan_stats *st);

/**
 * evr_clock_now() - the timestamp clock in CLOCK_MONOTONIC nanoseconds (TSC-based where the CPU
 * has an invariant TSC, calibrated once per process).
 * Context: any, async-signal-safe after the first call.
 */
EVR_API uint64_t evr_clock_now(void);

/**
 * evr_clock_to_ns() - convert a raw record stamp with the conversion published in @ctrl
 * (time_zero, time_mult, time_shift, as perf's mmap page).
 */
EVR_API uint64_t evr_clock_to_ns(const struct evr_ctrl *ctrl, uint64_t stamp);

/* Library version string, "MAJOR.MINOR.PATCH". */
EVR_API const char *evr_version_string(void);

/* A short text for an evring -errno, like strerror but never touching errno. */
EVR_API const char *evr_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* EVRING_H */
