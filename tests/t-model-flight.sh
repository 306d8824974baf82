#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Model-check the flight recorder's page ring (models/flight.pml) with spin: the HEAD/UPDATE
# push by nested writer levels, the commit page, and the reader's swap. The algorithm as
# first specified fails (four flaws, see the model); with the four fixes (-DFIXED, what
# src/flight.c does: docs/design.md 19.9) it must hold in
# overwrite and produce/consume mode, with 3 and 4 pages, one- and two-slot records, and each
# fix must be needed and each must-fail variant caught. Exit 0 pass, 1 fail, 77 skip.
MODEL=flight
# shellcheck source=common/model-run.sh
. "$(dirname "$0")/common/model-run.sh"

# the algorithm as specified: a reader that loads its page's commit before the commit page
# misses the records committed between the two loads (and more, see FIX_* in the model)
run "as specified" "assertion violated"

# with the fixes: from an empty ring, from a full one (pushes at once, nested pushes, the
# undo of a stale HEAD), a handler going all the way round (commit overrun), a lap without
# the handler, the handler firing twice
run "fixed" ok -DFIXED -DWO=4 -DWI=3
run "fixed, full ring" ok -DFIXED -DPREFILL=3 -DWO=1 -DWI=3
run "fixed, handler laps the ring" ok -DFIXED -DPREFILL=1 -DWO=1 -DWI=5
run "fixed, full ring, thread only" ok -DFIXED -DPREFILL=3 -DWO=5 -DNIRQ=0
run "fixed, handler fires twice" ok -DFIXED -DWO=2 -DWI=2 -DNIRQ=2
run "fixed, produce/consume" ok -DFIXED -DPRODUCE -DWO=4 -DWI=3
run "fixed, produce/consume, full ring" ok -DFIXED -DPRODUCE -DPREFILL=3 -DWO=1 -DWI=3
run "fixed, N=4" ok -DFIXED -DN=4 -DWO=4 -DWI=3
run "fixed, N=4, full ring" ok -DFIXED -DN=4 -DPREFILL=4 -DWO=1 -DWI=2
run "fixed, records of 1-2 slots, padding, P=3" ok -DFIXED -DVARLEN -DP=3 -DWO=3 -DWI=1

# each fix is needed
run "fixed but the reader's load order" "assertion violated" \
	-DFIX_RPTEST -DFIX_PUBLISH -DFIX_ENT_FIRST
run "fixed but the reader's-page test" "assertion violated" \
	-DFIX_READ_ORDER -DFIX_PUBLISH -DFIX_ENT_FIRST -DPREFILL=3 -DWO=2 -DWI=1
run "fixed but the commit page published per round" "assertion violated" \
	-DFIX_READ_ORDER -DFIX_RPTEST -DFIX_ENT_FIRST -DPREFILL=1 -DWO=1 -DWI=5
# the order of the two stores of FIX_PUBLISH: our own copy before the published one fails
run "fixed but the commit page published after our own copy moves" "assertion violated" \
	-DFIXED -DPUBLISH_AFTER -DPREFILL=1 -DWO=1 -DWI=5
run "fixed but entries read after HEAD->UPDATE" "assertion violated" \
	-DFIX_READ_ORDER -DFIX_RPTEST -DFIX_PUBLISH -DPREFILL=3 -DWO=1 -DWI=1

# must-fail variants: the checks are live
run "swap without the HEAD check" "assertion violated" \
	-DFIXED -DSWAP_NO_HEAD_CHECK -DPREFILL=3 -DWO=1 -DWI=3
run "push without UPDATE" "assertion violated" -DFIXED -DNO_UPDATE_FLAG -DPREFILL=3 -DWO=1 -DWI=3
run "UPDATE taken for NORMAL" "assertion violated" \
	-DFIXED -DUPDATE_AS_NORMAL -DPREFILL=3 -DWO=1 -DWI=3
run "a nested level commits" "assertion violated" -DFIXED -DCOMMIT_NOT_OUTERMOST
# the 1b038c6 re-check is what commits a handler's record when the outermost level does not
# bump commits itself; and bumping it (the kernel's way) holds too
run "no re-check after lowering committing" "assertion violated" -DFIXED -DNO_RECHECK
run "the outermost write's own commit before its record" "assertion violated" \
	-DFIXED -DFAST_BEFORE_WRITE
run "fixed, the outermost level bumps commits too" ok -DFIXED -DBUMP_ALWAYS -DWO=4 -DWI=3
# find_head() as src/flight.c had it: stops at the first flagged link from its hint, so it
# swaps while a push is in flight
run "head search stopping at the first flag" "assertion violated" -DFIXED -DSCAN_HINT -DPREFILL=3 -DWO=1 -DWI=3
# find_head() today takes the first HEAD from its hint only while no push is in flight or
# begins (fc->pushing): without that count it swaps mid-push once the writer laps the ring
run "head search without the push count" "assertion violated" \
	-DFIXED -DNO_PUSH_CHECK -DPREFILL=3 -DWO=5 -DNIRQ=0
# the count of pushes begun is belt and braces: "none in flight" at both ends suffices here
run "head search with the in-flight count only" ok -DFIXED -DNO_PUSH_SEQ -DPREFILL=3 -DWO=5 -DNIRQ=0
# a known limit: a swap's loss count is late after a lap of pushes (the sum is exact)
run "exact loss count per swap" "assertion violated" -DFIXED -DEXACT_GAP -DPREFILL=3 -DWO=5 -DNIRQ=0
# every refusal is reported by the end; reporting only at swaps misses one refused after the
# reader's last swap (flight-stress saw it once in about 40 produce/consume runs)
run "fixed, produce/consume, every refusal reported" ok -DFIXED -DPRODUCE -DREPORT_DROPS -DWO=4 -DWI=3
run "refusals reported only by swaps" "assertion violated" \
	-DFIXED -DPRODUCE -DREPORT_DROPS -DNO_REPORT_IDLE -DWO=4 -DWI=3

if [ $fails -ne 0 ]; then
	echo "$fails model check(s) failed"
	exit 1
fi
exit 0
