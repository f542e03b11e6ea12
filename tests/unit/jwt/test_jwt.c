/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of libs/jwt: round trips for HS256, RS256 and ES256, and one test per refusal:
 * alg none (hand-built), algorithm confusion both ways, wrong keys, expiry with and without
 * leeway, nbf/iat in the future, wrong token_type, tampered payload and signature, garbage,
 * oversize tokens, missing and insane claims; plus key-set checks and simplejwt's error bodies.
 * RSA and EC keys are generated once per run with OpenSSL; times are fixed, never the clock.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "adi/crypto.h"
#include "adi/jwt.h"

#define NOW    1767225600 /* 2026-01-01T00:00:00Z */
#define SECRET "django-insecure-test-secret-key-for-unit-tests-only"
#define USER   "0b6f5a8e-3c1d-4f2a-9e7b-1a2b3c4d5e6f"
#define TENANT "7c0e7c2e-1111-4000-8000-000000000001"
#define JTI    "9f1c2d3e4f5a4b6c8d7e6f5a4b3c2d1e"

/* PEM texts generated once for the whole run. */
static struct {
    char *rsa_priv, *rsa_pub;   /* RSA-2048, key A */
    char *rsa2_priv, *rsa2_pub; /* RSA-2048, key B */
    char *rsa1024_priv;         /* too small for RS256 */
    char *ec_priv, *ec_pub;     /* P-256, key A */
    char *ec2_pub;              /* P-256, key B */
    char *ec384_priv;           /* P-384: wrong curve for ES256 */
} pem;

/* Writes the private (priv) or public half of `k` as a malloc'd PEM string. */
static char *to_pem(EVP_PKEY *k, bool priv)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_non_null(b);
    int ok = priv ? PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)
                  : PEM_write_bio_PUBKEY(b, k);
    assert_int_equal(ok, 1);
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    BIO_free(b);
    return s;
}

static int group_setup(void **state)
{
    (void)state;
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *rsa2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *ec2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    if (!rsa || !rsa2 || !rsa1024 || !ec || !ec2 || !ec384)
        return -1;
    pem.rsa_priv = to_pem(rsa, true);
    pem.rsa_pub = to_pem(rsa, false);
    pem.rsa2_priv = to_pem(rsa2, true);
    pem.rsa2_pub = to_pem(rsa2, false);
    pem.rsa1024_priv = to_pem(rsa1024, true);
    pem.ec_priv = to_pem(ec, true);
    pem.ec_pub = to_pem(ec, false);
    pem.ec2_pub = to_pem(ec2, false);
    pem.ec384_priv = to_pem(ec384, true);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(rsa2);
    EVP_PKEY_free(rsa1024);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ec2);
    EVP_PKEY_free(ec384);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    free(pem.rsa_priv);
    free(pem.rsa_pub);
    free(pem.rsa2_priv);
    free(pem.rsa2_pub);
    free(pem.rsa1024_priv);
    free(pem.ec_priv);
    free(pem.ec_pub);
    free(pem.ec2_pub);
    free(pem.ec384_priv);
    return 0;
}

/* Key-set constructors that must succeed. */
static adi_jwt_t *hs(const char *secret, int64_t leeway)
{
    adi_jwt_config_t cfg = {.alg = ADI_JWT_HS256, .secret = adi_str_c(secret), .leeway_s = leeway};
    adi_jwt_t *j = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_jwt_new(&j, &cfg, &err) != ADI_OK)
        fail_msg("adi_jwt_new(HS256): %s", err.message);
    return j;
}

static adi_jwt_t *pk(adi_jwt_alg alg, const char *priv, const char *pub)
{
    adi_jwt_config_t cfg = {
        .alg = alg, .private_key_pem = adi_str_c(priv), .public_key_pem = adi_str_c(pub)};
    adi_jwt_t *j = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_jwt_new(&j, &cfg, &err) != ADI_OK)
        fail_msg("adi_jwt_new(%s): %s", adi_jwt_alg_name(alg), err.message);
    return j;
}

/* Standard claims for USER in TENANT with roles ADMIN and VIEWER, issued at NOW. */
static void claims(adi_jwt_claims_t *c, adi_jwt_type type)
{
    adi_jwt_claims_init(c, type, NOW, 1800);
    assert_int_equal(adi_jwt_claims_set_ids(c, ADI_STR(USER), ADI_STR(TENANT), NULL), ADI_OK);
    assert_int_equal(adi_jwt_claims_add_role(c, ADI_STR("ADMIN"), NULL), ADI_OK);
    assert_int_equal(adi_jwt_claims_add_role(c, ADI_STR("VIEWER"), NULL), ADI_OK);
}

/* Signs standard claims of `type` with `j` into `tok` (ADI_JWT_TOKEN_MAX + 1 bytes). */
static void sign(const adi_jwt_t *j, adi_jwt_type type, char *tok)
{
    adi_jwt_claims_t c;
    claims(&c, type);
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_jwt_sign(j, &c, tok, ADI_JWT_TOKEN_MAX + 1, NULL, &err) != ADI_OK)
        fail_msg("adi_jwt_sign: %s", err.message);
}

/* Verifies `len` bytes of `tok` and returns the reason, checking the contract on the way. */
static adi_jwt_reason check(const adi_jwt_t *j, const char *tok, size_t len, adi_jwt_type type,
                            int64_t now)
{
    adi_jwt_claims_t c;
    adi_jwt_verdict_t why;
    adi_error_t err;
    adi_error_clear(&err);
    adi_err rc = adi_jwt_verify(j, (adi_str_t){tok, len}, type, now, &c, &why, &err);
    if (why.reason == ADI_JWT_R_OK) {
        assert_int_equal(rc, ADI_OK);
    } else {
        assert_int_equal(rc, ADI_UNAUTHENTICATED);
        assert_int_equal(err.code, ADI_UNAUTHENTICATED);
        assert_string_equal(err.message, adi_jwt_reason_message(why.reason));
        /* A refused token leaves no claims behind. */
        assert_int_equal(c.user_id[0], '\0');
        assert_int_equal(c.nroles, 0);
    }
    return why.reason;
}

#define CHECK(j, tok, type, now) check((j), (tok), strlen(tok), (type), (now))

/* base64url of a C string, malloc'd. */
static char *b64u(const void *p, size_t n)
{
    size_t cap = ADI_B64URL_LEN(n) + 1;
    char *s = malloc(cap);
    assert_non_null(s);
    assert_int_equal(adi_b64url_encode(p, n, s, cap, NULL, NULL), ADI_OK);
    return s;
}

/*
 * Hand-builds header.payload.signature from JSON texts: signed with HMAC-SHA256 under `key`
 * when key is non-NULL, else with an empty signature (or `raw_sig` when given). malloc'd.
 */
static char *forge(const char *header, const char *payload, const char *key, const char *raw_sig)
{
    char *h = b64u(header, strlen(header));
    char *p = b64u(payload, strlen(payload));
    size_t cap = strlen(h) + strlen(p) + 128;
    char *t = malloc(cap);
    assert_non_null(t);
    snprintf(t, cap, "%s.%s", h, p);
    char *s = NULL;
    if (key != NULL) {
        unsigned char mac[ADI_SHA256_LEN];
        adi_hmac_sha256(key, strlen(key), t, strlen(t), mac);
        s = b64u(mac, sizeof(mac));
    }
    size_t len = strlen(t);
    snprintf(t + len, cap - len, ".%s", s != NULL ? s : (raw_sig != NULL ? raw_sig : ""));
    free(h);
    free(p);
    free(s);
    return t;
}

/* A complete, valid simplejwt access payload at NOW. */
#define PAYLOAD                                                                                    \
    "{\"token_type\":\"access\",\"exp\":1767227400,\"iat\":1767225600,\"jti\":\"" JTI              \
    "\",\"user_id\":\"" USER "\",\"tenant_id\":\"" TENANT "\",\"roles\":[\"ADMIN\"]}"
#define HS_HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

/* ---- round trips ------------------------------------------------------------------------ */

static void expect_claims(const adi_jwt_claims_t *c, adi_jwt_type type)
{
    assert_int_equal(c->token_type, type);
    assert_string_equal(c->user_id, USER);
    assert_string_equal(c->tenant_id, TENANT);
    assert_int_equal(strlen(c->jti), 32);
    assert_int_equal(c->iat, NOW);
    assert_int_equal(c->exp, NOW + 1800);
    assert_int_equal(c->nroles, 2);
    assert_string_equal(c->roles[0], "ADMIN");
    assert_string_equal(c->roles[1], "VIEWER");
}

static void round_trip(const adi_jwt_t *signer, const adi_jwt_t *verifier)
{
    static const adi_jwt_type types[] = {ADI_JWT_ACCESS, ADI_JWT_REFRESH};
    for (size_t i = 0; i < 2; i++) {
        adi_jwt_claims_t in, got;
        claims(&in, types[i]);
        char tok[ADI_JWT_TOKEN_MAX + 1];
        size_t len = 0;
        assert_int_equal(adi_jwt_sign(signer, &in, tok, sizeof(tok), &len, NULL), ADI_OK);
        assert_int_equal(len, strlen(tok));
        adi_jwt_verdict_t why;
        assert_int_equal(
            adi_jwt_verify(verifier, adi_str_c(tok), types[i], NOW + 60, &got, &why, NULL), ADI_OK);
        assert_int_equal(why.reason, ADI_JWT_R_OK);
        expect_claims(&got, types[i]);
        assert_string_equal(got.jti, in.jti);
    }
}

static void test_hs256_round_trip(void **state)
{
    (void)state;
    adi_jwt_t *j = hs(SECRET, 0);
    round_trip(j, j);
    /* The header is simplejwt's / PyJWT's. */
    char tok[ADI_JWT_TOKEN_MAX + 1];
    sign(j, ADI_JWT_ACCESS, tok);
    unsigned char hdr[128];
    size_t n = 0;
    const char *dot = strchr(tok, '.');
    assert_non_null(dot);
    assert_int_equal(
        adi_b64url_decode((adi_str_t){tok, (size_t)(dot - tok)}, hdr, sizeof(hdr) - 1, &n, NULL),
        ADI_OK);
    hdr[n] = '\0';
    assert_non_null(strstr((char *)hdr, "\"alg\":\"HS256\""));
    assert_non_null(strstr((char *)hdr, "\"typ\":\"JWT\""));
    /* jtis are fresh uuid4().hex values. */
    adi_jwt_claims_t a, b;
    adi_jwt_claims_init(&a, ADI_JWT_ACCESS, NOW, 1);
    adi_jwt_claims_init(&b, ADI_JWT_ACCESS, NOW, 1);
    assert_string_not_equal(a.jti, b.jti);
    assert_int_equal(a.jti[12], '4');
    adi_jwt_free(j);
}

static void test_rs256_round_trip(void **state)
{
    (void)state;
    adi_jwt_t *signer = pk(ADI_JWT_RS256, pem.rsa_priv, NULL);  /* public key derived */
    adi_jwt_t *verifier = pk(ADI_JWT_RS256, NULL, pem.rsa_pub); /* gateway: public key only */
    assert_true(adi_jwt_can_sign(signer));
    assert_false(adi_jwt_can_sign(verifier));
    assert_int_equal(adi_jwt_get_alg(verifier), ADI_JWT_RS256);
    round_trip(signer, verifier);
    round_trip(signer, signer);
    /* A verify-only key set cannot sign. */
    adi_jwt_claims_t c;
    claims(&c, ADI_JWT_ACCESS);
    char tok[ADI_JWT_TOKEN_MAX + 1];
    assert_int_equal(adi_jwt_sign(verifier, &c, tok, sizeof(tok), NULL, NULL), ADI_INVALID);
    adi_jwt_free(signer);
    adi_jwt_free(verifier);
}

static void test_es256_round_trip(void **state)
{
    (void)state;
    adi_jwt_t *signer = pk(ADI_JWT_ES256, pem.ec_priv, pem.ec_pub);
    adi_jwt_t *verifier = pk(ADI_JWT_ES256, NULL, pem.ec_pub);
    round_trip(signer, verifier);
    adi_jwt_free(signer);
    adi_jwt_free(verifier);
}

static void test_no_tenant_no_roles(void **state)
{
    (void)state;
    adi_jwt_t *j = hs(SECRET, 0);
    adi_jwt_claims_t c, got;
    adi_jwt_claims_init(&c, ADI_JWT_ACCESS, NOW, 60);
    assert_int_equal(adi_jwt_claims_set_ids(&c, ADI_STR(USER), ADI_STR_NULL, NULL), ADI_OK);
    char tok[ADI_JWT_TOKEN_MAX + 1];
    assert_int_equal(adi_jwt_sign(j, &c, tok, sizeof(tok), NULL, NULL), ADI_OK);
    assert_int_equal(adi_jwt_verify(j, adi_str_c(tok), ADI_JWT_ACCESS, NOW, &got, NULL, NULL),
                     ADI_OK);
    assert_string_equal(got.tenant_id, "");
    assert_int_equal(got.nroles, 0);
    /* Claims absent altogether (a plain simplejwt token) are accepted as none too. */
    char *t =
        forge(HS_HEADER,
              "{\"token_type\":\"access\",\"exp\":1767227400,\"iat\":1767225600,\"jti\":\"" JTI
              "\",\"user_id\":\"" USER "\"}",
              SECRET, NULL);
    assert_int_equal(CHECK(j, t, ADI_JWT_ACCESS, NOW), ADI_JWT_R_OK);
    free(t);
    adi_jwt_free(j);
}

static void test_version_and_superuser_claims(void **state)
{
    (void)state;
    adi_jwt_t *j = hs(SECRET, 0);
    adi_jwt_claims_t c, got;
    claims(&c, ADI_JWT_ACCESS);
    c.ver = 7;
    c.is_superuser = true;
    snprintf(c.email, sizeof(c.email), "%s", "admin@example.com");
    char tok[ADI_JWT_TOKEN_MAX + 1];
    assert_int_equal(adi_jwt_sign(j, &c, tok, sizeof(tok), NULL, NULL), ADI_OK);
    assert_int_equal(adi_jwt_verify(j, adi_str_c(tok), ADI_JWT_ACCESS, NOW, &got, NULL, NULL),
                     ADI_OK);
    assert_int_equal(got.ver, 7);
    assert_true(got.is_superuser);
    assert_string_equal(got.email, "admin@example.com");
    /* Absent claims mean version 0 and no superuser (tokens of other issuers). */
    claims(&c, ADI_JWT_ACCESS);
    assert_int_equal(adi_jwt_sign(j, &c, tok, sizeof(tok), NULL, NULL), ADI_OK);
    assert_int_equal(adi_jwt_verify(j, adi_str_c(tok), ADI_JWT_ACCESS, NOW, &got, NULL, NULL),
                     ADI_OK);
    assert_int_equal(got.ver, 0);
    assert_false(got.is_superuser);
    assert_string_equal(got.email, "");
    /* A wrongly typed claim is refused. */
    char *t =
        forge(HS_HEADER,
              "{\"token_type\":\"access\",\"exp\":1767227400,\"iat\":1767225600,\"jti\":\"" JTI
              "\",\"user_id\":\"" USER "\",\"is_superuser\":\"yes\"}",
              SECRET, NULL);
    assert_int_equal(CHECK(j, t, ADI_JWT_ACCESS, NOW), ADI_JWT_R_BAD_CLAIM);
    free(t);
    t = forge(HS_HEADER,
              "{\"token_type\":\"access\",\"exp\":1767227400,\"iat\":1767225600,\"jti\":\"" JTI
              "\",\"user_id\":\"" USER "\",\"ver\":-1}",
              SECRET, NULL);
    assert_int_equal(CHECK(j, t, ADI_JWT_ACCESS, NOW), ADI_JWT_R_BAD_CLAIM);
    free(t);
    adi_jwt_free(j);
}

/* ---- refusals --------------------------------------------------------------------------- */

static void test_alg_none_rejected(void **state)
{
    (void)state;
    adi_jwt_t *j = hs(SECRET, 0);
    static const char *headers[] = {
        "{\"alg\":\"none\",\"typ\":\"JWT\"}",
        "{\"alg\":\"None\"}",
        "{\"alg\":\"NONE\",\"typ\":\"JWT\"}",
        "{\"typ\":\"JWT\",\"alg\":\"nOnE\"}",
    };
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        char *t = forge(headers[i], PAYLOAD, NULL, NULL); /* "h.p." */
        assert_int_equal(CHECK(j, t, ADI_JWT_ACCESS, NOW), ADI_JWT_R_ALG_NONE);
        free(t);
        t = forge(headers[i], PAYLOAD, SECRET, NULL); /* even with a valid HMAC attached */
        assert_int_equal(CHECK(j, t, ADI_JWT_ACCESS, NOW), ADI_JWT_R_ALG_NONE);
        free(t);
    }
    /* Without the trailing dot it is malformed. */
    char *t = forge(headers[0], PAYLOAD, NULL, NULL);
    t[strlen(t) - 1] = '\0';
    assert_int_equal(CHECK(j, t, ADI_JWT_ACCESS, NOW), ADI_JWT_R_MALFORMED);
    free(t);
    /* A pinned HS256 header with an empty signature is refused too (libjwt would skip it). */
    t = forge(HS_HEADER, PAYLOAD, NULL, NULL);
    assert_int_equal(CHECK(j, t, ADI_JWT_ACCESS, NOW), ADI_JWT_R_BAD_SIGNATURE);
    free(t);
    /* The RS256 verifier refuses alg none as well. */
    adi_jwt_t *r = pk(ADI_JWT_RS256, NULL, pem.rsa_pub);
    t = forge(headers[0], PAYLOAD, NULL, NULL);
    assert_int_equal(CHECK(r, t, ADI_JWT_ACCESS, NOW), ADI_JWT_R_ALG_NONE);
    free(t);
    adi_jwt_free(r);
    adi_jwt_free(j);
}

static void test_algorithm_confusion_rejected(void **state)
{
    (void)state;
    adi_jwt_t *rs = pk(ADI_JWT_RS256, pem.rsa_priv, NULL);
    adi_jwt_t *rs_pub = pk(ADI_JWT_RS256, NULL, pem.rsa_pub);
    adi_jwt_t *es = pk(ADI_JWT_ES256, pem.ec_priv, NULL);
    adi_jwt_t *h = hs(SECRET, 0);
    /* The public key used as an HMAC secret: the classic confusion attack. */
    adi_jwt_t *h_pub = hs(pem.rsa_pub, 0);
    char tok[ADI_JWT_TOKEN_MAX + 1];

    /* An HS256 token "signed" with the RSA public key, presented where RS256 is pinned. */
    char *t = forge(HS_HEADER, PAYLOAD, pem.rsa_pub, NULL);
    assert_int_equal(CHECK(rs_pub, t, ADI_JWT_ACCESS, NOW), ADI_JWT_R_ALG_MISMATCH);
    assert_int_equal(CHECK(rs, t, ADI_JWT_ACCESS, NOW), ADI_JWT_R_ALG_MISMATCH);
    /* (That token would pass an HS256 verifier keyed with the PEM: the pin is what stops it.) */
    assert_int_equal(CHECK(h_pub, t, ADI_JWT_ACCESS, NOW), ADI_JWT_R_OK);
    free(t);

    /* An honest HS256 token where RS256 is pinned. */
    sign(h, ADI_JWT_ACCESS, tok);
    assert_int_equal(CHECK(rs_pub, tok, ADI_JWT_ACCESS, NOW), ADI_JWT_R_ALG_MISMATCH);
    /* An RS256 token verified with the public key as HMAC secret (HS256 pinned). */
    sign(rs, ADI_JWT_ACCESS, tok);
    assert_int_equal(CHECK(h_pub, tok, ADI_JWT_ACCESS, NOW), ADI_JWT_R_ALG_MISMATCH);
    assert_int_equal(CHECK(h, tok, ADI_JWT_ACCESS, NOW), ADI_JWT_R_ALG_MISMATCH);
    /* ES256 token to RS256, RS256 token to ES256. */
    sign(es, ADI_JWT_ACCESS, tok);
    assert_int_equal(CHECK(rs_pub, tok, ADI_JWT_ACCESS, NOW), ADI_JWT_R_ALG_MISMATCH);
    sign(rs, ADI_JWT_ACCESS, tok);
    assert_int_equal(CHECK(es, tok, ADI_JWT_ACCESS, NOW), ADI_JWT_R_ALG_MISMATCH);
    /* Other spellings and HMAC siblings are not HS256 (libjwt would take "hs256"). */
    static const char *others[] = {"{\"alg\":\"hs256\"}", "{\"alg\":\"HS512\"}",
                                   "{\"alg\":\"HS256 \"}", "{\"alg\":\"PS256\"}"};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        t = forge(others[i], PAYLOAD, SECRET, NULL);
        assert_int_equal(CHECK(h, t, ADI_JWT_ACCESS, NOW), ADI_JWT_R_ALG_MISMATCH);
        free(t);
    }
    /* An escaped NUL after the name (jansson refuses \u0000 outright). */
    t = forge("{\"alg\":\"HS256\\u0000\"}", PAYLOAD, SECRET, NULL);
    assert_int_equal(CHECK(h, t, ADI_JWT_ACCESS, NOW), ADI_JWT_R_BAD_HEADER);
    free(t);
    adi_jwt_free(rs);
    adi_jwt_free(rs_pub);
    adi_jwt_free(es);
    adi_jwt_free(h);
    adi_jwt_free(h_pub);
}

static void test_wrong_key_rejected(void **state)
{
    (void)state;
    char tok[ADI_JWT_TOKEN_MAX + 1];
    adi_jwt_t *a = hs(SECRET, 0);
    adi_jwt_t *b = hs(SECRET "x", 0);
    sign(a, ADI_JWT_ACCESS, tok);
    assert_int_equal(CHECK(b, tok, ADI_JWT_ACCESS, NOW), ADI_JWT_R_BAD_SIGNATURE);
    adi_jwt_free(a);
    adi_jwt_free(b);

    /* Asymmetric: libjwt's check is the one that refuses here. */
    adi_jwt_t *rs_a = pk(ADI_JWT_RS256, pem.rsa_priv, NULL);
    adi_jwt_t *rs_b = pk(ADI_JWT_RS256, NULL, pem.rsa2_pub);
    sign(rs_a, ADI_JWT_ACCESS, tok);
    assert_int_equal(CHECK(rs_b, tok, ADI_JWT_ACCESS, NOW), ADI_JWT_R_BAD_SIGNATURE);
    adi_jwt_free(rs_a);
    adi_jwt_free(rs_b);

    adi_jwt_t *es_a = pk(ADI_JWT_ES256, pem.ec_priv, NULL);
    adi_jwt_t *es_b = pk(ADI_JWT_ES256, NULL, pem.ec2_pub);
    sign(es_a, ADI_JWT_ACCESS, tok);
    assert_int_equal(CHECK(es_b, tok, ADI_JWT_ACCESS, NOW), ADI_JWT_R_BAD_SIGNATURE);
    adi_jwt_free(es_a);
    adi_jwt_free(es_b);
}

static void test_expiry_and_leeway(void **state)
{
    (void)state;
    char tok[ADI_JWT_TOKEN_MAX + 1];
    adi_jwt_t *strict = hs(SECRET, 0);
    adi_jwt_t *lenient = hs(SECRET, 30);
    sign(strict, ADI_JWT_ACCESS, tok); /* iat NOW, exp NOW + 1800 */
    int64_t exp = NOW + 1800;
    assert_int_equal(CHECK(strict, tok, ADI_JWT_ACCESS, exp - 1), ADI_JWT_R_OK);
    assert_int_equal(CHECK(strict, tok, ADI_JWT_ACCESS, exp), ADI_JWT_R_EXPIRED);
    assert_int_equal(CHECK(strict, tok, ADI_JWT_ACCESS, exp + 10), ADI_JWT_R_EXPIRED);
    /* Within the leeway: accepted; at its edge: expired (PyJWT: exp <= now - leeway). */
    assert_int_equal(CHECK(lenient, tok, ADI_JWT_ACCESS, exp + 10), ADI_JWT_R_OK);
    assert_int_equal(CHECK(lenient, tok, ADI_JWT_ACCESS, exp + 29), ADI_JWT_R_OK);
    assert_int_equal(CHECK(lenient, tok, ADI_JWT_ACCESS, exp + 30), ADI_JWT_R_EXPIRED);
    /* The client sees simplejwt's message for an expired token. */
    adi_jwt_claims_t c;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_jwt_verify(strict, adi_str_c(tok), ADI_JWT_ACCESS, exp, &c, NULL, &err),
                     ADI_UNAUTHENTICATED);
    assert_string_equal(err.message, "Token is invalid or expired");
    /* Issued in the future (beyond the leeway): not yet valid; within it: fine. */
    assert_int_equal(CHECK(strict, tok, ADI_JWT_ACCESS, NOW - 1), ADI_JWT_R_NOT_YET_VALID);
    assert_int_equal(CHECK(lenient, tok, ADI_JWT_ACCESS, NOW - 20), ADI_JWT_R_OK);
    /* nbf in the future. */
    char *t = forge(HS_HEADER,
                    "{\"token_type\":\"access\",\"exp\":1767227400,\"iat\":1767225600,\"nbf\":"
                    "1767225700,\"jti\":\"" JTI "\",\"user_id\":\"" USER "\"}",
                    SECRET, NULL);
    assert_int_equal(CHECK(strict, t, ADI_JWT_ACCESS, NOW), ADI_JWT_R_NOT_YET_VALID);
    assert_int_equal(CHECK(strict, t, ADI_JWT_ACCESS, NOW + 100), ADI_JWT_R_OK);
    free(t);
    adi_jwt_free(strict);
    adi_jwt_free(lenient);
}

static void test_wrong_token_type_rejected(void **state)
{
    (void)state;
    char tok[ADI_JWT_TOKEN_MAX + 1];
    adi_jwt_t *j = hs(SECRET, 0);
    sign(j, ADI_JWT_REFRESH, tok);
    assert_int_equal(CHECK(j, tok, ADI_JWT_ACCESS, NOW), ADI_JWT_R_WRONG_TYPE);
    assert_int_equal(CHECK(j, tok, ADI_JWT_REFRESH, NOW), ADI_JWT_R_OK);
    adi_jwt_claims_t c;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_jwt_verify(j, adi_str_c(tok), ADI_JWT_ACCESS, NOW, &c, NULL, &err),
                     ADI_UNAUTHENTICATED);
    assert_string_equal(err.message, "Token has wrong type");
    sign(j, ADI_JWT_ACCESS, tok);
    assert_int_equal(CHECK(j, tok, ADI_JWT_REFRESH, NOW), ADI_JWT_R_WRONG_TYPE);
    adi_jwt_free(j);
}

static void test_tampering_rejected(void **state)
{
    (void)state;
    char tok[ADI_JWT_TOKEN_MAX + 1];
    adi_jwt_t *h = hs(SECRET, 0);
    adi_jwt_t *r = pk(ADI_JWT_RS256, pem.rsa_priv, NULL);
    adi_jwt_t *e = pk(ADI_JWT_ES256, pem.ec_priv, NULL);
    adi_jwt_t *all[] = {h, r, e};
    for (size_t k = 0; k < 3; k++) {
        sign(all[k], ADI_JWT_ACCESS, tok);
        char *d1 = strchr(tok, '.');
        char *d2 = strchr(d1 + 1, '.');
        /* Payload swapped for one that claims more roles, signature kept. */
        char *p = b64u(PAYLOAD, strlen(PAYLOAD));
        char forged[2 * ADI_JWT_TOKEN_MAX + 64];
        snprintf(forged, sizeof(forged), "%.*s.%s%s", (int)(d1 - tok), tok, p, d2);
        free(p);
        assert_int_equal(CHECK(all[k], forged, ADI_JWT_ACCESS, NOW), ADI_JWT_R_BAD_SIGNATURE);
        /* One payload character changed. */
        memcpy(forged, tok, strlen(tok) + 1);
        size_t at = (size_t)(d1 - tok) + 5;
        forged[at] = forged[at] == 'A' ? 'B' : 'A';
        adi_jwt_reason why = CHECK(all[k], forged, ADI_JWT_ACCESS, NOW);
        /* HS256: our own HMAC refuses first; RS/ES: the now unparsable payload, or libjwt. */
        if (all[k] == h)
            assert_int_equal(why, ADI_JWT_R_BAD_SIGNATURE);
        else
            assert_true(why == ADI_JWT_R_BAD_SIGNATURE || why == ADI_JWT_R_BAD_PAYLOAD);
        /* One signature character in the middle changed (same length, still base64url). */
        memcpy(forged, tok, strlen(tok) + 1);
        at = (size_t)(d2 - tok) + 10;
        forged[at] = forged[at] == 'A' ? 'B' : 'A';
        assert_int_equal(CHECK(all[k], forged, ADI_JWT_ACCESS, NOW), ADI_JWT_R_BAD_SIGNATURE);
        /* Signature truncated, extended, or dropped. */
        memcpy(forged, tok, strlen(tok) + 1);
        forged[strlen(forged) - 4] = '\0';
        assert_int_equal(CHECK(all[k], forged, ADI_JWT_ACCESS, NOW), ADI_JWT_R_BAD_SIGNATURE);
        snprintf(forged, sizeof(forged), "%sAAAA", tok);
        assert_int_equal(CHECK(all[k], forged, ADI_JWT_ACCESS, NOW), ADI_JWT_R_BAD_SIGNATURE);
        memcpy(forged, tok, (size_t)(d2 - tok) + 1);
        forged[d2 - tok + 1] = '\0';
        assert_int_equal(CHECK(all[k], forged, ADI_JWT_ACCESS, NOW), ADI_JWT_R_BAD_SIGNATURE);
        /* Header re-encoded with a different typ, signature kept. */
        static const char retyped[] = "{\"alg\":\"HS256\",\"typ\":\"jwt\"}";
        char *hh = b64u(retyped, strlen(retyped));
        snprintf(forged, sizeof(forged), "%s%s", hh, d1);
        free(hh);
        adi_jwt_reason rr = CHECK(all[k], forged, ADI_JWT_ACCESS, NOW);
        assert_true(rr == ADI_JWT_R_BAD_SIGNATURE || rr == ADI_JWT_R_ALG_MISMATCH);
    }
    adi_jwt_free(h);
    adi_jwt_free(r);
    adi_jwt_free(e);
}

static void test_garbage_rejected(void **state)
{
    (void)state;
    adi_jwt_t *j = hs(SECRET, 0);
    assert_int_equal(check(j, NULL, 0, ADI_JWT_ACCESS, NOW), ADI_JWT_R_EMPTY);
    assert_int_equal(CHECK(j, "", ADI_JWT_ACCESS, NOW), ADI_JWT_R_EMPTY);
    static const char *malformed[] = {
        "abc", "a.b", "a.b.c.d", "..", "...", ".b.c", "a..c", "Bearer a.b.c", "a.b.c ",
    };
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        adi_jwt_reason r = CHECK(j, malformed[i], ADI_JWT_ACCESS, NOW);
        if (r != ADI_JWT_R_MALFORMED && r != ADI_JWT_R_BAD_HEADER)
            fail_msg("'%s' gave %s", malformed[i], adi_jwt_reason_name(r));
    }
    static const char *bad_headers[] = {
        "@@@.###.$$$",           "eyJhbGciOiJIUzI1NiJ9=.e30.AAAA", /* padded base64 */
        "e30.e30.AAAA",                                            /* {} : no alg */
        "W10.e30.AAAA",                                            /* [] : not an object */
        "bnVsbA.e30.AAAA",                                         /* null */
        "eyJhbGciOjF9.e30.AAAA",                                   /* {"alg":1} */
        "eyJhbGci.e30.AAAA",                                       /* truncated JSON */
    };
    for (size_t i = 0; i < sizeof(bad_headers) / sizeof(bad_headers[0]); i++) {
        adi_jwt_reason r = CHECK(j, bad_headers[i], ADI_JWT_ACCESS, NOW);
        if (r != ADI_JWT_R_BAD_HEADER)
            fail_msg("'%s' gave %s", bad_headers[i], adi_jwt_reason_name(r));
    }
    /* Duplicate alg keys, and a crit header, are refused. */
    char *t = forge("{\"alg\":\"none\",\"alg\":\"HS256\"}", PAYLOAD, SECRET, NULL);
    assert_int_equal(CHECK(j, t, ADI_JWT_ACCESS, NOW), ADI_JWT_R_BAD_HEADER);
    free(t);
    t = forge("{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}", PAYLOAD, SECRET, NULL);
    assert_int_equal(CHECK(j, t, ADI_JWT_ACCESS, NOW), ADI_JWT_R_BAD_HEADER);
    free(t);
    /* Validly signed but not a JSON object, or with duplicate claims. */
    static const char *bad_payloads[] = {
        "not json",
        "[1,2]",
        "\"str\"",
        "{\"exp\":1,}",
        PAYLOAD "x",
        "{\"token_type\":\"refresh\",\"token_type\":\"access\"}",
        "{\"token_type\":\"access\",\"exp\":1767227400,\"iat\":1767225600,\"jti\":\"" JTI
        "\",\"user_id\":\"0b6f5a8e-3c1d-4f2a-9e7b-1a2b3c4d5e6\\u0000\"}",
    };
    for (size_t i = 0; i < sizeof(bad_payloads) / sizeof(bad_payloads[0]); i++) {
        t = forge(HS_HEADER, bad_payloads[i], SECRET, NULL);
        assert_int_equal(CHECK(j, t, ADI_JWT_ACCESS, NOW), ADI_JWT_R_BAD_PAYLOAD);
        free(t);
    }
    /* Binary junk with dots in it, and an embedded NUL. */
    unsigned char junk[300];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)(i * 37 + 11);
    junk[50] = '.';
    junk[120] = '.';
    assert_int_not_equal(check(j, (const char *)junk, sizeof(junk), ADI_JWT_ACCESS, NOW),
                         ADI_JWT_R_OK);
    char tok[ADI_JWT_TOKEN_MAX + 1];
    sign(j, ADI_JWT_ACCESS, tok);
    size_t n = strlen(tok);
    tok[n / 2] = '\0';
    assert_int_not_equal(check(j, tok, n, ADI_JWT_ACCESS, NOW), ADI_JWT_R_OK);
    adi_jwt_free(j);
}

static void test_oversize_rejected(void **state)
{
    (void)state;
    adi_jwt_t *j = hs(SECRET, 0);
    char *big = malloc(ADI_JWT_TOKEN_MAX + 2);
    assert_non_null(big);
    memset(big, 'A', ADI_JWT_TOKEN_MAX + 1);
    big[10] = '.';
    big[20] = '.';
    big[ADI_JWT_TOKEN_MAX + 1] = '\0';
    assert_int_equal(check(j, big, ADI_JWT_TOKEN_MAX + 1, ADI_JWT_ACCESS, NOW), ADI_JWT_R_TOO_LONG);
    /* At the limit the length is fine and the content decides. */
    assert_int_not_equal(check(j, big, ADI_JWT_TOKEN_MAX, ADI_JWT_ACCESS, NOW), ADI_JWT_R_TOO_LONG);
    /* A validly signed token whose payload is huge but within the limit still verifies. */
    char payload[6000];
    snprintf(payload, sizeof(payload),
             "{\"token_type\":\"access\",\"exp\":1767227400,\"iat\":1767225600,\"jti\":\"" JTI
             "\",\"user_id\":\"" USER "\",\"pad\":\"%05000d\"}",
             0);
    char *t = forge(HS_HEADER, payload, SECRET, NULL);
    assert_true(strlen(t) <= ADI_JWT_TOKEN_MAX);
    assert_int_equal(CHECK(j, t, ADI_JWT_ACCESS, NOW), ADI_JWT_R_OK);
    free(t);
    /* A too-small output buffer for signing is refused. */
    adi_jwt_claims_t c;
    claims(&c, ADI_JWT_ACCESS);
    char small[64];
    assert_int_equal(adi_jwt_sign(j, &c, small, sizeof(small), NULL, NULL), ADI_TOO_LARGE);
    free(big);
    adi_jwt_free(j);
}

static void test_missing_and_bad_claims_rejected(void **state)
{
    (void)state;
    adi_jwt_t *j = hs(SECRET, 0);
    /* Each required claim dropped in turn. */
    static const struct {
        const char *claim;
        const char *payload;
    } missing[] = {
        {"exp", "{\"token_type\":\"access\",\"iat\":1767225600,\"jti\":\"" JTI
                "\",\"user_id\":\"" USER "\"}"},
        {"iat", "{\"token_type\":\"access\",\"exp\":1767227400,\"jti\":\"" JTI
                "\",\"user_id\":\"" USER "\"}"},
        {"token_type",
         "{\"exp\":1767227400,\"iat\":1767225600,\"jti\":\"" JTI "\",\"user_id\":\"" USER "\"}"},
        {"jti", "{\"token_type\":\"access\",\"exp\":1767227400,\"iat\":1767225600,"
                "\"user_id\":\"" USER "\"}"},
        {"user_id", "{\"token_type\":\"access\",\"exp\":1767227400,\"iat\":1767225600,"
                    "\"jti\":\"" JTI "\"}"},
    };
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
        char *t = forge(HS_HEADER, missing[i].payload, SECRET, NULL);
        adi_jwt_claims_t c;
        adi_jwt_verdict_t why;
        assert_int_equal(adi_jwt_verify(j, adi_str_c(t), ADI_JWT_ACCESS, NOW, &c, &why, NULL),
                         ADI_UNAUTHENTICATED);
        assert_int_equal(why.reason, ADI_JWT_R_MISSING_CLAIM);
        assert_string_equal(why.claim, missing[i].claim);
        free(t);
    }
    /* Claims of the wrong type or with insane values. */
/* A payload with valid token_type, exp and iat, completed by `x`. */
#define BASE_NO(x) "{\"token_type\":\"access\",\"exp\":1767227400,\"iat\":1767225600," x "}"
    static const struct {
        const char *claim;
        const char *payload;
    } bad[] = {
        {"exp",
         "{\"token_type\":\"access\",\"exp\":\"1767227400\",\"iat\":1767225600,\"jti\":\"" JTI
         "\",\"user_id\":\"" USER "\"}"},
        {"exp", "{\"token_type\":\"access\",\"exp\":1767227400.5,\"iat\":1767225600,\"jti\":\"" JTI
                "\",\"user_id\":\"" USER "\"}"},
        {"iat", "{\"token_type\":\"access\",\"exp\":1767227400,\"iat\":-5,\"jti\":\"" JTI
                "\",\"user_id\":\"" USER "\"}"},
        {"token_type", "{\"token_type\":1,\"exp\":1767227400,\"iat\":1767225600,\"jti\":\"" JTI
                       "\",\"user_id\":\"" USER "\"}"},
        {"token_type", "{\"token_type\":\"ACCESS\",\"exp\":1767227400,\"iat\":1767225600,\"jti\":"
                       "\"" JTI "\",\"user_id\":\"" USER "\"}"},
        {"token_type", "{\"token_type\":\"access-token-that-is-long\",\"exp\":1767227400,\"iat\":"
                       "1767225600,\"jti\":\"" JTI "\",\"user_id\":\"" USER "\"}"},
        {"jti", BASE_NO("\"jti\":\"not-hex\",\"user_id\":\"" USER "\"")},
        {"jti", BASE_NO("\"jti\":\"9F1C2D3E4F5A4B6C8D7E6F5A4B3C2D1E\",\"user_id\":\"" USER "\"")},
        {"jti", BASE_NO("\"jti\":42,\"user_id\":\"" USER "\"")},
        {"user_id", BASE_NO("\"jti\":\"" JTI "\",\"user_id\":42")},
        {"user_id", BASE_NO("\"jti\":\"" JTI "\",\"user_id\":\"not-a-uuid\"")},
        {"tenant_id", BASE_NO("\"jti\":\"" JTI "\",\"user_id\":\"" USER "\",\"tenant_id\":\"x\"")},
        {"tenant_id", BASE_NO("\"jti\":\"" JTI "\",\"user_id\":\"" USER "\",\"tenant_id\":5")},
        {"roles", BASE_NO("\"jti\":\"" JTI "\",\"user_id\":\"" USER "\",\"roles\":\"ADMIN\"")},
        {"roles", BASE_NO("\"jti\":\"" JTI "\",\"user_id\":\"" USER "\",\"roles\":[1]")},
        {"roles", BASE_NO("\"jti\":\"" JTI "\",\"user_id\":\"" USER "\",\"roles\":[\"\"]")},
        {"roles", BASE_NO("\"jti\":\"" JTI "\",\"user_id\":\"" USER "\",\"roles\":[\"AD MIN\"]")},
        {"roles",
         BASE_NO("\"jti\":\"" JTI "\",\"user_id\":\"" USER "\",\"roles\":[\"ABCDEFGHIJKLMNOPQ\"]")},
        {"roles", BASE_NO("\"jti\":\"" JTI "\",\"user_id\":\"" USER
                          "\",\"roles\":[\"A\",\"B\",\"C\",\"D\",\"E\",\"F\",\"G\",\"H\",\"I\"]")},
        {"nbf", BASE_NO("\"jti\":\"" JTI "\",\"user_id\":\"" USER "\",\"nbf\":\"soon\"")},
    };
#undef BASE_NO
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *t = forge(HS_HEADER, bad[i].payload, SECRET, NULL);
        adi_jwt_claims_t c;
        adi_jwt_verdict_t why;
        assert_int_equal(adi_jwt_verify(j, adi_str_c(t), ADI_JWT_ACCESS, NOW, &c, &why, NULL),
                         ADI_UNAUTHENTICATED);
        if (why.reason != ADI_JWT_R_BAD_CLAIM || strcmp(why.claim, bad[i].claim) != 0)
            fail_msg("bad claim #%zu: got %s/%s, want bad_claim/%s", i,
                     adi_jwt_reason_name(why.reason), why.claim ? why.claim : "-", bad[i].claim);
        free(t);
    }
    /* Eight roles is the maximum that still passes. */
    char *t =
        forge(HS_HEADER,
              "{\"token_type\":\"access\",\"exp\":1767227400,\"iat\":1767225600,\"jti\":\"" JTI
              "\",\"user_id\":\"" USER
              "\",\"roles\":[\"A\",\"B\",\"C\",\"D\",\"E\",\"F\",\"G\",\"ABCDEFGHIJKLMNOP\"]}",
              SECRET, NULL);
    adi_jwt_claims_t c;
    assert_int_equal(adi_jwt_verify(j, adi_str_c(t), ADI_JWT_ACCESS, NOW, &c, NULL, NULL), ADI_OK);
    assert_int_equal(c.nroles, 8);
    assert_string_equal(c.roles[7], "ABCDEFGHIJKLMNOP");
    free(t);
    adi_jwt_free(j);
}

/* Deterministic pseudo-random numbers for the mutation test (no clock, reproducible). */
static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Thousands of random one- to three-byte mutations of valid tokens: none is ever accepted. */
static void test_random_mutations_never_accepted(void **state)
{
    (void)state;
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        ".=+/ \"{}\x00\xff";
    adi_jwt_t *h = hs(SECRET, 0);
    adi_jwt_t *e = pk(ADI_JWT_ES256, pem.ec_priv, NULL);
    adi_jwt_t *all[] = {h, e};
    uint32_t seed = 12345;
    for (size_t k = 0; k < 2; k++) {
        char tok[ADI_JWT_TOKEN_MAX + 1];
        sign(all[k], ADI_JWT_ACCESS, tok);
        size_t n = strlen(tok);
        int rounds = k == 0 ? 3000 : 500;
        for (int i = 0; i < rounds; i++) {
            char m[ADI_JWT_TOKEN_MAX + 1];
            memcpy(m, tok, n + 1);
            size_t len = n;
            int edits = 1 + (int)(lcg(&seed) % 3);
            for (int x = 0; x < edits; x++) {
                size_t at = lcg(&seed) % len;
                switch (lcg(&seed) % 3) {
                case 0: /* replace */
                    m[at] = alphabet[lcg(&seed) % (sizeof(alphabet) - 1)];
                    break;
                case 1: /* delete */
                    memmove(m + at, m + at + 1, len - at);
                    len--;
                    break;
                default: /* truncate */
                    len = at + 1;
                    break;
                }
            }
            if (len == n && memcmp(m, tok, n) == 0)
                continue; /* the mutation happened to restore the token */
            adi_jwt_reason r = check(all[k], m, len, ADI_JWT_ACCESS, NOW);
            if (r == ADI_JWT_R_OK)
                fail_msg("mutated token accepted: %.*s", (int)len, m);
        }
    }
    adi_jwt_free(h);
    adi_jwt_free(e);
}

/* ---- configuration and claim building --------------------------------------------------- */

static adi_err try_new(adi_jwt_alg alg, const char *secret, const char *priv, const char *pub,
                       int64_t leeway)
{
    adi_jwt_config_t cfg = {.alg = alg,
                            .secret = adi_str_c(secret),
                            .private_key_pem = adi_str_c(priv),
                            .public_key_pem = adi_str_c(pub),
                            .leeway_s = leeway};
    adi_jwt_t *j = (adi_jwt_t *)1;
    adi_error_t err;
    adi_error_clear(&err);
    adi_err rc = adi_jwt_new(&j, &cfg, &err);
    if (rc != ADI_OK) {
        assert_null(j);
        /* Messages never quote key material. */
        assert_null(strstr(err.message, "BEGIN"));
        if (secret != NULL && secret[0] != '\0')
            assert_null(strstr(err.message, secret));
    }
    adi_jwt_free(j);
    return rc;
}

static void test_key_set_checks(void **state)
{
    (void)state;
    assert_int_equal(try_new(ADI_JWT_HS256, "k", NULL, NULL, 0), ADI_OK);
    assert_int_equal(try_new(ADI_JWT_HS256, "", NULL, NULL, 0), ADI_INVALID);
    assert_int_equal(try_new(ADI_JWT_HS256, NULL, NULL, NULL, 0), ADI_INVALID);
    assert_int_equal(try_new(ADI_JWT_HS256, SECRET, NULL, NULL, -1), ADI_INVALID);
    assert_int_equal(try_new(ADI_JWT_HS256, SECRET, NULL, NULL, ADI_JWT_LEEWAY_MAX + 1),
                     ADI_INVALID);
    assert_int_equal(try_new((adi_jwt_alg)42, SECRET, NULL, NULL, 0), ADI_INVALID);
    assert_int_equal(try_new(ADI_JWT_RS256, NULL, NULL, NULL, 0), ADI_INVALID);
    assert_int_equal(try_new(ADI_JWT_RS256, NULL, "not a pem", NULL, 0), ADI_INVALID);
    assert_int_equal(try_new(ADI_JWT_RS256, NULL, NULL, "-----BEGIN PUBLIC KEY-----\nAAAA\n", 0),
                     ADI_INVALID);
    /* A public key where the private one goes, and the reverse. */
    assert_int_equal(try_new(ADI_JWT_RS256, NULL, pem.rsa_pub, NULL, 0), ADI_INVALID);
    assert_int_equal(try_new(ADI_JWT_RS256, NULL, NULL, pem.rsa_priv, 0), ADI_INVALID);
    /* Key types that do not fit the algorithm, small RSA, wrong curve. */
    assert_int_equal(try_new(ADI_JWT_RS256, NULL, pem.ec_priv, NULL, 0), ADI_INVALID);
    assert_int_equal(try_new(ADI_JWT_ES256, NULL, pem.rsa_priv, NULL, 0), ADI_INVALID);
    assert_int_equal(try_new(ADI_JWT_ES256, NULL, NULL, pem.rsa_pub, 0), ADI_INVALID);
    assert_int_equal(try_new(ADI_JWT_RS256, NULL, pem.rsa1024_priv, NULL, 0), ADI_INVALID);
    assert_int_equal(try_new(ADI_JWT_ES256, NULL, pem.ec384_priv, NULL, 0), ADI_INVALID);
    /* Mismatched halves. */
    assert_int_equal(try_new(ADI_JWT_RS256, NULL, pem.rsa_priv, pem.rsa2_pub, 0), ADI_INVALID);
    assert_int_equal(try_new(ADI_JWT_ES256, NULL, pem.ec_priv, pem.ec2_pub, 0), ADI_INVALID);
    assert_int_equal(try_new(ADI_JWT_RS256, NULL, pem.rsa_priv, pem.rsa_pub, 0), ADI_OK);
    assert_int_equal(try_new(ADI_JWT_ES256, NULL, NULL, pem.ec_pub, 0), ADI_OK);

    adi_jwt_alg alg = ADI_JWT_HS256;
    assert_int_equal(adi_jwt_alg_parse(ADI_STR("RS256"), &alg, NULL), ADI_OK);
    assert_int_equal(alg, ADI_JWT_RS256);
    assert_int_equal(adi_jwt_alg_parse(ADI_STR("ES256"), &alg, NULL), ADI_OK);
    assert_int_equal(alg, ADI_JWT_ES256);
    assert_int_equal(adi_jwt_alg_parse(ADI_STR("none"), &alg, NULL), ADI_INVALID);
    assert_int_equal(adi_jwt_alg_parse(ADI_STR("hs256"), &alg, NULL), ADI_INVALID);
    assert_string_equal(adi_jwt_alg_name(ADI_JWT_HS256), "HS256");
}

static void test_claim_building_and_signing_checks(void **state)
{
    (void)state;
    adi_jwt_t *j = hs(SECRET, 0);
    adi_jwt_claims_t c;
    adi_jwt_claims_init(&c, ADI_JWT_ACCESS, NOW, 60);
    assert_int_equal(adi_jwt_claims_set_ids(&c, ADI_STR("nope"), ADI_STR(TENANT), NULL),
                     ADI_INVALID);
    assert_int_equal(adi_jwt_claims_set_ids(&c, ADI_STR(USER), ADI_STR("nope"), NULL), ADI_INVALID);
    for (int i = 0; i < ADI_JWT_MAX_ROLES; i++)
        assert_int_equal(adi_jwt_claims_add_role(&c, ADI_STR("VIEWER"), NULL), ADI_OK);
    assert_int_equal(adi_jwt_claims_add_role(&c, ADI_STR("VIEWER"), NULL), ADI_INVALID);
    assert_int_equal(adi_jwt_claims_add_role(&c, ADI_STR(""), NULL), ADI_INVALID);
    assert_int_equal(adi_jwt_claims_add_role(&c, ADI_STR("ROLE\"X"), NULL), ADI_INVALID);
    char tok[ADI_JWT_TOKEN_MAX + 1];
    /* No user yet: signing refuses. */
    assert_int_equal(adi_jwt_sign(j, &c, tok, sizeof(tok), NULL, NULL), ADI_INVALID);
    assert_int_equal(adi_jwt_claims_set_ids(&c, ADI_STR(USER), ADI_STR(TENANT), NULL), ADI_OK);
    assert_int_equal(adi_jwt_sign(j, &c, tok, sizeof(tok), NULL, NULL), ADI_OK);
    adi_jwt_claims_t bad = c;
    bad.exp = bad.iat;
    assert_int_equal(adi_jwt_sign(j, &bad, tok, sizeof(tok), NULL, NULL), ADI_INVALID);
    bad = c;
    bad.jti[0] = 'G';
    assert_int_equal(adi_jwt_sign(j, &bad, tok, sizeof(tok), NULL, NULL), ADI_INVALID);
    bad = c;
    bad.nroles = ADI_JWT_MAX_ROLES + 1;
    assert_int_equal(adi_jwt_sign(j, &bad, tok, sizeof(tok), NULL, NULL), ADI_INVALID);
    bad = c;
    bad.token_type = (adi_jwt_type)7;
    assert_int_equal(adi_jwt_sign(j, &bad, tok, sizeof(tok), NULL, NULL), ADI_INVALID);
    adi_jwt_free(j);
}

static void test_client_strings(void **state)
{
    (void)state;
    adi_buf_t b;
    adi_buf_init(&b);
    adi_jwt_error_body(ADI_JWT_ACCESS, ADI_JWT_R_EXPIRED, &b);
    assert_string_equal(b.data,
                        "{\"detail\":\"Given token not valid for any token type\",\"code\":"
                        "\"token_not_valid\",\"messages\":[{\"token_class\":\"AccessToken\","
                        "\"token_type\":\"access\",\"message\":\"Token is invalid or expired\"}]}");
    adi_buf_reset(&b);
    adi_jwt_error_body(ADI_JWT_ACCESS, ADI_JWT_R_WRONG_TYPE, &b);
    assert_non_null(strstr(b.data, "\"message\":\"Token has wrong type\""));
    adi_buf_reset(&b);
    adi_jwt_error_body(ADI_JWT_REFRESH, ADI_JWT_R_BAD_SIGNATURE, &b);
    assert_string_equal(
        b.data, "{\"detail\":\"Token is invalid or expired\",\"code\":\"token_not_valid\"}");
    adi_buf_dispose(&b);
    assert_string_equal(adi_jwt_token_class(ADI_JWT_REFRESH), "RefreshToken");
    assert_string_equal(adi_jwt_type_name(ADI_JWT_REFRESH), "refresh");
    /* Every reason has its own name. */
    for (int a = 0; a < ADI_JWT_R__COUNT; a++) {
        for (int b2 = a + 1; b2 < ADI_JWT_R__COUNT; b2++)
            assert_string_not_equal(adi_jwt_reason_name((adi_jwt_reason)a),
                                    adi_jwt_reason_name((adi_jwt_reason)b2));
    }
    assert_string_equal(adi_jwt_reason_name(ADI_JWT_R_ALG_NONE), "alg_none");
    assert_string_equal(adi_jwt_reason_name((adi_jwt_reason)99), "unknown");
    assert_string_equal(adi_jwt_reason_message(ADI_JWT_R_OK), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hs256_round_trip),
        cmocka_unit_test(test_rs256_round_trip),
        cmocka_unit_test(test_es256_round_trip),
        cmocka_unit_test(test_no_tenant_no_roles),
        cmocka_unit_test(test_version_and_superuser_claims),
        cmocka_unit_test(test_alg_none_rejected),
        cmocka_unit_test(test_algorithm_confusion_rejected),
        cmocka_unit_test(test_wrong_key_rejected),
        cmocka_unit_test(test_expiry_and_leeway),
        cmocka_unit_test(test_wrong_token_type_rejected),
        cmocka_unit_test(test_tampering_rejected),
        cmocka_unit_test(test_garbage_rejected),
        cmocka_unit_test(test_oversize_rejected),
        cmocka_unit_test(test_missing_and_bad_claims_rejected),
        cmocka_unit_test(test_random_mutations_never_accepted),
        cmocka_unit_test(test_key_set_checks),
        cmocka_unit_test(test_claim_building_and_signing_checks),
        cmocka_unit_test(test_client_strings),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
