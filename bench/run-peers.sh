#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs the peer comparisons of a build and prints their BENCH lines (median over rounds, via
# bench/report) and RATIO lines; diagnostics go to stderr.
#
# Usage: bench/run-peers.sh [O]          O = the build directory (default: build)
#
#   W3  bench/w3-multi: two writers pinned to two cores, a reader thread, 1 MiB of rings,
#       every sequence number checked; Mrec/s. evring-shared/-percpu/-thread, ideal (two SPSC
#       rings), ideal-ts (the same, each record stamped with the TSC: informational), ck-mpsc
#       (Concurrency Kit ck_ring), urcu-wfcq (liburcu wfcqueue).
#   W1  bench/w1-ts: one thread, ns per timestamped event, buffer never full: evring-ts
#       (evr_chan_write, one-ring channel), evring-ts-thread, and lttng-ust (a tracepoint in an
#       ACTIVE LTTng session that this script sets up around the run).
#
# LTTng: if no session daemon answers, one is started (lttng-sessiond --daemonize --no-kernel)
# and killed at the end; LTTNG_HOME points at a private temporary directory that also holds the
# trace; the session, its channel (per-UID buffers, BENCH_LTTNG_SUBBUF x BENCH_LTTNG_NSUBBUF per
# CPU, discard mode) and the event rule evring_bench:* exist only for the run. Everything is
# undone on exit, failure or signal (trap). Without the lttng tools, W1 runs without a session
# and lttng-ust is skipped.
#
# Knobs (environment; defaults in brackets, BENCH_QUICK=1 values after the slash):
#   BENCH_QUICK=1          everything small (seconds)
#   BENCH_PEERS_ONLY       W3 or W1: run one only                               [both]
#   BENCH_PAYLOADS         W3 payload sizes                                      ["16 120 1000"]
#   BENCH_W1TS_PAYLOADS    W1 payload sizes                                      ["16 120"]
#   BENCH_W3_ROUNDS        W3 rounds                                             [11 / 3]
#   BENCH_W3_BYTES         W3 bytes of records per impl and round (both writers) [32 MiB / 4 MiB]
#   BENCH_W3_RING          W3 bytes of rings in all                              [1 MiB]
#   BENCH_W3_CPU_READER    pin the W3 reader to this CPU                         [unpinned]
#   BENCH_ROUNDS           W1 rounds                                             [15 / 3]
#   BENCH_W1TS_BYTES       W1 bytes of records per impl and round                [4 MiB / 1 MiB]
#   BENCH_LTTNG_SUBBUF     LTTng sub-buffer size                                 [4M]
#   BENCH_LTTNG_NSUBBUF    LTTng sub-buffers per CPU                             [8]
#   BENCH_CPU_WRITER, BENCH_CPU_READER   the two writer CPUs (W3), the writer CPU (W1) [0, 1]
#   BENCH_IMPLS            only these impls                                      [all]
#   BENCH_RAW=file         also keep the raw SAMPLE lines in file
set -eu

cd "$(dirname "$0")/.."

# The peers come from Debian; install what is missing (root only), then build their benchmarks.
need=
for p in libck-dev liburcu-dev liblttng-ust-dev lttng-tools; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need="$need $p"
done
if [ -n "$need" ]; then
	if [ "$(id -u)" -eq 0 ]; then
		echo "bench: installing$need" >&2
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $need; } >&2 || echo "bench: could not install$need" >&2
	else
		echo "bench: missing$need (not root: not installing)" >&2
	fi
fi
${MAKE:-make} --no-print-directory O="${1:-build}" "${1:-build}/bench/w3-multi" \
	"${1:-build}/bench/w1-ts" >&2 || true
O=${1:-build}
only=${BENCH_PEERS_ONLY:-}

for b in w3-multi w1-ts report; do
	if [ ! -x "$O/bench/$b" ]; then
		echo "bench: $O/bench/$b is missing: build it with make O=$O bench" >&2
		exit 1
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/evring-peers.XXXXXX")
samples=$tmp/samples
: >"$samples"
session=
sessiond_pid=

cleanup() {
	set +e
	if [ -n "$session" ]; then
		lttng stop "$session" >/dev/null 2>&1
		lttng destroy "$session" >/dev/null 2>&1
	fi
	if [ -n "$sessiond_pid" ]; then
		kill "$sessiond_pid" 2>/dev/null
		i=0
		while kill -0 "$sessiond_pid" 2>/dev/null && [ "$i" -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -9 "$sessiond_pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Set up an active LTTng session for the evring_bench provider; 0 on success.
lttng_setup() {
	command -v lttng >/dev/null 2>&1 && command -v lttng-sessiond >/dev/null 2>&1 || {
		echo "bench: lttng tools not found: no lttng-ust figures" >&2
		return 1
	}
	LTTNG_HOME=$tmp/home
	export LTTNG_HOME
	mkdir -p "$LTTNG_HOME"
	if ! lttng list >/dev/null 2>&1; then
		# our own daemon; its pid file lives in the run directory (root: /var/run/lttng)
		if [ "$(id -u)" = 0 ]; then
			rundir=${LTTNG_RUNDIR:-/var/run/lttng}
		else
			rundir=${LTTNG_RUNDIR:-$LTTNG_HOME/.lttng}
		fi
		lttng-sessiond --daemonize --no-kernel >&2 || {
			echo "bench: lttng-sessiond failed to start" >&2
			return 1
		}
		sessiond_pid=$(cat "$rundir/lttng-sessiond.pid" 2>/dev/null || true)
		if [ -z "$sessiond_pid" ]; then
			echo "bench: started lttng-sessiond but found no pid in $rundir" >&2
			return 1
		fi
		echo "bench: started lttng-sessiond (pid $sessiond_pid)" >&2
	else
		echo "bench: using the lttng-sessiond already running" >&2
	fi
	s=evring-bench-$$
	lttng create "$s" --output="$tmp/trace" >&2 || return 1
	session=$s
	lttng enable-channel -u -s "$s" --buffers-uid --subbuf-size="${BENCH_LTTNG_SUBBUF:-4M}" \
		--num-subbuf="${BENCH_LTTNG_NSUBBUF:-8}" benchch >&2 || return 1
	lttng enable-event -u -s "$s" -c benchch 'evring_bench:*' >&2 || return 1
	lttng start "$s" >&2 || return 1
}

# Stop the session and say how many events LTTng dropped (W1 figures assume none).
lttng_teardown() {
	lttng stop "$session" >/dev/null 2>&1 || true
	discarded=$(lttng list "$session" -u 2>/dev/null | awk '/Discarded events:/ {s += $3} END {print s + 0}')
	echo "bench: W1 lttng-ust: session $session discarded $discarded events" >&2
	echo "bench: W1 lttng-ust: trace written: $(du -sh "$tmp/trace" 2>/dev/null | cut -f1)" >&2
	lttng destroy "$session" >/dev/null 2>&1 || true
	session=
}

case "$only" in "" | W3)
	"$O/bench/w3-multi" >>"$samples"
	;;
esac

case "$only" in "" | W1)
	w1p=${BENCH_W1TS_PAYLOADS:-16 120}
	if lttng_setup; then
		BENCH_PAYLOADS=$w1p "$O/bench/w1-ts" >>"$samples"
		lttng_teardown
	else
		echo "bench: no LTTng session: W1 lttng-ust skipped" >&2
		if [ -n "$session" ]; then lttng destroy "$session" >/dev/null 2>&1 || true; session=; fi
		BENCH_PAYLOADS=$w1p "$O/bench/w1-ts" >>"$samples"
	fi
	;;
esac

if [ -n "${BENCH_RAW:-}" ]; then
	cp "$samples" "$BENCH_RAW"
fi
"$O/bench/report" <"$samples" >"$tmp/bench"
grep '^BENCH' "$tmp/bench" || true

# Ratios of medians. W3: evring-shared against the best peer (ck-mpsc, urcu-wfcq), evring-thread
# against ideal. W1: LTTng's cost over evring's.
awk '
function val(line, k,    n, a, i) {
	n = split(line, a, " ")
	for (i = 1; i <= n; i++)
		if (index(a[i], k "=") == 1)
			return substr(a[i], length(k) + 2)
	return ""
}
/^BENCH/ {
	w = val($0, "workload"); im = val($0, "impl"); p = val($0, "payload")
	v[w, im, p] = val($0, "value") + 0
	if (!((w, p) in seen)) { seen[w, p] = 1; order[++n] = w SUBSEP p }
}
END {
	for (i = 1; i <= n; i++) {
		split(order[i], k, SUBSEP); w = k[1]; p = k[2]
		if (w == "W3") {
			best = ""; bv = 0
			if ((w, "ck-mpsc", p) in v) { best = "ck-mpsc"; bv = v[w, "ck-mpsc", p] }
			if ((w, "urcu-wfcq", p) in v && v[w, "urcu-wfcq", p] > bv) {
				best = "urcu-wfcq"; bv = v[w, "urcu-wfcq", p]
			}
			if (best != "" && bv > 0) {
				for (j = 0; j < 3; j++) {
					e = j == 0 ? "evring-shared" : j == 1 ? "evring-percpu" : "evring-thread"
					if (!((w, e, p) in v))
						continue
					note = (j == 0 && p == 16) ? "target >= 1.5" : "info"
					printf "RATIO W3 payload=%s %s/%s=%.2f (%s)\n", p, e, best,
						v[w, e, p] / bv, note
				}
			}
			if ((w, "evring-thread", p) in v && v[w, "ideal", p] > 0)
				printf "RATIO W3 payload=%s evring-thread/ideal=%.2f (target >= 0.8)\n", p,
					v[w, "evring-thread", p] / v[w, "ideal", p]
			if ((w, "evring-thread", p) in v && v[w, "ideal-ts", p] > 0)
				printf "RATIO W3 payload=%s evring-thread/ideal-ts=%.2f (info)\n", p,
					v[w, "evring-thread", p] / v[w, "ideal-ts", p]
			if ((w, "ideal-ts", p) in v && v[w, "ideal", p] > 0)
				printf "RATIO W3 payload=%s ideal-ts/ideal=%.2f (info)\n", p,
					v[w, "ideal-ts", p] / v[w, "ideal", p]
		}
		if (w == "W1" && (w, "lttng-ust", p) in v && v[w, "evring-ts", p] > 0)
			printf "RATIO W1 payload=%s lttng-ust/evring-ts=%.2f (target >= 5)\n", p,
				v[w, "lttng-ust", p] / v[w, "evring-ts", p]
	}
}' "$tmp/bench"
