/* SPDX-License-Identifier: MIT */
/*
 * Replays every case of the aws-c-auth SigV4 test suite (shared/testdata/sigv4, used as it is).
 * The case folders are discovered at run time, each becoming one cmocka test: request.txt is
 * parsed, context.json gives the credentials, region, service, time and flags, and the signer
 * must reproduce header-canonical-request.txt, header-string-to-sign.txt, header-signature.txt
 * and header-signed-request.txt (the Authorization line, and the whole request once the added
 * headers are appended) byte for byte. A missing data folder fails the run loudly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "adi/sigv4.h"

#ifndef ADI_SIGV4_TESTDATA
#error "ADI_SIGV4_TESTDATA must name the sigv4 test-suite folder"
#endif

/* Largest test-suite file we read (the biggest is well under 1 KiB). */
#define MAX_FILE (64 * 1024)

/* Reads dir/name into a NUL-terminated heap buffer; fails the test when it cannot. */
static char *read_case_file(const char *dir, const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    char *buf = malloc(MAX_FILE + 1);
    assert_non_null(buf);
    size_t n = fread(buf, 1, MAX_FILE + 1, f);
    fclose(f);
    if (n > MAX_FILE) {
        free(buf);
        fail_msg("%s is larger than %d bytes", path, MAX_FILE);
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static adi_str_t json_str(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        return ADI_STR_NULL;
    return (adi_str_t){json_string_value(v), json_string_length(v)};
}

/* "2015-08-30T12:36:00Z" -> "20150830T123600Z", cross-checked with adi_sigv4_amz_date. */
static void amz_date_from_iso(const char *iso, char out[17])
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    char z = 0;
    int used = 0;
    assert_int_equal(sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2d%c%n", &tm.tm_year, &tm.tm_mon,
                            &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &z, &used),
                     7);
    assert_int_equal(z, 'Z');
    assert_int_equal(iso[used], '\0');
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    size_t k = 0;
    for (const char *p = iso; *p != '\0' && k < 16; p++) {
        if (*p != '-' && *p != ':')
            out[k++] = *p;
    }
    out[k] = '\0';
    assert_int_equal(k, 16);
    char formatted[17];
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_sigv4_amz_date((int64_t)timegm(&tm), formatted, &err), ADI_OK);
    assert_string_equal(formatted, out);
}

/* The Authorization value from header-signed-request.txt. */
static char *expected_authorization(const char *signed_req)
{
    const char *p = strstr(signed_req, "\nAuthorization:");
    assert_non_null(p);
    p += strlen("\nAuthorization:");
    const char *e = strchr(p, '\n');
    assert_non_null(e);
    char *s = malloc((size_t)(e - p) + 1);
    assert_non_null(s);
    memcpy(s, p, (size_t)(e - p));
    s[e - p] = '\0';
    return s;
}

static void run_case(void **state)
{
    const char *dir = *state;
    size_t req_len, creq_len, sts_len, sig_len, signed_len;
    char *req_txt = read_case_file(dir, "request.txt", &req_len);
    char *want_creq = read_case_file(dir, "header-canonical-request.txt", &creq_len);
    char *want_sts = read_case_file(dir, "header-string-to-sign.txt", &sts_len);
    char *want_sig = read_case_file(dir, "header-signature.txt", &sig_len);
    char *want_signed = read_case_file(dir, "header-signed-request.txt", &signed_len);
    char ctx_path[4096];
    snprintf(ctx_path, sizeof(ctx_path), "%s/context.json", dir);
    json_error_t jerr;
    json_t *ctx = json_load_file(ctx_path, 0, &jerr);
    if (ctx == NULL)
        fail_msg("%s: %s", ctx_path, jerr.text);
    json_t *jc = json_object_get(ctx, "credentials");
    assert_true(json_is_object(jc));

    /* The request as the test suite wrote it: no blank line when there is no body. */
    adi_error_t err;
    adi_error_clear(&err);
    adi_sigv4_request_t *req = malloc(sizeof(*req));
    assert_non_null(req);
    assert_int_equal(
        adi_sigv4_request_parse(req_txt, req_len, ADI_SIGV4_PARSE_EOF_ENDS_HEAD, 0, req, &err),
        ADI_OK);

    adi_sigv4_credentials_t creds = {
        .access_key_id = json_str(jc, "access_key_id"),
        .secret_access_key = json_str(jc, "secret_access_key"),
        .session_token = json_str(jc, "token"),
    };
    char amz_date[17];
    json_t *ts = json_object_get(ctx, "timestamp");
    assert_true(json_is_string(ts));
    amz_date_from_iso(json_string_value(ts), amz_date);
    adi_sigv4_params_t p = {
        .method = req->method,
        .path = req->path,
        .query = req->query,
        .headers = req->headers,
        .nheaders = req->nheaders,
        .body = req->body,
        .sign_body = json_is_true(json_object_get(ctx, "sign_body")),
        .normalize_path = json_is_true(json_object_get(ctx, "normalize")),
        .omit_session_token = json_is_true(json_object_get(ctx, "omit_session_token")),
        .credentials = &creds,
        .region = json_str(ctx, "region"),
        .service = json_str(ctx, "service"),
        .amz_date = adi_str_c(amz_date),
    };
    adi_sigv4_result_t r;
    adi_err rc = adi_sigv4_sign(&p, &r, &err);
    if (rc != ADI_OK)
        fail_msg("sign failed: %s (%s)", err.message, adi_err_name(rc));

    assert_string_equal(r.canonical_request.data, want_creq);
    assert_string_equal(r.string_to_sign.data, want_sts);
    assert_string_equal(r.signature, want_sig);
    char *want_auth = expected_authorization(want_signed);
    assert_string_equal(r.authorization.data, want_auth);

    /*
     * The whole signed request: the original request line and header lines, then the added
     * headers in the signer's order, the blank line and the body.
     */
    size_t hl = req->head_len;
    size_t head_lines = hl;
    if (hl >= 2 && req_txt[hl - 1] == '\n' && req_txt[hl - 2] == '\n')
        head_lines = hl - 1; /* drop the blank line (LF) */
    else if (hl >= 4 && memcmp(req_txt + hl - 4, "\r\n\r\n", 4) == 0)
        head_lines = hl - 2; /* drop the blank line (CRLF) */
    adi_buf_t got;
    adi_buf_init(&got);
    adi_buf_append(&got, req_txt, head_lines);
    adi_sigv4_header_t added[ADI_SIGV4_MAX_ADDED];
    size_t nadded = adi_sigv4_result_headers(&r, added);
    assert_in_range(nadded, 2, ADI_SIGV4_MAX_ADDED);
    for (size_t i = 0; i < nadded; i++)
        adi_buf_printf(&got, "%.*s:%.*s\n", (int)added[i].name.len, added[i].name.ptr,
                       (int)added[i].value.len, added[i].value.ptr);
    adi_buf_append(&got, "\n", 1);
    adi_buf_append(&got, req->body.ptr, req->body.len);
    assert_string_equal(got.data, want_signed);

    adi_buf_dispose(&got);
    free(want_auth);
    adi_sigv4_result_dispose(&r);
    json_decref(ctx);
    free(req);
    free(want_signed);
    free(want_sig);
    free(want_sts);
    free(want_creq);
    free(req_txt);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
    const char *root = getenv("ADI_SIGV4_TESTDATA");
    if (root == NULL || root[0] == '\0')
        root = ADI_SIGV4_TESTDATA;
    DIR *d = opendir(root);
    if (d == NULL) {
        fprintf(stderr,
                "FATAL: the SigV4 test suite is missing: cannot open %s (expected shared/ beside "
                "the repository root, or ADI_SIGV4_TESTDATA)\n",
                root);
        return 1;
    }
    size_t n = 0, cap = 64;
    char **names = malloc(cap * sizeof(*names));
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char ctx[4096];
        struct stat st;
        snprintf(ctx, sizeof(ctx), "%s/%s/context.json", root, de->d_name);
        if (stat(ctx, &st) != 0)
            continue;
        if (n == cap) {
            cap *= 2;
            names = realloc(names, cap * sizeof(*names));
        }
        size_t len = strlen(root) + 1 + strlen(de->d_name) + 1;
        names[n] = malloc(len);
        snprintf(names[n], len, "%s/%s", root, de->d_name);
        n++;
    }
    closedir(d);
    if (n == 0) {
        fprintf(stderr, "FATAL: no SigV4 test cases (no */context.json) under %s\n", root);
        free(names);
        return 1;
    }
    qsort(names, n, sizeof(*names), name_cmp);

    struct CMUnitTest *tests = calloc(n, sizeof(*tests));
    for (size_t i = 0; i < n; i++) {
        tests[i].name = strrchr(names[i], '/') + 1;
        tests[i].test_func = run_case;
        tests[i].initial_state = names[i];
    }
    printf("SigV4 test suite: %zu cases under %s\n", n, root);
    int failed = _cmocka_run_group_tests("sigv4_vectors", tests, n, NULL, NULL);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(tests);
    return failed;
}
