# dom0's half of the virtio-blk check (issue 19; sourced by
# tests/guest/dom0.sh; the guest's half is tests/virtio/blk-guest.sh): when
# the guest asks, serves a fresh image as a virtio-blk disk on PCI function
# 0000:00:11.0 with examples/virtio-blk's virtio-blk-dm (an IOREQ server
# beside QEMU), judges what the guest reports, finds the guest's pattern in
# the image, then stops the device model with SIGTERM once the guest has
# removed the function. Outcomes: virtio-blk-disk, virtio-blk-data,
# virtio-blk-msix, virtio-blk-teardown; throughput and IOPS are info lines.
VB_SLOT=17
VB_SBDF=0000:00:11.0
VB_MIB=64
VB_SEED=19
VB_SECONDS=10
VB_LOG=/tmp/virtio-blk-dm.log
VB_IMG=/tmp/virtio-blk.img
VB_SERIAL=xdm-vblk-0001
VB_STEPS="virtio-blk-disk virtio-blk-data virtio-blk-msix virtio-blk-teardown"

virtio_blk() {
    if ! wait_g "blk-wait" 900; then
        for s in $VB_STEPS; do fail $s "the guest did not ask for the disk"; done
        return
    fi
    # Room for the pattern and, after it, the benchmark's region.
    rm -f $VB_IMG
    dd if=/dev/zero of=$VB_IMG bs=1M count=0 seek=$((2 * VB_MIB + 16)) 2>/dev/null # sparse
    sectors=$(( (2 * VB_MIB + 16) * 2048 ))
    dom=$(domid_of guest)
    $G/virtio-blk-dm --domid "$dom" --sbdf $VB_SBDF --image $VB_IMG --serial $VB_SERIAL 2> $VB_LOG &
    vb_pid=$!
    end=$(( $(now) + 60 ))
    while ! grep -q '^virtio-blk-dm: serving' $VB_LOG && tk_alive $vb_pid && [ "$(now)" -lt "$end" ]; do sleep 1; done
    if ! grep -q '^virtio-blk-dm: serving' $VB_LOG; then
        sed "s/^/[$LIB] vblk| /" $VB_LOG
        kill -KILL $vb_pid 2>/dev/null
        for s in $VB_STEPS; do fail $s "the device model did not start"; done
        return
    fi
    info "$(grep '^virtio-blk-dm: serving' $VB_LOG)"
    t0=$(now)
    wait_g "blk-done" 1800 || info "the guest did not finish its virtio-blk steps in 1800 s"
    info "the guest's virtio-blk steps took $(( $(now) - t0 )) s"

    # disk: the kernel made a disk of the image's size, with our serial, writable.
    set -- $(gline blk-disk)
    disk="$1 $2 $3 $4"
    if [ "$disk" = "vda sectors=$sectors serial=$VB_SERIAL ro=0" ]; then
        ok virtio-blk-disk "Linux's virtio_pci and virtio_blk made vda of the image's size with its serial, served by the Rust device model"
    else fail virtio-blk-disk "the guest saw '$(gline blk-disk)' (want vda sectors=$sectors serial=$VB_SERIAL ro=0)"; fi

    # data: the guest's pattern read back right; dom0 finds the same bytes in the image.
    pat=$(gline blk-pattern)
    gsum=$(echo "$pat" | sed -n 's/.*checksum=\([0-9a-f]*\).*/\1/p')
    bad=$(echo "$pat" | sed -n 's/.*first_bad=\(-*[0-9]*\).*/\1/p')
    isum=$($G/blk-guest checksum $VB_IMG $VB_MIB | sed -n 's/.*checksum=\([0-9a-f]*\).*/\1/p')
    want=$($G/blk-guest expect $VB_MIB $VB_SEED | sed -n 's/.*checksum=\([0-9a-f]*\).*/\1/p')
    info "virtio-blk pattern: $pat; image $isum; expected $want"
    if [ -n "$want" ] && [ "$gsum" = "$want" ] && [ "$isum" = "$want" ] && [ "$bad" = -1 ]; then
        ok virtio-blk-data "$VB_MIB MiB of pattern written and read back by the guest, the same bytes in dom0's image"
    else fail virtio-blk-data "guest checksum '$gsum' first bad '$bad', image '$isum', expected '$want'"; fi

    # msix: the disk's interrupts are MSI-X messages, and they fired.
    set -- $(gline blk-irq)
    info "virtio-blk interrupts: ${1:-?} on ${2:-?}"
    case ${2:-} in *MSI*|*msi*) [ "${1:-0}" -gt 0 ] && ok virtio-blk-msix "the disk's interrupts are MSI-X messages and fired" ||
                      fail virtio-blk-msix "MSI-X count ${1:-0}" ;;
                  *) fail virtio-blk-msix "the disk's interrupts are not MSI-X: ${2:-none}" ;; esac

    for b in seq-write seq-read rand-read-4k; do info "virtio-blk $(gline "blk-bench $b" | sed "s/^/$b /")"; done

    # teardown: the guest removed the function (its driver reset the device);
    # SIGTERM; the device model tears its server down and exits 0.
    kill -TERM $vb_pid 2>/dev/null
    end=$(( $(now) + 60 ))
    while tk_alive $vb_pid && [ "$(now)" -lt "$end" ]; do sleep 1; done
    if tk_alive $vb_pid; then kill -KILL $vb_pid; rc=timeout; else wait $vb_pid; rc=$?; fi
    sed "s/^/[$LIB] vblk| /" $VB_LOG
    if [ "$rc" = 0 ] && grep -q '^virtio-blk-dm: signal 15: ' $VB_LOG && grep -q '^virtio-blk-dm: server [0-9]* torn down' $VB_LOG &&
        [ "$(gline blk-removed)" = yes ]; then
        ok virtio-blk-teardown "the guest removed the disk; after SIGTERM the device model tore its server down and exited 0"
    else fail virtio-blk-teardown "exit $rc, removed '$(gline blk-removed)'"; fi
    rm -f $VB_IMG
}
