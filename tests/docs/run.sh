#!/usr/bin/env bash
# The documents hold together: README.md and docs/*.md link only to files and
# headings that exist, every repository path they name in backticks exists,
# and the generated maps of docs/architecture.md (tools/docs-map) match the
# sources. Run by make check; `tests/run.sh check docs` runs it alone.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/checks.sh
B=${B:-build}
mkdir -p "$B/docs"
DOCS=(README.md docs/*.md)

# GitHub's anchor for a heading: lower case, punctuation but - and _ dropped,
# spaces to hyphens.
slug() { sed -E 's/^#+ +//; s/[[:space:]]+$//' | tr 'A-Z' 'a-z' | sed -E 's/[^a-z0-9 _-]//g; s/ /-/g'; }
anchors() { # FILE: its headings' anchors, outside code blocks
    awk '/^```/ { code = !code; next } !code && /^#+ / { print }' "$1" | slug
}

# Links: [text](target) outside code blocks; web addresses are not followed.
: > "$B/docs/links.bad"
n=0
for d in "${DOCS[@]}"; do
    dir=$(dirname "$d")
    while IFS= read -r t; do
        n=$((n + 1))
        case $t in http://* | https://* | mailto:*) continue ;; esac
        file=${t%%#*} anchor=
        [[ $t == *'#'* ]] && anchor=${t#*#}
        if [ -z "$file" ]; then f=$d; else f=$dir/$file; fi
        if [ ! -e "$f" ]; then
            echo "$d: link to $t: no file $f" >> "$B/docs/links.bad"
        elif [ -n "$anchor" ] && ! anchors "$f" | grep -qxF -- "$anchor"; then
            echo "$d: link to $t: no heading #$anchor in $f" >> "$B/docs/links.bad"
        fi
    done < <(awk '/^```/ { code = !code; next } !code' "$d" | grep -oE '\]\([^) ]+\)' | sed -E 's/^\]\((.*)\)$/\1/')
done
: > "$B/docs/empty"
compare "links between the documents ($n links)" "$B/docs/empty" "$B/docs/links.bad" 0

# Paths in backticks that name a file or folder of the repository.
: > "$B/docs/paths.bad"
m=0
for d in "${DOCS[@]}"; do
    while IFS= read -r p; do
        m=$((m + 1))
        p=${p%%:*}                      # a path:line reference
        case $p in *'*'* | *'<'* | *'$'* | *'{'*) continue ;; esac
        [ -e "$p" ] || echo "$d: \`$p\` does not exist" >> "$B/docs/paths.bad"
    done < <(grep -oE '`(src|crates|examples|tests|tools|mk|debian|docs|include|\.ci)/[^` ]*`' "$d" | tr -d '`' | sort -u)
done
compare "repository paths named in the documents ($m paths)" "$B/docs/empty" "$B/docs/paths.bad" 0

# Every document is a doctest of the root crate (src/lib.rs, mod documents),
# which `cargo test` compiles: a document missing there would go unchecked.
for d in "${DOCS[@]}"; do
    check "$d's examples are compiled (src/lib.rs includes it)" grep -q "include_str!(\"../$d\")" src/lib.rs
done
check "docs/architecture.md's code and test maps match the sources (tools/docs-map check)" \
    sh -c 'tools/docs-map check > "$0/docs/map.out" 2>&1 || { cat "$0/docs/map.out"; exit 1; }' "$B"
# Generated figures (tools/docs-map tables): each names a table a full run
# writes (MODE-ARCH-DIST) and holds what docs-map puts there, nothing typed
# by hand in another form.
bad=$(grep -ohE '<!--n:[^>]*-->[^<]*<!--/n-->' "${DOCS[@]}" |
    grep -vE '^<!--n:(check|xen|guest|deb|deb-upgrade)-(amd64|arm64|armhf)-(bookworm|trixie)-->[0-9]{1,3}(,[0-9]{3})* checks, [0-9]+ failed<!--/n-->$')
check "generated figures are well-formed and name a run's table (${bad:-none bad})" test -z "$bad"
summary docs
