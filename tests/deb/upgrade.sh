#!/usr/bin/env bash
# make deb-upgrade-check: what happens to a Debian 12 Xen host with our
# package installed when it is upgraded to Debian 13, in a root of its own
# (apt runs inside that root only; the host's packages and sources are not
# touched):
#   base     a Debian 12 root (tests/dist/mkroot.sh) with Xen (xen-system-amd64)
#            and Debian's QEMU for Xen, cached in build/dist/upgrade/
#   install  a fresh copy of it, our package installed: QEMU 7.2 binds ours
#   upgrade  sources switched to Debian 13, `apt-get full-upgrade`: the
#            diversions follow, Xen 4.20's library lands in the diverted
#            directory, ours stays at the path and QEMU 10.0 binds all of its
#            imports (one more: set_irq_level) to ours, with no environment
#   purge    Xen 4.20's library back at its path, for every program
#   tests/deb/upgrade.sh build/deb/xendevicemodel-rs_<version>_amd64.changes
set -u
cd "$(dirname "$0")/../.."
. tests/dist/env.sh
. tests/lib/checks.sh
CHECKS_VERBOSE=1
changes=${1:?usage: upgrade.sh PATH.changes}
FROM=$DIST_SUITE TO=$DIST_NEXT
PKG=libxendevicemodel1-rs
ARCH=$(dpkg --print-architecture)
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null)
D=/usr/lib/$MA LIB=/usr/lib/$MA/libxendevicemodel.so.1.4 PRIV=/usr/lib/$MA/xen-libxendevicemodel
Q=/usr/libexec/xen-qemu-system-i386
QARGS=(-xen-domid 1 -machine xenfv -nographic -display none)
U=$TOP/build/dist/upgrade
base=$U/$FROM-xen work=$U/$FROM-to-$TO
LOG=$TOP/build/deb/upgrade
T0=$SECONDS
mkdir -p "$LOG" "$U" && rm -f "$LOG"/*
stage() { CHECKS_STAGE=$1; t=$SECONDS; }
not() { ! "$@"; }
timed() { echo "== $CHECKS_STAGE: $((SECONDS - t)) s"; }
fatal() { bad "$*"; finish; }
finish() {
    [ "$T_FAIL" -eq 0 ] && rm -rf "$work" # a failed run's root stays for a look
    echo "deb-upgrade-check took $((SECONDS - T0)) s${work:+; logs in $LOG}"
    summary deb-upgrade
    exit $([ "$T_FAIL" -eq 0 ] && echo 0 || echo 1)
}
# What the release we upgrade to is, from mk/dist.mk.
to_var() { make -s --no-print-directory dist-env DIST="$TO" | sed -n "s/^$1='\(.*\)'\$/\1/p"; }
TO_XEN=$(to_var DIST_XEN) TO_QEMU=$(to_var DIST_QEMU) TO_IMPORTS=$(to_var DIST_QEMU_IMPORTS) TO_RELEASE=$(to_var DIST_RELEASE)
[ -n "$TO" ] && [ -n "$TO_IMPORTS" ] || fatal "no release after $FROM in mk/dist.mk"
[ "$(id -u)" = 0 ] || fatal "must run as root (debootstrap, chroot)"

in_work() { bash tests/dist/in-root.sh --root "$work" "$@"; }
apt() { in_work env DEBIAN_FRONTEND=noninteractive timeout 1800 apt-get -o DPkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0 -y -q "$@"; }
md5() { in_work md5sum "$1" 2>/dev/null | awk '{ print $1 }'; }
pkg_version() { in_work dpkg-query -W -f='${Version}' "$1" 2>/dev/null; }
# The md5 Xen's package records for its library (what dpkg --verify compares).
xen_md5() { in_work dpkg-query --control-show "libxendevicemodel1:$ARCH" md5sums | awk -v f="${LIB#/}" '$2 == f { print $1 }'; }
upstream() { case $2 in "${3:-}$1"[.+~-]*) return 0 ;; *) return 1 ;; esac; }
our_diversions() { in_work dpkg-divert --list | grep " by $PKG\$"; }
# resolves WHO N: QEMU finds libxendevicemodel.so.1 at the path of $LIB, whose
# file is WHO's, and binds all N of its xendevicemodel_* imports there.
resolves() {
    local who=$1 n=$2 p imports missing=0 s
    p=$(in_work timeout 20 ldd "$Q" | awk '$1 == "libxendevicemodel.so.1" { print $3 }')
    check "ldd: QEMU finds libxendevicemodel.so.1 at $p, which is $LIB" test "$(in_work readlink -f "$p")" = "$LIB"
    imports=$(objdump -T "$work$Q" | awk '/xendevicemodel_/ { print $NF }' | sort -u)
    check "QEMU $(pkg_version qemu-system-xen) imports $n xendevicemodel_* functions ($(echo "$imports" | wc -l))" \
        test "$(echo "$imports" | wc -l)" -eq "$n"
    rm -f "$work/tmp/xdm-bindings".*
    in_work env LD_BIND_NOW=1 LD_DEBUG=bindings LD_DEBUG_OUTPUT=/tmp/xdm-bindings timeout 20 "$Q" "${QARGS[@]}" >/dev/null 2>&1
    cat "$work/tmp/xdm-bindings".* > "$LOG/bindings.$CHECKS_STAGE" 2>/dev/null; rm -f "$work/tmp/xdm-bindings".*
    for s in $imports; do
        grep -qF "binding file $Q [0] to $p [0]: normal symbol \`$s'" "$LOG/bindings.$CHECKS_STAGE" ||
            { missing=$((missing + 1)); echo "  $s not bound to $p" >&2; }
    done
    check "LD_DEBUG=bindings: all of QEMU's imports bound to $p ($who)" test "$missing" -eq 0
    in_work timeout 20 "$Q" "${QARGS[@]}" > "$LOG/qemu.$CHECKS_STAGE" 2>&1
    check "QEMU without a hypervisor fails as it should: $(tail -1 "$LOG/qemu.$CHECKS_STAGE")" \
        grep -q 'failed to initialize xen' "$LOG/qemu.$CHECKS_STAGE"
}
healthy() {
    check "apt-get check: all dependencies satisfied" in_work sh -c 'apt-get -q check > /dev/null 2>&1'
    check "dpkg --audit: nothing half-installed" test -z "$(in_work dpkg --audit 2>&1)"
    check "dpkg --verify libxendevicemodel1: Xen's files intact" test -z "$(in_work dpkg --verify "libxendevicemodel1:$ARCH" 2>&1)"
}

# ---------------------------------------------------------------- base
stage base
[ -f "$changes" ] || fatal "$changes missing (make deb)"
version=$(sed -n 's/^Version: //p' "$changes")
deb=$(dirname "$changes")/${PKG}_${version}_$ARCH.deb
[ -f "$deb" ] || fatal "$deb missing"
bash tests/dist/mkroot.sh "$FROM" "$base" || fatal "could not make the $FROM root"
# A Xen host: the hypervisor and toolstack (metapackage), Debian's QEMU for Xen.
want="xen-system-$ARCH qemu-system-xen binutils"
if [ "$(cat "$base.xen" 2>/dev/null)" != "$want" ]; then
    bash tests/dist/in-root.sh --root "$base" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
        -o Dpkg::Use-Pty=0 -y -q --no-install-recommends install $want > "$LOG/base.log" 2>&1 ||
        fatal "installing $want in $base failed: $(tail -3 "$LOG/base.log")"
    echo "$want" > "$base.xen"
fi
rm -rf "$work"
cp -a "$base" "$work" || fatal "cannot copy $base"
check "the root is Debian $DIST_RELEASE ($FROM)" grep -q "VERSION_CODENAME=$FROM" "$work/etc/os-release"
xen_from=$(pkg_version "libxendevicemodel1:$ARCH")
check "Xen's library is $DIST_XEN's ($xen_from)" upstream "$DIST_XEN" "$xen_from"
timed

# ---------------------------------------------------------------- install
stage install
mkdir -p "$work/tmp/xdm" && cp "$deb" "$work/tmp/xdm/"
our_md5=$(dpkg-deb --fsys-tarfile "$deb" | tar -xO ".$LIB" | md5sum | awk '{ print $1 }')
apt install "/tmp/xdm/${deb##*/}" > "$LOG/install.log" 2>&1 || fatal "apt-get install failed: $(tail -3 "$LOG/install.log")"
check "$PKG $version installed" test "$(pkg_version "$PKG:$ARCH")" = "$version"
check "2 diversions by $PKG" test "$(our_diversions | wc -l)" -eq 2
check "$LIB is ours (md5 $our_md5)" test "$(md5 "$LIB")" = "$our_md5"
resolves ours "$DIST_QEMU_IMPORTS"
healthy
timed

# ---------------------------------------------------------------- upgrade
stage upgrade
sed -i "s/\b$FROM\b/$TO/g" "$work/etc/apt/sources.list"
cat "$work/etc/apt/sources.list" | grep -v '^#' > "$LOG/sources.list"
check "sources name only $TO ($(grep -c . "$LOG/sources.list") lines)" not grep -qw "$FROM" "$LOG/sources.list"
apt update > "$LOG/upgrade.log" 2>&1 || fatal "apt-get update for $TO failed: $(tail -3 "$LOG/upgrade.log")"
# As Debian's release notes say: keep the configuration files changed here.
apt -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold full-upgrade >> "$LOG/upgrade.log" 2>&1 ||
    fatal "apt-get full-upgrade failed: $(tail -5 "$LOG/upgrade.log")"
sed -n '/^The following packages will be REMOVED:/,/^[^ ]/p' "$LOG/upgrade.log" > "$LOG/removed.txt"
check "the upgrade removed none of our packages" not grep -qw "$PKG" "$LOG/removed.txt"
check "the root is Debian $TO_RELEASE ($TO) now" grep -q "VERSION_CODENAME=$TO" "$work/etc/os-release"
xen_to=$(pkg_version "libxendevicemodel1:$ARCH")
check "Xen's library was upgraded to $TO_XEN ($xen_from -> $xen_to)" upstream "$TO_XEN" "$xen_to"
check "QEMU was upgraded to $TO_QEMU ($(pkg_version qemu-system-xen))" upstream "$TO_QEMU" "$(pkg_version qemu-system-xen)" 1:
check "dpkg unpacked Xen's $TO_XEN library (log: Unpacking libxendevicemodel1)" grep -q "Unpacking libxendevicemodel1:$ARCH" "$LOG/upgrade.log"
check "$PKG still installed, $version" test "$(pkg_version "$PKG:$ARCH")" = "$version"
our_diversions > "$LOG/diversions.upgrade"
check "the 2 diversions by $PKG are still there" test "$(grep -c " to $PRIV/libxendevicemodel\.so\.1\(\.4\)\? by $PKG\$" "$LOG/diversions.upgrade")" -eq 2
check "$LIB is still ours (md5 $our_md5)" test "$(md5 "$LIB")" = "$our_md5"
new_md5=$(xen_md5)
check "Xen $TO_XEN's library is at $PRIV (md5 $new_md5, as its package says)" test -n "$new_md5" -a "$(md5 "$PRIV/libxendevicemodel.so.1.4")" = "$new_md5"
resolves ours "$TO_IMPORTS"
# Xen 4.20's libxenctrl and xl load it too.
users=$(cd "$work" && ls -d ."$D/libxenctrl.so.$TO_XEN".* ./usr/lib/xen-"$TO_XEN"/bin/xl 2>/dev/null | sed 's|^\.||')
check "libxenctrl and xl of Xen $TO_XEN are installed: $(echo $users)" test "$(echo "$users" | grep -c .)" -eq 2
for f in $users; do
    p=$(in_work timeout 20 ldd "$f" | awk '$1 == "libxendevicemodel.so.1" { print $3 }')
    check "ldd $f: libxendevicemodel.so.1 is $p, ours" test -n "$p" -a "$(in_work readlink -f "$p")" = "$LIB"
done
healthy
timed

# ---------------------------------------------------------------- purge
stage purge
apt purge "$PKG:$ARCH" > "$LOG/purge.log" 2>&1 || fatal "apt-get purge failed: $(tail -3 "$LOG/purge.log")"
check "$PKG unknown to dpkg" not in_work dpkg-query -W "$PKG:$ARCH"
check "no diversion by $PKG" test -z "$(our_diversions)"
check "$LIB is Xen $TO_XEN's again (md5 $new_md5)" test "$(md5 "$LIB")" = "$new_md5"
check "$PRIV is gone" test ! -e "$work$PRIV"
resolves "Xen's" "$TO_IMPORTS"
healthy
timed
finish
