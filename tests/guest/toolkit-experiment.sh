# For development: GUEST_EXPERIMENT=tests/guest/toolkit-experiment.sh
# GUEST_LIBS=xen bash tests/guest/run.sh runs only the boot and the toolkit
# step (the guest's network step fails fast: nothing listens in dom0).
echo $LIB > /tmp/dm-lib
rand_ide=$(new_image ide)
rand_ahci=$(new_image ahci)
rm -f /tmp/serial-$LIB-*.log /var/log/xen/qemu-dm-*.log
SERIALS=/tmp/serial-$LIB-1.log
write_cfg /tmp/create.cfg guest /tmp/serial-$LIB-1.log "$(devices tap0)"
t0=$(now)
xl 240 create /tmp/create.cfg > /tmp/xl-create.log 2>&1 || { tail -20 /tmp/xl-create.log; fail boot "xl create failed"; }
wait_g boot 900 && pass boot "init after $(( $(now) - t0 )) s" || fail boot "no init"
toolkit
serial | grep '^@G' | sed "s/^/[$LIB] serial| /"
serial | grep -i 'pci\|uio\|BAR' | tail -40 | sed "s/^/[$LIB] kernel| /"
xl 60 destroy guest
