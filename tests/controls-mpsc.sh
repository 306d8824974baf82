#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Must-fail controls of the multi-producer ring: mpsc-stress built with a deliberate bug must
# catch it.
#   controls-mpsc.sh <relaxed-commit binary (SAN=thread)> [<no-zero binary>]
# The relaxed-commit build (EVR_BROKEN_MPSC_RELAXED_COMMIT: the commit E is a relaxed store)
# must make ThreadSanitizer report a data race (exit 66); the no-zero build
# (EVR_BROKEN_MPSC_NO_ZERO: the reader publishes data_tail without zeroing what it consumed)
# must make the oracle fail (exit 1) on stale headers. CONTROL_SECONDS bounds each (default 30).
set -u
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 <relaxed-commit binary> [<no-zero binary>]" >&2
	exit 2
fi
# shellcheck source=common/control-run.sh
. "$(dirname "$0")/common/control-run.sh"

if [ -x "$1" ]; then
	run mpsc-relaxed-commit "$1" 66 'WARNING: ThreadSanitizer: data race' EVR_MPSC_SWEEP=0 \
		TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS }halt_on_error=1 exitcode=66"
else
	echo "control mpsc-relaxed-commit: MISSED (no binary $1)"
	missed=1
fi
if [ $# -eq 2 ]; then
	if [ -x "$2" ]; then
		run mpsc-no-zero "$2" 1 'mpsc-stress: FAIL' EVR_MPSC_SWEEP=0
	else
		echo "control mpsc-no-zero: MISSED (no binary $2)"
		missed=1
	fi
fi
exit $missed
