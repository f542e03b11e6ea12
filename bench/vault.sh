#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/vault.sh <gateway url>: the vault figures of issue 5, against a running suite whose env
# (REDIS_URL, ADI_BIN_DIR, ADI_REPO) comes from tests/harness/with-env.sh, as bench/auth.sh:
#   create (gateway)  POST /api/platform-credentials/ with wrk (bench/vault_create.lua): a new
#                     credential per request (64-byte random access token) as a tenant ADMIN
#   create (bus)      vault.create over the bus from BENCH_CALLERS (8) concurrent callers
#   decrypt (bus)     vault.decrypt (internal op: the task-runner principal) of those credentials,
#                     with a warm DEK cache, same callers
#   aes-gcm           raw AES-256-GCM seal+open of a 64-byte token with libs/crypto, one core
# The bus figures come from adi-vault-bench (bench/vault_bench.c; VAULT_BENCH_BIN, default the
# release build's build/release/bench/adi-vault-bench). BENCH_DURATION (10s) per phase,
# BENCH_CONNECTIONS (64) wrk connections. Writes bench/results/vault.json; exits 1 when a phase
# saw errors.
set -euo pipefail
url="${1:?usage: bench/vault.sh <gateway url>}"
url="${url%/}"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT="$HERE/results"
PY=/usr/bin/python3
DURATION=${BENCH_DURATION:-10s}
SECONDS_PER_PHASE=${DURATION%s}
CALLERS=${BENCH_CALLERS:-8}
CONNS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
TOOL=${VAULT_BENCH_BIN:-$HERE/../build/release/bench/adi-vault-bench}
[[ -x $TOOL ]] || { echo "vault.sh: $TOOL not built (cmake --build --preset release)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "vault.sh: wrk not found (apt-get install wrk)" >&2; exit 1; }
mkdir -p "$OUT"

# An ADMIN of a fresh tenant (a cheap hash: the login is not what is measured).
tenant=$("$PY" -c 'import uuid; print(uuid.uuid4())')
BENCH_PASSWORD="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export BENCH_PASSWORD
PASSWORD_ITERATIONS=1000 "$ADI_BIN_DIR/adi-admin" create-user --tenant "$tenant" \
    --email vault-admin@bench.example --password-env BENCH_PASSWORD --role ADMIN >/dev/null
body=$(printf '{"username": "vault-admin@bench.example", "password": "%s"}' "$BENCH_PASSWORD")
token=$(curl -s --max-time 30 -H 'Content-Type: application/json' -d "$body" \
    "$url/api/auth/login/" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["access"])')

echo "== create through the gateway: POST /api/platform-credentials/ ($DURATION, $THREADS threads, $CONNS connections)"
BENCH_AUTH=$token wrk -t "$THREADS" -c "$CONNS" -d "$DURATION" --latency \
    -s "$HERE/vault_create.lua" "$url/api/platform-credentials/" >"$OUT/vault-create.txt"
grep -v '^ADI_RESULT' "$OUT/vault-create.txt"
gw=$(sed -n 's/^ADI_RESULT //p' "$OUT/vault-create.txt")

echo "== the vault over the bus ($CALLERS callers) and raw AES-256-GCM"
status=0
busjson=$(mktemp)
trap 'rm -f "$busjson"' EXIT
"$TOOL" --callers "$CALLERS" --seconds "$SECONDS_PER_PHASE" --json "$busjson" || status=1

"$PY" - "$OUT" "$gw" "$url" "$busjson" <<'PY' || status=1
import datetime, json, os, sys
out, raw, url = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
bus = json.load(open(sys.argv[4]))
secs = raw["duration_us"] / 1e6
gw = {"requests": raw["requests"], "requests_per_sec": round(raw["requests"] / secs, 1),
      "latency_ms": {k: round(v / 1000.0, 3) for k, v in raw["latency_us"].items()},
      "errors": raw["errors"]}
aead = bus["aes_gcm_seal_open_per_sec_one_core"]
doc = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
       "gateway": url, "machine": {"cpus": os.cpu_count()},
       "create_gateway": gw, "create_bus": bus["create"], "decrypt_bus": bus["decrypt"],
       "aes_gcm_seal_open_per_sec_one_core": aead}
json.dump(doc, open(os.path.join(out, "vault.json"), "w"), indent=2)
print(f"\ncredential create: {gw['requests_per_sec']}/s through the gateway, "
      f"{bus['create']['per_sec']}/s over the bus; decrypt (warm DEK cache): "
      f"{bus['decrypt']['per_sec']}/s; raw AES-256-GCM seal+open: {aead:.0f}/s on one core "
      f"({aead / max(bus['decrypt']['per_sec'], 1):.0f}x decrypt)")
print(f"written {os.path.join(out, 'vault.json')}")
bad = sum(raw["errors"].values()) > 0
if bad:
    print("vault.sh: some gateway requests failed or answered non-2xx", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
exit $status
