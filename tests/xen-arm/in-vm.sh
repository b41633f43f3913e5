#!/bin/sh
# Runs inside the arm64 dom0 (busybox sh), from /payload, on Xen 4.17 for Arm
# with CONFIG_IOREQ_SERVER. Each comparison uses a fresh target domain (same
# domid) per library, so both start from the same state. (The x86 version is
# tests/xen-hypervisor/in-vm.sh; the comparison is the same, the facts differ.)
T=5
SPI=40 # the target has SPIs 32-63 (mkdomain.c)
export LD_LIBRARY_PATH=/payload/xen # tooling (libxenctrl) uses Xen's own library
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

with_domain() { # LIB OUT CMD...: fresh domain T, run CMD with LIB, destroy
    lib=$1 out=$2; shift 2
    if ! ./mkdomain create $T > /dev/null; then bad "cannot create domain $T"; return 1; fi
    LD_LIBRARY_PATH=/payload/$lib:/payload/stub "$@" > "$out" 2>&1
    ./mkdomain destroy $T
}

compare() { # NAME DRIVER-ARGS...: identical output with both libraries
    name=$1; shift
    with_domain xen /tmp/$name.xen ./driver "$@"
    with_domain ours /tmp/$name.ours ./driver "$@"
    n=$(wc -l < /tmp/$name.xen)
    if [ "$n" -gt 10 ] && grep -q '^close = 0' /tmp/$name.ours && cmp -s /tmp/$name.xen /tmp/$name.ours; then
        echo "$name: $n calls, identical rc/errno/out-values with Xen's library and ours"
        pass=$((pass + n))
    else
        d=$(diff /tmp/$name.xen /tmp/$name.ours | grep -c '^[-+][^-+]')
        echo "FAIL $name: $d diff lines (missing, extra or changed; of $n)"
        diff /tmp/$name.xen /tmp/$name.ours | head -10
        fail=$((fail + (d > 0 ? d : 1)))
    fi
}

echo "xen: $(cat /sys/hypervisor/version/major 2>/dev/null).$(cat /sys/hypervisor/version/minor 2>/dev/null)$(cat /sys/hypervisor/version/extra 2>/dev/null) on $(uname -m), dom0 $(uname -r)"
compare lifecycle lifecycle $SPI
compare edges edges
compare random random 7 1500

# The hypervisor really answered, as Xen for Arm with IOREQ servers does.
expect() { if grep -qE "$2" "/tmp/$1.ours"; then ok; else bad "$3"; fi; }
expect lifecycle '^create_ioreq_server\(5, 0\) = 0 out id [0-9]+$' "an IOREQ server was created"
expect lifecycle '^map_io_range\(5, [0-9]+, 1, 0xa000000, 0xa000fff\) = 0$' "an MMIO range was mapped to it"
expect lifecycle '^map_io_range\(5, [0-9]+, 1, 0xa000800, 0xa000fff\) = -1 errno EEXIST$' "an overlapping range is EEXIST"
expect lifecycle '^set_ioreq_server_state\(5, [0-9]+, 1\) = 0$' "the server was enabled"
expect lifecycle "^set_irq_level\\(5, $SPI, 1\\) = 0\$" "set_irq_level raised SPI $SPI"
expect lifecycle "^set_irq_level\\(5, $SPI, 0\\) = 0\$" "set_irq_level lowered SPI $SPI"
expect lifecycle '^set_irq_level\(5, 27, 1\) = -1 errno EINVAL$' "a private interrupt (27) is EINVAL"
expect lifecycle "^set_irq_level\\(5, $SPI, 2\\) = -1 errno EINVAL\$" "level 2 is EINVAL"
expect lifecycle '^nr_vcpus\(5\) = 0 out 2$' "nr_vcpus of the target is 2"
expect lifecycle '^get_ioreq_server_info\(5, [0-9]+, gfn,bufgfn,port\) = -1 errno EOPNOTSUPP' "legacy ioreq gfns are EOPNOTSUPP on Arm"
expect lifecycle '^create_ioreq_server\(5, 1\) = -1 errno EINVAL' "buffered ioreqs are EINVAL on Arm"
expect lifecycle '^inject_event\(5, .*\) = -1 errno EOPNOTSUPP$' "inject_event is EOPNOTSUPP on Arm"
expect lifecycle '^destroy_ioreq_server\(5, [0-9]+\) = 0$' "the server was destroyed"
expect lifecycle '^destroy_ioreq_server\(5, [0-9]+\) = -1 errno ENOENT$' "destroying it again is ENOENT"
expect edges '^nr_vcpus\(0\) = -1 errno EPERM' "domain 0 (ourselves) is EPERM"
expect edges '^nr_vcpus\(32752\) = -1 errno ESRCH' "an unknown domain is ESRCH"
expect edges '^set_isa_irq_level\(5, 15, 0x1\) = -1 errno EOPNOTSUPP' "x86-only calls are EOPNOTSUPP"
grep -E '^(create_ioreq_server|set_irq_level|nr_vcpus|get_ioreq_server_info\(5, [0-9]+, gfn)' /tmp/lifecycle.ours | head -8

# Handle rules on the real privcmd: ours asserts them, Xen's library is shown.
with_domain ours /tmp/handles.ours ./handles_real $T ours
grep -v '^xendevicemodel: error' /tmp/handles.ours
if grep -q '^handles-real: [0-9]* passed, 0 failed' /tmp/handles.ours; then ok; else bad "handle rules with ours"; fi
with_domain xen /tmp/handles.xen ./handles_real $T xen
grep -E '^(child|parent)' /tmp/handles.xen | sed 's/^/with Xen'"'"'s library: /'
if grep -q 'parent after .* errno EPERM' /tmp/handles.xen; then
    ok; echo "(as documented: with Xen's library the child's restrict_all restricted the parent's file)"
else
    bad "expected Xen's library to let the child restrict the parent's file"
fi

echo "xen-check: $pass passed, $fail failed"
[ -f ./guest.sh ] && { sh ./guest.sh || fail=$((fail + 1)); }
[ "$fail" -eq 0 ]
