#!/bin/sh
# Self-test of tests/lib/checks.sh: `compare` must fail when the actual
# output lacks a line, has an extra one, or has one changed, and when the
# expected output is too short; and pass on identical files. Counts of the
# inner comparisons must be exact, since every suite's totals come from them.
# vm_results, which reads the test VMs' results, must total the named suites
# and die on a failed or missing suite, a non-zero rc, a timeout or no end.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/checks.sh
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
printf 'a\nb\nc\nd\n' > "$d/exp"

# inner NAME ACTUAL-CONTENT MIN -> "status passes fails" of one compare, run in a subshell
inner() {
    printf "$2" > "$d/act"
    (
        T_PASS=0 T_FAIL=0
        compare "$1" "$d/exp" "$d/act" "$3" > "$d/out"
        echo "$? $T_PASS $T_FAIL"
    )
}
is() { # WHAT GOT WANT
    if [ "$2" = "$3" ]; then ok; else bad "$1: got '$2', want '$3'"; fi
}
is "identical files pass, one check per line" "$(inner same 'a\nb\nc\nd\n' 4)" "0 4 0"
is "a line missing from ours fails" "$(inner missing 'a\nb\nd\n' 1)" "1 3 1"
is "an extra line in ours fails" "$(inner extra 'a\nb\nc\nd\ne\n' 1)" "1 4 1"
is "a changed line fails both ways" "$(inner changed 'a\nB\nc\nd\n' 1)" "1 3 2"
is "lines in another order fail" "$(inner order 'b\na\nc\nd\n' 1)" "1 3 2"
is "an empty output of ours fails" "$(inner empty '' 1)" "1 0 4"
is "a missing final newline fails" "$(inner newline 'a\nb\nc\nd' 1)" "1 3 2"
is "too few expected lines fail even when identical" "$(inner short 'a\nb\nc\nd\n' 5)" "1 0 1"
is "two empty files pass as one check" "$( (: > "$d/e0"; : > "$d/e1"; T_PASS=0 T_FAIL=0; compare empties "$d/e0" "$d/e1" 0 > /dev/null; echo "$? $T_PASS $T_FAIL") )" "0 1 0"
is "a line where none is expected fails" "$( (: > "$d/e0"; echo x > "$d/e1"; T_PASS=0 T_FAIL=0; compare none "$d/e0" "$d/e1" 0 > /dev/null; echo "$? $T_PASS $T_FAIL") )" "1 0 1"
rm -f "$d/act"
is "a missing output file fails" "$( (T_PASS=0 T_FAIL=0; compare gone "$d/exp" "$d/act" > /dev/null; echo "$? $T_PASS $T_FAIL") )" "1 0 1"
# expect: a matching line passes, none fails.
printf 'rc = 0\n' > "$d/e"
is "expect finds a line" "$( (T_PASS=0 T_FAIL=0; expect "$d/e" '^rc = 0$' x > /dev/null; echo "$T_PASS $T_FAIL") )" "1 0"
is "expect misses a line" "$( (T_PASS=0 T_FAIL=0; expect "$d/e" '^rc = 1$' x > /dev/null; echo "$T_PASS $T_FAIL") )" "0 1"
# vm_results: the last line is the total of the named suites, or the run dies.
vmr() { # CONSOLE-CONTENT SUITES... -> the last line vm_results printed
    printf "$1" > "$d/con"
    shift
    (
        qrc=$1 took=1 TIMEOUT=9
        shift
        say() { :; }
        die() { echo "died: $*"; exit 1; }
        vm_results "$d/con" total "$@"
    ) | tail -n 1
}
B='boot\r\n@@@ XEN-CHECK BEGIN\nxen-check: 5 passed, 0 failed\nguest: 2 passed, 0 failed\n'
is "vm_results: totals of every suite" "$(vmr "$B@@@ XEN-CHECK END rc=0\n" 0 xen-check guest)" "total: 7 passed, 0 failed"
is "vm_results: only the named suites count" "$(vmr "$B@@@ XEN-CHECK END rc=0\n" 0 xen-check)" "total: 5 passed, 0 failed"
is "vm_results: a failed suite dies" "$(vmr "${B%%guest*}guest: 1 passed, 1 failed\n@@@ XEN-CHECK END rc=0\n" 0 xen-check guest)" "died: guest: no result or failures (output above)"
is "vm_results: a missing suite dies" "$(vmr "$B@@@ XEN-CHECK END rc=0\n" 0 xen-check other)" "died: other: no result or failures (output above)"
is "vm_results: rc != 0 dies" "$(vmr "$B@@@ XEN-CHECK END rc=1\n" 0 xen-check)" "died: the tests in the VM failed (output above)"
is "vm_results: no end marker dies" "$(vmr "$B" 1 xen-check)" "died: the tests did not finish (QEMU exit 1, 1s); console above"
is "vm_results: a timeout says so" "$(vmr "$B" 124 xen-check)" "died: timed out after 9s"
summary compare-selftest
