#!/usr/bin/env bash
# `make xen-check`: boots Debian's Xen 4.17 under QEMU (TCG), with Debian's
# kernel as dom0 from an initramfs, and runs the differential and handle tests
# against a real hypervisor through the real privcmd driver: Xen's library and
# ours must give identical results. Packages come from Debian with
# `apt-get download` and are unpacked with `dpkg -x` under build/xen-vm (the
# host gets no hypervisor or kernel installed); QEMU 7.2 is unpacked there too,
# since Debian 12's qemu-system-x86 package may conflict with newer qemu-utils.
set -euo pipefail
cd "$(dirname "$0")/../.."
TOP=$PWD
V=$TOP/build/xen-vm
TIMEOUT=${XEN_TIMEOUT:-900}
# Also boot an HVM guest with Debian's QEMU as its device model on our
# library, through Debian's toolstack (xl, xenstored, hvmloader); XEN_GUEST=0
# skips it.
GUEST=${XEN_GUEST:-1}
mkdir -p "$V/cache"

say() { echo "xen-check: $*"; }
die() { echo "xen-check: FAIL ($*)"; exit 1; }

# ---- packages (cached) ----
need_host=()
for p in cpio libcapstone4 libpmem1 librdmacm1 libibverbs1 libslirp0 libvdeplug2 libxen-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need_host+=("$p")
done
if [ ${#need_host[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing Debian packages: ${need_host[*]}"
    apt-get install -y -qq "${need_host[@]}" >/dev/null || { apt-get update -qq && apt-get install -y -qq "${need_host[@]}" >/dev/null; }
fi
kernel_pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | awk '{print $1}' | sort -V | tail -1)
[ -n "$kernel_pkg" ] || die "no linux-image-6.1.0-*-amd64 package found (apt-get update?)"
pkgs=(xen-hypervisor-4.17-amd64 "$kernel_pkg" busybox-static qemu-system-x86 qemu-system-data qemu-system-common seabios)
[ "$GUEST" = 1 ] && pkgs+=(xen-utils-4.17)
(
    cd "$V/cache"
    for p in "${pkgs[@]}"; do
        ls "${p}"_*.deb >/dev/null 2>&1 || apt-get download "$p" >/dev/null 2>&1 || apt-get download "$p"
    done
)
if [ ! -f "$V/.unpacked-$kernel_pkg" ]; then
    rm -rf "$V/root" "$V/qemu"
    for p in xen-hypervisor-4.17-amd64 "$kernel_pkg" busybox-static; do dpkg -x "$V"/cache/"${p}"_*.deb "$V/root"; done
    for p in qemu-system-x86 qemu-system-data qemu-system-common seabios; do dpkg -x "$V"/cache/"${p}"_*.deb "$V/qemu"; done
    touch "$V/.unpacked-$kernel_pkg"
fi
if [ "$GUEST" = 1 ] && [ ! -d "$V/tools" ]; then
    dpkg -x "$V"/cache/xen-utils-4.17_*.deb "$V/tools"
fi
QEMU=$V/qemu/usr/bin/qemu-system-x86_64
ldd "$QEMU" | grep -q 'not found' && die "QEMU lacks libraries: $(ldd "$QEMU" | grep 'not found' | tr '\n' ' ')"
zcat "$V"/root/boot/xen-4.17-amd64.gz > "$V/xen"
cp "$V"/root/boot/vmlinuz-* "$V/vmlinuz"
privcmd_ko=$(find "$V/root/lib/modules" -name xen-privcmd.ko | head -1)

# ---- the payload: test programs, both libraries, and their dependencies ----
make -s lib build/libfakeprivcmd.so >/dev/null
I=$V/initrd
rm -rf "$I"
mkdir -p "$I"/{bin,proc,sys,dev,tmp,lib/modules} "$I"/payload/{xen,ours,stub}
cp "$V/root/bin/busybox" "$I/bin/busybox"
cp tests/xen-hypervisor/init "$I/init"
chmod +x "$I/init"
cp "$privcmd_ko" "$I/lib/modules/"
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
cp tests/xen-hypervisor/in-vm.sh "$P/"
# Every shared library the programs need, at the host's paths.
for f in "$P/mkdomain" "$P/handles_real" "$P/driver" "$P/ours/libxendevicemodel.so.1" "$P/xen/libxendevicemodel.so.1"; do
    LD_LIBRARY_PATH="$P/stub" ldd "$f" | awk '/=> \// { print $3 } /^\s*\/lib64/ { print $1 }'
done | sort -u | while read -r lib; do
    case $lib in */libxendevicemodel.so.1|*/libfakeprivcmd.so) continue ;; esac
    mkdir -p "$I$(dirname "$lib")"
    cp -L "$lib" "$I$lib"
done
mkdir -p "$I/lib64"
cp -L /lib64/ld-linux-x86-64.so.2 "$I/lib64/"
if [ "$GUEST" = 1 ]; then
    [ -x /usr/libexec/xen-qemu-system-i386 ] || die "qemu-system-xen is not installed"
    for m in xen-evtchn xen-gntdev xen-gntalloc xenfs; do cp "$(find "$V/root/lib/modules" -name "$m.ko" | head -1)" "$I/lib/modules/"; done
    mkdir -p "$I/usr/lib/xen-4.17/bin" "$I/usr/lib/xen-4.17/boot" "$I/usr/share/seabios" "$I/usr/libexec" "$I/etc/xen" "$P/guest"
    for b in xl xenstored xenconsoled xen-init-dom0 libxl-save-helper; do cp "$V/tools/usr/lib/xen-4.17/bin/$b" "$I/usr/lib/xen-4.17/bin/"; done
    cp "$V/tools/usr/lib/xen-4.17/boot/hvmloader" "$I/usr/lib/xen-4.17/boot/"
    cp -r "$V/tools/etc/xen/scripts" "$I/etc/xen/" 2>/dev/null || true
    cp "$V/qemu/usr/share/seabios/bios-256k.bin" "$I/usr/share/seabios/"
    mkdir -p "$I/usr/share/qemu"
    cp -r "$V/qemu/usr/share/qemu/keymaps" "$I/usr/share/qemu/"
    cp /usr/libexec/xen-qemu-system-i386 "$I/usr/libexec/"
    cp tests/xen-hypervisor/guest.sh "$P/"
    cp tests/xen-hypervisor/dm-wrapper.sh "$P/guest/"
    chmod +x "$P/guest.sh" "$P/guest/dm-wrapper.sh"
    for f in "$I"/usr/lib/xen-4.17/bin/* /usr/libexec/xen-qemu-system-i386; do
        ldd "$f" | awk '/=> \// { print $3 }'
    done | sort -u | while read -r lib; do
        case $lib in */libxendevicemodel.so.1) continue ;; esac
        mkdir -p "$I$(dirname "$lib")"
        [ -e "$I$lib" ] || cp -L "$lib" "$I$lib"
    done
    # Xen's tools (xl, libxenctrl) keep Xen's library; only QEMU gets ours.
    cp /usr/lib/x86_64-linux-gnu/libxendevicemodel.so.1.4 "$I/lib/x86_64-linux-gnu/libxendevicemodel.so.1"
fi
(cd "$I" && find . | cpio -o -H newc --quiet | gzip -1) > "$V/initrd.gz"
say "initramfs $(du -h "$V/initrd.gz" | cut -f1), kernel $kernel_pkg, booting Xen under QEMU (TCG, timeout ${TIMEOUT}s)"

# ---- boot ----
glog=warning
[ "$GUEST" = 1 ] && glog=all # hvmloader's messages show the guest's firmware at work
start=$(date +%s)
set +e
timeout "$TIMEOUT" "$QEMU" -L "$V/qemu/usr/share/seabios" -L "$V/qemu/usr/share/qemu" \
    -accel tcg -cpu qemu64,+svm,+npt -m 2G -smp 2 -nographic -no-reboot -monitor none -serial stdio -nic none -vga none \
    -kernel "$V/xen" -initrd "$V/vmlinuz console=hvc0 rdinit=/init quiet,$V/initrd.gz" \
    -append "console=com1 dom0_mem=512M loglvl=warning guest_loglvl=$glog" < /dev/null > "$V/console.log" 2>&1
qrc=$?
set -e
took=$(( $(date +%s) - start ))
tr -d '\r' < "$V/console.log" | sed -n '/@@@ XEN-CHECK BEGIN/,/@@@ XEN-CHECK END/p' > "$V/result.log"
if ! grep -q '@@@ XEN-CHECK END' "$V/result.log"; then
    tail -40 "$V/console.log" | tr -d '\r'
    [ $qrc -eq 124 ] && die "timed out after ${TIMEOUT}s" || die "the tests did not finish (QEMU exit $qrc, ${took}s); console above"
fi
sed '1d;$d' "$V/result.log"
say "boot and tests took ${took}s"
grep -qE '^xen-check: [0-9]+ passed, 0 failed' "$V/result.log" && grep -q 'XEN-CHECK END rc=0' "$V/result.log" ||
    die "tests failed on the real hypervisor"
if [ "$GUEST" = 1 ]; then
    grep -qE '^guest: [0-9]+ passed, 0 failed' "$V/result.log" || die "the HVM guest with QEMU on our library did not work"
fi
say PASS
