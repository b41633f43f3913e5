#!/usr/bin/env bash
# Differential tests: the same driver, compiled once against Xen's header, runs
# with Debian's original libxendevicemodel and with ours under the privcmd test
# double; every output line (call, rc, errno, out-values, request bytes) must
# match. Deliberate differences (README) are checked separately, as such.
set -u
cd "$(dirname "$0")/../.."
B=${B:-build}
D=$B/differential
mkdir -p "$D"
CC=${CC:-cc}
# For another architecture (tests/arch/run.sh): Xen's headers and libraries
# for it, and the emulator that runs the driver.
XCFLAGS=${XCFLAGS:-} XLDFLAGS=${XLDFLAGS:-} RUN=${RUN:-}
$CC -O1 -g -std=gnu11 -Wall -Wextra -Werror -Wno-format-truncation -Itests/fake $XCFLAGS -o $D/driver tests/differential/driver.c \
    -L$B -lxendevicemodel -lfakeprivcmd $XLDFLAGS || exit 1
shim=$PWD/$B/libfakeprivcmd.so
xen=(env LD_LIBRARY_PATH="$PWD/$B/orig:$PWD/$B" LD_PRELOAD="$shim")
ours=(env LD_LIBRARY_PATH="$PWD/$B" LD_PRELOAD="$shim")
pass=0 fail=0

# compare NAME [ENV=...] -- ARGS: runs the driver with both libraries.
compare() {
    local name=$1; shift
    local envs=()
    while [ "$1" != -- ]; do envs+=("$1"); shift; done; shift
    "${xen[@]}" "${envs[@]}" $RUN $D/driver "$@" > "$D/$name.xen" 2>/dev/null
    "${ours[@]}" "${envs[@]}" $RUN $D/driver "$@" > "$D/$name.ours" 2>/dev/null
    local lines differ
    lines=$(wc -l < "$D/$name.xen")
    differ=$(diff "$D/$name.xen" "$D/$name.ours" | grep -c '^>')
    # the library under test must really have been the one we asked for
    if [ "$lines" -lt 10 ] || ! grep -q '^close = 0' "$D/$name.ours"; then
        echo "FAIL $name: the driver did not run to the end ($lines lines)"; fail=$((fail + 1)); return
    fi
    if [ "$differ" -eq 0 ] && cmp -s "$D/$name.xen" "$D/$name.ours"; then
        echo "$name: $lines calls identical"
        pass=$((pass + lines))
    else
        echo "FAIL $name: $differ of $lines lines differ; first differences:"
        diff "$D/$name.xen" "$D/$name.ours" | head -6 | cut -c1-400
        pass=$((pass + lines - differ)) fail=$((fail + differ))
    fi
}

compare edges -- edges
compare edges-libxencall FAKEPRIVCMD_PROBE_ERRNO=ENOTTY -- edges
compare edges-proc-privcmd FAKEPRIVCMD_NODEV=1 FAKEPRIVCMD_PROC=1 -- edges
for seed in 1 2 3 4; do
    compare random-$seed -- random $seed 5000
done
compare random-libxencall FAKEPRIVCMD_PROBE_ERRNO=ENOTTY -- random 99 3000
compare lifecycle -- lifecycle
compare lifecycle-libxencall FAKEPRIVCMD_PROBE_ERRNO=ENOTTY -- lifecycle

# The deliberate differences, each as documented.
"${xen[@]}" $RUN $D/driver deliberate > "$D/deliberate.xen" 2>/dev/null
"${ours[@]}" $RUN $D/driver deliberate > "$D/deliberate.ours" 2>/dev/null
expect() { # FILE PATTERN WHAT
    if grep -qE "$2" "$1"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL deliberate: $3"; fi
}
expect $D/deliberate.xen  '^modified_memory_bulk\(5, 256, extents\) = 0 \| req kind 1 dom 5 bufs 2 ->0/0 \[32 [0-9a-f]+\] \[4096 ' \
    "256 extents are one request with Xen's library"
expect $D/deliberate.ours '^modified_memory_bulk\(5, 256, extents\) = 0 \| req kind 1 dom 5 bufs 2 ->0/0 \[32 [0-9a-f]+\] \[4096 ' \
    "256 extents are one request with ours"
expect $D/deliberate.xen  '^modified_memory_bulk\(5, 300, extents\) = -1 errno E2BIG$' "300 extents: E2BIG from privcmd with Xen's library"
expect $D/deliberate.ours '^modified_memory_bulk\(5, 300, extents\) = 0 \| req .*\[4096 .* \| req .*\[704 ' \
    "300 extents: two requests (256 + 44 extents) with ours"
expect $D/deliberate.xen  '^track_dirty_vram\(5, 0, 4294967295, bitmap\) = -1 errno EINVAL .*bufs 2 ->-1/22 \[32 [0-9a-f]+\] \[0 ' \
    "nr 0xffffffff: Xen's library sends a 0-byte bitmap (overflow)"
expect $D/deliberate.ours '^track_dirty_vram\(5, 0, 4294967295, bitmap\) = -1 errno E2BIG out ' \
    "nr 0xffffffff: ours computes 512 MiB, which privcmd refuses"
# A privcmd restricted at open (stub domain): Xen's library falls back to
# libxencall, ours keeps privcmd.
"${xen[@]}" FAKEPRIVCMD_PROBE_ERRNO=EPERM $RUN $D/driver deliberate > "$D/eperm.xen" 2>/dev/null
"${ours[@]}" FAKEPRIVCMD_PROBE_ERRNO=EPERM $RUN $D/driver deliberate > "$D/eperm.ours" 2>/dev/null
expect $D/eperm.xen  '^modified_memory_bulk\(5, 256, extents\) = 0 \| req kind 3 ' "EPERM probe: Xen's library uses the hypercall"
expect $D/eperm.ours '^modified_memory_bulk\(5, 256, extents\) = 0 \| req kind 1 ' "EPERM probe: ours keeps the DM_OP ioctl"

# Through libxencall, NULL buffers with a size: EFAULT from ours (Xen's crashes).
"${ours[@]}" FAKEPRIVCMD_PROBE_ERRNO=ENOTTY XDM_OURS=1 $RUN $D/driver deliberate > "$D/null-xencall.ours" 2>/dev/null
expect $D/null-xencall.ours '^track_dirty_vram\(5, 0, 8, NULL\) = -1 errno EFAULT out [0-9a-f]+$' \
    "libxencall path, NULL bitmap: EFAULT and nothing sent"
expect $D/null-xencall.ours '^modified_memory_bulk\(5, 3, NULL\) = -1 errno EFAULT$' \
    "libxencall path, NULL extents: EFAULT and nothing sent"
expect $D/null-xencall.ours '^track_dirty_vram\(5, 0, 4294967295, bitmap\) = -1 errno E2BIG out [0-9a-f]+$' \
    "libxencall path, nr 0xffffffff: E2BIG and nothing sent"

echo "differential: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
