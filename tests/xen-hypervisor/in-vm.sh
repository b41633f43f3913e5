#!/bin/sh
# Runs inside dom0 (busybox sh), from /payload. Each comparison uses a fresh
# target domain (same domid) per library, so both start from the same state.
T=5
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

compare() { # NAME DRIVER-ARGS...
    name=$1; shift
    with_domain xen /tmp/$name.xen ./driver "$@"
    with_domain ours /tmp/$name.ours ./driver "$@"
    n=$(wc -l < /tmp/$name.xen)
    if [ "$n" -gt 10 ] && grep -q '^close = 0' /tmp/$name.ours && cmp -s /tmp/$name.xen /tmp/$name.ours; then
        echo "$name: $n calls, identical rc/errno/out-values with Xen's library and ours"
        pass=$((pass + n))
    else
        d=$(diff /tmp/$name.xen /tmp/$name.ours | grep -c '^+[^+]')
        echo "FAIL $name: $d of $n lines differ"
        diff /tmp/$name.xen /tmp/$name.ours | head -10
        fail=$((fail + (d > 0 ? d : 1)))
    fi
}

echo "xen: $(cat /sys/hypervisor/version/major 2>/dev/null).$(cat /sys/hypervisor/version/minor 2>/dev/null)$(cat /sys/hypervisor/version/extra 2>/dev/null), dom0 $(uname -r)"
compare edges edges
compare random random 7 1500

# The hypervisor really answered: a few facts from the edge tour.
expect() { if grep -qE "$1" /tmp/edges.ours; then ok; else bad "$2"; fi; }
expect '^nr_vcpus\(5\) = 0 out 2$' "nr_vcpus of the target is 2"
expect '^create_ioreq_server\(5, 1\) = 0 out id [0-9]+$' "an IOREQ server was created"
expect '^nr_vcpus\(0\) = -1 errno EPERM' "domain 0 (ourselves) is EPERM"
expect '^nr_vcpus\(32752\) = -1 errno ESRCH' "DOMID_SELF/unknown domain is ESRCH"
expect '^set_irq_level\(5, 0xffffffff, 0\) = -1 errno EOPNOTSUPP' "set_irq_level is EOPNOTSUPP on x86"
expect '^track_dirty_vram\(5, 0xa0, 0, NULL\) = -1 errno EFAULT' "track_dirty_vram nr 0 NULL is EFAULT"
expect '^get_ioreq_server_info\(5, 1, gfn,bufgfn,port\) = 0 out 0xfeff[0-9a-f] 0xfeff[0-9a-f] (0|0x[0-9a-f]+)$' "an IOREQ server's ioreq pages were mapped"
sed -n '1,3p;/^get_ioreq_server_info(5, 1, gfn,bufgfn,port)/p;/^nr_vcpus(5)/p' /tmp/edges.ours | head -8

# Handle rules on the real privcmd: ours asserts them, Xen's library is shown.
with_domain ours /tmp/handles.ours ./handles_real $T ours
grep -v '^xendevicemodel: error' /tmp/handles.ours # the EBADF log lines of the close-during-calls test
if grep -q '^handles-real: [0-9]* passed, 0 failed' /tmp/handles.ours; then ok; else bad "handle rules with ours"; fi
with_domain xen /tmp/handles.xen ./handles_real $T xen
grep -E '^(child|parent)' /tmp/handles.xen | sed 's/^/with Xen'"'"'s library: /'
if grep -q 'parent after .* errno EPERM' /tmp/handles.xen; then
    ok; echo "(as documented: with Xen's library the child's restrict_all restricted the parent's file)"
else
    bad "expected Xen's library to let the child restrict the parent's file"
fi

echo "xen-check: $pass passed, $fail failed"
[ -x ./guest.sh ] && { ./guest.sh || fail=$((fail + 1)); }
[ "$fail" -eq 0 ]
