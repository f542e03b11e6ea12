/* SPDX-License-Identifier: MIT */
/* Random bytes from the kernel (getrandom) and version-4 UUIDs built from them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

#include "adi/core.h"

void adi_random(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "fatal: getrandom failed\n");
            abort();
        }
        p += r;
        n -= (size_t)r;
    }
}

void adi_uuid_format(const unsigned char b[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        unsigned char c = b[i];
        if (i == 6)
            c = (unsigned char)((c & 0x0f) | 0x40); /* version 4 */
        else if (i == 8)
            c = (unsigned char)((c & 0x3f) | 0x80); /* variant RFC 9562 */
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[c >> 4];
        out[o++] = hex[c & 0xf];
    }
    out[o] = '\0';
}

void adi_uuid_v4(char out[37])
{
    unsigned char b[16];
    adi_random(b, sizeof(b));
    adi_uuid_format(b, out);
}

bool adi_uuid_valid(adi_str_t s)
{
    if (s.ptr == NULL || s.len != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        char c = s.ptr[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return true;
}
