#!/usr/bin/env bash
# Build the dsqlfs OCI image offline: a Debian 12 base from Debian's
# packages (mmdebstrap, cached by packaging/rootfs.sh; packaging/image/
# packages lists them), imported with podman, plus the project's .deb
# installed by "podman build" (packaging/image/Containerfile).  No registry
# is contacted.
#
#   packaging/build-image.sh [DEB] [--save FILE]
#
# DEB defaults to a fresh packaging/build-deb.sh.  The image is tagged
# localhost/dsqlfs:VERSION and localhost/dsqlfs:latest; --save also writes
# it as an OCI archive (podman load / ctr import on a cluster node).
# Prints the image name as its last line.  On hosts where podman needs it
# (docs/containers.md) set CONTAINERS_CONF=packaging/image/containers.conf.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
DEB="" SAVE=""
while [ $# -gt 0 ]; do
    case $1 in
    --save) SAVE=$2; shift 2 ;;
    *) DEB=$1; shift ;;
    esac
done
command -v podman >/dev/null || { echo "build-image: podman is not installed (scripts/deps.sh --test)" >&2; exit 1; }
[ -n "$DEB" ] || DEB=$("$SRC/packaging/build-deb.sh" | tail -1)
[ -f "$DEB" ] || { echo "build-image: no such package: $DEB" >&2; exit 1; }
VERSION=$(dpkg-deb -f "$DEB" Version)

ROOTFS=$("$SRC/packaging/rootfs.sh" $(grep -v '^#' "$SRC/packaging/image/packages"))
KEY=$(basename "$ROOTFS" .tar | sed 's/^rootfs-//')
BASE=localhost/dsqlfs-base:$KEY
if ! podman image exists "$BASE"; then
    echo "build-image: podman import $ROOTFS as $BASE" >&2
    podman import "$ROOTFS" "$BASE" >/dev/null
fi
CTX=$(mktemp -d /tmp/dsqlfs-image.XXXXXX)
trap 'rm -rf "$CTX"' EXIT
cp "$DEB" "$CTX/dsqlfs.deb"
cp "$SRC/packaging/image/Containerfile" "$CTX/"
echo "build-image: podman build localhost/dsqlfs:$VERSION from $BASE" >&2
podman build --network none --build-arg BASE="$BASE" \
    -t "localhost/dsqlfs:$VERSION" -t localhost/dsqlfs:latest \
    -f "$CTX/Containerfile" "$CTX" >"$CTX/build.log" 2>&1 || {
    tail -30 "$CTX/build.log" >&2
    echo "build-image: podman build failed (log above)" >&2
    exit 1
}
if [ -n "$SAVE" ]; then
    rm -f "$SAVE"
    podman save --format oci-archive -o "$SAVE" "localhost/dsqlfs:$VERSION"
    echo "build-image: saved $SAVE" >&2
fi
echo "localhost/dsqlfs:$VERSION"
