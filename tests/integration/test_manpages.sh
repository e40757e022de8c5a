#!/usr/bin/env bash
# The manual pages against the code: every option in the config table
# (src/config.c), every kernel or ignored mount option (fuse/mount.c),
# every flag and subcommand (fuse/main.c, mount.c, admin.c, maint.c), every
# environment variable the code reads (src/, fuse/) appears in dsqlfs(8);
# every option the mount helper drops (fuse/helper/mount_dsqlfs.c) appears
# in mount.dsqlfs(8); both have an EXIT STATUS with 0, 1 and 2, render
# without a warning, and "dsqlfs --help" names every subcommand.  The
# names are read from the source, so a new option without documentation
# fails here.
set -euo pipefail
SRC=${DSQ_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
DSQLFS=${DSQLFS:-$SRC/build/dsqlfs}
MAN1=$SRC/docs/man/dsqlfs.8
MAN2=$SRC/docs/man/mount.dsqlfs.8
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

command -v man >/dev/null || { echo "FAIL: man (man-db) is not installed" >&2; exit 1; }
render() { # the page as text: no hyphenation, no justification, wide lines
    MANWIDTH=400 man --nh --nj -l "$1" 2>/dev/null | col -bx
}
for p in "$MAN1" "$MAN2"; do
    w=$(MANWIDTH=80 man --warnings -l "$p" 2>&1 >/dev/null || true)
    [ -z "$w" ] || fail "$(basename "$p") renders with warnings: $w"
done
T1=$(render "$MAN1")
T2=$(render "$MAN2")
[ -n "$T1" ] && [ -n "$T2" ] || { echo "FAIL: pages did not render" >&2; exit 1; }

has() { # has TEXT WORD: WORD as a whole word (letters, digits, _ - . around)
    grep -qE "(^|[^A-Za-z0-9_-])$(printf '%s' "$2" | sed 's/[.[\*^$]/\\&/g')([^A-Za-z0-9_]|$)" <<<"$1"
}
check() { # check PAGE_TEXT PAGE_NAME WHAT WORD...
    local text=$1 page=$2 what=$3 n=0
    shift 3
    for w in "$@"; do
        n=$((n + 1))
        has "$text" "$w" || fail "$page does not mention the $what '$w'"
    done
    [ "$n" -gt 0 ] || fail "found no $what in the source (the parser is broken)"
    echo "$page: $n $what(s) checked" >&2
}
section() { # the text of one section (a heading in capitals)
    awk -v s="$2" '/^[A-Z][A-Z ]+$/ {on = ($0 == s)} on' <<<"$1"
}

# options of the config table: {"name", ...
mapfile -t opts < <(sed -n '/^static const struct opt opts\[\]/,/^};/p' "$SRC/src/config.c" |
    grep -oE '^\s*\{"[a-z_0-9]+"' | grep -oE '[a-z_0-9]+')
check "$(section "$T1" OPTIONS)" dsqlfs.8 option "${opts[@]}"

# mount(8) options the daemon passes to the kernel or drops
mapfile -t kopts < <(sed -n '/pass_opts\[\] = {/,/NULL};/p; /drop_opts\[\] = {/,/NULL};/p' "$SRC/fuse/mount.c" |
    grep -oE '"[a-z_]+"' | tr -d '"')
mapfile -t kopts2 < <(grep -oE 'strcmp\(name, "[a-z_-]+"\)' "$SRC/fuse/mount.c" | grep -oE '"[a-z_-]+"' | tr -d '"')
check "$(section "$T1" OPTIONS)" dsqlfs.8 "mount option" "${kopts[@]}" "${kopts2[@]}"

# flags: mount (strcmp(a, "-x")), admin (strcmp(s, "--x")), maintain, main
mapfile -t flags < <(cat "$SRC/fuse/mount.c" "$SRC/fuse/admin.c" "$SRC/fuse/maint.c" "$SRC/fuse/main.c" |
    grep -oE 'strcmp\((a|s|argv\[1\]), "-[-a-zA-Z]+"\)' | grep -oE '"-[-a-zA-Z]+"' | tr -d '"' | sort -u)
check "$T1" dsqlfs.8 flag "${flags[@]}"

# subcommands: admin.c's table, and what main.c dispatches itself
mapfile -t cmds < <(sed -n '/commands\[\] = {/,/};/p' "$SRC/fuse/admin.c" | grep -oE '"[a-z-]+"' | tr -d '"')
mapfile -t cmds2 < <(grep -oE 'strcmp\(argv\[1\], "[a-z][a-z-]*"\)' "$SRC/fuse/main.c" | grep -oE '"[a-z-]+"' | tr -d '"')
check "$(section "$T1" COMMANDS)" dsqlfs.8 subcommand "${cmds[@]}" "${cmds2[@]}"
if [ -x "$DSQLFS" ]; then
    help=$("$DSQLFS" --help)
    for c in "${cmds[@]}" "${cmds2[@]}"; do
        [ "$c" = help ] && continue
        has "$help" "$c" || fail "dsqlfs --help does not name '$c'"
    done
else
    fail "no dsqlfs binary at $DSQLFS"
fi

# environment variables read anywhere, and those of the config table
mapfile -t envs < <(cat "$SRC"/src/*.c "$SRC"/fuse/*.c |
    grep -oE '(getenv|env|env_true)\("[A-Z][A-Z0-9_]+"\)' | grep -oE '"[A-Z0-9_]+"' | tr -d '"' | sort -u)
mapfile -t envs2 < <(grep -oE '"(AWS|DISTRIBUTED_SQLITE)_[A-Z0-9_]+"' "$SRC/src/config.c" | tr -d '"' | sort -u)
check "$(section "$T1" ENVIRONMENT)" dsqlfs.8 "environment variable" "${envs[@]}" "${envs2[@]}"

# the helper's dropped options
mapfile -t hdrop < <(sed -n '/drop\[\] = {/,/NULL};/p' "$SRC/fuse/helper/mount_dsqlfs.c" | grep -oE '"[a-z_]+"' | tr -d '"')
check "$(section "$T2" OPTIONS)" mount.dsqlfs.8 "dropped option" "${hdrop[@]}" comment
grep -q 'strncmp(o, "x-", 2)' "$SRC/fuse/helper/mount_dsqlfs.c" || fail "the helper no longer drops x-*: update this test"
grep -qF 'x-anything' <<<"$(section "$T2" OPTIONS)" || fail "mount.dsqlfs.8 does not say that x-* options are dropped"
mapfile -t hflags < <(grep -oE 'strcmp\(a, "-[a-z]"\)' "$SRC/fuse/helper/mount_dsqlfs.c" | grep -oE '"-[a-z]"' | tr -d '"')
check "$(section "$T2" OPTIONS)" mount.dsqlfs.8 flag "${hflags[@]}"

for p in dsqlfs.8 mount.dsqlfs.8; do
    t=$T1; [ $p = mount.dsqlfs.8 ] && t=$T2
    ex=$(section "$t" "EXIT STATUS")
    for c in 0 1 2; do
        grep -qE "^ +$c( |$)" <<<"$ex" || fail "$p: EXIT STATUS does not explain $c"
    done
    for s in NAME SYNOPSIS DESCRIPTION EXAMPLES "SEE ALSO"; do
        grep -qx "$s" <<<"$t" || fail "$p: no $s section"
    done
done

if [ "$fails" -gt 0 ]; then
    echo "test_manpages: $fails problem(s)" >&2
    exit 1
fi
echo "test_manpages: ok"
