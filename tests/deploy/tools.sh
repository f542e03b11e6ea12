#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Installs the deployment validators (package.json / package-lock.json beside this script: the
# Kubernetes and KEDA schemas of kubernetes-models, the compose specification's schema, the
# Dockerfile parser and linter dockerfile-utils, ajv, yaml) with `npm ci` into <dir>/node_modules,
# the setup of the ctest fixture deploy_tools. A second run with the same lock file does nothing.
# Needs node and npm (./adi installs Debian's nodejs and npm) and the npm registry.
#   tools.sh <dir>
set -euo pipefail
dir=${1:?usage: tools.sh <dir>}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

for t in node npm; do
    command -v "$t" >/dev/null 2>&1 || {
        echo "tools.sh: $t not found: install the packages of ./adi (./adi deps)" >&2
        exit 1
    }
done
mkdir -p "$dir"
stamp="$dir/node_modules/.adi-lock.sha256"
want=$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "deploy tools are current in $dir"
    exit 0
fi
cp "$here/package.json" "$here/package-lock.json" "$dir/"
# --prefer-offline: the npm cache (~/.npm) serves what it holds; --ignore-scripts: nothing of these
# packages runs at install time.
(cd "$dir" && npm ci --prefer-offline --ignore-scripts --no-audit --no-fund --loglevel=error)
echo "$want" >"$stamp"
echo "deploy tools installed in $dir: $(node --version), $(cd "$dir" && npm ls --depth=0 2>/dev/null | tail -n +2 | tr -d '\n')"
