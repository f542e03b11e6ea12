#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Starts redis-server with the ADinsights ACL users (compose and Kubernetes run it in the official
# redis image; the tests run it with Debian's redis-server). It reads the rules of acl.rules
# (beside this script, or $ACL_RULES), adds each user's password from the environment variable
# REDIS_PASSWORD_<USER> (upper case, "-" as "_"; e.g. REDIS_PASSWORD_TASK_RUNNER) as its SHA-256
# ("#<hex>": no plaintext on disk), writes the ACL file ($ACL_FILE, default /run/redis/users.acl,
# mode 600) and execs redis-server with it and the remaining arguments. The user "default" needs
# no password (its rules allow PING only). A missing password, or one with characters that a
# redis:// URL would need escaped, stops the start with a message naming the variable only.
set -eu

rules=${ACL_RULES:-$(dirname "$0")/acl.rules}
out=${ACL_FILE:-/run/redis/users.acl}
server=${REDIS_SERVER:-redis-server}

tmp="$out.tmp"
fail() {
    echo "redis-acl: $*" >&2
    rm -f "$tmp" "$tmp.rules"
    exit 1
}
[ -r "$rules" ] || fail "cannot read $rules"
mkdir -p "$(dirname "$out")"
umask 077
: >"$tmp"
# Comments and blank lines are ours, not Redis's: drop them first.
sed -e '/^[[:space:]]*#/d' -e '/^[[:space:]]*$/d' "$rules" >"$tmp.rules"
while read -r kw name rest; do
    if [ "$kw" != user ] || [ -z "$name" ]; then
        fail "$rules: a line does not start with 'user <name>'"
    fi
    case "$name" in
    *[!a-z0-9-]*)
        fail "$rules: user names are [a-z0-9-]: $name"
        ;;
    esac
    if [ "$name" = default ]; then
        printf 'user default %s\n' "$rest" >>"$tmp"
        continue
    fi
    var=REDIS_PASSWORD_$(printf '%s' "$name" | tr 'a-z-' 'A-Z_')
    pw=
    eval "pw=\${$var:-}"
    case "$pw" in
    "")
        fail "$var is not set (the password of Redis user $name)"
        ;;
    *[!A-Za-z0-9._~-]*)
        fail "$var may hold only A-Z a-z 0-9 . _ ~ - (it goes into redis:// URLs)"
        ;;
    esac
    hash=$(printf '%s' "$pw" | sha256sum | cut -d' ' -f1)
    printf 'user %s reset %s #%s\n' "$name" "$rest" "$hash" >>"$tmp"
done <"$tmp.rules"
rm -f "$tmp.rules"
mv -f "$tmp" "$out"
exec "$server" "$@" --aclfile "$out"
