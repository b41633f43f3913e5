#!/usr/bin/env bash
# Fuzzing of the C ABI (fuzz_targets/c_abi.rs) with libFuzzer, with Xen's
# library as the oracle, under the privcmd test double:
#   tests/fuzz/run.sh SECONDS     (see tests/lib/fuzz.sh)
# With ARCH=arm64 or armhf (`make fuzz ARCH=...`, mk/arch.mk passes its
# settings) the target is cross-built with Debian's toolchain and runs under
# qemu-user, against that architecture's Xen library and double; its build
# directory is build/ARCH/fuzz.
set -u
cd "$(dirname "$0")"
. ../lib/checks.sh
. ../lib/fuzz.sh
root=$(cd ../.. && pwd)
ARCH=${ARCH:-amd64}
if [ "$ARCH" = amd64 ]; then
    export LD_PRELOAD=$root/build/libfakeprivcmd.so
    # Our shared object, for the target's dlclose/dlopen cycles.
    export XDM_FUZZ_LIB=$root/build/libxendevicemodel.so.1.4
else
    : "${TRIPLET:?run through make fuzz ARCH=$ARCH}" "${QEMU_USER:?}" "${RUST_TARGET:?}" "${B:?}"
    # libFuzzer is C++: the cross g++ (root installs it, as make deps would).
    if ! command -v "$TRIPLET-g++" > /dev/null; then
        [ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
            "g++-$TRIPLET" > /dev/null
        command -v "$TRIPLET-g++" > /dev/null || { echo "install g++-$TRIPLET" >&2; exit 1; }
    fi
    t=$(echo "$RUST_TARGET" | tr a-z- A-Z_)
    export PATH=/usr/bin:$PATH CARGO=/usr/bin/cargo FUZZ_TRIPLE=$RUST_TARGET FUZZ_BUILD=$ARCH/fuzz
    FUZZ_CARGO_ENV="CC_${RUST_TARGET//-/_}=$TRIPLET-gcc CXX_${RUST_TARGET//-/_}=$TRIPLET-g++ \
CARGO_TARGET_${t}_LINKER=$root/$B/linker"
    FUZZ_RUSTFLAGS="-L native=$root/$B/sysroot/usr/lib/$TRIPLET -C link-arg=-Wl,-rpath-link,/usr/lib/$TRIPLET"
    FUZZ_RUN="$QEMU_USER -L / -E LD_PRELOAD=$root/$B/libfakeprivcmd.so \
-E XEN_LIBXENDEVICEMODEL=/usr/lib/$TRIPLET/libxendevicemodel.so.1 -E XDM_FUZZ_LIB=$root/$B/libxendevicemodel.so.1.4"
    export FUZZ_CARGO_ENV FUZZ_RUSTFLAGS FUZZ_RUN
fi
fuzz_run fuzz c_abi "${1:-20}"
summary fuzz
