#!/usr/bin/env bash
#   tests/abi/run.sh               the ABI checks below
#   tests/abi/run.sh real-client   abidiff and Debian's QEMU for Xen as a client (real-client.sh)
# ABI checks of the built library against Xen's map and Debian's original:
# exported names and versions, the version-node chain, SONAME, nothing else
# exported, and a header interchangeable with Xen's.
set -u
cd "$(dirname "$0")/../.."
[ "${1:-}" != real-client ] || exec bash tests/abi/real-client.sh
LIB=${LIB:-build/libxendevicemodel.so.1.4}
ORIG=${ORIG:-/usr/lib/x86_64-linux-gnu/libxendevicemodel.so.1.4}
CC=${CC:-cc}
# For another architecture (tests/arch): extra compiler flags (Xen's headers
# for it), the test double built for it, and the emulator to run with.
XCFLAGS=${XCFLAGS:-}
SHIM=${SHIM:-$PWD/build/libfakeprivcmd.so}
RUN=${RUN:-}
. tests/lib/checks.sh
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# "version symbol" for every defined dynamic symbol, sorted.
exports() { objdump -T "$1" | awk '$2 == "g" && $4 != "*UND*" { print $(NF-1), $NF }' | sort; }
# The version definitions with their parents, without addresses.
verdefs() { readelf -V "$1" | sed -n '/Version definition/,/Version needs/p' | grep -o 'Name: .*\|Parent 1: .*' | grep -v 'libxendevicemodel'; }
# The functions the map exports, with the node they belong to.
mapsyms() { awk '/^VERS_/ { v = $1 } /^\t\t[a-z_]+;/ { gsub(/[\t;]/, ""); print v, $0 }' xendevicemodel.map | sort; }

exports "$LIB" > "$tmp/ours"; exports "$ORIG" > "$tmp/orig"
compare "exports (version and name) of Xen's library and ours" "$tmp/orig" "$tmp/ours" 26
grep -v '^\(VERS_1\.[0-4]\) \1$' "$tmp/ours" | grep '^VERS' | awk '{print $1, $2}' > "$tmp/ours-fns"
mapsyms > "$tmp/map"
compare "functions of xendevicemodel.map and our exports" "$tmp/map" "$tmp/ours-fns" 26
check "not 26 functions ($(wc -l < "$tmp/ours-fns"))" test "$(wc -l < "$tmp/ours-fns")" -eq 26
check "symbols outside VERS_1.x are exported" test -z "$(awk '$1 !~ /^VERS_1\.[0-4]$/' "$tmp/ours")"
verdefs "$LIB" > "$tmp/vd-ours"; verdefs "$ORIG" > "$tmp/vd-orig"
compare "version definitions of Xen's library and ours" "$tmp/vd-orig" "$tmp/vd-ours" 9
check "version chain is not 1.0 <- 1.1 <- 1.2 <- 1.3 <- 1.4" \
    test "$(tr '\n' ' ' < "$tmp/vd-ours")" = "Name: VERS_1.0 Name: VERS_1.1 Parent 1: VERS_1.0 Name: VERS_1.2 Parent 1: VERS_1.1 Name: VERS_1.3 Parent 1: VERS_1.2 Name: VERS_1.4 Parent 1: VERS_1.3 "
check "SONAME is not libxendevicemodel.so.1" \
    test "$(readelf -d "$LIB" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')" = libxendevicemodel.so.1
check "$(dirname "$LIB")/libxendevicemodel.so.1 does not point at the real name" \
    test "$(readlink "$(dirname "$LIB")/libxendevicemodel.so.1")" = libxendevicemodel.so.1.4
# The same NEEDED libraries as Xen's (plus libgcc_s/ld.so, which Rust's std needs).
for n in libxentoollog.so.1 libxentoolcore.so.1 libxencall.so.1 libc.so.6; do
    check "NEEDED $n missing" grep -q "\[$n\]" <(readelf -d "$LIB")
done

# Headers: same function names, compatible prototypes, and self-sufficient.
names() { grep -o 'xendevicemodel_[a-z_]*(' "$1" | sort -u; }
names /usr/include/xendevicemodel.h > "$tmp/names-xen"; names include/xendevicemodel.h > "$tmp/names-ours"
compare "functions declared by Xen's header and ours" "$tmp/names-xen" "$tmp/names-ours" 26
check "header prototypes conflict with Xen's" \
    $CC -std=c11 -Wall -Wextra -Werror -pedantic -Iinclude $XCFLAGS -o "$tmp/compat" tests/abi/header_compat.c
check "header is not usable on its own from C++" \
    sh -c "echo '#include <xendevicemodel.h>' | g++ -x c++ -std=c++11 -Werror -Iinclude -fsyntax-only -"
for std in c99 gnu89; do
    check "header does not compile as $std" \
        sh -c "echo '#include <xendevicemodel.h>' | $CC -x c -std=$std -Werror -Iinclude $XCFLAGS -fsyntax-only -"
done

# Loadable with dlopen(), and usable through it (initial-exec TLS must fit).
check "dlopen test does not build" $CC -std=gnu11 -Wall -Werror -o "$tmp/dlopen" tests/abi/dlopen.c -ldl
check "dlopen() of the library, or calls through it, failed" \
    env LD_PRELOAD="$SHIM" $RUN "$tmp/dlopen" "$PWD/$LIB"

summary abi
