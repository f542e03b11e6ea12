#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The test stack: a throw-away redis-server and PostgreSQL cluster on free loopback ports, in one
# folder. ctest runs `start` as the setup of the fixture "stack" and `stop` as its cleanup; ./adi
# bench uses it too.
#
#   stack.sh start <dir> [binary...]   starts both, creates the database adinsights and writes
#                                      <dir>/env; each binary given is linked into <dir>/bin
#                                      (= ADI_BIN_DIR) under its own name
#   stack.sh stop <dir>                stops everything started in <dir> (the suite too, if its
#                                      cleanup did not run) and removes <dir>; the logs are kept
#                                      in <dir>.logs
#
# Redis keeps nothing on disk (--save '' --appendonly no); PostgreSQL runs with fsync off and
# listens on 127.0.0.1 only, without a Unix socket, with trust authentication for loopback. As
# root, PostgreSQL runs as the `postgres` system user (it refuses to run as root).
set -euo pipefail

ADI_ME=stack.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ADI_REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=../../scripts/lib.sh
. "$ADI_REPO/scripts/lib.sh"

MARKER=.adi-test-stack
STARTED=0
TRIES=${ADI_STACK_TRIES:-300} # 0.2 s each: 60 s for each server to answer

usage() {
    echo "usage: stack.sh start|stop <dir> [binary...]" >&2
    exit 2
}

# Prints the last lines of every log in <dir>/logs, for a failure message.
dump_logs() {
    local f
    for f in "$1"/logs/*.log; do
        [[ -s "$f" ]] || continue
        echo "----- tail of $f -----" >&2
        tail -n 40 "$f" >&2 || true
    done
}

# The pid of the postmaster of the cluster in <pgdata>, from its postmaster.pid.
pg_pid() {
    local f="$1/postmaster.pid"
    [[ -r "$f" ]] || return 1
    head -n1 "$f" | tr -dc '0-9'
}

stop_pg() {
    local pgdata="$1" pid i
    pid=$(pg_pid "$pgdata") || return 0
    [[ -n "$pid" ]] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    # SIGINT is PostgreSQL's fast shutdown: it ends the sessions and exits cleanly.
    kill -INT "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do
        adi_gone "$pid" && return 0
        sleep 0.1
    done
    adi_say "postgres (pid $pid) did not stop within 30 s: sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

do_stop() {
    local dir="$1" f name pgdata
    [[ -e "$dir" ]] || return 0
    [[ -f "$dir/$MARKER" ]] || adi_die "$dir was not made by stack.sh: refusing to remove it"
    # Whatever the suite fixture left running (its cleanup may not have run).
    if [[ -d "$dir/pids" ]]; then
        for f in "$dir"/pids/*.pid; do
            [[ -f "$f" ]] || continue
            name=$(basename "$f" .pid)
            adi_stop_pid "$f" "$name" 10 || true
        done
    fi
    adi_stop_pid "$dir/redis.pid" redis-server 10 || true
    pgdata=$(cat "$dir/pgdata" 2>/dev/null || true)
    if [[ -n "$pgdata" && -d "$pgdata" ]]; then
        stop_pg "$pgdata"
    fi
    if [[ -d "$dir/logs" ]]; then
        rm -rf "$dir.logs"
        cp -r "$dir/logs" "$dir.logs" 2>/dev/null || true
    fi
    # A cluster kept outside <dir> (see adi_pg_datadir) goes too.
    if [[ -n "$pgdata" && "$pgdata" != "$dir"/* && -f "$pgdata/PG_VERSION" ]]; then
        rm -rf "$pgdata"
    fi
    rm -rf "$dir"
}

do_start() {
    local dir="$1" pgbin redis_port pg_port pgdata b
    shift
    pgbin=$(adi_pg_bin) || adi_die "PostgreSQL server binaries not found (apt-get install postgresql)"
    command -v redis-server >/dev/null || adi_die "redis-server not found (apt-get install redis-server)"
    command -v curl >/dev/null || adi_die "curl not found (apt-get install curl)"

    do_stop "$dir"
    mkdir -p "$dir"/{redis,logs,bin}
    touch "$dir/$MARKER"
    # On any failure below, stop what was started and leave nothing behind.
    trap '[[ $STARTED == 1 ]] || { dump_logs "$dir"; do_stop "$dir"; }' EXIT

    for b in "$@"; do
        [[ -x "$b" ]] || adi_die "not an executable: $b"
        ln -sf "$(readlink -f "$b")" "$dir/bin/$(basename "$b")"
    done

    {
        read -r redis_port
        read -r pg_port
    } < <(adi_free_ports 2)

    redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
        --daemonize no --dir "$dir/redis" --protected-mode yes \
        </dev/null >"$dir/logs/redis-server.log" 2>&1 &
    echo $! >"$dir/redis.pid"

    pgdata=$(adi_pg_datadir "$dir/pg" "${TMPDIR:-/tmp}/adi-test-pg")
    echo "$pgdata" >"$dir/pgdata"
    if ! adi_as_pg "$pgbin/initdb" -D "$pgdata" -U postgres -A trust -E UTF8 --locale=C \
        --no-sync >"$dir/logs/initdb.log" 2>&1; then
        adi_die "initdb failed"
    fi
    (adi_as_pg_exec "$pgbin/postgres" -D "$pgdata" -h 127.0.0.1 -p "$pg_port" -k "" \
        -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
        -c max_connections=200 -c shared_buffers=64MB) \
        </dev/null >"$dir/logs/postgres.log" 2>&1 &

    adi_wait_redis "$redis_port" "$TRIES" || adi_die "redis-server did not answer on port $redis_port"
    adi_wait_pg "$pgbin" "$pg_port" "$TRIES" || adi_die "postgres did not answer on port $pg_port"
    "$pgbin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres adinsights ||
        adi_die "createdb adinsights failed"

    local env="$dir/env"
    : >"$env.tmp"
    adi_env_put "$env.tmp" REDIS_URL "redis://127.0.0.1:$redis_port"
    adi_env_put "$env.tmp" DATABASE_URL "postgresql://postgres@127.0.0.1:$pg_port/adinsights"
    adi_env_put "$env.tmp" ADI_REDIS_PORT "$redis_port"
    adi_env_put "$env.tmp" ADI_PG_PORT "$pg_port"
    adi_env_put "$env.tmp" ADI_PG_BIN "$pgbin"
    adi_env_put "$env.tmp" ADI_TEST_DIR "$dir"
    adi_env_put "$env.tmp" ADI_BIN_DIR "$dir/bin"
    adi_env_put "$env.tmp" ADI_REPO "$ADI_REPO"
    mv "$env.tmp" "$env"
    STARTED=1
    echo "stack up: redis 127.0.0.1:$redis_port, postgres 127.0.0.1:$pg_port (env in $env)"
}

[[ $# -ge 2 ]] || usage
cmd="$1"
dir="$2"
shift 2
[[ -n "$dir" && "$dir" != / ]] || usage
mkdir -p "$(dirname "$dir")"
dir="$(cd "$(dirname "$dir")" && pwd)/$(basename "$dir")"
case "$cmd" in
start) do_start "$dir" "$@" ;;
stop) do_stop "$dir" ;;
*) usage ;;
esac
