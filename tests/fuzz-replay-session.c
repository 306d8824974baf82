// SPDX-License-Identifier: MIT
/*
 * Replays fuzz/session-open.c under gcc: its seed corpus, mutations of it, and random objects,
 * so `make check` (and its sanitizer builds) runs the fuzz target without libFuzzer.
 */
#include "../fuzz/session-open.c"

#define REPLAY_NAME "fuzz-replay-session"
#define CORPUS "fuzz/corpus/session-open"
#include "replay-main.h"
