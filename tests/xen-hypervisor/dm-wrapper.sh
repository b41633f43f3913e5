#!/bin/sh
# The device model xl starts: Debian's QEMU for Xen, on our library, with the
# dynamic linker's bindings logged so the test can prove which library served it.
exec env LD_LIBRARY_PATH=/payload/ours LD_BIND_NOW=1 LD_DEBUG=bindings LD_DEBUG_OUTPUT=/tmp/dm-bindings \
    /usr/libexec/xen-qemu-system-i386 "$@"
