#!/usr/bin/env bash
# `make install` into a DESTDIR: the real file, the .so.1 and .so links, the
# header and the pkg-config file; then a program built with pkg-config from
# the installed copy runs against it.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/checks.sh
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
prefix=/opt/xdm libdir=/opt/xdm/lib64
make -s install DESTDIR="$d" PREFIX=$prefix LIBDIR=$libdir >/dev/null
L=$d$libdir
check "real file" test -f "$L/libxendevicemodel.so.1.4" -a ! -L "$L/libxendevicemodel.so.1.4"
check ".so.1 link" test "$(readlink "$L/libxendevicemodel.so.1")" = libxendevicemodel.so.1.4
check ".so link" test "$(readlink "$L/libxendevicemodel.so")" = libxendevicemodel.so.1
check "header" cmp -s include/xendevicemodel.h "$d$prefix/include/xendevicemodel.h"
check "pkg-config file" test -f "$L/pkgconfig/xendevicemodel.pc"
pc() { PKG_CONFIG_PATH="$L/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$d" pkg-config "$@" xendevicemodel; }
check "pkg-config version" test "$(pc --modversion)" = 1.4
check "pkg-config cflags" test "$(pc --cflags | awk '{print $1}')" = "-I$d$prefix/include"
cat > "$d/use.c" <<'C'
#include <stdio.h>
#include <xendevicemodel.h>
int main(void) { xendevicemodel_handle *h = xendevicemodel_open(NULL, 0); unsigned v = 0;
  int rc = xendevicemodel_nr_vcpus(h, 5, &v); printf("%d %u\n", rc, v); return xendevicemodel_close(h); }
C
# shellcheck disable=SC2046
check "build against the installed copy" ${CC:-cc} -o "$d/use" "$d/use.c" $(pc --cflags --libs)
check "run against the installed copy" test "$(LD_LIBRARY_PATH="$L:$PWD/build" LD_PRELOAD="$PWD/build/libfakeprivcmd.so" "$d/use")" = "0 4"
check "it really used the installed copy" sh -c "LD_LIBRARY_PATH='$L' ldd '$d/use' | grep -q '$L/libxendevicemodel.so.1'"
summary install
