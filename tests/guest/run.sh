#!/usr/bin/env bash
# `make guest-check`: real HVM Linux guests on Debian's QEMU for Xen, once
# with Xen's libxendevicemodel and once with ours. Boots Debian's Xen under QEMU
# (TCG) as `make xen-check` does (tests/lib/vm.sh); inside, dom0
# (tests/guest/in-vm.sh) runs the scenario with each library: Debian's kernel
# by direct kernel boot with a busybox initramfs (tests/guest/guest-init),
# IDE and AHCI (MSI) disks, an e1000 to dom0 over a tap, pause, save/restore,
# live migration to localhost, and a deprivileged QEMU (dm_restrict). Here
# the two runs' outcome lines must be identical, and every step of each must
# be ok on its own.
set -euo pipefail
cd "$(dirname "$0")/../.."
TOP=$PWD
TIMEOUT=${GUEST_TIMEOUT:-4200}
NETBYTES=262144
LIBS=${GUEST_LIBS:-xen ours} # for development: one library only (then the check cannot pass)
W=$TOP/build/guest-vm

ME=guest-check
. tests/lib/common.sh
. tests/lib/checks.sh
. tests/lib/vm.sh
. tests/lib/programs.sh

# Every step the scenario has; a missing one fails the check.
STEPS="boot ide-read ide-write ahci-read ahci-write msi net-guest-to-dom0 net-dom0-to-guest intx isa-irq ticks
save-restore ahci-after-restore pause migrate restrict-qemu restrict-handle restrict-rlimit restrict-ticks disk-final library
toolkit-ids toolkit-registers toolkit-intx toolkit-teardown"

vm_setup amd64
vm_packages tools
vm_hypervisor
# The guest's boot disk is built here (syslinux on FAT, with mtools).
need_debs syslinux syslinux-common mtools dosfstools binutils || die "missing Debian packages"
B=build
CC=${CC:-cc}
make -s lib > /dev/null
mkdir -p "$W"

# ---- the guest's initramfs: busybox, its init, the modules it loads ----
GI=$W/guest-initrd
rm -rf "$GI"
mkdir -p "$GI"/{bin,proc,sys,dev,tmp,lib/modules}
cp "$BUSYBOX" "$GI/bin/"
cp tests/guest/guest-init "$GI/init"
chmod +x "$GI/init"
list() { # FILE MODULE...: copies the modules and their dependencies, names them in FILE in load order
    local out=$1 ko; shift
    : > "$GI/$out"
    for ko in $(vm_modules "$@"); do
        [ -e "$GI/lib/modules/$(basename "$ko")" ] && continue # loaded by an earlier list
        cp "$ko" "$GI/lib/modules/"
        basename "$ko" .ko >> "$GI/$out"
    done
}
list modules.ide ata_piix sd_mod
list modules.ahci ahci
list modules.net e1000
echo "$NETBYTES" > "$GI/netbytes"

# ---- dom0's initramfs: the toolstack, both libraries, the guest ----
I=$W/initrd
vm_base "$I"
vm_toolstack "$I"
vm_add_modules "$I" tun loop
# QEMU's option ROMs for direct kernel boot (xenfv has no fw_cfg DMA: linuxboot.bin).
cp "$V"/qemu/usr/share/qemu/linuxboot*.bin "$I/usr/share/qemu/"
P=$I/payload
vm_payload "$I"
mkdir -p "$P/guest"
for p in mkdomain privcmd-probe; do program $p "$P/guest/$p" || die "cannot build $p"; done
vm_copy_libs "$I" "$P/guest/mkdomain" "$P/guest/privcmd-probe"
cp tests/guest/in-vm.sh "$P/"
cp tests/lib/dm-wrapper.sh "$P/guest/"
chmod +x "$P/guest/dm-wrapper.sh"
. tests/guest/toolkit-host.sh # the Rust device model and the guest's side of it (issue 14)
echo "$NETBYTES" > "$P/guest/netbytes"
echo "$LIBS" > "$P/guest/libs"
[ "${GUEST_DEBUG:-0}" = 1 ] && touch "$P/guest/debug"
[ -n "${GUEST_EXPERIMENT:-}" ] && cp "$GUEST_EXPERIMENT" "$P/guest/experiment.sh"
if [ "${GUEST_DEBUG:-0}" = 1 ] && command -v strace > /dev/null; then
    mkdir -p "$I/usr/bin" && cp "$(command -v strace)" "$I/usr/bin/" && vm_copy_libs "$I" "$(command -v strace)"
fi
vm_pack "$GI" "$W/guest-initrd.gz"
# The guest boots from disk, not by QEMU's direct kernel boot: for Xen, QEMU
# offers the kernel only through fw_cfg's port (no DMA), a few bytes per
# ioreq, which takes minutes under TCG. SeaBIOS boots the IDE disk's first
# sector (chain.S), which hands over to the AHCI disk (read by DMA): a FAT
# file system with syslinux, Debian's kernel and the busybox initramfs.
as --32 -o "$W/chain.o" tests/guest/chain.S
ld -m elf_i386 -Ttext 0x600 --oformat binary -o "$P/guest/chain.bin" "$W/chain.o"
[ "$(stat -c %s "$P/guest/chain.bin")" = 512 ] || die "chain.bin is not one sector"
rm -f "$W/boot.img"
mkfs.fat -s 64 -C "$W/boot.img" 16384 > /dev/null # 32 KiB clusters: fewer, larger reads
# nopv: the guest runs as a plain HVM guest. Xen-aware, Linux binds emulated
# MSIs to event channels (pirqs) and on resuming from `xl save` rebinds only
# the GSI ones (drivers/xen/events: restore_pirqs), so AHCI's MSIs were lost
# after every restore (commands timed out: "VERIFY failed (err_mask=0x4)").
# Plain HVM, MSIs carry their vector and xl suspends the guest without its help.
# loglevel=1 nowatchdog rcupdate.rcu_cpu_stall_suppress=1: the kernel shares
# the serial line with init's "@G" reports; on a starved vCPU (TCG, a busy
# host) its RCU-stall and soft-lockup warnings landed inside those lines.
printf 'SERIAL 0 115200\nDEFAULT linux\nPROMPT 0\nTIMEOUT 0\nLABEL linux\n  KERNEL vmlinuz\n  INITRD initrd.gz\n  APPEND console=ttyS0 rdinit=/init quiet nopv loglevel=1 nowatchdog rcupdate.rcu_cpu_stall_suppress=1\n' > "$W/syslinux.cfg"
mcopy -i "$W/boot.img" "$VMLINUZ" ::/vmlinuz
mcopy -i "$W/boot.img" "$W/guest-initrd.gz" ::/initrd.gz
mcopy -i "$W/boot.img" "$W/syslinux.cfg" ::/syslinux.cfg
syslinux --install "$W/boot.img"
gzip -1 < "$W/boot.img" > "$P/guest/boot.img.gz"
vm_pack "$I" "$W/initrd.gz"
say "dom0 initramfs $(du -h "$W/initrd.gz" | cut -f1) (with the guest's boot disk, $(du -h "$P/guest/boot.img.gz" | cut -f1)), kernel $kernel_pkg; booting Xen under QEMU (TCG, timeout ${TIMEOUT}s)"

# ---- boot, run, collect ----
vm_boot "$W/initrd.gz" "$W/console.log" "$TIMEOUT" "dom0_mem=1024M loglvl=warning guest_loglvl=warning ${GUEST_XENARGS:-}" -m 2560M ${GUEST_QEMUARGS:-}
vm_console "$W/console.log"

# ---- verdict: each library's outcomes all ok, complete, and identical ----
for lib in xen ours; do
    sed -n "s/^\[$lib\] outcome: //p" "$W/console.log.result" > "$W/outcomes.$lib"
    for s in $STEPS; do
        line=$(grep "^$s: " "$W/outcomes.$lib" | head -n 1 || true)
        case $line in
        "") bad "$lib: step $s has no outcome" ;;
        "$s: ok"*) ok ;;
        *) bad "$lib: $line" ;;
        esac
    done
done
compare "the outcomes with Xen's library and with ours" "$W/outcomes.xen" "$W/outcomes.ours" "$(echo $STEPS | wc -w)" || true
grep -q 'XEN-CHECK END rc=0' "$W/console.log.result" && ok || bad "dom0's scenario reported failures"

# The outcome of every step with each library, and the calls QEMU made
# through ours, for docs/real-guests.md (tools/docs-map tables puts it there).
tab="$TOP/$B/tables/guest-outcomes-amd64-${DIST:-bookworm}.txt"
mkdir -p "$(dirname "$tab")"
{
    printf '%-24s %-14s %s\n' step "Xen's library" ours
    for s in $STEPS; do
        o() { sed -n "s/^$s: \([a-zA-Z-]*\).*/\1/p" "$W/outcomes.$1" | head -n 1; }
        printf '%-24s %-14s %s\n' "$s" "$(o xen)" "$(o ours)"
    done
    echo
    printf '%-36s %8s %6s\n' "calls through ours (call trace)" calls errors
    sed -n 's/^\[ours\] trace| //p' "$W/console.log.result"
} > "$tab"
summary guest-check
