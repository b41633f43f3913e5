# dom0's half of the toolkit check (sourced by tests/guest/in-vm.sh; the
# guest's half is tests/guest/toolkit-guest.sh): when the guest asks, runs
# the Rust device model (examples/ioreq-pci-device) as a second IOREQ server
# beside QEMU for PCI function 0000:00:10.0 (slot 16: QEMU's devices take
# the first slots), judges what the guest reports, then stops the device
# model with SIGTERM and checks its teardown. Outcomes: toolkit-ids,
# toolkit-registers, toolkit-intx, toolkit-teardown; the measured round
# trips (Rust device model, QEMU, Xen) are info lines.
TK_SLOT=16
TK_N=8 # the interrupts the guest raises (toolkit-guest.sh's N)
TK_LOG=/tmp/toolkit-dm.log

# tk_alive PID: the process runs (a zombie does not).
tk_alive() { [ -e /proc/$1/stat ] && ! awk '{ exit $3 != "Z" }' /proc/$1/stat 2>/dev/null; }

toolkit() {
    if ! wait_g "toolkit-wait" 900; then
        for s in ids registers intx teardown; do fail toolkit-$s "the guest did not ask for the device"; done
        return
    fi
    dom=$(domid_of guest)
    $G/ioreq-pci-device "$dom" $TK_SLOT 2> $TK_LOG &
    tk_pid=$!
    tk_up() { grep -q '^ioreq-pci-device: serving' $TK_LOG || ! tk_alive $tk_pid; }
    wait_until "the Rust device model serving (or gone)" 300 tk_up
    if ! grep -q '^ioreq-pci-device: serving' $TK_LOG; then
        sed "s/^/[$LIB] dm| /" $TK_LOG
        kill -KILL $tk_pid 2>/dev/null
        for s in ids registers intx teardown; do fail toolkit-$s "the device model did not start"; done
        return
    fi
    info "$(grep '^ioreq-pci-device: serving' $TK_LOG)"
    wait_g "toolkit-done" 900 || info "the guest did not finish its toolkit steps"

    # ids: through raw config reads, and as the kernel enumerated the function after its rescan.
    cids=$(gline toolkit-config-ids) kids=$(gline toolkit-ids)
    if [ "$cids" = "5845:1400" ] && [ "$kids" = "0x5845 0x1400 0xff0000" ]; then
        pass toolkit-ids "the guest's kernel found 5845:1400 class ff0000 at 0000:00:10.0, served by the Rust device model"
    else fail toolkit-ids "config reads '$cids', sysfs '$kids'"; fi

    # registers: every round trip right, through both BARs, which the device model claimed where the guest put them.
    set -- $(gline toolkit-timing)
    tbad=${6:-?}
    bar0=$(grep -c 'BAR0: released None, claimed Some(Mmio' $TK_LOG) bar1=$(grep -c 'BAR1: released None, claimed Some(Port' $TK_LOG)
    regs=$(gline toolkit-registers)
    if [ "$regs" = "ok 24 0" ] && [ "$tbad" = 0 ] && [ "$bar0" -ge 1 ] && [ "$bar1" -ge 1 ]; then
        pass toolkit-registers "24 register round trips through the memory and the I/O BAR, SUM = A + B; the BARs claimed where the kernel placed them"
    else
        serial | grep '^@G toolkit-register' | sed "s/^/[$LIB] /"
        fail toolkit-registers "guest: '$regs', wrong values while timing: $tbad, BAR claims: memory $bar0, ports $bar1"
    fi

    # intx: N interrupts, each seen once by uio and in /proc/interrupts, level-triggered, none extra.
    set -- $(gline toolkit-intx)
    got=${1:-0} count=${2:-0} later=${3:-0} bell=${4:-0} per=${5:-?}
    set -- $(gline toolkit-irq)
    irqs=${1:-0} chip=${2:-none}
    info "toolkit INTx: $(gline toolkit-driver); uio: $got waits, count $count, after 1 s $later; /proc/interrupts $irqs on $chip; $per us per interrupt round"
    raised=$(sed -n 's/.* \([0-9]*\) interrupts raised$/\1/p' $TK_LOG) # known after teardown; checked there
    # IO-APIC "fasteoi" is Linux's handler for a level-triggered line (a plain
    # HVM guest, nopv); a Xen-aware one routes it through a pirq: "-ioapic-level".
    case $chip in *level* | IO-APIC*fasteoi*) level=1 ;; *) level= ;; esac
    if [ "$got" = $TK_N ] && [ "$count" = $TK_N ] && [ "$later" = $TK_N ] && [ "$bell" = 1 ] && [ "$irqs" = $TK_N ] && [ -n "$level" ] &&
        gline toolkit-driver | grep -q '^uio_pci_generic '; then
        pass toolkit-intx "$TK_N interrupts: uio_pci_generic counted $TK_N, /proc/interrupts $TK_N on a level-triggered line, none extra"
    else fail toolkit-intx "uio $got/$count/$later, doorbell $bell, /proc/interrupts $irqs on $chip"; fi

    # measured: one port read round trip, by the Rust device model, by QEMU, by Xen.
    set -- $(gline toolkit-timing)
    if [ $# -ge 5 ]; then
        info "$(echo "$@" | awk '{ printf "round trip of one guest read (%d reads each): Rust device model port %.0f us (%.0f/s), MMIO %.0f us (%.0f/s); QEMU port 0x3ff %.0f us (%.0f/s); Xen port 0x61 %.2f us (%.0f/s)",
            $1, $2, 1e6 / $2, $3, 1e6 / $3, $4, 1e6 / $4, $5, 1e6 / $5 }')"
    fi

    # teardown: the guest removed the function; SIGTERM; the device model
    # disables and destroys its server, checks Xen forgot it, exits 0; the
    # function no longer answers the guest's config reads.
    kill -TERM $tk_pid 2>/dev/null
    tk_gone() { ! tk_alive $tk_pid; }
    wait_until "the Rust device model's exit after SIGTERM" 300 tk_gone
    if tk_alive $tk_pid; then kill -KILL $tk_pid; rc=timeout; else wait $tk_pid; rc=$?; fi
    sed "s/^/[$LIB] dm| /" $TK_LOG
    wait_g "toolkit-gone" 600
    gone=$(serial | grep -c '^@G toolkit-gone')
    raised=$(sed -n 's/.* \([0-9]*\) interrupts raised$/\1/p' $TK_LOG)
    info "$(sed -n 's/^ioreq-pci-device: Signal(15): //p' $TK_LOG)"
    if [ "$rc" = 0 ] && grep -q '^ioreq-pci-device: Signal(15): served' $TK_LOG && grep -q 'disabled and destroyed (Xen now answers ENOENT' $TK_LOG &&
        [ "$(gline toolkit-removed)" = yes ] && [ "$gone" = 1 ] && [ "$raised" = $TK_N ]; then
        pass toolkit-teardown "after SIGTERM the device model disabled and destroyed its server (Xen: ENOENT), exit 0; the function stopped answering the guest"
    else fail toolkit-teardown "exit $rc, removed '$(gline toolkit-removed)', gone $gone, raised '$raised'"; fi
}
