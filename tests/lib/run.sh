#!/bin/sh
# Self-test of the test helpers. tests/lib/checks.sh: `compare` must fail when the actual
# output lacks a line, has an extra one, or has one changed, and when the
# expected output is too short; and pass on identical files. Counts of the
# inner comparisons must be exact, since every suite's totals come from them.
# tests/lib/vm.sh's vm_results, which reads the test VMs' results, must total
# the named suites and die on a failed or missing suite, a non-zero rc, a
# timeout or no end. tests/lib/dom0.sh's wait_until must report the wait's
# time, fail at its ceiling and give up when told to; its wait_quiet must
# tell a file that stopped growing from one that grows.
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
vmr() { # CONSOLE-CONTENT QRC SUITES... -> the last line vm_results printed (vm.sh is bash's)
    printf "$1" > "$d/con"
    q=$2
    shift 2
    bash -c '. tests/lib/checks.sh; . tests/lib/vm.sh
        qrc=$1 took=1 TIMEOUT=9 con=$2
        shift 2
        say() { :; }
        die() { echo "died: $*"; exit 1; }
        vm_results "$con" total "$@"' vmr "$q" "$d/con" "$@" | tail -n 1
}
B='boot\r\n@@@ XEN-CHECK BEGIN\nxen-check: 5 passed, 0 failed\nguest: 2 passed, 0 failed\n'
is "vm_results: totals of every suite" "$(vmr "$B@@@ XEN-CHECK END rc=0\n" 0 xen-check guest)" "total: 7 passed, 0 failed"
is "vm_results: only the named suites count" "$(vmr "$B@@@ XEN-CHECK END rc=0\n" 0 xen-check)" "total: 5 passed, 0 failed"
is "vm_results: a failed suite dies" "$(vmr "${B%%guest*}guest: 1 passed, 1 failed\n@@@ XEN-CHECK END rc=0\n" 0 xen-check guest)" "died: guest: no result or failures (output above)"
is "vm_results: a missing suite dies" "$(vmr "$B@@@ XEN-CHECK END rc=0\n" 0 xen-check other)" "died: other: no result or failures (output above)"
is "vm_results: rc != 0 dies" "$(vmr "$B@@@ XEN-CHECK END rc=1\n" 0 xen-check)" "died: the tests in the VM failed (output above)"
is "vm_results: no end marker dies" "$(vmr "$B" 1 xen-check)" "died: the tests did not finish (QEMU exit 1, 1s); console above"
is "vm_results: a timeout says so" "$(vmr "$B" 124 xen-check)" "died: timed out after 9s"
# wait_until: "WHAT after Ns" once CMD succeeds; at the ceiling or when
# WAIT_GIVEUP succeeds, a line saying so and a failure.
wu() { # CEILING CMD... -> "status" and the line wait_until printed (in sh, as dom0's busybox)
    out=$(sh -c '. tests/lib/dom0.sh; wait_until thing "$@"' wu "$@")
    echo "$? $out"
}
: > "$d/flag"
is "wait_until: an event already there, at once" "$(wu 5 test -e "$d/flag")" "0 wait: thing after 0s"
rm -f "$d/flag"
(sleep 1; : > "$d/flag") &
got=$(wu 30 test -e "$d/flag")
case $got in "0 wait: thing after "[12]s) ok ;; *) bad "wait_until: an event after 1 s: got '$got'" ;; esac
is "wait_until: no event fails at the ceiling" "$(wu 1 false)" "1 wait: thing: not within 1s"
is "wait_until: WAIT_GIVEUP ends the wait at once" "$( (export WAIT_GIVEUP=true; wu 30 false) )" "1 wait: thing: gave up after 0s (true)"
is "wait_until: WAIT_PREFIX starts the line" "$( (export WAIT_PREFIX='[x] '; wu 5 true) )" "0 [x] wait: thing after 0s"
# wait_quiet: a file that stays the same is quiet after QUIET seconds (not
# before); one that keeps growing never is.
wq() { # CEILING QUIET FILE -> "status" and the line wait_quiet printed
    out=$(sh -c '. tests/lib/dom0.sh; wait_quiet f "$@"' wq "$@")
    echo "$? $out"
}
echo x > "$d/quiet"
got=$(wq 30 2 "$d/quiet")
case $got in "0 wait: f quiet for 2s after "[23]s) ok ;; *) bad "wait_quiet: an unchanging file, quiet for 2 s: got '$got'" ;; esac
(for i in $(seq 30); do echo x >> "$d/busy"; sleep 0.2; done) &
grow=$!
is "wait_quiet: a growing file is never quiet" "$(wq 3 2 "$d/busy")" "1 wait: f quiet for 2s: not within 3s"
kill $grow 2> /dev/null
wait $grow 2> /dev/null
summary compare-selftest
