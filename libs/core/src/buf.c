/* SPDX-License-Identifier: MIT */
/*
 * A growable heap byte buffer, kept NUL-terminated so its contents can be handed to C APIs, and
 * the one JSON string escaper of the tree (used by the log lines and the msgpack->JSON writer).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adi/core.h"

void adi_buf_init(adi_buf_t *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void adi_buf_dispose(adi_buf_t *b)
{
    free(b->data);
    adi_buf_init(b);
}

void adi_buf_reset(adi_buf_t *b)
{
    b->len = 0;
    if (b->cap > 0)
        b->data[0] = '\0';
}

static void reserve(adi_buf_t *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    b->data = adi_xrealloc(b->data, cap);
    b->cap = cap;
}

void adi_buf_append(adi_buf_t *b, const void *p, size_t n)
{
    reserve(b, n);
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void adi_buf_append_str(adi_buf_t *b, const char *s)
{
    adi_buf_append(b, s, strlen(s));
}

void adi_buf_printf(adi_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    ADI_ASSERT(n >= 0);
    reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when the bytes are not valid UTF-8. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

void adi_buf_append_json_escaped(adi_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    reserve(b, n + 2);
    while (i < n) {
        size_t start = i;
        /* Copy the longest run that needs no escaping in one go. */
        while (i < n && p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' && p[i] != '\\')
            i++;
        if (i > start)
            adi_buf_append(b, p + start, i - start);
        if (i >= n)
            break;
        unsigned char c = p[i];
        if (c >= 0x80) {
            size_t l = utf8_seq(p + i, n - i);
            if (l == 0) {
                adi_buf_append(b, "\xef\xbf\xbd", 3);
                i++;
            } else {
                adi_buf_append(b, p + i, l);
                i += l;
            }
            continue;
        }
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t el = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xf];
            el = 6;
            break;
        }
        adi_buf_append(b, esc, el);
        i++;
    }
}
