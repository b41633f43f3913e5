#!/usr/bin/env bash
# The safe crate (crates/xendevicemodel) as it would be published: its
# documentation builds without a warning, `cargo package` builds it from the
# packaged files alone, and its promises hold in the source: `unsafe` only in
# src/os.rs, and no raw pointer in the public API outside it.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/checks.sh
CARGO=${CARGO:-cargo}
C=crates/xendevicemodel
check "cargo doc without warnings" env RUSTDOCFLAGS="-D warnings" "$CARGO" doc -q -p xendevicemodel --no-deps
check "cargo package (and its verification build)" "$CARGO" package -q -p xendevicemodel --allow-dirty
check "the package holds README.md and LICENSE" \
    sh -c "'$CARGO' package -p xendevicemodel --allow-dirty --list 2>/dev/null | grep -qx README.md && '$CARGO' package -p xendevicemodel --allow-dirty --list 2>/dev/null | grep -qx LICENSE"
# `unsafe` outside os.rs, except in comments.
grep -nE '\bunsafe\b' $C/src/*.rs | grep -v "^$C/src/os.rs:" | grep -vE '^[^:]+:[0-9]+:\s*//' > "${B:-build}/unsafe-outside-os" || true
: > "${B:-build}/empty"
compare "unsafe code outside the safe crate's os module" "${B:-build}/empty" "${B:-build}/unsafe-outside-os" 0
# Raw pointers in public signatures outside os.rs.
grep -nE 'pub (unsafe )?fn .*\*(mut|const) ' $C/src/*.rs | grep -vE "^$C/src/os.rs:" > "${B:-build}/raw-in-api" || true
compare "raw pointers in the public API" "${B:-build}/empty" "${B:-build}/raw-in-api" 0
summary safe-crate
