# The helpers every bash script of the test tree uses on the host: messages
# and Debian packages. Source it after setting ME (the name that
# prefixes messages; the script's name if unset). It can also be run, for
# make recipes: `bash tests/lib/common.sh need_debs PKG...`.
# (Inside the test VMs, busybox sh uses tests/lib/dom0.sh instead.)

ME=${ME:-$(basename "$0" .sh)}

# say MESSAGE...: a line prefixed with the script's name.
say() { echo "$ME: $*"; }
# die WHY...: the failure line tests/run.sh shows, then exit 1.
die() {
    echo "$ME: FAIL ($*)"
    exit 1
}

# installed PKG: dpkg has PKG (name or name:arch) installed.
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }

# need_debs PKG...: installs those of the packages that are missing (as root,
# with apt-get update first when the lists are stale), or, not root, fails
# naming the command to run. apt waits for dpkg's lock (other jobs).
need_debs() {
    local p missing=()
    for p in "$@"; do installed "$p" || missing+=("$p"); done
    [ ${#missing[@]} -gt 0 ] || return 0
    if [ "$(id -u)" != 0 ]; then
        echo "$ME: missing Debian packages; run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
        return 1
    fi
    say "installing ${missing[*]}"
    local apt=(apt-get -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends)
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install "${missing[@]}" > /dev/null 2>&1 ||
        { apt-get -o DPkg::Lock::Timeout=600 update -qq &&
            DEBIAN_FRONTEND=noninteractive "${apt[@]}" install "${missing[@]}" > /dev/null; } ||
        { echo "$ME: apt-get install ${missing[*]} failed" >&2; return 1; }
}

# Run as a script: the named function with the remaining arguments.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u
    "$@"
fi
