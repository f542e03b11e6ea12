/* SPDX-License-Identifier: MIT */
/*
 * Token verification. libjwt checks signatures only, and skips even that when it is handed no
 * key or a header saying alg "none"; so nothing from the token is trusted until, in this order:
 *   1. the length is bounded and the token is three non-empty strict base64url segments;
 *   2. the header, decoded here, is a JSON object whose alg is exactly the pinned algorithm
 *      ("none" and any other algorithm are refused before libjwt sees the token, which defeats
 *      algorithm confusion such as an HS256 token "signed" with the RSA public key);
 *   3. the signature has the exact length for the key; for HS256 it is also recomputed here and
 *      compared in constant time; the payload, decoded here with duplicate keys refused, must
 *      be a JSON object; then libjwt's jwt_decode verifies the signature with the (never empty)
 *      key, and the algorithm libjwt reports must again be the pinned one;
 *   4. only then are the claims trusted: they must be well-typed and sane, not expired (exp
 *      with leeway), not early (nbf, iat), and token_type must be the expected one.
 */
#include <stdlib.h>
#include <strings.h>

#include <jansson.h>

#include "jwt_int.h"

/* Decoded header bytes accepted (real headers are about 40 bytes). */
#define HEADER_MAX 1024
/* Decoded payload bytes accepted: whatever fits in a maximal token. */
#define PAYLOAD_MAX ADI_B64_DECODED_MAX(ADI_JWT_TOKEN_MAX)
/* Largest signature: RSA-16384 is 2048 bytes; anything longer cannot verify. */
#define SIG_MAX 2048

/* Records the verdict and returns `r` (claim: static claim name or NULL). */
static adi_jwt_reason refuse(adi_jwt_verdict_t *why, adi_jwt_reason r, const char *claim)
{
    why->reason = r;
    why->claim = claim;
    return r;
}

/* Decodes a base64url segment into JSON (duplicate keys refused); NULL if either step fails. */
static json_t *segment_json(adi_str_t seg, unsigned char *buf, size_t cap)
{
    size_t n = 0;
    if (seg.len > ADI_B64URL_LEN(cap) || adi_b64url_decode(seg, buf, cap, &n, NULL) != ADI_OK)
        return NULL;
    json_error_t jerr;
    json_t *v = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, &jerr);
    if (v != NULL && !json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* Step 2: the header names exactly the pinned algorithm and nothing we would have to honour. */
static adi_jwt_reason check_header(const adi_jwt_t *j, adi_str_t seg, adi_jwt_verdict_t *why)
{
    unsigned char buf[HEADER_MAX];
    json_t *hdr = segment_json(seg, buf, sizeof(buf));
    if (hdr == NULL)
        return refuse(why, ADI_JWT_R_BAD_HEADER, NULL);
    adi_jwt_reason r = ADI_JWT_R_OK;
    json_t *alg = json_object_get(hdr, "alg");
    if (!json_is_string(alg))
        r = refuse(why, ADI_JWT_R_BAD_HEADER, "alg");
    else if (strcasecmp(json_string_value(alg), "none") == 0)
        r = refuse(why, ADI_JWT_R_ALG_NONE, "alg");
    else if (strcmp(json_string_value(alg), adi_jwt_alg_name(j->alg)) != 0 ||
             strlen(json_string_value(alg)) != json_string_length(alg))
        r = refuse(why, ADI_JWT_R_ALG_MISMATCH, "alg");
    else if (json_object_get(hdr, "crit") != NULL)
        /* RFC 7515 4.1.11: critical extensions we do not implement make the token invalid. */
        r = refuse(why, ADI_JWT_R_BAD_HEADER, "crit");
    json_decref(hdr);
    return r;
}

/* Step 3a: the signature has the exact length for the key, and for HS256 our own HMAC matches. */
static adi_jwt_reason check_signature(const adi_jwt_t *j, adi_str_t token, size_t signed_len,
                                      adi_str_t sig_seg, adi_jwt_verdict_t *why)
{
    unsigned char sig[SIG_MAX];
    size_t sig_len = 0;
    if (sig_seg.len > ADI_B64URL_LEN(sizeof(sig)) ||
        adi_b64url_decode(sig_seg, sig, sizeof(sig), &sig_len, NULL) != ADI_OK ||
        sig_len != j->sig_len)
        return refuse(why, ADI_JWT_R_BAD_SIGNATURE, NULL);
    if (j->alg == ADI_JWT_HS256) {
        unsigned char mac[ADI_SHA256_LEN];
        adi_hmac_sha256(j->verify_key.ptr, j->verify_key.len, token.ptr, signed_len, mac);
        if (!adi_crypto_equal(mac, sig, sizeof(mac)))
            return refuse(why, ADI_JWT_R_BAD_SIGNATURE, NULL);
    }
    return ADI_JWT_R_OK;
}

/* Step 3b: libjwt verifies the signature with the configured key, for every algorithm. */
static adi_jwt_reason libjwt_verify(const adi_jwt_t *j, adi_str_t token, adi_jwt_verdict_t *why)
{
    /* libjwt wants a C string. The key is never empty (adi_jwt_new), so libjwt cannot fall
     * back to "parse without checking the signature". */
    char copy[ADI_JWT_TOKEN_MAX + 1];
    memcpy(copy, token.ptr, token.len);
    copy[token.len] = '\0';
    jwt_t *jwt = NULL;
    int rc = jwt_decode(&jwt, copy, j->verify_key.ptr, (int)j->verify_key.len);
    adi_jwt_reason r = ADI_JWT_R_OK;
    if (rc != 0 || jwt == NULL)
        r = refuse(why, ADI_JWT_R_BAD_SIGNATURE, NULL);
    else if (jwt_get_alg(jwt) != adi_jwt__libjwt_alg(j->alg))
        r = refuse(why, ADI_JWT_R_ALG_MISMATCH, "alg");
    jwt_free(jwt);
    return r;
}

/* Reads a required integer claim; returns OK, MISSING_CLAIM or BAD_CLAIM. */
static adi_jwt_reason int_claim(json_t *obj, const char *name, int64_t *out, adi_jwt_verdict_t *why)
{
    json_t *v = json_object_get(obj, name);
    if (v == NULL)
        return refuse(why, ADI_JWT_R_MISSING_CLAIM, name);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return refuse(why, ADI_JWT_R_BAD_CLAIM, name);
    *out = (int64_t)json_integer_value(v);
    return ADI_JWT_R_OK;
}

/* Reads a required string claim of at most `max` bytes without NULs into `out` (max + 1). */
static adi_jwt_reason str_claim(json_t *obj, const char *name, char *out, size_t max,
                                adi_jwt_verdict_t *why)
{
    json_t *v = json_object_get(obj, name);
    if (v == NULL)
        return refuse(why, ADI_JWT_R_MISSING_CLAIM, name);
    if (!json_is_string(v) || json_string_length(v) > max ||
        strlen(json_string_value(v)) != json_string_length(v))
        return refuse(why, ADI_JWT_R_BAD_CLAIM, name);
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return ADI_JWT_R_OK;
}

/* tenant_id: absent or null (no tenant), else a UUID. */
static adi_jwt_reason tenant_claim(json_t *obj, adi_jwt_claims_t *c, adi_jwt_verdict_t *why)
{
    json_t *v = json_object_get(obj, "tenant_id");
    if (v == NULL || json_is_null(v))
        return ADI_JWT_R_OK;
    if (str_claim(obj, "tenant_id", c->tenant_id, ADI_JWT_UUID_LEN, why) != ADI_JWT_R_OK ||
        !adi_uuid_valid(adi_str_c(c->tenant_id))) {
        c->tenant_id[0] = '\0';
        return refuse(why, ADI_JWT_R_BAD_CLAIM, "tenant_id");
    }
    return ADI_JWT_R_OK;
}

/* roles: absent (none) or an array of at most ADI_JWT_MAX_ROLES valid role names. */
static adi_jwt_reason roles_claim(json_t *obj, adi_jwt_claims_t *c, adi_jwt_verdict_t *why)
{
    json_t *v = json_object_get(obj, "roles");
    if (v == NULL)
        return ADI_JWT_R_OK;
    if (!json_is_array(v) || json_array_size(v) > ADI_JWT_MAX_ROLES)
        return refuse(why, ADI_JWT_R_BAD_CLAIM, "roles");
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *r = json_array_get(v, i);
        if (!json_is_string(r) || !adi_jwt__role_valid(json_string_value(r), json_string_length(r)))
            return refuse(why, ADI_JWT_R_BAD_CLAIM, "roles");
        memcpy(c->roles[i], json_string_value(r), json_string_length(r) + 1);
    }
    c->nroles = json_array_size(v);
    return ADI_JWT_R_OK;
}

/* Step 4: the claims, their sanity, the times and the type. */
static adi_jwt_reason check_claims(const adi_jwt_t *j, json_t *p, adi_jwt_type expected,
                                   int64_t now_s, adi_jwt_claims_t *c, adi_jwt_verdict_t *why)
{
    char type[16];
    adi_jwt_reason r = int_claim(p, "exp", &c->exp, why);
    if (r == ADI_JWT_R_OK)
        r = int_claim(p, "iat", &c->iat, why);
    if (r == ADI_JWT_R_OK)
        r = str_claim(p, "token_type", type, sizeof(type) - 1, why);
    if (r == ADI_JWT_R_OK)
        r = str_claim(p, "jti", c->jti, ADI_JWT_JTI_LEN, why);
    if (r == ADI_JWT_R_OK)
        r = str_claim(p, "user_id", c->user_id, ADI_JWT_UUID_LEN, why);
    if (r != ADI_JWT_R_OK)
        return r;
    if (strcmp(type, "access") == 0)
        c->token_type = ADI_JWT_ACCESS;
    else if (strcmp(type, "refresh") == 0)
        c->token_type = ADI_JWT_REFRESH;
    else
        return refuse(why, ADI_JWT_R_BAD_CLAIM, "token_type");
    if (!adi_jwt__jti_valid(c->jti, strlen(c->jti)))
        return refuse(why, ADI_JWT_R_BAD_CLAIM, "jti");
    if (!adi_uuid_valid(adi_str_c(c->user_id)))
        return refuse(why, ADI_JWT_R_BAD_CLAIM, "user_id");
    r = tenant_claim(p, c, why);
    if (r == ADI_JWT_R_OK)
        r = roles_claim(p, c, why);
    if (r == ADI_JWT_R_OK && json_object_get(p, "ver") != NULL)
        r = int_claim(p, "ver", &c->ver, why);
    if (r != ADI_JWT_R_OK)
        return r;
    json_t *su = json_object_get(p, "is_superuser");
    if (su != NULL && !json_is_boolean(su))
        return refuse(why, ADI_JWT_R_BAD_CLAIM, "is_superuser");
    c->is_superuser = su != NULL && json_is_true(su);
    if (json_object_get(p, "email") != NULL &&
        str_claim(p, "email", c->email, ADI_JWT_EMAIL_MAX, why) != ADI_JWT_R_OK) {
        c->email[0] = '\0';
        return refuse(why, ADI_JWT_R_BAD_CLAIM, "email");
    }
    /* As PyJWT: expired when exp <= now - leeway. */
    if (c->exp <= now_s - j->leeway_s)
        return refuse(why, ADI_JWT_R_EXPIRED, "exp");
    json_t *nbf = json_object_get(p, "nbf");
    if (nbf != NULL && !json_is_integer(nbf))
        return refuse(why, ADI_JWT_R_BAD_CLAIM, "nbf");
    if (nbf != NULL && json_integer_value(nbf) > now_s + j->leeway_s)
        return refuse(why, ADI_JWT_R_NOT_YET_VALID, "nbf");
    if (c->iat > now_s + j->leeway_s)
        return refuse(why, ADI_JWT_R_NOT_YET_VALID, "iat");
    if (c->token_type != expected)
        return refuse(why, ADI_JWT_R_WRONG_TYPE, "token_type");
    return ADI_JWT_R_OK;
}

/* Steps 1 to 4; fills `why` and `c`. */
static adi_jwt_reason verify(const adi_jwt_t *j, adi_str_t token, adi_jwt_type expected,
                             int64_t now_s, adi_jwt_claims_t *c, adi_jwt_verdict_t *why)
{
    if (token.ptr == NULL || token.len == 0)
        return refuse(why, ADI_JWT_R_EMPTY, NULL);
    if (token.len > ADI_JWT_TOKEN_MAX)
        return refuse(why, ADI_JWT_R_TOO_LONG, NULL);
    const char *d1 = memchr(token.ptr, '.', token.len);
    const char *end = token.ptr + token.len;
    const char *d2 = d1 != NULL ? memchr(d1 + 1, '.', (size_t)(end - d1 - 1)) : NULL;
    if (d2 == NULL || memchr(d2 + 1, '.', (size_t)(end - d2 - 1)) != NULL)
        return refuse(why, ADI_JWT_R_MALFORMED, NULL);
    adi_str_t head = {token.ptr, (size_t)(d1 - token.ptr)};
    adi_str_t body = {d1 + 1, (size_t)(d2 - d1 - 1)};
    adi_str_t sig = {d2 + 1, (size_t)(end - d2 - 1)};
    if (head.len == 0 || body.len == 0)
        return refuse(why, ADI_JWT_R_MALFORMED, NULL);

    adi_jwt_reason r = check_header(j, head, why);
    if (r != ADI_JWT_R_OK)
        return r;
    /* An empty signature only ever belongs to an unsigned token. */
    if (sig.len == 0)
        return refuse(why, ADI_JWT_R_BAD_SIGNATURE, NULL);
    r = check_signature(j, token, (size_t)(d2 - token.ptr), sig, why);
    if (r != ADI_JWT_R_OK)
        return r;
    /* The payload is parsed (not yet trusted) before libjwt runs, so that a payload libjwt
     * cannot parse is reported as such rather than as a bad signature. */
    unsigned char *buf = adi_xmalloc(PAYLOAD_MAX);
    json_t *payload = segment_json(body, buf, PAYLOAD_MAX);
    free(buf);
    if (payload == NULL)
        return refuse(why, ADI_JWT_R_BAD_PAYLOAD, NULL);
    r = libjwt_verify(j, token, why);
    if (r == ADI_JWT_R_OK)
        r = check_claims(j, payload, expected, now_s, c, why);
    json_decref(payload);
    return r;
}

adi_err adi_jwt_verify(const adi_jwt_t *j, adi_str_t token, adi_jwt_type expected, int64_t now_s,
                       adi_jwt_claims_t *out, adi_jwt_verdict_t *why, adi_error_t *err)
{
    adi_jwt_verdict_t local;
    if (why == NULL)
        why = &local;
    why->reason = ADI_JWT_R_OK;
    why->claim = NULL;
    memset(out, 0, sizeof(*out));
    adi_jwt_reason r = verify(j, token, expected, now_s, out, why);
    if (r == ADI_JWT_R_OK)
        return ADI_OK;
    memset(out, 0, sizeof(*out));
    return adi_error_set(err, ADI_UNAUTHENTICATED, "%s", adi_jwt_reason_message(r));
}
