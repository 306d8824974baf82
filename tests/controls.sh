#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Must-fail controls: run a test built with a deliberate bug and require that it is caught.
#   controls.sh <nest-order ring-stress> <relaxed-head ring-stress (SAN=thread)> <give-back ring-step>
# The nest-order build must exit 1 with data_head seen going backwards; the relaxed-head build must
# make ThreadSanitizer report a race (exit 66); the give-back build (EVR_BROKEN_FAST_GIVE_BACK:
# the outer fast path, having taken bytes past the room, gives them back with a plain store
# although a handler may have reserved after them) must make ring-step exit 1 (a handler
# stepped into that window loses its record). CONTROL_SECONDS bounds each (default 30).
set -u
if [ $# -ne 3 ]; then
	echo "usage: $0 <nest-order binary> <relaxed-head binary> <give-back binary>" >&2
	exit 2
fi
# shellcheck source=common/control-run.sh
. "$(dirname "$0")/common/control-run.sh"

[ -x "$1" ] || { echo "control nest-order: MISSED (no binary $1)"; missed=1; }
[ -x "$2" ] || { echo "control relaxed-head: MISSED (no binary $2)"; missed=1; }
[ -x "$3" ] || { echo "control give-back: MISSED (no binary $3)"; missed=1; }
[ -x "$1" ] && run nest-order "$1" 1 'data_head went backwards|evr_reader_begin: '
[ -x "$2" ] && run relaxed-head "$2" 66 'WARNING: ThreadSanitizer' \
	TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS }halt_on_error=1 exitcode=66"
[ -x "$3" ] && run give-back "$3" 1 'ring-step: .*failed'
exit $missed
