#!/bin/sh
# Runs inside dom0 (busybox sh), from /payload. Each comparison uses a fresh
# target domain (same domid) per library, so both start from the same state.
# The comparisons and counts are tests/lib/checks.sh's, as on the host.
T=5
export LD_LIBRARY_PATH=/payload/xen # tooling (libxenctrl) uses Xen's own library
. ./checks.sh
. ./domains.sh

echo "xen: $(cat /sys/hypervisor/version/major 2>/dev/null).$(cat /sys/hypervisor/version/minor 2>/dev/null)$(cat /sys/hypervisor/version/extra 2>/dev/null), dom0 $(uname -r)"
both edges edges
both random random 7 1500

# The hypervisor really answered: a few facts from the edge tour.
expect /tmp/edges.ours '^nr_vcpus\(5\) = 0 out 2$' "nr_vcpus of the target is 2"
expect /tmp/edges.ours '^create_ioreq_server\(5, 1\) = 0 out id [0-9]+$' "an IOREQ server was created"
expect /tmp/edges.ours '^nr_vcpus\(0\) = -1 errno EPERM' "domain 0 (ourselves) is EPERM"
expect /tmp/edges.ours '^nr_vcpus\(32752\) = -1 errno ESRCH' "DOMID_SELF/unknown domain is ESRCH"
expect /tmp/edges.ours '^set_irq_level\(5, 0xffffffff, 0\) = -1 errno EOPNOTSUPP' "set_irq_level is EOPNOTSUPP on x86"
expect /tmp/edges.ours '^track_dirty_vram\(5, 0xa0, 0, NULL\) = -1 errno EFAULT' "track_dirty_vram nr 0 NULL is EFAULT"
expect /tmp/edges.ours '^get_ioreq_server_info\(5, 1, gfn,bufgfn,port\) = 0 out 0xfeff[0-9a-f] 0xfeff[0-9a-f] (0|0x[0-9a-f]+)$' "an IOREQ server's ioreq pages were mapped"
sed -n '1,3p;/^get_ioreq_server_info(5, 1, gfn,bufgfn,port)/p;/^nr_vcpus(5)/p' /tmp/edges.ours | head -8

handle_rules

summary xen-check
rc=$?
[ -f ./guest.sh ] && { sh ./guest.sh || rc=1; }
exit $rc
