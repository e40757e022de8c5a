#!/usr/bin/env bash
# The Debian package, installed as a user would: into a throwaway Debian 12
# root (mmdebstrap minbase + man-db + systemd, packaging/rootfs.sh) with
# "apt install ./dsqlfs_VERSION_ARCH.deb" (apt fetches fuse3 and the
# libraries from Debian: the package's Depends are what is tested), then
# dsqlfs --version, man -w, the units pass systemd-analyze verify, a mount
# through the installed helper (mount -t fuse.dsqlfs and an fstab line), a
# database copied in and read back, then apt purge --autoremove and no file
# left behind.  The .deb is built by packaging/build-deb.sh (the CTest
# fixture package_build_deb, into $DSQ_BUILD/deb).
source "$(dirname "$0")/lib.sh"
need_fuse
SRC=${DSQ_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
DEB=$(ls "$DSQ_BUILD"/deb/dsqlfs_*.deb 2>/dev/null | tail -1 || true)
if [ -z "$DEB" ]; then
    log "no .deb in $DSQ_BUILD/deb: building it"
    DEB=$("$SRC/packaging/build-deb.sh" "$DSQ_BUILD/deb" | tail -1)
fi
log "package: $DEB"
deps=$(dpkg-deb -f "$DEB" Depends)
for d in fuse3 libfuse3-3 libcurl4 libsqlite3-0 libzstd1 libxxhash0 libjansson4 libexpat1; do
    grep -qE "(^|, )$d( |,|$)" <<<"$deps" || fail "Depends lacks $d: $deps"
done
[ "$(dpkg-deb -f "$DEB" Package)" = dsqlfs ] || fail "package name"

ROOTFS=$("$SRC/packaging/rootfs.sh" man-db,systemd)
R=$T/root
mkdir -p "$R"
tar -xf "$ROOTFS" -C "$R"
snapshot() { # every path of the root but the pseudo file systems
    (cd "$R" && find . -xdev \( -path ./proc -o -path ./dev -o -path ./sys \
        -o -path ./run -o -path ./tmp \) -prune -o -print | sort)
}
snapshot > "$T/before"
cp "$DEB" "$R/tmp/"
cp /etc/resolv.conf "$R/etc/resolv.conf" 2>/dev/null || true
sqlite3 "$T/app.db" "CREATE TABLE t(x); INSERT INTO t VALUES ('from the host');"
cp "$T/app.db" "$R/tmp/app.db"

# everything in the root runs in a private mount namespace: nothing it
# mounts is seen outside, and all of it goes when the namespace does
cat > "$R/tmp/inside.sh" <<'EOF'
set -eu
export DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin
step() { echo "[inside] $*" >&2; }
step "apt install ./dsqlfs.deb"
dpkg-query -W -f='${Package}\n' | sort > /tmp/base-packages
apt-get update -qq >/dev/null
apt-get install -y -qq /tmp/dsqlfs_*.deb >/tmp/apt.log 2>&1 || { tail -20 /tmp/apt.log >&2; exit 1; }
dsqlfs --version | grep -q '^dsqlfs [0-9]'
man -w dsqlfs | grep -q /usr/share/man/man8/dsqlfs.8
man -w mount.dsqlfs | grep -q /usr/share/man/man8/mount.dsqlfs.8
man -w mount.fuse.dsqlfs >/dev/null
test -x /sbin/mount.dsqlfs
test "$(readlink /sbin/mount.fuse.dsqlfs)" = mount.dsqlfs
test -f /lib/systemd/system/dsqlfs-maintenance@.service
test -f /lib/systemd/system/dsqlfs-maintenance@.timer
step "systemd-analyze verify on every unit of the package"
cp /usr/share/doc/dsqlfs/examples/mnt-db.mount /etc/systemd/system/
mkdir -p /etc/dsqlfs
cp /usr/share/doc/dsqlfs/examples/maintenance-example.conf /etc/dsqlfs/store.conf
out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify \
    dsqlfs-maintenance@store.service dsqlfs-maintenance@store.timer \
    /etc/systemd/system/mnt-db.mount 2>&1) || { echo "$out" >&2; exit 1; }
if [ -n "$out" ]; then echo "systemd-analyze verify: $out" >&2; exit 1; fi
rm -rf /etc/systemd/system/mnt-db.mount /etc/dsqlfs
step "mount -t fuse.dsqlfs through the installed helper"
mkdir -p /srv/store /mnt/db
mount -t fuse.dsqlfs file:///srv/store /mnt/db -o maint_interval=0
grep -q ' /mnt/db fuse.dsqlfs ' /proc/mounts
cp /tmp/app.db /mnt/db/app.db
grep -qx ok /mnt/db/.dsqlfs/health
umount /mnt/db
step "an fstab line"
echo 'file:///srv/store /mnt/db fuse.dsqlfs _netdev,x-systemd.requires=network-online.target,ro 0 0' >> /etc/fstab
mount /mnt/db
grep -q ' /mnt/db fuse.dsqlfs ro,' /proc/mounts
cmp /mnt/db/app.db /tmp/app.db
umount /mnt/db
dsqlfs export file:///srv/store/app /tmp/back.db -q
cmp /tmp/back.db /tmp/app.db
step "apt purge --autoremove dsqlfs"
apt-get purge -y -qq --autoremove dsqlfs >/tmp/apt.log 2>&1 || { tail -20 /tmp/apt.log >&2; exit 1; }
if dpkg -s dsqlfs >/dev/null 2>&1; then echo "dsqlfs still installed" >&2; exit 1; fi
for f in /usr/bin/dsqlfs /sbin/mount.dsqlfs /sbin/mount.fuse.dsqlfs; do
    if [ -e "$f" ] || [ -L "$f" ]; then echo "$f still there" >&2; exit 1; fi
done
# dependencies apt keeps because the base recommends them (ca-certificates)
# go too, so that what is left can only be ours
kept=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' | awk '$1 == "ii" {print $2}' | sort | comm -13 /tmp/base-packages -)
if [ -n "$kept" ]; then
    step "purging what apt kept: $(echo $kept)"
    apt-get purge -y -qq $kept >/tmp/apt.log 2>&1 || { tail -20 /tmp/apt.log >&2; exit 1; }
fi
rm -f /tmp/base-packages
sed -i '/fuse.dsqlfs/d' /etc/fstab
rm -rf /srv/store /mnt/db
step ok
EOF
log "install, use and purge in the throwaway root"
unshare --mount --fork sh -c '
    set -e
    R=$1
    mount --make-rprivate /
    mount --rbind /dev "$R/dev"
    mount -t proc proc "$R/proc"
    mount -t sysfs sys "$R/sys"
    mount -t tmpfs tmp "$R/run"
    chroot "$R" sh /tmp/inside.sh
' sh "$R" || fail "inside the throwaway root"

log "nothing left behind"
rm -f "$R/etc/resolv.conf" "$R/tmp/inside.sh"
snapshot > "$T/after"
# package manager state and caches change with any install; not files of ours
left=$(comm -13 "$T/before" "$T/after" | grep -vE '^\./(var/lib/(apt|dpkg)|var/cache|var/log)(/|$)|^\./etc/ld\.so\.cache$' || true)
[ -z "$left" ] || fail "left behind after purge: $(echo $left)"
for p in $(dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./|/|'); do
    if [ -e "$R$p" ] || [ -L "$R$p" ]; then fail "a file of the package is still there: $p"; fi
done
log "the root after purge has the files it had before, no more, no fewer"
gone=$(comm -23 "$T/before" "$T/after" | grep -vE '^\./(var/lib/(apt|dpkg)|var/cache|var/log)(/|$)|^\./etc/resolv\.conf$' || true)
[ -z "$gone" ] || fail "removed by install+purge though not ours: $gone"
echo "test_package_deb: ok"
