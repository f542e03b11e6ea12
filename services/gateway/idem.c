/* SPDX-License-Identifier: MIT */
/*
 * Idempotency-Key values and hashes. The fingerprint binds a key to one request (method, path and
 * body), so reusing the key for another request is refused (422) instead of replaying the wrong
 * response. Only the owner of a "running" value (identified by a random token) may settle it, so a
 * lock that expired and was taken over is never overwritten by the late first request.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "gw_idem.h"

const char gw_idem_acquire_lua[] =
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end\n"
    "return redis.call('GET', KEYS[1])\n";

const char gw_idem_settle_lua[] = "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
                                  "if ARGV[2] == '' then redis.call('DEL', KEYS[1])\n"
                                  "else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end\n"
                                  "return 1\n";

static void hex(const unsigned char *md, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 15];
    }
    out[2 * n] = '\0';
}

/* sha256 over parts joined by '\n', as lower-case hex. */
static void sha256_parts(const adi_str_t *parts, size_t n, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    ADI_ASSERT(ctx != NULL);
    ADI_ASSERT(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            EVP_DigestUpdate(ctx, "\n", 1);
        if (parts[i].len > 0)
            EVP_DigestUpdate(ctx, parts[i].ptr, parts[i].len);
    }
    ADI_ASSERT(EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32);
    EVP_MD_CTX_free(ctx);
    hex(md, 32, out);
}

void gw_idem_redis_key(adi_str_t key, adi_str_t principal, char out[GW_IDEM_KEY_LEN + 1])
{
    adi_str_t parts[2] = {key, principal};
    memcpy(out, "gw:{idem}:", 10);
    sha256_parts(parts, 2, out + 10);
}

void gw_idem_fingerprint(adi_str_t method, adi_str_t path, adi_str_t body, char out[65])
{
    adi_str_t parts[3] = {method, path, body};
    sha256_parts(parts, 3, out);
}

void gw_idem_running_value(const char *fp, const char *token, adi_buf_t *out)
{
    adi_buf_printf(out, "R\n%s\n%s", fp, token);
}

void gw_idem_done_value(const char *fp, int status, adi_str_t body, adi_buf_t *out)
{
    adi_buf_printf(out, "D\n%s\n%d\n", fp, status);
    if (body.len > 0)
        adi_buf_append(out, body.ptr, body.len);
}

gw_idem_verdict_t gw_idem_judge(adi_str_t v, const char *fp, int *status, adi_str_t *body)
{
    *status = 0;
    *body = ADI_STR_NULL;
    /* "X\n" + 64 hex + "\n" at least */
    if (v.ptr == NULL || v.len < 2 + 64 + 1 || v.ptr[1] != '\n' || v.ptr[66] != '\n')
        return GW_IDEM_CORRUPT;
    bool same = memcmp(v.ptr + 2, fp, 64) == 0;
    if (v.ptr[0] == 'R')
        return same ? GW_IDEM_BUSY : GW_IDEM_MISMATCH;
    if (v.ptr[0] != 'D')
        return GW_IDEM_CORRUPT;
    if (!same)
        return GW_IDEM_MISMATCH;
    const char *p = v.ptr + 67;
    const char *end = v.ptr + v.len;
    int st = 0;
    int digits = 0;
    while (p < end && *p >= '0' && *p <= '9' && digits < 3) {
        st = st * 10 + (*p - '0');
        p++;
        digits++;
    }
    if (digits != 3 || p == end || *p != '\n' || st < 100 || st > 599)
        return GW_IDEM_CORRUPT;
    p++;
    *status = st;
    *body = (adi_str_t){p, (size_t)(end - p)};
    return GW_IDEM_REPLAY;
}

bool gw_idem_storable(int status)
{
    /* 409 and 429 say "try again later", 5xx may not have run at all: the client may retry. */
    return status >= 200 && status < 499 && status != 408 && status != 409 && status != 429;
}
