# SPDX-License-Identifier: MIT
# The runner shared by tests/controls*.sh: sourced, it sets budget (CONTROL_SECONDS, default 30)
# and missed=0, and defines
#   run LABEL BINARY EXIT PATTERN [VAR=value...]
# which runs a must-fail build with EVR_STRESS_SECONDS=budget and the given environment, and
# reports it caught only if it exits with EXIT and its output matches PATTERN; else sets missed=1.
budget=${CONTROL_SECONDS:-30}
missed=0

run() {
	local label=$1 bin=$2 want=$3 pattern=$4 log start ms rc why
	shift 4
	log=$(mktemp)
	start=$(date +%s%N)
	env EVR_STRESS_SECONDS="$budget" "$@" timeout -k 5 $((budget + 60)) "$bin" >"$log" 2>&1
	rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	why=$(grep -m 1 -E "$pattern" "$log" | sed 's/^ *//' | cut -c 1-160)
	if [ "$rc" -eq "$want" ] && [ -n "$why" ]; then
		printf 'control %s: caught (exit %d after %d.%03ds: %s)\n' "$label" "$rc" \
			$((ms / 1000)) $((ms % 1000)) "$why"
	else
		missed=1
		printf 'control %s: MISSED (exit %d after %d.%03ds, wanted exit %d matching /%s/)\n' \
			"$label" "$rc" $((ms / 1000)) $((ms % 1000)) "$want" "$pattern"
		sed 's/^/    /' "$log" | tail -n 20
	fi
	rm -f "$log"
}
