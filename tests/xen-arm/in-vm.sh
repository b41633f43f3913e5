#!/bin/sh
# Runs inside the arm64 dom0 (busybox sh), from /payload, on Xen for Arm
# with CONFIG_IOREQ_SERVER. Each comparison uses a fresh target domain (same
# domid) per library, so both start from the same state. (The x86 version is
# tests/xen-hypervisor/in-vm.sh; the comparison is the same, the facts differ.)
T=5
SPI=40 # the target has SPIs 32-63 (mkdomain.c)
export LD_LIBRARY_PATH=/payload/xen # tooling (libxenctrl) uses Xen's own library
. ./checks.sh
. ./domains.sh

echo "xen: $(cat /sys/hypervisor/version/major 2>/dev/null).$(cat /sys/hypervisor/version/minor 2>/dev/null)$(cat /sys/hypervisor/version/extra 2>/dev/null) on $(uname -m), dom0 $(uname -r)"
both lifecycle lifecycle $SPI
both edges edges
both random random 7 1500

# The hypervisor really answered, as Xen for Arm with IOREQ servers does.
fact() { expect "/tmp/$1.ours" "$2" "$3"; }
fact lifecycle '^create_ioreq_server\(5, 0\) = 0 out id [0-9]+$' "an IOREQ server was created"
fact lifecycle '^map_io_range\(5, [0-9]+, 1, 0xa000000, 0xa000fff\) = 0$' "an MMIO range was mapped to it"
fact lifecycle '^map_io_range\(5, [0-9]+, 1, 0xa000800, 0xa000fff\) = -1 errno EEXIST$' "an overlapping range is EEXIST"
fact lifecycle '^set_ioreq_server_state\(5, [0-9]+, 1\) = 0$' "the server was enabled"
fact lifecycle "^set_irq_level\\(5, $SPI, 1\\) = 0\$" "set_irq_level raised SPI $SPI"
fact lifecycle "^set_irq_level\\(5, $SPI, 0\\) = 0\$" "set_irq_level lowered SPI $SPI"
fact lifecycle '^set_irq_level\(5, 27, 1\) = -1 errno EINVAL$' "a private interrupt (27) is EINVAL"
fact lifecycle "^set_irq_level\\(5, $SPI, 2\\) = -1 errno EINVAL\$" "level 2 is EINVAL"
fact lifecycle '^nr_vcpus\(5\) = 0 out 2$' "nr_vcpus of the target is 2"
fact lifecycle '^get_ioreq_server_info\(5, [0-9]+, gfn,bufgfn,port\) = -1 errno EOPNOTSUPP' "legacy ioreq gfns are EOPNOTSUPP on Arm"
fact lifecycle '^create_ioreq_server\(5, 1\) = -1 errno EINVAL' "buffered ioreqs are EINVAL on Arm"
fact lifecycle '^inject_event\(5, .*\) = -1 errno EOPNOTSUPP$' "inject_event is EOPNOTSUPP on Arm"
fact lifecycle '^destroy_ioreq_server\(5, [0-9]+\) = 0$' "the server was destroyed"
fact lifecycle '^destroy_ioreq_server\(5, [0-9]+\) = -1 errno ENOENT$' "destroying it again is ENOENT"
fact edges '^nr_vcpus\(0\) = -1 errno EPERM' "domain 0 (ourselves) is EPERM"
fact edges '^nr_vcpus\(32752\) = -1 errno ESRCH' "an unknown domain is ESRCH"
fact edges '^set_isa_irq_level\(5, 15, 0x1\) = -1 errno EOPNOTSUPP' "x86-only calls are EOPNOTSUPP"
grep -E '^(create_ioreq_server|set_irq_level|nr_vcpus|get_ioreq_server_info\(5, [0-9]+, gfn)' /tmp/lifecycle.ours | head -8

handle_rules

summary xen-check
rc=$?
[ -f ./guest.sh ] && { sh ./guest.sh || rc=1; }
exit $rc
