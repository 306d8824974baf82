#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Must-fail controls: run ring-stress built with a deliberate bug and require that it is caught.
#   controls.sh <nest-order binary> <relaxed-head binary (SAN=thread)> <fast-need binary>
# The nest-order build must exit 1 with data_head seen going backwards; the relaxed-head build must
# make ThreadSanitizer report a race (exit 66); the fast-need build (EVR_BROKEN_FAST_NEED: a
# handler's reserve() ignores the room the outer fast path checked and has not yet taken) must
# exit 1 with the ring overrun (the xadd runs past the reader's tail, the reader finds the
# batch larger than the ring or a torn record). CONTROL_SECONDS bounds each (default 30).
set -u
if [ $# -ne 3 ]; then
	echo "usage: $0 <nest-order binary> <relaxed-head binary> <fast-need binary>" >&2
	exit 2
fi
# shellcheck source=common/control-run.sh
. "$(dirname "$0")/common/control-run.sh"

[ -x "$1" ] || { echo "control nest-order: MISSED (no binary $1)"; missed=1; }
[ -x "$2" ] || { echo "control relaxed-head: MISSED (no binary $2)"; missed=1; }
[ -x "$3" ] || { echo "control fast-need: MISSED (no binary $3)"; missed=1; }
[ -x "$1" ] && run nest-order "$1" 1 'data_head went backwards|evr_reader_begin: '
[ -x "$2" ] && run relaxed-head "$2" 66 'WARNING: ThreadSanitizer' \
	TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS }halt_on_error=1 exitcode=66"
[ -x "$3" ] && run fast-need "$3" 1 'ring-stress: FAIL'
exit $missed
