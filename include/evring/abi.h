/* SPDX-License-Identifier: MIT */
/*
 * evring shared-memory layout: the control page of a ring and the record formats.
 * Everything here is read by processes that do not trust each other; every field names its one
 * writer and how it is published. A reader or writer bounds-checks every value it reads here.
 */
#ifndef EVRING_ABI_H
#define EVRING_ABI_H

#include <stdint.h>

/*
 * Record header: bit for bit struct perf_event_header, so that kernel perf streams and evring
 * streams can be read by one parser. @size covers the whole record, header included, and is a
 * multiple of 8.
 */
struct evr_record_header {
	uint32_t type;
	uint16_t misc;
	uint16_t size;
};

#define EVR_RECORD_ALIGN 8u
#define EVR_RECORD_MAX 65528u /* largest multiple of 8 that fits the u16 size */
#define EVR_PAYLOAD_MAX (EVR_RECORD_MAX - (uint32_t)sizeof(struct evr_record_header))

/*
 * Record types. 1..63 are the kernel's (PERF_RECORD_*), 64..0xffff the perf tool's synthesized
 * ones; evring stays out of both. Application events take EVR_TYPE_APP + id, id < 2^30.
 */
#define EVR_TYPE_LOST 2u /* = PERF_RECORD_LOST; evring's body extends the kernel's */
#define EVR_TYPE_PAD 0x40000000u /* filler: skipped by readers, carries nothing */
#define EVR_TYPE_APP 0x80000000u
#define EVR_APP_ID_MAX 0x3fffffffu

/*
 * misc, for evring's own types (EVR_TYPE_APP + id, EVR_TYPE_PAD): the low three bits count the
 * padding bytes after the payload, so the exact payload length is size - 8 - pad.
 */
#define EVR_MISC_PAD_MASK 0x7u
/* misc bit that marks a LOST record as written by evring (body = struct evr_lost_body) */
#define EVR_MISC_EVRING 0x0800u
/* evring types: the body starts with a u64 timestamp (clock of the ring: see time_* fields) */
#define EVR_MISC_TIME 0x1000u
/*
 * Multi-producer rings only: a header with BUSY is reserved but not committed (the reader stops
 * there); DISCARD marks a reservation given back (the reader skips it).
 */
#define EVR_MISC_BUSY 0x8000u
#define EVR_MISC_DISCARD 0x4000u

/* Causes of loss, one bit each in evr_lost_body.causes and one counter each in the page. */
#define EVR_LOST_FULL 0x1u /* discard mode, no room: -ENOSPC */
#define EVR_LOST_PAUSED 0x2u /* a reader paused the ring */
#define EVR_LOST_OVERWRITTEN 0x4u /* flight rings, overwrite mode: a page pushed out unread */

/*
 * Body of a LOST record. The first two fields are the kernel's (id, lost); a kernel reader that
 * knows only those sees a valid PERF_RECORD_LOST.
 */
struct evr_lost_body {
	uint64_t id; /* ring id (evr_ctrl.ring_id) */
	uint64_t lost; /* records lost since the previous LOST record of this ring */
	uint64_t first_pos; /* writer position when the first of them was lost */
	uint64_t last_pos; /* ... and the last */
	uint32_t causes; /* EVR_LOST_* bits */
	uint32_t reserved; /* zero */
};

#define EVR_CTRL_MAGIC 0x31474e4952525645ull /* "EVRRING1" */
#define EVR_ABI_VERSION 1u
#define EVR_ABI_COMPAT 1u /* oldest version a reader of this layout understands */

/* evr_ctrl.kind */
#define EVR_KIND_SPSC 1u /* the single-writer (perf) ring */
#define EVR_KIND_MPSC 2u /* the multi-producer ring (src/mpsc.c) */
#define EVR_KIND_FLIGHT 3u /* the flight recorder: ftrace's page ring (src/flight.c) */

/* evr_ctrl.flags */
#define EVR_CTRL_BACKWARD 0x1u /* overwrite mode, records written toward lower addresses */
#define EVR_CTRL_MIRROR 0x2u /* data area mapped twice back to back */
#define EVR_CTRL_OVERWRITE 0x4u /* flight rings: overwrite (flight-recorder) mode */
#define EVR_CTRL_STAMP 0x8u /* flight rings: every record carries a timestamp */
/* flight rings: log2 of the page size, in bits 16..23 (of evr_ctrl.flags and the entry flags) */
#define EVR_CTRL_PAGE_SHIFT(flags) (((flags) >> 16) & 0xffu)
#define EVR_CTRL_PAGE_SHIFT_MASK 0xff0000u

/*
 * The control page. Bytes 0..1087 are laid out exactly as struct perf_event_mmap_page (checked
 * against <linux/perf_event.h> in src/ring.c); evring's fields follow in the same page.
 *
 * Writers of each field: C = creator (before anyone else maps the page), W = the writer context,
 * R = the reader. "release" and "acquire" name the ordering that publishes a field; see
 * docs/ordering.md for the pairs.
 */
struct evr_ctrl {
	/* --- struct perf_event_mmap_page --- */
	uint32_t version; /* C: 0, as the kernel writes */
	uint32_t compat_version; /* C: 0 */
	uint32_t lock; /* unused by evring (perf's seqlock for the counter fields) */
	uint32_t index;
	int64_t offset;
	uint64_t time_enabled;
	uint64_t time_running;
	uint64_t capabilities;
	uint16_t pmc_width;
	uint16_t time_shift; /* C: TSC -> ns conversion, as perf (set by clocks, later issues) */
	uint32_t time_mult;
	uint64_t time_offset;
	uint64_t time_zero;
	uint32_t size;
	uint32_t reserved_1;
	uint64_t time_cycles;
	uint64_t time_mask;
	uint8_t reserved[116 * 8];
	uint64_t data_head; /* W: store-release (B), pairs with the reader's acquire (C) */
	uint64_t data_tail; /* R: store-release (D), pairs with the writer's acquire (A) */
	uint64_t data_offset; /* C: offset of the data area from the page start */
	uint64_t data_size; /* C: power of two */
	uint64_t aux_head;
	uint64_t aux_tail;
	uint64_t aux_offset;
	uint64_t aux_size;
	/* --- evring, byte 1088 --- */
	uint64_t magic; /* C: EVR_CTRL_MAGIC */
	uint32_t evr_version; /* C: EVR_ABI_VERSION */
	uint32_t evr_compat; /* C: EVR_ABI_COMPAT */
	uint32_t kind; /* C: EVR_KIND_* */
	uint32_t flags; /* C: EVR_CTRL_* */
	uint64_t ring_id; /* C */
	int32_t writer_pid; /* W: plain store when a writer context binds, informational */
	int32_t writer_tid; /* W: idem */
	uint8_t pad0[128 - 40];

	/* byte 1216: written only by the reader */
	uint32_t paused; /* R: set/cleared by evr_ring_set_paused(); W reads it per record */
	uint32_t disabled; /* R: nonzero stops every write (-ESHUTDOWN): a kill switch */
	uint32_t reader_waiting; /* R: EVR_WAITING_* bits; store, then full barrier (wakeups) */
	uint32_t reader_pid; /* R: informational */
	uint64_t watermark; /* R: wake the reader when this many bytes are unread; 0 = half */
	uint8_t pad1[64 - 24];

	/* byte 1280: written only by the writer context, read by anyone */
	uint32_t nest; /* W: nesting depth; a pausing reader waits for 0 (after membarrier) */
	uint32_t writer_flags; /* W: EVR_WRITER_*, plain store when a writer context binds */
	uint64_t lost_full; /* W: records lost for want of room (total, monotonic) */
	uint64_t lost_paused; /* W: records refused while paused */
	uint64_t err_msgsize; /* W: -EMSGSIZE returns */
	uint64_t err_nest; /* W: -EDEADLK returns */
	uint64_t err_shutdown; /* W: -ESHUTDOWN returns */
	uint32_t wake_seq; /* W: futex word; incremented (release) before each FUTEX_WAKE */
	uint32_t flush_seq; /* W: incremented by evr_ring_flush(); a waiting reader returns */
	uint64_t wakeups; /* W: futex wakes issued */

	/* byte 1344: multi-producer rings only, written by any writer with atomic RMW */
	uint64_t prod_head; /* next byte to reserve: cmpxchg (relaxed; see mpsc.c) */
	uint64_t mp_lost; /* records lost since the last LOST record: fetch_add / xchg */
	uint64_t mp_wake_tail; /* data_tail at the last wake check: any writer, relaxed store */
	uint64_t mp_woke_tail; /* data_tail at the last wakeup issued: any writer, relaxed */
	uint64_t mp_woke_wm; /* ... and the watermark then */
	uint64_t mp_tail_cache; /* a data_tail a writer loaded: release store, acquire load */
	uint8_t pad3[64 - 48];

	/* byte 1408: channel slots (src/chan.c); RMW by writers claiming/leaving and the reader */
	uint32_t slot_state; /* EVR_SLOT_*: cmpxchg FREE->OWNED (writer), ORPHAN->FREE (reader) */
	uint32_t slot_gen; /* bumped at each claim */
	uint64_t fallback_writes; /* shared ring of a per-thread channel: writes without a slot */
	uint8_t reserved_2[64 - 16];
};

/* evr_ctrl.slot_state */
#define EVR_SLOT_FREE 0u
#define EVR_SLOT_OWNED 1u
#define EVR_SLOT_ORPHAN 2u

/* evr_ctrl.writer_flags */
#define EVR_WRITER_SELF_FENCE 0x1u /* the writer's process could not register for membarrier */

/* evr_ctrl.reader_waiting */
#define EVR_WAITING_FUTEX 0x1u /* blocked (or about to block) in evr_reader_wait() */
#define EVR_WAITING_POLL 0x2u /* an in-process poll fd is armed */

/*
 * The flight recorder ring (EVR_KIND_FLIGHT): ftrace's lockless page ring. Its area in a
 * session, from the control page on:
 *
 *   | evr_ctrl + evr_flight_ctrl (at byte 2048) | descriptors, page-rounded | pages ... |
 *
 * nr_pages pages of page_size bytes: nr_pages - 1 of them form the ring, one is the reader's
 * spare. Pages are linked by index in their descriptors, never by pointer; the two low bits of
 * a link are flags: HEAD says the page it points to is the oldest page of the ring, UPDATE that
 * a writer is pushing that page out. Records never cross a page; each page starts with
 * struct evr_flight_page. See docs/design.md section 19 and docs/ordering.md.
 */
#define EVR_FL_NORMAL 0u
#define EVR_FL_HEAD 1u
#define EVR_FL_UPDATE 2u
#define EVR_FL_MASK 3u
#define EVR_FL_LINK(idx, flag) (((uint32_t)(idx) << 2) | (flag))
#define EVR_FL_TARGET(link) (((link) >> 2) & 0x1ffffu)
/*
 * Bits 19..31 of a link: a tag the reader changes each time it rewrites the link, so that a
 * writer's cmpxchg prepared on an older value of the link cannot succeed on a new one that
 * happens to name the same page with the same flag (ABA).
 */
#define EVR_FL_TAG_SHIFT 19
#define EVR_FL_TAG_MASK 0xfff80000u
#define EVR_FL_NEXT_TAG(link) (((link) + (1u << EVR_FL_TAG_SHIFT)) & EVR_FL_TAG_MASK)

#define EVR_FLIGHT_CTRL_OFFSET 2048u
#define EVR_FLIGHT_PAGE_MIN 256u
#define EVR_FLIGHT_PAGE_MAX 65536u
#define EVR_FLIGHT_PAGES_MIN 2u /* ring pages, the spare not counted */
#define EVR_FLIGHT_PAGES_MAX 65536u

struct evr_flight_ctrl {
	/* C: the geometry, checked against the directory by every process that maps it */
	uint32_t page_size; /* C: bytes per page, header included; power of two */
	uint32_t nr_pages; /* C: ring pages + 1 */
	uint64_t desc_offset; /* C: of the descriptors, from the control page */
	uint64_t pages_offset; /* C: of page 0, from the control page */
	uint8_t pad0[64 - 24];

	/* written by the writer context (its own copies are private; these are published) */
	uint32_t tail; /* W: page being reserved on (relaxed store, informational) */
	uint32_t commit_page; /* W: page the outermost commit reached: store-release */
	uint64_t overrun; /* W: entries pushed out unread (overwrite mode): store-release */
	uint64_t lost; /* W: writes refused for want of room: store-release */
	uint64_t written; /* W: records committed, published at each outermost commit */
	uint64_t err_msgsize; /* W: -EMSGSIZE returns */
	uint64_t err_nest; /* W: -EDEADLK returns */
	uint64_t err_corrupt; /* W: writes refused because a link or index was out of range */
	/*
	 * W: pushes of the head page: bits 0-7 the writer levels inside one now, bits 8-63 how
	 * many have begun. Raised before a push touches a link, lowered (release) after its last;
	 * the reader trusts the first HEAD it meets only if no push was in flight or began while
	 * it looked (docs/ordering.md F6).
	 */
	uint64_t pushing;

	/* written by the reader */
	uint32_t reader_page; /* R: the page the reader owns (outside the ring) */
	uint32_t head_hint; /* R: where the reader last found the head */
	uint64_t read; /* R: records delivered (informational) */
	uint64_t seen_overrun; /* R: overrun as of the reader's last swap (a new reader resumes) */
	uint64_t seen_lost; /* R: lost, idem */
	uint8_t pad2[64 - 32];
};

struct evr_flight_desc {
	uint32_t link; /* W and R, cmpxchg: next page << 2 | EVR_FL_* */
	uint32_t prev; /* R: previous page in the ring (the reader keeps it) */
	uint32_t read; /* R: bytes consumed of this page while it is the reader's */
	uint32_t reserved;
	/*
	 * W: 1 + the sequence of the page before, stored (release, after commit is reset) when the
	 * tail moves onto the page; 0 if never written. The pages holding data carry consecutive
	 * sequences, oldest to newest, so a snapshot can tell a page that was rewritten under it.
	 */
	uint64_t seq;
	/*
	 * R: the sequence the page had when the reader last took it (store-release). When the
	 * writer's tail moves onto a page whose entries were never taken, they are counted as
	 * overwritten.
	 */
	uint64_t taken;
};

struct evr_flight_page {
	uint64_t time_stamp; /* W: stamp of the page's first record (the ring's clock) */
	uint64_t commit; /* W: committed bytes after this header: store-release, outermost only */
	uint64_t missed; /* W: entries pushed out unread just before this page, when it became
			    the head; 0 otherwise */
	uint64_t reserved;
};

/*
 * A session: one shared-memory object (memfd or POSIX shm) holding a directory and rings.
 *
 *   0                  dir_size              ring 0                ring 1
 *   | evr_session_hdr + entries[] | ctrl page | data ... | ctrl page | data ... |
 *
 * The creator writes everything, then the magic last (release); an attacher that finds no magic
 * is early (-EAGAIN). Every offset and size below is checked against the object's real size by
 * every process that maps it.
 */
#define EVR_SESSION_MAGIC 0x314e4f4953535645ull /* "EVSSION1" */
#define EVR_SESSION_VERSION 1u
#define EVR_SESSION_COMPAT 1u
#define EVR_SESSION_MAX_RINGS 4096u

struct evr_session_entry {
	uint32_t kind; /* EVR_KIND_* */
	uint32_t flags; /* EVR_CTRL_* */
	uint64_t offset; /* of the ring's control page, page aligned */
	uint64_t data_size; /* power of two, >= page size */
	uint64_t ring_id;
};

struct evr_session_hdr {
	uint64_t magic; /* C: EVR_SESSION_MAGIC, stored last with release */
	uint32_t version; /* C: EVR_SESSION_VERSION */
	uint32_t compat; /* C: oldest version whose readers understand this layout */
	uint64_t size; /* C: bytes in the object */
	uint64_t created_ns; /* C: CLOCK_REALTIME at creation */
	int32_t creator_pid; /* C */
	uint32_t page_size; /* C: the creator's page size */
	uint32_t nr_rings; /* C: entries in use */
	uint32_t dir_size; /* C: bytes of header + entries, page multiple */
	uint32_t chan_policy; /* C: EVR_CHAN_* if the session is a channel, else 0 */
	uint8_t reserved[64 - 52];
	struct evr_session_entry entries[]; /* C */
};

#endif /* EVRING_ABI_H */
