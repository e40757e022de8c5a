#!/usr/bin/env bash
# A database given to application containers, with podman: the dsqlfs
# image (packaging/build-image.sh: mmdebstrap base + the .deb, offline)
# runs a mount on a host directory shared with rshared propagation; a
# second container (sqlite3 from the same image, the volume with rslave
# propagation, as Kubernetes' HostToContainer) creates, writes and reads a
# database there; a third container on a second dsqlfs container's mount
# of the same store sees the commit and writes back; "podman stop" ends
# each dsqlfs container with a clean unmount (exit status 0, the host
# directory no longer a mount) and nothing acknowledged is lost (the host's
# dsqlfs reads every row from the store, verify passes).  Runs on the
# local store (a directory shared with the containers) and, as
# test_mount_container_s3, on the S3 test server (containers on the host's
# network reach its loopback address).
source "$(dirname "$0")/lib.sh"
need_fuse
SRC=${DSQ_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v podman >/dev/null || {
    [ "${CI:-}" = true ] && fail "podman is not installed (scripts/deps.sh --test)"
    echo "skip: no podman" >&2
    exit 77
}
export CONTAINERS_CONF=$SRC/packaging/image/containers.conf
DEB=$(ls "$DSQ_BUILD"/deb/dsqlfs_*.deb 2>/dev/null | tail -1 || true)
[ -n "$DEB" ] || DEB=$("$SRC/packaging/build-deb.sh" "$DSQ_BUILD/deb" | tail -1)
IMG=$("$SRC/packaging/build-image.sh" "$DEB" | tail -1)
log "image $IMG"

TAG=dsqit-$$-$RANDOM
CONTAINERS=()
VOLS=()
cleanup_containers() {
    local rc=$?
    for c in "${CONTAINERS[@]:-}"; do
        [ -n "$c" ] && podman rm -f -t 2 "$c" >/dev/null 2>&1
    done
    for v in "${VOLS[@]:-}"; do
        [ -n "$v" ] || continue
        grep -q " $v " /proc/mounts && umount -R -l "$v" 2>/dev/null
    done
    (exit $rc)
    cleanup
}
trap cleanup_containers EXIT

# a host directory as a shared mount, so a mount made inside a container
# propagates back (the node side of mountPropagation: Bidirectional)
shared_dir() {
    mkdir -p "$1"
    mount --bind "$1" "$1"
    mount --make-rshared "$1"
    VOLS+=("$1")
}
V1=$T/vol1
V2=$T/vol2
shared_dir "$V1"
shared_dir "$V2"

STORE_ARGS=(--network none)
if [ "$IT_S3" = 1 ]; then
    # the server listens on the host's loopback
    STORE_ARGS=(--network host -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY
                -e AWS_ENDPOINT_URL -e AWS_REGION -e AWS_EC2_METADATA_DISABLED)
else
    mkdir -p "$T/store"
    STORE_ARGS+=(-v "$T/store:$T/store")
fi

run_dsqlfs() { # run_dsqlfs NAME HOSTDIR: a dsqlfs container mounting STORE
    podman run -d --name "$1" --device /dev/fuse --cap-add SYS_ADMIN \
        "${STORE_ARGS[@]}" -v "$2:/mnt/db:rshared" "$IMG" \
        "$STORE" /mnt/db -f -v -o allow_other,maint_interval=0 >/dev/null ||
        fail "podman run $1"
    CONTAINERS+=("$1")
    for _ in $(seq 1 200); do
        grep -q " $2 fuse.dsqlfs " /proc/mounts && return 0
        podman container exists "$1" && [ "$(podman inspect -f '{{.State.Running}}' "$1")" = true ] ||
            { podman logs "$1" >&2; fail "$1 exited"; }
        sleep 0.1
    done
    podman logs "$1" >&2
    fail "$1: the mount did not reach the host at $2"
}
app() { # app HOSTDIR SQL...: sqlite3 in an application container
    local d=$1
    shift
    podman run --rm --network none -v "$d:/data:rslave" --entrypoint sqlite3 \
        "$IMG" -bail /data/app.db "$@"
}

log "dsqlfs container A mounts the store on $V1"
run_dsqlfs "$TAG-a" "$V1"
log "an application container writes through A's mount"
app "$V1" "CREATE TABLE t(id INTEGER PRIMARY KEY, who TEXT);
           INSERT INTO t(who) VALUES ('app1'), ('app1');" || fail "app writes"
eq "$(app "$V1" 'SELECT count(*) FROM t')" 2 "rows read back by an app"
eq "$(cat "$V1/.dsqlfs/health" | head -1)" ok "health on the host"

log "dsqlfs container B mounts the same store on $V2; a third container reads"
run_dsqlfs "$TAG-b" "$V2"
eq "$(app "$V2" 'SELECT group_concat(who) FROM t')" "app1,app1" "rows seen through B"
app "$V2" "INSERT INTO t(who) VALUES ('app3')" || fail "app writes through B"
eq "$(app "$V1" 'SELECT count(*) FROM t')" 3 "B's commit seen through A"

log "podman stop: clean unmounts"
for c in "$TAG-a:$V1" "$TAG-b:$V2"; do
    name=${c%%:*} dir=${c#*:}
    podman stop -t 20 "$name" >/dev/null || fail "podman stop $name"
    eq "$(podman inspect -f '{{.State.ExitCode}}' "$name")" 0 "exit status of $name"
    podman logs "$name" 2>&1 | grep -q "unmounted" || { podman logs "$name" >&2; fail "$name did not log its unmount"; }
    grep -q " $dir fuse" /proc/mounts && fail "$dir still a FUSE mount after podman stop"
done
log "nothing lost"
"$DSQLFS" export "$STORE/app" "$T/out.db" -q || fail "export"
eq "$(sqlite3 "$T/out.db" 'SELECT group_concat(who) FROM t')" "app1,app1,app3" "rows in the store"
"$DSQLFS" verify "$STORE/app" >/dev/null || fail "verify"
echo "test_mount_container: ok"
