#!/usr/bin/env bash
# Fuzzing of the C ABI (fuzz_targets/c_abi.rs) with libFuzzer, with Xen's
# library as the oracle, under the privcmd test double:
#   tests/fuzz/run.sh SECONDS     (see tests/lib/fuzz.sh)
set -u
cd "$(dirname "$0")"
. ../lib/checks.sh
. ../lib/fuzz.sh
export LD_PRELOAD=$(cd ../.. && pwd)/build/libfakeprivcmd.so
# Our shared object, for the target's dlclose/dlopen cycles.
export XDM_FUZZ_LIB=$(cd ../.. && pwd)/build/libxendevicemodel.so.1.4
fuzz_run fuzz c_abi "${1:-20}"
summary fuzz
