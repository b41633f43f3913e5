#!/usr/bin/env bash
# Creates (or completes) a Debian 12 chroot in which `make deb-check
# DEB_CHECK_ROOT=<dir>` can install, reinstall and purge the package without
# touching the host's libxendevicemodel. Used while developing the packaging;
# CI runs deb-check on the host itself.
#   tests/deb/mkchroot.sh /work/deb-chroot
set -euo pipefail
root=${1:?usage: mkchroot.sh DIR}
mirror=http://deb.debian.org/debian
apt_opts=(-o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends)
command -v debootstrap >/dev/null || apt-get -o DPkg::Lock::Timeout=600 install -y -qq debootstrap >/dev/null
if [ ! -x "$root/usr/bin/apt-get" ]; then
    debootstrap --variant=minbase bookworm "$root" "$mirror"
fi
# The same suites the host uses (Xen's libraries come from bookworm-security).
cat > "$root/etc/apt/sources.list" <<SRC
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SRC
# No service may start inside the chroot (xen-utils-common ships init scripts).
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
trap 'umount "$root/proc" 2>/dev/null || true' EXIT
chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq
# Xen's packages the check must leave intact: the library, Debian's QEMU for
# Xen, the toolstack (xl) and the headers whose .so link points at the library.
chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    apt-get "${apt_opts[@]}" install libxendevicemodel1 libxen-dev qemu-system-xen xen-utils-4.17 binutils >/dev/null
echo "chroot ready: $root"
