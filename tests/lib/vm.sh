# The one harness for the test VMs: Debian's Xen booted under QEMU (TCG),
# Debian's kernel as dom0 from an initramfs, on x86_64 or arm64. `make
# xen-check` (tests/xen-hypervisor/run.sh, both arches) and `make guest-check`
# (tests/guest/run.sh) source it after tests/lib/common.sh (say, die,
# need_debs) and tests/lib/checks.sh (ok, bad). Its parts:
#   packages   vm_setup ARCH, vm_packages [tools]: Debian's packages with
#              `apt-get download` into build/<vm>/cache, unpacked with
#              `dpkg -x` (nothing of Xen, the kernel or QEMU is installed on
#              the host; QEMU's libraries are); vm_hypervisor: the Xen image
#              (on arm64 rebuilt from Debian's source with IOREQ servers)
#   root       vm_base, vm_toolstack, vm_modules, vm_payload, vm_pack: the
#              dom0 initramfs
#   libraries  vm_copy_libs: what the programs load, at their paths
#   boot       vm_boot: QEMU under a timeout
#   results    vm_console, vm_results: the console protocol (tests/lib/vm-init
#              prints the VM's script between "@@@ XEN-CHECK" markers)
# Inside the VM, scripts use tests/lib/dom0.sh (bounded waits, the toolstack).

# vm_setup ARCH: the machine's settings for ARCH (amd64 or arm64), on the
# Debian release this runs on (the DIST_* variables of mk/dist.mk, the one
# place that knows what differs between releases; `make DIST=...` runs the
# VM checks inside that release's root, so its apt, packages and programs
# are the release's own).
vm_setup() {
    VM_ARCH=$1
    case $VM_ARCH in
    amd64)
        V=$TOP/build/xen-vm
        VM_TRIPLET=x86_64-linux-gnu
        VM_QEMU_PKG=qemu-system-x86
        QEMU=$V/qemu/usr/bin/qemu-system-x86_64
        VM_LDSO=/lib64/ld-linux-x86-64.so.2
        ;;
    arm64)
        V=$TOP/build/xen-arm
        VM_TRIPLET=aarch64-linux-gnu
        VM_QEMU_PKG=qemu-system-arm
        QEMU=$V/qemu/usr/bin/qemu-system-aarch64
        VM_LDSO=/lib/ld-linux-aarch64.so.1
        ;;
    *) die "no test VM for ARCH=$VM_ARCH (amd64 or arm64)" ;;
    esac
    # The release's names for this arch (run by hand, not through make: ask it).
    case ${DIST_KERNEL_RE:-} in
    *-"$VM_ARCH"\$) ;;
    *) eval "$(make -s --no-print-directory -C "$TOP" dist-env ARCH="$VM_ARCH" ${DIST:+DIST=$DIST})" ||
        die "make dist-env failed" ;;
    esac
    XEN_VER=$DIST_XEN
    XENBIN=$DIST_XEN_DIR/bin
    VM_KERNEL_RE=$DIST_KERNEL_RE
    VM_LIBDIR=/usr/lib/$VM_TRIPLET
    APT=(apt-get -o DPkg::Lock::Timeout=600)
    mkdir -p "$V/cache"
}

# vm_download PKG...: each package's .deb into the cache, once (PKG may say
# :arch; the cached file is found by its name).
vm_download() {
    local p
    for p in "$@"; do
        ls "$V/cache/${p%:*}"_*.deb > /dev/null 2>&1 && continue
        (cd "$V/cache" && "${APT[@]}" download "$p") > "$V/download.log" 2>&1
        ls "$V/cache/${p%:*}"_*.deb > /dev/null 2>&1 || { cat "$V/download.log"; die "cannot download $p"; }
    done
}

# vm_packages [tools]: Xen, the kernel, busybox and QEMU (for the host),
# downloaded once and unpacked into $V/root (dom0's pieces) and $V/qemu; with
# "tools" also Xen's toolstack into $V/tools. Sets kernel_pkg, VMLINUZ,
# MODDIR (the kernel's unpacked modules) and BUSYBOX. Installs what QEMU links, and cpio.
vm_packages() {
    local with_tools=${1:-} a=":$VM_ARCH" p
    kernel_pkg=$(apt-cache search --names-only "$VM_KERNEL_RE" | awk '{print $1}' | sort -V | tail -1)
    [ -n "$kernel_pkg" ] || die "no package matches $VM_KERNEL_RE (dpkg --add-architecture $VM_ARCH; apt-get update)"
    local dom0=("$kernel_pkg$a" "busybox-static$a") tools=("$DIST_XEN_UTILS_PKG$a")
    [ "$VM_ARCH" = amd64 ] && dom0+=("$DIST_XEN_HYPERVISOR_PKG")
    [ "$VM_ARCH" = arm64 ] && tools+=("xenstore-utils$a") # xenstore-read etc.: guest.sh plays a back-end
    local qemu=("$VM_QEMU_PKG")
    [ "$VM_ARCH" = amd64 ] && qemu+=(qemu-system-data qemu-system-common seabios)
    vm_download "${dom0[@]}" "${qemu[@]}"
    [ "$with_tools" = tools ] && vm_download "${tools[@]}"
    if [ ! -f "$V/.unpacked-$kernel_pkg" ]; then
        rm -rf "$V/root" "$V/qemu"
        for p in "${dom0[@]}"; do dpkg -x "$V"/cache/"${p%:*}"_*.deb "$V/root"; done
        for p in "${qemu[@]}"; do dpkg -x "$V"/cache/"$p"_*.deb "$V/qemu"; done
        touch "$V/.unpacked-$kernel_pkg"
    fi
    if [ "$with_tools" = tools ] && [ ! -f "$V/tools/.done" ]; then
        rm -rf "$V/tools"
        for p in "${tools[@]}"; do dpkg -x "$V"/cache/"${p%:*}"_*.deb "$V/tools"; done
        touch "$V/tools/.done"
    fi
    # What QEMU links (its package's library dependencies), cpio for the
    # initramfs, and Xen's headers and libraries for the payload's programs.
    local need=(cpio xz-utils zstd libxen-dev)
    [ "$VM_ARCH" = arm64 ] && need+=(flex bison device-tree-compiler) # the hypervisor's build, the guest's device tree
    need+=($(dpkg-deb -f "$V"/cache/"$VM_QEMU_PKG"_*.deb Depends | tr ',' '\n' | sed -n 's/^ *\(lib[^ ]*\).*/\1/p'))
    need_debs "${need[@]}" || die "missing Debian packages"
    ! ldd "$QEMU" | grep -q 'not found' || die "QEMU lacks libraries: $(ldd "$QEMU" | grep 'not found' | tr '\n' ' ')"
    VMLINUZ=$(echo "$V"/root/boot/vmlinuz-*)
    # Debian 13's packages install into /usr only (merged /usr).
    local d
    MODDIR= BUSYBOX=
    for d in "$V"/root/lib/modules/* "$V"/root/usr/lib/modules/*; do [ -d "$d" ] && MODDIR=$d; done
    for d in "$V"/root/bin/busybox "$V"/root/usr/bin/busybox; do [ -x "$d" ] && BUSYBOX=$d; done
    [ -f "$VMLINUZ" ] && [ -d "$MODDIR" ] || die "no kernel or modules in $kernel_pkg"
    [ -x "$BUSYBOX" ] || die "no busybox in busybox-static"
}

# vm_hypervisor: sets XEN, the hypervisor image QEMU boots, and XEN_DESC.
# amd64: Debian's xen-hypervisor package. arm64: Debian's Xen for Arm lacks
# CONFIG_IOREQ_SERVER (every dm_op but two answers ENOSYS), so the hypervisor
# alone is rebuilt from Debian's source package with CONFIG_EXPERT=y
# CONFIG_IOREQ_SERVER=y, once (cached in $V), the source fetched through a
# private apt configuration (a deb-src list of its own: the host's apt
# configuration stays untouched).
vm_hypervisor() {
    if [ "$VM_ARCH" = amd64 ]; then
        XEN=$V/xen
        zcat "$V/root/boot/xen-$XEN_VER-amd64.gz" > "$XEN"
        XEN_DESC=$DIST_XEN_HYPERVISOR_PKG
        return
    fi
    XEN=$V/xen-$XEN_VER-arm64-ioreq
    if [ ! -f "$XEN" ]; then
        local t1=$SECONDS srcver X
        local A=(-o Dir::Etc::sourcelist=/dev/null -o Dir::Etc::sourceparts="$V/apt/etc" -o Dir::State::Lists="$V/apt/lists"
            -o Dir::Cache="$V/apt/cache")
        mkdir -p "$V/apt/etc" "$V/apt/lists/partial" "$V/apt/cache" "$V/src"
        # the release's own source (the security archive's source of the installed
        # version is not served here); the hypervisor ABI is stable within a release
        printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$DIST_SUITE" \
            > "$V/apt/etc/xen-src.sources"
        "${APT[@]}" "${A[@]}" update > "$V/apt/update.log" 2>&1 || { cat "$V/apt/update.log"; die "private deb-src update"; }
        srcver=$(apt-cache "${A[@]}" showsrc xen | sed -n 's/^Version: //p' | sort -V | tail -1)
        [ -n "$srcver" ] || die "no xen source package"
        (cd "$V/src" && ls xen_"${srcver#*:}".dsc > /dev/null 2>&1 ||
            "${APT[@]}" "${A[@]}" source --download-only "xen=$srcver" 2>&1 | grep -v '^W: Download is performed unsandboxed') > /dev/null
        rm -rf "$V/src/xen"
        dpkg-source -x "$V/src/xen_${srcver#*:}.dsc" "$V/src/xen" > "$V/src/unpack.log" 2>&1 || die "dpkg-source -x"
        X=$V/src/xen/xen
        # Debian's hypervisor configuration, plus the IOREQ server (an EXPERT option)
        cp "$V/src/xen/debian/xen-kconfig" "$X/.config"
        printf 'CONFIG_EXPERT=y\nCONFIG_IOREQ_SERVER=y\n' >> "$X/.config"
        local mk=(make -C "$X" XEN_TARGET_ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- PYTHON=/usr/bin/python3)
        { "${mk[@]}" olddefconfig && "${mk[@]}" -j"$(nproc)"; } > "$V/src/build.log" 2>&1 || { tail -30 "$V/src/build.log"; die "hypervisor build"; }
        grep -qx 'CONFIG_IOREQ_SERVER=y' "$X/.config" || die "CONFIG_IOREQ_SERVER did not stick"
        cp "$X/xen" "$XEN.tmp" && cp "$X/.config" "$XEN.config" && echo "$srcver" > "$XEN.version" && mv "$XEN.tmp" "$XEN"
        rm -rf "$V/src/xen"
        say "hypervisor $srcver rebuilt with CONFIG_IOREQ_SERVER=y in $((SECONDS - t1))s"
    fi
    XEN_DESC="Xen $(cat "$XEN.version") +IOREQ_SERVER"
}

# vm_modules NAME...: the .ko paths of the named kernel modules and of what
# they depend on, dependencies first (the package has no modules.dep: each
# module's "depends=" string says it); compressed ones are unpacked in place.
vm_modules() {
    local seen=" " out=() m
    _vm_mod() {
        local name=$1 ko dep key=${1//-/_}
        case $seen in *" $key "*) return ;; esac
        seen="$seen$key "
        ko=$(find "$MODDIR" \( -name "$name.ko*" -o -name "${name//_/-}.ko*" -o -name "${name//-/_}.ko*" \) | head -1)
        [ -n "$ko" ] || die "kernel module $name not found"
        # Debian 13's kernel compresses its modules; busybox's insmod wants them plain.
        case $ko in
        *.ko.xz) xz -d "$ko" && ko=${ko%.xz} ;;
        *.ko.zst) zstd -q -d --rm "$ko" && ko=${ko%.zst} ;;
        esac
        for dep in $(grep -ao 'depends=[^[:cntrl:]]*' "$ko" | head -1 | sed 's/^depends=//' | tr ',' ' '); do
            _vm_mod "$dep"
        done
        out+=("$ko")
    }
    for m in "$@"; do _vm_mod "$m"; done
    printf '%s\n' "${out[@]}"
}

# vm_add_modules ROOT NAME...: the modules (and their dependencies) into
# ROOT/lib/modules, where dom0.sh's load_modules finds them.
vm_add_modules() {
    local root=$1
    shift
    mkdir -p "$root/lib/modules"
    cp $(vm_modules "$@") "$root/lib/modules/"
}

# vm_libs FILE: the shared libraries FILE loads, as the VM's dynamic linker
# resolves them here (arm64's through qemu-user); VM_LDPATH is searched first.
vm_libs() {
    if [ "$VM_ARCH" = amd64 ]; then
        LD_LIBRARY_PATH="${VM_LDPATH:-}" ldd "$1"
    else
        LD_LIBRARY_PATH="${VM_LDPATH:-}" "${QEMU_USER:-qemu-aarch64-static}" -L / "$VM_LDSO" --list "$1"
    fi | awk '/=> \// { print $3 }'
}

# vm_copy_libs ROOT FILE...: copies every shared library the programs need
# into ROOT at the same paths (libxendevicemodel.so.1 and the privcmd test
# double excepted: the payload brings those), and the dynamic linker.
vm_copy_libs() {
    local root=$1 f lib
    shift
    for f in "$@"; do vm_libs "$f"; done | sort -u | while read -r lib; do
        case $lib in */libxendevicemodel.so.1 | */libfakeprivcmd.so) continue ;; esac
        mkdir -p "$root$(dirname "$lib")"
        [ -e "$root$lib" ] || cp -L "$lib" "$root$lib"
    done
    mkdir -p "$root$(dirname "$VM_LDSO")"
    cp -L "$VM_LDSO" "$root$VM_LDSO"
}

# vm_base ROOT: a fresh dom0 initramfs tree: busybox, the init that runs
# /payload/in-vm.sh between the console markers, the in-VM helpers
# (/payload/checks.sh, /payload/dom0.sh), the machine's facts for them
# (/payload/vm.env: XEN_VER, XENBIN, VM_ARCH) and the privcmd driver.
vm_base() {
    local root=$1
    rm -rf "$root"
    mkdir -p "$root"/{bin,proc,sys,dev,tmp,lib/modules,payload}
    cp "$BUSYBOX" "$root/bin/busybox"
    cp "$TOP/tests/lib/vm-init" "$root/init"
    chmod +x "$root/init"
    cp "$TOP/tests/lib/checks.sh" "$TOP/tests/lib/dom0.sh" "$root/payload/"
    # What the scripts inside need to know of this machine.
    printf 'XEN_VER=%s\nXENBIN=%s\nVM_ARCH=%s\n' "$XEN_VER" "$XENBIN" "$VM_ARCH" > "$root/payload/vm.env"
    vm_add_modules "$root" xen-privcmd
}

# vm_toolstack ROOT: Debian's toolstack (xl, xenstored, xenconsoled,
# xen-init-dom0; on amd64 also libxl's save helper, hvmloader, SeaBIOS and
# Debian's QEMU for Xen), the dom0 modules it needs, and Xen's own
# libxendevicemodel as the system's copy (xl and libxenctrl keep it; the
# tests choose a device model's by LD_LIBRARY_PATH).
vm_toolstack() {
    local root=$1 b bins=(xl xenstored xenconsoled xen-init-dom0)
    vm_add_modules "$root" xen-evtchn xen-gntdev xen-gntalloc xenfs
    mkdir -p "$root$XENBIN" "$root/etc/xen" "$root/usr/bin" "$root$VM_LIBDIR"
    [ "$VM_ARCH" = amd64 ] && bins+=(libxl-save-helper)
    for b in "${bins[@]}"; do cp "$V/tools$XENBIN/$b" "$root$XENBIN/"; done
    cp -r "$V/tools/etc/xen/scripts" "$root/etc/xen/" 2> /dev/null || true
    local progs=("$root$XENBIN"/*)
    if [ "$VM_ARCH" = amd64 ]; then
        [ -x /usr/libexec/xen-qemu-system-i386 ] || die "qemu-system-xen is not installed"
        mkdir -p "$root/usr/lib/xen-$XEN_VER/boot" "$root/usr/share/seabios" "$root/usr/libexec" "$root/usr/share/qemu"
        cp "$V/tools/usr/lib/xen-$XEN_VER/boot/hvmloader" "$root/usr/lib/xen-$XEN_VER/boot/"
        cp "$V/qemu/usr/share/seabios/bios-256k.bin" "$root/usr/share/seabios/"
        cp -r "$V/qemu/usr/share/qemu/keymaps" "$root/usr/share/qemu/"
        cp /usr/libexec/xen-qemu-system-i386 "$root/usr/libexec/"
        progs+=(/usr/libexec/xen-qemu-system-i386)
    else
        cp "$V/tools/usr/bin/xenstore" "$root/usr/bin/"
        for b in list read write ls; do ln -sf xenstore "$root/usr/bin/xenstore-$b"; done
        progs+=("$root/usr/bin/xenstore")
    fi
    vm_copy_libs "$root" "${progs[@]}"
    cp "$VM_LIBDIR/libxendevicemodel.so.1.4" "$root$VM_LIBDIR/libxendevicemodel.so.1"
}

# vm_payload ROOT: both libraries, Xen's as /payload/xen and ours as
# /payload/ours (LD_LIBRARY_PATH picks one), and the stand-in for the
# privcmd test double's control API in /payload/stub (for the driver).
# Expects B, the directory of our library built for VM_ARCH.
vm_payload() {
    local p=$1/payload
    mkdir -p "$p"/{xen,ours,stub}
    cp "$B/libxendevicemodel.so.1.4" "$p/ours/libxendevicemodel.so.1"
    cp "$VM_LIBDIR/libxendevicemodel.so.1.4" "$p/xen/libxendevicemodel.so.1"
    program nofake "$p/stub/libfakeprivcmd.so" || die "cannot build the payload's programs"
}

# vm_pack ROOT OUT.gz: ROOT as a compressed cpio archive (an initramfs).
vm_pack() {
    (cd "$1" && find . | cpio -o -H newc --quiet | gzip -1) > "$2"
}

# vm_boot INITRD LOG TIMEOUT XEN-CMDLINE [QEMU-ARGS...]: boots Xen with
# Debian's kernel as dom0 and INITRD as its initramfs, the console into LOG;
# sets qrc (QEMU's exit status, 124 on timeout) and took (seconds). TIMEOUT
# is a ceiling for a VM that hangs, far above a run's usual time.
vm_boot() {
    local initrd=$1 log=$2 timeout=$3 xencmd=$4 start=$SECONDS machine
    shift 4
    local dom0="console=hvc0 rdinit=/init quiet"
    if [ "$VM_ARCH" = amd64 ]; then
        machine=(-L "$V/qemu/usr/share/seabios" -L "$V/qemu/usr/share/qemu" -cpu qemu64,+svm,+npt -vga none
            -kernel "$XEN" -initrd "$VMLINUZ $dom0,$initrd" -append "console=com1 $xencmd")
    else
        machine=(-machine virt,virtualization=on,gic-version=3 -cpu cortex-a57
            -kernel "$XEN" -append "console=dtuart $xencmd"
            -device guest-loader,addr=0x49000000,kernel="$VMLINUZ",bootargs="$dom0"
            -device guest-loader,addr=0x50000000,initrd="$initrd")
    fi
    set +e
    timeout "$timeout" "$QEMU" -accel tcg -smp 2 -nographic -no-reboot -monitor none -serial stdio -nic none \
        "${machine[@]}" "$@" < /dev/null > "$log" 2>&1
    qrc=$?
    set -e
    took=$((SECONDS - start))
}

# vm_console CONSOLE: after the VM ran (vm_boot set qrc and took; TIMEOUT is
# the caller's). Keeps what the VM's script printed between its "@@@
# XEN-CHECK" markers in CONSOLE (the serial log) in CONSOLE.result and prints
# it; dies, showing the console's tail, if the script never reached its end.
vm_console() {
    tr -d '\r' < "$1" | sed -n '/@@@ XEN-CHECK BEGIN/,/@@@ XEN-CHECK END/p' > "$1.result"
    if ! grep -q '@@@ XEN-CHECK END' "$1.result"; then
        tail -60 "$1" | tr -d '\r'
        [ "$qrc" -ne 124 ] || die "timed out after ${TIMEOUT}s"
        die "the tests did not finish (QEMU exit $qrc, ${took}s); console above"
    fi
    sed '1d;$d' "$1.result"
    say "boot and tests took ${took}s"
}

# vm_results CONSOLE LABEL SUITE...: vm_console, then dies unless the VM's
# script ended with rc=0 and every SUITE reported "N passed, 0 failed", and
# ends with one total of those suites, "LABEL: N passed, M failed", for
# tests/run.sh.
vm_results() {
    local con=$1 label=$2 s re=
    shift 2
    vm_console "$con"
    grep -q 'XEN-CHECK END rc=0' "$con.result" || die "the tests in the VM failed (output above)"
    for s in "$@"; do
        grep -qE "^$s: [0-9]+ passed, 0 failed\$" "$con.result" || die "$s: no result or failures (output above)"
        re="$re${re:+|}$s"
    done
    grep -E "^($re): [0-9]+ passed, [0-9]+ failed\$" "$con.result" |
        awk -v label="$label" '{p += $2; f += $4} END {printf "%s: %d passed, %d failed\n", label, p, f}'
}
