#!/usr/bin/env bash
# Validate Kubernetes manifests against the API schema (validate.mjs, with
# the npm packages kubernetes-models and yaml, installed once into a cache
# outside any checkout: DSQ_K8S_VALIDATE_DIR, default
# /var/cache/dsqlfs/k8s-validate).
#   packaging/kubernetes/validate.sh [FILE.yaml...]   (default: the examples)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${DSQ_K8S_VALIDATE_DIR:-/var/cache/dsqlfs/k8s-validate}
PKGS=(kubernetes-models@5.1.0 yaml@2.9.1)
command -v node >/dev/null && command -v npm >/dev/null || {
    echo "validate: node and npm are needed (scripts/deps.sh --test)" >&2
    exit 1
}
stamp="$DIR/.installed-$(printf '%s\n' "${PKGS[@]}" | sha256sum | cut -c1-12)"
if [ ! -e "$stamp" ]; then
    mkdir -p "$DIR"
    (cd "$DIR" && npm install --no-audit --no-fund --silent "${PKGS[@]}") >&2
    touch "$stamp"
fi
[ $# -gt 0 ] || set -- "$HERE"/pod.yaml "$HERE"/deployment.yaml "$HERE"/secret.yaml
NODE_PATH=$DIR/node_modules exec node "$HERE/validate.mjs" "$@"
