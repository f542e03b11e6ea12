/* SPDX-License-Identifier: MIT */
/*
 * The operation table: every op of proto/ops.def is found by its wire name, unknown names,
 * prefixes, names with embedded NULs and NULL are not, and the first lookups may race from
 * several threads (the table is built once under pthread_once).
 */
#include <pthread.h>

#include "proto_test.h"

static void test_find_known(void **state)
{
    (void)state;
    const adi_op_desc_t *op = adi_op_find(ADI_STR("sys.health"));
    assert_ptr_equal(op, &adi_op_sys_health);
    assert_string_equal(op->service, "*");
    assert_ptr_equal(op->req, &adi_empty__desc);
    assert_ptr_equal(op->rep, &sys_health_rep__desc);
    size_t n = 0;
    for (const adi_op_desc_t *const *p = adi_ops_all; *p != NULL; p++, n++)
        assert_ptr_equal(adi_op_find(adi_str_c((*p)->name)), *p);
    assert_true(n >= 1);
}

static void test_find_unknown(void **state)
{
    (void)state;
    static const char *const names[] = {"",          "sys",         "sys.",
                                        "sys.healt", "sys.healthz", "SYS.HEALTH",
                                        "auth.nope", " sys.health", NULL};
    for (const char *const *s = names; *s != NULL; s++)
        assert_null(adi_op_find(adi_str_c(*s)));
    assert_null(adi_op_find(ADI_STR_NULL));
    assert_null(adi_op_find((adi_str_t){"sys.health\0x", 12}));
    assert_null(adi_op_find((adi_str_t){"sys.health\0", 11}));
    /* A slice of a longer buffer is compared by its length only. */
    assert_non_null(adi_op_find((adi_str_t){"sys.healthXYZ", 10}));
}

static void *lookup_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++)
        if (adi_op_find(ADI_STR("sys.health")) != &adi_op_sys_health)
            return (void *)1;
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, lookup_thread, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *rc = (void *)1;
        assert_int_equal(pthread_join(t[i], &rc), 0);
        assert_null(rc);
    }
}

int main(void)
{
    /* The threads run first, so that they race for the first lookup. */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_find_known),
        cmocka_unit_test(test_find_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
