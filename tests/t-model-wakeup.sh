#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Model-check the wakeup protocol (models/wakeup.pml) with spin on x86-TSO: the protocol as
# src/ implements it (writer: compiler barrier only; reader: membarrier) must hold (no
# assertion, no lost wakeup), so must the self-fencing writer of an unregistered process, and
# each must-fail variant must be caught. Exit 0 pass, 1 fail, 77 skip (spin or cc missing).
set -u

here=$(cd "$(dirname "$0")" && pwd)
model=$here/../models/wakeup.pml
cc=${CC:-cc}

command -v spin >/dev/null 2>&1 || { echo "skip: spin not installed (apt install spin)"; exit 77; }
command -v "$cc" >/dev/null 2>&1 || { echo "skip: no C compiler ($cc) to build pan"; exit 77; }
[ -r "$model" ] || { echo "FAIL: $model not found"; exit 1; }

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
cp "$model" "$tmp/wakeup.pml"
cd "$tmp" || exit 1

fails=0

# run NAME EXPECT DEFINES...: EXPECT is "ok", or the pan message a must-fail run must print
run() {
	local name=$1 expect=$2 out states errors
	shift 2
	rm -f pan pan.* wakeup.pml.trail
	if ! spin "$@" -a wakeup.pml >spin.log 2>&1; then
		echo "FAIL $name: spin -a failed"
		sed 's/^/    /' spin.log
		fails=$((fails + 1))
		return
	fi
	# exhaustive safety search (assertions, invalid end states); memory bounded to 1 GiB
	if ! "$cc" -O2 -DSAFETY -DMEMLIM=1024 -w -o pan pan.c >cc.log 2>&1; then
		echo "FAIL $name: compiling pan failed"
		sed 's/^/    /' cc.log | tail -n 20
		fails=$((fails + 1))
		return
	fi
	out=$(./pan -m20000 -w22 2>&1)
	states=$(printf '%s\n' "$out" | sed -n 's/^ *\([0-9][0-9]*\) states, stored.*/\1/p' | head -n 1)
	errors=$(printf '%s\n' "$out" | sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' | head -n 1)
	if [ -z "$errors" ]; then
		echo "FAIL $name: no 'errors:' line from pan"
		printf '%s\n' "$out" | sed 's/^/    /' | tail -n 20
		fails=$((fails + 1))
		return
	fi
	if [ "$expect" = ok ]; then
		# "errors: 0" counts only if the search was complete
		if [ "$errors" = 0 ] && ! printf '%s\n' "$out" |
			grep -qE 'max search depth too small|out of memory|search not completed|MEMLIM'; then
			echo "ok   $name: $states states, errors: 0"
			return
		fi
		echo "FAIL $name: $states states, errors: $errors (expected 0, exhaustive)"
	else
		# pan's own error line, not the "+ invalid end states" of its search summary
		if [ "$errors" -gt 0 ] && printf '%s\n' "$out" | grep -qE "^pan:[0-9]+: $expect"; then
			echo "ok   $name (must fail): $states states, errors: $errors, $expect"
			return
		fi
		echo "FAIL $name (must fail): $states states, errors: $errors, wanted '$expect'"
	fi
	printf '%s\n' "$out" | sed 's/^/    /' | tail -n 25
	fails=$((fails + 1))
}

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
# the safety assertion is live: publishing the head before the payload is caught
run "head before payload" "assertion violated" -DHEAD_FIRST

if [ $fails -ne 0 ]; then
	echo "$fails model check(s) failed"
	exit 1
fi
exit 0
