#!/usr/bin/env bash
# `make bench ARCH=arm64|armhf`: Xen's library for the arch, ours, and the bare
# ioctl floor (tests/bench/bench.c, cross-built), under qemu-user and the
# privcmd test double in fast mode.
#
# Instructions per call are counted exactly by QEMU itself: with -singlestep
# every translation block is one guest instruction and `-d exec,nochain` logs
# each one executed, so the log's lines are the instructions the program ran
# (valgrind and perf cannot look inside emulated code; Debian's QEMU has no
# TCG plugins). As with callgrind on x86_64, the difference between two
# iteration counts cancels start-up. Times under TCG are only relative (the
# emulator's speed, not a CPU's), reported as medians of interleaved runs.
# Heap allocations per call come from bench.c; test_alloc must see none.
set -euo pipefail
cd "$(dirname "$0")/../.."
ARCH=${1:-${ARCH:?}}
: "${B:?run through make bench ARCH=$ARCH}" "${XCC:?}" "${QEMU_USER:?}" "${SYSROOT:?}" "${TRIPLET:?}"
RUN=("$QEMU_USER" -L /)
. tests/lib/programs.sh
CC=$XCC XFLAGS=(-I"$SYSROOT/usr/include" -L"$SYSROOT/usr/lib/$TRIPLET" -Wl,-rpath-link,/usr/lib/$TRIPLET)
program bench "$B/bench"
program test_alloc "$B/test_alloc"
# Only the emulated programs get the test double (the host's tools would
# refuse an arm .so in LD_PRELOAD).
FAKE=(LD_PRELOAD="$PWD/$B/libfakeprivcmd.so" FAKEPRIVCMD_RECORD=0)
ROUNDS=${ROUNDS:-5}

dir_of() { case $1 in ours|floor) echo "$PWD/$B" ;; xen) echo "$PWD/$B/orig:$PWD/$B" ;; esac; }
arg_of() { [ "$1" = floor ] && echo floor || echo lib; }
run() { # variant workload n -> "ns allocs fds"
    env "${FAKE[@]}" LD_LIBRARY_PATH="$(dir_of "$1")" "${RUN[@]}" "$B/bench" "$(arg_of "$1")" "$2" "$3" | awk '{print $4, $6, $8}'
}
insns() { # variant workload n -> guest instructions executed by the whole process
    env "${FAKE[@]}" LD_LIBRARY_PATH="$(dir_of "$1")" "${RUN[@]}" -singlestep -d exec,nochain -D /dev/fd/3 \
        "$B/bench" "$(arg_of "$1")" "$2" "$3" 3>&1 > /dev/null | grep -c '^Trace'
}
per_call() { # variant workload -> instructions per call
    local n1=1000 n2=2000 i1 i2
    [ "$2" = open ] && n1=100 n2=200
    i1=$(insns "$1" "$2" $n1); i2=$(insns "$1" "$2" $n2)
    echo $(( (i2 - i1) / (n2 - n1) ))
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }

# The counting itself, on a loop of known length: 2 instructions per iteration.
cat > "$B/count-check.c" <<'EOF'
/* bench.sh's instruction counting must see exactly 2 instructions per iteration. */
#include <stdlib.h>
int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 0;
#if defined(__aarch64__)
    __asm__ volatile("1: subs %0, %0, #1\n b.ne 1b" : "+r"(n) : : "cc");
#else
    __asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n) : : "cc");
#endif
    return 0;
}
EOF
$XCC -O2 -o "$B/count-check" "$B/count-check.c"
c1=$("${RUN[@]}" -singlestep -d exec,nochain -D /dev/fd/3 "$B/count-check" 1000 3>&1 | grep -c '^Trace')
c2=$("${RUN[@]}" -singlestep -d exec,nochain -D /dev/fd/3 "$B/count-check" 3000 3>&1 | grep -c '^Trace')
[ $((c2 - c1)) -eq 4000 ] || { echo "bench: instruction counting is off: $((c2 - c1)) for 4000"; exit 1; }

declare -A NS ALLOC FDS IR
for w in isa bulk open; do
    n=20000; [ $w = open ] && n=2000
    for v in floor ours xen; do : > "$B/bench.$v.$w"; done
    for r in $(seq "$ROUNDS"); do
        for v in floor ours xen; do run $v $w $n >> "$B/bench.$v.$w"; done
    done
    for v in floor ours xen; do
        NS[$v,$w]=$(awk '{print $1}' "$B/bench.$v.$w" | median)
        ALLOC[$v,$w]=$(awk '{print $2}' "$B/bench.$v.$w" | median)
        FDS[$v,$w]=$(awk '{print $3}' "$B/bench.$v.$w" | median)
        IR[$v,$w]=$(per_call $v $w)
    done
done

echo
echo "xendevicemodel-rs benchmark, $ARCH under $QEMU_USER ($(date -u +%Y-%m-%d), privcmd test double in fast mode)"
printf '%-34s %10s %10s %10s %11s %11s\n' "" floor ours "Xen's" ours/floor ours/Xen
for w in isa bulk open; do
    case $w in isa) label="set_isa_irq_level (1 buffer)" ;; bulk) label="modified_memory_bulk (2 buffers)" ;; open) label="open+close pair" ;; esac
    echo "$label"
    printf '  %-32s %10s %10s %10s %11s %11s\n' "instructions per call" "${IR[floor,$w]}" "${IR[ours,$w]}" "${IR[xen,$w]}" \
        "$(ratio "${IR[ours,$w]}" "${IR[floor,$w]}")" "$(ratio "${IR[ours,$w]}" "${IR[xen,$w]}")"
    printf '  %-32s %10s %10s %10s %11s %11s\n' "ns per call under TCG (relative)" "${NS[floor,$w]}" "${NS[ours,$w]}" "${NS[xen,$w]}" \
        "$(ratio "${NS[ours,$w]}" "${NS[floor,$w]}")" "$(ratio "${NS[ours,$w]}" "${NS[xen,$w]}")"
    printf '  %-32s %10s %10s %10s\n' "heap allocations per call" "${ALLOC[floor,$w]}" "${ALLOC[ours,$w]}" "${ALLOC[xen,$w]}"
done
printf '%-34s %10s %10s %10s\n' "fds per handle" 1 "${FDS[ours,open]}" "${FDS[xen,open]}"

# 0 allocations per dm_op (the allocator is interposed; any allocation fails it).
out=$(env LD_PRELOAD="$PWD/$B/libfakeprivcmd.so" LD_LIBRARY_PATH="$PWD/$B" "${RUN[@]}" "$B/test_alloc" 2>&1) || { echo "$out"; echo "bench: test_alloc failed"; exit 1; }
echo "$out" | grep '^alloc: 0 heap allocations'
for w in isa bulk; do
    [ "${ALLOC[ours,$w]}" = 0.00 ] || { echo "bench: ours allocates ${ALLOC[ours,$w]} per $w call"; exit 1; }
done
