/* SPDX-License-Identifier: MIT */
/*
 * The SigV4 signer beyond the aws-c-auth suite: a KMS-shaped request (JSON body, X-Amz-Target,
 * session token, an unsigned User-Agent) whose expected signature was computed independently with
 * botocore's SigV4Auth, the path and query rules the suite does not reach, the headers the signer
 * asks the caller to add, the date formatter, and every rejected input (with messages that never
 * carry the secret key or the session token).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "adi/sigv4.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define TOKEN  "FwoGZXIvYXdzEXAMPLETOKEN+/="

static const char kms_body[] =
    "{\"KeyId\":\"alias/adi-vault\",\"Plaintext\":\"AAECAwQFBgcICQoLDA0ODw==\","
    "\"EncryptionContext\":{\"tenant_id\":\"3f1c2a9e-0000-4000-8000-000000000001\"}}";

static const adi_sigv4_header_t kms_headers[] = {
    {ADI_STR("Host"), ADI_STR("kms.eu-west-1.amazonaws.com")},
    {ADI_STR("Content-Type"), ADI_STR("application/x-amz-json-1.1")},
    {ADI_STR("X-Amz-Target"), ADI_STR("TrentService.Encrypt")},
    {ADI_STR("User-Agent"), ADI_STR("adi/0.1")},
};

static const adi_sigv4_credentials_t kms_creds = {
    .access_key_id = ADI_STR("AKIAIOSFODNN7EXAMPLE"),
    .secret_access_key = ADI_STR(SECRET),
    .session_token = ADI_STR(TOKEN),
};

static adi_sigv4_params_t kms_params(void)
{
    adi_sigv4_params_t p = {
        .method = ADI_STR("POST"),
        .path = ADI_STR("/"),
        .headers = kms_headers,
        .nheaders = sizeof(kms_headers) / sizeof(kms_headers[0]),
        .body = {kms_body, sizeof(kms_body) - 1},
        .normalize_path = true,
        .credentials = &kms_creds,
        .region = ADI_STR("eu-west-1"),
        .service = ADI_STR("kms"),
        .amz_date = ADI_STR("20240309T070501Z"),
    };
    return p;
}

/* Expected values from botocore 1.43 SigV4Auth (add_auth with the clock fixed). */
static void test_kms_request_matches_botocore(void **state)
{
    (void)state;
    adi_sigv4_params_t p = kms_params();
    adi_sigv4_result_t r;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_sigv4_sign(&p, &r, &err), ADI_OK);
    assert_string_equal(r.canonical_request.data,
                        "POST\n/\n\n"
                        "content-type:application/x-amz-json-1.1\n"
                        "host:kms.eu-west-1.amazonaws.com\n"
                        "x-amz-date:20240309T070501Z\n"
                        "x-amz-security-token:" TOKEN "\n"
                        "x-amz-target:TrentService.Encrypt\n\n"
                        "content-type;host;x-amz-date;x-amz-security-token;x-amz-target\n"
                        "0f7848671a2a68886e42c1b239b110a9c6b972e414b802e2a16cf8f4e18988ef");
    assert_string_equal(r.string_to_sign.data,
                        "AWS4-HMAC-SHA256\n20240309T070501Z\n20240309/eu-west-1/kms/aws4_request\n"
                        "a8cdbe9313453226732810d6ce45589c981ad2ea6b0482552d2bb8c508c6c8a9");
    assert_string_equal(r.signature,
                        "2e6402abbcaec143097de44c4987a6f104e70f1fbbd223ba30f39845bd83c25b");
    assert_string_equal(
        r.authorization.data,
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240309/eu-west-1/kms/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, "
        "Signature=2e6402abbcaec143097de44c4987a6f104e70f1fbbd223ba30f39845bd83c25b");
    assert_string_equal(r.payload_hash,
                        "0f7848671a2a68886e42c1b239b110a9c6b972e414b802e2a16cf8f4e18988ef");

    adi_sigv4_header_t added[ADI_SIGV4_MAX_ADDED];
    assert_int_equal(adi_sigv4_result_headers(&r, added), 3);
    assert_true(adi_str_eq_c(added[0].name, "X-Amz-Security-Token"));
    assert_true(adi_str_eq_c(added[0].value, TOKEN));
    assert_true(adi_str_eq_c(added[1].name, "X-Amz-Date"));
    assert_true(adi_str_eq_c(added[1].value, "20240309T070501Z"));
    assert_true(adi_str_eq_c(added[2].name, "Authorization"));
    assert_true(adi_str_eq(added[2].value, (adi_str_t){r.authorization.data, r.authorization.len}));
    adi_sigv4_result_dispose(&r);
    /* A second dispose of the emptied result is harmless. */
    adi_sigv4_result_dispose(&r);
}

/* The signer copies what it returns: the caller's buffers may go away after signing. */
static void test_result_outlives_inputs(void **state)
{
    (void)state;
    char token[] = TOKEN;
    adi_sigv4_credentials_t creds = kms_creds;
    creds.session_token = (adi_str_t){token, sizeof(token) - 1};
    adi_sigv4_params_t p = kms_params();
    p.credentials = &creds;
    p.sign_body = true;
    adi_sigv4_result_t r;
    assert_int_equal(adi_sigv4_sign(&p, &r, NULL), ADI_OK);
    memset(token, 'x', sizeof(token) - 1);
    adi_sigv4_header_t added[ADI_SIGV4_MAX_ADDED];
    assert_int_equal(adi_sigv4_result_headers(&r, added), 4);
    assert_true(adi_str_eq_c(added[0].value, TOKEN));
    assert_true(adi_str_eq_c(added[2].name, "x-amz-content-sha256"));
    assert_true(adi_str_eq_c(added[2].value, r.payload_hash));
    assert_non_null(strstr(r.canonical_request.data, "\nx-amz-content-sha256:0f7848"));
    assert_non_null(strstr(r.authorization.data, ";x-amz-content-sha256;"));
    adi_sigv4_result_dispose(&r);
}

/* Signs a GET of host "h" with the given path, query and flags; returns the canonical request. */
static void canonical(adi_str_t path, adi_str_t query, bool normalize, char *out, size_t cap)
{
    adi_sigv4_header_t h[] = {{ADI_STR("Host"), ADI_STR("h")}};
    adi_sigv4_params_t p = kms_params();
    p.method = ADI_STR("GET");
    p.path = path;
    p.query = query;
    p.headers = h;
    p.nheaders = 1;
    p.body = ADI_STR_NULL;
    p.normalize_path = normalize;
    adi_sigv4_result_t r;
    adi_error_t err;
    adi_error_clear(&err);
    adi_err rc = adi_sigv4_sign(&p, &r, &err);
    if (rc != ADI_OK)
        fail_msg("sign failed: %s", err.message);
    snprintf(out, cap, "%s", r.canonical_request.data);
    adi_sigv4_result_dispose(&r);
}

/* The first two lines of a canonical request: "<path>\n<query>". */
static void path_and_query(adi_str_t path, adi_str_t query, bool normalize, char *out, size_t cap)
{
    char creq[4096];
    canonical(path, query, normalize, creq, sizeof(creq));
    const char *a = strchr(creq, '\n');
    assert_non_null(a);
    const char *b = strchr(a + 1, '\n');
    assert_non_null(b);
    const char *c = strchr(b + 1, '\n');
    assert_non_null(c);
    snprintf(out, cap, "%.*s", (int)(c - a - 1), a + 1);
}

static void test_paths(void **state)
{
    (void)state;
    char got[512];
    path_and_query(ADI_STR("/a/b/../c/./d"), ADI_STR(""), true, got, sizeof(got));
    assert_string_equal(got, "/a/c/d\n");
    path_and_query(ADI_STR("/../../x/"), ADI_STR(""), true, got, sizeof(got));
    assert_string_equal(got, "/x/\n");
    path_and_query(ADI_STR("/a/b/.."), ADI_STR(""), true, got, sizeof(got));
    assert_string_equal(got, "/a\n");
    path_and_query(ADI_STR(""), ADI_STR(""), true, got, sizeof(got));
    assert_string_equal(got, "/\n");
    path_and_query(ADI_STR(""), ADI_STR(""), false, got, sizeof(got));
    assert_string_equal(got, "/\n");
    /* An already-encoded path is encoded again, as AWS does for every service but S3. */
    path_and_query(ADI_STR("/foo%20bar/a+b=c"), ADI_STR(""), true, got, sizeof(got));
    assert_string_equal(got, "/foo%2520bar/a%2Bb%3Dc\n");
    path_and_query(ADI_STR("/x//./y"), ADI_STR(""), false, got, sizeof(got));
    assert_string_equal(got, "/x//./y\n");
}

static void test_queries(void **state)
{
    (void)state;
    char got[512];
    path_and_query(ADI_STR("/"), ADI_STR("b=2&a=1&a=0&c"), true, got, sizeof(got));
    assert_string_equal(got, "/\na=0&a=1&b=2&c=");
    /* Decoded then re-encoded: '+' stays a literal plus, '%41' becomes 'A', '/' is escaped. */
    path_and_query(ADI_STR("/"), ADI_STR("q=a+b&k=%41%2f&&e="), true, got, sizeof(got));
    assert_string_equal(got, "/\ne=&k=A%2F&q=a%2Bb");
    path_and_query(ADI_STR("/"), ADI_STR("x=a=b&y=%7e%20"), true, got, sizeof(got));
    assert_string_equal(got, "/\nx=a%3Db&y=~%20");
    path_and_query(ADI_STR("/"), ADI_STR_NULL, true, got, sizeof(got));
    assert_string_equal(got, "/\n");
    /* Found by fuzz_sigv4: only empty keys and values (nothing decoded at all) signed with
     * pointer arithmetic on a NULL buffer. */
    path_and_query(ADI_STR("/"), ADI_STR("="), true, got, sizeof(got));
    assert_string_equal(got, "/\n=");
    path_and_query(ADI_STR("/"), ADI_STR("&=&="), true, got, sizeof(got));
    assert_string_equal(got, "/\n=&=");
}

static void test_headers_canonical(void **state)
{
    (void)state;
    adi_sigv4_header_t h[] = {
        {ADI_STR("X-B"), ADI_STR("  two\r\n   lines  ")},
        {ADI_STR("host"), ADI_STR("h")},
        {ADI_STR("x-a"), ADI_STR("")},
        {ADI_STR("X-B"), ADI_STR("\tsecond")},
        {ADI_STR("Connection"), ADI_STR("keep-alive")},
        {ADI_STR("Expect"), ADI_STR("100-continue")},
        {ADI_STR("X-Amzn-Trace-Id"), ADI_STR("Root=1")},
        {ADI_STR("Authorization"), ADI_STR("old")},
    };
    adi_sigv4_params_t p = kms_params();
    p.headers = h;
    p.nheaders = sizeof(h) / sizeof(h[0]);
    adi_sigv4_result_t r;
    assert_int_equal(adi_sigv4_sign(&p, &r, NULL), ADI_OK);
    assert_non_null(strstr(r.canonical_request.data,
                           "\nhost:h\nx-a:\nx-amz-date:20240309T070501Z\n"
                           "x-amz-security-token:" TOKEN "\nx-b:two lines,second\n\n"
                           "host;x-a;x-amz-date;x-amz-security-token;x-b\n"));
    adi_sigv4_result_dispose(&r);
}

/* The payload hash override ends the canonical request; omit_session_token leaves it unsigned. */
static void test_unsigned_payload_and_omitted_token(void **state)
{
    (void)state;
    adi_sigv4_params_t p = kms_params();
    p.payload_hash = ADI_STR("UNSIGNED-PAYLOAD");
    p.omit_session_token = true;
    p.sign_body = true;
    adi_sigv4_result_t r;
    assert_int_equal(adi_sigv4_sign(&p, &r, NULL), ADI_OK);
    const char *tail = "\ncontent-type;host;x-amz-content-sha256;x-amz-date;x-amz-target\n"
                       "UNSIGNED-PAYLOAD";
    size_t tl = strlen(tail);
    assert_true(r.canonical_request.len > tl);
    assert_string_equal(r.canonical_request.data + r.canonical_request.len - tl, tail);
    assert_null(strstr(r.canonical_request.data, TOKEN));
    adi_sigv4_header_t added[ADI_SIGV4_MAX_ADDED];
    assert_int_equal(adi_sigv4_result_headers(&r, added), 4);
    assert_true(adi_str_eq_c(added[0].name, "X-Amz-Security-Token"));
    assert_true(adi_str_eq_c(added[2].value, "UNSIGNED-PAYLOAD"));
    adi_sigv4_result_dispose(&r);
}

static void test_amz_date(void **state)
{
    (void)state;
    char out[17];
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_sigv4_amz_date(1440938160, out, &err), ADI_OK);
    assert_string_equal(out, "20150830T123600Z");
    assert_int_equal(adi_sigv4_amz_date(0, out, &err), ADI_OK);
    assert_string_equal(out, "19700101T000000Z");
    assert_int_equal(adi_sigv4_amz_date(253402300799LL, out, &err), ADI_OK);
    assert_string_equal(out, "99991231T235959Z");
    assert_int_equal(adi_sigv4_amz_date(-1, out, &err), ADI_INVALID);
    assert_string_equal(out, "");
    assert_int_equal(adi_sigv4_amz_date(253402300800LL, out, &err), ADI_INVALID);
    assert_int_equal(adi_sigv4_amz_date(INT64_MAX, out, &err), ADI_INVALID);
}

/* One rejected input: the code, a message, and neither secret in it. */
static void expect_reject(const adi_sigv4_params_t *p, adi_err code, const char *what)
{
    adi_sigv4_result_t r;
    adi_error_t err;
    adi_error_clear(&err);
    adi_err rc = adi_sigv4_sign(p, &r, &err);
    if (rc != code)
        fail_msg("%s: got %s (%s), want %s", what, adi_err_name(rc), err.message,
                 adi_err_name(code));
    assert_int_equal(err.code, code);
    assert_true(strlen(err.message) > 0);
    assert_null(strstr(err.message, SECRET));
    assert_null(strstr(err.message, TOKEN));
    /* The result was left empty: disposing it is harmless. */
    assert_int_equal(r.canonical_request.len, 0);
    adi_sigv4_result_dispose(&r);
}

static void test_rejects_bad_params(void **state)
{
    (void)state;
    adi_sigv4_params_t p;
    adi_sigv4_credentials_t c;

    p = kms_params();
    p.nheaders = 3;
    p.headers = kms_headers + 1; /* no Host */
    expect_reject(&p, ADI_INVALID, "no host");

    static const char *bad_dates[] = {"",
                                      "2024-03-09T07:05:01Z",
                                      "20240309T070501",
                                      "20241309T070501Z",
                                      "20240309X070501Z",
                                      "2024030aT070501Z",
                                      "20240309T250501Z"};
    for (size_t i = 0; i < sizeof(bad_dates) / sizeof(bad_dates[0]); i++) {
        p = kms_params();
        p.amz_date = adi_str_c(bad_dates[i]);
        expect_reject(&p, ADI_INVALID, bad_dates[i]);
    }
    p = kms_params();
    p.amz_date = ADI_STR_NULL;
    expect_reject(&p, ADI_INVALID, "no date");

    p = kms_params();
    p.path = ADI_STR("relative/path");
    expect_reject(&p, ADI_INVALID, "relative path");

    p = kms_params();
    p.method = ADI_STR("PO ST");
    expect_reject(&p, ADI_INVALID, "method with space");
    p.method = ADI_STR_NULL;
    expect_reject(&p, ADI_INVALID, "no method");

    static const char *bad_queries[] = {"a=%", "a=%4", "a=%zz", "%g1=b"};
    for (size_t i = 0; i < sizeof(bad_queries) / sizeof(bad_queries[0]); i++) {
        p = kms_params();
        p.query = adi_str_c(bad_queries[i]);
        expect_reject(&p, ADI_INVALID, bad_queries[i]);
    }

    static const adi_sigv4_header_t inject[] = {{ADI_STR("Host"), ADI_STR("h\r\nEvil: 1")}};
    static const adi_sigv4_header_t nul[] = {{ADI_STR("Host"), {"h\0x", 3}}};
    static const adi_sigv4_header_t lone_cr[] = {{ADI_STR("Host"), ADI_STR("h\rx")}};
    static const adi_sigv4_header_t bad_name[] = {{ADI_STR("Ho st"), ADI_STR("h")}};
    static const adi_sigv4_header_t no_name[] = {{ADI_STR(""), ADI_STR("h")}};
    static const adi_sigv4_header_t has_date[] = {{ADI_STR("Host"), ADI_STR("h")},
                                                  {ADI_STR("X-AMZ-Date"), ADI_STR("x")}};
    static const adi_sigv4_header_t has_token[] = {{ADI_STR("Host"), ADI_STR("h")},
                                                   {ADI_STR("x-amz-security-token"), ADI_STR("x")}};
    const struct {
        const adi_sigv4_header_t *h;
        size_t n;
        const char *what;
    } bad_headers[] = {
        {inject, 1, "header injection"}, {nul, 1, "NUL in value"},   {lone_cr, 1, "lone CR"},
        {bad_name, 1, "space in name"},  {no_name, 1, "empty name"}, {has_date, 2, "x-amz-date"},
        {has_token, 2, "token header"},
    };
    for (size_t i = 0; i < sizeof(bad_headers) / sizeof(bad_headers[0]); i++) {
        p = kms_params();
        p.headers = bad_headers[i].h;
        p.nheaders = bad_headers[i].n;
        expect_reject(&p, ADI_INVALID, bad_headers[i].what);
    }

    adi_sigv4_header_t many[ADI_SIGV4_MAX_HEADERS + 1];
    for (size_t i = 0; i < ADI_SIGV4_MAX_HEADERS + 1; i++)
        many[i] = (adi_sigv4_header_t){ADI_STR("Host"), ADI_STR("h")};
    p = kms_params();
    p.headers = many;
    p.nheaders = ADI_SIGV4_MAX_HEADERS + 1;
    expect_reject(&p, ADI_TOO_LARGE, "too many headers");
    p.nheaders = ADI_SIGV4_MAX_HEADERS;
    adi_sigv4_result_t ok;
    assert_int_equal(adi_sigv4_sign(&p, &ok, NULL), ADI_OK);
    adi_sigv4_result_dispose(&ok);

    static char big[ADI_SIGV4_MAX_VALUE + 2];
    memset(big, 'a', sizeof(big) - 1);
    adi_sigv4_header_t big_value[] = {{ADI_STR("Host"), {big, ADI_SIGV4_MAX_VALUE + 1}}};
    p = kms_params();
    p.headers = big_value;
    p.nheaders = 1;
    expect_reject(&p, ADI_TOO_LARGE, "huge header value");
    big[0] = '/';
    p = kms_params();
    p.path = (adi_str_t){big, ADI_SIGV4_MAX_PATH + 1};
    expect_reject(&p, ADI_TOO_LARGE, "huge path");
    p = kms_params();
    p.query = (adi_str_t){big, ADI_SIGV4_MAX_QUERY + 1};
    expect_reject(&p, ADI_TOO_LARGE, "huge query");

    p = kms_params();
    p.payload_hash = ADI_STR("");
    expect_reject(&p, ADI_INVALID, "empty payload hash");
    p.payload_hash = ADI_STR("has space");
    expect_reject(&p, ADI_INVALID, "payload hash with space");

    p = kms_params();
    p.credentials = NULL;
    expect_reject(&p, ADI_INVALID, "no credentials");

    c = kms_creds;
    c.secret_access_key = ADI_STR("");
    p = kms_params();
    p.credentials = &c;
    expect_reject(&p, ADI_INVALID, "empty secret");
    c = kms_creds;
    c.secret_access_key = (adi_str_t){big, ADI_SIGV4_MAX_SECRET + 1};
    expect_reject(&p, ADI_TOO_LARGE, "huge secret");
    c = kms_creds;
    c.access_key_id = ADI_STR("AKID/x");
    expect_reject(&p, ADI_INVALID, "slash in access key");
    c = kms_creds;
    c.session_token = ADI_STR(TOKEN "\n");
    expect_reject(&p, ADI_INVALID, "newline in token");

    p = kms_params();
    p.region = ADI_STR("eu west");
    expect_reject(&p, ADI_INVALID, "space in region");
    p.region = ADI_STR_NULL;
    expect_reject(&p, ADI_INVALID, "no region");
    p = kms_params();
    p.service = ADI_STR("k/ms");
    expect_reject(&p, ADI_INVALID, "slash in service");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kms_request_matches_botocore),
        cmocka_unit_test(test_result_outlives_inputs),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_queries),
        cmocka_unit_test(test_headers_canonical),
        cmocka_unit_test(test_unsigned_payload_and_omitted_token),
        cmocka_unit_test(test_amz_date),
        cmocka_unit_test(test_rejects_bad_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
