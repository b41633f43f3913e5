#!/usr/bin/env bash
# Runs a command inside DIST's root (mk/dist.mk's DIST_ROOT, made by
# tests/dist/mkroot.sh), as root, in the worktree:
#
#   tests/dist/in-root.sh CMD [ARG...]            in DIST's root (DIST from the environment, else trixie)
#   tests/dist/in-root.sh --root DIR CMD [ARG...] in another root (no worktree mounted)
#
# In DIST's root the worktree appears at its own path, with DIST's own build/
# and target/ (DIST_DIR/build, DIST_DIR/target here) mounted over the
# worktree's: the Makefile and the tests find their outputs where they always
# do, and the two releases' outputs never mix. Git's directory is there read-only.
#
# Everything is mounted in a mount namespace of the command's own (unshare):
# /proc, /dev, /sys and the worktree exist only there, the kernel drops them
# when the command's last process ends, however it ends, and nothing is ever
# mounted on the host. The command gets a clean environment: PATH, HOME, TERM,
# LC_ALL, and the variables that tune the tests (DIST, FUZZ_SECONDS, ...).
set -euo pipefail
if [ "${1:-}" = --inside ]; then
    # In the new namespace: mount, then chroot.
    shift
    root=$1 top=$2 build=$3 target=$4 gitdir=$5 cwd=$6
    shift 6
    mount --rbind /dev "$root/dev"
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys"
    if [ -n "$top" ]; then
        mount --bind "$top" "$root$top"
        mount --bind "$build" "$root$top/build"
        mount --bind "$target" "$root$top/target"
        if [ -n "$gitdir" ]; then
            mkdir -p "$root$gitdir"
            mount --bind "$gitdir" "$root$gitdir" && mount -o remount,bind,ro "$root$gitdir"
        fi
    fi
    envs=(PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 TERM="${TERM:-dumb}")
    while IFS= read -r v; do envs+=("$v=${!v}"); done < <(compgen -e |
        grep -E '^(DIST|ARCH|FUZZ_SECONDS|IOREQ_FUZZ_SECONDS|LOOM_[A-Z_]+|DEB_CHECK_[A-Z_]+|CHECKS_[A-Z_]+|RUST_BACKTRACE|XDM_[A-Z_]+|XEN_(GUEST|TIMEOUT)|GUEST_[A-Z_]+)$')
    exec chroot "$root" /usr/bin/env -i "${envs[@]}" /bin/sh -c 'cd "$0" && exec "$@"' "$cwd" "$@"
fi

root=
if [ "${1:-}" = --root ]; then root=$2; shift 2; fi
[ $# -gt 0 ] || { echo "usage: tests/dist/in-root.sh [--root DIR] CMD [ARG...]" >&2; exit 2; }
here=$PWD
DIST=${DIST:-trixie}
. "$(dirname "$0")/env.sh"
[ "$(id -u)" = 0 ] || dist_die "chroot needs root: run as root"
top= build= target= gitdir= cwd=/
if [ -z "$root" ]; then
    root=$TOP/$DIST_ROOT
    [ -f "$root.done" ] || dist_die "no root at $root: make dist-root DIST=$DIST"
    top=$TOP build=$TOP/$DIST_DIR/build target=$TOP/$DIST_DIR/target
    mkdir -p "$build" "$target" "$root$top" "$TOP/build" "$TOP/target"
    gitdir=$(git -C "$TOP" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
    # The command runs where it was started, if that is inside the worktree.
    case $here/ in "$TOP"/*) cwd=$here ;; *) cwd=$TOP ;; esac
fi
case $root in /*) ;; *) root=$TOP/$root ;; esac
[ -x "$root/usr/bin/apt-get" ] || dist_die "$root is not a Debian root (tests/dist/mkroot.sh)"
# The network as the host sees it: its resolver and the certificate
# authorities it trusts (cargo fetches crates over https), copied at each entry.
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
if [ -f /etc/ssl/certs/ca-certificates.crt ] && [ -d "$root/etc/ssl/certs" ]; then
    cmp -s /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt" ||
        cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
fi
exec unshare --mount --propagation private -- bash "$TOP/tests/dist/in-root.sh" --inside \
    "$root" "$top" "$build" "$target" "$gitdir" "$cwd" "$@"
