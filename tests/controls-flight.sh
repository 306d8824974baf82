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
# shellcheck source=common/control-run.sh
. "$(dirname "$0")/common/control-run.sh"

if [ -x "$1" ]; then
	run flight-broken-swap "$1" 1 'flight-stress: FAIL' EVR_FLIGHT_ONLY=ow-1024x8
else
	echo "control flight-broken-swap: MISSED (no binary $1)"
	missed=1
fi
exit $missed
