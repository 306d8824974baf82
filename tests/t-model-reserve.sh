#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Model-check the core ring's reservation with a nested writer (models/reserve.pml) with spin:
# the outermost fast path's xadd, checked afterwards and given back (or padded) when there was
# no room, never writes bytes past the reader's tail, and everything reserved is published;
# keeping the bytes must be caught. The previous and the first fast paths are checked too.
# Exit 0 pass, 1 fail, 77 skip.
MODEL=reserve
# shellcheck source=common/model-run.sh
. "$(dirname "$0")/common/model-run.sh"
run "xadd, then check" ok
run "xadd, then check, a 3-unit ring" ok -DCAP=3
run "xadd, then check, more writes" ok -DWO=4 -DWI=3 -DNIRQ=2
# the check is live: keeping bytes taken past the room is caught
run "no give-back" "assertion violated" -DKEEP_OVERRUN
# refused inside the give-back window, a handler's poison must survive the give-back
run "poison without the margin" "assertion violated" -DPOISON_NO_MARGIN
# the previous fast path (check, then xadd, the room announced in fast_need) holds; a handler
# that ignores the announcement takes the room the fast path counted on
run "check, then xadd (fast_need)" ok -DNEED
run "handler ignores fast_need" "assertion violated" -DNO_NEED
# the first fast path, a cmpxchg that fails if a handler moved head
run "cmpxchg reserve" ok -DCMPXCHG

if [ $fails -ne 0 ]; then
	echo "$fails model check(s) failed"
	exit 1
fi
exit 0
