#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Must-fail control of the flight ring: flight-stress built with a deliberate bug must catch it.
#   controls-flight.sh <broken-swap binary>
# The broken-swap build (EVR_BROKEN_FLIGHT_SWAP: the reader's swap cmpxchg accepts the link to
# the head whatever its flag says, UPDATE or NORMAL, instead of requiring HEAD) must make the
# oracle fail (exit 1). Only the overwrite-mode configurations run: without overwrite no writer
# ever pushes the head, so the link never says anything but HEAD there.
# CONTROL_SECONDS bounds it (default 30).
set -u
if [ $# -ne 1 ]; then
	echo "usage: $0 <broken-swap binary>" >&2
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

if [ -x "$1" ]; then
	run flight-broken-swap "$1" 1 'flight-stress: FAIL' EVR_FLIGHT_ONLY=ow-1024x8
else
	echo "control flight-broken-swap: MISSED (no binary $1)"
	missed=1
fi
exit $missed
