# Shared pieces of the tests that boot Debian's Xen 4.17 under QEMU (TCG):
# `make xen-check` (tests/xen-hypervisor/run.sh) and `make guest-check`
# (tests/guest/run.sh) source this file. Packages come from Debian with
# `apt-get download` into build/xen-vm/cache and are unpacked with `dpkg -x`
# (the host gets no hypervisor or kernel installed; QEMU 7.2 is unpacked too,
# since Debian 12's qemu-system-x86 package may conflict with newer qemu-utils).
# Expects: TOP (the repository), say() and die().

V=$TOP/build/xen-vm
QEMU=$V/qemu/usr/bin/qemu-system-x86_64
XENBIN=/usr/lib/xen-4.17/bin

# vm_packages [tools]: downloads (once) and unpacks Xen, Debian's kernel,
# busybox and QEMU; with "tools" also Xen's toolstack (xl, hvmloader, ...).
# Sets kernel_pkg and MODDIR (the kernel's unpacked modules).
vm_packages() {
    local with_tools=${1:-} p need_host=()
    mkdir -p "$V/cache"
    for p in cpio libcapstone4 libpmem1 librdmacm1 libibverbs1 libslirp0 libvdeplug2 libxen-dev; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need_host+=("$p")
    done
    if [ ${#need_host[@]} -gt 0 ]; then
        [ "$(id -u)" = 0 ] || die "missing Debian packages: ${need_host[*]}"
        apt-get install -o DPkg::Lock::Timeout=600 -y -qq "${need_host[@]}" >/dev/null ||
            { apt-get update -qq && apt-get install -o DPkg::Lock::Timeout=600 -y -qq "${need_host[@]}" >/dev/null; }
    fi
    kernel_pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | awk '{print $1}' | sort -V | tail -1)
    [ -n "$kernel_pkg" ] || die "no linux-image-6.1.0-*-amd64 package found (apt-get update?)"
    local pkgs=(xen-hypervisor-4.17-amd64 "$kernel_pkg" busybox-static qemu-system-x86 qemu-system-data qemu-system-common seabios)
    [ "$with_tools" = tools ] && pkgs+=(xen-utils-4.17)
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
    if [ "$with_tools" = tools ] && [ ! -d "$V/tools" ]; then
        dpkg -x "$V"/cache/xen-utils-4.17_*.deb "$V/tools"
    fi
    ldd "$QEMU" | grep -q 'not found' && die "QEMU lacks libraries: $(ldd "$QEMU" | grep 'not found' | tr '\n' ' ')"
    zcat "$V"/root/boot/xen-4.17-amd64.gz > "$V/xen"
    cp "$V"/root/boot/vmlinuz-* "$V/vmlinuz"
    MODDIR=$(echo "$V"/root/lib/modules/*)
}

# vm_modules NAME...: the .ko paths of the named kernel modules and of what
# they depend on, dependencies first (the package has no modules.dep: each
# module's "depends=" string says it).
vm_modules() {
    local seen=" " out=()
    _vm_mod() {
        local name=$1 ko dep key=${1//-/_}
        case $seen in *" $key "*) return ;; esac
        seen="$seen$key "
        ko=$(find "$MODDIR" -name "$name.ko" | head -1)
        [ -n "$ko" ] || ko=$(find "$MODDIR" -name "${name//_/-}.ko" | head -1)
        [ -n "$ko" ] || ko=$(find "$MODDIR" -name "${name//-/_}.ko" | head -1)
        [ -n "$ko" ] || die "kernel module $name not found"
        for dep in $(grep -ao 'depends=[^[:cntrl:]]*' "$ko" | head -1 | sed 's/^depends=//' | tr ',' ' '); do
            _vm_mod "$dep"
        done
        out+=("$ko")
    }
    local m
    for m in "$@"; do _vm_mod "$m"; done
    printf '%s\n' "${out[@]}"
}

# vm_copy_libs ROOT FILE...: copies every shared library the programs need
# into ROOT at the host's paths (libxendevicemodel.so.1 and the privcmd test
# double excepted: the payload brings those), and the dynamic linker.
vm_copy_libs() {
    local root=$1 f lib; shift
    for f in "$@"; do
        LD_LIBRARY_PATH="${VM_LDPATH:-}" ldd "$f" | awk '/=> \// { print $3 } /^\s*\/lib64/ { print $1 }'
    done | sort -u | while read -r lib; do
        case $lib in */libxendevicemodel.so.1|*/libfakeprivcmd.so) continue ;; esac
        mkdir -p "$root$(dirname "$lib")"
        [ -e "$root$lib" ] || cp -L "$lib" "$root$lib"
    done
    mkdir -p "$root/lib64"
    cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
}

# vm_base ROOT: a fresh dom0 initramfs tree with busybox, the init that runs
# /payload/in-vm.sh between the result markers, and the privcmd driver.
vm_base() {
    local root=$1
    rm -rf "$root"
    mkdir -p "$root"/{bin,proc,sys,dev,tmp,lib/modules,payload}
    cp "$V/root/bin/busybox" "$root/bin/busybox"
    cp "$TOP/tests/xen-hypervisor/init" "$root/init"
    chmod +x "$root/init"
    cp "$(find "$MODDIR" -name xen-privcmd.ko | head -1)" "$root/lib/modules/"
}

# vm_toolstack ROOT: Debian's toolstack (xl, xenstored, xenconsoled,
# hvmloader, SeaBIOS), the dom0 modules it needs, and Debian's QEMU for Xen,
# with Xen's own libxendevicemodel as the system copy (xl and libxenctrl keep
# it; a device model wrapper chooses QEMU's).
vm_toolstack() {
    local root=$1 m b
    [ -x /usr/libexec/xen-qemu-system-i386 ] || die "qemu-system-xen is not installed"
    for m in xen-evtchn xen-gntdev xen-gntalloc xenfs; do cp "$(find "$MODDIR" -name "$m.ko" | head -1)" "$root/lib/modules/"; done
    mkdir -p "$root$XENBIN" "$root/usr/lib/xen-4.17/boot" "$root/usr/share/seabios" "$root/usr/libexec" "$root/etc/xen" "$root/usr/share/qemu"
    for b in xl xenstored xenconsoled xen-init-dom0 libxl-save-helper; do cp "$V/tools$XENBIN/$b" "$root$XENBIN/"; done
    cp "$V/tools/usr/lib/xen-4.17/boot/hvmloader" "$root/usr/lib/xen-4.17/boot/"
    cp -r "$V/tools/etc/xen/scripts" "$root/etc/xen/" 2>/dev/null || true
    cp "$V/qemu/usr/share/seabios/bios-256k.bin" "$root/usr/share/seabios/"
    cp -r "$V/qemu/usr/share/qemu/keymaps" "$root/usr/share/qemu/"
    cp /usr/libexec/xen-qemu-system-i386 "$root/usr/libexec/"
    vm_copy_libs "$root" "$root$XENBIN"/* /usr/libexec/xen-qemu-system-i386
    cp /usr/lib/x86_64-linux-gnu/libxendevicemodel.so.1.4 "$root/lib/x86_64-linux-gnu/libxendevicemodel.so.1"
}

# vm_pack ROOT OUT.gz
vm_pack() {
    (cd "$1" && find . | cpio -o -H newc --quiet | gzip -1) > "$2"
}

# vm_boot INITRD LOG TIMEOUT XEN-CMDLINE [QEMU-ARGS...]: boots Xen with
# Debian's kernel as dom0 and INITRD as its initramfs, the console into LOG;
# sets qrc (QEMU's exit status, 124 on timeout) and took (seconds).
vm_boot() {
    local initrd=$1 log=$2 timeout=$3 xencmd=$4 start
    shift 4
    start=$(date +%s)
    set +e
    timeout "$timeout" "$QEMU" -L "$V/qemu/usr/share/seabios" -L "$V/qemu/usr/share/qemu" \
        -accel tcg -cpu qemu64,+svm,+npt -smp 2 -nographic -no-reboot -monitor none -serial stdio -nic none -vga none \
        "$@" -kernel "$V/xen" -initrd "$V/vmlinuz console=hvc0 rdinit=/init quiet,$initrd" \
        -append "console=com1 $xencmd" < /dev/null > "$log" 2>&1
    qrc=$?
    set -e
    took=$(( $(date +%s) - start ))
}
