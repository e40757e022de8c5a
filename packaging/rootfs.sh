#!/usr/bin/env bash
# A Debian 12 root file system as a tarball, made by mmdebstrap from
# Debian's packages (no registry, no image download), cached outside any
# checkout and keyed by its package list: rebuilt only when missing.
#
#   packaging/rootfs.sh PKG[,PKG...]      prints the tarball's path
#
# DSQ_ROOTFS_CACHE is the cache directory (default /var/cache/dsqlfs).
# Used by packaging/build-image.sh and the package and container tests.
set -euo pipefail
CACHE=${DSQ_ROOTFS_CACHE:-/var/cache/dsqlfs}
SUITE=bookworm
pkgs=$(printf '%s\n' "$@" | tr ', ' '\n\n' | sed '/^$/d' | sort -u | paste -sd, -)
key=$(printf '%s minbase %s\n' "$SUITE" "$pkgs" | sha256sum | cut -c1-16)
tar=$CACHE/rootfs-$SUITE-$key.tar
if [ ! -s "$tar" ]; then
    command -v mmdebstrap >/dev/null || {
        echo "rootfs: mmdebstrap is not installed (scripts/deps.sh --test)" >&2
        exit 1
    }
    mkdir -p "$CACHE"
    tmp=$(mktemp "$CACHE/.rootfs.XXXXXX.tar")
    trap 'rm -f "$tmp"' EXIT
    echo "rootfs: mmdebstrap $SUITE minbase + $pkgs -> $tar" >&2
    mmdebstrap --variant=minbase --quiet ${pkgs:+--include="$pkgs"} \
        "$SUITE" "$tmp" >&2
    printf '%s\n' "$pkgs" > "$tar.packages"
    mv "$tmp" "$tar"
    trap - EXIT
fi
echo "$tar"
