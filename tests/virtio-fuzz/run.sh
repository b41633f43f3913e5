#!/usr/bin/env bash
# Fuzzing with libFuzzer, no hypervisor: the virtio-blk device
# (fuzz_targets/blk.rs: random descriptor tables, available rings and
# request bytes in guest memory) for 2/3 of SECONDS, the virtio-pci
# transport (fuzz_targets/pci.rs: random register accesses) for the rest.
#   tests/virtio-fuzz/run.sh SECONDS     (see tests/lib/fuzz.sh)
set -u
cd "$(dirname "$0")"
. ../lib/checks.sh
. ../lib/fuzz.sh
s=${1:-10}
fuzz_run virtio-fuzz virtio-blk $((s * 2 / 3))
fuzz_run virtio-fuzz-pci virtio-pci $((s - s * 2 / 3))
summary virtio-fuzz
