#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_adi.sh <parent> <binary...>: drives the real ./adi as the README's first command does, on
# the binaries given (adi-admin, adi-gateway and the services; linked into a private build tree,
# ADI_BUILD_DIR) with --no-build, in a throw-away folder under <parent> (ADI_DATA_DIR, ADI_RUN_DIR,
# ADI_ENV_FILE) and on free loopback ports picked now (ADI_HTTP_PORT, ADI_REDIS_PORT, ADI_PG_PORT,
# ADI_OPS_PORT_*), so neither the test stack nor a developer's running `./adi up` is touched:
#
#   up -d --no-build    returns, GET /api/health/ answers 200 at once; `status` lists every process
#                       running and the health answer
#   signup              POST /api/tenants/ -> 201
#   down                returns; no process of the run is left (the pids and every member of their
#                       sessions, postgres backends included); Redis saved its dataset
#   up -d --no-build    again, on new free ports
#   login               POST /api/auth/login/ as the signed-up admin -> 200, and GET /api/tenants/
#                       with the token lists the tenant: the data survived `down`
#   down                as above; no sanitizer report in any log
#
# apt is never run (ADI_SKIP_DEPS=1: ensure_packages only reports a missing package). The EXIT trap
# stops whatever the run started (./adi down, then SIGKILL by pid to anything left) and removes the
# folder, keeping the logs of a failed run in <parent>/adi-up.logs.
set -euo pipefail

ADI_ME=test_adi.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ADI="$REPO/adi"
# shellcheck source-path=SCRIPTDIR source=../../scripts/lib.sh
. "$REPO/scripts/lib.sh"

[[ $# -ge 2 ]] || {
    echo "usage: test_adi.sh <parent> <binary...>" >&2
    exit 2
}
PARENT="$1"
shift

PASSED=0
WORK=""
SNAPS=()

step() {
    printf '%s: --- %s\n' "$ADI_ME" "$*"
}

fail() {
    adi_say "FAIL: $*"
    exit 1
}

# proc_stat PID: prints "state ppid session starttime" of a process; fails when it is gone.
proc_stat() {
    local st f
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    read -r -a f <<<"$st"
    printf '%s %s %s %s\n' "${f[0]}" "${f[1]}" "${f[3]}" "${f[19]}"
}

# snapshot FILE: records every process the running suite consists of, one "pid starttime name"
# line each: the pids of $ADI_RUN_DIR/pids (each started in its own session: setsid, or pg_ctl for
# the postmaster), then every process descending from them or sharing their sessions (postgres
# backends and workers, which run in sessions of their own).
snapshot() {
    local out="$1" f pid name st state sid start p all="$WORK/all-procs"
    : >"$out"
    for f in "$ADI_RUN_DIR"/pids/*.pid; do
        [[ -f "$f" ]] || continue
        name=$(basename "$f" .pid)
        pid=$(head -n1 "$f" | tr -dc '0-9')
        st=$(proc_stat "$pid") || fail "$name (pid $pid of $f) is not running"
        read -r state _ sid start <<<"$st"
        [[ $state != Z ]] || fail "$name (pid $pid) is a zombie"
        [[ $sid == "$pid" ]] || fail "$name (pid $pid) does not lead its own session ($sid)"
        echo "$pid $start $name" >>"$out"
    done
    [[ -s "$out" ]] || fail "no pid files in $ADI_RUN_DIR/pids"
    # "pid state ppid sid start" of every process, then the closure over parent and session.
    : >"$all"
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        st=$(proc_stat "$pid") || continue
        echo "$pid $st" >>"$all"
    done
    awk 'NR == FNR { top[$1] = 1; next }
         { pid[NR] = $1; state[NR] = $2; ppid[NR] = $3; sid[NR] = $4; start[NR] = $5; n = NR }
         END {
             for (k in top) mine[k] = 1
             do {
                 grew = 0
                 for (i = 1; i <= n; i++)
                     if (!(pid[i] in mine) && state[i] != "Z" && (ppid[i] in mine || sid[i] in top)) {
                         mine[pid[i]] = 1; grew = 1
                         print pid[i], start[i], "child-of-" ppid[i]
                     }
             } while (grew)
         }' "$out" "$all" >"$out.more"
    cat "$out.more" >>"$out"
    rm -f "$out.more" "$all"
}

# leftovers FILE: prints every process of FILE still running (same pid and start time, not a
# zombie); fails when there is none.
leftovers() {
    local pid start name st state now found=1
    while read -r pid start name; do
        st=$(proc_stat "$pid") || continue
        read -r state _ _ now <<<"$st"
        [[ $state != Z && $now == "$start" ]] || continue
        echo "$name pid $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
        found=0
    done <"$1"
    return $found
}

# Sanitizer reports in the logs of the run (the current ones and the previous run's, *.log.1).
check_logs() {
    local f bad=0
    for f in "$ADI_RUN_DIR"/logs/adi-*.log*; do
        [[ -f "$f" ]] || continue
        if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: [A-Za-z]+Sanitizer' "$f"; then
            adi_say "sanitizer report in $f:"
            grep -nE -A40 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$f" | head -n 80 >&2
            bad=1
        fi
    done
    [[ $bad == 0 ]] || fail "sanitizer reports in the logs"
}

cleanup() {
    local rc=$? s pgreal="" left
    trap - EXIT INT TERM
    [[ -n "$WORK" && -d "$WORK" ]] || exit "$rc"
    if [[ $PASSED != 1 ]]; then
        [[ $rc != 0 ]] || rc=1
        for s in "$WORK"/*.out; do
            [[ -s "$s" ]] || continue
            echo "----- $(basename "$s") -----" >&2
            tail -n 40 "$s" >&2
        done
        for s in "$ADI_RUN_DIR"/logs/*.log; do
            [[ -s "$s" ]] || continue
            echo "----- tail of $s -----" >&2
            tail -n 30 "$s" >&2
        done
        rm -rf "$PARENT/adi-up.logs"
        cp -r "$ADI_RUN_DIR/logs" "$PARENT/adi-up.logs" 2>/dev/null &&
            adi_say "the logs of this run are in $PARENT/adi-up.logs"
        ADI_STOP_GRACE=10 "$ADI" down >"$WORK/cleanup-down.out" 2>&1 || true
    else
        rm -rf "$PARENT/adi-up.logs"
    fi
    # Anything still running (down failed or was never reached): SIGKILL, by pid and start time.
    for s in "${SNAPS[@]}"; do
        [[ -f "$s" ]] || continue
        left=$(leftovers "$s") || continue
        adi_say "killing what is left of the run: $left"
        while read -r pid start _; do
            [[ "$(proc_stat "$pid" 2>/dev/null | cut -d' ' -f4)" == "$start" ]] &&
                kill -KILL "$pid" 2>/dev/null
        done <"$s"
    done
    # As root the cluster may live outside (adi_pg_datadir) with $ADI_DATA_DIR/pg a symlink to it.
    [[ -L "$ADI_DATA_DIR/pg" ]] && pgreal=$(readlink -f "$ADI_DATA_DIR/pg")
    [[ -n "$pgreal" && "$pgreal" == /var/lib/adinsights/* ]] && rm -rf "$pgreal"
    rm -rf "$WORK"
    exit "$rc"
}

# http METHOD PATH [BODY] [TOKEN]: sets CODE and writes the reply body to $WORK/body.
http() {
    local args=(-s -o "$WORK/body" -w '%{http_code}' --max-time 30 -X "$1"
        -H 'Content-Type: application/json')
    [[ -n "${4:-}" ]] && args+=(-H "Authorization: Bearer $4")
    # The body (a password) on stdin, not on a command line other users can read.
    if [[ -n "${3:-}" ]]; then
        CODE=$(curl "${args[@]}" --data-binary @- "$URL$2" <<<"$3") || CODE=000
    else
        CODE=$(curl "${args[@]}" "$URL$2") || CODE=000
    fi
}

# json EXPR: evaluates EXPR on the reply body (as `b`) with python3 and prints the result.
json() {
    /usr/bin/python3 -c 'import json, sys; b = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
        "$WORK/body" "$1"
}

# pick_ports: free loopback ports for every listener of the suite, exported for ./adi.
pick_ports() {
    local ports i v
    mapfile -t ports < <(adi_free_ports $((${#ADI_SERVICES[@]} + 4)))
    export ADI_HTTP_PORT=${ports[0]} ADI_REDIS_PORT=${ports[1]} ADI_PG_PORT=${ports[2]}
    export ADI_OPS_PORT_GATEWAY=${ports[3]}
    for i in "${!ADI_SERVICES[@]}"; do
        v="ADI_OPS_PORT_$(adi_svc_var "${ADI_SERVICES[$i]}")"
        export "$v=${ports[$((i + 4))]}"
    done
    URL="http://127.0.0.1:$ADI_HTTP_PORT"
}

# up N: ./adi up -d --no-build on new ports; checks health right away and ./adi status.
up() {
    local n="$1" p
    pick_ports
    step "./adi up -d --no-build ($n; gateway on $URL)"
    "$ADI" up -d --no-build >"$WORK/up$n.out" 2>&1 || fail "./adi up -d --no-build failed"
    grep -q "the suite is up: $URL" "$WORK/up$n.out" || fail "./adi up did not report $URL"
    CODE=$(adi_http_code "$URL/api/health/")
    [[ $CODE == 200 ]] || fail "GET /api/health/ right after up -d: $CODE, not 200"
    SNAPS+=("$WORK/procs$n")
    snapshot "$WORK/procs$n"
    [[ $(grep -vc ' child-of-' "$WORK/procs$n") == $((${#ADI_SERVICES[@]} + 3)) ]] ||
        fail "expected pid files for redis, postgres, $((${#ADI_SERVICES[@]} + 1)) adi processes: $(cat "$WORK/procs$n")"

    step "./adi status ($n)"
    "$ADI" status >"$WORK/status$n.out" 2>&1 || fail "./adi status failed"
    for p in redis-server postgres adi-gateway "${ADI_SERVICES[@]/#/adi-}"; do
        grep -qE "^$p +[0-9]+ +running " "$WORK/status$n.out" || fail "./adi status: $p is not running"
    done
    grep -q "^adi-task-runner .*ops $ADI_OPS_PORT_TASK_RUNNER\$" "$WORK/status$n.out" ||
        fail "./adi status does not show the ops port $ADI_OPS_PORT_TASK_RUNNER"
    grep -q '(HTTP 200)' "$WORK/status$n.out" || fail "./adi status: health is not 200"
    cat "$WORK/status$n.out"
}

# down N: ./adi down; nothing of run N is left, pid files and the run's env are gone.
down() {
    local n="$1" left rc
    step "./adi down ($n)"
    "$ADI" down >"$WORK/down$n.out" 2>&1 || fail "./adi down failed"
    cat "$WORK/down$n.out"
    if left=$(leftovers "$WORK/procs$n"); then
        fail "still running after ./adi down: $left"
    fi
    compgen -G "$ADI_RUN_DIR/pids/*.pid" >/dev/null && fail "pid files left: $(ls "$ADI_RUN_DIR/pids")"
    [[ ! -e "$ADI_RUN_DIR/env" ]] || fail "$ADI_RUN_DIR/env is left"
    [[ -s "$ADI_DATA_DIR/redis/dump.rdb" ]] || fail "redis did not save its dataset (SHUTDOWN SAVE)"
    rc=0
    "$ADI" status >"$WORK/status-down$n.out" 2>&1 || rc=$?
    [[ $rc == 3 ]] || fail "./adi status after down: exit $rc, expected 3 (not running)"
    check_logs
}

trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$PARENT"
WORK=$(mktemp -d "$(readlink -f "$PARENT")/adi-up.XXXXXX")
# As root, PostgreSQL runs as the postgres user: let it reach the cluster under $WORK/data.
chmod 755 "$WORK"
mkdir -p "$WORK/build/bin"
for b in "$@"; do
    ln -s "$(readlink -f "$b")" "$WORK/build/bin/$(basename "$b")"
done
# The variables file: only what the test wants (a developer's ./.env never applies); the
# services hash passwords with few iterations, sanitizer builds are slow.
printf 'PASSWORD_ITERATIONS=1000\n' >"$WORK/adi.env"

export ADI_BUILD_DIR="$WORK/build" ADI_DATA_DIR="$WORK/data" ADI_RUN_DIR="$WORK/run"
export ADI_ENV_FILE="$WORK/adi.env" ADI_SKIP_DEPS=1 ADI_UP_TIMEOUT=${ADI_UP_TIMEOUT:-120}
unset HTTP_HOST JWT_SIGNING_KEY

EMAIL="admin-$$-$RANDOM@example.com"
PASSWORD=$(adi_random_secret | tr -dc 'A-Za-z0-9' | head -c 24)
TENANT="adi-test-$$"

up 1
step "signup POST /api/tenants/"
http POST /api/tenants/ "{\"name\": \"$TENANT\", \"admin_email\": \"$EMAIL\", \"admin_password\": \"$PASSWORD\"}"
[[ $CODE == 201 ]] || fail "POST /api/tenants/: $CODE, not 201: $(head -c 300 "$WORK/body")"
TENANT_ID=$(json 'str(b["id"])')
[[ "$(json 'b["name"]')" == "$TENANT" ]] || fail "signup answered another name: $(head -c 300 "$WORK/body")"
echo "tenant $TENANT_ID"
down 1

up 2
step "login POST /api/auth/login/ after a restart"
http POST /api/auth/login/ "{\"username\": \"$EMAIL\", \"password\": \"$PASSWORD\"}"
[[ $CODE == 200 ]] || fail "POST /api/auth/login/: $CODE, not 200: $(head -c 300 "$WORK/body")"
TOKEN=$(json 'b["access"]')
[[ "$(json 'str(b["tenant_id"])')" == "$TENANT_ID" ]] || fail "login answered another tenant_id"
http GET /api/tenants/ "" "$TOKEN"
[[ $CODE == 200 ]] || fail "GET /api/tenants/: $CODE, not 200: $(head -c 300 "$WORK/body")"
[[ "$(json "[t['name'] for t in b if str(t['id']) == '$TENANT_ID']")" == "['$TENANT']" ]] ||
    fail "GET /api/tenants/ does not list the tenant: $(head -c 300 "$WORK/body")"
down 2

PASSED=1
step "passed"
