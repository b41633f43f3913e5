# The one place that builds the C test programs: tests/run.sh (make check)
# and the test VMs' payloads (tests/xen-hypervisor/run.sh, tests/guest/run.sh)
# source it. Every program gets the same flags; a program's entry below
# says only its source and what it links.
#
#   program NAME OUT     builds NAME into OUT (skipped while OUT is newer than its inputs)
#
# Expects: CC (the compiler, a cross one for a foreign arch), B (the directory
# of our built library and the privcmd test double), optionally XFLAGS (an
# array: a foreign arch's Xen headers and library directories, searched first)
# and ORIG (Xen's library, which fake-selftest links by path).

TEST_CFLAGS=(-O2 -g -std=gnu11 -Wall -Wextra -Werror -Iinclude -Itests/fake -Itests/harness)

program() {
    local name=$1 out=$2 src flags=() libs=() in
    # What a call into our library links: the library, its libxentoolcore and
    # libxentoollog (the harness calls them too), threads.
    local ours=(-L"$B" -lxendevicemodel -lxentoolcore -lxentoollog -lpthread)
    case $name in
    test_*) src=tests/harness/$name.c flags=(-D_GNU_SOURCE) libs=(-lfakeprivcmd "${ours[@]}" -ldl) ;;
    fake-selftest) src=tests/fake/selftest.c libs=(-L"$B" -lfakeprivcmd "${ORIG:?}" -lxentoolcore) ;;
    # The differential driver: against the privcmd test double, or on a real
    # hypervisor against nofake's stand-in for the double's control API.
    driver) src=tests/differential/driver.c libs=(-L"$B" -lxendevicemodel -lfakeprivcmd) ;;
    unload) src=tests/life/unload.c libs=(-ldl -lpthread) ;; # loads the library itself (dlopen)
    layout) src=tests/arch/layout.c ;;
    sandbox) src=tests/sandbox/sandbox.c libs=(-lfakeprivcmd "${ours[@]}") ;;
    mkdomain) src=tests/xen-hypervisor/mkdomain.c libs=(-lxenctrl) ;;
    handles_real) src=tests/xen-hypervisor/handles_real.c flags=(-D_GNU_SOURCE) libs=("${ours[@]}") ;;
    nofake) src=tests/xen-hypervisor/nofake.c flags=(-shared -fPIC) ;;
    privcmd-probe) src=tests/guest/privcmd-probe.c ;;
    mmio-dm) src=tests/xen-arm/mmio-dm.c libs=(-L"$B" -lxendevicemodel -lxenforeignmemory -lxenevtchn -ldl) ;;
    bench) src=tests/bench/bench.c libs=(-L"$B" -lxendevicemodel) ;;
    toolkit-guest) src=tests/guest/toolkit-guest.c flags=(-static -s) ;; # runs in the guest's bare initramfs
    *) echo "program: no test program $name" >&2; return 1 ;;
    esac
    if [ -e "$out" ]; then
        local stale=
        for in in "$src" tests/harness/check.h tests/harness/calls.h tests/fake/fakeprivcmd.h include/xendevicemodel.h \
            "$B/libxendevicemodel.so.1.4" tests/lib/programs.sh; do
            [ ! -e "$in" ] || [ "$out" -nt "$in" ] || stale=1
        done
        [ -n "$stale" ] || return 0
    fi
    mkdir -p "$(dirname "$out")"
    "$CC" "${TEST_CFLAGS[@]}" "${flags[@]}" "${XFLAGS[@]}" -o "$out" "$src" "${libs[@]}"
}
