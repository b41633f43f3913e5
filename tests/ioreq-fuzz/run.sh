#!/usr/bin/env bash
# Fuzzing of ioreq request decoding and the session's state machine
# (fuzz_targets/ioreq.rs) with libFuzzer, against the simulated hypervisor:
# no hypervisor, no LD_PRELOAD.
#   tests/ioreq-fuzz/run.sh SECONDS     (see tests/lib/fuzz.sh)
set -u
cd "$(dirname "$0")"
. ../lib/checks.sh
. ../lib/fuzz.sh
fuzz_run ioreq-fuzz ioreq "${1:-10}"
summary ioreq-fuzz
