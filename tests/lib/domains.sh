# Inside a test VM's dom0 (busybox sh, from /payload, after checks.sh): run a
# program against a fresh target domain $T (the same domid each time), once
# with Xen's library and once with ours, so that both start from the same
# state. Used by tests/xen-hypervisor/in-vm.sh and tests/xen-arm/in-vm.sh.

# with_domain LIB OUT CMD...: a fresh domain $T, CMD with LIB (xen or ours), destroy.
with_domain() {
    lib=$1 out=$2
    shift 2
    if ! ./mkdomain create "$T" > /dev/null; then bad "cannot create domain $T"; return 1; fi
    LD_LIBRARY_PATH=/payload/$lib:/payload/stub "$@" > "$out" 2>&1
    ./mkdomain destroy "$T"
}

# both NAME DRIVER-ARGS...: the differential driver with Xen's library and
# with ours; identical output, and Xen's run reached its end.
both() {
    name=$1
    shift
    with_domain xen "/tmp/$name.xen" ./driver "$@"
    with_domain ours "/tmp/$name.ours" ./driver "$@"
    expect "/tmp/$name.xen" '^close = 0' "$name: the driver ran to the end with Xen's library"
    compare "$name: rc/errno/out-values of Xen's library and ours" "/tmp/$name.xen" "/tmp/$name.ours" 10
}

# handle_rules: the handle rules (fork, close during calls, restrict) on the
# real privcmd. Ours must pass them all; Xen's library is only shown, except
# the one outcome its documentation promises (a child's restrict_all also
# restricts the parent's shared file).
handle_rules() {
    with_domain ours /tmp/handles.ours ./handles_real "$T" ours
    grep -v '^xendevicemodel: error' /tmp/handles.ours # the EBADF log lines of the close-during-calls test
    expect /tmp/handles.ours '^handles-real: [0-9]* passed, 0 failed' "handle rules with ours"
    with_domain xen /tmp/handles.xen ./handles_real "$T" xen
    grep -E '^(child|parent)' /tmp/handles.xen | sed 's/^/with Xen'"'"'s library: /'
    expect /tmp/handles.xen 'parent after .* errno EPERM' \
        "as documented: with Xen's library the child's restrict_all restricts the parent's file"
}
