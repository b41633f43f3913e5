#!/usr/bin/env bash
# Figures of the ioreq session against the simulated hypervisor (not part of
# `make check`: timings on a shared machine are not assertions).
#   tests/ioreq/bench.sh [SECONDS_PER_POINT]
# Instructions per operation come from callgrind (the difference between
# 40000 and 20000 iterations, so setup cancels out): repeatable under load,
# unlike the ns figures that follow them.
set -eu
cd "$(dirname "$0")/../.."
B=${B:-build}/ioreq
mkdir -p "$B"
"${CARGO:-cargo}" build --release --locked -q -p xendevicemodel-ioreq-sim --example sim-bench
bin=target/release/examples/sim-bench
instr() { # what -> instructions per iteration
    local n i1 i2
    for n in 20000 40000; do
        valgrind --tool=callgrind --callgrind-out-file="$B/cg.out" "$bin" count "$1" $n > /dev/null 2>&1
        i2=$(awk '/^(summary|totals):/ {print $2; exit}' "$B/cg.out")
        [ $n = 20000 ] && i1=$i2
    done
    echo $(((i2 - i1) / 20000))
}
d=$(instr decode) f=$(instr floor) s=$(instr session)
echo "instructions: decode $d, one-thread round trip $s of which the simulator $f: the session's own $((s - f))"
"$bin" "${1:-2}"
