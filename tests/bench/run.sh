#!/usr/bin/env bash
# `make bench`: side by side in one run, all under the privcmd test double in
# fast mode (it plays the kernel identically for every variant):
#   floor    a hand-written loop issuing the prebuilt ioctl: the least any library can do
#   ours     build/libxendevicemodel.so.1.4
#   notrace  ours built without the `trace` feature: what XENDEVICEMODEL_TRACE costs unset
#   before   ours as built from git ref $BEFORE (make bench BEFORE=<ref>), if given
#   Xen's    Debian's original library
# Reports ns/call (median of interleaved runs), instructions/call (callgrind,
# repeatable on a noisy machine: the difference between two iteration counts,
# so set-up cost cancels out), heap allocations per call and fds per handle,
# with ratios.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=build
CC=${CC:-cc}
CARGO=${CARGO:-cargo}
ORIG_DIR=$B/orig # Debian's original, alone (made by the Makefile)
ROUNDS=${ROUNDS:-9}
BEFORE=${BEFORE:-}
. tests/lib/programs.sh
program bench $B/bench

# The library without trace support, and the one of $BEFORE.
mkdir -p $B/bench-notrace
$CARGO build --release --locked -q -p xendevicemodel-rs --no-default-features --target-dir target/notrace
cp target/notrace/release/libxendevicemodel_rs.so $B/bench-notrace/libxendevicemodel.so.1
variants=(floor ours notrace)
if [ -n "$BEFORE" ]; then
    # Outside this tree: cargo would take it for a member of our workspace.
    wt=$(mktemp -d)/xendevicemodel-before
    git worktree add -q --detach "$wt" "$BEFORE"
    (cd "$wt" && $CARGO build --release --locked -q)
    mkdir -p $B/bench-before
    so=$(ls "$wt"/target/release/libxendevicemodel*.so | head -1)
    cp "$so" $B/bench-before/libxendevicemodel.so.1
    git worktree remove --force "$wt" && rmdir "$(dirname "$wt")"
    variants+=(before)
fi
variants+=(xen)

export LD_PRELOAD=$PWD/$B/libfakeprivcmd.so FAKEPRIVCMD_RECORD=0

# One-thread workloads run pinned to one CPU (the last), so that migrations do
# not add noise; the two-thread workload gets every CPU.
PIN=()
if command -v taskset >/dev/null && [ "$(nproc)" -gt 1 ]; then PIN=(taskset -c $(($(nproc) - 1))); fi

dir_of() { # variant -> "LD_LIBRARY_PATH arg"
    case $1 in
    ours) echo "$B lib" ;;
    notrace) echo "$B/bench-notrace:$B lib" ;;
    before) echo "$B/bench-before:$B lib" ;;
    xen) echo "$ORIG_DIR:$B lib" ;;
    floor) echo "$B floor" ;;
    esac
}
run() { # variant workload n [env...] -> "ns allocs fds"
    local v=$1 w=$2 n=$3 dir arg pin=("${PIN[@]}")
    read -r dir arg < <(dir_of "$v")
    [ "$w" = isa2 ] && pin=()
    shift 3
    env LD_LIBRARY_PATH=$dir "$@" "${pin[@]}" $B/bench $arg "$w" "$n" | awk '{print $4, $6, $8}'
}
instr() { # variant workload -> instructions per call
    local v=$1 w=$2 dir arg n1=2000 n2=4000 i1 i2
    read -r dir arg < <(dir_of "$v")
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
    for v in "${variants[@]}"; do : > $B/bench.$v.$w; done
    for r in $(seq "$ROUNDS"); do
        for v in "${variants[@]}"; do run $v $w $n >> $B/bench.$v.$w; done
    done
    for v in "${variants[@]}"; do
        NS[$v,$w]=$(awk '{print $1}' $B/bench.$v.$w | median)
        ALLOC[$v,$w]=$(awk '{print $2}' $B/bench.$v.$w | median)
        FDS[$v,$w]=$(awk '{print $3}' $B/bench.$v.$w | median)
        [ $w = isa2 ] || IR[$v,$w]=$(instr $v $w)
    done
    if [ $w = isa ] || [ $w = bulk ]; then # again, paying one real syscall per ioctl
        for v in "${variants[@]}"; do : > $B/bench.$v.$w.sys; done
        for r in $(seq "$ROUNDS"); do
            for v in "${variants[@]}"; do run $v $w $n FAKEPRIVCMD_SYSCALL=1 >> $B/bench.$v.$w.sys; done
        done
        for v in "${variants[@]}"; do SYS[$v,$w]=$(awk '{print $1}' $B/bench.$v.$w.sys | median); done
    fi
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
label() { case $1 in floor) echo floor ;; ours) echo ours ;; notrace) echo "no trace" ;; before) echo "before" ;; xen) echo "Xen's" ;; esac; }
row() { # label key-array workload [ratios]
    local lbl=$1 arr=$2 w=$3 v
    printf '  %-30s' "$lbl"
    for v in "${variants[@]}"; do
        local -n a=$arr
        printf ' %9s' "${a[$v,$w]:-}"
    done
    if [ "${4:-}" = ratios ]; then
        local -n a=$arr
        printf ' %10s %10s' "$(ratio "${a[ours,$w]}" "${a[floor,$w]}")" "$(ratio "${a[ours,$w]}" "${a[xen,$w]}")"
        [ -n "$BEFORE" ] && printf ' %10s' "$(ratio "${a[ours,$w]}" "${a[before,$w]}")"
    fi
    echo
}
echo
# The table, also kept for docs/performance.md (tools/docs-map tables).
mkdir -p "$B/tables"
{
echo "xendevicemodel-rs benchmark ($(nproc) cores, $(date -u +%Y-%m-%d), privcmd test double in fast mode${BEFORE:+, before = $BEFORE})"
printf '  %-30s' ""
for v in "${variants[@]}"; do printf ' %9s' "$(label $v)"; done
printf ' %10s %10s' ours/floor ours/Xen
[ -n "$BEFORE" ] && printf ' %10s' ours/before
echo
for w in isa bulk open; do
    case $w in isa) echo "set_isa_irq_level (1 buffer)" ;; bulk) echo "modified_memory_bulk (2 buffers)" ;; open) echo "open+close pair" ;; esac
    row "ns per call" NS $w ratios
    row "instructions per call" IR $w ratios
    row "heap allocations per call" ALLOC $w
    [ -n "${SYS[ours,$w]:-}" ] && row "ns per call, +1 real syscall" SYS $w ratios
done
FDS[floor,open]=1
row "fds per handle" FDS open
echo "two threads, one handle (set_isa_irq_level)"
row "ns per call, both threads" NS isa2 ratios
printf '  %-30s' "speed-up over one thread"
for v in "${variants[@]}"; do printf ' %9s' "$(ratio "${NS[$v,isa]}" "${NS[$v,isa2]}")"; done
echo
} | tee "$B/tables/bench-${ARCH:-amd64}-${DIST:-bookworm}.txt"
