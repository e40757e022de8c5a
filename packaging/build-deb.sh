#!/usr/bin/env bash
# Build the Debian package dsqlfs_VERSION_ARCH.deb with Debian's own tools
# (debhelper, dpkg-buildpackage), from a clean checkout of this tree: the
# files git tracks, as they are in the work tree (nothing built, nothing
# untracked), then check it with lintian (errors fail the build).
#
#   packaging/build-deb.sh [OUTDIR]        (default: build/deb)
#
# The package's version is the project's (CMakeLists.txt); debian/changelog
# is written here from it, so the two cannot drift.  Prints the path of the
# .deb as its last line.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$SRC/build/deb}
"$SRC/scripts/deps.sh" --package

VERSION=$(sed -n 's/^project(dsqlfs VERSION \([0-9][0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
[ -n "$VERSION" ] || { echo "build-deb: no version in CMakeLists.txt" >&2; exit 1; }
ARCH=$(dpkg-architecture -qDEB_HOST_ARCH)
W=$(mktemp -d /tmp/dsqlfs-deb.XXXXXX)
trap 'rm -rf "$W"' EXIT
TREE=$W/dsqlfs-$VERSION
mkdir -p "$TREE"

# the clean checkout
if git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    REV=$(git -C "$SRC" stash create 2>/dev/null || true)
    [ -n "$REV" ] || REV=HEAD
    git -C "$SRC" archive --format=tar "$REV" | tar -xf - -C "$TREE"
    DESC="commit $(git -C "$SRC" rev-parse --short HEAD)$( [ "$REV" = HEAD ] || echo ' with local changes')"
    WHEN=$(git -C "$SRC" log -1 --format=%ct HEAD)
else
    tar -C "$SRC" --exclude='./build*' --exclude=./.git -cf - . | tar -xf - -C "$TREE"
    DESC="a source tree without git"
    WHEN=$(date +%s)
fi
cp -r "$TREE/packaging/debian" "$TREE/debian"
cat > "$TREE/debian/changelog" <<EOF
dsqlfs ($VERSION) unstable; urgency=medium

  * dsqlfs $VERSION, built from $DESC.

 -- dsqlfs developers <dsqlfs@example.org>  $(date -R -u -d "@$WHEN")
EOF

echo "build-deb: building dsqlfs $VERSION ($ARCH) in $TREE" >&2
(cd "$TREE" && DEB_BUILD_OPTIONS="parallel=$(nproc)" \
    dpkg-buildpackage -b -us -uc >"$W/build.log" 2>&1) || {
    tail -40 "$W/build.log" >&2
    echo "build-deb: dpkg-buildpackage failed (log above)" >&2
    exit 1
}
DEB=$W/dsqlfs_${VERSION}_${ARCH}.deb
[ -f "$DEB" ] || { echo "build-deb: $DEB was not made" >&2; exit 1; }

# lintian: errors fail, warnings are shown
if ! lintian --fail-on error --tag-display-limit 0 "$DEB" >"$W/lintian.log" 2>&1; then
    cat "$W/lintian.log" >&2
    echo "build-deb: lintian found errors" >&2
    exit 1
fi
[ -s "$W/lintian.log" ] && sed 's/^/lintian: /' "$W/lintian.log" >&2

mkdir -p "$OUT"
rm -f "$OUT"/dsqlfs_*.deb
cp "$DEB" "$OUT/"
echo "$OUT/$(basename "$DEB")"
