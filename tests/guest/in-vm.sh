#!/bin/sh
# `make guest-check`, inside dom0 (busybox sh, run from /payload as in-vm.sh):
# the same scenario twice, once with Xen's libxendevicemodel as QEMU's and
# once with ours. Each step checks its own result and prints one line
#   [LIB] outcome: STEP: ok (...)       or       [LIB] outcome: STEP: FAIL ...
# with nothing run-specific in it (no times, domids or counts that vary), so
# the host (tests/guest/run.sh) can require both runs' outcome lines to be
# identical as well as all ok. Other lines ("[LIB] info: ...") carry the
# measured values. A failing step prints the guest's serial output and the
# tail of QEMU's log. Every wait is bounded.
. ./checks.sh
. ./dom0.sh
. ./vm.env # XENBIN
XL=$XENBIN/xl
xl() { t=$1; shift; timeout "$t" $XL "$@"; } # every xl call is bounded
G=/payload/guest
NETBYTES=$(cat $G/netbytes)
OTHER=50 # a second, idle domain the restricted QEMU must not reach

# ---- dom0 set-up: toolstack, tap devices, the deprivileged QEMU's user ----
load_modules tun loop
mkdir -p /dev/net
[ -e /dev/net/tun ] || mknod /dev/net/tun c 10 200
printf 'root:x:0:0:root:/root:/bin/sh\nxen-qemuuser-shared:x:901:901::/nonexistent:/bin/false\n' > /etc/passwd
printf 'root:x:0:\nxen-qemuuser-shared:x:901:\n' > /etc/group
export LD_LIBRARY_PATH=/payload/xen # tooling (libxenctrl) uses Xen's own library
$G/mkdomain create $OTHER > /dev/null || echo "dom0: cannot create the idle domain $OTHER"
unset LD_LIBRARY_PATH
toolstack $XENBIN || exit 1
# tap0 joins the guest's e1000 to dom0; tap1 is the migration target's (the
# source QEMU still holds tap0 while the destination starts). dom0's address
# moves to the tap of the QEMU that runs the guest (ip_on); tap1 has tap0's
# MAC, so the guest's ARP entry for dom0 stays right.
tunctl -t tap0 > /dev/null && tunctl -t tap1 > /dev/null || echo "dom0: tunctl failed"
ip link set tap1 address "$(cat /sys/class/net/tap0/address)"
ip addr add 10.9.0.1/24 dev tap0
ip link set tap0 up
ip link set tap1 up
ip_on() { # TAP
    for t in tap0 tap1; do [ "$t" = "$1" ] || ip addr del 10.9.0.1/24 dev "$t" 2>/dev/null; done
    ip addr add 10.9.0.1/24 dev "$1" 2>/dev/null
    true
}
mkfifo /tmp/hold
: > /etc/xen/xl.conf
echo "dom0: $(uname -r), xen $(cat /sys/hypervisor/version/major).$(cat /sys/hypervisor/version/minor), $(free -m | awk '/Mem:/ {print $2}') MB"

# ---- helpers ----
# Outcomes (not checks.sh's counts: the host compares both runs' lines):
# pass STEP [WHY], fail STEP WHY.
say() { echo "[$LIB] $*"; }
info() { echo "[$LIB] info: $*"; }
outcome() { echo "[$LIB] outcome: $*"; }
pass() { outcome "$1: ok${2:+ ($2)}"; }
fail() { # STEP WHY
    outcome "$1: FAIL $2"
    failed=$((failed + 1))
    show_logs
}
show_logs() {
    say "--- guest serial output (last 40 lines) ---"
    serial | tail -40 | sed "s/^/[$LIB] serial| /"
    for f in /var/log/xen/qemu-dm-*.log; do
        [ -f "$f" ] || continue
        say "--- $f (last 15 lines) ---"
        tail -15 "$f" | sed "s/^/[$LIB] qemu| /"
    done
}
# The guest's serial output so far: every file this guest's QEMUs wrote, in order.
# A line the guest is still writing (the file does not end in a newline yet)
# is left out: a reader must never act on half a line.
serial() {
    cat $SERIALS 2>/dev/null | tr -d '\r' > /tmp/serial.now
    [ -z "$(tail -c 1 /tmp/serial.now)" ] || sed -i '$d' /tmp/serial.now
    cat /tmp/serial.now
}
# gline KEY: the guest's last "@G KEY ..." line, without "@G KEY ".
gline() { serial | sed -n "s/^@G $1 //p" | tail -1; }
# now: seconds since dom0 booted (no process: forks are slow in this dom0).
now() { read -r up _ < /proc/uptime; echo "${up%.*}"; }
seen_g() { grep -q "^@G $1" $SERIALS 2>/dev/null && serial | grep -q "^@G $1"; }
guest_error() { grep -q '^@G error' $SERIALS 2>/dev/null; }
# wait_g PATTERN CEILING: waits for a guest line starting "@G PATTERN" and
# says how long it took (dom0.sh's wait_until); an "@G error" line ends the
# wait at once. It polls every 3 s: each fork costs dom0 (a PV guest under
# TCG) milliseconds that QEMU needs for the guest.
wait_g() {
    WAIT_STEP=3 WAIT_GIVEUP=guest_error
    wait_until "guest: @G $1" "$2" seen_g "$1"
    _rc=$?
    WAIT_STEP=1 WAIT_GIVEUP=
    return $_rc
}
last_tick() { serial | sed -n 's/^@G tick \([0-9]*\) .*/\1/p' | tail -1; }
# A tick line can land in the serial file a while after the guest wrote it
# (the guest kernel's tty buffer, QEMU's UART, an xl call still starting), so
# a step that judges ticks across an event (pause, save, migration) takes its
# reference with the guest stopped and its output settled: settle waits until
# the serial files have not grown for 3 s (dom0.sh's wait_quiet, ceiling
# 120 s, time reported). Ticks after the reference may have begun before the
# event: a step judges only those that began after it (from the reference's
# second successor on).
settle() { wait_quiet "serial output ($1)" 120 3 $SERIALS; } # WHAT
serial_bytes() { cat $SERIALS 2>/dev/null | wc -c; }
wait_tick() { wait_g "tick $1 disk" "$2"; } # N SECONDS
domid_of() { xl 120 domid "$1" 2>/dev/null; }
qemu_pid() { # DOMID: the device model's pid
    for p in /proc/[0-9]*; do
        tr '\0' ' ' 2>/dev/null < "$p/cmdline" | grep -q "xen-domid $1 " && { echo "${p#/proc/}"; return; }
    done
}
md5() { md5sum | cut -d' ' -f1; }
# stop_listeners: ends dom0's network listeners a run left waiting (its guest
# failed before connecting), so the next run can bind their ports.
stop_listeners() {
    for p in /proc/[0-9]*; do
        tr '\0' ' ' 2>/dev/null < "$p/cmdline" | grep -q '^nc -l -p 500[12] ' && kill "${p#/proc/}" 2>/dev/null
    done
    return 0
}
# pattern NAME: the 256 KiB the guest writes (same function as guest-init).
pattern() { seq -w 1 20000 | sed "s/^/xdm-$1-/" | dd bs=256k count=1 iflag=fullblock 2>/dev/null; }
region() { dd if="$1" bs=256k skip="$2" count="${3:-1}" 2>/dev/null; } # IMAGE BLOCK [COUNT]
RAND_BLK=4 WRITE_BLK=12 TICK_BLK=40
. $G/toolkit.sh # toolkit(): the Rust device model beside QEMU (issue 14)

AHCI_BASE=64 # the AHCI disk's test blocks follow its 16 MiB boot file system
# new_image ide|ahci: a fresh disk image /tmp/NAME.img with 1 MiB of random
# bytes at RAND_BLK (after the boot file system on AHCI); prints their md5.
# The IDE disk starts with chain.bin.
new_image() {
    head -c 1048576 /dev/urandom > /tmp/rand
    if [ "$1" = ide ]; then
        dd if=/dev/zero of=/tmp/ide.img bs=1M count=16 2>/dev/null
        dd if=$G/chain.bin of=/tmp/ide.img conv=notrunc 2>/dev/null
        base=0
    else
        zcat $G/boot.img.gz > /tmp/ahci.img
        dd if=/dev/zero of=/tmp/ahci.img bs=1M seek=16 count=8 conv=notrunc 2>/dev/null
        base=$AHCI_BASE
    fi
    dd if=/tmp/rand of=/tmp/$1.img bs=256k seek=$((base + RAND_BLK)) conv=notrunc 2>/dev/null
    md5 < /tmp/rand
}

write_cfg() { # FILE NAME SERIAL EXTRA-LINES
    cat > "$1" <<CFG
type = "hvm"
name = "$2"
memory = 96
vcpus = 1
boot = "c"
xen_platform_pci = 0
vga = "none"
nographic = 1
vnc = 0
sdl = 0
serial = "file:$3"
device_model_version = "qemu-xen"
device_model_override = "$G/dm-wrapper.sh"
on_poweroff = "destroy"
on_crash = "preserve"
$4
CFG
}
# The disks: the image files, or (DISKS=loop, for the deprivileged QEMU) the
# same files through loop block devices /dev/loop0 (IDE) and /dev/loop1 (AHCI):
# libxl caps a deprivileged QEMU's file size at 256 KiB, which binds regular
# files only (see restrict-rlimit).
# auto-read-only=off: a QEMU that receives a guest (xl restore, migrate) keeps
# its disks read-only until the guest runs, then QEMU reopens them read-write
# by path; a deprivileged QEMU, chrooted by then, cannot ("Could not open
# '/dev/loop0': Permission denied" on libxl's "cont"), so the guest never ran.
# Opened read-write from the start, the same descriptor serves throughout.
devices() { # TAP: QEMU's devices (the same for every QEMU of a guest: its state moves between them)
    if [ "${DISKS:-file}" = loop ]; then ide=/dev/loop0 ahci=/dev/loop1; else ide=/tmp/ide.img ahci=/tmp/ahci.img; fi
    ro=auto-read-only=off,file.auto-read-only=off
    echo "device_model_args_hvm = [ \"-drive\", \"file=$ide,if=ide,format=raw,index=0,media=disk,$ro\",
  \"-device\", \"ahci,id=ahci0\", \"-drive\", \"file=$ahci,if=none,id=d2,format=raw,$ro\", \"-device\", \"ide-hd,drive=d2,bus=ahci0.0\",
  \"-netdev\", \"tap,id=n0,ifname=$1,script=no,downscript=no\", \"-device\", \"e1000,netdev=n0,romfile=,mac=00:16:3e:09:00:02\" ]"
}

# check_maps PID: QEMU mapped the library under test, and no other libxendevicemodel.
check_maps() {
    grep -q " /payload/$LIB/libxendevicemodel.so.1\$" /proc/$1/maps 2>/dev/null &&
        ! grep libxendevicemodel /proc/$1/maps | grep -vq " /payload/$LIB/libxendevicemodel.so.1\$"
}
# check_bindings STEP: every xendevicemodel_* symbol QEMU bound came from the library under test.
check_bindings() {
    b=$(grep -h "normal symbol \`xendevicemodel_" /tmp/dm-bindings-$LIB.* 2>/dev/null)
    n=$(echo "$b" | grep "/payload/$LIB/libxendevicemodel.so.1" | sed "s/.*symbol \`//; s/'.*//" | sort -u | grep -c .)
    other=$(echo "$b" | grep -v "/payload/$LIB/libxendevicemodel.so.1" | grep -c .)
    info "QEMU bound $n distinct xendevicemodel_* functions to /payload/$LIB, $other elsewhere"
    if [ "$n" -ge 15 ] && [ "$other" -eq 0 ]; then pass "$1" "QEMU's xendevicemodel_* calls bound to the library under test"
    else fail "$1" "QEMU's bindings: $n to /payload/$LIB, $other elsewhere"; fi
}

# tick_field N FIELD: FIELD's value in the guest's "tick N" line.
tick_field() { serial | sed -n "s/^@G tick $1 .*$2=\([^ ]*\).*/\1/p" | tail -1; }
# devices_ok FROM TO: in ticks FROM..TO the IDE counter read back, the AHCI
# block read right, every ping answered, and each device's interrupts grew.
devices_ok() {
    for k in $(seq "$1" "$2"); do
        [ "$(tick_field $k disk)" = ok ] && [ "$(tick_field $k ping)" = ok ] && [ "$(tick_field $k ahci)" = "$ahci_blk" ] || return 1
    done
    for f in ide intx msi; do [ "$(tick_field "$2" $f)" -gt "$(tick_field "$1" $f)" ] || return 1; done
}

# ---- the scenario: one guest per library, through four QEMUs ----
# It boots (disks, MSI, network checked there); `xl save` and `xl restore`
# hand it to a second QEMU; pause; `xl migrate` to localhost hands it to a
# third; `xl save` and `xl restore` with dm_restrict = 1 (a restore may change
# the device model's configuration) to a deprivileged fourth.
scenario() {
    rand_ide=$(new_image ide)
    rand_ahci=$(new_image ahci)
    ahci_blk=$(head -c 262144 /tmp/rand | md5 | cut -c 1-8)
    ip_on tap0
    chmod 600 /tmp/ide.img /tmp/ahci.img # only root: QEMU opens them before it drops privileges
    head -c "$NETBYTES" /dev/urandom > /tmp/net-to-guest
    rm -f /tmp/net-from-guest /tmp/serial-$LIB-*.log /var/log/xen/qemu-dm-*.log
    # dom0's ends of the two transfers, both started by the guest.
    (timeout 1800 nc -l -p 5001 <> /tmp/hold > /tmp/net-from-guest) &
    (timeout 1800 nc -l -p 5002 < /tmp/net-to-guest) &
    SERIALS=/tmp/serial-$LIB-1.log
    write_cfg /tmp/create.cfg guest /tmp/serial-$LIB-1.log "$(devices tap0)"
    t0=$(now)
    info "xl create"
    if ! xl 600 -vvv create /tmp/create.cfg > /tmp/xl-create.log 2>&1; then
        tail -40 /tmp/xl-create.log; fail boot "xl create failed"; return
    fi
    if wait_g boot 1200; then pass boot "Linux started its init from the AHCI disk"
    else fail boot "no init within 1200 s"; return; fi
    info "the guest reached its init $(( $(now) - t0 )) s after xl create"

    pid=$(qemu_pid "$(domid_of guest)")
    check_maps "$pid" || fail library "QEMU has not mapped /payload/$LIB/libxendevicemodel.so.1"

    # Disks: the guest read dom0's random bytes and wrote a pattern dom0 finds.
    for d in ide ahci; do
        eval rand=\$rand_$d
        if ! wait_g "$d-write" 300; then fail "$d-read" "no report"; fail "$d-write" "no report"; continue; fi
        got=$(gline "$d-read")
        if [ "$got" = "$rand" ]; then pass "$d-read" "1 MiB of dom0's random bytes, checksum matches"
        else fail "$d-read" "guest read $got, dom0 wrote $rand"; fi
        want=$(pattern $d | md5)
        [ $d = ahci ] && base=$AHCI_BASE || base=0
        img=$(region /tmp/$d.img $((base + WRITE_BLK)) | md5)
        if [ "$(gline "$d-write")" = "ok $want" ] && [ "$img" = "$want" ]; then pass "$d-write" "the guest's flushed pattern is in the image file"
        else fail "$d-write" "guest: $(gline "$d-write"), expected ok $want, image has $img"; fi
    done
    # MSI: AHCI's interrupts are MSIs (chip PCI-MSI: QEMU delivers them with inject_msi), delivered.
    wait_g "irq ahci" 300
    set -- $(gline "irq ahci")
    info "AHCI interrupts: ${1:-?} on ${2:-?}"
    case ${2:-} in *MSI*|*msi*) [ "${1:-0}" -gt 0 ] && pass msi "AHCI's interrupt is an MSI and fired" || fail msi "AHCI's MSI count is ${1:-0}" ;;
                  *) fail msi "AHCI's interrupt is not an MSI: ${2:-none}" ;; esac

    # Network: NETBYTES each way through the emulated e1000 and dom0's tap0.
    if wait_g "net-rx" 900; then
        set -- $(gline net-tx)
        got_n=$(wc -c < /tmp/net-from-guest) got_md5=$(md5 < /tmp/net-from-guest)
        if [ "${1:-}" = "$NETBYTES" ] && [ "$got_n" = "$NETBYTES" ] && [ "$got_md5" = "${2:-}" ]; then
            pass net-guest-to-dom0 "$NETBYTES random bytes arrived intact"
        else fail net-guest-to-dom0 "guest sent ${1:-?} bytes md5 ${2:-?}, dom0 got $got_n md5 $got_md5"; fi
        set -- $(gline net-rx)
        want=$(md5 < /tmp/net-to-guest)
        if [ "${1:-}" = "$NETBYTES" ] && [ "${2:-}" = "$want" ]; then pass net-dom0-to-guest "$NETBYTES random bytes arrived intact"
        else fail net-dom0-to-guest "guest got ${1:-?} bytes md5 ${2:-?}, dom0 sent $NETBYTES md5 $want"; fi
    else
        fail net-guest-to-dom0 "no report"; fail net-dom0-to-guest "no report"
    fi
    info "network done $(( $(now) - t0 )) s after xl create"
    set -- $(gline "irq net")
    info "e1000 interrupts: ${1:-?} on ${2:-?}"
    # A level-triggered IO-APIC line: Linux's handler for it is "fasteoi".
    case ${2:-} in IO-APIC*fasteoi*|IO-APIC*level*) [ "${1:-0}" -gt 0 ] && pass intx "e1000's interrupt is a level-triggered PCI INTx (IO-APIC line) and fired" || fail intx "e1000's count is ${1:-0}" ;;
                  *) fail intx "e1000's interrupt is not on the IO-APIC: ${2:-none}" ;; esac
    toolkit # the Rust device model's PCI function, used by the guest, then torn down

    # Ticks: every device keeps working; the IDE disk's ISA interrupt grows.
    if ! wait_tick 3 600; then fail ticks "no tick 3 within 600 s"; return; fi
    set -- $(gline "irq ide")
    info "ata_piix interrupts: ${1:-?} on ${2:-?}; tick 1: $(serial | grep '^@G tick 1 '); tick 3: $(serial | grep '^@G tick 3 ')"
    case ${2:-} in IO-APIC*edge*) [ "$(tick_field 3 ide)" -gt "$(tick_field 1 ide)" ] && pass isa-irq "the IDE disk's ISA interrupt (IO-APIC, edge) keeps growing" ||
                     fail isa-irq "ata_piix count $(tick_field 1 ide) -> $(tick_field 3 ide)" ;;
                  *) fail isa-irq "ata_piix is not on an ISA (IO-APIC edge) line: ${2:-none}" ;; esac
    devices_ok 1 3 && pass ticks "each tick reads back its counter, reads AHCI, pings dom0; all interrupts grow" ||
        fail ticks "ticks 1-3: $(serial | grep '^@G tick [123] ' | tr '\n' ' ')"

    # Save and restore: a new QEMU takes over. The reference is the last tick
    # the saved guest wrote; tick l+2 is the first that ran wholly on the new QEMU.
    t1=$(now)
    info "xl save at tick $(last_tick)"
    if xl 600 save guest /tmp/guest.save > /tmp/xl-save.log 2>&1 && ! domid_of guest > /dev/null; then
        t2=$(now)
        info "xl save took $((t2 - t1)) s, $(($(wc -c < /tmp/guest.save) / 1048576)) MiB"
        settle save
        l=$(last_tick)
        info "the saved guest's last tick: $l"
        SERIALS="$SERIALS /tmp/serial-$LIB-2.log"
        write_cfg /tmp/restore.cfg guest /tmp/serial-$LIB-2.log "$(devices tap0)"
        if xl 600 restore /tmp/restore.cfg /tmp/guest.save > /tmp/xl-restore.log 2>&1; then
            info "xl restore took $(( $(now) - t2 )) s"
            # AHCI on the restored QEMU: reads right and its MSIs still arrive (a
            # Xen-aware Linux lost them here: see the guest's nopv in run.sh).
            if wait_tick $((l + 2)) 600 && [ "$(tick_field $((l + 2)) ahci)" = "$ahci_blk" ] &&
                [ "$(tick_field $((l + 2)) msi)" -gt "$(tick_field $((l + 1)) msi)" ]; then
                pass ahci-after-restore "the AHCI disk reads right on the restored QEMU, its MSIs arrive"
            else fail ahci-after-restore "tick $((l + 2)): AHCI block $(tick_field $((l + 2)) ahci) (want $ahci_blk), MSIs $(tick_field $((l + 1)) msi) -> $(tick_field $((l + 2)) msi)"; fi
            # Tick l+1 (perhaps begun before the save) continued the count; l+2
            # read back the count l+1 wrote.
            if wait_tick $((l + 1)) 600 && wait_tick $((l + 4)) 600 && devices_ok $((l + 2)) $((l + 4)); then
                pass save-restore "counting continued at the next tick, the disk held the last count, every device works on the new QEMU"
            else fail save-restore "after restore: ticks up to $(last_tick) (saved at $l): $(serial | grep "^@G tick $((l + 2)) ")"; fi
        else tail -30 /tmp/xl-restore.log; fail save-restore "xl restore failed"; fi
    else tail -30 /tmp/xl-save.log; fail save-restore "xl save failed"; fi
    rm -f /tmp/guest.save
    pid=$(qemu_pid "$(domid_of guest)")
    info "the restored QEMU: pid $pid, uid $(awk '/^Uid:/ { print $2 }' /proc/$pid/status 2>/dev/null)"
    check_maps "$pid" || fail library "the restored QEMU has not mapped /payload/$LIB/libxendevicemodel.so.1"

    # Pause: no tick while paused, the next one after. The reference is taken
    # once the pause took effect and every line written before it has landed.
    info "pause"
    xl 120 pause guest
    l= l2=none b1=0 b2=0 state=
    if settle pause; then
        l=$(last_tick) b1=$(serial_bytes)
        sleep 6
        state=$(xl 120 list guest 2>/dev/null | awk 'NR == 2 { print $5 }')
        l2=$(last_tick) b2=$(serial_bytes)
    fi
    info "paused at tick $l; 6 s later tick $l2, serial output $b1 -> $b2 bytes"
    xl 120 unpause guest
    if [ -n "$l" ] && [ "$l" = "$l2" ] && echo "$state" | grep -q p && wait_tick $((l + 2)) 600 && [ "$(tick_field $((l + 1)) disk)" = ok ]; then
        pass pause "no tick while paused, counting resumed at the next one"
    else fail pause "ticks ${l:-?} -> $l2 while paused (state $state), then last $(last_tick)"; fi

    # Live migration to localhost: the receiver is a second xl on this host.
    info "migrate"
    l=$(last_tick)
    SERIALS="$SERIALS /tmp/serial-$LIB-3.log"
    write_cfg /tmp/migrate.cfg guest /tmp/serial-$LIB-3.log "$(devices tap1)"
    t1=$(now)
    xl 900 migrate -C /tmp/migrate.cfg -s "" guest "exec $XL -vvv migrate-receive -e" > /tmp/xl-migrate.log 2>&1
    mrc=$?
    info "xl migrate exit $mrc after $(( $(now) - t1 )) s"
    # The guest runs on the receiver before dom0's address moves to tap1 (the
    # receiving QEMU's): paused, it gets the move and the reference tick lm;
    # tick lm+1 may have begun before the move, lm+2 began after.
    xl 120 pause guest
    ip_on tap1
    settle migrate
    lm=$(last_tick)
    xl 120 unpause guest
    if [ $mrc -eq 0 ] && wait_tick $((lm + 4)) 600 && devices_ok $((lm + 2)) $((lm + 4)); then
        pass migrate "the guest continued on the receiving QEMU, every device works"
    else
        grep -iE 'error|fail|refus|lock|denied' /tmp/xl-migrate.log | head -40 | sed "s/^/[$LIB] xl-migrate| /"
        fail migrate "xl migrate exit $mrc, ticks up to $(last_tick) (migrated at $l)"
    fi

    # A deprivileged QEMU (dm_restrict = 1, -xen-domid-restrict) takes over
    # through xl save / xl restore.
    info "xl save and xl restore with dm_restrict = 1"
    l=
    losetup -d /dev/loop0 2>/dev/null; losetup -d /dev/loop1 2>/dev/null
    losetup /dev/loop0 /tmp/ide.img && losetup /dev/loop1 /tmp/ahci.img || info "losetup failed"
    chmod 600 /dev/loop0 /dev/loop1
    write_cfg /tmp/restricted.cfg guest /tmp/serial-$LIB-4.log "dm_restrict = 1
$(DISKS=loop devices tap0)"
    # The reference: the saved guest's last tick (as for the first save).
    if ! { xl 600 save guest /tmp/guest.save > /tmp/xl-save.log 2>&1 && ip_on tap0 && settle save &&
           l=$(last_tick) && SERIALS="$SERIALS /tmp/serial-$LIB-4.log" &&
           xl 600 -vvv restore /tmp/restricted.cfg /tmp/guest.save > /tmp/xl-restore.log 2>&1; }; then
        tail -20 /tmp/xl-save.log; grep -E 'error|warning' /tmp/xl-restore.log | tail -20
        fail restrict-qemu "xl save / xl restore with dm_restrict failed"
    fi
    rm -f /tmp/guest.save
    dom=$(domid_of guest)
    pid=$(qemu_pid "$dom")
    rpid=$pid
    uid=$(awk '/^Uid:/ { print $2 }' /proc/$pid/status 2>/dev/null)
    root=$(readlink /proc/$pid/root 2>/dev/null)
    info "QEMU pid $pid, uid $uid, root $root; $(tr '\0' ' ' < /proc/$pid/cmdline | grep -o '\-xen-domid-restrict\|-runas [^ ]*\|-chroot [^ ]*' | tr '\n' ' ')"
    if [ "$uid" = 901 ] && [ -n "$root" ] && [ "$root" != / ] && tr '\0' ' ' < /proc/$pid/cmdline | grep -q -- '-xen-domid-restrict'; then
        pass restrict-qemu "QEMU runs with -xen-domid-restrict as xen-qemuuser-shared, chrooted"
    else fail restrict-qemu "QEMU uid '$uid', root '$root'"; fi
    $G/privcmd-probe "$pid" "$dom" $OTHER > /tmp/probe.log 2>&1
    prc=$?
    sed "s/^/[$LIB] probe| /" /tmp/probe.log
    [ $prc -eq 0 ] && pass restrict-handle "each privcmd file of QEMU serves its guest and refuses another domain's dm_op and any hypercall (EPERM)" ||
        fail restrict-handle "privcmd-probe exit $prc"
    # Why a deprivileged QEMU's writes to an image file get lost: libxl caps its
    # file size (RLIMIT_FSIZE); a write past the cap fails (EFBIG, SIGXFSZ) on a
    # regular file, not on a block device. Shown with the same cap in a shell.
    fsz=$(awk '/^Max file size/ { print $4 }' /proc/$pid/limits)
    info "QEMU's limits: $(grep -E '^Max (file size|locked memory|core)' /proc/$pid/limits | tr -s ' ' | tr '\n' ';')"
    dd if=/dev/zero of=/tmp/fsz.img bs=1M count=2 2>/dev/null
    losetup /dev/loop2 /tmp/fsz.img
    (ulimit -f $((fsz / 512)); dd if=/dev/zero of=/tmp/fsz.img bs=256k seek=4 count=1 conv=notrunc 2>/dev/null) 2>/dev/null && f=written || f=refused
    (ulimit -f $((fsz / 512)); dd if=/dev/zero of=/dev/loop2 bs=256k seek=4 count=1 conv=notrunc 2>/dev/null) 2>/dev/null && b=written || b=refused
    losetup -d /dev/loop2; rm -f /tmp/fsz.img
    info "with QEMU's file size cap ($fsz bytes), a write at 1 MiB: regular file $f, block device $b"
    [ "$fsz" = 262144 ] && [ $f = refused ] && [ $b = written ] &&
        pass restrict-rlimit "libxl caps a deprivileged QEMU's file size at 256 KiB: past it a regular file refuses writes, a block device does not" ||
        fail restrict-rlimit "cap '$fsz', regular file $f, block device $b"
    check_maps "$pid" || fail library "the deprivileged QEMU has not mapped /payload/$LIB/libxendevicemodel.so.1"

    if [ -n "$l" ] && wait_tick $((l + 3)) 600 && devices_ok $((l + 2)) $((l + 3)); then pass restrict-ticks "the guest continued on the deprivileged QEMU, every device works"
    else fail restrict-ticks "ticks up to $(last_tick) (saved at ${l:-?})"; fi

    # The disks as dom0 sees them at the end.
    pid=$(qemu_pid "$(domid_of guest)")
    [ -n "$pid" ] && { check_maps "$pid" || fail library "the migrated QEMU has not mapped /payload/$LIB/libxendevicemodel.so.1"; }
    # Paused and settled: the image holds the last tick's count, or the next
    # one's if the pause came between its disk write and its line.
    xl 120 pause guest
    settle end
    l=$(last_tick)
    xl 60 destroy guest 2>/dev/null
    sleep 1
    losetup -d /dev/loop0 2>/dev/null; losetup -d /dev/loop1 2>/dev/null
    img=$(region /tmp/ide.img $TICK_BLK | head -c 13)
    if [ "$img" = "$(printf 'tick-%08d' "$l")" ] || [ "$img" = "$(printf 'tick-%08d' $((l + 1)))" ]; then
        [ "$(region /tmp/ide.img $WRITE_BLK | md5)" = "$(pattern ide | md5)" ] && pass disk-final "the image holds the last count and the pattern" ||
            fail disk-final "the pattern changed in the image"
    else fail disk-final "the image holds '$img', the guest's last tick was $l"; fi
    check_bindings library
    # Ours traces (the deprivileged QEMU into a file of its own, dm-wrapper.sh):
    # it made calls, and every one of them was for its own guest.
    if [ "$LIB" = ours ]; then
        t=/tmp/trace-$LIB.restricted
        n=$(awk -v p="$rpid" '$2 == p && $4 != "open" && $4 != "close"' "$t" 2>/dev/null | grep -c .)
        bad=$(awk -v p="$rpid" -v d="dom=$dom" '$2 == p && $4 != "open" { for (i = 5; i <= NF; i++) if ($i ~ /^dom=/ && $i != d) n++ } END { print n + 0 }' "$t" 2>/dev/null)
        if [ "$n" -gt 0 ] && [ "${bad:-1}" -eq 0 ]; then echo "[$LIB] trace-check: the deprivileged QEMU made $n traced calls, every one for domain $dom"
        else trace_fail "deprivileged QEMU: $n traced calls, ${bad:-?} for another domain than $dom"; fi
    fi
}

trace_fail() { echo "[$LIB] trace-check: FAIL $*"; failed=$((failed + 1)); }

# check_trace FILE: the calls the scenario depends on, from our library's call trace.
check_trace() {
    [ -s "$1" ] || { trace_fail "no call trace in $1"; return; }
    say "call trace $1: $(wc -l < "$1") calls; calls and errors per function:"
    awk '{ n[$4]++; for (i = 5; i <= NF; i++) if ($i ~ /^errno=/ && $i != "errno=0") e[$4]++ }
         END { for (f in n) printf "%-36s %8d %6d\n", f, n[f], e[f] }' "$1" | sort | sed "s/^/[$LIB] trace| /"
    for f in create_ioreq_server map_io_range_to_ioreq_server map_pcidev_to_ioreq_server set_ioreq_server_state \
             set_isa_irq_level set_pci_intx_level inject_msi; do
        awk -v f=$f '$4 == f && / rc=0 / { found = 1 } END { exit !found }' "$1" || { trace_fail "no successful $f in the trace"; return; }
    done
    for m in 0 1; do
        awk -v m="is_mmio=$m" '$4 == "map_io_range_to_ioreq_server" { for (i = 5; i <= NF; i++) if ($i == m) found = 1 } END { exit !found }' "$1" ||
            { trace_fail "no map_io_range_to_ioreq_server with is_mmio=$m"; return; }
    done
    awk '$4 == "track_dirty_vram" || $4 == "modified_memory" || $4 == "modified_memory_bulk" { f = 1 } END { exit !f }' "$1" ||
        { trace_fail "neither track_dirty_vram nor modified_memory"; return; }
    echo "[$LIB] trace-check: ok"
}

# For development (GUEST_DEBUG=1): every 30 s, the guest's last line and the domains.
if [ -e $G/debug ]; then
    (while sleep 30; do echo "[mon] $(now) s: $(tail -c 300 "$(ls -t /tmp/serial-*.log 2>/dev/null | head -1)" 2>/dev/null | tr -d '\r' | tail -1) | $($XL list 2>/dev/null | awk 'NR > 1 { printf "%s:%s:%s:%ss ", $1, $2, $5, $6 }')"; top -b -n 1 | sed -n '5,9p' | cut -c 1-120 | sed 's/^/[mon] /'; done) &
fi

failed=0
# For development: GUEST_EXPERIMENT=script.sh runs that instead of the scenario.
if [ -e $G/experiment.sh ]; then LIB=xen; . $G/experiment.sh; exit 0; fi
for LIB in $(cat $G/libs); do
    WAIT_PREFIX="[$LIB] "
    echo "$LIB" > /tmp/dm-lib
    echo "/tmp/trace-$LIB" > /tmp/dm-trace
    rm -f /tmp/dm-bindings-$LIB.* /tmp/trace-$LIB /tmp/trace-$LIB.restricted
    t0=$(now)
    scenario
    xl 60 destroy guest 2>/dev/null
    stop_listeners
    [ "$LIB" != ours ] || check_trace /tmp/trace-$LIB # Xen's library has no trace
    info "the scenario took $(( $(now) - t0 )) s"
done
echo "guest-check: $failed failed steps"
[ "$failed" -eq 0 ]
