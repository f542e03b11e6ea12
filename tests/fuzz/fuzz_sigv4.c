/* SPDX-License-Identifier: MIT */
/*
 * The raw HTTP/1.1 request parser of libs/kms (adi_sigv4_request_parse, what a KMS-compatible
 * test server reads) and the SigV4 signer behind it: the first input byte chooses the parser
 * flags (bit 0: ADI_SIGV4_PARSE_EOF_ENDS_HEAD, bit 1: a 64-byte body limit) and the signer options
 * (bit 2: sign_body, bit 3: normalize_path, bit 4: a session token), the rest is the request
 * text. A parsed request is signed with fixed test credentials, as the aws-c-auth suite does.
 * Invariants beyond "no crash, no leak, no UB": every slice of a parsed request lies inside the
 * input (consumed = head_len + body length <= input), header names are non-empty, and a signed
 * request yields a 64-hex signature and 2 to 4 headers to add, the Authorization header last.
 */
#include <string.h>

#include "adi/sigv4.h"
#include "fuzz.h"

static bool inside(adi_str_t s, const char *p, size_t n)
{
    return s.ptr == NULL ? s.len == 0 : (s.ptr >= p && s.ptr + s.len <= p + n);
}

static void sign(const adi_sigv4_request_t *req, unsigned mode)
{
    static const adi_sigv4_credentials_t creds = {
        ADI_STR("AKIDEXAMPLE"), ADI_STR("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        ADI_STR("AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQW")};
    static const adi_sigv4_credentials_t no_token = {
        ADI_STR("AKIDEXAMPLE"), ADI_STR("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), ADI_STR_NULL};
    adi_sigv4_params_t p;
    memset(&p, 0, sizeof(p));
    p.method = req->method;
    p.path = req->path;
    p.query = req->query;
    p.headers = req->headers;
    p.nheaders = req->nheaders;
    p.body = req->body;
    p.sign_body = (mode & 4) != 0;
    p.normalize_path = (mode & 8) != 0;
    p.credentials = (mode & 16) ? &creds : &no_token;
    p.omit_session_token = (mode & 32) != 0;
    p.region = ADI_STR("us-east-1");
    p.service = ADI_STR("service");
    p.amz_date = ADI_STR("20150830T123600Z");
    adi_sigv4_result_t r;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_sigv4_sign(&p, &r, &err) != ADI_OK) {
        FUZZ_CHECK(err.code != ADI_OK && err.message[0] != '\0');
        FUZZ_CHECK(strstr(err.message, "wJalrXUtnFEMI") == NULL);
        return;
    }
    FUZZ_CHECK(strlen(r.signature) == 64 && strspn(r.signature, "0123456789abcdef") == 64);
    adi_sigv4_header_t added[ADI_SIGV4_MAX_ADDED];
    size_t n = adi_sigv4_result_headers(&r, added);
    FUZZ_CHECK(n >= 2 && n <= ADI_SIGV4_MAX_ADDED);
    FUZZ_CHECK(adi_str_eq_c(added[n - 1].name, "Authorization"));
    adi_sigv4_result_dispose(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0];
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    adi_sigv4_request_t *req = malloc(sizeof(*req));
    adi_error_t err;
    adi_error_clear(&err);
    unsigned flags = (mode & 1) ? ADI_SIGV4_PARSE_EOF_ENDS_HEAD : ADI_SIGV4_PARSE_STRICT;
    size_t max_body = (mode & 2) ? 64 : 0;
    if (adi_sigv4_request_parse(in, n, flags, max_body, req, &err) != ADI_OK) {
        FUZZ_CHECK((err.code == ADI_INVALID || err.code == ADI_TOO_LARGE) &&
                   err.message[0] != '\0');
        goto out;
    }
    FUZZ_CHECK(req->head_len <= n && req->consumed == req->head_len + req->body.len);
    FUZZ_CHECK(req->consumed <= n && req->head_len <= ADI_SIGV4_MAX_HEAD);
    FUZZ_CHECK(req->body.len <= (max_body ? max_body : ADI_SIGV4_DEFAULT_MAX_BODY));
    FUZZ_CHECK(inside(req->method, in, n) && req->method.len > 0);
    FUZZ_CHECK(inside(req->target, in, n) && inside(req->path, in, n));
    FUZZ_CHECK(inside(req->query, in, n) && inside(req->version, in, n));
    FUZZ_CHECK(inside(req->body, in, n));
    FUZZ_CHECK(req->nheaders <= ADI_SIGV4_MAX_HEADERS);
    for (size_t i = 0; i < req->nheaders; i++) {
        FUZZ_CHECK(inside(req->headers[i].name, in, n) && req->headers[i].name.len > 0);
        FUZZ_CHECK(inside(req->headers[i].value, in, n));
    }
    (void)adi_sigv4_request_header(req, "host");
    sign(req, mode);
out:
    free(req);
    return 0;
}
