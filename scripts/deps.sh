#!/usr/bin/env bash
# Install what dsqlfs needs to build and test on Debian 12, if missing.
#   scripts/deps.sh          build and runtime packages
#   scripts/deps.sh --package  also Debian's packaging tools (debhelper,
#                            lintian: packaging/build-deb.sh)
#   scripts/deps.sh --test   also what the tests use (clang for fuzzing,
#                            Python's SQLAlchemy/Alembic, the Ceph S3 server,
#                            the packaging tools, podman and mmdebstrap for
#                            the package and container tests, man-db, and
#                            what tests/sqlite/build.sh builds SQLite's and
#                            libfuse's test programs with)
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_PKGS=(build-essential cmake pkg-config libfuse3-dev fuse3
            libcurl4-openssl-dev libssl-dev libmsgpack-dev libjansson-dev
            libsqlite3-dev sqlite3 check libexpat1-dev libzstd-dev
            libxxhash-dev openssl)
PACKAGE_PKGS=(debhelper dpkg-dev fakeroot lintian git)
TEST_PKGS=(clang libclang-rt-14-dev iproute2 python3 python3-sqlalchemy
           python3-alembic procps psmisc util-linux
           "${PACKAGE_PKGS[@]}" podman runc mmdebstrap uidmap man-db
           groff-base systemd nodejs
           tcl-dev) # SQLite's TCL tests: testfixture (dpkg-dev: apt-get source)

pkgs=("${BUILD_PKGS[@]}")
[ "${1:-}" = "--package" ] && pkgs+=("${PACKAGE_PKGS[@]}")
[ "${1:-}" = "--test" ] && pkgs+=("${TEST_PKGS[@]}")

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "deps.sh: missing packages: ${missing[*]} (run as root to install)" >&2
        exit 1
    fi
    echo "deps.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/dsqlfs-apt.log 2>&1 || {
        tail -20 /tmp/dsqlfs-apt.log >&2
        echo "deps.sh: apt-get install failed (log above)" >&2
        exit 1
    }
fi
if [ "${1:-}" = "--test" ]; then
    tests/s3/rgw.sh install >/dev/null
fi
