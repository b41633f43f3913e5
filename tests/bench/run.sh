#!/usr/bin/env bash
# `make bench`: Xen's library, ours, and the bare ioctl floor, side by side in
# one run, all under the privcmd test double in fast mode (it plays the kernel
# identically for every variant). Reports ns/call (median of interleaved runs),
# instructions/call (callgrind, repeatable on a noisy machine: the difference
# between two iteration counts, so set-up cost cancels out), heap allocations
# per call and fds per handle, with ratios.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=build
CC=${CC:-cc}
ORIG_DIR=$B/orig # Debian's original, alone (made by the Makefile)
$CC -O2 -g -Wall -Werror -Iinclude -o $B/bench tests/bench/bench.c -L$B -lxendevicemodel
export LD_PRELOAD=$PWD/$B/libfakeprivcmd.so FAKEPRIVCMD_RECORD=0
ROUNDS=${ROUNDS:-9}

# One-thread workloads run pinned to one CPU (the last), so that migrations do
# not add noise; the two-thread workload gets every CPU.
PIN=()
if command -v taskset >/dev/null && [ "$(nproc)" -gt 1 ]; then PIN=(taskset -c $(($(nproc) - 1))); fi

run() { # variant workload n [env...] -> "ns allocs fds"
    local v=$1 w=$2 n=$3 dir arg=lib pin=("${PIN[@]}")
    case $v in ours) dir=$B ;; xen) dir=$ORIG_DIR:$B ;; floor) dir=$B arg=floor ;; esac
    [ "$w" = isa2 ] && pin=()
    shift 3
    env LD_LIBRARY_PATH=$dir "$@" "${pin[@]}" $B/bench $arg "$w" "$n" | awk '{print $4, $6, $8}'
}
instr() { # variant workload -> instructions per call
    local v=$1 w=$2 dir arg=lib n1=2000 n2=4000 i1 i2
    case $v in ours) dir=$B ;; xen) dir=$ORIG_DIR:$B ;; floor) dir=$B arg=floor ;; esac
    for n in $n1 $n2; do
        LD_LIBRARY_PATH=$dir valgrind --tool=callgrind --callgrind-out-file=$B/cg.out $B/bench $arg "$w" $n >/dev/null 2>&1
        eval "i$([ $n = $n1 ] && echo 1 || echo 2)=$(awk '/^(summary|totals):/ {print $2; exit}' $B/cg.out)"
    done
    echo $(( (i2 - i1) / (n2 - n1) ))
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A NS ALLOC FDS IR SYS
for w in isa bulk open isa2; do
    n=200000; [ $w = open ] && n=20000
    for v in floor ours xen; do : > $B/bench.$v.$w; done
    for r in $(seq "$ROUNDS"); do
        for v in floor ours xen; do run $v $w $n >> $B/bench.$v.$w; done
    done
    for v in floor ours xen; do
        NS[$v,$w]=$(awk '{print $1}' $B/bench.$v.$w | median)
        ALLOC[$v,$w]=$(awk '{print $2}' $B/bench.$v.$w | median)
        FDS[$v,$w]=$(awk '{print $3}' $B/bench.$v.$w | median)
        [ $w = isa2 ] || IR[$v,$w]=$(instr $v $w)
    done
    if [ $w = isa ] || [ $w = bulk ]; then # again, paying one real syscall per ioctl
        for v in floor ours xen; do : > $B/bench.$v.$w.sys; done
        for r in $(seq "$ROUNDS"); do
            for v in floor ours xen; do run $v $w $n FAKEPRIVCMD_SYSCALL=1 >> $B/bench.$v.$w.sys; done
        done
        for v in floor ours xen; do SYS[$v,$w]=$(awk '{print $1}' $B/bench.$v.$w.sys | median); done
    fi
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
echo
echo "xendevicemodel-rs benchmark ($(nproc) cores, $(date -u +%Y-%m-%d), privcmd test double in fast mode)"
printf '%-34s %10s %10s %10s %11s %11s\n' "" floor ours "Xen's" ours/floor ours/Xen
for w in isa bulk open; do
    case $w in isa) label="set_isa_irq_level (1 buffer)" ;; bulk) label="modified_memory_bulk (2 buffers)" ;; open) label="open+close pair" ;; esac
    echo "$label"
    printf '  %-32s %10s %10s %10s %11s %11s\n' "ns per call" "${NS[floor,$w]}" "${NS[ours,$w]}" "${NS[xen,$w]}" \
        "$(ratio "${NS[ours,$w]}" "${NS[floor,$w]}")" "$(ratio "${NS[ours,$w]}" "${NS[xen,$w]}")"
    printf '  %-32s %10s %10s %10s %11s %11s\n' "instructions per call" "${IR[floor,$w]}" "${IR[ours,$w]}" "${IR[xen,$w]}" \
        "$(ratio "${IR[ours,$w]}" "${IR[floor,$w]}")" "$(ratio "${IR[ours,$w]}" "${IR[xen,$w]}")"
    printf '  %-32s %10s %10s %10s\n' "heap allocations per call" "${ALLOC[floor,$w]}" "${ALLOC[ours,$w]}" "${ALLOC[xen,$w]}"
    if [ -n "${SYS[ours,$w]:-}" ]; then
        printf '  %-32s %10s %10s %10s %11s %11s\n' "ns per call, +1 real syscall" "${SYS[floor,$w]}" "${SYS[ours,$w]}" "${SYS[xen,$w]}" \
            "$(ratio "${SYS[ours,$w]}" "${SYS[floor,$w]}")" "$(ratio "${SYS[ours,$w]}" "${SYS[xen,$w]}")"
    fi
done
printf '%-34s %10s %10s %10s\n' "fds per handle" 1 "${FDS[ours,open]}" "${FDS[xen,open]}"
echo "two threads, one handle (set_isa_irq_level)"
printf '  %-32s %10s %10s %10s %11s %11s\n' "ns per call, both threads" "${NS[floor,isa2]}" "${NS[ours,isa2]}" "${NS[xen,isa2]}" \
    "$(ratio "${NS[ours,isa2]}" "${NS[floor,isa2]}")" "$(ratio "${NS[ours,isa2]}" "${NS[xen,isa2]}")"
printf '  %-32s %10s %10s %10s\n' "speed-up over one thread" "$(ratio "${NS[floor,isa]}" "${NS[floor,isa2]}")" \
    "$(ratio "${NS[ours,isa]}" "${NS[ours,isa2]}")" "$(ratio "${NS[xen,isa]}" "${NS[xen,isa2]}")"
