#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Must-fail controls: run ring-stress built with a deliberate bug and require that it is caught.
#   controls.sh <nest-order binary> <relaxed-head binary (SAN=thread)>
# The nest-order build must exit 1 with data_head seen going backwards; the relaxed-head build must
# make ThreadSanitizer report a race (exit 66). CONTROL_SECONDS bounds each (default 30).
set -u
if [ $# -ne 2 ]; then
	echo "usage: $0 <nest-order binary> <relaxed-head binary>" >&2
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
	env EVR_STRESS_SECONDS="$budget" "$@" timeout -k 5 $((budget + 60)) "$bin" >"$log" 2>&1
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

[ -x "$1" ] || { echo "control nest-order: MISSED (no binary $1)"; missed=1; }
[ -x "$2" ] || { echo "control relaxed-head: MISSED (no binary $2)"; missed=1; }
[ -x "$1" ] && run nest-order "$1" 1 'data_head went backwards|evr_reader_begin: '
[ -x "$2" ] && run relaxed-head "$2" 66 'WARNING: ThreadSanitizer' \
	TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS }halt_on_error=1 exitcode=66"
exit $missed
