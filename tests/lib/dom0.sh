# The helpers of the scripts that run inside a test VM's dom0 (busybox sh),
# from /payload, after checks.sh: bounded waits and Debian's toolstack.
# tests/lib/vm.sh puts this file into every dom0 initramfs; on the host,
# tests/lib/run.sh checks it.

# wait_until WHAT CEILING CMD...: runs CMD every WAIT_STEP seconds (default 1)
# until it succeeds, then says how long that took; after CEILING seconds
# without success it says so and fails. The ceiling bounds a wait for an
# event (generous: several times the event's usual time), it is no budget.
# If WAIT_GIVEUP names a command, the wait fails as soon as that succeeds
# (the event can no longer come). The clock is /proc/uptime, read without a
# fork (forks are slow in a dom0 under TCG). WAIT_PREFIX, if set, starts the
# line.
wait_until() {
    _w_what=$1 _w_max=$2
    shift 2
    read -r _w_up _w_idle < /proc/uptime
    _w_t0=${_w_up%.*}
    while ! "$@"; do
        read -r _w_up _w_idle < /proc/uptime
        if [ $((${_w_up%.*} - _w_t0)) -ge "$_w_max" ]; then
            echo "${WAIT_PREFIX:-}wait: $_w_what: not within ${_w_max}s"
            return 1
        fi
        if [ -n "${WAIT_GIVEUP:-}" ] && $WAIT_GIVEUP; then
            echo "${WAIT_PREFIX:-}wait: $_w_what: gave up after $((${_w_up%.*} - _w_t0))s ($WAIT_GIVEUP)"
            return 1
        fi
        sleep "${WAIT_STEP:-1}"
    done
    read -r _w_up _w_idle < /proc/uptime
    echo "${WAIT_PREFIX:-}wait: $_w_what after $((${_w_up%.*} - _w_t0))s"
}

# wait_quiet WHAT CEILING QUIET FILE...: waits (wait_until) until the FILEs
# together have not grown for QUIET seconds: whatever was on its way into
# them when their writer stopped has landed.
wait_quiet() {
    _q_what=$1 _q_max=$2
    shift 2
    _q_bytes=-1
    wait_until "$_q_what quiet for ${1}s" "$_q_max" _quiet_for "$@"
}
_quiet_for() { # QUIET FILE...
    _q_n=$1
    shift
    _q_b=$(cat "$@" 2> /dev/null | wc -c)
    read -r _q_up _q_idle < /proc/uptime
    if [ "$_q_b" != "$_q_bytes" ]; then
        _q_bytes=$_q_b _q_since=${_q_up%.*}
        return 1
    fi
    [ $((${_q_up%.*} - _q_since)) -ge "$_q_n" ]
}

# load_modules NAME...: insmod each of /lib/modules/NAME.ko (in the given
# order: dependencies first); one already loaded is no error.
load_modules() {
    for _m in "$@"; do
        grep -q "^$(echo "$_m" | tr - _) " /proc/modules || insmod "/lib/modules/$_m.ko" || echo "dom0: insmod $_m failed"
    done
}

# toolstack XENBIN [XENCONSOLED-ARGS...]: the dom0 side of Debian's
# toolstack from XENBIN: its modules, xenfs, devpts (guest consoles are
# ptys), xenstored, xen-init-dom0 (dom0's own xenstore entries), xenconsoled.
# The daemons use the system's libraries (Xen's own), whatever
# LD_LIBRARY_PATH says. Fails, showing why, if xen-init-dom0 fails.
toolstack() {
    _x=$1
    shift
    load_modules xen-evtchn xen-gntdev xen-gntalloc xenfs
    mkdir -p /proc/xen /var/run/xen /var/run/xenstored /var/lib/xenstored /var/log/xen/console /var/lib/xen /run/xen /dev/pts
    grep -q ' /proc/xen ' /proc/mounts || mount -t xenfs xenfs /proc/xen
    grep -q ' /dev/pts ' /proc/mounts || mount -t devpts devpts /dev/pts
    (
        unset LD_LIBRARY_PATH
        "$_x/xenstored" --pid-file /var/run/xen/xenstored.pid &&
            "$_x/xen-init-dom0" > /tmp/init-dom0.log 2>&1 &&
            "$_x/xenconsoled" --pid-file=/var/run/xen/xenconsoled.pid "$@"
    ) || { cat /tmp/init-dom0.log; echo "dom0: FAIL (the toolstack did not start)"; return 1; }
}
