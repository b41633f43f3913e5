# Sourced by the scripts that need the DIST_* variables of mk/dist.mk (the
# one place that knows the releases): from make's environment or, when a
# script is run by hand, from `make dist-env` (DIST if set, else make's default).
# Sets TOP, the worktree's absolute path, and cds there.
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$TOP" || exit 1
if [ -z "${DIST_ROOT:-}" ] || [ "${DIST_SUITE:-}" != "${DIST:-${DIST_SUITE:-}}" ]; then
    eval "$(make -s --no-print-directory dist-env ${DIST:+DIST="$DIST"})" || {
        echo "dist: make dist-env ${DIST:+DIST=$DIST} failed" >&2
        exit 2
    }
fi
dist_say() { echo "dist($DIST): $*"; }
dist_die() { echo "dist($DIST): $*" >&2; exit 1; }
