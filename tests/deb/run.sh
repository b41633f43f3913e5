#!/usr/bin/env bash
# make deb-check: proves on this machine (or, with DEB_CHECK_ROOT=/dir, inside
# that Debian chroot) what the package libxendevicemodel1-rs promises:
#   lint     lintian: no error, exactly the warnings listed in lintian-expected.<release>
#            (each release's lintian has its own tags)
#   package  metadata, the symbols file equals the map's, the dbgsym matches
#   install  one `apt-get install`: Xen's files diverted, Debian's QEMU and
#            every other user of libxendevicemodel.so.1 resolve and bind it to
#            ours with no environment; Xen's packages stay installed, intact
#            and with their dependencies satisfied
#   reinstall  `apt-get install --reinstall libxendevicemodel1` keeps ours
#   purge    Xen's library is back for every program, nothing of ours is left
#            (paths, diversions, ld.so configuration and cache, dpkg records)
# Whatever happens, an EXIT trap puts the machine back as it was found (purge,
# diversions, Xen's file). DEB_CHECK_BREAK=<stage> fails on purpose after that
# stage (install, reinstall) to exercise that restore path.
#   tests/deb/run.sh build/deb/xendevicemodel-rs_<version>_<arch>.changes
set -u
cd "$(dirname "$0")/../.."
. tests/dist/env.sh # the release's Xen tools package and QEMU's import count
changes=${1:?usage: run.sh PATH.changes}
ROOT=${DEB_CHECK_ROOT:-}
ROOT=${ROOT%/}
BREAK=${DEB_CHECK_BREAK:-}
PKG=libxendevicemodel1-rs
ARCH=$(dpkg --print-architecture)
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null)
XEN=libxendevicemodel1:$ARCH
D=/usr/lib/$MA
LIB=$D/libxendevicemodel.so.1.4
LINK=$D/libxendevicemodel.so.1
PRIV=$D/xen-libxendevicemodel
Q=/usr/libexec/xen-qemu-system-i386
QARGS=(-xen-domid 1 -machine xenfv -nographic -display none)
LOG=$PWD/build/deb/check
mkdir -p "$LOG" && rm -f "$LOG"/*
. tests/lib/checks.sh
CHECKS_VERBOSE=1
changed=0 mounted=() stage=start
T0=$SECONDS

# The stage a failure belongs to (checks.sh names it in the line).
stage() { stage=$1; CHECKS_STAGE=$1; }
not() { ! "$@"; }
# A failure after which the rest cannot mean anything: the trap restores.
fatal() { bad "$*"; exit 1; }
timed() { echo "== $stage: $(($SECONDS - ${1})) s"; }

# Runs a command on the machine under test with an empty environment (no
# LD_LIBRARY_PATH, LD_PRELOAD or anything else inherited), as root.
in_root() {
    if [ -n "$ROOT" ]; then
        chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C "$@"
    else
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C "$@"
    fi
}
apt() { in_root DEBIAN_FRONTEND=noninteractive timeout 900 apt-get -o DPkg::Lock::Timeout=600 -y -q "$@"; }
# dpkg-divert takes dpkg's lock but does not wait for it (other agents may run apt).
divert() {
    local i
    for i in $(seq 60); do
        in_root dpkg-divert "$@" 2>"$LOG/divert.err" && return 0
        grep -q 'locked' "$LOG/divert.err" || { cat "$LOG/divert.err" >&2; return 1; }
        sleep 2
    done
    return 1
}
md5() { in_root md5sum "$1" 2>/dev/null | awk '{ print $1 }'; }
installed() { in_root dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null | grep -q '^ii'; }
known() { in_root dpkg-query -W -f='${db:Status-Abbrev}' "$1" >/dev/null 2>&1; }
our_diversions() { in_root dpkg-divert --list | grep " by $PKG\$"; }
cache() { in_root ldconfig -p | grep -i xendevicemodel; }
in_deb() { dpkg-deb --fsys-tarfile "$1" | tar -xO ".$2"; }
both_installed() { installed "$PKG:$ARCH" && installed "$PKG-dbgsym:$ARCH"; }
neither_known() { ! known "$PKG:$ARCH" && ! known "$PKG-dbgsym:$ARCH"; }

# ---------------------------------------------------------------- restore
restore() {
    local rc=$? what=()
    trap - EXIT INT TERM
    if [ "$changed" = 1 ]; then
        stage restore
        local p ours=()
        for p in "$PKG:$ARCH" "$PKG-dbgsym:$ARCH"; do known "$p" && ours+=("$p"); done
        if [ "${#ours[@]}" -gt 0 ]; then
            what+=("purged ${ours[*]}")
            # dpkg directly if apt refuses (a half-installed package).
            apt purge "${ours[@]}" > "$LOG/restore-purge.log" 2>&1 ||
                in_root dpkg --purge --force-remove-reinstreq "${ours[@]}" >> "$LOG/restore-purge.log" 2>&1
        fi
        local line from to
        while read -r line; do
            from=$(echo "$line" | awk '{ print $3 }') to=$(echo "$line" | awk '{ print $5 }')
            what+=("removed diversion of $from")
            # Our package is gone by now: whatever is at $from (a link
            # ldconfig made) gives way to Xen's diverted file.
            if divert --package "$PKG" --remove --no-rename --divert "$to" "$from"; then
                if [ -e "$ROOT$to" ] || [ -L "$ROOT$to" ]; then mv -f "$ROOT$to" "$ROOT$from"; fi
            else
                echo "restore: could not remove diversion of $from" >&2
            fi
        done < <(our_diversions)
        [ -d "$ROOT$PRIV" ] && rmdir "$ROOT$PRIV" 2>/dev/null && what+=("removed $PRIV")
        if [ "$(md5 "$LIB")" != "$xen_md5" ] || [ "$(in_root readlink "$LINK")" != "$xen_link" ]; then
            what+=("reinstalled $XEN")
            apt install --reinstall "$XEN" > "$LOG/restore-reinstall.log" 2>&1 ||
                echo "restore: reinstalling $XEN failed, see $LOG/restore-reinstall.log" >&2
        fi
        in_root ldconfig
        if [ -z "$(our_diversions)" ] && neither_known && [ ! -e "$ROOT$PRIV" ] &&
            [ "$(md5 "$LIB")" = "$xen_md5" ] && [ "$(in_root readlink "$LINK")" = "$xen_link" ]; then
            echo "restore: machine as found (${what[*]:-nothing to undo}); Xen's $LIB md5 $xen_md5"
        else
            echo "restore: FAILED, the machine still has traces of $PKG: see $LOG" >&2
            rc=1
        fi
    fi
    rm -rf "$ROOT/tmp/xdm-deb-check"
    local m
    for m in "${mounted[@]}"; do umount "$m" || echo "restore: cannot unmount $m" >&2; done
    [ "$T_FAIL" -eq 0 ] || rc=1
    echo "deb-check took $((SECONDS - T0)) s${ROOT:+ (in $ROOT)}"
    summary deb-check
    exit $rc
}
xen_md5= xen_link=
trap restore EXIT
trap 'fatal "interrupted by a signal"' INT TERM

[ "$(id -u)" = 0 ] || fatal "must run as root (it installs and purges a package)"
[ -f "$changes" ] || fatal "$changes missing (make deb)"
if [ -n "$ROOT" ]; then
    [ -x "$ROOT/usr/bin/apt-get" ] || fatal "$ROOT is not a Debian root (tests/deb/mkchroot.sh $ROOT)"
    [ "$(in_root dpkg --print-architecture)" = "$ARCH" ] || fatal "$ROOT is not $ARCH"
    # ldd and QEMU need /proc; apt wants a pty for its log (the chroot's
    # /dev/ptmx is the host's, so its /dev/pts must be the host's too).
    if ! mountpoint -q "$ROOT/proc"; then mount -t proc proc "$ROOT/proc" && mounted+=("$ROOT/proc"); fi
    if ! mountpoint -q "$ROOT/dev/pts"; then mount --bind /dev/pts "$ROOT/dev/pts" && mounted+=("$ROOT/dev/pts"); fi
fi
debdir=$(dirname "$changes")
version=$(sed -n 's/^Version: //p' "$changes")
deb=$debdir/${PKG}_${version}_$ARCH.deb
dbg=$debdir/${PKG}-dbgsym_${version}_$ARCH.deb
[ -f "$deb" ] && [ -f "$dbg" ] || fatal "$deb or $dbg missing"

# ---------------------------------------------------------------- lint
stage lint; t=$SECONDS
lintian --info --display-info "$changes" > "$LOG/lintian.txt" 2>&1
sed 's/^/  lintian: /' "$LOG/lintian.txt" | grep -v '^  lintian: N:' | grep -v 'running with root privileges'
check "lintian reports no error" test -z "$(grep '^E:' "$LOG/lintian.txt")"
# Tags only (W: package: tag), both directions: a new warning and a warning
# that went away both mean docs/packaging.md's list must change.
grep '^W:' "$LOG/lintian.txt" | awk '{ print $3 }' | sort -u > "$LOG/lintian-warnings.txt"
# lintian runs here (not in DEB_CHECK_ROOT): this release's expectations.
expected=tests/deb/lintian-expected.$(. /etc/os-release; echo "$VERSION_CODENAME")
[ -f "$expected" ] || fatal "$expected missing: no lintian expectations for this release"
grep -v '^#' "$expected" | sort -u > "$LOG/lintian-expected.txt"
echo "  lintian $(lintian --version | awk '{ print $2 }'), expected warnings from $expected"
check "lintian warnings are exactly $expected" \
    diff -u "$LOG/lintian-expected.txt" "$LOG/lintian-warnings.txt"
timed "$t"

# ---------------------------------------------------------------- package
stage package; t=$SECONDS
field() { dpkg-deb -f "$deb" "$1"; }
cargo_version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
check "Version $version is Cargo.toml's $cargo_version" test "$(field Version)" = "$cargo_version"
check "Multi-Arch: same" test "$(field Multi-Arch)" = same
check "Architecture $ARCH" test "$(field Architecture)" = "$ARCH"
check "Maintainer and Description set" test -n "$(field Maintainer)" -a -n "$(field Description)"
in_deb "$deb" "/usr/share/doc/$PKG/copyright" > "$LOG/copyright"
check "copyright: LGPL-2.1 (Cargo.toml: LGPL-2.1-only)" grep -qx 'License: LGPL-2.1' "$LOG/copyright"
check "changelog shipped, its version is $version" test "$(in_deb "$deb" "/usr/share/doc/$PKG/changelog.gz" | gzip -dc | sed -n '1s/.*(\(.*\)).*/\1/p')" = "$version"
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./symbols > "$LOG/symbols.deb"
debian/gen-symbols xendevicemodel.map "$PKG" "$cargo_version" > "$LOG/symbols.map"
check "symbols file is the one generated from xendevicemodel.map" diff -u "$LOG/symbols.map" "$LOG/symbols.deb"
mkdir -p "$LOG/deb" && dpkg-deb -x "$deb" "$LOG/deb"
# The library's versioned exports and version nodes, as objdump lists them.
objdump -T "$LOG/deb$LIB" | awk '$2 == "g" && $4 != "*UND*" { v = $(NF - 1); gsub(/[()]/, "", v); print $NF "@" v }' |
    sort > "$LOG/exports.txt"
awk 'NR > 1 { print $1 }' "$LOG/symbols.deb" | sort > "$LOG/symbols.names"
check "symbols file lists exactly the library's exports ($(wc -l < "$LOG/exports.txt"))" \
    diff -u "$LOG/symbols.names" "$LOG/exports.txt"
our_md5=$(md5sum < "$LOG/deb$LIB" | awk '{ print $1 }')
readelf -S "$LOG/deb$LIB" > "$LOG/sections.lib"
check "shipped library is stripped (no .debug_info)" not grep -q '\.debug_info' "$LOG/sections.lib"
build_id=$(readelf -n "$LOG/deb$LIB" | awk '/Build ID/ { print $3 }')
dbgfile=/usr/lib/debug/.build-id/${build_id:0:2}/${build_id:2}.debug
in_deb "$dbg" "$dbgfile" > "$LOG/lib.debug" 2>/dev/null
readelf -S "$LOG/lib.debug" > "$LOG/sections.debug" 2>&1
check "-dbgsym ships $dbgfile (the library's build-id) with line tables" grep -q '\.debug_line' "$LOG/sections.debug"
timed "$t"

# ---------------------------------------------------------------- baseline
stage baseline; t=$SECONDS
for p in "$XEN" qemu-system-xen; do installed "$p" || fatal "$p is not installed (make deps installs it)"; done
known "$PKG:$ARCH" && fatal "$PKG is already installed: purge it first (apt-get purge $PKG)"
[ -z "$(our_diversions)" ] || fatal "diversions by $PKG exist already"
xen_md5=$(in_root dpkg-query --control-show "$XEN" md5sums | awk -v f="${LIB#/}" '$2 == f { print $1 }')
xen_link=$(in_root readlink "$LINK")
[ -n "$xen_md5" ] && [ "$(md5 "$LIB")" = "$xen_md5" ] || fatal "$LIB is not Xen's file (md5 $(md5 "$LIB"), $XEN says $xen_md5)"
[ "$our_md5" != "$xen_md5" ] || fatal "our library has Xen's md5"
# The reinstall step needs the installed version of Xen's package in apt's lists.
apt install -s --reinstall "$XEN" > "$LOG/reinstall-sim.log" 2>&1 ||
    fatal "$XEN cannot be reinstalled from apt's sources (apt-get update; apt-get upgrade): $(tail -2 "$LOG/reinstall-sim.log")"
# Xen's packages (and any other that depends on libxendevicemodel1): their
# programs and libraries that load libxendevicemodel.so.1, directly or through
# another library (xl through libxenlight and libxenctrl): the "users".
xen_pkgs=$(in_root dpkg-query -W -f='${db:Status-Abbrev} ${Package}:${Architecture} ${Depends}\n' |
    awk -v a=":$ARCH" '$1 == "ii" && index($2, a) && ($2 ~ /xen/ || /libxendevicemodel1( |,|$)/) { print $2 }' | grep -v "^$PKG")
users=()
for p in $xen_pkgs; do
    while read -r f; do
        [ -f "$ROOT$f" ] && [ ! -L "$ROOT$f" ] || continue
        objdump -p "$ROOT$f" 2>/dev/null | grep -q 'NEEDED *libxen' || continue
        in_root timeout 20 ldd "$f" 2>/dev/null | grep -q '^\s*libxendevicemodel\.so\.1 ' && users+=("$f")
    done < <(in_root dpkg -L "$p")
done
printf '  users of libxendevicemodel.so.1 in %s: %s\n' "$(echo $xen_pkgs)" "${#users[@]}"
printf '    %s\n' "${users[@]}" > "$LOG/users.txt"
# At least QEMU and xl's libraries; xl itself where xen-utils is installed.
for f in "$Q" "$D"/libxenctrl.so.4.*.* "$D"/libxenlight.so.4.*.* $(cd "$ROOT/" && ls -d usr/lib/xen-*/bin/xl 2>/dev/null | sed 's|^|/|'); do
    f=${f#"$ROOT"}
    grep -qx "    $f" "$LOG/users.txt" || fatal "$f is not among the users found: $(cat "$LOG/users.txt")"
done
imports=$(objdump -T "$ROOT$Q" | awk '/xendevicemodel_/ { print $NF }' | sort -u)
[ "$(echo "$imports" | wc -l)" -eq "$DIST_QEMU_IMPORTS" ] ||
    fatal "QEMU imports $(echo "$imports" | wc -l) xendevicemodel symbols, Debian $DIST_RELEASE's QEMU $DIST_QEMU $DIST_QEMU_IMPORTS"

# What "nothing of ours left" is compared against: every path our packages
# ship (type, content), the directory for Xen's files, all diversions, the
# ld.so configuration and cache entries, dpkg's records of our packages.
paths=$( (dpkg-deb -c "$deb"; dpkg-deb -c "$dbg") | awk '{ print substr($6, 2) }' | sed 's|/$||' | grep . | sort -u)
snapshot() {
    local f
    for f in $paths "$PRIV" "$PRIV/libxendevicemodel.so.1.4" "$PRIV/libxendevicemodel.so.1"; do
        if [ -L "$ROOT$f" ]; then echo "$f link $(readlink "$ROOT$f")"
        elif [ -d "$ROOT$f" ]; then echo "$f dir"
        elif [ -e "$ROOT$f" ]; then echo "$f file $(md5 "$f")"
        else echo "$f absent"; fi
    done
    echo "-- diversions"; in_root dpkg-divert --list | sort
    echo "-- ld.so configuration"; (cd "$ROOT/etc" && ls -l ld.so.conf ld.so.conf.d && cat ld.so.conf ld.so.conf.d/*)
    echo "-- ld.so.cache"; in_root ldconfig -p | grep -i xendevicemodel
    echo "-- dpkg records"; ls "$ROOT/var/lib/dpkg/info" | grep "^$PKG" ; in_root dpkg-query -W "$PKG*" 2>&1
}
snapshot > "$LOG/before.txt"
cache > "$LOG/cache.baseline"

# The path QEMU's loader resolves libxendevicemodel.so.1 to ($P), whether it
# is the file at $LIB, whose md5 must be $1, and whether every one of QEMU's
# xendevicemodel_* imports binds to it (and nothing binds such a symbol to
# another file). Then every other user, and QEMU's behaviour with no
# environment at all, compared with the baseline run.
resolution() {
    local want=$1 who=$2
    P=$(in_root timeout 20 ldd "$Q" | awk '$1 == "libxendevicemodel.so.1" { print $3 }')
    check "ldd: QEMU finds libxendevicemodel.so.1 at $P" test -n "$P"
    check "$P is $LIB" test "$(in_root readlink -f "$P")" = "$LIB"
    check "$LIB is $who (md5 $want)" test "$(md5 "$LIB")" = "$want"
    rm -f "$ROOT/tmp/xdm-bindings".*
    in_root LD_BIND_NOW=1 LD_DEBUG=bindings LD_DEBUG_OUTPUT=/tmp/xdm-bindings timeout 20 "$Q" "${QARGS[@]}" >/dev/null 2>&1
    cat "$ROOT/tmp/xdm-bindings".* > "$LOG/bindings.$stage" 2>/dev/null; rm -f "$ROOT/tmp/xdm-bindings".*
    local s missing=0 n=0
    for s in $imports; do
        n=$((n + 1))
        grep -qF "binding file $Q [0] to $P [0]: normal symbol \`$s'" "$LOG/bindings.$stage" ||
            { missing=$((missing + 1)); echo "  $s not bound to $P" >&2; }
    done
    check "LD_DEBUG=bindings: all $n xendevicemodel_* imports of QEMU bound to $P" test "$missing" -eq 0
    grep -F "normal symbol \`xendevicemodel_" "$LOG/bindings.$stage" | grep -vF " to $P [0]: " > "$LOG/elsewhere.$stage"
    check "no xendevicemodel_* symbol bound to any other file" test ! -s "$LOG/elsewhere.$stage"
    local u wrong=()
    for u in "${users[@]}"; do
        [ "$(in_root timeout 20 ldd "$u" | awk '$1 == "libxendevicemodel.so.1" { print $3 }')" = "$P" ] || wrong+=("$u")
    done
    check "ldd: all ${#users[@]} users of libxendevicemodel.so.1 resolve it to $P" test "${#wrong[@]}" -eq 0
    in_root timeout 20 "$Q" "${QARGS[@]}" > "$LOG/qemu.$stage" 2>&1
    echo "exit $?" >> "$LOG/qemu.$stage"
    if [ "$stage" = baseline ]; then
        grep -q 'failed to initialize xen' "$LOG/qemu.$stage" || fatal "QEMU without a hypervisor: unexpected $(tail -2 "$LOG/qemu.$stage")"
    else
        check "QEMU, no environment, behaves as with Xen's library: $(tail -2 "$LOG/qemu.$stage" | head -1)" \
            diff -u "$LOG/qemu.baseline" "$LOG/qemu.$stage"
    fi
}
# xen-utils' xl, if installed, is among the users; dpkg's view of Xen's
# packages: installed, files intact, dependencies satisfied.
apt_check() { in_root apt-get -q check >/dev/null 2>&1; }
all_installed() { local p; for p; do installed "$p" || return 1; done; }
xen_intact() {
    # shellcheck disable=SC2086
    check "Xen's packages still installed: $(echo $xen_pkgs)" all_installed $xen_pkgs qemu-system-xen
    check "dpkg --verify $XEN: Xen's files intact" test -z "$(in_root dpkg --verify "$XEN" 2>&1)"
    check "apt-get check: all dependencies satisfied" apt_check
    check "dpkg --audit: nothing half-installed" test -z "$(in_root dpkg --audit 2>&1)"
}
resolution "$xen_md5" "Xen's"
timed "$t"

# ---------------------------------------------------------------- install
stage install; t=$SECONDS
mkdir -p "$ROOT/tmp/xdm-deb-check" && cp "$deb" "$dbg" "$ROOT/tmp/xdm-deb-check/" && chmod -R a+rX "$ROOT/tmp/xdm-deb-check"
changed=1
apt install "/tmp/xdm-deb-check/${deb##*/}" "/tmp/xdm-deb-check/${dbg##*/}" > "$LOG/install.log" 2>&1 ||
    fatal "apt-get install failed: $(tail -5 "$LOG/install.log")"
check "$PKG and its -dbgsym installed" both_installed
our_diversions > "$LOG/diversions.install"
check "2 diversions by $PKG: Xen's .so.1.4 and .so.1 moved to $PRIV" test "$(grep -c " to $PRIV/libxendevicemodel\.so\.1\(\.4\)\? by $PKG\$" "$LOG/diversions.install")" -eq 2
check "Xen's library kept at $PRIV (md5 as in $XEN)" test "$(md5 "$PRIV/libxendevicemodel.so.1.4")" = "$xen_md5"
cache > "$LOG/cache.install"
check "ld.so.cache entries for libxendevicemodel unchanged (same paths)" diff -u "$LOG/cache.baseline" "$LOG/cache.install"
check "debug file of the installed library present" test -f "$ROOT$dbgfile"
in_root dpkg -S "$LIB" > "$LOG/dpkg-S.install" 2>&1
check "dpkg -S $LIB: ours, diverted from Xen's" grep -qx "diversion by $PKG from: $LIB" "$LOG/dpkg-S.install"
resolution "$our_md5" "ours"
xen_intact
if in_root apt-get -s install "$DIST_XEN_UTILS_PKG" qemu-system-xen "$XEN" > "$LOG/simulate.log" 2>&1; then
    check "apt would install Xen's toolstack beside ours without removing anything" not grep -q '^Remv' "$LOG/simulate.log"
else
    bad "apt-get -s install $DIST_XEN_UTILS_PKG: $(tail -3 "$LOG/simulate.log")"
fi
timed "$t"
[ "$BREAK" = install ] && fatal "DEB_CHECK_BREAK=install: failing on purpose with the package installed"

# ---------------------------------------------------------------- reinstall
stage reinstall; t=$SECONDS
inode() { stat -c %i "$ROOT$1"; }
priv_inode=$(inode "$PRIV/libxendevicemodel.so.1.4") lib_inode=$(inode "$LIB")
apt install --reinstall "$XEN" > "$LOG/reinstall.log" 2>&1 || fatal "reinstall of $XEN failed: $(tail -5 "$LOG/reinstall.log")"
check "dpkg unpacked $XEN again" grep -q "Unpacking $XEN" "$LOG/reinstall.log"
# dpkg writes a new file and renames it into place: a new inode shows where.
check "... its library into $PRIV (new file there)" test "$(inode "$PRIV/libxendevicemodel.so.1.4")" != "$priv_inode"
check "... and not over ours (same file at $LIB)" test "$(inode "$LIB")" = "$lib_inode"
check "diversions unchanged" diff -u "$LOG/diversions.install" <(our_diversions)
check "Xen's library at $PRIV (md5 as in $XEN)" test "$(md5 "$PRIV/libxendevicemodel.so.1.4")" = "$xen_md5"
resolution "$our_md5" "ours"
xen_intact
timed "$t"
[ "$BREAK" = reinstall ] && fatal "DEB_CHECK_BREAK=reinstall: failing on purpose after the reinstall"

# ---------------------------------------------------------------- purge
stage purge; t=$SECONDS
apt purge "$PKG:$ARCH" "$PKG-dbgsym:$ARCH" > "$LOG/purge.log" 2>&1 || fatal "apt-get purge failed: $(tail -5 "$LOG/purge.log")"
check "$PKG and -dbgsym unknown to dpkg" neither_known
check "no diversion by $PKG" test -z "$(our_diversions)"
resolution "$xen_md5" "Xen's"
xen_intact
snapshot > "$LOG/after.txt"
check "nothing of ours left: paths, $PRIV, diversions, ld.so config and cache, dpkg records as before" \
    diff -u "$LOG/before.txt" "$LOG/after.txt"
timed "$t"
# The EXIT trap runs restore anyway: it finds nothing to undo, or cleans up
# what a failed purge check found.
[ "$T_FAIL" -eq 0 ]
