#!/usr/bin/env bash
# Module graphs: which module of a crate uses which (`crate::x` paths and
# `use crate::{a, b::{c, d}}` groups, comments and doc links left out), for
# the C library (src/) and every library crate under crates/. No graph may
# have a cycle (tsort finds one). A module's submodules (src/os/*.rs) count as
# that module.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/checks.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# edges DIR: "module dependency" lines for the crate whose sources are DIR.
edges() {
    find "$1" -name '*.rs' | sort | while read -r f; do
        rel=${f#"$1"/}
        m=${rel%%/*}
        m=${m%.rs}
        [ "$m" = lib ] && continue
        perl -0777 -ne '
            s{//[^\n]*}{}g;                       # comments, doc comments
            my %d;
            $d{$1} = 1 while /\bcrate::([a-z_][a-z0-9_]*)\b(?!\s*\{)/g;
            while (/\buse\s+crate::\{((?:[^{}]|\{(?1)\})*)\}/g) {
                my $g = $1;
                1 while $g =~ s/\{[^{}]*\}//g;   # nested groups: keep their root
                for (split /,/, $g) { s/::.*//s; s/\s//g; $d{$_} = 1 if length }
            }
            print "$_\n" for sort keys %d;
        ' "$f" | while read -r dep; do
            [ "$dep" != "$m" ] && { [ -f "$1/$dep.rs" ] || [ -d "$1/$dep" ]; } && echo "$m $dep"
        done
    done | sort -u
}

for dir in src crates/*/src; do
    name=${dir%/src}
    [ "$dir" = src ] && name="the C library"
    e="$tmp/$(echo "$dir" | tr / _)"
    edges "$dir" > "$e"
    echo "$name: module graph (module uses):"
    awk '{u[$1] = u[$1] " " $2} END {for (m in u) print "  " m ":" u[m]}' "$e" | sort
    check "$name: the module graph has no cycle" sh -c "tsort '$e' > /dev/null 2> '$e.err' && ! [ -s '$e.err' ]"
    [ -s "$e.err" ] && cat "$e.err"
done
check "the C library: only the exports use the boundary, and nothing uses the exports" \
    sh -c "! grep -E ' (boundary|ffi)$' '$tmp/src' | grep -vq '^ffi boundary$'"
check "the C library's graph is not empty (the parser finds uses)" test -s "$tmp/src"
# The checks above must be able to fail: a loop, as tsort sees one, and one
# the parser finds in a nested group.
check "tsort finds a loop when there is one" sh -c "printf 'a b\nb a\n' | tsort > /dev/null 2>&1; [ \$? -ne 0 ]"
mkdir -p "$tmp/loop"
printf 'use crate::{b::{X, Y}, c};\n' > "$tmp/loop/a.rs"
printf '// crate::c is only a comment\nfn f() { crate::a::g() }\n' > "$tmp/loop/b.rs"
: > "$tmp/loop/c.rs"
edges "$tmp/loop" > "$tmp/loop.edges"
check "the parser reads nested groups and paths, not comments" \
    test "$(tr '\n' ';' < "$tmp/loop.edges")" = "a b;a c;b a;"
summary module-graph
