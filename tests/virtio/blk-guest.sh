#!/bin/sh
# The guest's virtio-blk steps (busybox sh, in the HVM guest's initramfs),
# for the real-guest check (dom0's half: tests/virtio/blk-dom0.sh). With a
# SLOT, the disk is a function the device model hot-adds: it asks dom0 for
# it ("@G blk-wait"), waits until 00:SLOT.0 answers config reads, has the
# kernel find it (/sys/bus/pci/rescan). It loads the virtio modules named
# in /modules.virtio (in order; Debian 12's 6.1 needs virtio_ring virtio
# virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk, 6.12
# only virtio_blk), waits (bounded) for a virtio disk, then for each one
# prints what the kernel sees and runs the MIB MiB pattern and, after it,
# the benchmark (tests/virtio/blk-guest.c), and the disk's interrupts.
# With a SLOT it then removes the function (its driver resets the device)
# and says "@G blk-removed yes|no", "@G blk-done". Lines start with
# "@G blk-"; dom0 judges them.
#   blk-guest.sh MIB SEED SECONDS WAIT [SLOT]
MIB=${1:-64} SEED=${2:-7} SECONDS_PER_PHASE=${3:-10} WAIT=${4:-60} SLOT=${5:-}
if [ -n "$SLOT" ]; then
    echo "@G blk-wait $SLOT"
    if ! /toolkit-guest probe "$SLOT" 900 > /dev/null; then echo "@G blk-error no answer at slot $SLOT"; exit 0; fi
    echo 1 > /sys/bus/pci/rescan
fi
if [ -f /modules.virtio ]; then
    for m in $(cat /modules.virtio); do
        insmod "/lib/modules/$m.ko" 2>/dev/null || echo "@G blk-module $m failed"
    done
fi
i=0
while [ -z "$(ls /sys/block 2>/dev/null | grep '^vd')" ] && [ "$i" -lt "$WAIT" ]; do
    sleep 1
    i=$((i + 1))
done
disks=$(ls /sys/block 2>/dev/null | grep '^vd')
[ -n "$disks" ] || { echo "@G blk-error no virtio disk after ${WAIT}s"; exit 0; }
echo "@G blk-found after ${i}s: $disks"
for d in $disks; do
    [ -e "/dev/$d" ] || mknod "/dev/$d" b $(sed 's/:/ /' "/sys/block/$d/dev")
    echo "@G blk-disk $d sectors=$(cat /sys/block/$d/size) serial=$(cat /sys/block/$d/serial 2>/dev/null)" \
        "ro=$(cat /sys/block/$d/ro) irq=$(grep -c virtio /proc/interrupts)"
    /blk-guest pattern "/dev/$d" "$MIB" "$SEED"
    /blk-guest bench "/dev/$d" "$MIB" "$SECONDS_PER_PHASE" "$MIB"
    grep virtio /proc/interrupts | sed 's/^/@G blk-interrupts /'
done
# "<count> <chip>_<type>" summed over the virtio lines of /proc/interrupts.
echo "@G blk-irq $(awk 'index($NF, "virtio") == 1 { c += $2; if (t == "") for (i = 3; i < NF; i++) t = t (t ? "_" : "") $i }
    END { print c + 0, (t == "" ? "none" : t) }' /proc/interrupts)"
if [ -n "$SLOT" ]; then
    D=/sys/bus/pci/devices/0000:00:$(printf %02x "$SLOT").0
    echo 1 > "$D/remove"
    [ -e "$D" ] && echo "@G blk-removed no" || echo "@G blk-removed yes"
fi
echo "@G blk-done"
