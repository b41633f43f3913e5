#!/usr/bin/env bash
# The suites only a foreign architecture has (tests/run.sh runs them when ARCH
# is arm64 or armhf, with mk/arch.mk's settings in the environment):
#   emulation   the emulator runs this arch's programs, passes the environment
#               on, and refuses amd64 ones: what runs is really $ARCH code
#   layout      Xen's and Linux's headers as this arch's C compiler sees them,
#               against the facts the Rust code was compiled with (also on amd64)
#   abidiff     ours against Debian's library for the arch
#   apt         deps.sh's restriction of an apt source that cannot serve $ARCH
set -u
cd "$(dirname "$0")/../.."
. tests/lib/checks.sh
# Native (amd64) runs only `layout`, with the host's compiler and cargo.
ARCH=${ARCH:-amd64}
B=${B:-build}
if [ "$ARCH" != amd64 ]; then
    : "${QEMU_USER:?}" "${TRIPLET:?}" "${SYSROOT:?}"
    RUN=("$QEMU_USER" -L /)
    ORIG=/usr/lib/$TRIPLET/libxendevicemodel.so.1.4
else
    RUN=()
fi

emulation() {
    local machine
    machine=$(readelf -h "$B/libxendevicemodel.so.1.4" | sed -n 's/^ *Machine: *//p')
    case $ARCH:$machine in
    arm64:AArch64) ok ;;
    armhf:ARM) check "$B/libxendevicemodel.so.1.4 is hard-float" sh -c "readelf -h '$B/libxendevicemodel.so.1.4' | grep -q 'hard-float ABI'" ;;
    *) bad "$B/libxendevicemodel.so.1.4 is for $machine, not $ARCH" ;;
    esac
    check "$QEMU_USER runs $B/layout and passes the environment on" \
        test "$(env XDM_PROBE=42 "${RUN[@]}" "$B/layout" XDM_PROBE 2>&1)" = XDM_PROBE=42
    check "$QEMU_USER refuses an amd64 program" sh -c "! ${RUN[*]} /bin/true 2>/dev/null"
    summary emulation
}

# The facts src/ (crates/xendevicemodel/src/arch.rs, os.rs) was compiled with
# for this arch, printed by a unit test run under the emulator, must be what
# the C compiler sees in the same headers, line for line.
layout() {
    local test=(c_view_of_the_kernel_abi -- --nocapture)
    if [ "$ARCH" = amd64 ]; then
        ${CC:-cc} -Wall -Werror -o "$B/layout" tests/arch/layout.c || bad "the layout probe does not build"
        "$B/layout" > "$B/layout.txt" || bad "the layout probe failed"
        "${CARGO:-cargo}" test -q --release --locked -p xendevicemodel --lib "${test[@]}" 2>/dev/null
    else
        "${RUN[@]}" "$B/layout" > "$B/layout.txt" || bad "the layout probe failed"
        bash -c "$CARGO_ENV /usr/bin/cargo test -q --release --locked -p xendevicemodel --lib --target $RUST_TARGET ${test[*]}" 2>/dev/null
    fi | grep -E '^(sizeof|offsetof|IOCTL)' | sort -u > "$B/layout.rust"
    grep -F -f <(sed 's/ = .*/ = /' "$B/layout.rust") "$B/layout.txt" | sort -u > "$B/layout.c"
    compare "the kernel and dm_op ABI as the Rust build and the C compiler see it ($ARCH)" "$B/layout.c" "$B/layout.rust" 30
    [ "$ARCH" = amd64 ] && { summary layout; return; }
    if [ -x build/layout-amd64 ] || gcc -Wall -Werror -o build/layout-amd64 tests/arch/layout.c 2>/dev/null; then
        build/layout-amd64 > build/layout-amd64.txt
        echo "differences from x86_64 (x86_64 -> $ARCH):"
        paste -d'|' build/layout-amd64.txt "$B/layout.txt" |
            awk -F'|' '$1 != $2 { split($2, b, " = "); print "  " $1 " -> " b[2] }'
    fi
    summary layout
}

abidiff_orig() {
    # any added, removed or changed symbol or type is an ABI change
    if abidiff "$ORIG" "$B/libxendevicemodel.so.1.4" > "$B/abidiff.txt" 2>&1; then
        ok
        echo "abidiff $ORIG $B/libxendevicemodel.so.1.4: no difference"
    else
        bad "abidiff status $?: $(head -5 "$B/abidiff.txt" | tr '\n' ' ')"
    fi
    summary abidiff
}

# deps.sh's restriction of an apt source, on a copy of this machine's sources:
# the entry for the failing suite loses ARCH, every other line stays.
apt_restrict() {
    local t
    t=$(mktemp -d)
    mkdir -p "$t/sources.list.d"
    cp /etc/apt/sources.list.d/*.sources "$t/sources.list.d/" 2>/dev/null
    printf 'Types: deb\nURIs: http://example.invalid/debian-security\nSuites: bookworm-security\nComponents: main\n\nTypes: deb\nURIs: http://example.invalid/debian\nSuites: bookworm\nComponents: main\n' > "$t/sources.list.d/z.sources"
    printf 'deb http://example.invalid/debian-security bookworm-security main\ndeb http://example.invalid/debian bookworm main\n' > "$t/sources.list"
    cp -r "$t" "$t.before"
    APT_ETC=$t bash tests/arch/deps.sh "$ARCH" --restrict example.invalid/debian-security bookworm-security
    local keep
    keep=$( (dpkg --print-architecture; dpkg --print-foreign-architectures) | grep -vx "$ARCH" | sort -u | tr '\n' ' ')
    keep=${keep% }
    printf '%s\n' "> Architectures: $keep" "< deb http://example.invalid/debian-security bookworm-security main" \
        "> deb [arch=${keep// /,}] http://example.invalid/debian-security bookworm-security main" | sort > "$t.want"
    diff -r "$t.before" "$t" | grep '^[<>]' | sort > "$t.got"
    compare "what restricting the failing source changed" "$t.want" "$t.got" 3
    APT_ETC=$t bash tests/arch/deps.sh "$ARCH" --restrict example.invalid/debian-security bookworm-security
    diff -r "$t.before" "$t" | grep '^[<>]' | sort > "$t.got"
    compare "a second restriction changes nothing more" "$t.want" "$t.got" 3
    rm -rf "$t" "$t.before" "$t.want" "$t.got"
    summary apt-restriction
}

case ${1:-} in
emulation) emulation ;;
layout) layout ;;
abidiff) abidiff_orig ;;
apt) apt_restrict ;;
*) echo "usage: tests/arch/run.sh emulation|layout|abidiff|apt" >&2; exit 2 ;;
esac
