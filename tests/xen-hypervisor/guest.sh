#!/bin/sh
# Runs inside dom0 after in-vm.sh when the initramfs carries the toolstack:
# starts the toolstack (tests/lib/dom0.sh), then `xl create`s a small HVM guest whose device model is
# Debian's QEMU (qemu-system-xen) running on OUR libxendevicemodel. The guest
# has no disk: hvmloader and SeaBIOS run, which needs QEMU to emulate the PCI
# host bridge, ISA devices and ports through IOREQ servers made by our library.
. ./checks.sh
. ./dom0.sh
. ./vm.env # XENBIN
G=/payload/guest
X=$XENBIN
toolstack $X || { bad "the toolstack did not start"; summary guest; exit 1; }
unset LD_LIBRARY_PATH
echo ours > /tmp/dm-lib # the device model wrapper runs QEMU on /payload/ours
cat > /tmp/guest.cfg <<CFG
type = "hvm"
name = "guest"
memory = 32
vcpus = 1
boot = "c"
vga = "none"
nographic = 1
vnc = 0
sdl = 0
serial = "pty"
device_model_version = "qemu-xen"
device_model_override = "$G/dm-wrapper.sh"
on_poweroff = "destroy"
on_crash = "preserve"
CFG
$X/xl create /tmp/guest.cfg 2>&1 | grep -v "xl.conf" > /tmp/xl-create.log
cat /tmp/xl-create.log; rc=$($X/xl list guest >/dev/null 2>&1; echo $?)
[ $rc -eq 0 ] || { tail -20 /var/log/xen/qemu-dm-guest.log 2>/dev/null; bad "xl create: $rc"; summary guest; exit 1; }
$X/xl unpause guest 2>/dev/null
# The guest's firmware enumerates PCI through QEMU, then looks for a boot
# disk (it has none); alone on the machine that takes 5-15 s.
firmware_done() { $X/xl dmesg 2>/dev/null | grep -q 'Booting from\|No bootable device\|Boot failed'; }
wait_until "the guest's firmware looked for a boot disk" 600 firmware_done
$X/xl list 2>/dev/null
$X/xl dmesg 2>/dev/null | grep '(d[0-9]*)' | tail -25
bound=$(grep -h "normal symbol \`xendevicemodel_" /tmp/dm-bindings-ours.* 2>/dev/null | grep "/payload/ours/libxendevicemodel.so.1" |
    sed "s/.*symbol \`//; s/'.*//" | sort -u | wc -l)
other=$(grep -h "normal symbol \`xendevicemodel_" /tmp/dm-bindings-ours.* 2>/dev/null | grep -vc "/payload/ours/libxendevicemodel.so.1")
echo "guest: QEMU bound $bound distinct xendevicemodel_* functions to our library, $other bindings elsewhere"
pci=$($X/xl dmesg 2>/dev/null | grep -c '(d[0-9]*) pci dev')
seabios=$($X/xl dmesg 2>/dev/null | grep -c '(d[0-9]*) Found [1-9][0-9]* PCI devices')
$X/xl destroy guest
[ "$bound" -ge 10 ] && [ "$other" -eq 0 ] && ok || bad "QEMU did not run on our library"
[ "$pci" -ge 1 ] && ok || bad "hvmloader found no PCI device through QEMU"
[ "$seabios" -ge 1 ] && ok || bad "SeaBIOS found no PCI devices through QEMU"
echo "guest: hvmloader saw $pci PCI devices, SeaBIOS ran: $seabios"
summary guest
