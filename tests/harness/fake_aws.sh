#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The fake AWS server (fake_aws.py: KMS with SigV4 checked by botocore, STS web identity, IMDSv2)
# for a running test stack. ctest runs `start` as the setup of the fixture "fakeaws" and `stop` as
# its cleanup.
#
#   fake_aws.sh start <dir>   needs <dir>/env from `stack.sh start <dir>`; starts the server in
#                             <dir>/fake-aws (log: <dir>/logs/fake-aws.log) with a random secret key
#                             and web identity token, and appends to <dir>/env, in one write:
#                             ADI_FAKE_AWS_URL, ADI_FAKE_AWS_REGION, ADI_FAKE_AWS_ACCESS_KEY,
#                             ADI_FAKE_AWS_SECRET_KEY, ADI_FAKE_AWS_KEYS, ADI_FAKE_AWS_ROLE_ARN,
#                             ADI_FAKE_AWS_WEB_TOKEN_FILE, ADI_FAKE_AWS_IMDS_ROLE (also kept in
#                             <dir>/fake-aws/env)
#   fake_aws.sh stop <dir>    SIGTERM, SIGKILL after a grace period; fails when the server had died
#                             before or had to be killed
#
# The server also exits by itself once <dir>/fake-aws is removed (stack.sh stop removes <dir>), so
# an interrupted run leaves nothing behind. ADI_FAKE_AWS_TIMEOUT (s, default 30) bounds the start.
set -euo pipefail

ADI_ME=fake_aws.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../scripts/lib.sh
. "$HERE/../../scripts/lib.sh"

REGION=us-east-1
ACCESS_KEY=AKIDFAKEEXAMPLE
KEYS=alias/adi-a,alias/adi-b
ROLE_ARN=arn:aws:iam::123456789012:role/adi-vault
IMDS_ROLE=adi-vault-role
NAME=fake_aws.py # what the pid's command line contains

usage() {
    echo "usage: fake_aws.sh start|stop <dir>" >&2
    exit 2
}

do_stop() {
    local dir="$1" rc=0
    [[ -f "$dir/fake-aws/fake-aws.pid" ]] || return 0
    adi_stop_pid "$dir/fake-aws/fake-aws.pid" "$NAME" 10 || rc=$?
    case $rc in
    0) ;;
    1)
        adi_say "the fake AWS server had to be killed: it did not exit within 10s of SIGTERM"
        return 1
        ;;
    2)
        adi_say "the fake AWS server was no longer running when stopped (crashed?)"
        tail -n 40 "$dir/logs/fake-aws.log" >&2 || true
        return 1
        ;;
    esac
}

do_start() {
    local dir="$1" fa="$1/fake-aws" secret token pid port="" deadline
    [[ -f "$dir/env" ]] || adi_die "$dir/env not found: start the stack first (stack.sh start $dir)"
    do_stop "$dir" >/dev/null 2>&1 || true
    rm -rf "$fa"
    mkdir -p "$fa" "$dir/logs"
    chmod 700 "$fa"

    # AWS secret keys are 40 characters of base64; the token looks like a (non-verifiable) JWT.
    secret=$(head -c 30 /dev/urandom | base64 | tr -d '\n')
    token="eyJhbGciOiJSUzI1NiJ9.$(head -c 96 /dev/urandom | base64 | tr -d '\n=' | tr '+/' '-_')"
    (umask 077 && printf '%s\n' "$token" >"$fa/web-identity-token")

    "$(adi_python)" "$HERE/fake_aws.py" --port-file "$fa/port" --region "$REGION" \
        --access-key "$ACCESS_KEY" --secret-key "$secret" --keys "$KEYS" \
        --role-arn "$ROLE_ARN" --web-identity-token "$token" --imds-role "$IMDS_ROLE" \
        --exit-when-gone "$fa" </dev/null >>"$dir/logs/fake-aws.log" 2>&1 &
    pid=$!
    echo "$pid" >"$fa/fake-aws.pid"

    deadline=$((SECONDS + ${ADI_FAKE_AWS_TIMEOUT:-30}))
    while [[ ! -s "$fa/port" ]]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 40 "$dir/logs/fake-aws.log" >&2 || true
            adi_die "fake_aws.py exited during start-up"
        fi
        if ((SECONDS >= deadline)); then
            do_stop "$dir" || true
            adi_die "fake_aws.py did not write its port within ${ADI_FAKE_AWS_TIMEOUT:-30}s"
        fi
        sleep 0.1
    done
    port=$(tr -dc '0-9' <"$fa/port")
    [[ -n "$port" ]] || adi_die "fake_aws.py wrote no port to $fa/port"

    # One write of every line, so an append by another fixture's setup never interleaves. The
    # lines stay in <dir>/fake-aws/env too: suite.sh stop puts back the env file as it was before
    # the suite started, which loses them when this fixture started after the suite.
    local lines="$fa/env"
    : >"$lines"
    adi_env_put "$lines" ADI_FAKE_AWS_URL "http://127.0.0.1:$port"
    adi_env_put "$lines" ADI_FAKE_AWS_REGION "$REGION"
    adi_env_put "$lines" ADI_FAKE_AWS_ACCESS_KEY "$ACCESS_KEY"
    adi_env_put "$lines" ADI_FAKE_AWS_SECRET_KEY "$secret"
    adi_env_put "$lines" ADI_FAKE_AWS_KEYS "$KEYS"
    adi_env_put "$lines" ADI_FAKE_AWS_ROLE_ARN "$ROLE_ARN"
    adi_env_put "$lines" ADI_FAKE_AWS_WEB_TOKEN_FILE "$fa/web-identity-token"
    adi_env_put "$lines" ADI_FAKE_AWS_IMDS_ROLE "$IMDS_ROLE"
    local all
    all=$(<"$lines")
    printf '%s\n' "$all" >>"$dir/env"
    echo "fake AWS up: http://127.0.0.1:$port (log in $dir/logs/fake-aws.log)"
}

[[ $# -eq 2 ]] || usage
dir="$(cd "$(dirname "$2")" 2>/dev/null && pwd)/$(basename "$2")" || usage
case "$1" in
start) do_start "$dir" ;;
stop) do_stop "$dir" ;;
*) usage ;;
esac
