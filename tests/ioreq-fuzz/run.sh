#!/usr/bin/env bash
# Fuzzing of ioreq request decoding and the session's state machine
# (tests/ioreq-fuzz/fuzz_targets/ioreq.rs) with libFuzzer, against the
# simulated hypervisor: no hypervisor, no LD_PRELOAD.
#   tests/ioreq-fuzz/run.sh SECONDS     fuzz for SECONDS from the committed seeds
# Coverage instrumentation uses stable rustc flags, as tests/fuzz/run.sh.
# New corpus entries go to build/ioreq-fuzz/corpus; a finding goes to
# build/ioreq-fuzz/ and fails the run (copy it to regressions/ to keep it
# replayed first).
set -u
cd "$(dirname "$0")"
SECONDS_=${1:-10}
ROOT=$(cd ../.. && pwd)
B=$ROOT/build/ioreq-fuzz
mkdir -p "$B/corpus"
export RUSTFLAGS="-C passes=sancov-module -C llvm-args=-sanitizer-coverage-level=4 -C llvm-args=-sanitizer-coverage-inline-8bit-counters -C llvm-args=-sanitizer-coverage-pc-table -C llvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -C debug-assertions -C overflow-checks"
"${CARGO:-cargo}" build --release --locked -q --target x86_64-unknown-linux-gnu --target-dir "$ROOT/target/fuzz" ||
    { echo "ioreq-fuzz: 0 passed, 1 failed"; exit 1; }
bin=$ROOT/target/fuzz/x86_64-unknown-linux-gnu/release/ioreq
pass=0 fail=0
if [ -d regressions ] && [ -n "$(ls regressions)" ]; then
    if "$bin" -runs=0 -artifact_prefix="$B/" regressions/* > "$B/regressions.log" 2>&1; then
        pass=$((pass + $(ls regressions | wc -l)))
        echo "regressions: $(ls regressions | wc -l) earlier findings replayed, all pass"
    else
        fail=$((fail + 1)); tail -30 "$B/regressions.log"
    fi
fi
# Every committed seed runs once (each is a check), then the fuzzing.
if "$bin" -runs=0 -artifact_prefix="$B/" seeds > "$B/seeds.log" 2>&1; then
    pass=$((pass + $(ls seeds | wc -l)))
else
    fail=$((fail + 1)); echo "FAIL: a committed seed fails:"; tail -20 "$B/seeds.log"
fi
log=$B/fuzz-$$.log
"$bin" -max_total_time="$SECONDS_" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$B/" \
    "$B/corpus" seeds > "$log" 2>&1
rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
if [ $rc -eq 0 ] && [ -n "$execs" ]; then
    pass=$((pass + 1))
    echo "ioreq fuzz: ${SECONDS_}s, $execs executions, $(sed -n 's/^stat::average_exec_per_sec: *//p' "$log") per second, $cov, no finding"
    rm -f "$log"
else
    fail=$((fail + 1))
    echo "FAIL: a finding (exit $rc); the input is in $B/, the log in $log:"
    grep -E 'panicked|assertion|left:|right:|deadly|Test unit written' "$log" | head -12
fi
echo "ioreq-fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
