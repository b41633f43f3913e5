#!/usr/bin/env bash
# `make check-load`: the whole `make check` suite (tests/run.sh check), RUNS
# times in a row (default 3), with the machine oversubscribed: BUSY processes
# (default twice the CPUs) spinning at this script's own priority, started
# here and stopped here (also on failure or interrupt), each bounded by
# `timeout` in case this script is killed outright (tests/lib/load.sh). Every run must pass. The
# load average is sampled every 10 s and reported per run, so the README can
# say what load each suite passed under.
#
#   tests/load/run.sh [SUITE...]     (filters as tests/run.sh check does)
set -u
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-3}
BUSY=${BUSY:-$(($(nproc) * 2))}
CEILING=${CEILING:-$((RUNS * 3600))} # seconds: the spinners end by themselves after it
out=build/load
mkdir -p "$out"
# The spinners are tests/lib/load.sh's (the one place that loads the machine):
# this script runs itself again under it.
if [ -z "${CHECK_LOAD_INNER:-}" ]; then
    exec bash tests/lib/load.sh "$BUSY" "$CEILING" env CHECK_LOAD_INNER=1 bash "$0" "$@"
fi
pids=()
stop() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2> /dev/null; done
    pids=()
}
trap stop EXIT
trap 'stop; exit 130' INT TERM
# The load average, every 10 s, to a file.
: > "$out/loadavg"
(while :; do cut -d' ' -f1 /proc/loadavg >> "$out/loadavg"; sleep 10; done) &
pids+=($!)
echo "check-load: $BUSY spinning processes on $(nproc) CPUs at nice $(nice), $RUNS runs of tests/run.sh check"
passed=0 failed=0
for i in $(seq "$RUNS"); do
    from=$(wc -l < "$out/loadavg")
    t0=$(date +%s)
    CARGO="${CARGO:-cargo}" CC="${CC:-cc}" bash tests/run.sh check "$@" > "$out/run-$i.log" 2>&1
    rc=$?
    secs=$(($(date +%s) - t0))
    load=$(tail -n +"$((from + 1))" "$out/loadavg" | awk '{s += $1; if ($1 > m) m = $1; n++} END {if (n) printf "%.1f mean, %.1f max", s / n, m; else print "n/a"}')
    counts=$(grep -E '^all: [0-9]+ passed, [0-9]+ failed$' "$out/run-$i.log" | tail -1)
    if [ "$rc" -eq 0 ] && [ -n "$counts" ]; then
        passed=$((passed + 1))
        echo "ok: run $i: ${counts#all: }, $secs s, load average $load"
    else
        failed=$((failed + 1))
        echo "FAIL: run $i (exit $rc): ${counts:-no counts}, $secs s, load average $load; log $out/run-$i.log:"
        grep -E '^FAIL|exit [0-9]' "$out/run-$i.log" | head -20
    fi
done
stop
echo "check-load: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
