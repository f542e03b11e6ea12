/* SPDX-License-Identifier: MIT */
/*
 * The per-message arena: zeroed and aligned allocations of any size, string copies, printf,
 * finalizers run once at dispose (in reverse order of registration, as msgpack_zone runs them),
 * and the fatal-on-OOM allocation helpers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "adi/core.h"

static void test_alloc(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    for (size_t n = 0; n < 200; n += 7) {
        unsigned char *p = adi_pool_alloc(&pool, n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % sizeof(void *), 0);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(p[i], 0);
        memset(p, 0xab, n);
    }
    /* Larger than a chunk. */
    unsigned char *big = adi_pool_alloc(&pool, 1 << 20);
    assert_int_equal(big[0], 0);
    assert_int_equal(big[(1 << 20) - 1], 0);
    memset(big, 1, 1 << 20);
    adi_pool_dispose(&pool);
    /* Disposing twice is harmless. */
    adi_pool_dispose(&pool);
}

static void test_strings(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    char src[] = "hello world";
    adi_str_t s = adi_pool_strdup(&pool, (adi_str_t){src, 5});
    src[0] = 'X';
    assert_int_equal(s.len, 5);
    assert_string_equal(s.ptr, "hello"); /* a NUL-terminated copy */
    assert_null(adi_pool_strdup(&pool, ADI_STR_NULL).ptr);
    adi_str_t e = adi_pool_strdup(&pool, (adi_str_t){"", 0});
    assert_non_null(e.ptr);
    assert_int_equal(e.len, 0);
    adi_str_t p = adi_pool_printf(&pool, "%s-%d-%05.1f", "a", 42, 3.14159);
    assert_string_equal(p.ptr, "a-42-003.1");
    assert_int_equal(p.len, strlen("a-42-003.1"));
    char big[5000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    adi_str_t q = adi_pool_printf(&pool, "%s!", big);
    assert_int_equal(q.len, sizeof(big));
    assert_int_equal(q.ptr[q.len - 1], '!');
    adi_pool_dispose(&pool);
}

static int order[4]; /* finalizer calls, in call order */
static int norder;   /* used entries of order */

static void record(void *data)
{
    order[norder++] = *(int *)data;
}

static void test_defer(void **state)
{
    (void)state;
    static int ids[3] = {1, 2, 3};
    norder = 0;
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_pool_defer(&pool, record, &ids[0]);
    adi_pool_defer(&pool, record, &ids[1]);
    adi_pool_defer(&pool, record, &ids[2]);
    /* A heap object released by the pool: ASan's leak check proves it ran. */
    adi_pool_defer(&pool, free, adi_xmalloc(64));
    assert_int_equal(norder, 0);
    adi_pool_dispose(&pool);
    assert_int_equal(norder, 3);
    assert_int_equal(order[0], 3);
    assert_int_equal(order[1], 2);
    assert_int_equal(order[2], 1);
}

static void test_xalloc(void **state)
{
    (void)state;
    int *z = adi_xcalloc(16, sizeof(int));
    for (int i = 0; i < 16; i++)
        assert_int_equal(z[i], 0);
    z = adi_xrealloc(z, 1024 * sizeof(int));
    z[1023] = 7;
    free(z);
    char *d = adi_xstrdup("copy");
    assert_string_equal(d, "copy");
    free(d);
    void *m = adi_xmalloc(0); /* a valid pointer, not NULL */
    assert_non_null(m);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_defer),
        cmocka_unit_test(test_xalloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
