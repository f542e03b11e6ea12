/* SPDX-License-Identifier: MIT */
/*
 * The per-message arena: a msgpack_zone, which msgpack's unpacker already uses for decoded
 * objects, so a request's decoded input, its reply and its temporaries share one lifetime and one
 * free. Finalizers (adi_pool_defer) release foreign objects such as libpq results.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "adi/core.h"

#define POOL_CHUNK 4096

void adi_pool_init(adi_pool_t *pool)
{
    pool->zone_ = msgpack_zone_new(POOL_CHUNK);
    if (pool->zone_ == NULL)
        adi__oom(0, __FILE__, __LINE__);
}

void adi_pool_dispose(adi_pool_t *pool)
{
    if (pool->zone_ != NULL)
        msgpack_zone_free(pool->zone_);
    pool->zone_ = NULL;
}

void *adi_pool_alloc(adi_pool_t *pool, size_t n)
{
    void *p = msgpack_zone_malloc(pool->zone_, n ? n : 1);
    if (p == NULL)
        adi__oom(0, __FILE__, __LINE__);
    memset(p, 0, n);
    return p;
}

adi_str_t adi_pool_strdup(adi_pool_t *pool, adi_str_t s)
{
    if (s.ptr == NULL)
        return ADI_STR_NULL;
    char *p = msgpack_zone_malloc_no_align(pool->zone_, s.len + 1);
    if (p == NULL)
        adi__oom(0, __FILE__, __LINE__);
    memcpy(p, s.ptr, s.len);
    p[s.len] = '\0';
    return (adi_str_t){p, s.len};
}

adi_str_t adi_pool_printf(adi_pool_t *pool, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    ADI_ASSERT(n >= 0);
    char *p = msgpack_zone_malloc_no_align(pool->zone_, (size_t)n + 1);
    if (p == NULL)
        adi__oom(0, __FILE__, __LINE__);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return (adi_str_t){p, (size_t)n};
}

void adi_pool_defer(adi_pool_t *pool, void (*fn)(void *), void *data)
{
    if (!msgpack_zone_push_finalizer(pool->zone_, fn, data))
        adi__oom(0, __FILE__, __LINE__);
}
