#!/usr/bin/env bash
# The C library's module graph (src/): which module uses which (`crate::x`
# paths, and `use crate::{a, b}`), which must have no cycle; tsort finds one.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/checks.sh
edges=$(mktemp)
for f in src/*.rs src/*/mod.rs; do
    m=$(basename "$f" .rs)
    [ "$m" = mod ] && m=$(basename "$(dirname "$f")")
    [ "$m" = lib ] && continue
    # crate::name and `use crate::{a, b::c}` groups.
    { grep -oE 'crate::[a-z_]+' "$f" | sed 's/crate:://'
      grep -oE 'use crate::\{[^}]*\}' "$f" | sed 's/use crate::{//; s/}//' | tr ',' '\n' | sed 's/::.*//; s/ //g'
    } | sort -u | while read -r dep; do
        [ -n "$dep" ] && [ "$dep" != "$m" ] && [ -f "src/$dep.rs" -o -d "src/$dep" ] && echo "$m $dep"
    done
done | sort -u > "$edges"
echo "module graph (module uses):"
awk '{u[$1] = u[$1] " " $2} END {for (m in u) print "  " m ":" u[m]}' "$edges" | sort
check "the module graph has no cycle" sh -c "tsort '$edges' > /dev/null 2> '$edges.err' && ! [ -s '$edges.err' ]"
[ -s "$edges.err" ] && cat "$edges.err"
check "only the exports use the boundary, and nothing uses the exports" sh -c "! grep -E ' (boundary|ffi)$' '$edges' | grep -vq '^ffi boundary$'"
# The check above must be able to fail: a loop, as tsort sees one.
check "tsort finds a loop when there is one" sh -c "printf 'a b\nb a\n' | tsort > /dev/null 2>&1; [ \$? -ne 0 ]"
rm -f "$edges" "$edges.err"
summary module-graph
