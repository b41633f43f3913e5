#!/bin/sh
# Runs inside the arm64 dom0 after in-vm.sh (tests/xen-hypervisor/run.sh arm64 with
# XEN_GUEST=1): Debian's toolstack (xenstored, xl) boots a Linux guest whose
# device tree (guest.dts) has a PL031 RTC at 0x0a000000; mmio-dm, on OUR
# libxendevicemodel, emulates it and a mailbox page through an IOREQ server,
# and raises the RTC's alarm interrupt with set_irq_level. The guest reads and
# writes registers, and reports the interrupt count /proc/interrupts shows.
#
# The guest gets a virtio disk only so that libxl gives it SPIs at all (Xen
# 4.17's libxl sizes a domain's SPIs from its vUART, virtio devices and passthrough
# IRQs): that makes SPI 0 (interrupt 32) valid and unused. The guest has no
# virtio-mmio driver, so nobody serves or probes the disk; libxl only waits for
# the disk's back-end to reach InitWait, which the loop below writes.
G=/payload/guest
. /payload/checks.sh
. /payload/dom0.sh
. /payload/vm.env # XENBIN
X=$XENBIN
insmod /lib/modules/brd.ko rd_nr=1 rd_size=1024 # /dev/ram0: the block device behind the virtio disk
mkdir -p /tmp/console
toolstack $X --log=guest --log-dir=/tmp/console || { bad "the toolstack did not start"; summary guest; exit 1; }
unset LD_LIBRARY_PATH
cat > /tmp/guest.cfg <<CFG
name = "guest"
kernel = "$G/vmlinuz"
ramdisk = "$G/initrd.gz"
extra = "console=hvc0 rdinit=/init quiet"
memory = 128
vcpus = 1
device_tree = "$G/guest.dtb"
disk = [ "format=raw, vdev=xvda, access=rw, backendtype=standalone, specification=virtio, target=/dev/ram0" ]
on_poweroff = "destroy"
on_crash = "preserve"
CFG
# The virtio disk's back-end: InitWait (2) once libxl has written it
# (in the background, while xl create waits for it).
backend_waiting() {
    for d in $(xenstore-list /local/domain/0/backend/virtio_disk 2>/dev/null); do
        for v in $(xenstore-list /local/domain/0/backend/virtio_disk/$d 2>/dev/null); do
            s=/local/domain/0/backend/virtio_disk/$d/$v/state
            [ "$(xenstore-read $s 2>/dev/null)" = 1 ] && xenstore-write $s 2 && return 0
        done
    done
    return 1
}
WAIT_STEP=0.1 wait_until "the virtio disk's back-end written by libxl" 120 backend_waiting &
$X/xl create -p /tmp/guest.cfg > /tmp/xl-create.log 2>&1
grep -v 'xl.conf' /tmp/xl-create.log
domid=$($X/xl domid guest 2>/dev/null)
[ -n "$domid" ] || { bad "xl create"; summary guest; exit 1; }
LD_LIBRARY_PATH=/payload/ours ./mmio-dm "$domid" 32 900 > /tmp/dm.log 2>&1 &
dm=$!
dm_up() { grep -q '^dm: serving' /tmp/dm.log || ! kill -0 $dm 2>/dev/null; }
WAIT_STEP=0.2 wait_until "the device model serving (or gone)" 120 dm_up
grep -q "^dm: serving" /tmp/dm.log && ok || { cat /tmp/dm.log; bad "the device model did not start"; }
$X/xl unpause guest
wait $dm
dmrc=$?
sed -n '/@@@ GUEST BEGIN/,/@@@ GUEST END/p' /tmp/console/guest-guest.log 2>/dev/null | tr -d '\r' | grep -v '@@@' > /tmp/guest.out
cat /tmp/guest.out
grep -E '^dm: (libxen|create|map|serving|set_irq_level|rtc|guest|[0-9]+ reads|disable)|^dm: read  0xa001|^dm: write 0xa001' /tmp/dm.log
$X/xl destroy guest 2>/dev/null

# The library is ours, and the device model saw and answered what the guest did.
[ $dmrc -eq 0 ] && ok || bad "mmio-dm exited $dmrc"
grep -q '^dm: libxendevicemodel from /payload/ours/' /tmp/dm.log && ok || bad "the device model did not run on our library"
grep -q '^dm: read  0xa001000 size 4 -> 0x58444d31$' /tmp/dm.log && ok || bad "the guest did not read the mailbox id"
grep -q '^dm: write 0xa001004 size 4 <- 0xcafef00d$' /tmp/dm.log && ok || bad "the guest did not write the scratch register"
grep -q '^guest: mailbox scratch 0xCAFEF00D$' /tmp/guest.out && ok || bad "the guest did not read back its write"
grep -q '^dm: read  0xa000fe0 size 4 -> 0x31$' /tmp/dm.log && ok || bad "the guest's AMBA bus did not probe the PL031"
grep -q '^guest: rtc0 is rtc-pl031' /tmp/guest.out && ok || bad "the guest's rtc-pl031 driver did not bind"
grep -qE "^dm: set_irq_level\\($domid, 32, 1\\) = 0\$" /tmp/dm.log && ok || bad "set_irq_level did not raise interrupt 32"
grep -q '^dm: guest cleared the rtc interrupt (ICR)$' /tmp/dm.log && ok || bad "the guest's interrupt handler did not run"
grep -qE "^dm: set_irq_level\\($domid, 32, 0\\) = 0\$" /tmp/dm.log && ok || bad "set_irq_level did not lower interrupt 32"
n=$(sed -n 's/^dm: guest reports \([0-9]*\) interrupts.*/\1/p' /tmp/dm.log)
[ "${n:-0}" -ge 1 ] && ok || bad "the guest's /proc/interrupts shows ${n:-no} rtc-pl031 interrupts"
grep -qE '^guest: after: +[0-9]+: +[1-9][0-9]* .* 32 .*rtc-pl031' /tmp/guest.out && ok ||
    bad "no rtc-pl031 line with a count on interrupt 32 in the guest's /proc/interrupts"
summary guest
