/* SPDX-License-Identifier: MIT */
/*
 * Login throttling: the two Lua scripts (check-and-count, settle) that keep the counters in Redis
 * atomically, the keys, the username read from the converted body and the 429 body. The scripts
 * take the time from Redis (TIME), so every gateway instance sees the same clock for a lock.
 */
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "adi/crypto.h"
#include "gw_login.h"
#include "gw_render.h"

const char gw_login_check_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local maxes = {tonumber(ARGV[2]), tonumber(ARGV[3])}\n"
    "local base, cap = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "local window = tonumber(ARGV[6]) * 1000\n"
    "local first = 2\n"
    "if ARGV[1] == '1' then first = 1 end\n"
    "local wait = 0\n"
    "for i = first, 2 do\n"
    "  local u = tonumber(redis.call('HGET', KEYS[i], 'u') or '0') or 0\n"
    "  if u - now > wait then wait = u - now end\n"
    "end\n"
    "if wait > 0 then return {0, math.ceil(wait / 1000)} end\n"
    "local out = {1, 0, 0, 0, 0}\n"
    "for i = first, 2 do\n"
    "  local f = redis.call('HINCRBY', KEYS[i], 'f', 1)\n"
    "  local pu = tonumber(redis.call('HGET', KEYS[i], 'u') or '0') or 0\n"
    "  local nu = pu\n"
    "  if f >= maxes[i] then\n"
    "    local d = base * math.pow(2, f - maxes[i])\n"
    "    if d > cap then d = cap end\n"
    "    nu = now + d * 1000\n"
    "    redis.call('HSET', KEYS[i], 'u', string.format('%.0f', nu))\n"
    "  end\n"
    "  local ttl = window\n"
    "  if nu > now then ttl = ttl + (nu - now) end\n"
    "  redis.call('PEXPIRE', KEYS[i], string.format('%.0f', ttl))\n"
    "  out[i * 2] = pu\n"
    "  out[i * 2 + 1] = nu\n"
    "end\n"
    "return out\n";

const char gw_login_settle_lua[] =
    "local function takeback(k, pu, nu)\n"
    "  local f = redis.call('HINCRBY', k, 'f', -1)\n"
    "  if f <= 0 then redis.call('DEL', k) return end\n"
    "  if nu ~= pu and redis.call('HGET', k, 'u') == nu then\n"
    "    if pu == '0' then redis.call('HDEL', k, 'u') else redis.call('HSET', k, 'u', pu) end\n"
    "  end\n"
    "end\n"
    "if ARGV[1] == '1' then\n"
    "  if ARGV[2] == 'ok' then redis.call('DEL', KEYS[1])\n"
    "  else takeback(KEYS[1], ARGV[3], ARGV[4]) end\n"
    "end\n"
    "takeback(KEYS[2], ARGV[5], ARGV[6])\n"
    "return 1\n";

gw_login_outcome_t gw_login_outcome(int status, bool from_auth)
{
    if (!from_auth)
        return GW_LOGIN_VOID;
    if (status == 401)
        return GW_LOGIN_FAILED;
    if (status == 200)
        return GW_LOGIN_SUCCEEDED;
    return GW_LOGIN_VOID;
}

/* Whitespace that auth strips from the username (DRF's trim_whitespace; adi_proto_decode_input). */
static bool is_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

bool gw_login_account_key(adi_str_t username, char out[GW_LOGIN_KEY_MAX + 1])
{
    out[0] = '\0';
    if (username.ptr == NULL || username.len > GW_LOGIN_USER_MAX)
        return false;
    /* Auth logs " a@b " in as "a@b": padding must not be a way around the account's counter. */
    while (username.len > 0 && is_space(username.ptr[0])) {
        username.ptr++;
        username.len--;
    }
    while (username.len > 0 && is_space(username.ptr[username.len - 1]))
        username.len--;
    if (username.len == 0)
        return false;
    char lower[GW_LOGIN_USER_MAX];
    for (size_t i = 0; i < username.len; i++) {
        char c = username.ptr[i];
        lower[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    unsigned char md[ADI_SHA256_LEN];
    adi_sha256(lower, username.len, md);
    static const char digits[] = "0123456789abcdef";
    size_t o = (size_t)snprintf(out, GW_LOGIN_KEY_MAX + 1, "gw:{login}:a:");
    for (size_t i = 0; i < ADI_SHA256_LEN; i++) {
        out[o++] = digits[md[i] >> 4];
        out[o++] = digits[md[i] & 15];
    }
    out[o] = '\0';
    return true;
}

void gw_login_address_key(const char *address, char out[GW_LOGIN_KEY_MAX + 1])
{
    snprintf(out, GW_LOGIN_KEY_MAX + 1, "gw:{login}:i:%s",
             address != NULL && address[0] != '\0' ? address : "unknown");
}

bool gw_body_string_member(const char *mp, size_t len, const char *name, adi_str_t *out)
{
    *out = ADI_STR_NULL;
    if (mp == NULL || len == 0)
        return false;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    bool found = false;
    size_t nlen = strlen(name);
    if (msgpack_unpack_next(&u, mp, len, &off) == MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_MAP) {
        const msgpack_object_map *m = &u.data.via.map;
        for (uint32_t i = 0; i < m->size && !found; i++) {
            const msgpack_object *k = &m->ptr[i].key;
            const msgpack_object *v = &m->ptr[i].val;
            if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == nlen &&
                memcmp(k->via.str.ptr, name, nlen) == 0 && v->type == MSGPACK_OBJECT_STR) {
                /* Zero-copy: the string lies inside `mp`. */
                *out = (adi_str_t){v->via.str.ptr, v->via.str.size};
                found = true;
            }
        }
    }
    msgpack_unpacked_destroy(&u);
    return found;
}

bool gw_login_check_parse(const long long *vals, size_t n, gw_login_check_t *out)
{
    memset(out, 0, sizeof(*out));
    if (n == 2 && vals[0] == 0) {
        out->allowed = false;
        out->retry_after = vals[1] < 1 ? 1 : vals[1];
        return true;
    }
    if (n != 5 || vals[0] != 1)
        return false;
    out->allowed = true;
    for (size_t i = 0; i < 2; i++) {
        if (vals[1 + 2 * i] < 0 || vals[2 + 2 * i] < 0)
            return false;
        snprintf(out->prev[i], sizeof(out->prev[i]), "%lld", vals[1 + 2 * i]);
        snprintf(out->next[i], sizeof(out->next[i]), "%lld", vals[2 + 2 * i]);
    }
    return true;
}

void gw_login_render_locked(int64_t retry_after, adi_buf_t *out)
{
    char msg[96];
    snprintf(msg, sizeof(msg), "Too many failed login attempts. Try again in %lld seconds.",
             (long long)retry_after);
    gw_render_detail(out, msg, strlen(msg));
}
