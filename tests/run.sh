#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run test executables: one PASS/FAIL/SKIP line each, then "N passed, N failed, N skipped".
# Exit status 0 only if none failed. TEST_TIMEOUT bounds each test (seconds).
set -u
pass=0 fail=0 skip=0
timeout_s=${TEST_TIMEOUT:-120}
for t in "$@"; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	log=$(mktemp)
	start=$(date +%s%N)
	timeout -k 5 "$timeout_s" "$t" >"$log" 2>&1
	rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	case $rc in
	0) pass=$((pass + 1)); printf 'PASS %s (%d.%03ds)\n' "$name" $((ms / 1000)) $((ms % 1000)) ;;
	77) skip=$((skip + 1)); printf 'SKIP %s: %s\n' "$name" "$(tail -n 1 "$log")" ;;
	*)
		fail=$((fail + 1))
		[ $rc -eq 124 ] && echo "  (timed out after ${timeout_s}s)" >>"$log"
		printf 'FAIL %s (exit %d)\n' "$name" "$rc"
		sed 's/^/    /' "$log" | tail -n 40
		;;
	esac
	rm -f "$log"
done
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
