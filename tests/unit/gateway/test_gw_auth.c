/* SPDX-License-Identifier: MIT */
/*
 * The gateway's token checks, pure parts: the Authorization header as simplejwt reads it (absent,
 * blank, other schemes, malformed), the route access decision (PUBLIC / AUTH / ADMIN, superuser),
 * the principal and Idempotency-Key scope built from claims, the ev:auth version table (highest
 * version wins, refusal below it, expiry, growth, eviction floor, any-case UUIDs, bad input), the
 * history start id and stream id times, the verified-token cache (exact match, exp with leeway,
 * bounds); and tokens minted with libs/jwt checked as the gateway
 * checks them (alg none, another algorithm, wrong key, expired, refresh presented as access).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adi/crypto.h"
#include "gw_auth.h"

#define U1 "0b7e6d4e-6f0a-4c39-9d0e-3b1f7f1b2c3d"
#define U2 "9f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
#define T1 "5e3a1c2d-0000-4000-8000-000000000001"

static gw_bearer_t bearer(const char *h, adi_str_t *tok)
{
    return gw_bearer_parse(h ? adi_str_c(h) : ADI_STR_NULL, tok);
}

static void test_bearer(void **state)
{
    (void)state;
    adi_str_t t;
    assert_int_equal(bearer(NULL, &t), GW_BEARER_NONE);
    assert_null(t.ptr);
    assert_int_equal(bearer("", &t), GW_BEARER_NONE);
    assert_int_equal(bearer("   \t ", &t), GW_BEARER_NONE);
    assert_int_equal(bearer("Basic dXNlcjpwdw==", &t), GW_BEARER_NONE);
    assert_int_equal(bearer("bearer abc", &t), GW_BEARER_NONE); /* simplejwt is case-sensitive */
    assert_int_equal(bearer("Token abc", &t), GW_BEARER_NONE);
    assert_int_equal(bearer("Bearer", &t), GW_BEARER_MALFORMED);
    assert_int_equal(bearer("Bearer   ", &t), GW_BEARER_MALFORMED);
    assert_int_equal(bearer("Bearer a b", &t), GW_BEARER_MALFORMED);
    assert_int_equal(bearer("Bearer a b c d e", &t), GW_BEARER_MALFORMED);
    assert_null(t.ptr);
    assert_int_equal(bearer("Bearer abc.def.ghi", &t), GW_BEARER_TOKEN);
    assert_true(adi_str_eq_c(t, "abc.def.ghi"));
    assert_int_equal(bearer("  Bearer \t abc.def  ", &t), GW_BEARER_TOKEN);
    assert_true(adi_str_eq_c(t, "abc.def"));
    /* Not NUL-terminated input: only `len` bytes count. */
    const char raw[] = "Bearer xyzTRAILING";
    assert_int_equal(gw_bearer_parse((adi_str_t){raw, 10}, &t), GW_BEARER_TOKEN);
    assert_true(adi_str_eq_c(t, "xyz"));

    adi_buf_t b;
    adi_buf_init(&b);
    gw_render_bad_auth_header(&b);
    adi_buf_append(&b, "", 1);
    assert_string_equal(b.data, "{\"detail\":\"Authorization header must contain two "
                                "space-delimited values\",\"code\":\"bad_authorization_header\"}");
    adi_buf_dispose(&b);
}

static adi_jwt_claims_t claims(const char *user, bool superuser, int nroles, ...)
{
    adi_jwt_claims_t c;
    adi_jwt_claims_init(&c, ADI_JWT_ACCESS, 1000, 300);
    assert_int_equal(adi_jwt_claims_set_ids(&c, adi_str_c(user), ADI_STR(T1), NULL), ADI_OK);
    va_list ap;
    va_start(ap, nroles);
    for (int i = 0; i < nroles; i++)
        assert_int_equal(adi_jwt_claims_add_role(&c, adi_str_c(va_arg(ap, const char *)), NULL),
                         ADI_OK);
    va_end(ap);
    c.is_superuser = superuser;
    return c;
}

static void test_access(void **state)
{
    (void)state;
    adi_jwt_claims_t viewer = claims(U1, false, 1, "VIEWER");
    adi_jwt_claims_t none = claims(U1, false, 0);
    adi_jwt_claims_t admin = claims(U1, false, 2, "ANALYST", "ADMIN");
    adi_jwt_claims_t super = claims(U1, true, 0);
    adi_jwt_claims_t lower = claims(U1, false, 1, "admin");
    assert_int_equal(gw_access_decide(ADI_PUBLIC, &none), GW_ACCESS_OK);
    assert_int_equal(gw_access_decide(ADI_AUTH, &none), GW_ACCESS_OK);
    assert_int_equal(gw_access_decide(ADI_AUTH, &viewer), GW_ACCESS_OK);
    assert_int_equal(gw_access_decide(ADI_ADMIN, &viewer), GW_ACCESS_FORBIDDEN);
    assert_int_equal(gw_access_decide(ADI_ADMIN, &none), GW_ACCESS_FORBIDDEN);
    assert_int_equal(gw_access_decide(ADI_ADMIN, &lower), GW_ACCESS_FORBIDDEN);
    assert_int_equal(gw_access_decide(ADI_ADMIN, &admin), GW_ACCESS_OK);
    assert_int_equal(gw_access_decide(ADI_ADMIN, &super), GW_ACCESS_OK);
}

static void test_principal(void **state)
{
    (void)state;
    adi_jwt_claims_t c = claims(U1, true, 2, "ADMIN", "VIEWER");
    adi_principal p;
    gw_principal_roles_t roles;
    gw_principal_from_claims(&c, &p, &roles);
    assert_true(adi_str_eq_c(p.user_id, U1));
    assert_true(adi_str_eq_c(p.tenant_id, T1));
    assert_null(p.email.ptr);
    assert_int_equal(p.roles.n, 2);
    assert_true(adi_str_eq_c(p.roles.items[0], "ADMIN"));
    assert_true(adi_str_eq_c(p.roles.items[1], "VIEWER"));
    assert_true(p.superuser);
    /* It encodes and decodes as a valid principal. */
    adi_buf_t b;
    adi_buf_init(&b);
    adi_proto_encode(&adi_principal__desc, &p, &b);
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_principal back;
    memset(&back, 0, sizeof(back));
    assert_int_equal(adi_proto_decode(&adi_principal__desc, b.data, b.len, &pool, &back, NULL),
                     ADI_OK);
    assert_true(adi_str_eq_c(back.user_id, U1));
    assert_int_equal(back.roles.n, 2);
    assert_true(back.superuser);
    adi_pool_dispose(&pool);
    adi_buf_dispose(&b);

    adi_jwt_claims_t nt;
    adi_jwt_claims_init(&nt, ADI_JWT_ACCESS, 1000, 300);
    assert_int_equal(adi_jwt_claims_set_ids(&nt, ADI_STR(U2), ADI_STR_NULL, NULL), ADI_OK);
    gw_principal_from_claims(&nt, &p, &roles);
    assert_null(p.tenant_id.ptr);
    assert_int_equal(p.roles.n, 0);
    assert_false(p.superuser);

    char scope[GW_SCOPE_MAX];
    gw_principal_scope(&c, "192.0.2.1", scope);
    assert_string_equal(scope, U1 "/" T1);
    gw_principal_scope(&nt, NULL, scope);
    assert_string_equal(scope, U2 "/");
    /* Anonymous callers are scoped by their address (as libs/svc scopes them): two clients with
       the same Idempotency-Key never share a slot. */
    gw_principal_scope(NULL, "192.0.2.1", scope);
    assert_string_equal(scope, "anon/192.0.2.1");
    char other[GW_SCOPE_MAX];
    gw_principal_scope(NULL, "192.0.2.2", other);
    assert_string_not_equal(scope, other);
    gw_principal_scope(NULL, "2001:db8:ffff:ffff:ffff:ffff:255.255.255.255", scope);
    assert_string_equal(scope, "anon/2001:db8:ffff:ffff:ffff:ffff:255.255.255.255");
    gw_principal_scope(NULL, NULL, scope);
    assert_string_equal(scope, "anon/");
}

static void test_vtable_basics(void **state)
{
    (void)state;
    gw_vtable_t v;
    gw_vtable_init(&v, GW_VTABLE_MAX_SLOTS, 60000);
    /* Unknown users: every version passes. */
    assert_true(gw_vtable_allows(&v, ADI_STR(U1), 0, 100));
    assert_int_equal(gw_vtable_get(&v, ADI_STR(U1)), -1);
    assert_int_equal(gw_vtable_note(&v, ADI_STR(U1), 2, 1000, 1000), ADI_OK);
    assert_int_equal(gw_vtable_get(&v, ADI_STR(U1)), 2);
    assert_false(gw_vtable_allows(&v, ADI_STR(U1), 0, 100));
    assert_false(gw_vtable_allows(&v, ADI_STR(U1), 1, 100));
    assert_true(gw_vtable_allows(&v, ADI_STR(U1), 2, 100));
    assert_true(gw_vtable_allows(&v, ADI_STR(U1), 3, 100));
    /* The highest version wins, in any order (history and live events may interleave). */
    assert_int_equal(gw_vtable_note(&v, ADI_STR(U1), 1, 2000, 2000), ADI_OK);
    assert_int_equal(gw_vtable_get(&v, ADI_STR(U1)), 2);
    assert_int_equal(gw_vtable_note(&v, ADI_STR(U1), 5, 3000, 3000), ADI_OK);
    assert_false(gw_vtable_allows(&v, ADI_STR(U1), 4, 100));
    /* Upper-case ids are the same user. */
    char upper[] = U1;
    for (char *p = upper; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    assert_int_equal(gw_vtable_get(&v, adi_str_c(upper)), 5);
    /* Other users are untouched. */
    assert_true(gw_vtable_allows(&v, ADI_STR(U2), 0, 100));
    /* Bad input is refused and stores nothing. */
    assert_int_equal(gw_vtable_note(&v, ADI_STR("not-a-uuid"), 1, 1, 1), ADI_INVALID);
    assert_int_equal(gw_vtable_note(&v, ADI_STR(U2), -1, 1, 1), ADI_INVALID);
    assert_int_equal(gw_vtable_note(&v, ADI_STR("0b7e6d4e-6f0a-4c39-9d0e-3b1f7f1b2c3g"), 1, 1, 1),
                     ADI_INVALID);
    assert_int_equal(gw_vtable_note(&v, ADI_STR("0b7e6d4e06f0a-4c39-9d0e-3b1f7f1b2c3d"), 1, 1, 1),
                     ADI_INVALID);
    assert_int_equal(v.n, 1);
    /* A token whose user id is no UUID never passes (the verifier refuses it anyway). */
    assert_false(gw_vtable_allows(&v, ADI_STR("x"), 9, 100));
    gw_vtable_dispose(&v);
}

/* Formats the UUID of user number i. */
static void user_id(unsigned i, char out[37])
{
    snprintf(out, 37, "%08x-0000-4000-8000-%012x", i, i * 7919u);
}

static void test_vtable_growth_and_expiry(void **state)
{
    (void)state;
    gw_vtable_t v;
    gw_vtable_init(&v, 1024, 60000);
    char id[37];
    /* 500 users at t = 0 s: the table grows and keeps all. */
    for (unsigned i = 0; i < 500; i++) {
        user_id(i, id);
        assert_int_equal(gw_vtable_note(&v, adi_str_c(id), i + 1, 0, 0), ADI_OK);
    }
    assert_int_equal(v.n, 500);
    for (unsigned i = 0; i < 500; i++) {
        user_id(i, id);
        assert_int_equal(gw_vtable_get(&v, adi_str_c(id)), i + 1);
    }
    /* Later, when room is needed, the expired ones (older than the ttl) are dropped. */
    for (unsigned i = 500; i < 1200; i++) {
        user_id(i, id);
        assert_int_equal(gw_vtable_note(&v, adi_str_c(id), 1, 120000, 120000), ADI_OK);
    }
    assert_true(v.cap <= 1024);
    user_id(1199, id);
    assert_int_equal(gw_vtable_get(&v, adi_str_c(id)), 1);
    assert_int_equal(v.floor_s, 0); /* nothing unexpired was evicted */
    gw_vtable_dispose(&v);
}

static void test_vtable_eviction_floor(void **state)
{
    (void)state;
    gw_vtable_t v;
    gw_vtable_init(&v, 16, 3600000); /* 16 slots: 12 users fit */
    char id[37];
    for (unsigned i = 0; i < 12; i++) {
        user_id(i, id);
        assert_int_equal(gw_vtable_note(&v, adi_str_c(id), 1, 1000000 + i * 1000, 1000000), ADI_OK);
    }
    assert_int_equal(v.floor_s, 0);
    /* A 13th live user: the oldest is evicted and its time (1000 s) becomes the floor. */
    user_id(100, id);
    assert_int_equal(gw_vtable_note(&v, adi_str_c(id), 1, 2000000, 2000000), ADI_OK);
    assert_int_equal(v.floor_s, 1000);
    user_id(0, id);
    assert_int_equal(gw_vtable_get(&v, adi_str_c(id)), -1);
    /* Safe, not silent: its old tokens (and everyone's as old) are refused, newer ones pass. */
    assert_false(gw_vtable_allows(&v, adi_str_c(id), 0, 999));
    assert_false(gw_vtable_allows(&v, adi_str_c(id), 0, 1000));
    assert_true(gw_vtable_allows(&v, adi_str_c(id), 0, 1001));
    user_id(100, id);
    assert_true(gw_vtable_allows(&v, adi_str_c(id), 1, 1001));
    gw_vtable_dispose(&v);
}

static void test_ids(void **state)
{
    (void)state;
    char buf[32];
    gw_vtable_history_id(1700000000000, 1800000, buf, sizeof(buf));
    assert_string_equal(buf, "1699998200000-0");
    gw_vtable_history_id(1000, 1800000, buf, sizeof(buf));
    assert_string_equal(buf, "0-0");
    int64_t ms;
    assert_true(gw_stream_id_ms(ADI_STR("1700000000000-3"), &ms));
    assert_int_equal(ms, 1700000000000);
    assert_false(gw_stream_id_ms(ADI_STR("1700000000000"), &ms));
    assert_false(gw_stream_id_ms(ADI_STR("-3"), &ms));
    assert_false(gw_stream_id_ms(ADI_STR("abc-1"), &ms));
    assert_false(gw_stream_id_ms(ADI_STR_NULL, &ms));
}

/* b64url of a JSON text, for hand-made tokens. */
static void b64url(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    assert_int_equal(adi_b64url_encode(s, strlen(s), out, cap, &n, NULL), ADI_OK);
    out[n] = '\0';
}

/* The verifier the gateway calls, on tokens a client could send. */
static void test_tokens_as_the_gateway_checks_them(void **state)
{
    (void)state;
    adi_jwt_config_t cfg = {.alg = ADI_JWT_HS256, .secret = ADI_STR("gateway-test-secret")};
    adi_jwt_t *j = NULL;
    assert_int_equal(adi_jwt_new(&j, &cfg, NULL), ADI_OK);
    adi_jwt_config_t other = {.alg = ADI_JWT_HS256, .secret = ADI_STR("another-secret")};
    adi_jwt_t *k = NULL;
    assert_int_equal(adi_jwt_new(&k, &other, NULL), ADI_OK);

    adi_jwt_claims_t c = claims(U1, false, 1, "VIEWER");
    c.iat = 1000;
    c.exp = 2800;
    char tok[ADI_JWT_TOKEN_MAX];
    assert_int_equal(adi_jwt_sign(j, &c, tok, sizeof(tok), NULL, NULL), ADI_OK);
    adi_jwt_claims_t out;
    adi_jwt_verdict_t why;
    assert_int_equal(adi_jwt_verify(j, adi_str_c(tok), ADI_JWT_ACCESS, 1500, &out, &why, NULL),
                     ADI_OK);
    assert_string_equal(out.user_id, U1);
    /* Expired. */
    assert_int_equal(adi_jwt_verify(j, adi_str_c(tok), ADI_JWT_ACCESS, 2800, &out, &why, NULL),
                     ADI_UNAUTHENTICATED);
    assert_int_equal(why.reason, ADI_JWT_R_EXPIRED);
    /* Wrong key. */
    char tok2[ADI_JWT_TOKEN_MAX];
    assert_int_equal(adi_jwt_sign(k, &c, tok2, sizeof(tok2), NULL, NULL), ADI_OK);
    assert_int_equal(adi_jwt_verify(j, adi_str_c(tok2), ADI_JWT_ACCESS, 1500, &out, &why, NULL),
                     ADI_UNAUTHENTICATED);
    assert_int_equal(why.reason, ADI_JWT_R_BAD_SIGNATURE);
    /* A refresh token presented as access. */
    adi_jwt_claims_t rc = c;
    rc.token_type = ADI_JWT_REFRESH;
    assert_int_equal(adi_jwt_sign(j, &rc, tok2, sizeof(tok2), NULL, NULL), ADI_OK);
    assert_int_equal(adi_jwt_verify(j, adi_str_c(tok2), ADI_JWT_ACCESS, 1500, &out, &why, NULL),
                     ADI_UNAUTHENTICATED);
    assert_int_equal(why.reason, ADI_JWT_R_WRONG_TYPE);
    /* alg none and another algorithm, with our payload. */
    const char *payload = strchr(tok, '.') + 1;
    size_t plen = (size_t)(strrchr(tok, '.') - payload);
    char head[128], forged[ADI_JWT_TOKEN_MAX];
    b64url("{\"alg\":\"none\",\"typ\":\"JWT\"}", head, sizeof(head));
    snprintf(forged, sizeof(forged), "%s.%.*s.", head, (int)plen, payload);
    assert_int_equal(adi_jwt_verify(j, adi_str_c(forged), ADI_JWT_ACCESS, 1500, &out, &why, NULL),
                     ADI_UNAUTHENTICATED);
    assert_int_equal(why.reason, ADI_JWT_R_ALG_NONE);
    b64url("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", head, sizeof(head));
    snprintf(forged, sizeof(forged), "%s.%.*s.%s", head, (int)plen, payload, strrchr(tok, '.') + 1);
    assert_int_equal(adi_jwt_verify(j, adi_str_c(forged), ADI_JWT_ACCESS, 1500, &out, &why, NULL),
                     ADI_UNAUTHENTICATED);
    assert_int_equal(why.reason, ADI_JWT_R_ALG_MISMATCH);
    /* Every refusal renders the same access-token body. */
    adi_buf_t b;
    adi_buf_init(&b);
    adi_jwt_error_body(ADI_JWT_ACCESS, why.reason, &b);
    adi_buf_append(&b, "", 1);
    assert_non_null(strstr(b.data, "\"code\":\"token_not_valid\""));
    assert_non_null(strstr(b.data, "Token is invalid or expired"));
    adi_buf_dispose(&b);
    adi_jwt_free(j);
    adi_jwt_free(k);
}

static void test_token_cache(void **state)
{
    (void)state;
    gw_tcache_t c;
    gw_tcache_init(&c, 5);
    adi_jwt_claims_t in = claims(U1, false, 1, "ADMIN"), out;
    in.exp = 2000;
    const char *tok = "aaa.bbb.ccc";
    assert_false(gw_tcache_get(&c, adi_str_c(tok), 1000, &out)); /* empty */
    gw_tcache_put(&c, adi_str_c(tok), &in);
    assert_true(gw_tcache_get(&c, adi_str_c(tok), 1000, &out));
    assert_string_equal(out.user_id, U1);
    assert_string_equal(out.roles[0], "ADMIN");
    /* Only the very same bytes hit. */
    assert_false(gw_tcache_get(&c, ADI_STR("aaa.bbb.ccd"), 1000, &out));
    assert_false(gw_tcache_get(&c, ADI_STR("aaa.bbb.cc"), 1000, &out));
    assert_false(gw_tcache_get(&c, ADI_STR_NULL, 1000, &out));
    /* exp with leeway, as the verifier: valid until exp - 1 + leeway, then dropped. */
    assert_true(gw_tcache_get(&c, adi_str_c(tok), 2004, &out));
    assert_false(gw_tcache_get(&c, adi_str_c(tok), 2005, &out));
    assert_false(gw_tcache_get(&c, adi_str_c(tok), 1000, &out)); /* gone */
    /* Over-long tokens are never stored. */
    char big[GW_TCACHE_TOKEN_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    gw_tcache_put(&c, adi_str_c(big), &in);
    assert_false(gw_tcache_get(&c, adi_str_c(big), 1000, &out));
    /* A colliding slot is simply replaced. */
    char name[32];
    for (int i = 0; i < 3 * GW_TCACHE_SLOTS; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        gw_tcache_put(&c, adi_str_c(name), &in);
    }
    assert_true(gw_tcache_get(&c, adi_str_c(name), 1000, &out));
    gw_tcache_dispose(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_access),
        cmocka_unit_test(test_principal),
        cmocka_unit_test(test_vtable_basics),
        cmocka_unit_test(test_vtable_growth_and_expiry),
        cmocka_unit_test(test_vtable_eviction_floor),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_tokens_as_the_gateway_checks_them),
        cmocka_unit_test(test_token_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
