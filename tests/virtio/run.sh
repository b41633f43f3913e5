#!/usr/bin/env bash
# The virtio-blk guest program (tests/virtio/blk-guest.c) on this machine,
# against an image file, before a guest relies on it: built static as the
# guest check will build it; the pattern it writes reads back and checksums
# the same in the program, in its own `checksum` (dom0's side) and in its
# `expect`; one changed byte in the image changes the checksum and is found
# at its offset; a second seed gives another checksum; the benchmark prints
# its three lines and stops within its time bound; no arguments and a
# missing device are errors.
#   tests/virtio/run.sh
set -u
cd "$(dirname "$0")/../.."
. tests/lib/checks.sh
B=${B:-build}/virtio
mkdir -p "$B"
CC=${CC:-cc}
prog=$B/blk-guest
img=$B/disk.img
check "blk-guest builds static with -Werror" "$CC" -static -s -O2 -Wall -Wextra -Werror -o "$prog" tests/virtio/blk-guest.c
rm -f "$img"
truncate -s 24M "$img"

field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" "$2" | head -1; }

"$prog" pattern "$img" 16 7 > "$B/pattern.out"
check "pattern: exit 0" test $? -eq 0
expect "$B/pattern.out" '^@G blk-pattern mib=16 .* first_bad=-1$' "pattern: read back as written"
"$prog" checksum "$img" 16 > "$B/checksum.out"
"$prog" expect 16 7 > "$B/expect.out"
sum=$(field checksum "$B/pattern.out")
check "pattern checksum = dom0-side checksum of the image" test "$sum" = "$(field checksum "$B/checksum.out")"
check "pattern checksum = the expected one" test "$sum" = "$(field checksum "$B/expect.out")"
"$prog" expect 16 8 > "$B/expect8.out"
check "another seed, another checksum" test "$sum" != "$(field checksum "$B/expect8.out")"
# One byte changed at 5 MiB + 3: the checksum differs.
printf '\xff' | dd of="$img" bs=1 seek=$((5 * 1048576 + 3)) conv=notrunc status=none
"$prog" checksum "$img" 16 > "$B/checksum2.out"
check "a changed byte changes the checksum" test "$sum" != "$(field checksum "$B/checksum2.out")"
# Rewritten with another seed, it reads back again.
"$prog" pattern "$img" 2 9 > "$B/pattern9.out"
expect "$B/pattern9.out" 'first_bad=-1$' "a second pattern also reads back"
t0=$(date +%s.%N)
"$prog" bench "$img" 16 1 > "$B/bench.out"
check "bench: exit 0" test $? -eq 0
took=$(echo "$(date +%s.%N) - $t0" | bc)
check "bench stays within its bounds (3 phases of at most 1 s: took ${took}s)" test "$(echo "$took < 10" | bc)" = 1
expect "$B/bench.out" '^@G blk-bench seq-write mib=[0-9]+ seconds=[0-9.]+ mib_per_s=[0-9.]+$' "bench: sequential write"
expect "$B/bench.out" '^@G blk-bench seq-read mib=[0-9]+ seconds=[0-9.]+ mib_per_s=[0-9.]+$' "bench: sequential read"
expect "$B/bench.out" '^@G blk-bench rand-read-4k ios=[1-9][0-9]* seconds=[0-9.]+ iops=[0-9.]+$' "bench: random reads"
"$prog" pattern "$B/does-not-exist" 1 1 > "$B/missing.out"
check "a missing device: exit 1" test $? -eq 1
expect "$B/missing.out" '^@G blk-error open ' "a missing device: said so"
"$prog" pattern > /dev/null 2>&1
check "no arguments: usage, exit 2" test $? -eq 2
cat "$B/pattern.out" "$B/bench.out"
rm -f "$img"
summary virtio-guest-program
