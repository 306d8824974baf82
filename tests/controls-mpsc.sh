#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Must-fail controls of the multi-producer ring: mpsc-stress built with a deliberate bug must
# catch it.
#   controls-mpsc.sh <relaxed-commit binary (SAN=thread)> [<no-zero binary>]
# The relaxed-commit build (EVR_BROKEN_MPSC_RELAXED_COMMIT: the commit E is a relaxed store)
# must make ThreadSanitizer report a data race (exit 66); the no-zero build
# (EVR_BROKEN_MPSC_NO_ZERO: the reader publishes data_tail without zeroing what it consumed)
# must make the oracle fail (exit 1) on stale headers. CONTROL_SECONDS bounds each (default 30).
set -u
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 <relaxed-commit binary> [<no-zero binary>]" >&2
	exit 2
fi
budget=${CONTROL_SECONDS:-30}
missed=0

# run <label> <binary> <expected exit> <pattern that names the catch> [env...]
run() {
	local label=$1 bin=$2 want=$3 pattern=$4 log start ms rc why
	shift 4
	log=$(mktemp)
	start=$(date +%s%N)
	env EVR_STRESS_SECONDS="$budget" EVR_MPSC_SWEEP=0 "$@" timeout -k 5 $((budget + 60)) \
		"$bin" >"$log" 2>&1
	rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	why=$(grep -m 1 -E "$pattern" "$log" | sed 's/^ *//' | cut -c 1-160)
	if [ "$rc" -eq "$want" ] && [ -n "$why" ]; then
		printf 'control %s: caught (exit %d after %d.%03ds: %s)\n' "$label" "$rc" \
			$((ms / 1000)) $((ms % 1000)) "$why"
	else
		missed=1
		printf 'control %s: MISSED (exit %d after %d.%03ds, wanted exit %d matching /%s/)\n' \
			"$label" "$rc" $((ms / 1000)) $((ms % 1000)) "$want" "$pattern"
		sed 's/^/    /' "$log" | tail -n 20
	fi
	rm -f "$log"
}

if [ -x "$1" ]; then
	run mpsc-relaxed-commit "$1" 66 'WARNING: ThreadSanitizer: data race' \
		TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS }halt_on_error=1 exitcode=66"
else
	echo "control mpsc-relaxed-commit: MISSED (no binary $1)"
	missed=1
fi
if [ $# -eq 2 ]; then
	if [ -x "$2" ]; then
		run mpsc-no-zero "$2" 1 'mpsc-stress: FAIL'
	else
		echo "control mpsc-no-zero: MISSED (no binary $2)"
		missed=1
	fi
fi
exit $missed
