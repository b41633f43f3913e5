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
#   tests/run.sh guest            real Linux guests on QEMU over each library (make guest-check)
#   tests/run.sh deb              the Debian package on this machine (make deb-check)
#   tests/run.sh deb-upgrade      a Debian 12 root with the package, upgraded to 13 (make deb-upgrade-check)
#   tests/run.sh list             the suites of `check`
#   tests/run.sh check NAME...    only the suites whose names contain a NAME
#
# With ARCH=arm64 or armhf (`make check ARCH=...`, mk/arch.mk passes its
# settings), the programs are cross-built and run under qemu-user; the suites
# that need amd64 programs (valgrind, Debian's QEMU, the fuzzer) are left out.
set -u
cd "$(dirname "$0")/.."
ARCH=${ARCH:-amd64}
B=${B:-build}
CC=${CC:-cc}
CARGO=${CARGO:-cargo}
XFLAGS=() # Xen's headers and libraries of a foreign arch
RUN=()    # the emulator of a foreign arch
if [ "$ARCH" != amd64 ]; then
    : "${XCC:?run through make check ARCH=$ARCH}" "${QEMU_USER:?}" "${TRIPLET:?}" "${SYSROOT:?}"
    CC=$XCC
    XFLAGS=(-I"$SYSROOT/usr/include" -L"$SYSROOT/usr/lib/$TRIPLET" -Wl,-rpath-link,"/usr/lib/$TRIPLET:$PWD/$B")
    RUN=("$QEMU_USER" -L /)
fi
ORIG=/usr/lib/$([ "$ARCH" = amd64 ] && echo x86_64-linux-gnu || echo "$TRIPLET")/libxendevicemodel.so.1
SHIM=$PWD/$B/libfakeprivcmd.so
# ours|xen [VAR=value...] PROGRAM [ARGS...]: runs a test program with our
# library or Xen's, under the privcmd test double (and the emulator).
ours() { with_lib "$PWD/$B" "$@"; }
xen() { with_lib "$PWD/$B/orig:$PWD/$B" "$@"; }
with_lib() {
    local dirs=$1 envs=()
    shift
    while [[ $1 == *=* ]]; do envs+=("$1"); shift; done
    env LD_LIBRARY_PATH="$dirs" LD_PRELOAD="$SHIM" "${envs[@]}" "${RUN[@]}" "$@"
}
VALGRIND=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,possible
          --show-leak-kinds=definite,possible --child-silent-after-fork=no)

mode=${1:-check}
shift || true
filters=("$@")

# ---- building the C test programs (tests/lib/programs.sh: one set of flags) ----
. tests/lib/programs.sh
build_failed=()
# build NAME [OUT]: one test program, a failure recorded for the table.
build() { program "$1" "${2:-$B/$1}" || build_failed+=("${2:-$B/$1}"); }
harness=()
build_all() {
    local t name
    for t in tests/harness/test_*.c; do
        name=$(basename "$t" .c)
        build "$name" && harness+=("$name")
    done
    build fake-selftest
    build driver "$B/differential/driver"
    build unload
    [ "$ARCH" = amd64 ] || build layout
    # Its seccomp filter names x86_64 system calls.
    [ "$ARCH" != amd64 ] || build sandbox
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
    suite "unit tests (cargo: every crate of the workspace, doc examples)" "$CARGO" test --release --locked --workspace
    # Debian 13's clippy (1.85) counts `a << n | b` as `precedence`; newer ones moved that to
    # `precedence_bits` (allowed by default): asked for, so that both releases lint alike.
    local bits=
    $CARGO clippy --explain precedence_bits > /dev/null 2>&1 && bits="-D clippy::precedence_bits"
    suite "lint: rustfmt, clippy without warnings" bash -c \
        ". tests/lib/checks.sh; check 'cargo fmt --check' $CARGO fmt --all --check
         check 'cargo clippy -D warnings' $CARGO clippy -q --release --locked --workspace --all-targets --all-features -- -D warnings $bits; summary lint"
    suite "model checking of the liveness protocol (loom)" bash tests/model/run.sh
    suite "compare self-test" sh tests/lib/run.sh
    suite "ABI: exports, versions, SONAME, header" bash tests/abi/run.sh
    suite "layout: the kernel and dm_op ABI as Rust and C see it" bash tests/arch/run.sh layout
    suite "abidiff and a real client (Debian's QEMU for Xen)" bash tests/abi/run.sh real-client
    suite "make install, pkg-config" bash tests/install/run.sh
    suite "privcmd test double vs Xen's own library" xen "$B/fake-selftest"
    suite "differential: Xen's library vs ours" bash tests/differential/run.sh
    suite "the safe crate: docs, package, unsafe only in its os module" bash tests/crate/run.sh
    suite "module graphs without a cycle (the C library, every crate)" bash tests/crate/run.sh modules
    suite "the safe crate's example device model" bash tests/example/run.sh
    suite "the ioreq crate: docs, unsafe refused, docs/rust.md example" bash tests/ioreq/run.sh
    suite "documents: links, paths, the architecture map (docs/)" bash tests/docs/run.sh
    harness_suites ""
    local t
    for t in "${harness[@]}"; do
        case $t in test_alloc | test_exhaustion) continue ;; esac # they wrap the allocator memcheck replaces
        suite "$t under valgrind memcheck" ours "${VALGRIND[@]}" "$B/$t"
    done
    suite "QEMU's sandbox policy (seccomp): ours and Xen's library" bash tests/sandbox/run.sh
    # Load, use from threads, close, unload, 100 times; then fork.
    suite "unload: ours (stays mapped)" env LD_PRELOAD="$SHIM" "$B/unload" "$PWD/$B/libxendevicemodel.so.1.4" stays
    suite "unload: ours under valgrind memcheck" env LD_PRELOAD="$SHIM" "${VALGRIND[@]}" "$B/unload" \
        "$PWD/$B/libxendevicemodel.so.1.4" stays
    suite "unload: Xen's library, for comparison (unmapped)" env LD_PRELOAD="$SHIM" "$B/unload" \
        /usr/lib/x86_64-linux-gnu/libxendevicemodel.so.1 unmapped
    suite "fuzzing the C ABI (short run)" bash tests/fuzz/run.sh "${FUZZ_SECONDS:-20}"
    suite "fuzzing ioreq decoding and session (short run)" bash tests/ioreq-fuzz/run.sh "${IOREQ_FUZZ_SECONDS:-10}"
    suite "the virtio-blk guest program on an image file" bash tests/virtio/run.sh
    suite "fuzzing virtio-blk chains and the virtio-pci transport (short)" bash tests/virtio-fuzz/run.sh "${VIRTIO_FUZZ_SECONDS:-10}"
}

# The C harness against the privcmd double; again without membarrier (an old
# kernel, a seccomp policy), where calls pin handles with shared counts
# instead of per-thread records. SUFFIX names the architecture, if foreign.
harness_suites() {
    local t suffix=$1
    for t in "${harness[@]}"; do
        suite "$t$suffix" ours "$B/$t"
    done
    for t in test_handles test_hazard test_forkpoints; do
        suite "$t, membarrier unavailable$suffix" ours FAKEPRIVCMD_MEMBARRIER_ERRNO=ENOSYS "$B/$t"
    done
    # What Xen's library sends at the same edges (it crashes on a few, left out).
    suite "test_xsa506 with Xen's library$suffix" xen "$B/test_xsa506" xen
    # The same signal handlers on Xen's library, which completes them too.
    suite "test_signals with Xen's library$suffix" xen "$B/test_signals" xen
}

# The suites of a foreign architecture, under qemu-user.
arch_suites() {
    build_all
    suite "emulation ($QEMU_USER)" bash tests/arch/run.sh emulation
    suite "layout: the kernel and dm_op ABI as Rust and C see it ($ARCH)" bash tests/arch/run.sh layout
    suite "unit tests ($ARCH, under $QEMU_USER)" bash -c \
        "$CARGO_ENV /usr/bin/cargo test --release --locked -p xendevicemodel-rs -p xendevicemodel --lib --target $RUST_TARGET"
    # Xen's arch-arm.h declares empty structures, which -pedantic refuses (the
    # amd64 suite checks our header, the same file, with -pedantic).
    suite "ABI: exports, versions, SONAME, header ($ARCH, vs Debian's)" env LIB="$B/libxendevicemodel.so.1.4" \
        ORIG="${ORIG}.4" CC="$XCC" XCFLAGS="-I$SYSROOT/usr/include -Wno-pedantic" SHIM="$SHIM" RUN="${RUN[*]}" \
        bash tests/abi/run.sh
    suite "abidiff against Debian's $ARCH library" bash tests/arch/run.sh abidiff
    suite "apt: restricting a source that cannot serve $ARCH" bash tests/arch/run.sh apt
    suite "compare self-test" sh tests/lib/run.sh
    suite "privcmd test double vs Xen's own $ARCH library" xen "$B/fake-selftest"
    suite "differential: Xen's $ARCH library vs ours" env B="$B" RUN="${RUN[*]}" bash tests/differential/run.sh
    harness_suites " ($ARCH)"
    suite "unload: ours ($ARCH)" env LD_PRELOAD="$SHIM" "${RUN[@]}" "$B/unload" "$PWD/$B/libxendevicemodel.so.1.4" stays
    suite "unload: Xen's $ARCH library (unmapped)" env LD_PRELOAD="$SHIM" "${RUN[@]}" "$B/unload" "$ORIG" unmapped
    echo "valgrind, Debian's QEMU, make install, the fuzzer, loom, lint: amd64 only (they run there)"
}

case $mode in
check) if [ "$ARCH" = amd64 ]; then check_suites; else arch_suites; fi ;;
list) check_suites() { :; }; grep -oE 'suite "[^"]+"' "$0" | cut -d'"' -f2; exit 0 ;;
xen) if [ "$ARCH" = amd64 ]; then
        suite "real hypervisor: Xen ${DIST_XEN:-4.17} under QEMU" bash tests/xen-hypervisor/run.sh amd64
    else
        suite "real hypervisor: Xen ${DIST_XEN:-4.17} for Arm under QEMU ($ARCH)" bash tests/xen-hypervisor/run.sh "$ARCH"
    fi ;;
guest) suite "real guests: Linux on QEMU over Xen's library and ours" bash tests/guest/run.sh ;;
deb) suite "Debian package: build, install, reinstall, purge${DEB_CHECK_ROOT:+ (in $DEB_CHECK_ROOT)}" \
    bash tests/deb/run.sh "$DEB_CHANGES" ;;
deb-upgrade) suite "Debian package: a Debian $DIST_RELEASE host upgraded to $DIST_NEXT with it installed" \
    bash tests/deb/upgrade.sh "$DEB_CHANGES" ;;
*) echo "usage: tests/run.sh check|xen|guest|deb|deb-upgrade|list [SUITE...]" >&2; exit 2 ;;
esac
# A full run's table is kept in build/tables/ (tools/docs-map tables puts it
# into the documents); after a full `make check` the documented table must
# name the same suites.
out=$(table)
rc=$?
printf '%s\n' "$out"
if [ ${#filters[@]} -eq 0 ]; then
    rec="$B/tables/$mode-$ARCH-${DIST:-bookworm}.txt"
    mkdir -p "$B/tables" && printf '%s\n' "$out" > "$rec"
    if [ "$mode-$ARCH-${DIST:-bookworm}" = check-amd64-bookworm ]; then
        bash tools/docs-map suites "$rec" || rc=1
    fi
fi
exit $rc
