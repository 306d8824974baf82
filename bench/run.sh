#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs the benchmarks of a build (make bench: bench/run.sh $(O)) and prints one BENCH line per
# figure, then the RATIO lines; build chatter and diagnostics go to stderr.
#
# Usage: bench/run.sh [O]          O = the build directory (default: build)
#
# Workloads (all figures are medians over rounds; implementations are interleaved round-robin
# within every round, the starting one rotating, after one unreported warm-up round):
#   W1  writer cost, ns/rec: one thread (pinned to BENCH_CPU_WRITER) writes a batch into a ring
#       that never fills, then drains it untimed (data_tail = data_head), and again; impls
#       evring (evr_ring_write, EVR_RING_MIRROR), ideal (bench/ideal.h: mirrored the same way,
#       write function noinline), memcpy-rec (header + payload into a flat buffer), and
#       evring-c11local (the library rebuilt with -DEVR_LOCAL_C11 in O/c11; its W1 runs
#       alternate with the default build's);
#       evring-flight-pc and evring-flight-ow (evr_flight_write on a flight session ring of
#       BENCH_W1_RING bytes in 4 KiB pages: produce/consume, its batch consumed untimed with
#       evr_flight_read; overwrite, nothing reads and the writer laps the ring). RATIO lines
#       compare both with evring of the same run (target <= 1.3).
#   W2  streaming, Mrec/s: writer on BENCH_CPU_WRITER, reader on BENCH_CPU_READER, a 1 MiB ring,
#       64 MiB of records; the reader checks every sequence number (no gaps, no tears); on
#       -ENOSPC the writer waits for room and retries, so no record is lost (the run fails if
#       one is). evring counts each refusal as lost and reports it in a LOST record before the
#       retried one; the reader checks those add up. Impls evring, ideal, and the flight ring:
#       evring-flight-pc (the same wait-and-retry stream through evr_flight_write/evr_flight_read)
#       and evring-flight-ow (overwrite mode, the writer never waits: evring-flight-ow is the
#       reader's rate in Mrec/s-read, evring-flight-ow-write the writer's, and
#       evring-flight-ow-overwritten the percentage of records overwritten unread). A flight
#       record missing without a LOST record, or read twice, is reported on stderr (WRONG) and
#       in the figure's unannounced= and reread= fields.
#   W2-paced  W2 again, the reader of every impl pausing about 1 us (BENCH_W2_PACED) each time
#       it finds nothing new, as a reader that waits when caught up does, instead of polling
#       again at once right behind the writer (W2). RATIO lines as for W2.
#
# Knobs (environment; defaults in brackets, BENCH_QUICK=1 values after the slash):
#   BENCH_QUICK=1       everything small, for CI smoke runs (seconds)
#   BENCH_PAYLOADS      payload sizes in bytes, multiples of 8       ["16 120 1000"]
#   BENCH_PASSES        W1 runs of each build, alternating           [3 / 1]
#   BENCH_ROUNDS        W1 rounds per run                            [21 / 3]
#   BENCH_W1_RING       W1 ring size in bytes                        [262144 / 65536]
#   BENCH_FLIGHT_PAGE   W1 flight ring page size in bytes (256-64K)  [4096]
#   BENCH_W1_FILL       W1 batch, percent of the ring (max 100)      [25]
#                       25 keeps unread bytes under evring's default watermark (half the
#                       ring), as with a reader that keeps up; 100 leaves more than a
#                       watermark unread (no cost of its own since the wake check looks at
#                       reader_waiting first)
#   BENCH_W1_BYTES      W1 bytes of records per impl and round      [16 MiB / 1 MiB]
#   BENCH_W2_ROUNDS     W2 rounds                                    [15 / 3]
#   BENCH_W2_ATTEMPTS   W2 runs per figure if preempted (see below) [3 / 1]
#   BENCH_W2_RING       W2 ring size in bytes                        [1 MiB / 1 MiB]
#   BENCH_W2_BYTES      W2 bytes of records per impl and round      [64 MiB / 4 MiB]
#   BENCH_W2_IDLE       W2 pause instructions of a reader that found nothing new, before
#                       it polls again (every in-process impl alike) [0]. 0 polls right
#                       behind the writer, the worst case for cache-line traffic
#   BENCH_W2_PACED      W2-paced: W2 run again with BENCH_W2_IDLE set to this, a reader
#                       that pauses when caught up (2000 pauses: about 1 us here); 0 skips
#                       it                                           [2000]
#   BENCH_W2_PACED_ROUNDS  W2-paced rounds                           [9 / 3]
#   BENCH_CPU_WRITER    CPU of the writer (W1, W2)                   [0]
#   BENCH_CPU_READER    CPU of the reader (W2)                       [1]
#   BENCH_NO_C11=1      skip the -DEVR_LOCAL_C11 build and its figure
#   BENCH_ONLY=W1|W2    run one workload only (W2 includes xproc); XPROC, WAKE, COMMIT too
#   BENCH_IMPLS         only these impls, e.g. "evring,ideal"       [all]
#   BENCH_RAW=file      also keep the raw SAMPLE lines (one per round) in file
# Pinning that fails (one CPU, a restricted cpuset) is reported on stderr and the figures say
# pinned=0.
#
# Noise: W1 times batches of one ring's worth of records (a few tens of microseconds each) and
# writes a batch again if the thread was preempted during it (getrusage ru_nivcsw), so other load
# on the machine costs time, not accuracy. A W2 run (tens of milliseconds, two threads) that was
# preempted is run again, up to BENCH_W2_ATTEMPTS runs, keeping the first clean one or else the
# fastest; stderr counts how often that happened.
#
# The binaries also run alone: O/bench/w1-write | O/bench/report
set -eu

cd "$(dirname "$0")/.."
O=${1:-build}
MAKE=${MAKE:-make}

if [ -n "${BENCH_QUICK:-}" ] && [ "${BENCH_QUICK}" != 0 ]; then
	passes=${BENCH_PASSES:-1}
	paced_rounds=${BENCH_W2_PACED_ROUNDS:-3}
else
	passes=${BENCH_PASSES:-3}
	paced_rounds=${BENCH_W2_PACED_ROUNDS:-9}
fi
only=${BENCH_ONLY:-}

for b in w1-write w2-stream report xproc wake; do
	if [ ! -x "$O/bench/$b" ]; then
		echo "bench: $O/bench/$b is missing: build it with make O=$O bench" >&2
		exit 1
	fi
done

samples=$(mktemp "${TMPDIR:-/tmp}/evring-bench.XXXXXX")
trap 'rm -f "$samples"' EXIT INT TERM

c11=
w1=0 w2=0
case "$only" in "" | W1) w1=1 ;; esac
case "$only" in "" | W2) w2=1 ;; esac
if [ "$w1" = 1 ] && [ "${BENCH_NO_C11:-0}" != 1 ]; then
	if $MAKE --no-print-directory O="$O/c11" CFLAGS=-DEVR_LOCAL_C11 "$O/c11/bench/w1-write" >&2
	then
		c11=$O/c11/bench/w1-write
	else
		echo "bench: the -DEVR_LOCAL_C11 build failed; no evring-c11local figures" >&2
	fi
fi

if [ "$w1" = 1 ]; then
	i=0
	while [ "$i" -lt "$passes" ]; do
		"$O/bench/w1-write" >>"$samples"
		if [ -n "$c11" ]; then
			"$c11" >>"$samples"
		fi
		i=$((i + 1))
	done
fi
if [ "$w2" = 1 ]; then
	"$O/bench/w2-stream" >>"$samples"
	# W2-paced: the same stream, the reader pausing when it finds nothing
	if [ "${BENCH_W2_PACED:-2000}" != 0 ]; then
		BENCH_W2_IDLE=${BENCH_W2_PACED:-2000} BENCH_W2_ROUNDS=$paced_rounds \
			"$O/bench/w2-stream" >>"$samples"
	fi
fi

if [ -n "${BENCH_RAW:-}" ]; then
	cp "$samples" "$BENCH_RAW"
fi
if [ -s "$samples" ]; then
	"$O/bench/report" <"$samples"
fi

# Sessions and wakeups (issue 3): W2 across processes against in-process, the wakeup latency,
# and the commit cost with no reader waiting. Each prints its own BENCH and RATIO lines.
case "$only" in
"" | W2 | XPROC) "$O/bench/xproc" 2>/dev/null | grep -E '^(BENCH|RATIO)' ;;
esac
case "$only" in
"" | WAKE | COMMIT) "$O/bench/wake" 2>/dev/null | grep -E '^(BENCH|RATIO)' ;;
esac

# Channels against the peers (issue 4): W3 with ck_ring and liburcu wfcqueue, W1 with
# timestamps against an LTTng-UST tracepoint in an active session (bench/run-peers.sh
# installs nothing: CI and users install libck-dev liburcu-dev liblttng-ust-dev lttng-tools).
case "$only" in
"" | W3 | PEERS) bench/run-peers.sh "$O" 2>/dev/null | grep -E '^(BENCH|RATIO)' ;;
esac
