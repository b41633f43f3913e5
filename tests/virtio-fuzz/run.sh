#!/usr/bin/env bash
# Fuzzing of the virtio-blk device (fuzz_targets/blk.rs) with libFuzzer:
# random descriptor tables, available rings and request bytes in guest
# memory, no hypervisor.
#   tests/virtio-fuzz/run.sh SECONDS     (see tests/lib/fuzz.sh)
set -u
cd "$(dirname "$0")"
. ../lib/checks.sh
. ../lib/fuzz.sh
fuzz_run virtio-fuzz virtio-blk "${1:-10}"
summary virtio-fuzz
