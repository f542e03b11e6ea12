/* SPDX-License-Identifier: MIT */
/*
 * The raw HTTP request parser: well-formed requests (CRLF and LF, folds, bodies, trailing bytes),
 * and bad input it must refuse cleanly: truncated heads and bodies, missing blank lines, huge
 * heads and too many headers, malformed request lines and header lines, conflicting lengths,
 * binary bytes, and a deterministic stream of mutated and random inputs. Every input is copied to
 * an exactly-sized heap buffer so that AddressSanitizer catches any read past its end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adi/sigv4.h"

/* Parses a copy of data[0..len) in an exactly-sized heap buffer; the copy is freed. */
static adi_err parse_copy(const void *data, size_t len, unsigned flags, size_t max_body,
                          adi_sigv4_request_t *req, adi_error_t *err)
{
    char *copy = malloc(len > 0 ? len : 1);
    assert_non_null(copy);
    if (len > 0)
        memcpy(copy, data, len);
    adi_error_clear(err);
    adi_err rc = adi_sigv4_request_parse(copy, len, flags, max_body, req, err);
    if (rc != ADI_OK) {
        assert_int_equal(err->code, rc);
        assert_true(strlen(err->message) > 0);
    } else {
        assert_true(req->consumed <= len);
        assert_true(req->head_len <= req->consumed);
    }
    free(copy);
    return rc;
}

static adi_err parse_str(const char *s, unsigned flags, adi_sigv4_request_t *req, adi_error_t *err)
{
    return parse_copy(s, strlen(s), flags, 0, req, err);
}

static void expect_error(const char *s, unsigned flags, adi_err code, const char *fragment)
{
    adi_sigv4_request_t *req = malloc(sizeof(*req));
    adi_error_t err;
    adi_err rc = parse_str(s, flags, req, &err);
    if (rc != code)
        fail_msg("input %.60s: got %s (%s), want %s", s, adi_err_name(rc), err.message,
                 adi_err_name(code));
    if (fragment != NULL && strstr(err.message, fragment) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.message, fragment);
    free(req);
}

static void test_parses_crlf_request_with_body(void **state)
{
    (void)state;
    static const char raw[] = "POST /a/b?x=1&y HTTP/1.1\r\n"
                              "Host: kms.local\r\n"
                              "Content-Length:  5 \r\n"
                              "X-Folded: one\r\n"
                              "\t two\r\n"
                              "Empty:\r\n"
                              "\r\n"
                              "hello"
                              "GET / HTTP/1.1\r\n";
    adi_sigv4_request_t req;
    adi_error_t err;
    assert_int_equal(parse_copy(raw, sizeof(raw) - 1, ADI_SIGV4_PARSE_STRICT, 0, &req, &err),
                     ADI_OK);
    /* The slices point into the freed copy: compare lengths and offsets only, and re-parse. */
    char *copy = strdup(raw);
    assert_int_equal(adi_sigv4_request_parse(copy, strlen(copy), 0, 0, &req, &err), ADI_OK);
    assert_true(adi_str_eq_c(req.method, "POST"));
    assert_true(adi_str_eq_c(req.target, "/a/b?x=1&y"));
    assert_true(adi_str_eq_c(req.path, "/a/b"));
    assert_true(adi_str_eq_c(req.query, "x=1&y"));
    assert_true(adi_str_eq_c(req.version, "HTTP/1.1"));
    assert_int_equal(req.nheaders, 4);
    assert_true(adi_str_eq_c(req.headers[0].name, "Host"));
    assert_true(adi_str_eq_c(req.headers[0].value, "kms.local"));
    assert_true(adi_str_eq_c(req.headers[1].value, "5"));
    assert_true(adi_str_eq_c(req.headers[2].value, "one\r\n\t two"));
    assert_true(adi_str_eq_c(req.headers[3].name, "Empty"));
    assert_int_equal(req.headers[3].value.len, 0);
    assert_true(adi_str_eq_c(req.body, "hello"));
    assert_int_equal(req.head_len, strstr(copy, "hello") - copy);
    assert_int_equal(req.consumed, req.head_len + 5);
    assert_true(strncmp(copy + req.consumed, "GET / HTTP/1.1", 14) == 0);
    const adi_sigv4_header_t *h = adi_sigv4_request_header(&req, "content-LENGTH");
    assert_non_null(h);
    assert_ptr_equal(h, &req.headers[1]);
    assert_null(adi_sigv4_request_header(&req, "Content-Type"));
    free(copy);
}

static void test_strict_and_eof_modes(void **state)
{
    (void)state;
    const char *no_blank = "GET / HTTP/1.1\nHost:example.amazonaws.com\n";
    adi_sigv4_request_t req;
    adi_error_t err;
    expect_error(no_blank, ADI_SIGV4_PARSE_STRICT, ADI_INVALID, "no blank line");
    assert_int_equal(parse_str(no_blank, ADI_SIGV4_PARSE_EOF_ENDS_HEAD, &req, &err), ADI_OK);
    assert_int_equal(req.nheaders, 1);
    assert_int_equal(req.body.len, 0);
    assert_int_equal(req.consumed, strlen(no_blank));
    /* An unterminated last line is accepted at EOF in the lenient mode only. */
    expect_error("GET / HTTP/1.1\nHost: x", ADI_SIGV4_PARSE_STRICT, ADI_INVALID, "no blank line");
    assert_int_equal(
        parse_str("GET / HTTP/1.1\nHost: x", ADI_SIGV4_PARSE_EOF_ENDS_HEAD, &req, &err), ADI_OK);
    assert_int_equal(req.nheaders, 1);
    /* Without Content-Length the lenient mode takes the rest as body; strict mode takes none. */
    const char *rest = "POST / HTTP/1.1\nHost: x\n\nabc";
    assert_int_equal(parse_str(rest, ADI_SIGV4_PARSE_EOF_ENDS_HEAD, &req, &err), ADI_OK);
    assert_int_equal(req.body.len, 3);
    assert_int_equal(parse_str(rest, ADI_SIGV4_PARSE_STRICT, &req, &err), ADI_OK);
    assert_int_equal(req.body.len, 0);
    assert_int_equal(req.consumed, strlen(rest) - 3);
}

static void test_truncated(void **state)
{
    (void)state;
    static const char full[] = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody";
    size_t n = sizeof(full) - 1;
    adi_sigv4_request_t req;
    adi_error_t err;
    /* Every strict prefix is refused as invalid; only the whole request parses. */
    for (size_t len = 0; len < n; len++) {
        adi_err rc = parse_copy(full, len, ADI_SIGV4_PARSE_STRICT, 0, &req, &err);
        if (rc != ADI_INVALID)
            fail_msg("prefix of %zu bytes: got %s", len, adi_err_name(rc));
    }
    assert_int_equal(parse_copy(full, n, ADI_SIGV4_PARSE_STRICT, 0, &req, &err), ADI_OK);
    expect_error("POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort", 0, ADI_INVALID,
                 "shorter than Content-Length");
    expect_error("GET / HTTP/1.1\r\nHost: h\r", 0, ADI_INVALID, "no blank line");
    expect_error("", 0, ADI_INVALID, "empty");
}

static void test_huge_input(void **state)
{
    (void)state;
    adi_error_t err;
    adi_sigv4_request_t *req = malloc(sizeof(*req));
    /* One header value bigger than the whole head limit. */
    size_t big = ADI_SIGV4_MAX_HEAD + 100;
    char *s = malloc(big + 64);
    size_t n = (size_t)sprintf(s, "GET / HTTP/1.1\r\nX-Big: ");
    memset(s + n, 'a', big);
    n += big;
    memcpy(s + n, "\r\n\r\n", 4);
    n += 4;
    assert_int_equal(parse_copy(s, n, 0, 0, req, &err), ADI_TOO_LARGE);
    /* The same without any line ending at all, in both modes. */
    memset(s, 'G', n);
    assert_int_equal(parse_copy(s, n, 0, 0, req, &err), ADI_TOO_LARGE);
    assert_int_equal(parse_copy(s, n, ADI_SIGV4_PARSE_EOF_ENDS_HEAD, 0, req, &err), ADI_TOO_LARGE);
    free(s);

    /* Many small headers that together pass the head limit. */
    adi_buf_t b;
    adi_buf_init(&b);
    adi_buf_append_str(&b, "GET / HTTP/1.1\r\n");
    while (b.len <= ADI_SIGV4_MAX_HEAD)
        adi_buf_append_str(&b, "X-Filler: 0123456789012345678901234567890123456789\r\n");
    adi_buf_append_str(&b, "\r\n");
    assert_int_equal(parse_copy(b.data, b.len, 0, 0, req, &err), ADI_TOO_LARGE);
    adi_buf_dispose(&b);

    /* One header too many, in a head well under the byte limit. */
    adi_buf_init(&b);
    adi_buf_append_str(&b, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < ADI_SIGV4_MAX_HEADERS; i++)
        adi_buf_printf(&b, "H%d: v\r\n", i);
    adi_buf_append_str(&b, "\r\n");
    assert_int_equal(parse_copy(b.data, b.len, 0, 0, req, &err), ADI_OK);
    assert_int_equal(req->nheaders, ADI_SIGV4_MAX_HEADERS);
    b.len -= 2;
    adi_buf_append_str(&b, "One-More: v\r\n\r\n");
    assert_int_equal(parse_copy(b.data, b.len, 0, 0, req, &err), ADI_TOO_LARGE);
    adi_buf_dispose(&b);

    /* Bodies over the caller's limit, with and without Content-Length. */
    const char *cl = "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world";
    assert_int_equal(parse_copy(cl, strlen(cl), 0, 10, req, &err), ADI_TOO_LARGE);
    assert_int_equal(parse_copy(cl, strlen(cl), 0, 11, req, &err), ADI_OK);
    const char *nocl = "POST / HTTP/1.1\r\n\r\nhello world";
    assert_int_equal(parse_copy(nocl, strlen(nocl), ADI_SIGV4_PARSE_EOF_ENDS_HEAD, 10, req, &err),
                     ADI_TOO_LARGE);
    expect_error("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 0, ADI_INVALID,
                 "Content-Length");
    expect_error("POST / HTTP/1.1\r\nContent-Length: 9999999999999999999\r\n\r\n", 0, ADI_TOO_LARGE,
                 "exceeds");
    free(req);
}

static void test_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *fragment;
    } cases[] = {
        {"GET\r\n\r\n", "request line"},
        {"GET /\r\n\r\n", "request line"},
        {"GET / HTTP/2.0\r\n\r\n", "version"},
        {"GET / http/1.1\r\n\r\n", "version"},
        {"GET  HTTP/1.1\r\n\r\n", "target"},
        {"GET * HTTP/1.1\r\n\r\n", "target"},
        {"GET http://h/ HTTP/1.1\r\n\r\n", "target"},
        {"G@T / HTTP/1.1\r\n\r\n", "method"},
        {" / HTTP/1.1\r\n\r\n", "method"},
        {"\r\nGET / HTTP/1.1\r\n\r\n", "request line"},
        {"GET / HTTP/1.1\r\nHost\r\n\r\n", "no colon"},
        {"GET / HTTP/1.1\r\nHost : h\r\n\r\n", "bad name"},
        {"GET / HTTP/1.1\r\n: h\r\n\r\n", "bad name"},
        {"GET / HTTP/1.1\r\nHo(st: h\r\n\r\n", "bad name"},
        {"GET / HTTP/1.1\r\n folded: first\r\n\r\n", "continuation"},
        {"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", "stray CR"},
        {"GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", "control"},
        {"GET / HTTP/1.1\r\nHost: a\x7f\r\n\r\n", "control"},
        {"GET /\x1b[31m HTTP/1.1\r\n\r\n", "control"},
        {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "conflicting"},
        {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "Content-Length"},
        {"POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\nab", "Content-Length"},
        {"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", "Content-Length"},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "Transfer-Encoding"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        expect_error(cases[i].in, ADI_SIGV4_PARSE_STRICT, ADI_INVALID, cases[i].fragment);
        expect_error(cases[i].in, ADI_SIGV4_PARSE_EOF_ENDS_HEAD, ADI_INVALID, cases[i].fragment);
    }
    /* Agreeing duplicates are fine. */
    adi_sigv4_request_t req;
    adi_error_t err;
    assert_int_equal(
        parse_str("POST / HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nab", 0, &req,
                  &err),
        ADI_OK);
}

static void test_binary(void **state)
{
    (void)state;
    adi_sigv4_request_t req;
    adi_error_t err;
    static const char nul_head[] = "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n";
    assert_int_equal(parse_copy(nul_head, sizeof(nul_head) - 1, 0, 0, &req, &err), ADI_INVALID);
    assert_non_null(strstr(err.message, "0x00"));
    static const char nul_line[] = "\0GET / HTTP/1.1\r\n\r\n";
    assert_int_equal(parse_copy(nul_line, sizeof(nul_line) - 1, 0, 0, &req, &err), ADI_INVALID);
    /* A binary body is just bytes. */
    static const char bin_body[] = "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n\0\xff\r\n";
    assert_int_equal(parse_copy(bin_body, sizeof(bin_body) - 1, 0, 0, &req, &err), ADI_OK);
    /* UTF-8 and obs-text in the head are allowed (the test suite has a UTF-8 path). */
    assert_int_equal(parse_str("GET /\xe1\x88\xb4 HTTP/1.1\r\nX: \xff\r\n\r\n", 0, &req, &err),
                     ADI_OK);
}

/* xorshift64: deterministic pseudo-random bytes for the mutation loop. */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

static void test_mutations_never_crash(void **state)
{
    (void)state;
    static const char seed[] = "POST /a/./b?x=%41&y HTTP/1.1\r\n"
                               "Host: kms.local\r\n"
                               "X-Fold: a\r\n"
                               " b\r\n"
                               "Content-Length: 3\r\n"
                               "\r\n"
                               "abc";
    static const char alphabet[] = "\r\n :\t?/%0aZ\x00\xff";
    uint64_t rs = 0x9e3779b97f4a7c15ULL;
    adi_sigv4_request_t req;
    adi_error_t err;
    size_t ok = 0;
    for (int iter = 0; iter < 20000; iter++) {
        char buf[sizeof(seed) + 8];
        size_t len = sizeof(seed) - 1;
        memcpy(buf, seed, len);
        int edits = 1 + (int)(next_rand(&rs) % 4);
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)(next_rand(&rs) % len);
            switch (next_rand(&rs) % 3) {
            case 0: /* overwrite with a structural byte */
                buf[at] = alphabet[next_rand(&rs) % (sizeof(alphabet) - 1)];
                break;
            case 1: /* overwrite with any byte */
                buf[at] = (char)(next_rand(&rs) & 0xff);
                break;
            default: /* truncate */
                len = at;
                break;
            }
            if (len == 0)
                break;
        }
        unsigned flags = (iter & 1) ? ADI_SIGV4_PARSE_EOF_ENDS_HEAD : ADI_SIGV4_PARSE_STRICT;
        adi_err rc = parse_copy(buf, len, flags, 0, &req, &err);
        assert_true(rc == ADI_OK || rc == ADI_INVALID || rc == ADI_TOO_LARGE);
        if (rc == ADI_OK)
            ok++;
    }
    /* Pure noise as well. */
    for (int iter = 0; iter < 2000; iter++) {
        char buf[512];
        size_t len = (size_t)(next_rand(&rs) % sizeof(buf));
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)(next_rand(&rs) & 0xff);
        adi_err rc = parse_copy(buf, len, (unsigned)(iter & 1), 0, &req, &err);
        assert_true(rc == ADI_OK || rc == ADI_INVALID || rc == ADI_TOO_LARGE);
    }
    /* Some mutations keep the request valid (e.g. a changed letter in a value). */
    assert_true(ok > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parses_crlf_request_with_body),
        cmocka_unit_test(test_strict_and_eof_modes),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_huge_input),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_binary),
        cmocka_unit_test(test_mutations_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
