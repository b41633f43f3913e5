#!/usr/bin/env bash
# `make deps ARCH=arm64|armhf`: what cross-building and emulated testing need
# on an x86_64 Debian 12, without replacing any amd64 package:
# - the foreign dpkg architecture, and `apt-get update` still exiting 0 (a
#   source whose index for that architecture cannot be fetched is restricted
#   to the architectures it serves, in its own entry);
# - Debian's rustc and cargo with the target's standard library (Debian 12:
#   rustc-web, cargo-web, libstd-rust-web-dev:ARCH; Debian 13: rustc, cargo,
#   libstd-rust-dev:ARCH; mk/dist.mk's DIST_CROSS_RUST_PKGS), the cross gcc,
#   qemu-user-static, abigail-tools;
# - Xen's runtime libraries for ARCH (Multi-Arch: installed beside amd64's, at
#   the same version);
# - libxen-dev:ARCH (headers, link names), which would replace amd64's if
#   installed: fetched with apt-get download and unpacked into
#   build/ARCH/sysroot, its .so links pointed at the installed libraries.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/dist/env.sh
read -r RUSTC_PKG CARGO_PKG LIBSTD_PKG <<< "$DIST_CROSS_RUST_PKGS"
ARCH=${1:?usage: deps.sh arm64|armhf}
case $ARCH in
arm64) TRIPLET=aarch64-linux-gnu ;;
armhf) TRIPLET=arm-linux-gnueabihf ;;
*) echo "deps: unsupported ARCH $ARCH" >&2; exit 2 ;;
esac
SYSROOT=build/$ARCH/sysroot
APT=(apt-get -o DPkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0)
export DEBIAN_FRONTEND=noninteractive
ME="deps($ARCH)"
. tests/lib/common.sh # say, installed
root() { [ "$(id -u)" = 0 ]; }

# restrict_source URI SUITE ARCH: the deb822 entry (or one-line entry) for
# URI and SUITE stops asking for ARCH; its other architectures stay. The
# original file is kept in build/ARCH/apt-backup/.
APT_ETC=${APT_ETC:-/etc/apt}
backup() { mkdir -p "build/$ARCH/apt-backup"; [ -f "build/$ARCH/apt-backup/${1##*/}" ] || cp "$1" "build/$ARCH/apt-backup/"; }
restrict_source() {
    local uri=$1 suite=$2 arch=$3 keep f
    keep=$( (dpkg --print-architecture; dpkg --print-foreign-architectures) | grep -vx "$arch" | sort -u | tr '\n' ' ')
    keep=${keep% }
    for f in "$APT_ETC"/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        backup "$f"
        # A stanza is a run of non-blank lines; the matching one gets (or has
        # its) Architectures field set to the kept ones.
        awk -v uri="$uri" -v suite="$suite" -v keep="$keep" '
            function flush(   i, u, s) {
                for (i = 1; i <= n; i++) {
                    if (blk[i] ~ /^URIs:/ && index(blk[i], uri)) u = 1
                    if (blk[i] ~ /^Suites:/ && index(blk[i] " ", " " suite " ")) s = 1
                }
                for (i = 1; i <= n; i++)
                    if (!(u && s && blk[i] ~ /^Architectures:/)) print blk[i]
                if (u && s) print "Architectures: " keep
                n = 0
            }
            /^[ \t]*$/ { flush(); print; next }
            { blk[++n] = $0 }
            END { flush() }' "$f" > "$f.new"
        if cmp -s "$f" "$f.new"; then rm "$f.new"; else mv "$f.new" "$f"; fi
    done
    f=$APT_ETC/sources.list
    if [ -f "$f" ] && grep -qE "^deb[[:space:]]+[a-z]+://$uri/?[[:space:]]+$suite[[:space:]]" "$f"; then
        backup "$f"
        sed -i -E "s|^deb[[:space:]]+([a-z]+://$uri/?[[:space:]]+$suite[[:space:]])|deb [arch=${keep// /,}] \\1|" "$f"
    fi
}

# `deps.sh ARCH --restrict URI SUITE`: only that (tests/arch/run.sh apt tests it on a copy).
if [ "${2:-}" = --restrict ]; then restrict_source "$3" "$4" "$ARCH"; exit; fi

# update: apt-get update must exit 0; sources that cannot serve ARCH are
# restricted (their failures name the index: .../dists/SUITE/.../binary-ARCH/...).
update() {
    local log=build/$ARCH/apt-update.log
    mkdir -p "build/$ARCH"
    if "${APT[@]}" update > "$log" 2>&1; then say "apt-get update: exit 0"; return; fi
    grep -oE "(https?://[^ ]+)/dists/([^ /]+)/[^ ]*binary-$ARCH/" "$log" | sort -u |
        while read -r u; do
            base=${u%%/dists/*}; rest=${u#*/dists/}; suite=${rest%%/*}
            say "index for $ARCH unavailable from $base $suite: restricting that source to the other architectures"
            restrict_source "${base#*://}" "$suite" "$ARCH"
        done
    if "${APT[@]}" update > "$log" 2>&1; then say "apt-get update: exit 0 (after restricting)"; return; fi
    cat "$log" >&2
    say "apt-get update still fails"; exit 1
}

pkgs=("$RUSTC_PKG" "$CARGO_PKG" "$LIBSTD_PKG:$ARCH" "gcc-$TRIPLET" "libc6-dev-$ARCH-cross" "$DIST_QEMU_USER_PKG"
      abigail-tools "libxendevicemodel1:$ARCH" "$DIST_XEN_MISC_PKG:$ARCH")
# Multi-Arch: same packages must match the amd64 version exactly.
xenver=$(dpkg-query -W -f='${Version}' libxendevicemodel1:amd64 2>/dev/null || true)
missing=()
for p in "${pkgs[@]}"; do installed "$p" || missing+=("$p"); done
if ! dpkg --print-foreign-architectures | grep -qx "$ARCH" || [ ${#missing[@]} -gt 0 ]; then
    root || { say "as root: dpkg --add-architecture $ARCH; apt-get update; apt-get install ${missing[*]}"; exit 1; }
    if ! dpkg --print-foreign-architectures | grep -qx "$ARCH"; then
        say "dpkg --add-architecture $ARCH"
        dpkg --add-architecture "$ARCH"
        update
    fi
    want=()
    # the target's standard library must be the installed rustc's own build
    rustver=$(dpkg-query -W -f='${Version}' "$RUSTC_PKG" 2>/dev/null || true)
    for p in "${missing[@]}"; do
        case $p in
        libxen*:"$ARCH") [ -n "$xenver" ] && p="$p=$xenver" ;;
        "$LIBSTD_PKG:$ARCH") [ -n "$rustver" ] && p="$p=$rustver" ;;
        esac
        want+=("$p")
    done
    say "installing ${want[*]}"
    if ! "${APT[@]}" install -y -qq --no-install-recommends "${want[@]}" > "build/$ARCH/apt-install.log" 2>&1; then
        update
        "${APT[@]}" install -y -qq --no-install-recommends "${want[@]}" > "build/$ARCH/apt-install.log" 2>&1 ||
            { tail -20 "build/$ARCH/apt-install.log" >&2; say "apt-get install failed"; exit 1; }
    fi
    # Nothing of amd64 may have been removed.
    if grep -E '^Removing ' "build/$ARCH/apt-install.log"; then say "apt removed packages (above)"; exit 1; fi
fi
# rustc and the target's standard library must be the same build.
rv=$(dpkg-query -W -f='${Version}' "$RUSTC_PKG") sv=$(dpkg-query -W -f='${Version}' "$LIBSTD_PKG:$ARCH")
[ "$rv" = "$sv" ] || { say "$RUSTC_PKG $rv but $LIBSTD_PKG:$ARCH $sv"; exit 1; }

# The sysroot: libxen-dev for ARCH, at the installed libraries' version.
ver=$(dpkg-query -W -f='${Version}' "libxendevicemodel1:$ARCH")
if [ ! -f "$SYSROOT/.done" ] || [ "$(cat "$SYSROOT/.done")" != "$ver" ]; then
    mkdir -p "build/$ARCH/debs"
    deb=build/$ARCH/debs/libxen-dev_${ver//:/%3a}_$ARCH.deb
    if [ ! -f "$deb" ]; then
        (cd "build/$ARCH/debs" && "${APT[@]}" download "libxen-dev:$ARCH=$ver" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
    fi
    [ -f "$deb" ] || { say "could not download libxen-dev:$ARCH=$ver"; exit 1; }
    rm -rf "$SYSROOT"
    dpkg -x "$deb" "$SYSROOT"
    # The link names point into the runtime packages, which are installed
    # for ARCH in /usr/lib/TRIPLET, not in the sysroot; static archives are
    # removed so that -lxen* can never pick one.
    for l in "$SYSROOT/usr/lib/$TRIPLET"/*.so; do
        ln -sfn "/usr/lib/$TRIPLET/$(readlink "$l")" "$l"
        [ -e "$l" ] || { say "$l: $(readlink "$l") is not installed"; exit 1; }
    done
    rm -f "$SYSROOT/usr/lib/$TRIPLET"/*.a
    echo "$ver" > "$SYSROOT/.done"
    say "sysroot: libxen-dev:$ARCH $ver in $SYSROOT"
fi
