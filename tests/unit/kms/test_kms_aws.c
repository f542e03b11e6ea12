/* SPDX-License-Identifier: MIT */
/*
 * The aws KMS provider without a server: configuration errors of adi_kms_new, the parsers of
 * what credential sources answer (shared credentials file with profiles, STS
 * AssumeRoleWithWebIdentity XML, IMDS JSON, AWS expiration times) through the library's internal
 * header (pure parsers), and the failures that need no server (nothing listening, no credentials,
 * bad input) mapped to the documented codes and messages.
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

#include "adi/kms.h"
#include "kms_int.h"

static adi_kms_config_t aws_config(void)
{
    adi_kms_config_t c;
    memset(&c, 0, sizeof(c));
    c.provider = "aws";
    c.key_id = "alias/adi-a";
    c.region = "us-east-1";
    c.imds_disabled = true;
    c.shared_credentials_file = "/nonexistent/adi/credentials";
    return c;
}

static void expect_invalid(const adi_kms_config_t *c, const char *needle)
{
    adi_kms_t *k = (adi_kms_t *)0x1;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_kms_new(c, &k, &err), ADI_INVALID);
    assert_null(k);
    if (strstr(err.message, needle) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.message, needle);
}

/* ---- configuration ------------------------------------------------------------------------ */

static void test_config_errors(void **state)
{
    (void)state;
    adi_kms_config_t c = aws_config();
    c.key_id = NULL;
    expect_invalid(&c, "KMS_KEY_ID");
    c.key_id = "alias/with space";
    expect_invalid(&c, "KMS_KEY_ID");
    c = aws_config();
    c.region = "";
    expect_invalid(&c, "AWS_REGION");
    c.region = "US East";
    expect_invalid(&c, "AWS_REGION");

    c = aws_config();
    c.access_key_id = "AKIDEXAMPLE";
    expect_invalid(&c, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
    c.access_key_id = NULL;
    c.secret_access_key = "TOPSECRETVALUE";
    adi_error_t err;
    adi_error_clear(&err);
    adi_kms_t *k = NULL;
    assert_int_equal(adi_kms_new(&c, &k, &err), ADI_INVALID);
    assert_null(strstr(err.message, "TOPSECRETVALUE"));
    c.secret_access_key = NULL;
    c.session_token = "TOKEN";
    expect_invalid(&c, "AWS_SESSION_TOKEN");
    c.session_token = NULL;
    c.access_key_id = "AKID/BAD";
    c.secret_access_key = "TOPSECRETVALUE";
    expect_invalid(&c, "malformed");

    static const char *bad_urls[] = {
        "kms.example.com",           "ftp://kms.example.com",      "http://",
        "https://kms.example.com/x", "https://kms.example.com/?a", "https://u:p@kms.example.com",
        "http://host with space/",   "https://kms.example.com/#f",
    };
    for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
        c = aws_config();
        c.endpoint = bad_urls[i];
        expect_invalid(&c, "KMS_ENDPOINT");
        c = aws_config();
        c.sts_endpoint = bad_urls[i];
        expect_invalid(&c, "AWS_STS_ENDPOINT");
        c = aws_config();
        c.imds_endpoint = bad_urls[i];
        expect_invalid(&c, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
    }

    c = aws_config();
    c.role_arn = "arn:aws:iam::123456789012:role/x";
    expect_invalid(&c, "AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE");
    c.role_arn = NULL;
    c.web_identity_token_file = "/tmp/token";
    expect_invalid(&c, "AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE");
    c = aws_config();
    c.role_session_name = "bad name!";
    expect_invalid(&c, "AWS_ROLE_SESSION_NAME");
    c = aws_config();
    c.max_attempts = 1000;
    expect_invalid(&c, "KMS_MAX_ATTEMPTS");
    c = aws_config();
    c.timeout_ms = -1;
    expect_invalid(&c, "KMS_TIMEOUT_MS");
}

static void test_config_ok(void **state)
{
    (void)state;
    adi_kms_config_t c = aws_config();
    c.endpoint = "http://127.0.0.1:4566/";
    c.sts_endpoint = "https://sts.example.com";
    c.imds_endpoint = "http://[::1]:8080";
    c.access_key_id = "AKIDEXAMPLE";
    c.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    c.session_token = "IQoJb3JpZ2luX2Vj";
    c.role_arn = "arn:aws:iam::123456789012:role/x";
    c.web_identity_token_file = "/tmp/does-not-matter";
    c.role_session_name = "adi-vault-1";
    c.profile = "adi";
    adi_kms_t *k = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_kms_new(&c, &k, &err), ADI_OK);
    assert_string_equal(adi_kms_key_id(k), "alias/adi-a");
    adi_kms_free(k);

    /* Defaults: the AWS endpoints of the region, "default" profile, HOME's credentials file. */
    c = aws_config();
    c.shared_credentials_file = NULL;
    assert_int_equal(adi_kms_new(&c, &k, &err), ADI_OK);
    adi_kms_free(k);
}

/* ---- failures that need no server --------------------------------------------------------- */

static void test_nothing_listening(void **state)
{
    (void)state;
    adi_kms_config_t c = aws_config();
    c.endpoint = "http://127.0.0.1:1"; /* nothing listens on port 1 */
    c.access_key_id = "AKIDEXAMPLE";
    c.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    c.max_attempts = 2;
    c.retry_base_ms = 1;
    c.timeout_ms = 2000;
    adi_kms_t *k = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_kms_new(&c, &k, &err), ADI_OK);

    adi_secret_t dek;
    unsigned char w[ADI_KMS_WRAPPED_MAX];
    size_t wl = 99;
    assert_int_equal(adi_kms_generate(k, ADI_STR("t"), &dek, w, &wl, &err), ADI_UNAVAILABLE);
    assert_string_equal(err.message, "The key service is unavailable.");
    assert_int_equal(wl, 0);
    assert_null(dek.ptr);

    /* Bad input is refused before any request. */
    adi_error_clear(&err);
    assert_int_equal(adi_kms_unwrap(k, ADI_STR("t"), ADI_STR(""), &dek, &err), ADI_INVALID);
    assert_string_equal(err.message, "Decryption failed.");
    char big[ADI_KMS_WRAPPED_MAX + 1];
    memset(big, 'x', sizeof(big));
    assert_int_equal(adi_kms_unwrap(k, ADI_STR("t"), (adi_str_t){big, sizeof(big)}, &dek, &err),
                     ADI_INVALID);
    assert_int_equal(adi_kms_rewrap(k, ADI_STR("t"), ADI_STR_NULL, w, &wl, &err), ADI_INVALID);
    assert_int_equal(adi_kms_unwrap(k, ADI_STR("\xff\xfe"), ADI_STR("abc"), &dek, &err),
                     ADI_INVALID);
    char long_ctx[ADI_KMS__CONTEXT_MAX + 1];
    memset(long_ctx, 'c', sizeof(long_ctx));
    assert_int_equal(
        adi_kms_generate(k, (adi_str_t){long_ctx, sizeof(long_ctx)}, &dek, w, &wl, &err),
        ADI_INVALID);
    adi_secret_t short_key;
    adi_secret_init(&short_key, "abc", 3);
    assert_int_equal(adi_kms_wrap(k, ADI_STR("t"), &short_key, w, &wl, &err), ADI_INVALID);
    adi_secret_dispose(&short_key);
    adi_kms_free(k);
}

static void test_no_credentials(void **state)
{
    (void)state;
    adi_kms_config_t c = aws_config(); /* no keys, no web identity, no file, IMDS disabled */
    c.endpoint = "http://127.0.0.1:1";
    adi_kms_t *k = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_kms_new(&c, &k, &err), ADI_OK);
    adi_secret_t dek;
    unsigned char w[ADI_KMS_WRAPPED_MAX];
    size_t wl = 0;
    assert_int_equal(adi_kms_generate(k, ADI_STR("t"), &dek, w, &wl, &err), ADI_UNAVAILABLE);
    assert_string_equal(err.message, "The key service is unavailable.");
    adi_kms_free(k);

    /* A web identity token file that does not exist. */
    c.role_arn = "arn:aws:iam::123456789012:role/x";
    c.web_identity_token_file = "/nonexistent/token";
    c.sts_endpoint = "http://127.0.0.1:1";
    assert_int_equal(adi_kms_new(&c, &k, &err), ADI_OK);
    assert_int_equal(adi_kms_generate(k, ADI_STR("t"), &dek, w, &wl, &err), ADI_UNAVAILABLE);
    adi_kms_free(k);
}

/* ---- expiration times --------------------------------------------------------------------- */

static void test_parse_time(void **state)
{
    (void)state;
    int64_t ms = 0;
    assert_int_equal(adi_kms__parse_time(ADI_STR("2026-11-27T21:00:00Z"), &ms, NULL), ADI_OK);
    assert_int_equal(ms, 1795813200000LL);
    assert_int_equal(adi_kms__parse_time(ADI_STR("2026-11-27T21:00:00.250Z"), &ms, NULL), ADI_OK);
    assert_int_equal(ms, 1795813200250LL);
    assert_int_equal(adi_kms__parse_time(ADI_STR("2026-11-27T21:00:00+00:00"), &ms, NULL), ADI_OK);
    assert_int_equal(ms, 1795813200000LL);
    static const char *bad[] = {"",
                                "2026-11-27 21:00:00Z",
                                "2026-11-27T21:00:00",
                                "2026-11-27T21:00:00+05:00",
                                "2026-13-27T21:00:00Z",
                                "2026-11-27T21:00:00.Z",
                                "20261127T210000Z",
                                "2026-11-27T21:00:00Zjunk"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(adi_kms__parse_time(adi_str_c(bad[i]), &ms, NULL), ADI_INVALID);
        assert_int_equal(ms, 0);
    }
}

/* ---- the shared credentials file ---------------------------------------------------------- */

static void test_shared_credentials(void **state)
{
    (void)state;
    /* The token line is longer than inih's default 200-byte line. */
    char token[1501];
    memset(token, 'T', 1500);
    token[1500] = '\0';
    char text[4096];
    snprintf(text, sizeof(text),
             "# AWS CLI credentials\n"
             "[default]\n"
             "aws_access_key_id = AKIDDEFAULT\n"
             "aws_secret_access_key = secretDefault/With+Chars=\n"
             "\n"
             "; another profile\n"
             "[adi]\n"
             "aws_access_key_id=AKIDADI\n"
             "aws_secret_access_key=secretAdi;notacomment\n"
             "aws_session_token = %s\n"
             "region = us-east-1\n"
             "[half]\n"
             "aws_access_key_id = AKIDHALF\n"
             "[empty]\n"
             "region = eu-west-1\n"
             "[bad]\n"
             "aws_access_key_id = AKID BAD\n"
             "aws_secret_access_key = x\n",
             token);
    adi_kms__creds_t c;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_kms__parse_shared_credentials(text, "default", &c, &err), ADI_OK);
    assert_string_equal(c.access_key_id, "AKIDDEFAULT");
    assert_int_equal(c.secret.len, strlen("secretDefault/With+Chars="));
    assert_memory_equal(c.secret.ptr, "secretDefault/With+Chars=", c.secret.len);
    assert_int_equal(c.token.len, 0);
    assert_int_equal(c.expires_ms, 0);
    adi_kms__creds_dispose(&c);

    assert_int_equal(adi_kms__parse_shared_credentials(text, "adi", &c, &err), ADI_OK);
    assert_string_equal(c.access_key_id, "AKIDADI");
    assert_memory_equal(c.secret.ptr, "secretAdi;notacomment", c.secret.len);
    assert_int_equal(c.token.len, 1500);
    assert_memory_equal(c.token.ptr, token, 1500);
    adi_kms__creds_dispose(&c);

    assert_int_equal(adi_kms__parse_shared_credentials(text, "missing", &c, &err), ADI_NOT_FOUND);
    assert_int_equal(adi_kms__parse_shared_credentials(text, "empty", &c, &err), ADI_NOT_FOUND);
    assert_int_equal(adi_kms__parse_shared_credentials(text, "half", &c, &err), ADI_INVALID);
    assert_non_null(strstr(err.message, "half"));
    assert_int_equal(adi_kms__parse_shared_credentials(text, "bad", &c, &err), ADI_INVALID);
    assert_null(c.secret.ptr);
    assert_int_equal(adi_kms__parse_shared_credentials("[default\nx=1\n", "default", &c, &err),
                     ADI_INVALID);
    assert_int_equal(adi_kms__parse_shared_credentials("", "default", &c, &err), ADI_NOT_FOUND);
}

/* The file through the provider: a profile is picked, and a missing file falls through. */
static void test_shared_file_source(void **state)
{
    (void)state;
    char path[] = "/tmp/adi-kms-credsXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("[default]\naws_access_key_id = AKIDONE\naws_secret_access_key = s1\n"
          "[two]\naws_access_key_id = AKIDTWO\naws_secret_access_key = s2\n",
          f);
    fclose(f);
    adi_kms_config_t cfg = aws_config();
    cfg.shared_credentials_file = path;
    cfg.profile = "two";
    adi_kms_t *k = NULL;
    assert_int_equal(adi_kms_new(&cfg, &k, NULL), ADI_OK);
    adi_kms__aws_t *a = adi_kms__aws_of(k);
    assert_non_null(a);
    adi_kms__creds_t c;
    uint64_t gen = 0;
    assert_int_equal(adi_kms__aws_creds(a, 0, &c, &gen, NULL), ADI_OK);
    assert_string_equal(c.access_key_id, "AKIDTWO");
    assert_int_equal(gen, 1);
    adi_kms__creds_dispose(&c);
    /* Cached: the same generation until it is reported expired, when the file is read again. */
    assert_int_equal(adi_kms__aws_creds(a, 0, &c, &gen, NULL), ADI_OK);
    assert_int_equal(gen, 1);
    adi_kms__creds_dispose(&c);
    assert_int_equal(adi_kms__aws_creds(a, 1, &c, &gen, NULL), ADI_OK);
    assert_int_equal(gen, 2);
    adi_kms__creds_dispose(&c);
    adi_kms_free(k);
    unlink(path);
}

/* ---- STS ---------------------------------------------------------------------------------- */

static const char sts_ok[] =
    "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
    "  <AssumeRoleWithWebIdentityResult>\n"
    "    <SubjectFromWebIdentityToken>amzn1.account.AF6RHO7KZU5XRVQJGXK6HB56KR2A"
    "</SubjectFromWebIdentityToken>\n"
    "    <Audience>client.5498841531868486423.1548@apps.example.com</Audience>\n"
    "    <AssumedRoleUser>\n"
    "      <Arn>arn:aws:sts::123456789012:assumed-role/FederatedWebIdentityRole/app1</Arn>\n"
    "      <AssumedRoleId>AROACLKWSDQRAOEXAMPLE:app1</AssumedRoleId>\n"
    "    </AssumedRoleUser>\n"
    "    <Credentials>\n"
    "      <SessionToken>AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE</SessionToken>\n"
    "      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>\n"
    "      <Expiration>2014-10-24T23:00:23Z</Expiration>\n"
    "      <AccessKeyId>ASgeIAIOSFODNN7EXAMPLE</AccessKeyId>\n"
    "    </Credentials>\n"
    "    <SourceIdentity>SourceIdentityValue</SourceIdentity>\n"
    "    <Provider>www.amazon.com</Provider>\n"
    "  </AssumeRoleWithWebIdentityResult>\n"
    "  <ResponseMetadata>\n"
    "    <RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>\n"
    "  </ResponseMetadata>\n"
    "</AssumeRoleWithWebIdentityResponse>\n";

static void test_sts(void **state)
{
    (void)state;
    adi_kms__creds_t c;
    char code[64];
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_kms__parse_sts(sts_ok, strlen(sts_ok), &c, code, sizeof(code), &err),
                     ADI_OK);
    assert_string_equal(c.access_key_id, "ASgeIAIOSFODNN7EXAMPLE");
    assert_memory_equal(c.secret.ptr, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY", c.secret.len);
    assert_int_equal(c.token.len, strlen("AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE"));
    assert_int_equal(c.expires_ms, 1414191623000LL);
    adi_kms__creds_dispose(&c);

    static const char err_doc[] =
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>"
        "<Type>Sender</Type><Code>AccessDenied</Code><Message>Not authorized to perform "
        "sts:AssumeRoleWithWebIdentity</Message></Error><RequestId>x</RequestId></ErrorResponse>";
    assert_int_equal(adi_kms__parse_sts(err_doc, strlen(err_doc), &c, code, sizeof(code), &err),
                     ADI_UNAVAILABLE);
    assert_string_equal(code, "AccessDenied");
    assert_null(c.secret.ptr);

    static const char *bad[] = {
        "",
        "not xml",
        "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>"
        "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
        /* no session token */
        "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
        "<AccessKeyId>ASIAX</AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
        "<Expiration>2014-10-24T23:00:23Z</Expiration></Credentials>"
        "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
        /* bad expiration */
        "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
        "<AccessKeyId>ASIAX</AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
        "<SessionToken>t</SessionToken><Expiration>tomorrow</Expiration></Credentials>"
        "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
        /* a DTD with an external entity: refused, nothing loaded */
        "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
        "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
        "<AccessKeyId>&x;</AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
        "<SessionToken>t</SessionToken><Expiration>2014-10-24T23:00:23Z</Expiration>"
        "</Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
        "<Other/>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(adi_kms__parse_sts(bad[i], strlen(bad[i]), &c, code, sizeof(code), &err),
                         ADI_INVALID);
        assert_null(c.secret.ptr);
    }
}

/* ---- IMDS --------------------------------------------------------------------------------- */

static void test_imds(void **state)
{
    (void)state;
    static const char ok[] =
        "{\n  \"Code\" : \"Success\",\n"
        "  \"LastUpdated\" : \"2012-04-26T16:39:16Z\",\n"
        "  \"Type\" : \"AWS-HMAC\",\n"
        "  \"AccessKeyId\" : \"ASIAIOSFODNN7EXAMPLE\",\n"
        "  \"SecretAccessKey\" : \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\",\n"
        "  \"Token\" : \"IQoJb3JpZ2luX2VjEXAMPLE==\",\n"
        "  \"Expiration\" : \"2017-05-17T15:09:54Z\"\n}";
    adi_kms__creds_t c;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_kms__parse_imds(ok, strlen(ok), &c, &err), ADI_OK);
    assert_string_equal(c.access_key_id, "ASIAIOSFODNN7EXAMPLE");
    assert_memory_equal(c.token.ptr, "IQoJb3JpZ2luX2VjEXAMPLE==", c.token.len);
    assert_int_equal(c.expires_ms, 1495033794000LL);
    adi_kms__creds_dispose(&c);

    static const char *bad[] = {
        "",
        "[]",
        "{\"Code\":\"Failure\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Token\":\"t\","
        "\"Expiration\":\"2017-05-17T15:09:54Z\"}",
        "{\"Code\":\"Success\",\"SecretAccessKey\":\"s\",\"Token\":\"t\","
        "\"Expiration\":\"2017-05-17T15:09:54Z\"}",
        "{\"Code\":\"Success\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\","
        "\"Expiration\":\"2017-05-17T15:09:54Z\"}",
        "{\"Code\":\"Success\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Token\":\"t\"}",
        "{\"Code\":\"Success\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s p\",\"Token\":\"t\","
        "\"Expiration\":\"2017-05-17T15:09:54Z\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(adi_kms__parse_imds(bad[i], strlen(bad[i]), &c, &err), ADI_INVALID);
        assert_null(c.secret.ptr);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_config_ok),
        cmocka_unit_test(test_nothing_listening),
        cmocka_unit_test(test_no_credentials),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_shared_credentials),
        cmocka_unit_test(test_shared_file_source),
        cmocka_unit_test(test_sts),
        cmocka_unit_test(test_imds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
