/* SPDX-License-Identifier: MIT */
/*
 * A channel handle's private state, shared by chan.c (writers) and chanread.c (the reader).
 * Immutable after creation except the registry link (under chan.c's registry lock).
 */
#ifndef EVR_CHAN_H
#define EVR_CHAN_H

#include <pthread.h>

#include "internal.h"

struct evr_chan {
	struct evr_session *s;
	uint32_t policy; /* EVR_CHAN_* */
	uint32_t nr_rings;
	uint32_t nr_slots; /* per-thread: rings 0..nr_slots-1; ring nr_slots is the fallback */
	int owner; /* created here: destroy unlinks a name */
	int rdonly; /* opened without EVR_SESSION_WRITER */
	struct evr_ring **rings; /* the session's handles */
	const struct evr_clock_params *clk;
	pthread_key_t key; /* per-thread: the slot this thread owns, released at thread exit */
	int key_ok;
	uint64_t serial; /* unique per handle in this process: validates TLS caches */
	struct evr_chan *next; /* registry, for fork */
};

#endif
