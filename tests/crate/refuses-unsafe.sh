#!/usr/bin/env bash
# refuses-unsafe.sh CRATE FILE [DEP_DIR]: shows that the compiler, not a
# grep, keeps `unsafe` code out of FILE of CRATE (a directory under crates/):
# a copy of the crate with an `unsafe` block added to FILE must fail to
# build with the unsafe_code lint, and the unchanged copy must build. With
# DEP_DIR, the copy's path dependency on ../DEP_DIR points at the real one.
# Prints one line "refused" or what went wrong; exits 0 only when refused.
set -u
cd "$(dirname "$0")/../.."
crate=$1 file=$2 dep=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "crates/$crate" "$tmp/$crate"
[ -z "$dep" ] || sed -i "s|path = \"../$dep\"|path = \"$PWD/crates/$dep\"|" "$tmp/$crate/Cargo.toml"
# Its own workspace, sharing this one's lock file and build cache.
printf '\n[workspace]\n' >> "$tmp/$crate/Cargo.toml"
cp Cargo.lock "$tmp/$crate/"
build() { (cd "$tmp/$crate" && CARGO_TARGET_DIR="$PWD/target" "${CARGO:-cargo}" check -q --offline --lib 2>&1); }
if ! out=$(build); then
    echo "the unchanged copy does not build:"; echo "$out" | head -20; exit 1
fi
printf '\n#[allow(dead_code)]\nfn _injected() -> u8 { unsafe { core::ptr::read(&7u8) } }\n' >> "$tmp/$crate/$file"
if out=$(build); then
    echo "an unsafe block in $crate/$file was accepted"; exit 1
fi
if ! grep -q 'unsafe_code' <<< "$out"; then
    echo "the copy failed, but not for the unsafe_code lint:"; echo "$out" | head -20; exit 1
fi
echo "refused"
