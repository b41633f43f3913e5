#!/usr/bin/env bash
# The ioreq-session crate (crates/xendevicemodel-ioreq) beyond its cargo
# tests (which the workspace's `cargo test` runs): its documentation builds
# without a warning, it has no `unsafe` code (the compiler refuses it), docs/rust.md's
# device model is exactly examples/pci-sum.rs (which tests/pci.rs drives),
# and that example, run against the privcmd test double (which has no
# resource mapping), creates its server and destroys it again when mapping
# the ioreq pages fails: the real backend's undo path, request by request.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/checks.sh
B=${B:-build}
CARGO=${CARGO:-cargo}
C=crates/xendevicemodel-ioreq
out=$B/ioreq
mkdir -p "$out"
check "cargo doc without warnings" env RUSTDOCFLAGS="-D warnings" "$CARGO" doc -q -p xendevicemodel-ioreq --no-deps
check "cargo doc with the vm-memory feature (GuestRam) without warnings" \
    env RUSTDOCFLAGS="-D warnings" "$CARGO" doc -q -p xendevicemodel-ioreq --features vm-memory --no-deps
check "cargo doc of the simulator crate without warnings" \
    env RUSTDOCFLAGS="-D warnings" "$CARGO" doc -q -p xendevicemodel-ioreq-sim --no-deps
# No `unsafe` code at all: the compiler refuses it (forbid(unsafe_code)).
check "the compiler refuses unsafe code in the ioreq crate" \
    bash tests/crate/refuses-unsafe.sh xendevicemodel-ioreq src/session.rs xendevicemodel
: > "$out/empty"
# docs/rust.md's example is the file the tests run (first rust block after the heading).
awk '/^## A device model in Rust/ {s = 1} s && /^```rust(,no_run)?$/ {p = 1; next} p && /^```$/ {exit} p' docs/rust.md > "$out/readme-example.rs"
compare "docs/rust.md's device model = $C/examples/pci-sum.rs" "$C/examples/pci-sum.rs" "$out/readme-example.rs" 40
check "the example device model builds" "$CARGO" build --release --locked -q -p xendevicemodel-ioreq --example pci-sum
bin=target/release/examples/pci-sum
env LD_PRELOAD="$PWD/$B/libfakeprivcmd.so" FAKEPRIVCMD_TRACE=1 "$bin" 5 > "$out/stdout" 2> "$out/stderr"
check "without ioreq page mapping the example fails (exit 1)" test $? -eq 1
grep '^    privcmd: ' "$out/stderr" > "$out/privcmd"
compare "requests: server created, then destroyed when the mapping failed" tests/ioreq/expected.privcmd "$out/privcmd" 4
expect "$out/stderr" '^Error: Os \{ what: "map ioreq server pages", errno: ENODEV \}$' "the mapping's error reaches main"
# An unknown domain: refused by the hypervisor before anything is created.
env LD_PRELOAD="$PWD/$B/libfakeprivcmd.so" FAKEPRIVCMD_TRACE=1 "$bin" 32752 > /dev/null 2> "$out/esrch"
check "an unknown domain fails (exit 1)" test $? -eq 1
expect "$out/esrch" '^Error: Dm\(Os\(ESRCH\)\)$' "ESRCH as a typed error"
check "nothing is created for an unknown domain" sh -c "! grep -q create_ioreq_server '$out/esrch'"
summary ioreq-crate
