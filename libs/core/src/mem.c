/* SPDX-License-Identifier: MIT */
/*
 * Allocation that treats out-of-memory as fatal (as h2o and kore do): every outside size is
 * bounded before it is allocated, so an allocation failure is a bug or a dying machine, and
 * aborting with file:line is the most useful thing to do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adi/core.h"

void adi__oom(size_t n, const char *file, int line)
{
    fprintf(stderr, "fatal: out of memory allocating %zu bytes at %s:%d\n", n, file, line);
    abort();
}

void adi__assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "fatal: assertion failed: %s at %s:%d\n", expr, file, line);
    abort();
}

void *adi__xmalloc(size_t n, const char *file, int line)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        adi__oom(n, file, line);
    return p;
}

void *adi__xcalloc(size_t n, size_t s, const char *file, int line)
{
    void *p = calloc(n ? n : 1, s ? s : 1);
    if (p == NULL)
        adi__oom(n * s, file, line);
    return p;
}

void *adi__xrealloc(void *p, size_t n, const char *file, int line)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        adi__oom(n, file, line);
    return q;
}

char *adi__xstrdup(const char *s, const char *file, int line)
{
    size_t n = strlen(s) + 1;
    char *p = adi__xmalloc(n, file, line);
    memcpy(p, s, n);
    return p;
}
