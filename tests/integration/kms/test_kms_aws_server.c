/* SPDX-License-Identifier: MIT */
/*
 * The aws KMS provider against the fake AWS server of the `fakeaws` fixture (tests/harness/
 * fake_aws.py), which checks every KMS request's SigV4 signature with botocore and serves STS
 * web identity and IMDSv2. Round trips (GenerateDataKey, Decrypt, Encrypt, ReEncrypt, also onto
 * a second key) with each credential source: static keys, web identity, IMDSv2 and a shared
 * credentials file with a profile; then the failures: a wrong secret (InvalidSignatureException
 * at the server, 503 here), another context (400 "Decryption failed."), throttling that a retry
 * absorbs, failures beyond max_attempts, expired sessions that a refresh absorbs, refresh ahead
 * of expiry (a TTL inside the 5-minute window), a failing refresh that keeps the old credentials
 * in service, and a denied context failing only its own calls. Several threads share one
 * provider at the end. The server's /_control sets up each case and /_stats checks what reached
 * it. The server is shared: ctest runs this test under RESOURCE_LOCK fakeaws.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "adi/kms.h"

/* ---- the fake server ---------------------------------------------------------------------- */

static const char *env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0')
        fail_msg("%s is not set: run through ctest (fixtures stack and fakeaws)", name);
    return v;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
    adi_buf_append(user, data, size * nmemb);
    return size * nmemb;
}

/* GET or POST (when `body` is given) <server><path>; returns the parsed JSON answer. */
static json_t *server_call(const char *path, const char *body)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", env("ADI_FAKE_AWS_URL"), path);
    CURL *h = curl_easy_init();
    assert_non_null(h);
    adi_buf_t b;
    adi_buf_init(&b);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    }
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    if (cc != CURLE_OK || status != 200)
        fail_msg("%s %s: curl %d, HTTP %ld", body != NULL ? "POST" : "GET", path, (int)cc, status);
    json_error_t jerr;
    json_t *j = json_loadb(b.data, b.len, 0, &jerr);
    adi_buf_dispose(&b);
    assert_non_null(j);
    return j;
}

static void control(const char *json)
{
    json_decref(server_call("/_control", json));
}

/* A snapshot of /_stats. */
typedef struct stats {
    json_t *j; /* the parsed answer */
} stats_t;

static stats_t stats(void)
{
    return (stats_t){server_call("/_stats", NULL)};
}

static long long stat_of(stats_t s, const char *group, const char *key)
{
    json_t *v = group != NULL ? json_object_get(json_object_get(s.j, group), key)
                              : json_object_get(s.j, key);
    return json_is_integer(v) ? json_integer_value(v) : 0;
}

static void stats_free(stats_t s)
{
    json_decref(s.j);
}

/* ---- providers ---------------------------------------------------------------------------- */

/* The server's first key ("alias/adi-a") or second. */
static void key_alias(int which, char *out, size_t cap)
{
    const char *keys = env("ADI_FAKE_AWS_KEYS");
    const char *comma = strchr(keys, ',');
    if (which == 0)
        snprintf(out, cap, "%.*s", comma != NULL ? (int)(comma - keys) : (int)strlen(keys), keys);
    else
        snprintf(out, cap, "%s", comma != NULL ? comma + 1 : keys);
}

/* A config with the server as every endpoint, no credential source, fast retries. */
static adi_kms_config_t base_config(char *key, size_t cap)
{
    key_alias(0, key, cap);
    adi_kms_config_t c;
    memset(&c, 0, sizeof(c));
    c.provider = "aws";
    c.key_id = key;
    c.region = env("ADI_FAKE_AWS_REGION");
    c.endpoint = env("ADI_FAKE_AWS_URL");
    c.sts_endpoint = env("ADI_FAKE_AWS_URL");
    c.imds_endpoint = env("ADI_FAKE_AWS_URL");
    c.imds_disabled = true;
    c.shared_credentials_file = "/nonexistent/adi-kms-test/credentials";
    c.timeout_ms = 20000;
    c.max_attempts = 3;
    c.retry_base_ms = 1;
    return c;
}

static adi_kms_config_t static_config(char *key, size_t cap)
{
    adi_kms_config_t c = base_config(key, cap);
    c.access_key_id = env("ADI_FAKE_AWS_ACCESS_KEY");
    c.secret_access_key = env("ADI_FAKE_AWS_SECRET_KEY");
    return c;
}

static adi_kms_t *make(const adi_kms_config_t *c)
{
    adi_kms_t *k = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_kms_new(c, &k, &err) != ADI_OK)
        fail_msg("adi_kms_new: %s", err.message);
    return k;
}

static adi_err generate(adi_kms_t *k, const char *ctx, adi_secret_t *dek,
                        unsigned char w[ADI_KMS_WRAPPED_MAX], size_t *wl, adi_error_t *err)
{
    adi_error_clear(err);
    return adi_kms_generate(k, adi_str_c(ctx), dek, w, wl, err);
}

static void expect_unwraps_to(adi_kms_t *k, const char *ctx, const unsigned char *w, size_t wl,
                              const adi_secret_t *want)
{
    adi_secret_t got;
    adi_error_t err;
    adi_error_clear(&err);
    adi_err rc = adi_kms_unwrap(k, adi_str_c(ctx), (adi_str_t){(const char *)w, wl}, &got, &err);
    if (rc != ADI_OK)
        fail_msg("unwrap: %s (%s)", adi_err_name(rc), err.message);
    assert_int_equal(got.len, 32);
    assert_memory_equal(got.ptr, want->ptr, 32);
    adi_secret_dispose(&got);
}

/* GenerateDataKey, Decrypt, Encrypt, Decrypt, ReEncrypt, Decrypt, all under `ctx`. */
static void round_trip(adi_kms_t *k, const char *ctx)
{
    adi_secret_t dek;
    unsigned char w[ADI_KMS_WRAPPED_MAX], w2[ADI_KMS_WRAPPED_MAX], w3[ADI_KMS_WRAPPED_MAX];
    size_t wl = 0, wl2 = 0, wl3 = 0;
    adi_error_t err;
    adi_err rc = generate(k, ctx, &dek, w, &wl, &err);
    if (rc != ADI_OK)
        fail_msg("generate: %s (%s)", adi_err_name(rc), err.message);
    assert_int_equal(dek.len, 32);
    assert_in_range(wl, 32, ADI_KMS_WRAPPED_MAX);
    expect_unwraps_to(k, ctx, w, wl, &dek);

    rc = adi_kms_wrap(k, adi_str_c(ctx), &dek, w2, &wl2, &err);
    if (rc != ADI_OK)
        fail_msg("wrap: %s (%s)", adi_err_name(rc), err.message);
    assert_false(wl2 == wl && memcmp(w2, w, wl) == 0);
    expect_unwraps_to(k, ctx, w2, wl2, &dek);

    rc = adi_kms_rewrap(k, adi_str_c(ctx), (adi_str_t){(char *)w, wl}, w3, &wl3, &err);
    if (rc != ADI_OK)
        fail_msg("rewrap: %s (%s)", adi_err_name(rc), err.message);
    expect_unwraps_to(k, ctx, w3, wl3, &dek);
    adi_secret_dispose(&dek);
}

static int reset(void **state)
{
    (void)state;
    control("{\"reset\": true}");
    return 0;
}

/* ---- static keys -------------------------------------------------------------------------- */

static void test_static_round_trip(void **state)
{
    (void)state;
    char key[256], key_b[256];
    adi_kms_config_t c = static_config(key, sizeof(key));
    adi_kms_t *k = make(&c);
    assert_string_equal(adi_kms_key_id(k), key);
    round_trip(k, "tenant-static");
    stats_t s = stats();
    assert_int_equal(stat_of(s, "kms", "GenerateDataKey"), 1);
    assert_int_equal(stat_of(s, "kms", "Decrypt"), 3);
    assert_int_equal(stat_of(s, "kms", "Encrypt"), 1);
    assert_int_equal(stat_of(s, "kms", "ReEncrypt"), 1);
    assert_int_equal(json_object_size(json_object_get(s.j, "rejected")), 0);
    stats_free(s);

    /* The KMS key changes: rewrap under the second key; both providers still unwrap it. */
    adi_secret_t dek;
    unsigned char w[ADI_KMS_WRAPPED_MAX], r[ADI_KMS_WRAPPED_MAX];
    size_t wl = 0, rl = 0;
    adi_error_t err;
    assert_int_equal(generate(k, "tenant-rotate", &dek, w, &wl, &err), ADI_OK);
    key_alias(1, key_b, sizeof(key_b));
    c.key_id = key_b;
    adi_kms_t *kb = make(&c);
    assert_int_equal(
        adi_kms_rewrap(kb, ADI_STR("tenant-rotate"), (adi_str_t){(char *)w, wl}, r, &rl, &err),
        ADI_OK);
    expect_unwraps_to(kb, "tenant-rotate", r, rl, &dek);
    expect_unwraps_to(k, "tenant-rotate", r, rl, &dek);
    adi_secret_dispose(&dek);
    adi_kms_free(kb);
    adi_kms_free(k);
}

static void test_wrong_secret(void **state)
{
    (void)state;
    char key[256];
    adi_kms_config_t c = static_config(key, sizeof(key));
    c.secret_access_key = "WrongSecretWrongSecretWrongSecretWrong00";
    adi_kms_t *k = make(&c);
    adi_secret_t dek;
    unsigned char w[ADI_KMS_WRAPPED_MAX];
    size_t wl = 0;
    adi_error_t err;
    assert_int_equal(generate(k, "tenant-x", &dek, w, &wl, &err), ADI_UNAVAILABLE);
    assert_string_equal(err.message, "The key service is unavailable.");
    assert_null(strstr(err.message, "Signature"));
    adi_kms_free(k);

    /* An access key id the server does not know. */
    c.access_key_id = "AKIDUNKNOWN";
    k = make(&c);
    assert_int_equal(generate(k, "tenant-x", &dek, w, &wl, &err), ADI_UNAVAILABLE);
    adi_kms_free(k);

    stats_t s = stats();
    /* Neither is retried: one rejection each. */
    assert_int_equal(stat_of(s, "rejected", "InvalidSignatureException"), 1);
    assert_int_equal(stat_of(s, "rejected", "UnrecognizedClientException"), 1);
    assert_int_equal(stat_of(s, "kms", "GenerateDataKey"), 0);
    stats_free(s);
}

static void test_wrong_context(void **state)
{
    (void)state;
    char key[256];
    adi_kms_config_t c = static_config(key, sizeof(key));
    adi_kms_t *k = make(&c);
    adi_secret_t dek, other;
    unsigned char w[ADI_KMS_WRAPPED_MAX], r[ADI_KMS_WRAPPED_MAX];
    size_t wl = 0, rl = 0;
    adi_error_t err;
    assert_int_equal(generate(k, "tenant-a", &dek, w, &wl, &err), ADI_OK);
    adi_error_clear(&err);
    assert_int_equal(
        adi_kms_unwrap(k, ADI_STR("tenant-b"), (adi_str_t){(char *)w, wl}, &other, &err),
        ADI_INVALID);
    assert_string_equal(err.message, "Decryption failed.");
    assert_null(other.ptr);
    assert_int_equal(
        adi_kms_rewrap(k, ADI_STR("tenant-b"), (adi_str_t){(char *)w, wl}, r, &rl, &err),
        ADI_INVALID);
    /* Damage: a blob the server cannot open. */
    w[wl / 2] ^= 0x40;
    assert_int_equal(
        adi_kms_unwrap(k, ADI_STR("tenant-a"), (adi_str_t){(char *)w, wl}, &other, &err),
        ADI_INVALID);
    stats_t s = stats();
    assert_int_equal(stat_of(s, "rejected", "InvalidCiphertextException"), 3);
    stats_free(s);
    adi_secret_dispose(&dek);
    adi_kms_free(k);
}

/* ---- retries ------------------------------------------------------------------------------ */

static void test_throttled_then_success(void **state)
{
    (void)state;
    char key[256];
    adi_kms_config_t c = static_config(key, sizeof(key));
    adi_kms_t *k = make(&c);
    control("{\"throttle_next\": 2}");
    adi_secret_t dek;
    unsigned char w[ADI_KMS_WRAPPED_MAX];
    size_t wl = 0;
    adi_error_t err;
    assert_int_equal(generate(k, "tenant-t", &dek, w, &wl, &err), ADI_OK);
    stats_t s = stats();
    assert_int_equal(stat_of(s, NULL, "throttled"), 2);
    assert_int_equal(stat_of(s, "kms", "GenerateDataKey"), 1);
    stats_free(s);
    adi_secret_dispose(&dek);
    adi_kms_free(k);
}

static void test_failures_beyond_attempts(void **state)
{
    (void)state;
    char key[256];
    adi_kms_config_t c = static_config(key, sizeof(key)); /* max_attempts 3 */
    adi_kms_t *k = make(&c);
    control("{\"fail_next\": 4}");
    adi_secret_t dek;
    unsigned char w[ADI_KMS_WRAPPED_MAX];
    size_t wl = 0;
    adi_error_t err;
    assert_int_equal(generate(k, "tenant-f", &dek, w, &wl, &err), ADI_UNAVAILABLE);
    assert_string_equal(err.message, "The key service is unavailable.");
    stats_t s = stats();
    assert_int_equal(stat_of(s, NULL, "failed"), 3);
    stats_free(s);
    /* One injected failure left: the next call absorbs it. */
    assert_int_equal(generate(k, "tenant-f", &dek, w, &wl, &err), ADI_OK);
    s = stats();
    assert_int_equal(stat_of(s, NULL, "failed"), 4);
    stats_free(s);
    adi_secret_dispose(&dek);
    adi_kms_free(k);
}

static void test_deny_context(void **state)
{
    (void)state;
    char key[256];
    adi_kms_config_t c = static_config(key, sizeof(key));
    adi_kms_t *k = make(&c);
    adi_secret_t ok_dek, dek;
    unsigned char ok_w[ADI_KMS_WRAPPED_MAX], w[ADI_KMS_WRAPPED_MAX];
    size_t ok_wl = 0, wl = 0;
    adi_error_t err;
    assert_int_equal(generate(k, "tenant-ok", &ok_dek, ok_w, &ok_wl, &err), ADI_OK);
    control("{\"deny_context\": \"tenant-denied\"}");
    assert_int_equal(generate(k, "tenant-denied", &dek, w, &wl, &err), ADI_UNAVAILABLE);
    round_trip(k, "tenant-ok");
    expect_unwraps_to(k, "tenant-ok", ok_w, ok_wl, &ok_dek);
    control("{\"deny_context\": null}");
    round_trip(k, "tenant-denied");
    adi_secret_dispose(&ok_dek);
    adi_kms_free(k);
}

/* ---- web identity (STS) ------------------------------------------------------------------- */

static adi_kms_config_t web_config(char *key, size_t cap)
{
    adi_kms_config_t c = base_config(key, cap);
    c.role_arn = env("ADI_FAKE_AWS_ROLE_ARN");
    c.web_identity_token_file = env("ADI_FAKE_AWS_WEB_TOKEN_FILE");
    c.role_session_name = "adi-kms-test";
    return c;
}

static void test_web_identity(void **state)
{
    (void)state;
    char key[256];
    adi_kms_config_t c = web_config(key, sizeof(key));
    adi_kms_t *k = make(&c);
    round_trip(k, "tenant-web");
    stats_t s = stats();
    assert_int_equal(stat_of(s, NULL, "sts"), 1); /* cached across the six calls */
    stats_free(s);

    /* The session expires at the server: ExpiredTokenException, one refresh, success. */
    control("{\"expire_sessions\": true}");
    round_trip(k, "tenant-web");
    s = stats();
    assert_int_equal(stat_of(s, NULL, "sts"), 2);
    assert_int_equal(stat_of(s, "rejected", "ExpiredTokenException"), 1);
    stats_free(s);
    adi_kms_free(k);
}

static void test_refresh_ahead_of_expiry(void **state)
{
    (void)state;
    /* A lifetime inside the 5-minute window: every use after the first refreshes. */
    control("{\"sts_ttl_s\": 240}");
    char key[256];
    adi_kms_config_t c = web_config(key, sizeof(key));
    adi_kms_t *k = make(&c);
    adi_secret_t dek;
    unsigned char w[ADI_KMS_WRAPPED_MAX];
    size_t wl = 0;
    adi_error_t err;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(generate(k, "tenant-ttl", &dek, w, &wl, &err), ADI_OK);
        adi_secret_dispose(&dek);
    }
    stats_t s = stats();
    assert_int_equal(stat_of(s, NULL, "sts"), 3);
    assert_int_equal(json_object_size(json_object_get(s.j, "rejected")), 0);
    stats_free(s);
    adi_kms_free(k);
}

static void test_failing_refresh_keeps_serving(void **state)
{
    (void)state;
    char dir[512], token_path[600];
    snprintf(dir, sizeof(dir), "%s/kms-aws-XXXXXX", env("ADI_TEST_DIR"));
    assert_non_null(mkdtemp(dir));
    snprintf(token_path, sizeof(token_path), "%s/token", dir);
    /* A copy of the web identity token that the test can spoil. */
    FILE *in = fopen(env("ADI_FAKE_AWS_WEB_TOKEN_FILE"), "rb");
    assert_non_null(in);
    char token[8192];
    size_t n = fread(token, 1, sizeof(token) - 1, in);
    fclose(in);
    FILE *out = fopen(token_path, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(token, 1, n, out), n);
    fclose(out);

    control("{\"sts_ttl_s\": 240}");
    char key[256];
    adi_kms_config_t c = web_config(key, sizeof(key));
    c.web_identity_token_file = token_path;
    adi_kms_t *k = make(&c);
    adi_secret_t dek;
    unsigned char w[ADI_KMS_WRAPPED_MAX];
    size_t wl = 0;
    adi_error_t err;
    assert_int_equal(generate(k, "tenant-keep", &dek, w, &wl, &err), ADI_OK);
    adi_secret_dispose(&dek);

    out = fopen(token_path, "wb");
    assert_non_null(out);
    fputs("not-the-token\n", out);
    fclose(out);
    /* The refresh is refused (AccessDenied) but the current credentials are still valid. */
    assert_int_equal(generate(k, "tenant-keep", &dek, w, &wl, &err), ADI_OK);
    adi_secret_dispose(&dek);
    stats_t s = stats();
    assert_int_equal(stat_of(s, NULL, "sts"), 1);
    assert_int_equal(stat_of(s, "rejected", "AccessDenied"), 1);
    stats_free(s);

    /* Once they are expired, there is nothing left to serve with. */
    control("{\"expire_sessions\": true}");
    assert_int_equal(generate(k, "tenant-keep", &dek, w, &wl, &err), ADI_UNAVAILABLE);
    assert_string_equal(err.message, "The key service is unavailable.");

    /* The token is good again: service resumes. */
    out = fopen(token_path, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(token, 1, n, out), n);
    fclose(out);
    assert_int_equal(generate(k, "tenant-keep", &dek, w, &wl, &err), ADI_OK);
    adi_secret_dispose(&dek);
    adi_kms_free(k);
    unlink(token_path);
    rmdir(dir);
}

/* ---- IMDSv2 ------------------------------------------------------------------------------- */

static void test_imds(void **state)
{
    (void)state;
    char key[256];
    adi_kms_config_t c = base_config(key, sizeof(key));
    c.imds_disabled = false;
    adi_kms_t *k = make(&c);
    round_trip(k, "tenant-imds");
    stats_t s = stats();
    assert_int_equal(stat_of(s, NULL, "imds_token"), 1);
    assert_int_equal(stat_of(s, NULL, "imds_credentials"), 1);
    assert_int_equal(stat_of(s, NULL, "sts"), 0);
    stats_free(s);
    control("{\"expire_sessions\": true}");
    round_trip(k, "tenant-imds");
    s = stats();
    assert_int_equal(stat_of(s, NULL, "imds_credentials"), 2);
    assert_int_equal(stat_of(s, "rejected", "ExpiredTokenException"), 1);
    stats_free(s);
    adi_kms_free(k);
}

/* ---- shared credentials file -------------------------------------------------------------- */

static void test_shared_credentials_profile(void **state)
{
    (void)state;
    char dir[512], path[600];
    snprintf(dir, sizeof(dir), "%s/kms-aws-XXXXXX", env("ADI_TEST_DIR"));
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/credentials", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "[default]\naws_access_key_id = AKIDNOTKNOWN\n"
            "aws_secret_access_key = NotTheSecretNotTheSecretNotTheSecret0000\n\n"
            "[adi]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
            env("ADI_FAKE_AWS_ACCESS_KEY"), env("ADI_FAKE_AWS_SECRET_KEY"));
    fclose(f);

    char key[256];
    adi_kms_config_t c = base_config(key, sizeof(key));
    c.shared_credentials_file = path;
    c.profile = "adi";
    adi_kms_t *k = make(&c);
    round_trip(k, "tenant-file");
    adi_kms_free(k);

    c.profile = NULL; /* "default": keys the server does not know */
    k = make(&c);
    adi_secret_t dek;
    unsigned char w[ADI_KMS_WRAPPED_MAX];
    size_t wl = 0;
    adi_error_t err;
    assert_int_equal(generate(k, "tenant-file", &dek, w, &wl, &err), ADI_UNAVAILABLE);
    adi_kms_free(k);
    stats_t s = stats();
    assert_int_equal(stat_of(s, "rejected", "UnrecognizedClientException"), 1);
    stats_free(s);
    unlink(path);
    rmdir(dir);
}

/* ---- threads ------------------------------------------------------------------------------ */

#define THREADS 4
#define ROUNDS  6

/* One worker's provider and outcome. */
typedef struct worker {
    adi_kms_t *kms; /* shared provider */
    int index;      /* worker number */
    int failures;   /* calls that did not succeed */
} worker_t;

static void *work(void *arg)
{
    worker_t *wk = arg;
    char ctx[32];
    snprintf(ctx, sizeof(ctx), "tenant-thread-%d", wk->index);
    for (int i = 0; i < ROUNDS; i++) {
        adi_secret_t dek, back;
        unsigned char w[ADI_KMS_WRAPPED_MAX];
        size_t wl = 0;
        adi_error_t err;
        adi_error_clear(&err);
        if (adi_kms_generate(wk->kms, adi_str_c(ctx), &dek, w, &wl, &err) != ADI_OK) {
            wk->failures++;
            continue;
        }
        if (adi_kms_unwrap(wk->kms, adi_str_c(ctx), (adi_str_t){(char *)w, wl}, &back, &err) !=
                ADI_OK ||
            memcmp(back.ptr, dek.ptr, 32) != 0)
            wk->failures++;
        adi_secret_dispose(&back);
        adi_secret_dispose(&dek);
    }
    return NULL;
}

static void test_threads_share_a_provider(void **state)
{
    (void)state;
    /* Short-lived sessions so that refreshes race with signing, plus some throttling. */
    control("{\"sts_ttl_s\": 240, \"throttle_next\": 2}");
    char key[256];
    adi_kms_config_t c = web_config(key, sizeof(key));
    c.max_attempts = 6;
    adi_kms_t *k = make(&c);
    pthread_t t[THREADS];
    worker_t wk[THREADS];
    for (int i = 0; i < THREADS; i++) {
        wk[i] = (worker_t){.kms = k, .index = i};
        assert_int_equal(pthread_create(&t[i], NULL, work, &wk[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(wk[i].failures, 0);
    }
    stats_t s = stats();
    assert_int_equal(stat_of(s, "kms", "GenerateDataKey"), THREADS * ROUNDS);
    assert_int_equal(stat_of(s, "kms", "Decrypt"), THREADS * ROUNDS);
    assert_true(stat_of(s, NULL, "sts") >= 1);
    stats_free(s);
    adi_kms_free(k);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_static_round_trip, reset),
        cmocka_unit_test_setup(test_wrong_secret, reset),
        cmocka_unit_test_setup(test_wrong_context, reset),
        cmocka_unit_test_setup(test_throttled_then_success, reset),
        cmocka_unit_test_setup(test_failures_beyond_attempts, reset),
        cmocka_unit_test_setup(test_deny_context, reset),
        cmocka_unit_test_setup(test_web_identity, reset),
        cmocka_unit_test_setup(test_refresh_ahead_of_expiry, reset),
        cmocka_unit_test_setup(test_failing_refresh_keeps_serving, reset),
        cmocka_unit_test_setup(test_imds, reset),
        cmocka_unit_test_setup(test_shared_credentials_profile, reset),
        cmocka_unit_test_setup(test_threads_share_a_provider, reset),
    };
    int failed = cmocka_run_group_tests(tests, NULL, reset);
    curl_global_cleanup();
    return failed;
}
