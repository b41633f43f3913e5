#!/bin/sh
# The device model xl starts in the test VMs (`make guest-check`, and
# `make xen-check`'s guest): Debian's QEMU for Xen on
# the library under test (/tmp/dm-lib says which: xen or ours), with the
# dynamic linker's bindings logged so dom0 can prove which library served it.
# With ours the library's call trace goes to the file /tmp/dm-trace names.
lib=$(cat /tmp/dm-lib)
if [ "$lib" = ours ] && [ -s /tmp/dm-trace ]; then
    XENDEVICEMODEL_TRACE=$(cat /tmp/dm-trace)
    export XENDEVICEMODEL_TRACE
fi
# A deprivileged QEMU (dm_restrict) gets no binding log: libxl limits its file
# size to 256 KiB, and the dynamic linker's log would exceed it (SIGXFSZ kills
# QEMU before it says anything). dom0 reads its /proc/PID/maps instead.
# Its trace goes to a file of its own, which starts empty: under that limit
# the library stops tracing 64 KiB short of 256 KiB of file, and the shared
# trace is already longer by then.
case " $* " in
*" -xen-domid-restrict "*)
    [ -n "${XENDEVICEMODEL_TRACE:-}" ] && XENDEVICEMODEL_TRACE=$XENDEVICEMODEL_TRACE.restricted
    exec env LD_LIBRARY_PATH="/payload/$lib" /usr/libexec/xen-qemu-system-i386 "$@" ;;
esac
exec env LD_LIBRARY_PATH="/payload/$lib" LD_BIND_NOW=1 LD_DEBUG=bindings LD_DEBUG_OUTPUT="/tmp/dm-bindings-$lib" \
    /usr/libexec/xen-qemu-system-i386 "$@"
