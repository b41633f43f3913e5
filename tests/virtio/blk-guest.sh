#!/bin/sh
# The guest's virtio-blk steps (busybox sh, in the HVM guest's initramfs),
# for the real-guest check: loads the virtio modules named in
# /modules.virtio (in order; Debian 12's 6.1 needs virtio_ring virtio
# virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk, 6.12
# only virtio_blk), waits (bounded) for a virtio disk, then for each one
# prints what the kernel sees and runs the 64 MiB pattern and the
# benchmark (tests/virtio/blk-guest.c). Lines start with "@G blk-"; dom0
# judges them.
#   blk-guest.sh MIB SEED SECONDS WAIT
MIB=${1:-64} SEED=${2:-7} SECONDS_PER_PHASE=${3:-10} WAIT=${4:-60}
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
    /blk-guest bench "/dev/$d" "$MIB" "$SECONDS_PER_PHASE"
    grep virtio /proc/interrupts | sed 's/^/@G blk-interrupts /'
done
