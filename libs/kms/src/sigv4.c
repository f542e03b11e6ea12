/* SPDX-License-Identifier: MIT */
/*
 * AWS Signature Version 4, header form. The request is reduced to its canonical request (method,
 * encoded path, sorted and re-encoded query, sorted lower-case headers with collapsed values,
 * signed-header list, payload hash), whose SHA-256 goes into the string to sign; the signature is
 * an HMAC-SHA256 chain keyed by "AWS4"+secret over date, region, service and "aws4_request". The
 * rules follow the aws-c-auth signing test suite (shared/testdata/sigv4), which the unit tests
 * replay case by case. OpenSSL 3 supplies SHA-256 (EVP_Digest) and HMAC (EVP_MAC); the derived
 * keys are cleansed before returning.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "adi/sigv4.h"

#define ALGORITHM  "AWS4-HMAC-SHA256"
#define SCOPE_TERM "aws4_request"
/* Longest region, service and access key id: far above any real one, small enough for scope. */
#define MAX_SCOPE_PART 128

static const char hex_lower[] = "0123456789abcdef";
static const char hex_upper[] = "0123456789ABCDEF";

/* Headers proxies and transports rewrite: signing them would break the signature in transit. */
static const char *const unsigned_headers[] = {
    "authorization", "connection", "expect", "user-agent", "x-amzn-trace-id",
};

/* ---- character classes and small helpers ------------------------------------------------ */

static bool is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* RFC 3986 unreserved: the only bytes SigV4 leaves unencoded. */
static bool is_unreserved(unsigned char c)
{
    return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 7230 tchar: what a method or a header name is made of. */
static bool is_tchar(unsigned char c)
{
    return is_alnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static unsigned char to_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void to_hex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_lower[p[i] >> 4];
        out[2 * i + 1] = hex_lower[p[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

/* Compares two byte strings as unsigned bytes, a prefix sorting first. */
static int bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n > 0 ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c;
    return (alen > blen) - (alen < blen);
}

/* Appends `n` bytes percent-encoding everything outside the unreserved set (and '/' if kept). */
static void append_encoded(adi_buf_t *b, const char *p, size_t n, bool keep_slash)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            adi_buf_append(b, &p[i], 1);
        } else {
            char esc[3] = {'%', hex_upper[c >> 4], hex_upper[c & 0x0f]};
            adi_buf_append(b, esc, 3);
        }
    }
}

/* Frees a buffer after wiping what it held (it may contain the session token). */
static void buf_cleanse_dispose(adi_buf_t *b)
{
    if (b->data != NULL)
        OPENSSL_cleanse(b->data, b->cap);
    adi_buf_dispose(b);
}

/* ---- input checks ----------------------------------------------------------------------- */

/* A region, service or access key id: printable, no '/', ',' or '=' that would break the scope. */
static bool valid_scope_part(adi_str_t s)
{
    if (s.ptr == NULL || s.len == 0 || s.len > MAX_SCOPE_PART)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c <= 0x20 || c >= 0x7f || c == '/' || c == ',' || c == '=')
            return false;
    }
    return true;
}

static bool valid_digits(const char *p, size_t n, int lo, int hi)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    return v >= lo && v <= hi;
}

/* "YYYYMMDDTHHMMSSZ" with plausible field ranges (leap seconds allowed). */
static bool valid_amz_date(adi_str_t d)
{
    if (d.ptr == NULL || d.len != 16 || d.ptr[8] != 'T' || d.ptr[15] != 'Z')
        return false;
    return valid_digits(d.ptr, 4, 0, 9999) && valid_digits(d.ptr + 4, 2, 1, 12) &&
           valid_digits(d.ptr + 6, 2, 1, 31) && valid_digits(d.ptr + 9, 2, 0, 23) &&
           valid_digits(d.ptr + 11, 2, 0, 59) && valid_digits(d.ptr + 13, 2, 0, 60);
}

/*
 * A header value may hold any visible byte, SP, HT and obs-text, plus folds: CR only before LF,
 * LF only before SP or HT (a continuation line). Anything else could smuggle a header.
 */
static bool valid_header_value(adi_str_t v)
{
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.ptr[i];
        if (c == '\r') {
            if (i + 1 >= v.len || v.ptr[i + 1] != '\n')
                return false;
        } else if (c == '\n') {
            if (i + 1 >= v.len || (v.ptr[i + 1] != ' ' && v.ptr[i + 1] != '\t'))
                return false;
        } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return false;
        }
    }
    return true;
}

static bool valid_token(adi_str_t s, size_t max)
{
    if (s.ptr == NULL || s.len == 0 || s.len > max)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        if (!is_tchar((unsigned char)s.ptr[i]))
            return false;
    }
    return true;
}

/* A session token or payload hash override: visible ASCII only. */
static bool valid_visible(adi_str_t s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c <= 0x20 || c >= 0x7f)
            return false;
    }
    return true;
}

static adi_err check_params(const adi_sigv4_params_t *p, adi_error_t *err)
{
    const adi_sigv4_credentials_t *cr = p->credentials;
    if (!valid_token(p->method, 32))
        return adi_error_set(err, ADI_INVALID, "SigV4: the method must be an HTTP token.");
    if ((p->path.ptr == NULL && p->path.len > 0) || (p->query.ptr == NULL && p->query.len > 0))
        return adi_error_set(err, ADI_INVALID, "SigV4: path or query missing.");
    if (p->path.len > ADI_SIGV4_MAX_PATH)
        return adi_error_set(err, ADI_TOO_LARGE, "SigV4: the path exceeds %d bytes.",
                             ADI_SIGV4_MAX_PATH);
    if (p->path.len > 0 && p->path.ptr[0] != '/')
        return adi_error_set(err, ADI_INVALID, "SigV4: the path must start with '/'.");
    if (p->query.len > ADI_SIGV4_MAX_QUERY)
        return adi_error_set(err, ADI_TOO_LARGE, "SigV4: the query string exceeds %d bytes.",
                             ADI_SIGV4_MAX_QUERY);
    if (p->nheaders > ADI_SIGV4_MAX_HEADERS)
        return adi_error_set(err, ADI_TOO_LARGE, "SigV4: more than %d headers.",
                             ADI_SIGV4_MAX_HEADERS);
    if (p->nheaders > 0 && p->headers == NULL)
        return adi_error_set(err, ADI_INVALID, "SigV4: headers missing.");
    if (p->body.len > 0 && p->body.ptr == NULL)
        return adi_error_set(err, ADI_INVALID, "SigV4: body missing.");
    if (p->payload_hash.ptr != NULL &&
        (p->payload_hash.len == 0 || p->payload_hash.len > 64 || !valid_visible(p->payload_hash)))
        return adi_error_set(err, ADI_INVALID,
                             "SigV4: the payload hash must be 1 to 64 visible characters.");
    if (cr == NULL)
        return adi_error_set(err, ADI_INVALID, "SigV4: credentials missing.");
    if (!valid_scope_part(cr->access_key_id))
        return adi_error_set(err, ADI_INVALID, "SigV4: the access key id is missing or malformed.");
    if (cr->secret_access_key.ptr == NULL || cr->secret_access_key.len == 0)
        return adi_error_set(err, ADI_INVALID, "SigV4: the secret access key is missing.");
    if (cr->secret_access_key.len > ADI_SIGV4_MAX_SECRET)
        return adi_error_set(err, ADI_TOO_LARGE, "SigV4: the secret access key exceeds %d bytes.",
                             ADI_SIGV4_MAX_SECRET);
    if (cr->session_token.len > ADI_SIGV4_MAX_VALUE)
        return adi_error_set(err, ADI_TOO_LARGE, "SigV4: the session token exceeds %d bytes.",
                             ADI_SIGV4_MAX_VALUE);
    if (cr->session_token.len > 0 &&
        (cr->session_token.ptr == NULL || !valid_visible(cr->session_token)))
        return adi_error_set(err, ADI_INVALID,
                             "SigV4: the session token holds characters a header cannot carry.");
    if (!valid_scope_part(p->region))
        return adi_error_set(err, ADI_INVALID, "SigV4: the region is missing or malformed.");
    if (!valid_scope_part(p->service))
        return adi_error_set(err, ADI_INVALID, "SigV4: the service is missing or malformed.");
    if (!valid_amz_date(p->amz_date))
        return adi_error_set(err, ADI_INVALID,
                             "SigV4: the date must be ISO 8601 basic UTC (YYYYMMDDTHHMMSSZ).");
    return ADI_OK;
}

/* ---- canonical URI ---------------------------------------------------------------------- */

/*
 * Normalises like aws-c-auth: empty and "." segments vanish, ".." drops the previous segment (never
 * above the root), and a path that ended in '/' keeps its trailing slash. Each surviving segment is
 * percent-encoded once.
 */
static void append_canonical_path(adi_buf_t *b, adi_str_t path, bool normalize)
{
    if (path.len == 0) {
        adi_buf_append(b, "/", 1);
        return;
    }
    if (!normalize) {
        append_encoded(b, path.ptr, path.len, true);
        return;
    }
    /* At most one segment per byte: bounded by ADI_SIGV4_MAX_PATH, checked before. */
    size_t nseg = 0;
    adi_str_t *seg = adi_xmalloc(sizeof(*seg) * (path.len + 1));
    size_t i = 0;
    while (i < path.len) {
        size_t start = i;
        while (i < path.len && path.ptr[i] != '/')
            i++;
        adi_str_t s = {path.ptr + start, i - start};
        if (s.len == 0 || (s.len == 1 && s.ptr[0] == '.')) {
            /* Nothing: "//" and "/./" collapse. */
        } else if (s.len == 2 && s.ptr[0] == '.' && s.ptr[1] == '.') {
            if (nseg > 0)
                nseg--;
        } else {
            seg[nseg++] = s;
        }
        i++;
    }
    for (size_t k = 0; k < nseg; k++) {
        adi_buf_append(b, "/", 1);
        append_encoded(b, seg[k].ptr, seg[k].len, false);
    }
    if (nseg == 0 || path.ptr[path.len - 1] == '/')
        adi_buf_append(b, "/", 1);
    free(seg);
}

/* ---- canonical query -------------------------------------------------------------------- */

/* One query parameter: offsets into the scratch buffer while building, pointers when sorting. */
typedef struct query_param {
    size_t koff, klen; /* encoded key in scratch */
    size_t voff, vlen; /* encoded value in scratch */
    const char *key;   /* resolved key, after scratch stops growing */
    const char *val;   /* resolved value */
} query_param_t;

static int query_param_cmp(const void *a, const void *b)
{
    const query_param_t *x = a;
    const query_param_t *y = b;
    int c = bytes_cmp(x->key, x->klen, y->key, y->klen);
    return c != 0 ? c : bytes_cmp(x->val, x->vlen, y->val, y->vlen);
}

/* Percent-decodes `s` and appends it re-encoded; false on a malformed escape. */
static bool append_reencoded(adi_buf_t *b, adi_str_t s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '%') {
            if (i + 2 >= s.len)
                return false;
            int hi = hex_value((unsigned char)s.ptr[i + 1]);
            int lo = hex_value((unsigned char)s.ptr[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        char ch = (char)c;
        append_encoded(b, &ch, 1, false);
    }
    return true;
}

static adi_err append_canonical_query(adi_buf_t *b, adi_str_t query, adi_error_t *err)
{
    adi_err rc = ADI_OK;
    adi_buf_t scratch;
    adi_buf_init(&scratch);
    /* At most one parameter per byte, plus one: bounded by ADI_SIGV4_MAX_QUERY. */
    query_param_t *qp = adi_xcalloc(query.len + 1, sizeof(*qp));
    size_t n = 0;
    size_t i = 0;
    while (i < query.len) {
        size_t start = i;
        while (i < query.len && query.ptr[i] != '&')
            i++;
        adi_str_t item = {query.ptr + start, i - start};
        i++;
        if (item.len == 0)
            continue;
        const char *eq = memchr(item.ptr, '=', item.len);
        adi_str_t key = {item.ptr, eq != NULL ? (size_t)(eq - item.ptr) : item.len};
        adi_str_t val = ADI_STR("");
        if (eq != NULL)
            val = (adi_str_t){eq + 1, item.len - key.len - 1};
        query_param_t *p = &qp[n++];
        p->koff = scratch.len;
        bool ok = append_reencoded(&scratch, key);
        p->klen = scratch.len - p->koff;
        p->voff = scratch.len;
        ok = ok && append_reencoded(&scratch, val);
        p->vlen = scratch.len - p->voff;
        if (!ok) {
            rc = adi_error_set(err, ADI_INVALID,
                               "SigV4: the query string holds a malformed percent-escape.");
            goto out;
        }
    }
    /* Only empty keys and values ("=", "&=&") leave scratch unallocated (data NULL). */
    const char *base = scratch.data != NULL ? scratch.data : "";
    for (size_t k = 0; k < n; k++) {
        qp[k].key = base + qp[k].koff;
        qp[k].val = base + qp[k].voff;
    }
    if (n > 1)
        qsort(qp, n, sizeof(*qp), query_param_cmp);
    for (size_t k = 0; k < n; k++) {
        if (k > 0)
            adi_buf_append(b, "&", 1);
        adi_buf_append(b, qp[k].key, qp[k].klen);
        adi_buf_append(b, "=", 1);
        adi_buf_append(b, qp[k].val, qp[k].vlen);
    }
out:
    free(qp);
    adi_buf_dispose(&scratch);
    return rc;
}

/* ---- canonical headers ------------------------------------------------------------------ */

/* One header to sign: lower-case name and canonical value, first in scratch, then resolved. */
typedef struct sign_header {
    size_t noff, nlen; /* lower-case name in scratch */
    size_t voff, vlen; /* trimmed, whitespace-collapsed value in scratch */
    size_t order;      /* position in the input, so repeated headers keep their order */
    const char *name;  /* resolved name */
    const char *value; /* resolved value */
} sign_header_t;

static int sign_header_cmp(const void *a, const void *b)
{
    const sign_header_t *x = a;
    const sign_header_t *y = b;
    int c = bytes_cmp(x->name, x->nlen, y->name, y->nlen);
    if (c != 0)
        return c;
    return (x->order > y->order) - (x->order < y->order);
}

/* Appends `v` trimmed, with every run of SP, HT, CR and LF reduced to one space. */
static void append_collapsed(adi_buf_t *b, adi_str_t v)
{
    size_t i = 0;
    bool pending_space = false;
    bool any = false;
    while (i < v.len) {
        unsigned char c = (unsigned char)v.ptr[i];
        if (is_space(c)) {
            pending_space = any;
            i++;
            continue;
        }
        if (pending_space)
            adi_buf_append(b, " ", 1);
        pending_space = false;
        size_t start = i;
        while (i < v.len && !is_space((unsigned char)v.ptr[i]))
            i++;
        adi_buf_append(b, v.ptr + start, i - start);
        any = true;
    }
}

static bool is_unsigned_header(const char *lname, size_t len)
{
    for (size_t i = 0; i < sizeof(unsigned_headers) / sizeof(unsigned_headers[0]); i++) {
        if (strlen(unsigned_headers[i]) == len && memcmp(unsigned_headers[i], lname, len) == 0)
            return true;
    }
    return false;
}

static void add_sign_header(adi_buf_t *scratch, sign_header_t *h, size_t order, adi_str_t lname,
                            adi_str_t value)
{
    h->order = order;
    h->noff = scratch->len;
    adi_buf_append(scratch, lname.ptr, lname.len);
    h->nlen = lname.len;
    h->voff = scratch->len;
    append_collapsed(scratch, value);
    h->vlen = scratch->len - h->voff;
}

/*
 * Appends the canonical header block (each "name:value\n") to `creq` and the signed-header list
 * to `signed_list`.
 */
static adi_err append_canonical_headers(adi_buf_t *creq, adi_buf_t *signed_list,
                                        const adi_sigv4_params_t *p, const char *payload_hash,
                                        adi_error_t *err)
{
    const adi_sigv4_credentials_t *cr = p->credentials;
    bool sign_token = cr->session_token.len > 0 && !p->omit_session_token;
    sign_header_t hs[ADI_SIGV4_MAX_HEADERS + ADI_SIGV4_MAX_ADDED];
    size_t n = 0;
    bool have_host = false;
    adi_err rc = ADI_OK;
    adi_buf_t scratch;
    adi_buf_init(&scratch);
    for (size_t i = 0; i < p->nheaders; i++) {
        const adi_sigv4_header_t *h = &p->headers[i];
        if (!valid_token(h->name, ADI_SIGV4_MAX_NAME)) {
            rc = adi_error_set(err, ADI_INVALID, "SigV4: header %zu has a malformed name.", i + 1);
            goto out;
        }
        if (h->value.len > ADI_SIGV4_MAX_VALUE) {
            rc = adi_error_set(err, ADI_TOO_LARGE, "SigV4: header %zu exceeds %d bytes.", i + 1,
                               ADI_SIGV4_MAX_VALUE);
            goto out;
        }
        if ((h->value.len > 0 && h->value.ptr == NULL) || !valid_header_value(h->value)) {
            rc = adi_error_set(err, ADI_INVALID,
                               "SigV4: header %zu has a control character in its value.", i + 1);
            goto out;
        }
        char lname[ADI_SIGV4_MAX_NAME];
        for (size_t k = 0; k < h->name.len; k++)
            lname[k] = (char)to_lower((unsigned char)h->name.ptr[k]);
        adi_str_t ln = {lname, h->name.len};
        if (is_unsigned_header(lname, ln.len))
            continue;
        if (adi_str_eq_c(ln, "x-amz-date") ||
            (sign_token && adi_str_eq_c(ln, "x-amz-security-token")) ||
            (p->sign_body && adi_str_eq_c(ln, "x-amz-content-sha256"))) {
            rc = adi_error_set(err, ADI_INVALID,
                               "SigV4: header %zu (%.*s) is added by the signer itself.", i + 1,
                               (int)ln.len, lname);
            goto out;
        }
        if (adi_str_eq_c(ln, "host"))
            have_host = true;
        add_sign_header(&scratch, &hs[n], n, ln, h->value);
        n++;
    }
    if (!have_host) {
        rc = adi_error_set(err, ADI_INVALID, "SigV4: the request has no Host header.");
        goto out;
    }
    add_sign_header(&scratch, &hs[n], n, ADI_STR("x-amz-date"), p->amz_date);
    n++;
    if (sign_token) {
        add_sign_header(&scratch, &hs[n], n, ADI_STR("x-amz-security-token"), cr->session_token);
        n++;
    }
    if (p->sign_body) {
        add_sign_header(&scratch, &hs[n], n, ADI_STR("x-amz-content-sha256"),
                        adi_str_c(payload_hash));
        n++;
    }
    for (size_t k = 0; k < n; k++) {
        hs[k].name = scratch.data + hs[k].noff;
        hs[k].value = scratch.data + hs[k].voff;
    }
    qsort(hs, n, sizeof(hs[0]), sign_header_cmp);
    for (size_t k = 0; k < n; k++) {
        bool same_as_prev =
            k > 0 && bytes_cmp(hs[k].name, hs[k].nlen, hs[k - 1].name, hs[k - 1].nlen) == 0;
        if (same_as_prev) {
            adi_buf_append(creq, ",", 1);
        } else {
            if (k > 0) {
                adi_buf_append(creq, "\n", 1);
                adi_buf_append(signed_list, ";", 1);
            }
            adi_buf_append(creq, hs[k].name, hs[k].nlen);
            adi_buf_append(creq, ":", 1);
            adi_buf_append(signed_list, hs[k].name, hs[k].nlen);
        }
        adi_buf_append(creq, hs[k].value, hs[k].vlen);
    }
    adi_buf_append(creq, "\n", 1);
out:
    buf_cleanse_dispose(&scratch);
    return rc;
}

/* ---- hashing ---------------------------------------------------------------------------- */

static bool sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(len > 0 ? data : "", len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return false;
    to_hex(md, 32, out);
    return true;
}

/* One HMAC-SHA256 with a context prepared by the caller: out = HMAC(key, data). */
static bool hmac_sha256(EVP_MAC_CTX *ctx, const void *key, size_t klen, const void *data,
                        size_t dlen, unsigned char out[32])
{
    OSSL_PARAM params[2];
    char digest[] = "SHA256";
    size_t olen = 0;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_init(ctx, key, klen, params) != 1)
        return false;
    if (EVP_MAC_update(ctx, data, dlen) != 1)
        return false;
    if (EVP_MAC_final(ctx, out, &olen, 32) != 1)
        return false;
    return olen == 32;
}

/* signature = HMAC(HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), term), sts). */
static adi_err compute_signature(const adi_sigv4_params_t *p, const adi_buf_t *sts, char out[65],
                                 adi_error_t *err)
{
    adi_str_t secret = p->credentials->secret_access_key;
    unsigned char k0[4 + ADI_SIGV4_MAX_SECRET];
    unsigned char k[32];
    unsigned char sig[32];
    adi_err rc = ADI_OK;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    if (ctx == NULL) {
        rc = adi_error_set(err, ADI_INTERNAL, "SigV4: OpenSSL has no HMAC.");
        goto out;
    }
    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, secret.ptr, secret.len);
    bool ok = hmac_sha256(ctx, k0, 4 + secret.len, p->amz_date.ptr, 8, k) &&
              hmac_sha256(ctx, k, 32, p->region.ptr, p->region.len, k) &&
              hmac_sha256(ctx, k, 32, p->service.ptr, p->service.len, k) &&
              hmac_sha256(ctx, k, 32, SCOPE_TERM, strlen(SCOPE_TERM), k) &&
              hmac_sha256(ctx, k, 32, sts->data, sts->len, sig);
    if (!ok) {
        rc = adi_error_set(err, ADI_INTERNAL, "SigV4: HMAC-SHA256 failed.");
        goto out;
    }
    to_hex(sig, 32, out);
out:
    OPENSSL_cleanse(k0, sizeof(k0));
    OPENSSL_cleanse(k, sizeof(k));
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return rc;
}

/* ---- public API ------------------------------------------------------------------------- */

static void result_init(adi_sigv4_result_t *r)
{
    memset(r, 0, sizeof(*r));
    adi_buf_init(&r->canonical_request);
    adi_buf_init(&r->string_to_sign);
    adi_buf_init(&r->authorization);
    adi_buf_init(&r->session_token_);
}

void adi_sigv4_result_dispose(adi_sigv4_result_t *r)
{
    buf_cleanse_dispose(&r->canonical_request);
    buf_cleanse_dispose(&r->string_to_sign);
    buf_cleanse_dispose(&r->authorization);
    buf_cleanse_dispose(&r->session_token_);
    OPENSSL_cleanse(r, sizeof(*r));
    result_init(r);
}

adi_err adi_sigv4_sign(const adi_sigv4_params_t *p, adi_sigv4_result_t *out, adi_error_t *err)
{
    result_init(out);
    adi_err rc = check_params(p, err);
    if (rc != ADI_OK)
        return rc;

    adi_buf_t signed_list;
    adi_buf_init(&signed_list);
    memcpy(out->amz_date, p->amz_date.ptr, 16);
    out->amz_date[16] = '\0';
    if (p->payload_hash.ptr != NULL) {
        memcpy(out->payload_hash, p->payload_hash.ptr, p->payload_hash.len);
        out->payload_hash[p->payload_hash.len] = '\0';
    } else if (!sha256_hex(p->body.ptr, p->body.len, out->payload_hash)) {
        rc = adi_error_set(err, ADI_INTERNAL, "SigV4: SHA-256 failed.");
        goto out;
    }

    /* Canonical request. */
    adi_buf_t *creq = &out->canonical_request;
    adi_buf_append(creq, p->method.ptr, p->method.len);
    adi_buf_append(creq, "\n", 1);
    append_canonical_path(creq, p->path, p->normalize_path);
    adi_buf_append(creq, "\n", 1);
    rc = append_canonical_query(creq, p->query, err);
    if (rc != ADI_OK)
        goto out;
    adi_buf_append(creq, "\n", 1);
    rc = append_canonical_headers(creq, &signed_list, p, out->payload_hash, err);
    if (rc != ADI_OK)
        goto out;
    adi_buf_append(creq, "\n", 1);
    adi_buf_append(creq, signed_list.data, signed_list.len);
    adi_buf_append(creq, "\n", 1);
    adi_buf_append_str(creq, out->payload_hash);

    /* String to sign. */
    char creq_hash[65];
    if (!sha256_hex(creq->data, creq->len, creq_hash)) {
        rc = adi_error_set(err, ADI_INTERNAL, "SigV4: SHA-256 failed.");
        goto out;
    }
    adi_buf_t *sts = &out->string_to_sign;
    adi_buf_printf(sts, "%s\n%s\n%.8s/%.*s/%.*s/%s\n%s", ALGORITHM, out->amz_date, out->amz_date,
                   (int)p->region.len, p->region.ptr, (int)p->service.len, p->service.ptr,
                   SCOPE_TERM, creq_hash);

    rc = compute_signature(p, sts, out->signature, err);
    if (rc != ADI_OK)
        goto out;

    adi_str_t ak = p->credentials->access_key_id;
    adi_buf_printf(
        &out->authorization, "%s Credential=%.*s/%.8s/%.*s/%.*s/%s, SignedHeaders=%s, Signature=%s",
        ALGORITHM, (int)ak.len, ak.ptr, out->amz_date, (int)p->region.len, p->region.ptr,
        (int)p->service.len, p->service.ptr, SCOPE_TERM, signed_list.data, out->signature);
    if (p->credentials->session_token.len > 0)
        adi_buf_append(&out->session_token_, p->credentials->session_token.ptr,
                       p->credentials->session_token.len);
    out->content_sha256_ = p->sign_body;
out:
    adi_buf_dispose(&signed_list);
    if (rc != ADI_OK)
        adi_sigv4_result_dispose(out);
    return rc;
}

size_t adi_sigv4_result_headers(const adi_sigv4_result_t *r,
                                adi_sigv4_header_t out[ADI_SIGV4_MAX_ADDED])
{
    size_t n = 0;
    if (r->session_token_.len > 0)
        out[n++] = (adi_sigv4_header_t){ADI_STR("X-Amz-Security-Token"),
                                        {r->session_token_.data, r->session_token_.len}};
    out[n++] = (adi_sigv4_header_t){ADI_STR("X-Amz-Date"), adi_str_c(r->amz_date)};
    if (r->content_sha256_)
        out[n++] =
            (adi_sigv4_header_t){ADI_STR("x-amz-content-sha256"), adi_str_c(r->payload_hash)};
    out[n++] = (adi_sigv4_header_t){ADI_STR("Authorization"),
                                    {r->authorization.data, r->authorization.len}};
    return n;
}

adi_err adi_sigv4_amz_date(int64_t epoch_s, char out[17], adi_error_t *err)
{
    /* 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59Z: four-digit years, nothing before the epoch. */
    out[0] = '\0';
    if (epoch_s < 0 || epoch_s > 253402300799LL)
        return adi_error_set(err, ADI_INVALID, "SigV4: the time is outside 1970-9999.");
    time_t t = (time_t)epoch_s;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL)
        return adi_error_set(err, ADI_INVALID, "SigV4: the time cannot be represented.");
    if (strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16) {
        out[0] = '\0';
        return adi_error_set(err, ADI_INVALID, "SigV4: the time cannot be represented.");
    }
    return ADI_OK;
}
