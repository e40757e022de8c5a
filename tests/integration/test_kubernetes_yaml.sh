#!/usr/bin/env bash
# The Kubernetes examples (packaging/kubernetes/) against the API schema
# (packaging/kubernetes/validate.sh: kubernetes-models' OpenAPI schemas,
# through ajv), and copies broken on purpose must fail: a wrong
# mountPropagation, a non-boolean privileged, a missing containers list.
# Also: what the examples rely on is there (Bidirectional for the sidecar,
# HostToContainer for the application, a Secret, a preStop unmount, the
# health file as liveness probe).  No cluster is contacted.
set -euo pipefail
SRC=${DSQ_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
K=$SRC/packaging/kubernetes
T=$(mktemp -d /tmp/dsqlfs-k8s.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
"$K/validate.sh" "$K/pod.yaml" "$K/deployment.yaml" "$K/secret.yaml" || fail "the examples do not validate"
sed 's/mountPropagation: Bidirectional/mountPropagation: Sideways/' "$K/pod.yaml" > "$T/bad1.yaml"
sed 's/privileged: true/privileged: "yes"/' "$K/deployment.yaml" > "$T/bad2.yaml"
sed 's/^  containers:/  containerz:/' "$K/pod.yaml" > "$T/bad3.yaml"
for b in bad1:pod bad2:deployment bad3:pod; do
    src=${b#*:} b=${b%%:*}
    cmp -s "$T/$b.yaml" "$K/$src.yaml" && fail "$b: the edit did not apply"
    "$K/validate.sh" "$T/$b.yaml" >/dev/null 2>&1 && fail "$b.yaml validated"
done
for f in pod.yaml deployment.yaml; do
    for want in "mountPropagation: Bidirectional" "mountPropagation: HostToContainer" \
        "privileged: true" "secretRef:" "preStop:" "umount /data" ".dsqlfs/health"; do
        grep -qF "$want" "$K/$f" || fail "$f lacks '$want'"
    done
done
echo "test_kubernetes_yaml: ok"
