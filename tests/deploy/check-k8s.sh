#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Renders k8s/base and each overlay with `kubectl kustomize` (kustomize built into kubectl: v2.0.3
# in Debian 12's kubernetes-client 1.20, v5 in current kubectl; the kustomizations are written for
# both) and validates every rendered object with validate.js (schemas and the suite's rules).
#   check-k8s.sh <repo> <out dir>     (NODE_PATH and ADI_BINS as validate.js needs them)
set -euo pipefail
repo=${1:?usage: check-k8s.sh <repo> <out dir>}
out=${2:?usage: check-k8s.sh <repo> <out dir>}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

command -v kubectl >/dev/null 2>&1 || {
    echo "check-k8s.sh: kubectl not found: install the packages of ./adi (./adi deps)" >&2
    exit 1
}
mkdir -p "$out"
echo "kubectl: $(kubectl version --client 2>/dev/null | head -n 2 | tr '\n' ' ')"
args=()
for o in base overlays/dev overlays/prod; do
    name=${o#overlays/}
    # kustomize v5 warns about the fields kept for v2 (commonLabels, bases): not an error.
    if ! kubectl kustomize "$repo/k8s/$o" >"$out/$name.yaml" 2>"$out/$name.err"; then
        cat "$out/$name.err" >&2
        echo "check-k8s.sh: kubectl kustomize k8s/$o failed" >&2
        exit 1
    fi
    echo "rendered k8s/$o: $(grep -c '^kind:' "$out/$name.yaml") objects"
    args+=("$name=$out/$name.yaml")
done
exec node "$here/validate.js" k8s "$repo" "${args[@]}"
