#!/usr/bin/env bash
#   tests/crate/run.sh           the safe crate's checks below
#   tests/crate/run.sh modules   the module graphs of the C library and every crate (modules.sh)
# The safe crate (crates/xendevicemodel) as it would be published: its
# documentation builds without a warning, `cargo package` builds it from the
# packaged files alone, and its promises hold: `unsafe` only in the os module
# (src/os/, which the compiler enforces), and no raw pointer in the public API
# outside it.
set -u
cd "$(dirname "$0")/../.."
[ "${1:-}" != modules ] || exec bash tests/crate/modules.sh
. tests/lib/checks.sh
CARGO=${CARGO:-cargo}
C=crates/xendevicemodel
check "cargo doc without warnings" env RUSTDOCFLAGS="-D warnings" "$CARGO" doc -q -p xendevicemodel --no-deps
check "cargo doc with the vm-memory feature (os::Mapping::volatile_slice) without warnings" \
    env RUSTDOCFLAGS="-D warnings" "$CARGO" doc -q -p xendevicemodel --features vm-memory --no-deps
check "cargo package (and its verification build)" "$CARGO" package -q -p xendevicemodel --allow-dirty
check "the package holds README.md and LICENSE" \
    sh -c "'$CARGO' package -p xendevicemodel --allow-dirty --list 2>/dev/null | grep -qx README.md && '$CARGO' package -p xendevicemodel --allow-dirty --list 2>/dev/null | grep -qx LICENSE"
# `unsafe` outside the os module: the compiler refuses it (deny(unsafe_code)
# at the crate root, allowed on the os module alone).
check "the compiler refuses unsafe code outside the os module" bash tests/crate/refuses-unsafe.sh xendevicemodel src/dm.rs
: > "${B:-build}/empty"
# Raw pointers in public signatures outside the os module.
grep -nE 'pub (unsafe )?fn .*\*(mut|const) ' $C/src/*.rs > "${B:-build}/raw-in-api" || true
compare "raw pointers in the public API" "${B:-build}/empty" "${B:-build}/raw-in-api" 0
summary safe-crate
