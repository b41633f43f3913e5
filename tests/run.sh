#!/usr/bin/env bash
# The one test runner. `make check` runs `tests/run.sh check`, `make xen-check`
# runs `tests/run.sh xen`. It builds the C test programs (against our header,
# linked to our library; the same binaries run against Xen's library by
# switching LD_LIBRARY_PATH), runs every suite, and prints one table: suite,
# checks passed, failures, seconds. A suite is a command whose last
# "NAME: N passed, M failed" line (tests/lib/checks.sh's `summary`, or
# tests/harness/check.h's `t_done`) or cargo's "test result:" lines give its
# counts; a suite that exits non-zero or prints no counts fails.
#
#   tests/run.sh check            everything that needs no hypervisor
#   tests/run.sh xen              the real-hypervisor suites (boots Xen under QEMU)
#   tests/run.sh deb              the Debian package on this machine (make deb-check)
#   tests/run.sh list             the suites of `check`
#   tests/run.sh check NAME...    only the suites whose names contain a NAME
set -u
cd "$(dirname "$0")/.."
B=${B:-build}
CC=${CC:-cc}
CARGO=${CARGO:-cargo}
SHIM=$PWD/$B/libfakeprivcmd.so
OURS=(env LD_LIBRARY_PATH="$PWD/$B" LD_PRELOAD="$SHIM")
XEN=(env LD_LIBRARY_PATH="$PWD/$B/orig:$PWD/$B" LD_PRELOAD="$SHIM")
VALGRIND=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,possible
          --show-leak-kinds=definite,possible --child-silent-after-fork=no)
CWARN=(-std=gnu11 -Wall -Wextra -Werror)

mode=${1:-check}
shift || true
filters=("$@")

# ---- building the C test programs ----
build_failed=()
# build_c OUT SRC [FLAGS...]: compiles a test program (skipped when up to date).
build_c() {
    local out=$1 src=$2
    shift 2
    if [ "$out" -nt "$src" ] && [ "$out" -nt tests/harness/check.h ] && [ "$out" -nt include/xendevicemodel.h ] &&
        [ "$out" -nt tests/fake/fakeprivcmd.h ] && [ "$out" -nt "$B/libxendevicemodel.so.1.4" ]; then
        return 0
    fi
    mkdir -p "$(dirname "$out")"
    "$CC" -O2 -g -o "$out" "$src" "$@" || { build_failed+=("$out"); return 1; }
}
harness=()
build_all() {
    local t name
    for t in tests/harness/test_*.c; do
        name=$(basename "$t" .c)
        build_c "$B/$name" "$t" "${CWARN[@]}" -D_GNU_SOURCE -Iinclude -Itests/fake -Itests/harness \
            -L"$B" -lfakeprivcmd -lxendevicemodel -lxentoolcore -lxentoollog -lpthread -ldl && harness+=("$name")
    done
    build_c "$B/fake-selftest" tests/fake/selftest.c -Wall -Werror -Itests/fake -Itests/harness -L"$B" -lfakeprivcmd \
        /usr/lib/x86_64-linux-gnu/libxendevicemodel.so.1 -lxentoolcore
    build_c "$B/differential/driver" tests/differential/driver.c -O1 "${CWARN[@]}" -Wno-format-truncation \
        -Itests/fake -L"$B" -lxendevicemodel -lfakeprivcmd
    # Loads the library itself (dlopen): not linked to it.
    build_c "$B/unload" tests/life/unload.c "${CWARN[@]}" -Itests/harness -ldl -lpthread
}

# ---- running suites ----
declare -a S_NAME S_PASS S_FAIL S_TIME S_NOTE
# suite NAME CMD...: runs CMD, shows its output, records its counts.
suite() {
    local name=$1
    shift
    if [ ${#filters[@]} -gt 0 ]; then
        local f hit=
        for f in "${filters[@]}"; do [[ $name == *"$f"* ]] && hit=1; done
        [ -n "$hit" ] || return 0
    fi
    echo "=== $name"
    local t0 out rc p f note=
    t0=$(date +%s.%N)
    out=$("$@" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    read -r p f < <(counts "$out")
    if [ "$rc" -ne 0 ] || [ -z "$p" ]; then
        [ "${f:-0}" -eq 0 ] && f=1
        note="exit $rc$([ -z "$p" ] && echo ", no counts")"
    fi
    S_NAME+=("$name") S_PASS+=("${p:-0}") S_FAIL+=("${f:-0}") S_NOTE+=("$note")
    S_TIME+=("$(echo "$(date +%s.%N) - $t0" | bc)")
}

# counts OUTPUT -> "passed failed" from its last summary line, or the sum of
# cargo's "test result:" lines; nothing if there is neither.
counts() {
    local line
    line=$(printf '%s\n' "$1" | grep -E '^[A-Za-z0-9_ ,.()-]+: [0-9]+ passed, [0-9]+ failed$' | tail -n 1)
    if [ -n "$line" ]; then
        echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/'
        return
    fi
    printf '%s\n' "$1" | grep -E '^test result: .* [0-9]+ passed; [0-9]+ failed' |
        sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/' | awk '{p += $1; f += $2} END {if (NR) print p, f}'
}

table() {
    local i tp=0 tf=0 tt=0
    echo
    printf '%-60s %9s %9s %8s\n' suite checks failures seconds
    for i in "${!S_NAME[@]}"; do
        printf '%-60s %9s %9s %8.1f %s\n' "${S_NAME[$i]}" "${S_PASS[$i]}" "${S_FAIL[$i]}" "${S_TIME[$i]}" "${S_NOTE[$i]}"
        tp=$((tp + S_PASS[i])) tf=$((tf + S_FAIL[i]))
        tt=$(echo "$tt + ${S_TIME[$i]}" | bc)
    done
    for i in "${build_failed[@]}"; do printf '%-60s %9s %9s %8s build failed\n' "$i" 0 1 -; tf=$((tf + 1)); done
    printf '%-60s %9s %9s %8.1f\n' "all" "$tp" "$tf" "$tt"
    echo "all: $tp passed, $tf failed"
    [ "$tf" -eq 0 ]
}

check_suites() {
    build_all
    suite "unit tests (cargo, both crates, doc examples)" "$CARGO" test --release --locked --workspace
    suite "model checking of the liveness protocol (loom)" bash tests/model/run.sh
    suite "compare self-test" sh tests/lib/selftest.sh
    suite "ABI: exports, versions, SONAME, header" bash tests/abi/check-abi.sh
    suite "abidiff and a real client (Debian's QEMU for Xen)" bash tests/abi/real-client.sh
    suite "make install, pkg-config" bash tests/install/check-install.sh
    suite "privcmd test double vs Xen's own library" "${XEN[@]}" "$B/fake-selftest"
    suite "differential: Xen's library vs ours" bash tests/differential/run.sh
    suite "the safe crate: docs, package, unsafe only in os.rs" bash tests/crate/run.sh
    suite "the C library's module graph has no cycle" bash tests/crate/modules.sh
    suite "the safe crate's example device model" bash tests/example/run.sh
    suite "the ioreq crate: docs, unsafe in os.rs only, README example" bash tests/ioreq/run.sh
    local t
    for t in "${harness[@]}"; do
        suite "$t" "${OURS[@]}" "$B/$t"
    done
    # Without membarrier (an old kernel, a seccomp policy) calls pin handles
    # with shared counts instead of per-thread records.
    for t in test_handles test_hazard test_forkpoints; do
        suite "$t, membarrier unavailable" "${OURS[@]}" FAKEPRIVCMD_MEMBARRIER_ERRNO=ENOSYS "$B/$t"
    done
    for t in "${harness[@]}"; do
        case $t in test_alloc | test_exhaustion) continue ;; esac # they wrap the allocator memcheck replaces
        suite "$t under valgrind memcheck" "${OURS[@]}" "${VALGRIND[@]}" "$B/$t"
    done
    # Load, use from threads, close, unload, 100 times; then fork.
    suite "unload: ours (stays mapped)" env LD_PRELOAD="$SHIM" "$B/unload" "$PWD/$B/libxendevicemodel.so.1.4" stays
    suite "unload: ours under valgrind memcheck" env LD_PRELOAD="$SHIM" "${VALGRIND[@]}" "$B/unload" \
        "$PWD/$B/libxendevicemodel.so.1.4" stays
    suite "unload: Xen's library, for comparison (unmapped)" env LD_PRELOAD="$SHIM" "$B/unload" \
        /usr/lib/x86_64-linux-gnu/libxendevicemodel.so.1 unmapped
    suite "fuzzing the C ABI (short run)" bash tests/fuzz/run.sh "${FUZZ_SECONDS:-20}"
    suite "fuzzing ioreq decoding and session (short run)" bash tests/ioreq-fuzz/run.sh "${IOREQ_FUZZ_SECONDS:-10}"
}

case $mode in
check) check_suites ;;
list) check_suites() { :; }; grep -oE 'suite "[^"]+"' "$0" | cut -d'"' -f2; exit 0 ;;
xen) suite "real hypervisor: Xen 4.17 under QEMU" bash tests/xen-hypervisor/run.sh ;;
deb) suite "Debian package: build, install, reinstall, purge${DEB_CHECK_ROOT:+ (in $DEB_CHECK_ROOT)}" \
    bash tests/deb/check.sh "$DEB_CHANGES" ;;
*) echo "usage: tests/run.sh check|xen|deb|list [SUITE...]" >&2; exit 2 ;;
esac
table
