// SPDX-License-Identifier: MIT
/*
 * Replays fuzz/flight-recover.c under gcc: its seed corpus (real sessions with flight rings),
 * mutations of it, and random bytes, so `make check` (and its sanitizer builds) runs the fuzz
 * target without libFuzzer.
 */
#include "../fuzz/flight-recover.c"

#define REPLAY_NAME "fuzz-replay-flight"
#define CORPUS "fuzz/corpus/flight-recover"
#include "replay-main.h"
