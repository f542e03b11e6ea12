/* SPDX-License-Identifier: MIT */
/*
 * The growable byte buffer (append, printf, reset, NUL termination, growth) and the one JSON
 * string escaper of the tree: quotes, backslashes, every control character, UTF-8 passed through
 * unchanged, and every kind of invalid UTF-8 replaced by U+FFFD.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "adi/core.h"

static void test_append(void **state)
{
    (void)state;
    adi_buf_t b;
    adi_buf_init(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    adi_buf_reset(&b); /* on an empty buffer too */
    adi_buf_append(&b, "ab", 2);
    adi_buf_append_str(&b, "cd");
    adi_buf_append(&b, NULL, 0);
    adi_buf_printf(&b, "-%d-%s", 7, "x");
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "abcd-7-x");
    /* Binary content, and growth well past the first allocation. */
    adi_buf_append(&b, "\0z", 2);
    assert_int_equal(b.len, 10);
    assert_int_equal(b.data[8], '\0');
    assert_int_equal(b.data[10], '\0');
    for (int i = 0; i < 10000; i++)
        adi_buf_append(&b, "0123456789", 10);
    assert_int_equal(b.len, 100010);
    assert_true(b.cap > b.len);
    assert_int_equal(b.data[b.len], '\0');
    char big[3000];
    memset(big, 'p', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    adi_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    adi_buf_printf(&b, "%s%s", big, big);
    assert_int_equal(b.len, 2 * (sizeof(big) - 1));
    adi_buf_dispose(&b);
    assert_null(b.data);
    adi_buf_dispose(&b); /* twice is harmless */
}

/* Escapes `n` bytes of `s` and compares with `want`. */
static void esc(const char *s, size_t n, const char *want)
{
    adi_buf_t b;
    adi_buf_init(&b);
    adi_buf_append_str(&b, "<");
    adi_buf_append_json_escaped(&b, s, n);
    adi_buf_append_str(&b, ">");
    char framed[256];
    snprintf(framed, sizeof(framed), "<%s>", want);
    assert_string_equal(b.data, framed);
    adi_buf_dispose(&b);
}

#define ESC(lit, want) esc((lit), sizeof(lit) - 1, (want))

static void test_json_escape(void **state)
{
    (void)state;
    ESC("", "");
    ESC("plain text", "plain text");
    ESC("say \"hi\"", "say \\\"hi\\\"");
    ESC("back\\slash", "back\\\\slash");
    ESC("/", "/");
    ESC("\n\r\t\b\f", "\\n\\r\\t\\b\\f");
    ESC("\x01\x1f", "\\u0001\\u001f");
    ESC("a\0b", "a\\u0000b");
    ESC("\x7f", "\x7f");
    /* Every control character is escaped; nothing below 0x20 passes raw. */
    for (int c = 0; c < 0x20; c++) {
        char in = (char)c;
        adi_buf_t b;
        adi_buf_init(&b);
        adi_buf_append_json_escaped(&b, &in, 1);
        assert_int_equal(b.data[0], '\\');
        assert_true(b.len == 2 || b.len == 6);
        adi_buf_dispose(&b);
    }
    /* Valid UTF-8 of every length passes through. */
    ESC("\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf \xf4\x8f\xbf\xbf",
        "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf \xf4\x8f\xbf\xbf");
}

static void test_json_escape_invalid_utf8(void **state)
{
    (void)state;
    const char *r = "\xef\xbf\xbd"; /* U+FFFD */
    char want[64];
    ESC("\xff", r);
    ESC("\x80", r); /* lone continuation byte */
    snprintf(want, sizeof(want), "%s%s", r, r);
    ESC("\xc0\xaf", want); /* overlong '/' */
    ESC("\xc3", r);        /* truncated at the end */
    snprintf(want, sizeof(want), "%s%sx", r, r);
    ESC("\xe2\x82x", want); /* a sequence cut short: one U+FFFD per byte */
    snprintf(want, sizeof(want), "%s%s%s", r, r, r);
    ESC("\xed\xa0\x80", want); /* a UTF-16 surrogate */
    snprintf(want, sizeof(want), "%s%s%s%s", r, r, r, r);
    ESC("\xf4\x90\x80\x80", want); /* above U+10FFFF */
    ESC("\xf8\x88\x80\x80", want); /* 5-byte form */
    snprintf(want, sizeof(want), "a%sb", r);
    ESC("a\xfe"
        "b",
        want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append),
        cmocka_unit_test(test_json_escape),
        cmocka_unit_test(test_json_escape_invalid_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
