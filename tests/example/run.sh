#!/usr/bin/env bash
# The safe crate's example device model (examples/rust-device-model, which
# depends on crates/xendevicemodel by path) builds and runs against the
# privcmd test double: what it prints, and every request privcmd receives,
# must be exactly what tests/example/expected.* say.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/checks.sh
B=${B:-build}
CARGO=${CARGO:-cargo}
check "the example builds" "$CARGO" build --release --locked -q -p rust-device-model
out=$B/example
mkdir -p "$out"
env LD_PRELOAD="$PWD/$B/libfakeprivcmd.so" FAKEPRIVCMD_TRACE=1 target/release/rust-device-model 5 \
    > "$out/stdout" 2> "$out/privcmd"
check "the example exits 0" test $? -eq 0
compare "what the example prints" tests/example/expected.out "$out/stdout" 6
compare "the requests privcmd received" tests/example/expected.privcmd "$out/privcmd" 14
# An unknown domain: the hypervisor's ESRCH reaches the example as a typed error.
env LD_PRELOAD="$PWD/$B/libfakeprivcmd.so" target/release/rust-device-model 32752 > /dev/null 2> "$out/esrch"
expect "$out/esrch" '^rust-device-model: No such process \(errno ESRCH\)$' "an unknown domain's ESRCH as a typed error"
summary example
