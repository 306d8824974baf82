#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Model-check the core ring's reservation with a nested writer (models/reserve.pml) with spin:
# the outermost fast path's xadd, with handlers that leave the room it announced (fast_need),
# never takes bytes past the reader's tail, and everything reserved is published; a handler
# that ignores the announcement must be caught. Exit 0 pass, 1 fail, 77 skip.
MODEL=reserve
# shellcheck source=common/model-run.sh
. "$(dirname "$0")/common/model-run.sh"
run "xadd reserve" ok
run "xadd reserve, a 3-unit ring" ok -DCAP=3
run "xadd reserve, more writes" ok -DWO=4 -DWI=3 -DNIRQ=2
# the check is live: a handler that does not leave the announced room
run "handler ignores fast_need" "assertion violated" -DNO_NEED
run "handler ignores fast_need, more writes" "assertion violated" -DNO_NEED -DWO=4 -DWI=3
# the fast path as it was, a cmpxchg that fails if a handler moved head: holds without fast_need
run "cmpxchg reserve" ok -DCMPXCHG

if [ $fails -ne 0 ]; then
	echo "$fails model check(s) failed"
	exit 1
fi
exit 0
