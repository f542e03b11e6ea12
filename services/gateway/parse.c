/* SPDX-License-Identifier: MIT */
/*
 * Request parsing that needs no I/O: parameters, header values and body classification. Every
 * outside size is bounded before it is copied, so a hostile query string costs at most
 * GW_PARAMS_BYTES and gets a 400, never a crash or an allocation.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <msgpack.h>

#include "gw_parse.h"

void gw_params_init(gw_params_t *p)
{
    p->n = 0;
    p->used = 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool gw_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned cp;
        unsigned min;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i <= need)
            return false;
        for (size_t k = 1; k <= need; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += need + 1;
    }
    return true;
}

/*
 * Decodes [s, s + n) into the storage; returns false (with err set) when it does not fit in
 * `limit` bytes or the result is not clean UTF-8.
 */
static bool decode_into(gw_params_t *p, const char *s, size_t n, bool plus_space, bool literal,
                        size_t limit, size_t *off, size_t *len, adi_error_t *err)
{
    size_t start = p->used;
    size_t o = start;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (literal) {
            /* taken as is */
        } else if (c == '+' && plus_space) {
            c = ' ';
        } else if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        }
        if (o - start >= limit) {
            adi_error_set(err, ADI_INVALID, "A query or path parameter is too long.");
            return false;
        }
        if (o >= GW_PARAMS_BYTES) {
            adi_error_set(err, ADI_INVALID, "The query string is too long.");
            return false;
        }
        if (c == '\0') {
            adi_error_set(err, ADI_INVALID, "Malformed query string.");
            return false;
        }
        p->bytes[o++] = c;
    }
    if (!gw_utf8_valid(p->bytes + start, o - start)) {
        adi_error_set(err, ADI_INVALID, "Malformed query string.");
        return false;
    }
    *off = start;
    *len = o - start;
    p->used = o;
    return true;
}

/* How add_pair reads a value. */
enum pair_kind {
    PAIR_QUERY = 0, /* name and value percent-decoded, '+' is a space */
    PAIR_PATH,      /* literal name, value percent-decoded ('+' stays) */
    PAIR_LITERAL,   /* literal name and value (a header) */
};

/* Adds the pair stored at the end of the storage, replacing an earlier equal name. */
static adi_err add_pair(gw_params_t *p, const char *k, size_t kn, const char *v, size_t vn,
                        enum pair_kind kind, adi_error_t *err)
{
    bool path = kind != PAIR_QUERY;
    size_t mark = p->used;
    size_t ko, kl, vo, vl;
    if (path) {
        if (kn > GW_PARAM_KEY_MAX || p->used + kn > GW_PARAMS_BYTES)
            return adi_error_set(err, ADI_INVALID, "The query string is too long.");
        memcpy(p->bytes + p->used, k, kn);
        ko = p->used;
        kl = kn;
        p->used += kn;
    } else if (!decode_into(p, k, kn, true, false, GW_PARAM_KEY_MAX, &ko, &kl, err)) {
        p->used = mark;
        return ADI_INVALID;
    }
    if (!decode_into(p, v, vn, !path, kind == PAIR_LITERAL, GW_PARAM_VALUE_MAX, &vo, &vl, err)) {
        p->used = mark;
        return ADI_INVALID;
    }
    if (kl == 0) {
        p->used = mark;
        return ADI_OK;
    }
    for (size_t i = 0; i < p->n; i++) {
        if (p->kv[i].klen == kl && memcmp(p->bytes + p->kv[i].k, p->bytes + ko, kl) == 0) {
            /* The old bytes stay used: the storage bound keeps that finite. */
            p->kv[i].v = vo;
            p->kv[i].vlen = vl;
            return ADI_OK;
        }
    }
    if (p->n == GW_MAX_PARAMS) {
        p->used = mark;
        return adi_error_set(err, ADI_INVALID, "Too many query parameters (at most %d).",
                             GW_MAX_PARAMS);
    }
    p->kv[p->n].k = ko;
    p->kv[p->n].klen = kl;
    p->kv[p->n].v = vo;
    p->kv[p->n].vlen = vl;
    p->n++;
    return ADI_OK;
}

adi_err gw_params_add_query(gw_params_t *p, adi_str_t query, adi_error_t *err)
{
    const char *s = query.ptr;
    const char *end = query.ptr + query.len;
    if (s == NULL)
        return ADI_OK;
    while (s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(s, '=', (size_t)(pe - s));
        const char *ke = eq ? eq : pe;
        const char *v = eq ? eq + 1 : pe;
        adi_err e = add_pair(p, s, (size_t)(ke - s), v, (size_t)(pe - v), PAIR_QUERY, err);
        if (e != ADI_OK)
            return e;
        s = amp ? amp + 1 : end;
    }
    return ADI_OK;
}

adi_err gw_params_add_path(gw_params_t *p, adi_str_t name, adi_str_t raw, adi_error_t *err)
{
    return add_pair(p, name.ptr, name.len, raw.ptr, raw.len, PAIR_PATH, err);
}

adi_err gw_params_add_literal(gw_params_t *p, adi_str_t name, adi_str_t value, adi_error_t *err)
{
    return add_pair(p, name.ptr, name.len, value.ptr, value.len, PAIR_LITERAL, err);
}

void gw_params_remove(gw_params_t *p, adi_str_t name)
{
    size_t o = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->kv[i].klen == name.len && memcmp(p->bytes + p->kv[i].k, name.ptr, name.len) == 0)
            continue;
        p->kv[o++] = p->kv[i];
    }
    p->n = o;
}

static int buf_write(void *data, const char *buf, size_t len)
{
    adi_buf_append((adi_buf_t *)data, buf, len);
    return 0;
}

void gw_params_pack(const gw_params_t *p, adi_buf_t *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, buf_write);
    msgpack_pack_map(&pk, p->n);
    for (size_t i = 0; i < p->n; i++) {
        msgpack_pack_str(&pk, p->kv[i].klen);
        msgpack_pack_str_body(&pk, p->bytes + p->kv[i].k, p->kv[i].klen);
        msgpack_pack_str(&pk, p->kv[i].vlen);
        msgpack_pack_str_body(&pk, p->bytes + p->kv[i].v, p->kv[i].vlen);
    }
}

bool gw_request_id_valid(adi_str_t s)
{
    if (s.ptr == NULL || s.len == 0 || s.len > GW_REQUEST_ID_MAX)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-')
            return false;
    }
    return true;
}

adi_err gw_idem_key_parse(adi_str_t h, adi_str_t *key, adi_error_t *err)
{
    *key = ADI_STR_NULL;
    const char *p = h.ptr;
    size_t n = h.len;
    while (n > 0 && (*p == ' ' || *p == '\t'))
        p++, n--;
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n >= 2 && p[0] == '"' && p[n - 1] == '"')
        p++, n -= 2;
    if (p == NULL || n == 0 || n > GW_IDEM_KEY_MAX)
        return adi_error_set(err, ADI_INVALID, "Invalid Idempotency-Key header.");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x21 || c > 0x7e || c == '"' || c == '\\')
            return adi_error_set(err, ADI_INVALID, "Invalid Idempotency-Key header.");
    }
    *key = (adi_str_t){p, n};
    return ADI_OK;
}

bool gw_content_type_is_json(adi_str_t ct)
{
    if (ct.ptr == NULL)
        return false;
    size_t n = 0;
    while (n < ct.len && ct.ptr[n] != ';')
        n++;
    while (n > 0 && (ct.ptr[n - 1] == ' ' || ct.ptr[n - 1] == '\t'))
        n--;
    static const char app[] = "application/";
    size_t al = sizeof(app) - 1;
    if (n < al || strncasecmp(ct.ptr, app, al) != 0)
        return false;
    const char *sub = ct.ptr + al;
    size_t sn = n - al;
    if (sn == 4 && strncasecmp(sub, "json", 4) == 0)
        return true;
    return sn > 5 && strncasecmp(sub + sn - 5, "+json", 5) == 0;
}

const char *gw_body_type(const char *mp, size_t len)
{
    if (len == 0)
        return "NoneType";
    unsigned char c = (unsigned char)mp[0];
    if ((c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf)
        return NULL;
    if ((c >= 0x90 && c <= 0x9f) || c == 0xdc || c == 0xdd)
        return "list";
    if ((c >= 0xa0 && c <= 0xbf) || (c >= 0xd9 && c <= 0xdb))
        return "str";
    if (c <= 0x7f || c >= 0xe0 || (c >= 0xcc && c <= 0xd3))
        return "int";
    if (c == 0xca || c == 0xcb)
        return "float";
    if (c == 0xc2 || c == 0xc3)
        return "bool";
    if (c == 0xc0)
        return "NoneType";
    return "bytes";
}
