# SPDX-License-Identifier: MIT
# shellcheck shell=bash disable=SC2034
#
# Shell helpers shared by ./adi, tests/harness/{stack,suite}.sh and bench/: finding the PostgreSQL
# binaries, picking free loopback ports, running PostgreSQL as an unprivileged user when we are root
# (postgres refuses to run as root), waiting for a server with a bounded number of tries, and
# stopping a process by its pid file (SIGTERM, a grace period, then SIGKILL). Sourced, never run.

# Prints a message prefixed with the calling script's name to stderr.
adi_say() {
    printf '%s: %s\n' "${ADI_ME:-adi}" "$*" >&2
}

# Prints a message and exits 1.
adi_die() {
    adi_say "error: $*"
    exit 1
}

# Prints the path of the newest PostgreSQL server bin dir (ADI_PG_BIN overrides).
adi_pg_bin() {
    if [[ -n "${ADI_PG_BIN:-}" ]]; then
        printf '%s\n' "$ADI_PG_BIN"
        return 0
    fi
    local d best
    # The glob sorts 10 < 15 < 9.6 lexically; pick the highest major version explicitly.
    best=$(for d in /usr/lib/postgresql/*/bin; do
        [[ -x "$d/initdb" ]] && printf '%s\n' "$d"
    done | sort -t/ -k5,5V | tail -n1)
    if [[ -z "$best" ]]; then
        if command -v initdb >/dev/null 2>&1; then
            best=$(dirname "$(readlink -f "$(command -v initdb)")")
        fi
    fi
    [[ -n "$best" ]] || return 1
    printf '%s\n' "$best"
}

# The python interpreter used for small helpers (Debian's, not a pyenv shim).
adi_python() {
    if [[ -x /usr/bin/python3 ]]; then
        printf '/usr/bin/python3\n'
    else
        command -v python3
    fi
}

# adi_free_ports N: prints N distinct free TCP ports on 127.0.0.1, one per line. All N sockets are
# held open until every port is chosen, so the N ports are distinct.
adi_free_ports() {
    local n="$1"
    "$(adi_python)" - "$n" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
    s.close()
PY
}

# adi_port_free PORT: succeeds when nothing is bound to 127.0.0.1:PORT (or the wildcard address).
adi_port_free() {
    "$(adi_python)" - "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}

# adi_pick_port VAR DEFAULT: prints the port to use. When the variable named VAR is set, its value
# is used and must be free; otherwise DEFAULT when free, else any free port (with a notice).
adi_pick_port() {
    local var="$1" def="$2" val
    val="${!var:-}"
    if [[ -n "$val" ]]; then
        [[ "$val" =~ ^[0-9]+$ ]] || adi_die "$var=$val is not a port number"
        adi_port_free "$val" || adi_die "$var=$val: port $val on 127.0.0.1 is already in use"
        printf '%s\n' "$val"
        return 0
    fi
    if adi_port_free "$def"; then
        printf '%s\n' "$def"
        return 0
    fi
    val=$(adi_free_ports 1)
    adi_say "port $def is busy, using $val instead (set $var to choose)"
    printf '%s\n' "$val"
}

# The system user that runs PostgreSQL when we are root: "postgres" (created by Debian's postgresql
# package), or a dedicated "adi-postgres" system user created on demand. Empty when not root.
adi_pg_user() {
    if [[ $(id -u) -ne 0 ]]; then
        return 0
    fi
    local u="${ADI_PG_USER:-postgres}"
    if ! getent passwd "$u" >/dev/null; then
        u=adi-postgres
        if ! getent passwd "$u" >/dev/null; then
            useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
                "$u" || adi_die "cannot create the system user $u to run PostgreSQL"
        fi
    fi
    printf '%s\n' "$u"
}

# adi_as_pg_exec CMD...: replaces the current (sub)shell with CMD run as the PostgreSQL user (as
# root: through setpriv, which execs in place, so a `( adi_as_pg_exec postgres ... ) &` leaves $! as
# the server's pid; otherwise as ourselves). Runs from / so that a private working directory does
# not produce warnings. Paths given to CMD must be absolute.
adi_as_pg_exec() {
    local u
    u=$(adi_pg_user)
    cd /
    if [[ -n "$u" ]]; then
        exec setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups \
            --reset-env -- env PATH="/usr/sbin:/usr/bin:/sbin:/bin" LC_ALL=C.UTF-8 "$@"
    fi
    exec "$@"
}

# adi_as_pg CMD...: runs CMD as the PostgreSQL user and returns its status.
adi_as_pg() {
    (adi_as_pg_exec "$@")
}

# adi_pg_owned PATH...: gives files or directories to the PostgreSQL user when we are root.
adi_pg_owned() {
    local u
    u=$(adi_pg_user)
    [[ -z "$u" ]] && return 0
    chown "$u:$(id -gn "$u")" "$@"
}

# adi_pg_datadir WANT FALLBACK_PARENT: creates the data directory WANT and prints the directory to
# use. As root, the PostgreSQL user must be able to reach WANT; when a parent directory is private
# (a checkout under /root, say), the cluster lives under FALLBACK_PARENT instead and WANT becomes a
# symlink to it, so that the layout seen by the developer does not change.
adi_pg_datadir() {
    local want="$1" fallback_parent="$2" u real
    u=$(adi_pg_user)
    if [[ -L "$want" ]]; then
        real=$(readlink -f "$want")
        [[ -d "$real" ]] || mkdir -p "$real"
        adi_pg_owned "$real"
        chmod 700 "$real"
        printf '%s\n' "$real"
        return 0
    fi
    mkdir -p "$want"
    chmod 700 "$want"
    if [[ -z "$u" ]]; then
        printf '%s\n' "$want"
        return 0
    fi
    adi_pg_owned "$want"
    if adi_as_pg test -w "$want" -a -x "$want"; then
        printf '%s\n' "$want"
        return 0
    fi
    rmdir "$want"
    mkdir -p "$fallback_parent"
    chmod 755 "$fallback_parent"
    real=$(mktemp -d "$fallback_parent/pg.XXXXXX")
    adi_pg_owned "$real"
    chmod 700 "$real"
    ln -s "$real" "$want"
    adi_say "PostgreSQL user $u cannot reach $want; the cluster lives in $real (symlinked)"
    printf '%s\n' "$real"
}

# adi_pid_alive PIDFILE NAME: succeeds when the pid in PIDFILE runs a command containing NAME (so a
# recycled pid is never signalled).
adi_pid_alive() {
    local pidfile="$1" name="$2" pid
    [[ -r "$pidfile" ]] || return 1
    pid=$(head -n1 "$pidfile" 2>/dev/null | tr -dc '0-9')
    [[ -n "$pid" ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    if [[ -r "/proc/$pid/cmdline" ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$name" || return 1
    fi
    return 0
}

# adi_gone PID: succeeds when the process has exited (a zombie whose parent has not reaped it yet
# counts as exited: in a container, PID 1 may never reap).
adi_gone() {
    kill -0 "$1" 2>/dev/null || return 0
    [[ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" == Z ]]
}

# adi_stop_pid PIDFILE NAME GRACE_S: SIGTERM, waits up to GRACE_S seconds, then SIGKILL. Returns 0
# when the process exited in time, 1 when it had to be killed, 2 when it was not running. Removes
# the pid file.
adi_stop_pid() {
    local pidfile="$1" name="$2" grace="$3" pid i
    if ! adi_pid_alive "$pidfile" "$name"; then
        rm -f "$pidfile"
        return 2
    fi
    pid=$(head -n1 "$pidfile" | tr -dc '0-9')
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        adi_gone "$pid" && break
        sleep 0.1
    done
    if ! adi_gone "$pid"; then
        adi_say "$name (pid $pid) did not exit within ${grace}s of SIGTERM: sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$pidfile"
        return 1
    fi
    rm -f "$pidfile"
    return 0
}

# adi_wait_redis PORT TRIES: polls PING every 0.2 s, up to TRIES times.
adi_wait_redis() {
    local port="$1" tries="$2" i
    for ((i = 0; i < tries; i++)); do
        [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == PONG ]] && return 0
        sleep 0.2
    done
    return 1
}

# adi_wait_pg PGBIN PORT TRIES: polls pg_isready every 0.2 s, up to TRIES times.
adi_wait_pg() {
    local pgbin="$1" port="$2" tries="$3" i
    for ((i = 0; i < tries; i++)); do
        "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -t 1 && return 0
        sleep 0.2
    done
    return 1
}

# adi_http_code URL: prints the HTTP status of GET URL (000 when nothing answers).
adi_http_code() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" 2>/dev/null || true
}

# adi_random_secret: prints a fresh random secret (48 random bytes, base64, one line) for a
# JWT_SIGNING_KEY; openssl when present, else /dev/urandom.
adi_random_secret() {
    if command -v openssl >/dev/null 2>&1; then
        openssl rand -base64 48 | tr -d '\n'
    else
        head -c 48 /dev/urandom | base64 | tr -d '\n'
    fi
    printf '\n'
}

# adi_random_kms_key: prints a fresh 256-bit key as base64 (one line), for adi-vault's
# KMS_LOCAL_KEY; openssl when present, else /dev/urandom.
adi_random_kms_key() {
    if command -v openssl >/dev/null 2>&1; then
        openssl rand -base64 32 | tr -d '\n'
    else
        head -c 32 /dev/urandom | base64 | tr -d '\n'
    fi
    printf '\n'
}

# adi_env_put FILE KEY VALUE: appends KEY=VALUE, quoting VALUE for the shell only when needed.
adi_env_put() {
    local file="$1" key="$2" val="$3"
    if [[ "$val" =~ ^[A-Za-z0-9_./:@,+=%-]*$ ]]; then
        printf '%s=%s\n' "$key" "$val" >>"$file"
    else
        printf "%s='%s'\n" "$key" "${val//\'/\'\\\'\'}" >>"$file"
    fi
}

# adi_find_bin BUILD_DIR NAME: prints the path of a built binary (bin/, services/<svc>/, or any
# folder of the build tree).
adi_find_bin() {
    local build="$1" name="$2" svc="${2#adi-}" p
    for p in "$build/bin/$name" "$build/services/$svc/$name"; do
        [[ -x "$p" && -f "$p" ]] && {
            printf '%s\n' "$p"
            return 0
        }
    done
    p=$(find "$build" -type f -name "$name" -perm -u+x 2>/dev/null | head -n1)
    [[ -n "$p" ]] || return 1
    printf '%s\n' "$p"
}

# The backend services in start order, then the gateway (which needs them to answer /api/health/).
ADI_SERVICES=(auth tenant vault task-runner)
# Default ops ports of the services above, then of the gateway.
ADI_OPS_DEFAULTS=(9101 9102 9103 9104)
ADI_GATEWAY_OPS_DEFAULT=9100

# adi_svc_var SVC: the upper-case, underscore form of a service name (task-runner -> TASK_RUNNER).
adi_svc_var() {
    local v="${1^^}"
    printf '%s\n' "${v//-/_}"
}

# adi_svc_role SVC: the service's own database role (task-runner -> adi_task_runner).
adi_svc_role() {
    printf 'adi_%s\n' "${1//-/_}"
}
