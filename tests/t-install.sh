#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make install PREFIX= DESTDIR= puts the libraries (SONAME libevring.so.0), headers, evring.pc,
# man pages and the CLI where they belong, and a program builds and runs against the result.
set -u
O=${O:-build}
cc=${CC:-cc}
command -v "$cc" >/dev/null || { echo "no C compiler"; exit 77; }
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
prefix=/opt/evring-test
if ! make -s --no-print-directory O="$O" SAN="${SAN:-}" PREFIX="$prefix" DESTDIR="$dest" install >"$dest/log" 2>&1; then
	cat "$dest/log"
	echo "make install failed"
	exit 1
fi
root=$dest$prefix
fail=0
for f in lib/libevring.a lib/libevring.so lib/libevring.so.0 lib/pkgconfig/evring.pc \
	include/evring.h include/evring/abi.h bin/evring share/man/man7/evring.7 \
	share/man/man3/evr_ring_write.3; do
	[ -e "$root/$f" ] || { echo "missing: $f"; fail=1; }
done
soname=$(readelf -d "$root/lib/libevring.so" 2>/dev/null | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = libevring.so.0 ] || { echo "SONAME is '$soname', not libevring.so.0"; fail=1; }
grep -q "^prefix=$prefix\$" "$root/lib/pkgconfig/evring.pc" || { echo "evring.pc: wrong prefix"; fail=1; }
cat >"$dest/t.c" <<'C'
#include <evring.h>
#include <stdio.h>
int main(void)
{
	EVR_OPTS(evr_ring_opts, o, .data_size = 4096);
	struct evr_ring *r;

	if (evr_ring_create(&o, &r) || evr_ring_write(r, 1, "x", 1))
		return 1;
	evr_ring_destroy(r);
	puts(evr_version_string());
	return 0;
}
C
# a sanitizer build installs an instrumented library: the program needs the same runtime
san=()
[ -n "${SAN:-}" ] && san=(-fsanitize="$SAN")
if ! "$cc" "${san[@]}" "$dest/t.c" -I"$root/include" -L"$root/lib" -levring -o "$dest/t" \
	>"$dest/cc.log" 2>&1; then
	cat "$dest/cc.log"
	echo "a program does not build against the installed library"
	fail=1
elif ! LD_LIBRARY_PATH="$root/lib" "$dest/t" | grep -qx '[0-9]*\.[0-9]*\.[0-9]*'; then
	echo "the program does not run against the installed shared library"
	fail=1
fi
"$root/bin/evring" version | grep -q '^evring ' || { echo "installed evring does not run"; fail=1; }
exit $fail
