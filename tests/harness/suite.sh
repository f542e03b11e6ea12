#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The whole suite on top of a running test stack (stack.sh): applies the migrations with adi-admin,
# starts adi-auth, adi-tenant, adi-vault and adi-task-runner (each with its own database role
# adi_<svc>) and adi-gateway on free loopback ports, and waits until the gateway's /api/health/
# answers 200, which needs a bus round trip to every service. ctest runs `start` as the setup of
# the fixture "suite" and `stop` as its cleanup.
#
#   suite.sh start <dir>   needs <dir>/env from `stack.sh start <dir>`; appends GATEWAY_URL,
#                          JWT_SIGNING_KEY, ADI_PIDS_DIR, ADI_LOG_DIR, ADI_MAIL_DIR (the mails
#                          adi-task-runner sent, see mail_sink.py), ADI_GATEWAY_PORT and
#                          ADI_OPS_PORT_<SVC>
#   suite.sh stop <dir>    SIGTERM to every process, SIGKILL after a grace period; fails when a
#                          process had died before, needed SIGKILL, or logged a sanitizer report
#
# Every variable already in the environment reaches the processes, so a caller may set WORKERS,
# LOG_LEVEL, JWT or KMS settings and so on. The gateway gets BACKLOG_LIMIT=50, REQUEST_TIMEOUT_MS=2000
# and GATEWAY_THREADS=2 unless they are set. ADI_SUITE_TIMEOUT (s, default 90) bounds the wait.
# Tokens: JWT_SIGNING_KEY is a fresh random secret per run unless set; it goes to every process
# and into the env file, so tests can mint and check tokens with PyJWT. PASSWORD_ITERATIONS is
# 1000 unless set (ASan makes 720000 take seconds per hash). Every e2e login comes from 127.0.0.1,
# so the per-address login throttle is lifted (LOGIN_ADDRESS_MAX_FAILURES=1000000 unless set);
# the per-account one keeps its default. KMS_LOCAL_KEY (adi-vault's local KMS master key) is a
# fresh random key per run unless it or KMS_LOCAL_KEY_FILE is set.
set -euo pipefail

ADI_ME=suite.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../scripts/lib.sh
. "$HERE/../../scripts/lib.sh"

STARTED=0
STOP_GRACE=${ADI_SUITE_STOP_GRACE:-30}

usage() {
    echo "usage: suite.sh start|stop <dir>" >&2
    exit 2
}

# The processes in stop order: the gateway first, so nothing new reaches the services.
procs() {
    local s
    echo adi-gateway
    for s in "${ADI_SERVICES[@]}"; do
        echo "adi-$s"
    done
}

dump_logs() {
    local f
    for f in "$ADI_LOG_DIR"/adi-*.log; do
        [[ -s "$f" ]] || continue
        echo "----- tail of $f -----" >&2
        tail -n 60 "$f" >&2 || true
    done
}

# Stops every process; returns 1 when one had died early, needed SIGKILL, or reported a
# sanitizer error in its log.
do_stop() {
    local dir="$1" p rc bad=0 f stopped=0
    [[ -f "$dir/env" ]] || return 0
    [[ -d "$dir/pids" ]] || return 0
    ADI_LOG_DIR="$dir/logs"
    for p in $(procs); do
        [[ -f "$dir/pids/$p.pid" ]] || continue
        stopped=1
        rc=0
        adi_stop_pid "$dir/pids/$p.pid" "$p" "$STOP_GRACE" || rc=$?
        case $rc in
        0) ;;
        1)
            adi_say "$p had to be killed: it did not exit within ${STOP_GRACE}s of SIGTERM"
            bad=1
            ;;
        2)
            adi_say "$p was no longer running when the suite was stopped (crashed?)"
            tail -n 60 "$ADI_LOG_DIR/$p.log" >&2 || true
            bad=1
            ;;
        esac
    done
    # The mail sink (see do_start).
    adi_stop_pid "$dir/pids/mail-sink.pid" mail_sink.py "$STOP_GRACE" >/dev/null 2>&1 || true
    # The logs are checked once, by the stop that stopped the processes.
    for f in "$ADI_LOG_DIR"/adi-*.log; do
        [[ $stopped == 1 && -f "$f" ]] || continue
        if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: [A-Za-z]+Sanitizer' "$f"; then
            adi_say "sanitizer report in $f:"
            grep -nE -A40 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$f" | head -n 120 >&2
            bad=1
        fi
    done
    # The env goes back to what the stack wrote.
    [[ -f "$dir/env.stack" ]] && mv "$dir/env.stack" "$dir/env"
    # ...plus what the fake AWS fixture appended after the suite started, if it is still running.
    if [[ -f "$dir/fake-aws/env" ]] && ! grep -q '^ADI_FAKE_AWS_URL=' "$dir/env"; then
        cat "$dir/fake-aws/env" >>"$dir/env"
    fi
    return $bad
}

# start_proc NAME LOG VAR=VALUE...: starts $ADI_BIN_DIR/NAME with the extra variables; `env` execs
# it, so $! is the service's own pid.
start_proc() {
    local name="$1" log="$2"
    shift 2
    env "$@" "$ADI_BIN_DIR/$name" </dev/null >>"$log" 2>&1 &
    echo $! >"$ADI_PIDS_DIR/$name.pid"
}

do_start() {
    local dir="$1" p i svc code deadline
    [[ -f "$dir/env" ]] || adi_die "$dir/env not found: start the stack first (stack.sh start $dir)"
    do_stop "$dir" >/dev/null 2>&1 || true
    set -a
    # shellcheck source=/dev/null
    . "$dir/env"
    set +a
    cp "$dir/env" "$dir/env.stack"
    for p in adi-admin $(procs); do
        [[ -x "$ADI_BIN_DIR/$p" ]] || adi_die "$ADI_BIN_DIR/$p not found: is it built?"
    done
    ADI_PIDS_DIR="$dir/pids"
    ADI_LOG_DIR="$dir/logs"
    mkdir -p "$ADI_PIDS_DIR" "$ADI_LOG_DIR"
    for p in adi-admin $(procs); do
        : >"$ADI_LOG_DIR/$p.log"
    done
    trap '[[ $STARTED == 1 ]] || { dump_logs; do_stop "$dir" >/dev/null 2>&1 || true; }' EXIT

    if ! env MIGRATIONS_DIR="$ADI_REPO/services" DATABASE_URL="$DATABASE_URL" \
        "$ADI_BIN_DIR/adi-admin" migrate </dev/null >"$ADI_LOG_DIR/adi-admin.log" 2>&1; then
        cat "$ADI_LOG_DIR/adi-admin.log" >&2
        adi_die "adi-admin migrate failed"
    fi

    JWT_SIGNING_KEY=${JWT_SIGNING_KEY:-$(adi_random_secret)}
    PASSWORD_ITERATIONS=${PASSWORD_ITERATIONS:-1000}
    export JWT_SIGNING_KEY PASSWORD_ITERATIONS
    # adi-vault's local KMS master key: random per run unless set.
    if [[ -z "${KMS_LOCAL_KEY:-}" && -z "${KMS_LOCAL_KEY_FILE:-}" ]]; then
        KMS_LOCAL_KEY=$(adi_random_kms_key)
        export KMS_LOCAL_KEY
    fi

    # ---- mail sink (tests/e2e/test_tasks.py) ----
    # A real SMTP server on loopback (mail_sink.py, Debian's python3-aiosmtpd) storing every mail
    # as files in ADI_MAIL_DIR; adi-task-runner sends to it (SMTP_URL) unless SMTP_URL is set.
    local mail_dir="$dir/mail" smtp_port=""
    /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null ||
        adi_die "python3-aiosmtpd is missing (apt-get install python3-aiosmtpd)"
    rm -rf "$mail_dir" "$dir/mail.port"
    mkdir -p "$mail_dir"
    /usr/bin/python3 "$HERE/mail_sink.py" --dir "$mail_dir" --port-file "$dir/mail.port" \
        </dev/null >"$ADI_LOG_DIR/mail-sink.log" 2>&1 &
    echo $! >"$ADI_PIDS_DIR/mail-sink.pid"
    for ((i = 0; i < 300; i++)); do
        [[ -s "$dir/mail.port" ]] && smtp_port=$(cat "$dir/mail.port") && break
        sleep 0.1
    done
    [[ -n "$smtp_port" ]] || adi_die "the mail sink did not start (see $ADI_LOG_DIR/mail-sink.log)"
    # ---- end of mail sink ----

    local ports
    mapfile -t ports < <(adi_free_ports $((${#ADI_SERVICES[@]} + 2)))
    local gw_port=${ports[0]} gw_ops=${ports[1]}
    local env="$dir/env"
    local db_base="127.0.0.1:$ADI_PG_PORT/adinsights"

    local extra
    for i in "${!ADI_SERVICES[@]}"; do
        svc=${ADI_SERVICES[$i]}
        p=${ports[$((i + 2))]}
        extra=()
        [[ $svc == task-runner ]] && extra=(SMTP_URL="${SMTP_URL:-smtp://127.0.0.1:$smtp_port}")
        start_proc "adi-$svc" "$ADI_LOG_DIR/adi-$svc.log" \
            REDIS_URL="$REDIS_URL" \
            DATABASE_URL="postgresql://$(adi_svc_role "$svc")@$db_base" \
            OPS_HOST=127.0.0.1 OPS_PORT="$p" \
            SHUTDOWN_GRACE_MS="${SHUTDOWN_GRACE_MS:-5000}" "${extra[@]}"
    done
    start_proc adi-gateway "$ADI_LOG_DIR/adi-gateway.log" \
        REDIS_URL="$REDIS_URL" HTTP_HOST=127.0.0.1 HTTP_PORT="$gw_port" \
        OPS_HOST=127.0.0.1 OPS_PORT="$gw_ops" \
        BACKLOG_LIMIT="${BACKLOG_LIMIT:-50}" REQUEST_TIMEOUT_MS="${REQUEST_TIMEOUT_MS:-2000}" \
        GATEWAY_THREADS="${GATEWAY_THREADS:-2}" \
        LOGIN_ADDRESS_MAX_FAILURES="${LOGIN_ADDRESS_MAX_FAILURES:-1000000}"

    local url="http://127.0.0.1:$gw_port"
    deadline=$((SECONDS + ${ADI_SUITE_TIMEOUT:-90}))
    while :; do
        for p in $(procs); do
            adi_pid_alive "$ADI_PIDS_DIR/$p.pid" "$p" || adi_die "$p exited during start-up"
        done
        code=$(adi_http_code "$url/api/health/")
        [[ "$code" == 200 ]] && break
        ((SECONDS < deadline)) ||
            adi_die "GET $url/api/health/ did not answer 200 within ${ADI_SUITE_TIMEOUT:-90}s (last: $code)"
        sleep 0.2
    done
    # /api/health/ answering 200 means one gateway thread reached every service; each thread learns
    # that a service's stream exists on its own poll. Wait until every thread sees every stream,
    # so no test meets a 503 from a thread that has not looked yet.
    local want=$(( ${GATEWAY_THREADS:-2} * ${#ADI_SERVICES[@]} )) up
    while :; do
        up=$(curl -s --max-time 2 "http://127.0.0.1:$gw_ops/metrics" |
            grep -c '^adi_gateway_backend_stream_up{.*} 1$' || true)
        ((up >= want)) && break
        ((SECONDS < deadline)) ||
            adi_die "the gateway threads did not all see the services' streams ($up of $want)"
        sleep 0.1
    done

    adi_env_put "$env" GATEWAY_URL "$url"
    adi_env_put "$env" JWT_SIGNING_KEY "$JWT_SIGNING_KEY"
    adi_env_put "$env" ADI_PIDS_DIR "$ADI_PIDS_DIR"
    adi_env_put "$env" ADI_LOG_DIR "$ADI_LOG_DIR"
    adi_env_put "$env" ADI_MAIL_DIR "$mail_dir"
    adi_env_put "$env" ADI_GATEWAY_PORT "$gw_port"
    adi_env_put "$env" ADI_OPS_PORT_GATEWAY "$gw_ops"
    for i in "${!ADI_SERVICES[@]}"; do
        adi_env_put "$env" "ADI_OPS_PORT_$(adi_svc_var "${ADI_SERVICES[$i]}")" "${ports[$((i + 2))]}"
    done
    STARTED=1
    echo "suite up: $url (logs in $ADI_LOG_DIR)"
}

[[ $# -eq 2 ]] || usage
dir="$(cd "$(dirname "$2")" 2>/dev/null && pwd)/$(basename "$2")" || usage
case "$1" in
start) do_start "$dir" ;;
stop) do_stop "$dir" ;;
*) usage ;;
esac
