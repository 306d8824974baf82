#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Must-fail controls of the flight ring: flight-stress built with a deliberate bug must catch it.
#   controls-flight.sh <broken-swap binary> <no-push-count binary>
# The broken-swap build (EVR_BROKEN_FLIGHT_SWAP: the reader's swap cmpxchg accepts the link to
# the head whatever its flag says, UPDATE or NORMAL, instead of requiring HEAD) and the
# no-push-count build (EVR_BROKEN_FLIGHT_NO_PUSH_COUNT: find_head() takes the first HEAD from
# its hint even while a push is in flight) must each make the oracle fail (exit 1). Only
# overwrite-mode configurations run: without overwrite no writer ever pushes the head, so the
# links never say anything but HEAD and NORMAL there.
# CONTROL_SECONDS bounds it (default 30).
set -u
if [ $# -ne 2 ]; then
	echo "usage: $0 <broken-swap binary> <no-push-count binary>" >&2
	exit 2
fi
# shellcheck source=common/control-run.sh
. "$(dirname "$0")/common/control-run.sh"

if [ -x "$1" ]; then
	run flight-broken-swap "$1" 1 'flight-stress: FAIL' EVR_FLIGHT_ONLY=ow-1024x8
else
	echo "control flight-broken-swap: MISSED (no binary $1)"
	missed=1
fi
if [ -x "$2" ]; then
	run flight-no-push-count "$2" 1 'flight-stress: FAIL' EVR_FLIGHT_ONLY=ow
else
	echo "control flight-no-push-count: MISSED (no binary $2)"
	missed=1
fi
exit $missed
