#!/bin/sh
# Runs inside dom0 after in-vm.sh when the initramfs carries the toolstack:
# starts xenstored, then `xl create`s a small HVM guest whose device model is
# Debian's QEMU (qemu-system-xen) running on OUR libxendevicemodel. The guest
# has no disk: hvmloader and SeaBIOS run, which needs QEMU to emulate the PCI
# host bridge, ISA devices and ports through IOREQ servers made by our library.
G=/payload/guest
for m in xen-evtchn xen-gntdev xen-gntalloc xenfs; do insmod /lib/modules/$m.ko 2>/dev/null; done
mkdir -p /proc/xen /var/run/xen /var/run/xenstored /var/lib/xenstored /var/log/xen /var/lib/xen /run/xen
mount -t xenfs xenfs /proc/xen
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts # QEMU gives the guest serial a pty
unset LD_LIBRARY_PATH
/usr/lib/xen-4.17/bin/xenstored --pid-file /var/run/xen/xenstored.pid
/usr/lib/xen-4.17/bin/xen-init-dom0 > /tmp/init-dom0.log 2>&1 || { cat /tmp/init-dom0.log; echo "guest: FAIL (xen-init-dom0)"; exit 1; }
mkdir -p /var/log/xen/console
/usr/lib/xen-4.17/bin/xenconsoled --pid-file=/var/run/xen/xenconsoled.pid
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
/usr/lib/xen-4.17/bin/xl create /tmp/guest.cfg 2>&1 | grep -v "xl.conf" > /tmp/xl-create.log
cat /tmp/xl-create.log; rc=$(/usr/lib/xen-4.17/bin/xl list guest >/dev/null 2>&1; echo $?)
[ $rc -eq 0 ] || { cat /var/log/xen/qemu-dm-guest.log 2>/dev/null | tail -20; echo "guest: FAIL (xl create: $rc)"; exit 1; }
/usr/lib/xen-4.17/bin/xl unpause guest 2>/dev/null
# Give the guest's firmware time to enumerate PCI through QEMU.
for i in $(seq 1 90); do
    /usr/lib/xen-4.17/bin/xl dmesg 2>/dev/null | grep -q 'Booting from\|No bootable device\|Boot failed' && break
    sleep 1
done
/usr/lib/xen-4.17/bin/xl list 2>/dev/null
/usr/lib/xen-4.17/bin/xl dmesg 2>/dev/null | grep '(d[0-9]*)' | tail -25
bound=$(grep -h "normal symbol \`xendevicemodel_" /tmp/dm-bindings.* 2>/dev/null | grep "/payload/ours/libxendevicemodel.so.1" |
    sed "s/.*symbol \`//; s/'.*//" | sort -u | wc -l)
other=$(grep -h "normal symbol \`xendevicemodel_" /tmp/dm-bindings.* 2>/dev/null | grep -vc "/payload/ours/libxendevicemodel.so.1")
echo "guest: QEMU bound $bound distinct xendevicemodel_* functions to our library, $other bindings elsewhere"
pci=$(/usr/lib/xen-4.17/bin/xl dmesg 2>/dev/null | grep -c '(d[0-9]*) pci dev')
seabios=$(/usr/lib/xen-4.17/bin/xl dmesg 2>/dev/null | grep -c '(d[0-9]*) Found [1-9][0-9]* PCI devices')
/usr/lib/xen-4.17/bin/xl destroy guest
pass=0 fail=0
if [ "$bound" -ge 10 ] && [ "$other" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: QEMU did not run on our library"; fi
if [ "$pci" -ge 1 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: hvmloader found no PCI device through QEMU"; fi
if [ "$seabios" -ge 1 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: SeaBIOS found no PCI devices through QEMU"; fi
echo "guest: hvmloader saw $pci PCI devices, SeaBIOS ran: $seabios"
echo "guest: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
