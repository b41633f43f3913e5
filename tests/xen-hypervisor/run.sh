#!/usr/bin/env bash
# `make xen-check` (ARCH=amd64) and `make xen-check ARCH=arm64`: boots
# Debian's Xen under QEMU (TCG), with Debian's kernel as dom0 from an
# initramfs, and runs the differential driver and the handle rules against
# the real hypervisor through the real privcmd driver: Xen's library and ours
# must give identical results (the arch's in-vm.sh: tests/xen-hypervisor/ for
# amd64, tests/xen-arm/ for arm64). Then a guest, through Debian's toolstack
# (XEN_GUEST=0 skips it): on amd64 an HVM guest whose device model is Debian's
# QEMU on our library (tests/xen-hypervisor/guest.sh), on arm64 a Linux guest
# whose MMIO device is served by a device model on our library
# (tests/xen-arm/guest.sh). The machine comes from tests/lib/vm.sh.
#
#   tests/xen-hypervisor/run.sh [amd64|arm64]    (B: our library for that arch)
set -euo pipefail
cd "$(dirname "$0")/../.."
TOP=$PWD
ARCH=${1:-amd64}
GUEST=${XEN_GUEST:-1}
# A ceiling for a VM that hangs: a run takes 30-120 s alone on the machine.
TIMEOUT=${XEN_TIMEOUT:-1200}
ME="xen-check$([ "$ARCH" = amd64 ] || echo "($ARCH)")"
. tests/lib/common.sh
. tests/lib/checks.sh
. tests/lib/vm.sh
. tests/lib/programs.sh
# armhf would need its own machine: Xen for 32-bit Arm with an armhf dom0
# under qemu-system-arm; an armhf program in the arm64 dom0 cannot stand in
# (privcmd has no 32-bit compat ioctls).
[ "$ARCH" = amd64 ] || [ "$ARCH" = arm64 ] || { echo "$ME: only amd64 and arm64 are booted on a real hypervisor"; exit 2; }
t0=$SECONDS

# ---- packages (cached) and the hypervisor ----
vm_setup "$ARCH"
if [ "$GUEST" = 1 ]; then vm_packages tools; else vm_packages; fi
vm_hypervisor

# ---- the payload: test programs for ARCH, both libraries, their dependencies ----
if [ "$ARCH" = amd64 ]; then
    B=${B:-build}
    CC=${CC:-cc}
    XFLAGS=()
    make -s lib "$B/libfakeprivcmd.so" > /dev/null
    FACTS=tests/xen-hypervisor
else
    B=${B:-build/$ARCH}
    CC=${XCC:-aarch64-linux-gnu-gcc}
    SYSROOT=${SYSROOT:-$B/sysroot}
    XFLAGS=(-I"$SYSROOT/usr/include" -L"$SYSROOT$VM_LIBDIR" -Wl,-rpath-link,"$VM_LIBDIR")
    FACTS=tests/xen-arm
fi
I=$V/initrd
P=$I/payload
vm_base "$I"
vm_payload "$I"
# The driver links the stand-in for the test double (payload/stub).
XFLAGS+=(-L"$P/stub")
for p in mkdomain handles_real driver; do program "$p" "$P/$p" || die "cannot build $p"; done
cp "$FACTS/in-vm.sh" tests/lib/domains.sh "$P/"
progs=("$P/mkdomain" "$P/handles_real" "$P/driver" "$P/ours/libxendevicemodel.so.1" "$P/xen/libxendevicemodel.so.1")
if [ "$GUEST" = 1 ]; then
    vm_toolstack "$I"
    mkdir -p "$P/guest"
    if [ "$ARCH" = amd64 ]; then
        cp tests/xen-hypervisor/guest.sh "$P/"
        cp tests/lib/dm-wrapper.sh "$P/guest/"
        chmod +x "$P/guest/dm-wrapper.sh"
    else
        vm_add_modules "$I" brd # /dev/ram0: the block device behind the guest's virtio disk
        program mmio-dm "$P/mmio-dm" || die "cannot build mmio-dm"
        progs+=("$P/mmio-dm")
        cp tests/xen-arm/guest.sh "$P/"
        # the guest: the same kernel, a busybox initramfs, the partial device tree
        cp "$VMLINUZ" "$P/guest/vmlinuz"
        dtc -q -I dts -O dtb -o "$P/guest/guest.dtb" tests/xen-arm/guest.dts
        GI=$V/guest-initrd
        rm -rf "$GI" && mkdir -p "$GI"/{bin,proc,sys,dev,tmp}
        cp "$BUSYBOX" "$GI/bin/busybox"
        cp tests/xen-arm/guest-init "$GI/init" && chmod +x "$GI/init"
        vm_pack "$GI" "$P/guest/initrd.gz"
    fi
fi
# Every shared library the programs need, at their paths.
VM_LDPATH="$P/stub:$P/xen" vm_copy_libs "$I" "${progs[@]}"
vm_pack "$I" "$V/initrd.gz"
say "initramfs $(du -h "$V/initrd.gz" | cut -f1), kernel $kernel_pkg, $XEN_DESC; booting under $(basename "$QEMU") (TCG, ceiling ${TIMEOUT}s)"

# ---- boot ----
glog=warning
[ "$GUEST" = 1 ] && [ "$ARCH" = amd64 ] && glog=all # hvmloader's messages show the guest's firmware at work
# dom0_mem: Debian 13's QEMU for Xen (10.0) allocates 384 MiB as it starts
# (a GLib allocation of 402653184 bytes failed in a 512 MiB dom0).
vm_boot "$V/initrd.gz" "$V/console.log" "$TIMEOUT" "dom0_mem=1024M loglvl=warning guest_loglvl=$glog" -m 2G
say "whole run $((SECONDS - t0))s"
suites=xen-check
[ "$GUEST" = 1 ] && suites="$suites guest"
# shellcheck disable=SC2086 # one word per suite
vm_results "$V/console.log" "real hypervisor$([ "$ARCH" = amd64 ] || echo " ($ARCH)")" $suites
