#!/usr/bin/env bash
# A real client: Debian's QEMU for Xen (qemu-system-xen) must bind every
# xendevicemodel_* symbol it imports to our library, through LD_LIBRARY_PATH
# and through LD_PRELOAD, and, with no hypervisor, fail exactly as it does
# with Xen's library. Plus abidiff between Xen's library and ours. Both are
# the release's (mk/dist.mk): Debian 12's Xen 4.17 and QEMU 7.2 (19 imports),
# Debian 13's Xen 4.20 and QEMU 10.0 (20 imports).
set -u
cd "$(dirname "$0")/../.."
. tests/dist/env.sh
B=$PWD/build
ORIG=/usr/lib/x86_64-linux-gnu/libxendevicemodel.so.1.4
. tests/lib/checks.sh

# The machine is the release the run is for: its Xen library and its QEMU.
xv=$(dpkg-query -W -f='${Version}' "libxendevicemodel1:$(dpkg --print-architecture)" 2>/dev/null)
qv=$(dpkg-query -W -f='${Version}' qemu-system-xen 2>/dev/null)
# upstream VERSION [EPOCH]: whether a Debian version is of that upstream release.
upstream() { case $2 in "${3:-}$1"[.+~-]*) return 0 ;; *) return 1 ;; esac; }
check "Xen's library is Debian $DIST_RELEASE's, Xen $DIST_XEN ($xv)" upstream "$DIST_XEN" "$xv"
check "QEMU for Xen is Debian $DIST_RELEASE's, QEMU $DIST_QEMU ($qv)" upstream "$DIST_QEMU" "$qv" 1:

# abidiff: any added, removed or changed symbol is an ABI change (status bit 4).
abidiff "$ORIG" "$B/libxendevicemodel.so.1.4" > "$B/abidiff.txt" 2>&1
rc=$?
if [ $rc -eq 0 ]; then ok; else bad "abidiff status $rc: $(head -5 "$B/abidiff.txt" | tr '\n' ' ')"; fi

Q=/usr/libexec/xen-qemu-system-i386
if [ ! -x "$Q" ]; then
    bad "$Q missing (Debian package qemu-system-xen)"
    summary real-client; exit 1
fi
imports=$(objdump -T "$Q" | awk '/xendevicemodel_/ { print $NF }' | sort -u)
n=$(echo "$imports" | wc -l)
check "QEMU $DIST_QEMU imports $DIST_QEMU_IMPORTS xendevicemodel_* functions ($n)" test "$n" -eq "$DIST_QEMU_IMPORTS"
args=(-xen-domid 1 -machine xenfv -nographic -display none)

echo "$imports" > "$B/qemu-imports"
# binds MODE ENV...: the xendevicemodel_* symbols QEMU's binary binds to
# build/libxendevicemodel.so.1 must be exactly the ones it imports, and no
# object of the process (libxenctrl imports some too) may bind one elsewhere.
binds() {
    local mode=$1; shift
    env LD_BIND_NOW=1 LD_DEBUG=bindings LD_DEBUG_OUTPUT="$B/bindings" "$@" timeout 20 "$Q" "${args[@]}" >/dev/null 2>&1
    cat "$B"/bindings.* 2>/dev/null | grep "normal symbol \`xendevicemodel_" > "$B/qemu-bindings-$mode"
    rm -f "$B"/bindings.*
    grep "binding file $Q \[0\] to $B/libxendevicemodel.so.1 \[0\]:" "$B/qemu-bindings-$mode" |
        sed "s/.*symbol \`//; s/'.*//" | sort -u > "$B/qemu-bound-$mode"
    compare "$mode: QEMU's imports bound to build/libxendevicemodel.so.1" "$B/qemu-imports" "$B/qemu-bound-$mode" 10
    grep -v " to $B/libxendevicemodel.so.1 \[0\]:" "$B/qemu-bindings-$mode" > "$B/qemu-elsewhere-$mode"
    : > "$B/empty"
    compare "$mode: xendevicemodel_* bindings to another library" "$B/empty" "$B/qemu-elsewhere-$mode" 0
}
binds LD_LIBRARY_PATH LD_LIBRARY_PATH="$B"
binds LD_PRELOAD LD_PRELOAD="$B/libxendevicemodel.so.1"

# Without a hypervisor QEMU must fail the same way with either library.
env LD_LIBRARY_PATH="$B/orig" timeout 20 "$Q" "${args[@]}" > "$B/qemu.xen.out" 2>&1; xs=$?
env LD_LIBRARY_PATH="$B" timeout 20 "$Q" "${args[@]}" > "$B/qemu.ours.out" 2>&1; os=$?
if [ $xs -eq $os ] && cmp -s "$B/qemu.xen.out" "$B/qemu.ours.out" && [ -s "$B/qemu.ours.out" ]; then
    ok; echo "no hypervisor: both exit $os with: $(tail -1 "$B/qemu.ours.out")"
else
    bad "no hypervisor: Xen's library exit $xs, ours $os; outputs: $(diff "$B/qemu.xen.out" "$B/qemu.ours.out" | tr '\n' ' ')"
fi
summary real-client
