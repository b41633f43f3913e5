#!/usr/bin/env bash
# `make xen-check ARCH=arm64`: Xen 4.17 for Arm booted under qemu-system-aarch64
# (TCG, -nic none), Debian's arm64 kernel as dom0 from an initramfs, and the
# differential driver, a device model's lifecycle and the handle rules run
# there with Debian's arm64 libxendevicemodel and with ours: every rc, errno
# and out-value must be identical (tests/xen-arm/in-vm.sh).
#
# Debian's Xen for Arm is built without CONFIG_IOREQ_SERVER (every dm_op but
# two answers ENOSYS), so the hypervisor is rebuilt from Debian's source
# package with CONFIG_EXPERT=y CONFIG_IOREQ_SERVER=y (cached in build/xen-arm).
# Everything else comes from Debian with `apt-get download` + `dpkg -x`;
# the source package through a private apt list (deb-src), the host's apt
# configuration untouched. Nothing is installed on the host but flex, bison
# and the libraries QEMU needs.
set -euo pipefail
cd "$(dirname "$0")/../.."
TOP=$PWD
ARCH=${1:-arm64}
# armhf would need its own machine: Xen for 32-bit Arm (xen-hypervisor-4.17-armhf)
# with an armhf dom0 (linux-image-*-armmp-lpae) under qemu-system-arm; an armhf
# program in the arm64 dom0 cannot stand in (privcmd has no 32-bit compat ioctls).
[ "$ARCH" = arm64 ] || { echo "xen-check: only ARCH=arm64 is booted on a real hypervisor"; exit 2; }
B=${B:-build/arm64}
XCC=${XCC:-aarch64-linux-gnu-gcc}
V=$TOP/build/xen-arm
TIMEOUT=${XEN_TIMEOUT:-600}
# Also boot a Linux guest through Debian's toolstack, with a device model on
# our library serving its MMIO and raising its interrupt (guest.sh);
# XEN_GUEST=0 skips it.
GUEST=${XEN_GUEST:-1}
APT=(apt-get -o DPkg::Lock::Timeout=600)
mkdir -p "$V/cache"
say() { echo "xen-check($ARCH): $*"; }
die() { echo "xen-check($ARCH): FAIL ($*)"; exit 1; }
. tests/lib/checks.sh # vm_results
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
t0=$(date +%s)

# ---- packages (cached in build/xen-arm/cache) ----
kernel_pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-arm64$' | awk '{print $1}' | sort -V | tail -1)
[ -n "$kernel_pkg" ] || die "no linux-image-6.1.0-*-arm64 package (dpkg --add-architecture arm64; apt-get update)"
(
    cd "$V/cache"
    pkgs=(qemu-system-arm "$kernel_pkg:arm64" busybox-static:arm64)
    [ "$GUEST" = 1 ] && pkgs+=(xen-utils-4.17:arm64 xenstore-utils:arm64)
    for p in "${pkgs[@]}"; do
        ls "${p%:*}"_*.deb > /dev/null 2>&1 || "${APT[@]}" download "$p" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true
        ls "${p%:*}"_*.deb > /dev/null 2>&1 || { echo "cannot download $p"; exit 1; }
    done
) || die "downloads"
if [ ! -f "$V/.unpacked-$kernel_pkg" ]; then
    rm -rf "$V/root" "$V/qemu"
    dpkg -x "$V"/cache/qemu-system-arm_*.deb "$V/qemu"
    for p in "$kernel_pkg" busybox-static; do dpkg -x "$V"/cache/"$p"_*.deb "$V/root"; done
    touch "$V/.unpacked-$kernel_pkg"
fi
if [ "$GUEST" = 1 ] && [ ! -d "$V/tools" ]; then
    for p in xen-utils-4.17 xenstore-utils; do dpkg -x "$V"/cache/"$p"_*_arm64.deb "$V/tools"; done
fi
QEMU=$V/qemu/usr/bin/qemu-system-aarch64
# The libraries QEMU links: whatever of its package's dependencies is missing.
need=()
for p in cpio flex bison $([ "$GUEST" = 1 ] && echo device-tree-compiler) $(dpkg-deb -f "$V"/cache/qemu-system-arm_*.deb Depends | tr ',' '\n' | sed -n 's/^ *\(lib[^ ]*\).*/\1/p'); do
    installed "$p" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing Debian packages: ${need[*]}"
    say "installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y -qq --no-install-recommends "${need[@]}" > "$V/apt.log" 2>&1 ||
        { tail "$V/apt.log"; die "apt-get install ${need[*]}"; }
fi
ldd "$QEMU" | grep -q 'not found' && die "QEMU lacks libraries: $(ldd "$QEMU" | grep 'not found' | tr '\n' ' ')"

# ---- the hypervisor: Debian's source, CONFIG_IOREQ_SERVER=y (cached) ----
XEN=$V/xen-4.17-arm64-ioreq
if [ ! -f "$XEN" ]; then
    t1=$(date +%s)
    A=(-o Dir::Etc::sourcelist=/dev/null -o Dir::Etc::sourceparts="$V/apt/etc" -o Dir::State::Lists="$V/apt/lists"
       -o Dir::Cache="$V/apt/cache")
    mkdir -p "$V/apt/etc" "$V/apt/lists/partial" "$V/apt/cache" "$V/src"
    # bookworm's own source (the security archive's source of the installed
    # version is not served here); the hypervisor ABI is stable within 4.17
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        > "$V/apt/etc/xen-src.sources"
    "${APT[@]}" "${A[@]}" update > "$V/apt/update.log" 2>&1 || { cat "$V/apt/update.log"; die "private deb-src update"; }
    srcver=$(apt-cache "${A[@]}" showsrc xen | sed -n 's/^Version: //p' | sort -V | tail -1)
    [ -n "$srcver" ] || die "no xen source package"
    (cd "$V/src" && ls xen_"${srcver#*:}".dsc > /dev/null 2>&1 ||
        "${APT[@]}" "${A[@]}" source --download-only "xen=$srcver" 2>&1 | grep -v '^W: Download is performed unsandboxed') > /dev/null
    rm -rf "$V/src/xen"
    dpkg-source -x "$V/src/xen_${srcver#*:}.dsc" "$V/src/xen" > "$V/src/unpack.log" 2>&1 || die "dpkg-source -x"
    X=$V/src/xen/xen
    # Debian's hypervisor configuration, plus the IOREQ server (an EXPERT option in 4.17)
    cp "$V/src/xen/debian/xen-kconfig" "$X/.config"
    printf 'CONFIG_EXPERT=y\nCONFIG_IOREQ_SERVER=y\n' >> "$X/.config"
    mk=(make -C "$X" XEN_TARGET_ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- PYTHON=/usr/bin/python3)
    { "${mk[@]}" olddefconfig && "${mk[@]}" -j"$(nproc)"; } > "$V/src/build.log" 2>&1 || { tail -30 "$V/src/build.log"; die "hypervisor build"; }
    grep -qx 'CONFIG_IOREQ_SERVER=y' "$X/.config" || die "CONFIG_IOREQ_SERVER did not stick"
    cp "$X/xen" "$XEN.tmp" && cp "$X/.config" "$XEN.config" && echo "$srcver" > "$XEN.version" && mv "$XEN.tmp" "$XEN"
    rm -rf "$V/src/xen"
    say "hypervisor $srcver rebuilt with CONFIG_IOREQ_SERVER=y in $(( $(date +%s) - t1 ))s"
fi

# ---- the payload: test programs for arm64, both libraries, their dependencies ----
SYSROOT=$TOP/$B/sysroot
XCF=(-I"$SYSROOT/usr/include")
XLD=(-L"$SYSROOT/usr/lib/aarch64-linux-gnu" -Wl,-rpath-link,/usr/lib/aarch64-linux-gnu)
I=$V/initrd
rm -rf "$I"
mkdir -p "$I"/{bin,proc,sys,dev,tmp,lib/modules} "$I"/payload/{xen,ours,stub}
P=$I/payload
cp "$V/root/bin/busybox" "$I/bin/busybox"
cp tests/xen-hypervisor/init "$I/init"
chmod +x "$I/init"
privcmd_ko=$(find "$V/root/lib/modules" -name xen-privcmd.ko | head -1)
[ -n "$privcmd_ko" ] || die "no xen-privcmd.ko in $kernel_pkg"
cp "$privcmd_ko" "$I/lib/modules/"
$XCC -O2 -Wall -Werror "${XCF[@]}" -o "$P/mkdomain" tests/xen-hypervisor/mkdomain.c "${XLD[@]}" -lxenctrl
$XCC -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -Itests/harness "${XCF[@]}" -o "$P/handles_real" \
    tests/xen-hypervisor/handles_real.c -L"$B" -lxendevicemodel "${XLD[@]}" -lxentoolcore -lxentoollog -lpthread
$XCC -shared -fPIC -Wall -Werror -Itests/fake "${XCF[@]}" -o "$P/stub/libfakeprivcmd.so" tests/xen-hypervisor/nofake.c
$XCC -O1 -g -std=gnu11 -Wall -Werror -Itests/fake "${XCF[@]}" -o "$P/driver" tests/differential/driver.c \
    -L"$B" -lxendevicemodel -L"$P/stub" -lfakeprivcmd "${XLD[@]}"
cp "$B/libxendevicemodel.so.1.4" "$P/ours/libxendevicemodel.so.1"
cp /usr/lib/aarch64-linux-gnu/libxendevicemodel.so.1.4 "$P/xen/libxendevicemodel.so.1"
cp tests/xen-arm/in-vm.sh tests/lib/checks.sh tests/lib/domains.sh "$P/"
if [ "$GUEST" = 1 ]; then
    # dom0: the toolstack, its modules, Xen's library for it (only mmio-dm gets ours)
    for m in xen-evtchn xen-gntdev xen-gntalloc xenfs brd; do cp "$(find "$V/root/lib/modules" -name "$m.ko" | head -1)" "$I/lib/modules/"; done
    mkdir -p "$I/usr/lib/xen-4.17/bin" "$I/usr/bin" "$I/etc/xen" "$P/guest"
    for b in xl xenstored xenconsoled xen-init-dom0; do cp "$V/tools/usr/lib/xen-4.17/bin/$b" "$I/usr/lib/xen-4.17/bin/"; done
    cp "$V/tools/usr/bin/xenstore" "$I/usr/bin/"
    for l in list read write ls; do ln -s xenstore "$I/usr/bin/xenstore-$l"; done
    $XCC -O2 -Wall -Wextra -Werror -Iinclude "${XCF[@]}" -o "$P/mmio-dm" tests/xen-arm/mmio-dm.c \
        -L"$B" -lxendevicemodel "${XLD[@]}" -lxenforeignmemory -lxenevtchn -ldl
    cp tests/xen-arm/guest.sh "$P/"
    # the guest: the same kernel, a busybox initramfs, the partial device tree
    cp "$V/root/boot/vmlinuz-${kernel_pkg#linux-image-}" "$P/guest/vmlinuz"
    dtc -q -I dts -O dtb -o "$P/guest/guest.dtb" tests/xen-arm/guest.dts
    GI=$V/guest-initrd
    rm -rf "$GI" && mkdir -p "$GI"/{bin,proc,sys,dev,tmp}
    cp "$V/root/bin/busybox" "$GI/bin/busybox"
    cp tests/xen-arm/guest-init "$GI/init" && chmod +x "$GI/init"
    (cd "$GI" && find . | cpio -o -H newc --quiet | gzip -1) > "$P/guest/initrd.gz"
fi
# Every shared library the programs need, at the paths arm64's ld.so uses.
for f in "$P/mkdomain" "$P/handles_real" "$P/driver" "$P/ours/libxendevicemodel.so.1" "$P/xen/libxendevicemodel.so.1" \
    $([ "$GUEST" = 1 ] && echo "$P/mmio-dm" "$I"/usr/lib/xen-4.17/bin/* "$I/usr/bin/xenstore"); do
    LD_LIBRARY_PATH="$P/stub:$P/xen" qemu-aarch64-static -L / /lib/ld-linux-aarch64.so.1 --list "$f" | awk '/=> \// { print $3 }'
done | sort -u | while read -r lib; do
    case $lib in */libxendevicemodel.so.1|*/libfakeprivcmd.so) continue ;; esac
    mkdir -p "$I$(dirname "$lib")"
    cp -L "$lib" "$I$lib"
done
mkdir -p "$I/lib/aarch64-linux-gnu"
cp -L /lib/ld-linux-aarch64.so.1 "$I/lib/"
# Xen's tools keep Xen's library (mmio-dm and the tests choose by LD_LIBRARY_PATH)
[ "$GUEST" = 1 ] && cp /usr/lib/aarch64-linux-gnu/libxendevicemodel.so.1.4 "$I/lib/aarch64-linux-gnu/libxendevicemodel.so.1"
(cd "$I" && find . | cpio -o -H newc --quiet | gzip -1) > "$V/initrd.gz"
say "initramfs $(du -h "$V/initrd.gz" | cut -f1), kernel $kernel_pkg, hypervisor $(cat "$XEN.version") +IOREQ_SERVER; booting under qemu-system-aarch64 (TCG, timeout ${TIMEOUT}s)"

# ---- boot ----
start=$(date +%s)
set +e
timeout "$TIMEOUT" "$QEMU" -machine virt,virtualization=on,gic-version=3 -cpu cortex-a57 -smp 2 -m 2G \
    -nographic -no-reboot -monitor none -serial stdio -nic none \
    -kernel "$XEN" -append "dom0_mem=512M console=dtuart loglvl=warning guest_loglvl=warning" \
    -device guest-loader,addr=0x49000000,kernel="$V/root/boot/vmlinuz-${kernel_pkg#linux-image-}",bootargs="console=hvc0 rdinit=/init quiet" \
    -device guest-loader,addr=0x50000000,initrd="$V/initrd.gz" < /dev/null > "$V/console.log" 2>&1
qrc=$?
set -e
took=$(( $(date +%s) - start ))
say "whole run $(( $(date +%s) - t0 ))s"
suites=xen-check
[ "$GUEST" = 1 ] && suites="$suites guest" # the guest with the MMIO device model on our library
# shellcheck disable=SC2086 # one word per suite
vm_results "$V/console.log" "real hypervisor ($ARCH)" $suites
