#!/usr/bin/env bash
# Runs a command with the machine oversubscribed, to prove that a check holds
# under load: N busy processes at the command's own priority (they inherit
# its nice value), started before the command and stopped when it ends, and
# in any case after CEILING seconds (each runs under `timeout`). Prints the
# load average before and after, and exits with the command's status.
#
#   tests/lib/load.sh N CEILING CMD...
#   e.g. flock /work/vm.lock tests/lib/load.sh 4 3600 make xen-check
set -u
ME=load
. "$(dirname "$0")/common.sh"
n=${1:?usage: load.sh N CEILING CMD...} ceiling=${2:?} && shift 2
[ $# -gt 0 ] || die "no command"
pids=()
stop() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null; done
    wait "${pids[@]}" 2> /dev/null
    pids=()
}
trap stop EXIT
trap 'stop; exit 130' INT TERM
for _ in $(seq "$n"); do
    timeout "$ceiling" sh -c 'while :; do :; done' &
    pids+=($!)
done
say "$n busy processes on $(nproc) CPUs (at most ${ceiling}s), load average $(cut -d' ' -f1-3 /proc/loadavg); running: $*"
t0=$SECONDS
"$@"
rc=$?
alive=0
for p in "${pids[@]}"; do kill -0 "$p" 2> /dev/null && alive=$((alive + 1)); done
say "the command exited $rc after $((SECONDS - t0))s, load average $(cut -d' ' -f1-3 /proc/loadavg); $alive of $n busy processes still running"
[ "$alive" = "$n" ] || say "the load ended before the command did (CEILING ${ceiling}s): the command was not loaded throughout"
stop
exit $rc
