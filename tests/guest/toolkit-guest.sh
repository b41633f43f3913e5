#!/bin/sh
# The guest's half of the toolkit check (`make guest-check`; dom0's half is
# tests/guest/toolkit.sh), run by guest-init after the network step. It asks
# dom0 for the Rust device model's PCI function ("@G toolkit-wait"), waits
# until the function answers config reads, has the kernel find it
# (/sys/bus/pci/rescan: the device model starts after the guest booted, as
# a hot-added function), binds uio_pci_generic to it, lets toolkit-guest
# check registers, count interrupts and time accesses, removes the function
# and waits until it no longer answers (the device model is gone).
SLOT=16
BDF=0000:00:10.0
N=8 # interrupts
D=/sys/bus/pci/devices/$BDF
say() { echo "@G toolkit-$*"; }
say "wait $SLOT"
if ! ids=$(/toolkit-guest probe $SLOT 900); then say "error no answer at slot $SLOT"; exit 0; fi
say "config-ids $ids"
echo 1 > /sys/bus/pci/rescan
i=0
while [ ! -e $D ]; do i=$((i + 1)); [ $i -gt 300 ] && break; sleep 1; done
say "ids $(echo $(cat $D/vendor $D/device $D/class 2>/dev/null))"
for m in $(cat /modules.uio); do insmod /lib/modules/$m.ko || say "insmod $m failed"; done
echo "5845 1400" > /sys/bus/pci/drivers/uio_pci_generic/new_id
i=0
while [ ! -e /dev/uio0 ]; do i=$((i + 1)); [ $i -gt 300 ] && break; sleep 1; done
say "driver $(basename "$(readlink $D/driver)") irq $(cat $D/irq 2>/dev/null) $(echo $(head -2 $D/resource 2>/dev/null))"
/toolkit-guest run $BDF $N
# The device's /proc/interrupts line: "<count> <chip>_<type>" (goes with the device).
say "irq $(awk '$NF == "uio_pci_generic" { c += $2; t = ""; for (i = 3; i < NF; i++) t = t (t ? "_" : "") $i }
    END { print c + 0, (t == "" ? "none" : t) }' /proc/interrupts)"
echo 1 > $D/remove
[ -e $D ] && say "removed no" || say "removed yes"
say "done"
if /toolkit-guest gone $SLOT 600; then say "gone"; else say "still-answering"; fi
