#!/usr/bin/env bash
# Fuzzing of the C ABI (tests/fuzz/fuzz_targets/c_abi.rs) with libFuzzer,
# against Xen's library as the oracle, under the privcmd test double.
#   tests/fuzz/run.sh SECONDS     fuzz for SECONDS from the committed seed corpus
# Coverage instrumentation uses stable rustc flags (what cargo-fuzz passes
# without a sanitizer), so no nightly toolchain is needed. New corpus entries
# go to build/fuzz/corpus (the committed seeds stay as they are); findings go
# to build/fuzz/ and fail the run: every finding becomes a file in
# tests/fuzz/regressions/ (named for what it found), which this script
# replays first.
set -u
cd "$(dirname "$0")"
SECONDS_=${1:-20}
ROOT=$(cd ../.. && pwd)
B=$ROOT/build/fuzz
mkdir -p "$B/corpus"
export RUSTFLAGS="-C passes=sancov-module -C llvm-args=-sanitizer-coverage-level=4 -C llvm-args=-sanitizer-coverage-inline-8bit-counters -C llvm-args=-sanitizer-coverage-pc-table -C llvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -C debug-assertions -C overflow-checks"
"${CARGO:-cargo}" build --release --locked -q --target x86_64-unknown-linux-gnu --target-dir "$ROOT/target/fuzz" || { echo "fuzz: 0 passed, 1 failed"; exit 1; }
bin=$ROOT/target/fuzz/x86_64-unknown-linux-gnu/release/c_abi
export LD_PRELOAD=$ROOT/build/libfakeprivcmd.so
pass=0 fail=0
# Every earlier finding, replayed.
if [ -d regressions ] && [ -n "$(ls regressions)" ]; then
    if "$bin" -runs=0 regressions/* > "$B/regressions.log" 2>&1; then
        pass=$((pass + $(ls regressions | wc -l)))
        echo "regressions: $(ls regressions | wc -l) earlier findings replayed, all pass"
    else
        fail=$((fail + 1)); tail -30 "$B/regressions.log"
    fi
fi
# Fuzz: the committed seeds plus what earlier runs here found. The
# library's own log lines (calls on bogus handles) are left out of the log.
log=$B/fuzz-$$.log
"$bin" -max_total_time="$SECONDS_" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$B/" \
    "$B/corpus" seeds 2>&1 | grep -v '^xendevicemodel: ' > "$log"
rc=${PIPESTATUS[0]}
grep -E '^#[0-9]+ +(DONE|pulse)|stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|cov:' "$log" | tail -4
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
if [ $rc -eq 0 ] && [ -n "$execs" ]; then
    pass=$((pass + 1))
    echo "fuzz: ${SECONDS_}s, $execs executions, $(sed -n 's/^stat::average_exec_per_sec: *//p' "$log") per second, $cov, no finding"
    rm -f "$log"
else
    fail=$((fail + 1))
    echo "FAIL: a finding (exit $rc); the input is in $B/, the log in $log:"
    grep -E 'panicked|differ|left:|right:|deadly|Test unit written' "$log" | head -12
fi
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
