#!/usr/bin/env bash
# Build SQLite's test programs and libfuse's passthrough_ll once into a
# cache directory outside the clone, and reuse them when present.
#
#   tests/sqlite/build.sh          build what is missing, print where it is
#   tests/sqlite/build.sh --env    the same, printed as shell assignments:
#                                  eval "$(tests/sqlite/build.sh --env)"
#
# From Debian's source packages of the libraries this machine has
# installed (apt-get source, through a private apt configuration whose
# deb-src entries mirror the deb entries apt already uses; /etc/apt is not
# touched):
#
#   sqlite3 (the version of libsqlite3-0) -> $DSQ_SQLITE_DIR/
#       testfixture    SQLite's TCL test driver (-DSQLITE_TEST, -DSQLITE_NO_SYNC)
#       speedtest1     SQLite's benchmark (a normal build that syncs)
#       test/          the test tree, with helpers-outside-cwd.patch applied
#   fuse3 (the version of libfuse3-3) -> $DSQ_FUSE_DIR/
#       passthrough_ll libfuse's pass-through example (the "FUSE floor";
#                      mount it with and without -o writeback)
#
# The cache root is $DSQ_TEST_CACHE, else /var/cache/dsqlfs-test (root),
# else ${XDG_CACHE_HOME:-~/.cache}/dsqlfs-test.  Each build lives in a
# directory named after the package version and a hash of this recipe
# (this script and the patch), so changing either builds anew; an old
# directory can be deleted at any time.  Concurrent callers wait on one
# lock; a build is moved into place only when it is complete.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PATCH="$HERE/helpers-outside-cwd.patch"

say() { echo "sqlite/build.sh: $*" >&2; }
die() { say "$*"; exit 1; }

if [ -n "${DSQ_TEST_CACHE:-}" ]; then
    ROOT=$DSQ_TEST_CACHE
elif [ "$(id -u)" = 0 ]; then
    ROOT=/var/cache/dsqlfs-test
else
    ROOT=${XDG_CACHE_HOME:-$HOME/.cache}/dsqlfs-test
fi
mkdir -p "$ROOT" || die "cannot create the cache directory $ROOT"

for tool in apt-get dpkg-source dpkg-query patch flock cc make pkg-config sha256sum; do
    command -v "$tool" >/dev/null || die "missing $tool (scripts/deps.sh --test installs it)"
done
[ -f /usr/lib/tcl8.6/tclConfig.sh ] || die "missing Tcl 8.6 development files (tcl-dev)"
pkg-config --exists fuse3 || die "missing libfuse3 development files (libfuse3-dev)"

RECIPE=$(cat "${BASH_SOURCE[0]}" "$PATCH" | sha256sum | cut -c1-12)
src_version() { # the source package version of an installed binary package
    dpkg-query -W -f='${source:Version}' "$1" 2>/dev/null ||
        die "package $1 is not installed (scripts/deps.sh installs it)"
}
SQLITE_VER=$(src_version libsqlite3-0)
FUSE_VER=$(src_version libfuse3-3)
SQLITE_DIR="$ROOT/sqlite-$SQLITE_VER-$RECIPE"
FUSE_DIR="$ROOT/fuse3-$FUSE_VER-$RECIPE"

sqlite_ok() { [ -x "$SQLITE_DIR/testfixture" ] && [ -x "$SQLITE_DIR/speedtest1" ] && [ -f "$SQLITE_DIR/test/tester.tcl" ]; }
fuse_ok() { [ -x "$FUSE_DIR/passthrough_ll" ]; }

report() {
    if [ "${1:-}" = --env ]; then
        printf 'DSQ_SQLITE_DIR=%q\nDSQ_FUSE_DIR=%q\n' "$SQLITE_DIR" "$FUSE_DIR"
    else
        echo "testfixture     $SQLITE_DIR/testfixture"
        echo "speedtest1      $SQLITE_DIR/speedtest1"
        echo "SQLite tests    $SQLITE_DIR/test"
        echo "passthrough_ll  $FUSE_DIR/passthrough_ll"
    fi
}
if sqlite_ok && fuse_ok; then report "${1:-}"; exit 0; fi

exec 9>"$ROOT/.lock"
flock 9
if sqlite_ok && fuse_ok; then report "${1:-}"; exit 0; fi # built meanwhile

WORK=$(mktemp -d "$ROOT/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# A private apt configuration: a deb-src entry for every deb entry of the
# system's sources, with its own lists and cache, so that neither /etc/apt
# nor the system's package lists change.
APT="$WORK/apt"
mkdir -p "$APT/parts" "$APT/lists/partial" "$APT/cache/archives/partial"
n=0
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    n=$((n + 1))
    case $f in
    *.sources) sed -e 's/^Types:.*/Types: deb-src/' "$f" >"$APT/parts/$n.sources" ;;
    *) sed -n -e 's/^[[:space:]]*deb[[:space:]]/deb-src /p' "$f" >"$APT/parts/$n.list" ;;
    esac
done
[ "$n" -gt 0 ] || die "no apt sources under /etc/apt to derive deb-src entries from"
APTOPT=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$APT/parts"
        -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache"
        -o "APT::Sandbox::User=root" -qq)
say "fetching source package lists"
apt-get "${APTOPT[@]}" update >"$WORK/apt-update.log" 2>&1 ||
    say "apt-get update reported errors (continuing): $(tail -1 "$WORK/apt-update.log")"

get_source() { # get_source PACKAGE VERSION: unpack into $WORK/src
    mkdir -p "$WORK/src"
    (cd "$WORK/src" && apt-get "${APTOPT[@]}" source "$1=$2") >"$WORK/apt-source-$1.log" 2>&1 || {
        tail -5 "$WORK/apt-source-$1.log" >&2
        die "apt-get source $1=$2 failed (log above)"
    }
}

if ! sqlite_ok; then
    get_source sqlite3 "$SQLITE_VER"
    S=$(find "$WORK/src" -maxdepth 1 -type d -name 'sqlite3-*' | head -1)
    [ -n "$S" ] || die "apt-get source sqlite3 unpacked nothing"
    (cd "$S" && patch -p1 --forward --quiet <"$PATCH") || die "helpers-outside-cwd.patch does not apply to sqlite3 $SQLITE_VER"
    say "building testfixture and speedtest1 from sqlite3 $SQLITE_VER (about 2 minutes on 2 cores)"
    (cd "$S" && ./configure --with-tcl=/usr/lib/tcl8.6 >"$WORK/configure.log" 2>&1 &&
        make -j"$(nproc)" testfixture speedtest1 >"$WORK/make.log" 2>&1) || {
        tail -30 "$WORK/configure.log" "$WORK/make.log" 2>/dev/null >&2
        die "building testfixture/speedtest1 failed (log above)"
    }
    OUT="$WORK/sqlite"
    mkdir -p "$OUT"
    install -m755 "$S/testfixture" "$S/speedtest1" "$OUT/"
    # the test tree and what its files read next to it (ext/, data files)
    cp -a "$S/test" "$OUT/test"
    [ -d "$S/ext" ] && cp -a "$S/ext" "$OUT/ext"
    echo "$SQLITE_VER" >"$OUT/VERSION"
    rm -rf "$SQLITE_DIR"
    mv "$OUT" "$SQLITE_DIR"
fi

if ! fuse_ok; then
    get_source fuse3 "$FUSE_VER"
    F=$(find "$WORK/src" -maxdepth 1 -type d -name 'fuse3-*' | head -1)
    [ -n "$F" ] || die "apt-get source fuse3 unpacked nothing"
    say "building passthrough_ll from fuse3 $FUSE_VER"
    OUT="$WORK/fuse"
    mkdir -p "$OUT"
    # shellcheck disable=SC2046
    cc -O2 -Wall -o "$OUT/passthrough_ll" "$F/example/passthrough_ll.c" -I"$F/example" \
        $(pkg-config --cflags --libs fuse3) -lpthread 2>"$WORK/cc.log" || {
        cat "$WORK/cc.log" >&2
        die "building passthrough_ll failed"
    }
    echo "$FUSE_VER" >"$OUT/VERSION"
    rm -rf "$FUSE_DIR"
    mv "$OUT" "$FUSE_DIR"
fi
report "${1:-}"
