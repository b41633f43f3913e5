#!/usr/bin/env bash
# Creates (or completes) a Debian chroot of DIST's release (mk/dist.mk; the
# running one by default) in which `make deb-check DEB_CHECK_ROOT=<dir>` can
# install, reinstall and purge the package without touching the host's
# libxendevicemodel. Used while developing the packaging; CI runs deb-check
# on the host itself and inside the Debian 13 root (make deb-check DIST=trixie).
#   tests/deb/mkchroot.sh /work/deb-chroot
set -euo pipefail
dir=${1:?usage: mkchroot.sh DIR}
case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
cd "$(dirname "$0")/../.."
. tests/dist/env.sh
bash tests/dist/mkroot.sh "$DIST_SUITE" "$dir"
# Xen's packages the check must leave intact: the library, Debian's QEMU for
# Xen, the toolstack (xl) and the headers whose .so link points at the library.
bash tests/dist/in-root.sh --root "$dir" env DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends install \
    libxendevicemodel1 libxen-dev qemu-system-xen "$DIST_XEN_UTILS_PKG" binutils >/dev/null
echo "chroot ready: $dir"
