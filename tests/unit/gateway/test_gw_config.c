/* SPDX-License-Identifier: MIT */
/*
 * The gateway's config parsers: REDIS_URL forms (password, ACL user, IPv6, database, errors that
 * never echo the password), CORS_ALLOWED_ORIGINS (blanks, empty items, invalid origins, exact
 * matching), GATEWAY_THREADS (0 = one per online CPU, clamped) and the JWT settings (algorithm,
 * required key per algorithm, PEM file problems, a usable ES256 public key; messages never repeat
 * the secret).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "gw_config.h"

static void test_redis_url(void **state)
{
    (void)state;
    gw_redis_url_t u;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(gw_redis_url_parse("redis://127.0.0.1:6379", &u, &err), ADI_OK);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6379);
    assert_string_equal(u.password, "");
    assert_int_equal(u.db, 0);
    assert_int_equal(gw_redis_url_parse("redis://redis.svc", &u, &err), ADI_OK);
    assert_string_equal(u.host, "redis.svc");
    assert_int_equal(u.port, 6379);
    assert_int_equal(gw_redis_url_parse("redis://:s%40cret@h:7000/3", &u, &err), ADI_OK);
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 7000);
    assert_string_equal(u.password, "s@cret");
    assert_string_equal(u.user, "");
    assert_int_equal(u.db, 3);
    assert_int_equal(gw_redis_url_parse("redis://gw:pw@h/", &u, &err), ADI_OK);
    assert_string_equal(u.user, "gw");
    assert_string_equal(u.password, "pw");
    assert_int_equal(gw_redis_url_parse("redis://onlypw@h", &u, &err), ADI_OK);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "onlypw");
    assert_int_equal(gw_redis_url_parse("redis://[::1]:6380", &u, &err), ADI_OK);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6380);

    static const char *const bad[] = {
        "http://h",    "redis://",    "redis://:pw@",  "redis://h:0",  "redis://h:99999",
        "redis://h:x", "redis://h/x", "redis://h?x=1", "redis://[::1", NULL,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        adi_error_clear(&err);
        assert_int_equal(gw_redis_url_parse(bad[i], &u, &err), ADI_INVALID);
        assert_true(strlen(err.message) > 0);
    }
    adi_error_clear(&err);
    assert_int_equal(gw_redis_url_parse("redis://:hunter2@h:0", &u, &err), ADI_INVALID);
    assert_null(strstr(err.message, "hunter2"));
}

static void test_origins(void **state)
{
    (void)state;
    gw_origins_t *o = malloc(sizeof(*o));
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(
        gw_origins_parse(" https://app.example.com, http://localhost:3000 ,,", o, &err), ADI_OK);
    assert_int_equal(o->n, 2);
    assert_string_equal(o->items[0], "https://app.example.com");
    assert_string_equal(o->items[1], "http://localhost:3000");
    assert_true(gw_origins_allowed(o, ADI_STR("http://localhost:3000")));
    assert_true(gw_origins_allowed(o, ADI_STR("https://app.example.com")));
    assert_false(gw_origins_allowed(o, ADI_STR("http://localhost:3001")));
    assert_false(gw_origins_allowed(o, ADI_STR("https://app.example.com.evil")));
    assert_false(gw_origins_allowed(o, ADI_STR("HTTPS://APP.EXAMPLE.COM")));
    assert_false(gw_origins_allowed(o, ADI_STR("null")));
    assert_false(gw_origins_allowed(o, ADI_STR_NULL));

    assert_int_equal(gw_origins_parse("", o, &err), ADI_OK);
    assert_int_equal(o->n, 0);
    assert_false(gw_origins_allowed(o, ADI_STR("http://localhost:3000")));

    static const char *const bad[] = {"*",         "localhost:3000", "https://a.example/",
                                      "ftp://a",   "https://a:b",    "https://",
                                      "https://a:"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        adi_error_clear(&err);
        assert_int_equal(gw_origins_parse(bad[i], o, &err), ADI_INVALID);
    }
    char many[GW_MAX_ORIGINS * 24];
    size_t n = 0;
    for (int i = 0; i <= GW_MAX_ORIGINS; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "http://h%d,", i);
    adi_error_clear(&err);
    assert_int_equal(gw_origins_parse(many, o, &err), ADI_INVALID);
    free(o);
}

/* Loads the config from a clean environment plus `kv` (NULL-terminated name, value pairs). */
static int load(const char *const *kv, gw_config_t *cfg, char *errs, size_t cap)
{
    static const char *const names[] = {"JWT_ALGORITHM", "JWT_SIGNING_KEY", "JWT_PUBLIC_KEY_FILE",
                                        "JWT_LEEWAY_S", "GATEWAY_THREADS"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        unsetenv(names[i]);
    for (size_t i = 0; kv[i] != NULL; i += 2)
        setenv(kv[i], kv[i + 1], 1);
    gw_redis_url_t *url = malloc(sizeof(*url));
    gw_origins_t *origins = malloc(sizeof(*origins));
    FILE *f = fmemopen(errs, cap, "w");
    int bad = gw_config_load(cfg, url, origins, f);
    fclose(f);
    free(url);
    free(origins);
    return bad;
}

/* Runs gw_config_jwt and returns the number of problems; `errs` gets the messages. */
static int jwt(const gw_config_t *cfg, adi_jwt_t **out, char *errs, size_t cap)
{
    FILE *f = fmemopen(errs, cap, "w");
    int bad = gw_config_jwt(cfg, out, f);
    fclose(f);
    return bad;
}

static void test_threads(void **state)
{
    (void)state;
    /* A positive setting is used as it is; 0 means one per online CPU, within 1..64. */
    assert_int_equal(gw_threads_resolve(2, 8), 2);
    assert_int_equal(gw_threads_resolve(64, 1), 64);
    assert_int_equal(gw_threads_resolve(0, 1), 1);
    assert_int_equal(gw_threads_resolve(0, 8), 8);
    assert_int_equal(gw_threads_resolve(0, GW_THREADS_MAX), GW_THREADS_MAX);
    assert_int_equal(gw_threads_resolve(0, 1000), GW_THREADS_MAX);
    assert_int_equal(gw_threads_resolve(0, 0), 1);
    assert_int_equal(gw_threads_resolve(0, -1), 1); /* sysconf failed */

    /* Through the environment: unset (the default, 0) resolves to this machine's CPUs. */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t want = cpus < 1 ? 1 : cpus > GW_THREADS_MAX ? GW_THREADS_MAX : cpus;
    gw_config_t cfg;
    char errs[1024];
    static const char *const dflt[] = {"JWT_SIGNING_KEY", "k", NULL};
    memset(errs, 0, sizeof(errs));
    assert_int_equal(load(dflt, &cfg, errs, sizeof(errs)), 0);
    assert_true(cfg.threads_auto);
    assert_int_equal(cfg.threads, want);
    static const char *const zero[] = {"JWT_SIGNING_KEY", "k", "GATEWAY_THREADS", "0", NULL};
    assert_int_equal(load(zero, &cfg, errs, sizeof(errs)), 0);
    assert_true(cfg.threads_auto);
    assert_int_equal(cfg.threads, want);
    static const char *const three[] = {"JWT_SIGNING_KEY", "k", "GATEWAY_THREADS", "3", NULL};
    assert_int_equal(load(three, &cfg, errs, sizeof(errs)), 0);
    assert_false(cfg.threads_auto);
    assert_int_equal(cfg.threads, 3);
    static const char *const bad[] = {"-1", "65", "two"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *const kv[] = {"JWT_SIGNING_KEY", "k", "GATEWAY_THREADS", bad[i], NULL};
        memset(errs, 0, sizeof(errs));
        assert_int_equal(load(kv, &cfg, errs, sizeof(errs)), 1);
        assert_non_null(strstr(errs, "GATEWAY_THREADS"));
    }
    unsetenv("GATEWAY_THREADS");
    unsetenv("JWT_SIGNING_KEY");
}

static void test_jwt(void **state)
{
    (void)state;
    gw_config_t cfg;
    char errs[1024];
    adi_jwt_t *j = NULL;
    /* HS256 (the default) needs the secret. */
    static const char *const none[] = {NULL};
    memset(errs, 0, sizeof(errs));
    assert_int_equal(load(none, &cfg, errs, sizeof(errs)), 1);
    assert_non_null(strstr(errs, "JWT_SIGNING_KEY"));
    static const char *const hs[] = {"JWT_SIGNING_KEY", "s3cr3t-value", "JWT_LEEWAY_S", "5", NULL};
    memset(errs, 0, sizeof(errs));
    assert_int_equal(load(hs, &cfg, errs, sizeof(errs)), 0);
    assert_int_equal(cfg.jwt_leeway_s, 5);
    assert_int_equal(cfg.access_ttl_s, 1800);
    assert_int_equal(cfg.login_max_fail, 5);
    assert_int_equal(cfg.login_lockout_s, 60);
    assert_int_equal(cfg.login_addr_max, 0);
    assert_int_equal(jwt(&cfg, &j, errs, sizeof(errs)), 0);
    assert_non_null(j);
    assert_int_equal(adi_jwt_get_alg(j), ADI_JWT_HS256);
    adi_jwt_free(j);
    /* Unknown algorithm, leeway out of range. */
    static const char *const bad_alg[] = {"JWT_ALGORITHM", "none", "JWT_SIGNING_KEY", "k", NULL};
    memset(errs, 0, sizeof(errs));
    assert_int_equal(load(bad_alg, &cfg, errs, sizeof(errs)), 1);
    assert_non_null(strstr(errs, "JWT_ALGORITHM"));
    static const char *const bad_leeway[] = {"JWT_SIGNING_KEY", "k", "JWT_LEEWAY_S", "99999", NULL};
    memset(errs, 0, sizeof(errs));
    assert_true(load(bad_leeway, &cfg, errs, sizeof(errs)) > 0);
    /* RS256/ES256 need the public key file: missing, unreadable, not a PEM. */
    static const char *const es_nofile[] = {"JWT_ALGORITHM", "ES256", NULL};
    memset(errs, 0, sizeof(errs));
    assert_int_equal(load(es_nofile, &cfg, errs, sizeof(errs)), 1);
    assert_non_null(strstr(errs, "JWT_PUBLIC_KEY_FILE"));
    static const char *const es_missing[] = {"JWT_ALGORITHM", "ES256", "JWT_PUBLIC_KEY_FILE",
                                             "/nonexistent/key.pem", NULL};
    memset(errs, 0, sizeof(errs));
    assert_int_equal(load(es_missing, &cfg, errs, sizeof(errs)), 0);
    assert_int_equal(jwt(&cfg, &j, errs, sizeof(errs)), 1);
    assert_null(j);
    assert_non_null(strstr(errs, "cannot open"));

    char path[] = "/tmp/test_gw_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("not a key\n", f);
    fclose(f);
    static const char *kv[] = {"JWT_ALGORITHM", "ES256", "JWT_PUBLIC_KEY_FILE", NULL, NULL};
    kv[3] = path;
    memset(errs, 0, sizeof(errs));
    assert_int_equal(load(kv, &cfg, errs, sizeof(errs)), 0);
    assert_int_equal(jwt(&cfg, &j, errs, sizeof(errs)), 1);
    assert_non_null(strstr(errs, "JWT_PUBLIC_KEY_FILE"));
    /* A P-256 public key works for ES256 and is refused for RS256. */
    EVP_PKEY *key = EVP_EC_gen("P-256");
    assert_non_null(key);
    f = fopen(path, "w");
    assert_int_equal(PEM_write_PUBKEY(f, key), 1);
    fclose(f);
    EVP_PKEY_free(key);
    memset(errs, 0, sizeof(errs));
    assert_int_equal(jwt(&cfg, &j, errs, sizeof(errs)), 0);
    assert_int_equal(adi_jwt_get_alg(j), ADI_JWT_ES256);
    assert_false(adi_jwt_can_sign(j));
    adi_jwt_free(j);
    static const char *kv_rs[] = {"JWT_ALGORITHM", "RS256", "JWT_PUBLIC_KEY_FILE", NULL, NULL};
    kv_rs[3] = path;
    assert_int_equal(load(kv_rs, &cfg, errs, sizeof(errs)), 0);
    memset(errs, 0, sizeof(errs));
    assert_int_equal(jwt(&cfg, &j, errs, sizeof(errs)), 1);
    assert_non_null(strstr(errs, "RS256"));
    unlink(path);
    /* The secret never appears in a message. */
    static const char *const long_key_alg[] = {"JWT_ALGORITHM", "RS256", "JWT_SIGNING_KEY",
                                               "s3cr3t-value", NULL};
    memset(errs, 0, sizeof(errs));
    load(long_key_alg, &cfg, errs, sizeof(errs));
    assert_null(strstr(errs, "s3cr3t"));
    unsetenv("JWT_ALGORITHM");
    unsetenv("JWT_SIGNING_KEY");
    unsetenv("JWT_PUBLIC_KEY_FILE");
    unsetenv("JWT_LEEWAY_S");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_url),
        cmocka_unit_test(test_origins),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_jwt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
