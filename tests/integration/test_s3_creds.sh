#!/usr/bin/env bash
# Credentials and endpoints as AWS users have them, on real FUSE mounts of
# the real S3 server (Ceph RGW), with no AWS_ACCESS_KEY_ID in the
# daemons' environment:
#  1. a credential_process helper in ~/.aws/config hands out the server's
#     keys with a short Expiration; the S3 endpoint is the profile's
#     "s3 =" sub-section endpoint_url; the daemon runs the helper again
#     before each Expiration while sqlite3 keeps writing;
#  2. role_arn + source_profile: AssumeRole through the stand-in STS
#     (tests/s3/sts_standin.py), which checks the SigV4 signature with the
#     source profile's keys (which the S3 server does not know) and hands
#     out the server's keys; endpoints from AWS_ENDPOINT_URL_S3 and
#     AWS_ENDPOINT_URL_STS, which beat a dead AWS_ENDPOINT_URL; refreshed
#     before expiry while writing; the second mount sees the first's data;
#  3. a failing helper and a refused AssumeRole fail the mount with a
#     message naming the profile and the cause;
# and no secret (keys, session tokens) in any daemon log or message.
if [ -z "${DSQ_S3_BUCKET:-}" ]; then
    exec bash "$(cd "$(dirname "$0")/../s3" && pwd)/with_rgw.sh" bash "$0" "$@"
fi
export DSQ_IT_STORE=s3
source "$(dirname "$0")/lib.sh"
need_fuse
HERE=$(cd "$(dirname "$0")" && pwd)
STS_STANDIN="$HERE/../s3/sts_standin.py"

RGW_AK=$AWS_ACCESS_KEY_ID
RGW_SK=$AWS_SECRET_ACCESS_KEY
RGW_EP=$AWS_ENDPOINT_URL
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE \
    AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_ENDPOINT_URL_STS
mkdir -p "$T/aws"
export AWS_CONFIG_FILE="$T/aws/config" AWS_SHARED_CREDENTIALS_FILE="$T/aws/credentials"

# no secret in a file ($1) or text
no_secrets() {
    local what=$1 text=$2 s
    for s in "$RGW_SK" "$RGW_AK" basesecret AKIDBASE FwoGZXIvYXdzE helpertoken; do
        case $text in *"$s"*) fail "$what holds a secret ($s)" ;; esac
    done
}

lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }

# write_until DB COUNTFILE N: insert rows until COUNTFILE has N lines
# (credentials fetched N times), a bounded number of rounds; echo rows
write_until() {
    local db=$1 cf=$2 want=$3 i
    for i in $(seq 1 600); do
        sq "$db" "INSERT INTO t(v) VALUES ('row $i')"
        if [ "$(lines "$cf")" -ge "$want" ]; then
            echo "$i"
            return 0
        fi
        sleep 0.2
    done
    fail "credentials were not fetched $want times ($(lines "$cf") in $cf)"
}

log "1. credential_process, the endpoint from the profile's s3 sub-section"
cat >"$T/helper.sh" <<'SH'
#!/bin/sh
# usage: helper.sh RUNS-FILE AK SK [fail]
[ "${4:-}" = fail ] && { echo "helper: no session with the vault" >&2; exit 2; }
echo run >>"$1"
n=$(wc -l <"$1")
exp=$(date -u -d "@$(( $(date +%s) + 303 ))" +%Y-%m-%dT%H:%M:%SZ)
printf '{"Version": 1, "AccessKeyId": "%s", "SecretAccessKey": "%s", "SessionToken": "helpertoken%s", "Expiration": "%s"}\n' "$2" "$3" "$n" "$exp"
SH
chmod +x "$T/helper.sh"
cat >"$T/aws/config" <<CONF
[default]
region = us-east-1
[profile viaproc]
credential_process = "$T/helper.sh" "$T/helper.runs" $RGW_AK $RGW_SK
s3 =
  endpoint_url = $RGW_EP
[profile brokenproc]
credential_process = "$T/helper.sh" "$T/helper.runs" x y fail
s3 =
  endpoint_url = $RGW_EP
[profile db]
role_arn = arn:aws:iam::123456789012:role/dsqlfs
source_profile = base
role_session_name = it-mount
external_id = ext-7
duration_seconds = 900
[profile wrongext]
role_arn = arn:aws:iam::123456789012:role/dsqlfs
source_profile = base
role_session_name = it-mount
external_id = ext-other
CONF
cat >"$T/aws/credentials" <<CRED
[base]
aws_access_key_id = AKIDBASE
aws_secret_access_key = basesecret
CRED

export AWS_PROFILE=viaproc
M1=$T/m1
mount_store "$M1"
sq "$M1/c.db" "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"
# the helper's credentials are due again 3 s after each run (5 minutes
# before an Expiration 303 s away): it must have run three times
n1=$(write_until "$M1/c.db" "$T/helper.runs" 3)
eq "$(sq "$M1/c.db" 'SELECT count(*) FROM t')" "$n1" "rows through the helper's keys"
eq "$(sq "$M1/c.db" 'PRAGMA integrity_check')" ok "integrity"
L1=$T/m1.log
grep -q "credentials from credential_process of profile 'viaproc'" "$L1" ||
    fail "the log does not name the helper: $(grep creds "$L1" | head -3)"
grep -q "endpoint from profile 'viaproc' (its sub-section)" "$L1" ||
    fail "the log does not name the profile's endpoint: $(grep 's3:' "$L1" | head -3)"
grep -q "refreshed credentials from credential_process" "$L1" || fail "no refresh logged"
unmount "$M1"

log "2. role_arn + source_profile through the stand-in STS"
"$PY" "$STS_STANDIN" --port-file "$T/sts.port" --source AKIDBASE:basesecret \
    --issue "$RGW_AK:$RGW_SK" --role arn:aws:iam::123456789012:role/dsqlfs \
    --session it-mount --external-id ext-7 --duration 900 --ttl 303 \
    --log "$T/sts.log" 2>"$T/sts.err" &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$T/sts.port" ] && break; sleep 0.05; done
[ -s "$T/sts.port" ] || fail "the stand-in STS did not start: $(cat "$T/sts.err")"
STS_URL="http://127.0.0.1:$(cat "$T/sts.port")/"
export AWS_PROFILE=db AWS_ENDPOINT_URL_S3="$RGW_EP" AWS_ENDPOINT_URL_STS="$STS_URL"
export AWS_ENDPOINT_URL=http://127.0.0.1:1   # loses to both
M2=$T/m2
mount_store "$M2"
eq "$(sq "$M2/c.db" 'SELECT count(*) FROM t')" "$n1" "the role's mount sees the helper's rows"
n2=$(write_until "$M2/c.db" "$T/sts.log" 3)
eq "$(sq "$M2/c.db" 'SELECT count(*) FROM t')" "$((n1 + n2))" "rows through the role's keys"
grep -qv '^ok' "$T/sts.log" && fail "the stand-in STS refused a request: $(grep -v '^ok' "$T/sts.log")"
L2=$T/m2.log
grep -q "credentials from role arn:aws:iam::123456789012:role/dsqlfs of profile 'db'" "$L2" ||
    fail "the log does not name the role: $(grep creds "$L2" | head -3)"
grep -q "endpoint from AWS_ENDPOINT_URL_S3" "$L2" || fail "the log does not name AWS_ENDPOINT_URL_S3"
grep -q "refreshed credentials from role" "$L2" || fail "no refresh logged"
unmount "$M2"
wait_daemons

log "3. failures name the profile and the cause"
mkdir -p "$T/m3"
MOUNTS+=("$T/m3")
out=$(AWS_PROFILE=brokenproc timeout 120 "$DSQLFS" "$STORE" "$T/m3" -f -v 2>&1) &&
    fail "mounted with a failing helper"
echo "$out" | grep -q "credential_process of profile 'brokenproc'.*exited with status 2: helper: no session with the vault" ||
    fail "failing helper: $out"
no_secrets "the failing helper's message" "$out"
out=$(AWS_PROFILE=wrongext timeout 120 "$DSQLFS" "$STORE" "$T/m3" -f -v 2>&1) &&
    fail "mounted with a refused AssumeRole"
echo "$out" | grep -q "of profile 'wrongext': STS AssumeRole refused (HTTP 403, AccessDenied)" ||
    fail "refused AssumeRole: $out"
no_secrets "the refused AssumeRole's message" "$out"
mountpoint -q "$T/m3" && fail "a refused mount is mounted"

log "no secret in any log"
for f in "$T"/*.log; do no_secrets "$f" "$(cat "$f")"; done
log "ok: the helper ran $(lines "$T/helper.runs") times, the STS answered $(grep -c '^ok' "$T/sts.log") times"
