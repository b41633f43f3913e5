#!/usr/bin/env bash
# Makes (or completes) a Debian root with debootstrap, for tests that need a
# release's userland: `make dist-root DIST=trixie` builds mk/dist.mk's
# DIST_ROOT (build/dist/trixie/root).
#
#   tests/dist/mkroot.sh               DIST's root (DIST from the environment, else trixie)
#   tests/dist/mkroot.sh SUITE DIR     another root (the upgrade test's Debian 12 one)
#
# From the mirror the host's own apt sources name; inside, SUITE, its
# -updates and -security suites. The host's apt sources are read, never
# written. Idempotent: a root whose stamp (suite, mirror, packages) matches is
# left as it is (a second run takes well under a second); a half-made one is
# deleted and made again. `make dist-root` refreshes nothing on purpose: delete
# the stamp (DIR.done) to update the root's packages.
set -euo pipefail
DIST=${DIST:-trixie}
. "$(dirname "$0")/env.sh"
suite=${1:-$DIST_SUITE}
dir=${2:-$DIST_ROOT}
case $dir in /*) ;; *) dir=$TOP/$dir ;; esac
pkgs=$DIST_ROOT_PKGS
[ "$(id -u)" = 0 ] || dist_die "debootstrap and chroot need root: run as root"

# The host's Debian archive and security archive (deb822 or one-line sources).
host_uri() { # host_uri security|main
    local want=$1 f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v want="$want" '
            function flush() {
                if (uris != "" && suites != "" && (suites ~ /-security/) == (want == "security")) { print uris; exit }
                uris = ""; suites = ""
            }
            /^[ \t]*$/ { flush(); next }
            /^URIs:/ { uris = $2 }
            /^Suites:/ { suites = $0 }
            END { flush() }' "$f"
    done
    [ -f /etc/apt/sources.list ] || return 0
    awk -v want="$want" '$1 == "deb" {
            line = $0; sub(/\[[^]]*\]/, "", line); split(line, w)
            if ((w[3] ~ /-security/) == (want == "security")) { print w[2]; exit } }' /etc/apt/sources.list
}
mirror=$(host_uri main | head -n 1)
security=$(host_uri security | head -n 1)
mirror=${mirror:-http://deb.debian.org/debian}
security=${security:-http://deb.debian.org/debian-security}
mirror=${mirror%/} security=${security%/}

# Bump "layout" when this script starts making roots differently: older roots are completed.
stamp="layout=2 suite=$suite mirror=$mirror security=$security packages=$pkgs"
mkdir -p "$(dirname "$dir")"
exec 9> "$dir.lock"
flock 9 # one maker per root at a time
if [ -f "$dir.done" ] && [ "$(cat "$dir.done")" = "$stamp" ] && [ -x "$dir/usr/bin/apt-get" ]; then
    dist_say "root ready: $dir ($suite, cached)"
    exit 0
fi
t0=$SECONDS
rm -f "$dir.done"
if ! command -v debootstrap > /dev/null; then
    dist_say "installing debootstrap (host package)"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq debootstrap > /dev/null ||
        dist_die "apt-get install debootstrap failed"
fi
if [ ! -x "$dir/usr/bin/apt-get" ] || [ ! -f "$dir.bootstrapped" ]; then
    # A root is used only once debootstrap finished: build it aside, then rename.
    rm -rf "$dir" "$dir.tmp" "$dir.bootstrapped"
    dist_say "debootstrap $suite from $mirror into $dir (a minute or two)"
    debootstrap --variant=minbase --include="${pkgs// /,}" "$suite" "$dir.tmp" "$mirror" > "$dir.debootstrap.log" 2>&1 ||
        { tail -20 "$dir.debootstrap.log" >&2; dist_die "debootstrap failed: $dir.debootstrap.log"; }
    mv "$dir.tmp" "$dir"
    touch "$dir.bootstrapped"
fi
cat > "$dir/etc/apt/sources.list" <<SRC
# Written by tests/dist/mkroot.sh (the mirror the host's apt sources name).
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security $suite-security main
SRC
# No service may start inside the root (Xen's and QEMU's packages ship some).
printf '#!/bin/sh\n# tests/dist/mkroot.sh: no service starts in this root.\nexit 101\n' > "$dir/usr/sbin/policy-rc.d"
chmod 0755 "$dir/usr/sbin/policy-rc.d"
# What the Makefile looks for to know it runs in such a root (mk/deb.mk).
echo "made by tests/dist/mkroot.sh: $suite" > "$dir/etc/xendevicemodel-rs-root"
# Keep downloaded packages (a second install of the same one is local).
echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' > "$dir/etc/apt/apt.conf.d/10keep-debs"
in_root=(bash "$TOP/tests/dist/in-root.sh" --root "$dir")
apt=(apt-get -o DPkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0 -y -q)
"${in_root[@]}" env DEBIAN_FRONTEND=noninteractive "${apt[@]}" update > "$dir.apt.log" 2>&1 ||
    { tail -20 "$dir.apt.log" >&2; dist_die "apt-get update in the root failed"; }
# The security and point-release updates of what debootstrap installed.
"${in_root[@]}" env DEBIAN_FRONTEND=noninteractive "${apt[@]}" --no-install-recommends dist-upgrade >> "$dir.apt.log" 2>&1 &&
"${in_root[@]}" env DEBIAN_FRONTEND=noninteractive "${apt[@]}" --no-install-recommends install $pkgs >> "$dir.apt.log" 2>&1 ||
    { tail -20 "$dir.apt.log" >&2; dist_die "apt-get in the root failed: $dir.apt.log"; }
echo "$stamp" > "$dir.done"
dist_say "root ready: $dir ($suite, $(du -sh "$dir" | cut -f1), $((SECONDS - t0)) s)"
