#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Model-check the wakeup protocol (models/wakeup.pml) with spin on x86-TSO: the protocol as
# src/ implements it (writer: compiler barrier only; reader: membarrier) must hold (no
# assertion, no lost wakeup), so must the self-fencing writer of an unregistered process, and
# each must-fail variant must be caught. Exit 0 pass, 1 fail, 77 skip (spin or cc missing).
MODEL=wakeup
# shellcheck source=common/model-run.sh
. "$(dirname "$0")/common/model-run.sh"
run "wakeup" ok
run "wakeup, watermark 1" ok -DWM=1
run "wakeup without flush" ok -DNO_FLUSH
run "wakeup without flush, N=4 RR=3" ok -DNO_FLUSH -DN=4 -DRR=3
# an unregistered writer process: smp_mb() at W; the reader's membarrier() does not reach it
run "self-fencing writer" ok -DWRITER_FENCE
run "self-fencing writer without flush, N=4 RR=3" ok -DWRITER_FENCE -DNO_FLUSH -DN=4 -DRR=3
# lost wakeups: the store-load pair with one half missing
run "reader fences only itself (no IPI)" "invalid end state" -DNO_MEMBARRIER_IPI
run "reader fences only itself, no flush" "invalid end state" -DNO_MEMBARRIER_IPI -DNO_FLUSH
run "no reader barrier (R)" "invalid end state" -DNO_READER_MB
run "no reader barrier, no flush" "invalid end state" -DNO_READER_MB -DNO_FLUSH
run "self-fencing writer, reader without any fence" "invalid end state" \
	-DWRITER_FENCE -DNO_READER_MB -DPLAIN_WAITING
# the first wake_next rule of src/wait.c (next check a watermark after head): the reader
# sleeps through its watermark
run "old wake_next rule" "invalid end state" -DSRC_WAKE_NEXT -DNO_FLUSH
run "old wake_next rule, with flush" "invalid end state" -DSRC_WAKE_NEXT
# the first woke_tail rule of src/wait.c (a flush recorded its tail for the wake dedupe): a
# crossing at the tail of a flush that found nothing unread is skipped
run "old woke_tail rule" "invalid end state" -DSRC_WOKE_ON_FORCE
# the commit's look at reader_waiting hoisted above its data_head store: no barrier can save it
run "waiting read before head" "invalid end state" -DWAITING_BEFORE_HEAD -DNO_FLUSH
run "waiting read before head, with flush" "invalid end state" -DWAITING_BEFORE_HEAD
# the safety assertion is live: publishing the head before the payload is caught
run "head before payload" "assertion violated" -DHEAD_FIRST

if [ $fails -ne 0 ]; then
	echo "$fails model check(s) failed"
	exit 1
fi
exit 0
