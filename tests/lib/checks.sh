# The test helpers every test script uses: on the host (bash) and inside the
# test VMs (busybox sh), so POSIX sh only. Source it, count with ok/bad/check,
# compare outputs with `compare`, end with `summary NAME`, whose last line
# ("NAME: N passed, M failed") is what tests/run.sh reads.

# CHECKS_VERBOSE=1 prints a line for every passed check too; CHECKS_STAGE, if
# set, names the part of a script a failure belongs to.

T_PASS=0
T_FAIL=0

# ok [N]: N more checks passed (default 1).
ok() { T_PASS=$((T_PASS + ${1:-1})); }

# bad WHAT...: one check failed.
bad() {
    T_FAIL=$((T_FAIL + 1))
    echo "FAIL${CHECKS_STAGE:+ [$CHECKS_STAGE]}: $*"
}

# check WHAT CMD...: passes if CMD succeeds.
check() {
    _what=$1
    shift
    if "$@"; then
        ok
        [ "${CHECKS_VERBOSE:-}" != 1 ] || echo "  ok: $_what"
    else
        bad "$_what"
    fi
}

# expect FILE REGEX WHAT: passes if a line of FILE matches the extended REGEX.
expect() {
    if grep -qE -- "$2" "$1"; then ok; else bad "$3 (no line of $1 matches: $2)"; fi
}

# compare NAME EXPECTED ACTUAL [MIN_LINES]: the two files must be identical,
# line for line, and EXPECTED must have at least MIN_LINES lines (default 1):
# a line missing from ACTUAL, an extra line in it, and a changed line all
# fail. Counts every line the files share as a pass and every line only one
# of them has as a failure (at least one; two empty files are one pass), and
# prints the first differences:
# "-" lines only in EXPECTED, "+" lines only in ACTUAL.
compare() {
    _name=$1 _exp=$2 _act=$3 _min=${4:-1}
    if [ ! -f "$_exp" ] || [ ! -f "$_act" ]; then
        bad "$_name: missing output ($_exp, $_act)"
        return 1
    fi
    _n=$(wc -l < "$_exp")
    if [ "$_n" -lt "$_min" ]; then
        bad "$_name: only $_n lines of output, want at least $_min"
        return 1
    fi
    if cmp -s "$_exp" "$_act"; then
        ok $((_n > 0 ? _n : 1)) # two empty files are one check
        echo "$_name: $_n lines identical"
        return 0
    fi
    # Unified diff without its two header lines: '-' only in EXPECTED, '+' only in ACTUAL.
    _only_exp=$(diff -u "$_exp" "$_act" | tail -n +3 | grep -c '^-')
    _only_act=$(diff -u "$_exp" "$_act" | tail -n +3 | grep -c '^+')
    _d=$((_only_exp + _only_act))
    [ "$_d" -gt 0 ] || _d=1 # different, yet no line differs: a trailing newline
    ok $((_n - _only_exp))
    T_FAIL=$((T_FAIL + _d))
    echo "FAIL: $_name: $_only_exp lines only in $_exp, $_only_act only in $_act; first differences:"
    diff -u "$_exp" "$_act" | tail -n +3 | grep '^[-+]' | head -8 | cut -c1-300
    return 1
}

# summary NAME: the closing line; succeeds if nothing failed.
summary() {
    echo "$1: $T_PASS passed, $T_FAIL failed"
    [ "$T_FAIL" -eq 0 ]
}
