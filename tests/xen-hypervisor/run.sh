#!/usr/bin/env bash
# `make xen-check`: boots Debian's Xen 4.17 under QEMU (TCG), with Debian's
# kernel as dom0 from an initramfs, and runs the differential and handle tests
# against a real hypervisor through the real privcmd driver: Xen's library and
# ours must give identical results. The VM's pieces (Debian packages under
# build/xen-vm, the initramfs, the boot) come from vm.sh, shared with
# `make guest-check`.
set -euo pipefail
cd "$(dirname "$0")/../.."
TOP=$PWD
TIMEOUT=${XEN_TIMEOUT:-900}
# Also boot an HVM guest with Debian's QEMU as its device model on our
# library, through Debian's toolstack (xl, xenstored, hvmloader); XEN_GUEST=0
# skips it.
GUEST=${XEN_GUEST:-1}

say() { echo "xen-check: $*"; }
die() { echo "xen-check: FAIL ($*)"; exit 1; }
. tests/lib/checks.sh # vm_results

# ---- packages (cached) ----
. tests/xen-hypervisor/vm.sh
if [ "$GUEST" = 1 ]; then vm_packages tools; else vm_packages; fi

# ---- the payload: test programs, both libraries, and their dependencies ----
make -s lib build/libfakeprivcmd.so >/dev/null
I=$V/initrd
vm_base "$I"
mkdir -p "$I"/payload/{xen,ours,stub}
P=$I/payload
CC=${CC:-cc}
$CC -O2 -Wall -Werror -o "$P/mkdomain" tests/xen-hypervisor/mkdomain.c -lxenctrl
$CC -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -Itests/harness -o "$P/handles_real" \
    tests/xen-hypervisor/handles_real.c -Lbuild -lxendevicemodel -lxentoolcore -lpthread
$CC -O1 -g -std=gnu11 -Wall -Werror -Itests/fake -o "$P/driver" tests/differential/driver.c \
    -Lbuild -lxendevicemodel -lfakeprivcmd
$CC -shared -fPIC -Wall -Werror -Itests/fake -o "$P/stub/libfakeprivcmd.so" tests/xen-hypervisor/nofake.c
cp build/libxendevicemodel.so.1.4 "$P/ours/libxendevicemodel.so.1"
cp /usr/lib/x86_64-linux-gnu/libxendevicemodel.so.1.4 "$P/xen/libxendevicemodel.so.1"
cp tests/xen-hypervisor/in-vm.sh tests/lib/checks.sh tests/lib/domains.sh "$P/"
# Every shared library the programs need, at the host's paths.
VM_LDPATH="$P/stub" vm_copy_libs "$I" "$P/mkdomain" "$P/handles_real" "$P/driver" "$P/ours/libxendevicemodel.so.1" "$P/xen/libxendevicemodel.so.1"
if [ "$GUEST" = 1 ]; then
    vm_toolstack "$I"
    mkdir -p "$P/guest"
    cp tests/xen-hypervisor/guest.sh "$P/"
    cp tests/xen-hypervisor/dm-wrapper.sh "$P/guest/"
    chmod +x "$P/guest.sh" "$P/guest/dm-wrapper.sh"
fi
vm_pack "$I" "$V/initrd.gz"
say "initramfs $(du -h "$V/initrd.gz" | cut -f1), kernel $kernel_pkg, booting Xen under QEMU (TCG, timeout ${TIMEOUT}s)"

# ---- boot ----
glog=warning
[ "$GUEST" = 1 ] && glog=all # hvmloader's messages show the guest's firmware at work
vm_boot "$V/initrd.gz" "$V/console.log" "$TIMEOUT" "dom0_mem=512M loglvl=warning guest_loglvl=$glog" -m 2G
suites=xen-check
[ "$GUEST" = 1 ] && suites="$suites guest" # the HVM guest with QEMU on our library
# shellcheck disable=SC2086 # one word per suite
vm_results "$V/console.log" "real hypervisor" $suites
