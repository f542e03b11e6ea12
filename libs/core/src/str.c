/* SPDX-License-Identifier: MIT */
/* String slices: construction from C strings and comparisons. */
#include <string.h>

#include "adi/core.h"

adi_str_t adi_str_c(const char *s)
{
    if (s == NULL)
        return ADI_STR_NULL;
    return (adi_str_t){s, strlen(s)};
}

bool adi_str_eq(adi_str_t a, adi_str_t b)
{
    if (a.ptr == NULL || b.ptr == NULL)
        return a.ptr == b.ptr;
    return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

bool adi_str_eq_c(adi_str_t a, const char *s)
{
    return adi_str_eq(a, adi_str_c(s));
}
