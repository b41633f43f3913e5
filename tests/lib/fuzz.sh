# One libFuzzer run, for every fuzz target of the project (tests/fuzz,
# tests/ioreq-fuzz): sourced by their run.sh, after tests/lib/checks.sh.
#
#   fuzz_run NAME BINARY-NAME SECONDS
#
# from the fuzz crate's directory: builds it with coverage instrumentation
# (stable rustc flags, what cargo-fuzz passes without a sanitizer: no nightly
# toolchain needed) into target/fuzz, replays regressions/ (earlier findings,
# named for what they found) and seeds/ (each file a check), then fuzzes for
# SECONDS from seeds/ plus build/NAME/corpus (what earlier runs here found;
# the committed seeds stay as they are). A finding goes to build/NAME/ and
# fails the run. The library's own log lines are left out of the log.
#
# For another architecture (tests/fuzz/run.sh with ARCH), the caller sets
# FUZZ_TRIPLE (the Rust target), FUZZ_CARGO_ENV (what `env` gives cargo: the
# cross linker and compilers), FUZZ_RUSTFLAGS (added flags) and FUZZ_RUN (the
# emulator the target runs under, with its environment); FUZZ_BUILD names the
# build/ directory (default NAME).
fuzz_run() {
    local name=$1 target=$2 seconds=$3 root bin b log rc execs cov triple=${FUZZ_TRIPLE:-x86_64-unknown-linux-gnu}
    root=$(cd ../.. && pwd)
    b=$root/build/${FUZZ_BUILD:-$name}
    mkdir -p "$b/corpus"
    # shellcheck disable=SC2086 # FUZZ_CARGO_ENV and FUZZ_RUN are word lists
    env ${FUZZ_CARGO_ENV:-} RUSTFLAGS="-C passes=sancov-module -C llvm-args=-sanitizer-coverage-level=4 \
-C llvm-args=-sanitizer-coverage-inline-8bit-counters -C llvm-args=-sanitizer-coverage-pc-table \
-C llvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -C debug-assertions -C overflow-checks ${FUZZ_RUSTFLAGS:-}" \
        "${CARGO:-cargo}" build --release --locked -q --target "$triple" --target-dir "$root/target/fuzz" ||
        { bad "the fuzz target does not build"; return 1; }
    bin="${FUZZ_RUN:-} $root/target/fuzz/$triple/release/$target"
    local dir n
    for dir in regressions seeds; do
        [ -d $dir ] && [ -n "$(ls $dir)" ] || continue
        n=$(ls $dir | wc -l)
        if $bin -runs=0 -artifact_prefix="$b/" $dir/* > "$b/$dir.log" 2>&1; then
            ok "$n"
            echo "$dir: $n inputs replayed, all pass"
        else
            bad "an input of $dir/ fails:"
            grep -E 'panicked|assertion|left:|right:|deadly|Running: ' "$b/$dir.log" | tail -12
        fi
    done
    log=$b/fuzz-$$.log
    $bin -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$b/" \
        "$b/corpus" seeds 2>&1 | grep -v '^xendevicemodel: ' > "$log"
    rc=${PIPESTATUS[0]}
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
    if [ "$rc" -eq 0 ] && [ -n "$execs" ]; then
        ok
        echo "$name: ${seconds}s, $execs executions, $(sed -n 's/^stat::average_exec_per_sec: *//p' "$log") per second, $cov, no finding"
        rm -f "$log"
    else
        bad "a finding (exit $rc); the input is in $b/, the log in $log:"
        grep -E 'panicked|assertion|differ|left:|right:|deadly|Test unit written' "$log" | head -12
    fi
}
