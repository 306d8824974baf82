/* SPDX-License-Identifier: MIT */
/*
 * LTTng-UST tracepoint provider for bench/w1-ts.c: one event, evring_bench:rec, whose field is
 * the payload bytes as a CTF sequence (u16 length + bytes), so one event serves every payload
 * size as one evr_chan_write() does. LTTng-UST 2.13 API (LTTNG_UST_* names; the pre-2.13
 * TRACEPOINT_EVENT/ctf_sequence spellings map onto these). w1-ts.c defines
 * LTTNG_UST_TRACEPOINT_CREATE_PROBES and LTTNG_UST_TRACEPOINT_DEFINE before including this, so
 * the probe is built into the benchmark binary (link with -llttng-ust -ldl).
 */
#undef LTTNG_UST_TRACEPOINT_PROVIDER
#define LTTNG_UST_TRACEPOINT_PROVIDER evring_bench

/*
 * Re-included by <lttng/tracepoint-event.h>, which looks it up from its own directory and then
 * the -I paths: the Makefile passes -Iinclude, and include/../bench is this directory.
 */
#undef LTTNG_UST_TRACEPOINT_INCLUDE
#define LTTNG_UST_TRACEPOINT_INCLUDE "../bench/lttng-tp.h"

#if !defined(EVR_BENCH_LTTNG_TP_H) || defined(LTTNG_UST_TRACEPOINT_HEADER_MULTI_READ)
#define EVR_BENCH_LTTNG_TP_H

#include <stdint.h>

#include <lttng/tracepoint.h>

LTTNG_UST_TRACEPOINT_EVENT(evring_bench, rec,
			   LTTNG_UST_TP_ARGS(const uint8_t *, buf, uint16_t, len),
			   LTTNG_UST_TP_FIELDS(lttng_ust_field_sequence(uint8_t, payload, buf,
									uint16_t, len)))

#endif /* EVR_BENCH_LTTNG_TP_H */

#include <lttng/tracepoint-event.h>
