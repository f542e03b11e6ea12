/* SPDX-License-Identifier: MIT */
/*
 * The token check in front of every authenticated route: the Authorization header as the gateway
 * reads it (gw_bearer_parse) and the JWT verifier (adi_jwt_verify, HS256 pinned). Random bytes
 * never get past the signature, so the first input byte chooses a mode:
 *   bit 0 clear: the rest is an Authorization header value (or, if it holds no Bearer token, the
 *                bare token);
 *   bit 0 set:   the rest is "<header JSON>\n<payload JSON>", which this target encodes and signs
 *                with the configured secret, so the header, payload and claim checks are reached;
 *   bit 1:       the token type expected (access or refresh).
 * Invariants beyond "no crash, no leak, no UB": a refusal carries simplejwt's message and a known
 * reason, and fills no claims; accepted claims are sane (canonical UUIDs, a 32-hex jti, at most 8
 * roles, not expired at the verification time); the principal the gateway builds from them
 * encodes to an adi_principal that services decode; and claims that adi_jwt_sign accepts
 * (exp after iat) sign to a token that verifies to the same claims.
 */
#include <string.h>

#include "adi/crypto.h"
#include "adi/jwt.h"
#include "adi/messages.h"
#include "adi/proto.h"
#include "fuzz.h"
#include "gw_auth.h"

#define NOW_S    1700000000
#define LEEWAY_S 30

static const char secret[] = "fuzzing-secret-0123456789abcdef";
static adi_jwt_t *jwt;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    adi_jwt_config_t cfg = {
        .alg = ADI_JWT_HS256, .secret = {secret, sizeof(secret) - 1}, .leeway_s = LEEWAY_S};
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_jwt_new(&jwt, &cfg, &err) != ADI_OK) {
        fprintf(stderr, "adi_jwt_new: %s\n", err.message);
        abort();
    }
    return 0;
}

/* Appends the base64url form of `n` bytes at `p` to `b`. */
static void put_b64url(adi_buf_t *b, const void *p, size_t n)
{
    size_t cap = ADI_B64URL_LEN(n) + 1, len = 0;
    char *s = malloc(cap);
    FUZZ_CHECK(adi_b64url_encode(p, n, s, cap, &len, NULL) == ADI_OK);
    adi_buf_append(b, s, len);
    free(s);
}

/* Builds "<b64 header>.<b64 payload>.<HS256 signature>" from "header\npayload". */
static void sign_parts(const char *in, size_t n, adi_buf_t *token)
{
    const char *nl = memchr(in, '\n', n);
    size_t hl = nl != NULL ? (size_t)(nl - in) : n;
    const char *pl = nl != NULL ? nl + 1 : in + n;
    put_b64url(token, in, hl);
    adi_buf_append(token, ".", 1);
    put_b64url(token, pl, (size_t)(in + n - pl));
    unsigned char mac[ADI_SHA256_LEN];
    adi_hmac_sha256(secret, sizeof(secret) - 1, token->data, token->len, mac);
    adi_buf_append(token, ".", 1);
    put_b64url(token, mac, sizeof(mac));
}

static void check_claims(const adi_jwt_claims_t *c, adi_jwt_type expected)
{
    FUZZ_CHECK(c->token_type == expected);
    FUZZ_CHECK(adi_uuid_valid(adi_str_c(c->user_id)));
    FUZZ_CHECK(c->tenant_id[0] == '\0' || adi_uuid_valid(adi_str_c(c->tenant_id)));
    FUZZ_CHECK(strlen(c->jti) == ADI_JWT_JTI_LEN);
    FUZZ_CHECK(c->nroles <= ADI_JWT_MAX_ROLES);
    FUZZ_CHECK(c->exp > NOW_S - LEEWAY_S && c->iat <= NOW_S + LEEWAY_S);

    /* The principal the gateway puts in the envelope decodes on the service side. */
    adi_principal p;
    gw_principal_roles_t roles;
    gw_principal_from_claims(c, &p, &roles);
    (void)gw_access_decide(ADI_ADMIN, c);
    adi_buf_t b;
    adi_buf_init(&b);
    adi_proto_encode(&adi_principal__desc, &p, &b);
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_principal back;
    memset(&back, 0, sizeof(back));
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_proto_decode(&adi_principal__desc, b.data, b.len, &pool, &back, &err) != ADI_OK) {
        fprintf(stderr, "principal refused: %s %s\n", err.nfields ? err.fields[0].field : "",
                err.nfields ? err.fields[0].message : err.message);
        FUZZ_CHECK(!"a verified token's principal decodes");
    }
    adi_pool_dispose(&pool);
    adi_buf_dispose(&b);

    /* Claims the signer accepts come back unchanged through a signed token. */
    if (c->exp <= c->iat)
        return;
    char tok[ADI_JWT_TOKEN_MAX + 1];
    size_t n = 0;
    adi_error_clear(&err);
    adi_err rc = adi_jwt_sign(jwt, c, tok, sizeof(tok), &n, &err);
    if (rc == ADI_TOO_LARGE)
        return;
    FUZZ_CHECK(rc == ADI_OK);
    adi_jwt_claims_t again;
    adi_error_clear(&err);
    FUZZ_CHECK(adi_jwt_verify(jwt, (adi_str_t){tok, n}, expected, NOW_S, &again, NULL, &err) ==
               ADI_OK);
    FUZZ_CHECK(memcmp(&again, c, sizeof(again)) == 0);
}

static void verify(adi_str_t token, adi_jwt_type expected)
{
    adi_jwt_claims_t c;
    adi_jwt_verdict_t why;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_jwt_verify(jwt, token, expected, NOW_S, &c, &why, &err) == ADI_OK) {
        FUZZ_CHECK(why.reason == ADI_JWT_R_OK);
        check_claims(&c, expected);
        return;
    }
    FUZZ_CHECK(err.code == ADI_UNAUTHENTICATED);
    FUZZ_CHECK(why.reason > ADI_JWT_R_OK && why.reason < ADI_JWT_R__COUNT);
    FUZZ_CHECK(strcmp(err.message, adi_jwt_reason_message(why.reason)) == 0);
    FUZZ_CHECK(strcmp(adi_jwt_reason_name(why.reason), "unknown") != 0);
    adi_jwt_claims_t zero;
    memset(&zero, 0, sizeof(zero));
    FUZZ_CHECK(memcmp(&c, &zero, sizeof(c)) == 0);
    adi_buf_t body;
    adi_buf_init(&body);
    adi_jwt_error_body(expected, why.reason, &body);
    FUZZ_CHECK(body.len > 0);
    adi_buf_dispose(&body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    adi_jwt_type expected = (data[0] & 2) ? ADI_JWT_REFRESH : ADI_JWT_ACCESS;
    adi_str_t in = {(const char *)data + 1, size - 1};
    if (data[0] & 1) {
        adi_buf_t token;
        adi_buf_init(&token);
        sign_parts(in.ptr, in.len, &token);
        verify((adi_str_t){token.data, token.len}, expected);
        adi_buf_dispose(&token);
        return 0;
    }
    adi_str_t token;
    switch (gw_bearer_parse(in, &token)) {
    case GW_BEARER_TOKEN:
        FUZZ_CHECK(token.ptr >= in.ptr && token.ptr + token.len <= in.ptr + in.len);
        FUZZ_CHECK(token.len > 0);
        verify(token, expected);
        break;
    case GW_BEARER_NONE:
    case GW_BEARER_MALFORMED:
        FUZZ_CHECK(token.ptr == NULL);
        verify(in, expected);
        break;
    }
    return 0;
}
