#!/usr/bin/env bash
# Differential tests: the same driver (built by tests/run.sh against Xen's
# header) runs with Debian's original libxendevicemodel and with ours under the
# privcmd test double; every output line (call, rc, errno, out-values, request
# bytes) must match, in both directions. The documented differences (docs/differences.md)
# are checked separately, each as documented.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/checks.sh
B=${B:-build}
D=$B/differential
# For another architecture: the emulator that runs the driver (tests/run.sh).
RUN=${RUN:-}
shim=$PWD/$B/libfakeprivcmd.so
xen=(env LD_LIBRARY_PATH="$PWD/$B/orig:$PWD/$B" LD_PRELOAD="$shim")
ours=(env LD_LIBRARY_PATH="$PWD/$B" LD_PRELOAD="$shim")
[ -x $D/driver ] || { bad "$D/driver was not built (tests/run.sh builds it)"; summary differential; exit 1; }

# both NAME [ENV=...] -- ARGS: runs the driver with both libraries and compares.
both() {
    local name=$1 envs=()
    shift
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    "${xen[@]}" "${envs[@]}" $RUN $D/driver "$@" > "$D/$name.xen" 2>/dev/null
    "${ours[@]}" "${envs[@]}" $RUN $D/driver "$@" > "$D/$name.ours" 2>/dev/null
    # Both runs must have reached the end (the driver's last call is close).
    expect "$D/$name.xen" '^close = 0' "$name: the driver ran to the end with Xen's library"
    compare "$name" "$D/$name.xen" "$D/$name.ours" 10
}

both edges -- edges
both edges-libxencall FAKEPRIVCMD_PROBE_ERRNO=ENOTTY -- edges
both edges-proc-privcmd FAKEPRIVCMD_NODEV=1 FAKEPRIVCMD_PROC=1 -- edges
for seed in 1 2 3 4; do
    both random-$seed -- random $seed 5000
done
both random-libxencall FAKEPRIVCMD_PROBE_ERRNO=ENOTTY -- random 99 3000
both lifecycle -- lifecycle
both lifecycle-libxencall FAKEPRIVCMD_PROBE_ERRNO=ENOTTY -- lifecycle

# The deliberate differences, each as documented.
"${xen[@]}" $RUN $D/driver deliberate > "$D/deliberate.xen" 2>/dev/null
"${ours[@]}" $RUN $D/driver deliberate > "$D/deliberate.ours" 2>/dev/null
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

summary differential
