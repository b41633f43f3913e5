#!/usr/bin/env bash
# Run by `make check` (tests/run.sh): the library under a seccomp filter equivalent to
# QEMU's -sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,
# resourcecontrol=deny (tests/sandbox/sandbox.c), against the privcmd test
# double. Runs the whole test with ours and with Xen's library (both must run
# to the end), then shows the filter has teeth: each denied call it makes
# kills the process (SIGSYS), and with membarrier(2) added to the deny list
# ours is killed too, so the passing run really made its membarrier calls
# under the filter.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/checks.sh
B=$PWD/build
passed() { ok; echo "ok: $*"; } # each check says what it showed
ours=(env LD_LIBRARY_PATH="$B" LD_PRELOAD="$B/libfakeprivcmd.so")
xens=(env LD_LIBRARY_PATH="$B/orig:$B" LD_PRELOAD="$B/libfakeprivcmd.so")

for lib in ours xen; do
    if [ $lib = ours ]; then run=("${ours[@]}"); else run=("${xens[@]}"); fi
    out=$(timeout 60 "${run[@]}" "$B/sandbox" run $lib 2>&1)
    rc=$?
    printf '%s\n' "$out" | sed "s/^/  [$lib] /"
    if [ $rc -eq 0 ] && printf '%s\n' "$out" | grep -qE "^sandbox \($lib\): [0-9]+ passed, 0 failed$"; then
        passed "$lib: every function and the handle rules ran to the end under QEMU's sandbox policy"
    else
        bad "$lib: exit $rc under the filter"
    fi
done
# The library that was loaded is the one named (not a fallback to the other).
ldd_ours=$("${ours[@]}" ldd "$B/sandbox" | grep -o '/[^ ]*libxendevicemodel.so.1')
ldd_xen=$("${xens[@]}" ldd "$B/sandbox" | grep -o '/[^ ]*libxendevicemodel.so.1')
[ "$ldd_ours" = "$B/libxendevicemodel.so.1" ] && [ "$ldd_xen" = "$B/orig/libxendevicemodel.so.1" ] &&
    passed "libraries: ours $ldd_ours, Xen's $ldd_xen" || bad "libraries: ours '$ldd_ours', Xen's '$ldd_xen'"

for call in fork execve setuid unshare mount setns; do
    { timeout 20 "${ours[@]}" "$B/sandbox" probe $call > /dev/null 2>&1; rc=$?; } 2>/dev/null
    [ $rc -eq $((128 + 31)) ] && passed "probe $call: killed by SIGSYS, as QEMU's filter would" || bad "probe $call: exit $rc, not SIGSYS"
done
{ timeout 60 "${ours[@]}" "$B/sandbox" run-deny-membarrier > /dev/null 2>&1; rc=$?; } 2>/dev/null
[ $rc -eq $((128 + 31)) ] && passed "with membarrier(2) denied too, ours is killed: it really calls membarrier under the filter, which QEMU's policy allows" ||
    bad "with membarrier denied, ours exited $rc instead of SIGSYS"
summary sandbox
