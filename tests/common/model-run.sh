# SPDX-License-Identifier: MIT
# The spin runner shared by tests/t-model-*.sh: sourced with MODEL set to a model's name under
# models/; defines run NAME EXPECT DEFINES... and counts failures in $fails. Skips (exit 77)
# without spin or a C compiler.
set -u

here=$(cd "$(dirname "$0")" && pwd)  # the calling script's directory
model=$here/../models/$MODEL.pml
cc=${CC:-cc}

command -v spin >/dev/null 2>&1 || { echo "skip: spin not installed (apt install spin)"; exit 77; }
command -v "$cc" >/dev/null 2>&1 || { echo "skip: no C compiler ($cc) to build pan"; exit 77; }
[ -r "$model" ] || { echo "FAIL: $model not found"; exit 1; }

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
cp "$model" "$tmp/$MODEL.pml"
cd "$tmp" || exit 1

fails=0

# run NAME EXPECT DEFINES...: EXPECT is "ok", or the pan message a must-fail run must print
run() {
	local name=$1 expect=$2 out states errors
	shift 2
	rm -f pan pan.* "$MODEL".pml.trail
	if ! spin "$@" -a "$MODEL".pml >spin.log 2>&1; then
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

