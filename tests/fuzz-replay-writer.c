// SPDX-License-Identifier: MIT
/*
 * Replays fuzz/writer-ctrl.c under gcc: its seed corpus, mutations of it, and random op streams,
 * so `make check` (and its sanitizer builds) runs the fuzz target without libFuzzer.
 */
#include "../fuzz/writer-ctrl.c"

#define REPLAY_NAME "fuzz-replay-writer"
#define CORPUS "fuzz/corpus/writer-ctrl"
#include "replay-main.h"
