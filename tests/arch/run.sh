#!/usr/bin/env bash
# `make check ARCH=arm64|armhf`: the project's suite for another architecture,
# cross-built on x86_64 and run under qemu-user (qemu-aarch64-static or
# qemu-arm-static, -L / so that the Multi-Arch libraries in /usr/lib/<triplet>
# are found). Each suite prints its own "N passed, M failed" line; the last
# line is the total. Exits non-zero if any suite fails. mk/arch.mk builds
# what this needs and passes the arch's settings in the environment.
#
# Not run here: valgrind (it cannot run foreign binaries), and the checks that
# need x86 programs (Debian's QEMU for Xen as a client, make install).
set -u
cd "$(dirname "$0")/../.."
ARCH=${1:-${ARCH:?}}
: "${B:?run through make check ARCH=$ARCH}" "${XCC:?}" "${QEMU_USER:?}" "${TRIPLET:?}" "${SYSROOT:?}"
RUN="$QEMU_USER -L /"
ORIG=/usr/lib/$TRIPLET/libxendevicemodel.so.1.4
shim=$PWD/$B/libfakeprivcmd.so
total_pass=0 total_fail=0 broken=()

# run NAME CMD...: runs a suite, adds up its "N passed, M failed" line (or
# cargo's "N passed; M failed"); no such line, or a non-zero exit, is a failure.
run() {
    local name=$1; shift
    echo "=== $name"
    local out rc line p f
    out=$("$@" 2>&1); rc=$?
    printf '%s\n' "$out"
    line=$(printf '%s\n' "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$line" ]; then
        line=$(printf '%s\n' "$out" | grep -E 'test result: .* [0-9]+ passed; [0-9]+ failed' | tail -n 1 | sed 's/;/,/')
    fi
    p=$(printf '%s' "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')
    f=$(printf '%s' "$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')
    p=${p:-0} f=${f:-0}
    if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
        [ "$f" -eq 0 ] && f=1
        broken+=("$name (exit $rc)")
    fi
    echo "--- $name: $p passed, $f failed"
    total_pass=$((total_pass + p)) total_fail=$((total_fail + f))
}

# The emulator itself: a program of this arch runs, sees its environment,
# and the library under test is ours (not Xen's, not an amd64 one).
emulation() {
    local pass=0 fail=0
    ok() { pass=$((pass + 1)); }
    bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
    local machine
    machine=$(readelf -h "$B/libxendevicemodel.so.1.4" | sed -n 's/^ *Machine: *//p')
    case $ARCH:$machine in
    arm64:AArch64) ok ;;
    armhf:ARM) readelf -h "$B/libxendevicemodel.so.1.4" | grep -q 'hard-float ABI' && ok || bad "not hard-float" ;;
    *) bad "$B/libxendevicemodel.so.1.4 is for $machine, not $ARCH" ;;
    esac
    [ "$(env XDM_PROBE=42 $RUN "$B/layout" XDM_PROBE 2>&1)" = XDM_PROBE=42 ] && ok ||
        bad "$QEMU_USER does not run $B/layout or does not pass the environment on"
    # an amd64 program is refused: what runs below is really $ARCH code
    if $RUN /bin/true 2>/dev/null; then bad "$QEMU_USER ran an amd64 program"; else ok; fi
    echo "emulation: $pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}

# What differs from x86_64 in Xen's and Linux's headers, as this arch's C
# compiler sees them, and the same numbers asserted by src/xen.rs: the
# privcmd structures' sizes and the DM_OP ioctl number must be the ones the
# Rust code was compiled with for this arch.
layout() {
    local pass=0 fail=0 c rs
    $RUN "$B/layout" > "$B/layout.txt" || { echo "layout probe failed"; echo "layout: 0 passed, 1 failed"; return 1; }
    if [ -x build/layout-amd64 ] || gcc -Wall -Werror -o build/layout-amd64 tests/arch/layout.c 2>/dev/null; then
        build/layout-amd64 > build/layout-amd64.txt
        echo "differences from x86_64 (x86_64 -> $ARCH):"
        paste -d'|' build/layout-amd64.txt "$B/layout.txt" | awk -F'|' '$1 != $2 { sub(/ = /, " = ", $2); split($2, b, " = "); print "  " $1 " -> " b[2] }'
    fi
    get() { sed -n "s/^$1 = //p" "$B/layout.txt"; }
    # the number the library really sends: what the test double saw from ours
    c=$(get IOCTL_PRIVCMD_DM_OP)
    rs=$(grep -o 'IOCTL_PRIVCMD_DM_OP == 0x[0-9a-f_]*' src/xen.rs | sed 's/.*== //; s/_//g' | sort -u)
    if printf '%s\n' $rs | grep -qx "$(printf '0x%08x' "$c")"; then pass=$((pass + 1)); else
        fail=$((fail + 1)); echo "FAIL: IOCTL_PRIVCMD_DM_OP here is $c, src/xen.rs asserts only $rs"; fi
    for t in privcmd_dm_op_t privcmd_dm_op_buf_t xen_pfn_t; do
        [ -n "$(get "sizeof $t")" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: no size for $t"; }
    done
    echo "layout: $pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}

abidiff_orig() {
    # any added, removed or changed symbol or type is an ABI change
    if abidiff "$ORIG" "$B/libxendevicemodel.so.1.4" > "$B/abidiff.txt" 2>&1; then
        echo "abidiff $ORIG $B/libxendevicemodel.so.1.4: no difference"
        echo "abidiff: 1 passed, 0 failed"
    else
        echo "abidiff status $?:"; head -20 "$B/abidiff.txt"
        echo "abidiff: 0 passed, 1 failed"; return 1
    fi
}

# deps.sh's restriction of an apt source, on a copy of this machine's sources:
# the entry for the failing suite loses ARCH, every other line stays.
apt_restrict() {
    local t pass=0 fail=0
    t=$(mktemp -d); mkdir -p "$t/sources.list.d"
    cp /etc/apt/sources.list.d/*.sources "$t/sources.list.d/" 2>/dev/null
    printf 'Types: deb\nURIs: http://example.invalid/debian-security\nSuites: bookworm-security\nComponents: main\n\nTypes: deb\nURIs: http://example.invalid/debian\nSuites: bookworm\nComponents: main\n' > "$t/sources.list.d/z.sources"
    printf 'deb http://example.invalid/debian-security bookworm-security main\ndeb http://example.invalid/debian bookworm main\n' > "$t/sources.list"
    cp -r "$t" "$t.before"
    APT_ETC=$t bash tests/arch/deps.sh "$ARCH" --restrict example.invalid/debian-security bookworm-security
    local d
    d=$(diff -r "$t.before" "$t" | grep '^[<>]' | sort)
    local keep
    keep=$( (dpkg --print-architecture; dpkg --print-foreign-architectures) | grep -vx "$ARCH" | sort -u | tr '\n' ' ')
    keep=${keep% }
    local want
    want=$(printf '%s\n' "> Architectures: $keep" "< deb http://example.invalid/debian-security bookworm-security main" \
        "> deb [arch=${keep// /,}] http://example.invalid/debian-security bookworm-security main" | sort)
    if [ "$d" = "$want" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: restriction changed:"; echo "$d"; echo "wanted:"; echo "$want"; fi
    APT_ETC=$t bash tests/arch/deps.sh "$ARCH" --restrict example.invalid/debian-security bookworm-security
    if [ "$(diff -r "$t.before" "$t" | grep '^[<>]' | sort)" = "$want" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: a second restriction changed more"; fi
    rm -rf "$t" "$t.before"
    echo "apt restriction: $pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}

# Xen's own arch-arm.h declares empty structures, which -pedantic refuses
# (our header is checked with -pedantic by the x86_64 suite; it is the same file).
pedantic=-Wno-pedantic
run "emulation ($QEMU_USER)" emulation
run "layout: Xen's and Linux's headers for $ARCH vs src/xen.rs" layout
run "cargo unit tests ($ARCH, under $QEMU_USER)" \
    bash -c "$CARGO_ENV /usr/bin/cargo test --release --locked --lib --target $RUST_TARGET"
run "ABI: exports, versions, SONAME, header ($ARCH, vs Debian's $ORIG)" \
    env LIB="$B/libxendevicemodel.so.1.4" ORIG="$ORIG" CC="$XCC" XCFLAGS="-I$SYSROOT/usr/include $pedantic" SHIM="$shim" RUN="$RUN" \
    bash tests/abi/check-abi.sh
run "abidiff against Debian's $ARCH library" abidiff_orig
run "apt: restricting a source that cannot serve $ARCH" apt_restrict
run "privcmd test double vs Xen's own $ARCH library" \
    env LD_PRELOAD="$shim" LD_LIBRARY_PATH="$PWD/$B/orig:$PWD/$B" $RUN "$B/fake-selftest"
run "differential: Xen's $ARCH library vs ours, same requests and results" \
    env B="$B" CC="$XCC" XCFLAGS="-I$SYSROOT/usr/include" XLDFLAGS="-L$SYSROOT/usr/lib/$TRIPLET -Wl,-rpath-link,/usr/lib/$TRIPLET:$PWD/$B" \
    RUN="$RUN" bash tests/differential/run.sh

ours=(env LD_LIBRARY_PATH="$PWD/$B" LD_PRELOAD="$shim")
for t in "$B"/test_*; do
    run "$(basename "$t") ($ARCH)" "${ours[@]}" $RUN "$t"
done
# Without membarrier, calls pin handles with shared counts instead of records.
for t in test_handles test_hazard; do
    run "$t, membarrier unavailable ($ARCH)" "${ours[@]}" FAKEPRIVCMD_MEMBARRIER_ERRNO=ENOSYS $RUN "$B/$t"
done
echo "=== valgrind memcheck: skipped (valgrind cannot run $ARCH programs under emulation; the x86_64 suite runs it)"

echo
if [ ${#broken[@]} -gt 0 ]; then
    printf 'broken: %s\n' "${broken[@]}"
fi
echo "all ($ARCH): $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ ${#broken[@]} -eq 0 ]
