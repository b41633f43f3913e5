#!/usr/bin/env bash
# The whole test suite (`make check`): every suite runs, each prints its own
# "N passed, M failed" line, and the last line is the total. Exits non-zero if
# any suite fails. Expects `make lib` and the C harness to be built.
set -u
cd "$(dirname "$0")/.."
B=build
CARGO=${CARGO:-cargo}
total_pass=0 total_fail=0 broken=()
shim="$PWD/$B/libfakeprivcmd.so"

# run NAME CMD...: runs a suite, adds up its "N passed, M failed" line.
run() {
    local name=$1; shift
    echo "=== $name"
    local out rc
    out=$("$@" 2>&1); rc=$?
    printf '%s\n' "$out"
    local line p f
    line=$(printf '%s\n' "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$line" ]; then
        # cargo's format: "test result: ok. N passed; M failed"
        line=$(printf '%s\n' "$out" | grep -E 'test result: .* [0-9]+ passed; [0-9]+ failed' | tail -n 1 | sed 's/;/,/')
    fi
    p=$(printf '%s' "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')
    f=$(printf '%s' "$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')
    p=${p:-0} f=${f:-0}
    if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
        [ "$f" -eq 0 ] && f=1
        broken+=("$name (exit $rc)")
    fi
    total_pass=$((total_pass + p)) total_fail=$((total_fail + f))
}

run "cargo unit tests" $CARGO test --release --locked --lib
run "ABI: exports, versions, SONAME, header" bash tests/abi/check-abi.sh
run "abidiff and a real client (Debian's QEMU for Xen)" bash tests/abi/real-client.sh
run "make install, pkg-config" bash tests/install/check-install.sh
run "privcmd test double vs Xen's own library" \
    env LD_PRELOAD="$shim" LD_LIBRARY_PATH="$PWD/$B/orig:$PWD/$B" "$B/fake-selftest"

run "differential: Xen's library vs ours, same requests and results" bash tests/differential/run.sh

ours=(env LD_LIBRARY_PATH="$PWD/$B" LD_PRELOAD="$shim")
vg=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,possible
    --show-leak-kinds=definite,possible --child-silent-after-fork=no)
for t in "$B"/test_*; do
    name=$(basename "$t")
    run "$name" "${ours[@]}" "$t"
done
# Without membarrier (an old kernel, a seccomp policy) calls pin handles with
# shared counts instead of per-thread records: the handle rules hold there too.
for t in test_handles test_hazard; do
    run "$t, membarrier unavailable" "${ours[@]}" FAKEPRIVCMD_MEMBARRIER_ERRNO=ENOSYS "$B/$t"
done
for t in "$B"/test_*; do
    name=$(basename "$t")
    [ "$name" = test_alloc ] && continue # wraps the allocator memcheck replaces
    run "$name under valgrind memcheck" "${ours[@]}" "${vg[@]}" "$t"
done

echo
if [ ${#broken[@]} -gt 0 ]; then
    printf 'broken: %s\n' "${broken[@]}"
fi
echo "all: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ ${#broken[@]} -eq 0 ]
