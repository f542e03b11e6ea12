/* SPDX-License-Identifier: MIT */
/*
 * The pure parts of the task queues: queue names, unique-lock keys (libs/tasks), and the task
 * runner's backoff, TASK_QUEUES parsing and task lookup (services/task-runner).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "adi/tasks.h"
#include "task_runner.h"

static void test_queue_names(void **state)
{
    (void)state;
    assert_true(adi_tasks_queue_valid("default"));
    assert_true(adi_tasks_queue_valid("high-prio_2.x"));
    assert_false(adi_tasks_queue_valid(""));
    assert_false(adi_tasks_queue_valid(NULL));
    assert_false(adi_tasks_queue_valid("Default"));
    assert_false(adi_tasks_queue_valid("a:b"));
    assert_false(adi_tasks_queue_valid("a b"));
    assert_false(adi_tasks_queue_valid("{x}"));
    char longq[80];
    memset(longq, 'a', 65);
    longq[65] = '\0';
    assert_false(adi_tasks_queue_valid(longq));
    longq[64] = '\0';
    assert_true(adi_tasks_queue_valid(longq));
}

static void test_unique_key(void **state)
{
    (void)state;
    char a[256], b[256], c[256], d[256];
    assert_true(adi_tasks_unique_key("sync", ADI_STR(""), ADI_STR("\x80"), a, sizeof(a)));
    assert_true(adi_tasks_unique_key("sync", ADI_STR_NULL, ADI_STR("\x80"), b, sizeof(b)));
    assert_string_equal(a, b); /* no tenant either way */
    assert_true(adi_tasks_unique_key("sync", ADI_STR("t1"), ADI_STR("\x80"), c, sizeof(c)));
    assert_string_not_equal(a, c);
    assert_true(adi_tasks_unique_key("sync2", ADI_STR(""), ADI_STR("\x80"), d, sizeof(d)));
    assert_string_not_equal(a, d);
    assert_int_equal(strncmp(a, "task:unique:sync:", 17), 0);
    assert_int_equal(strlen(a), 17 + 64);
    /* tenant "t1" + args "" differs from tenant "t" + args "1": the NUL separates them. */
    assert_true(adi_tasks_unique_key("x", ADI_STR("t1"), ADI_STR(""), a, sizeof(a)));
    assert_true(adi_tasks_unique_key("x", ADI_STR("t"), ADI_STR("1"), b, sizeof(b)));
    assert_string_not_equal(a, b);
    assert_false(adi_tasks_unique_key("x", ADI_STR(""), ADI_STR(""), a, 20));
}

static void test_backoff(void **state)
{
    (void)state;
    /* Full jitter: never above min(max, base * 2^attempt), reaches it, never negative. */
    for (int attempt = 0; attempt < 80; attempt++) {
        int64_t cap = 1000;
        for (int i = 0; i < attempt && cap < 600000; i++)
            cap = cap * 2 > 600000 ? 600000 : cap * 2;
        uint64_t rnds[] = {0, 1, 12345, UINT64_MAX, UINT64_MAX / 3, (uint64_t)cap};
        for (size_t k = 0; k < sizeof(rnds) / sizeof(rnds[0]); k++) {
            int64_t v = tr_backoff_ms(attempt, 1000, 600000, rnds[k]);
            assert_true(v >= 0 && v <= cap);
        }
        assert_int_equal(tr_backoff_ms(attempt, 1000, 600000, (uint64_t)cap), cap);
        assert_int_equal(tr_backoff_ms(attempt, 1000, 600000, 0), 0);
    }
    assert_int_equal(tr_backoff_ms(0, 1000, 600000, 1000), 1000);
    assert_int_equal(tr_backoff_ms(3, 1000, 600000, 8000), 8000);
    assert_int_equal(tr_backoff_ms(3, 1000, 600000, 8001), 0);             /* modulo 8001 */
    assert_int_equal(tr_backoff_ms(1000, INT64_MAX / 2, INT64_MAX, 5), 5); /* no overflow */
    assert_int_equal(tr_backoff_ms(2, 0, -5, 7), 7 % 2);                   /* both clamped to 1 */
    assert_int_equal(tr_backoff_ms(-3, 100, 50, 1000), 1000 % 101);        /* max < base */
}

static void test_queues_parse(void **state)
{
    (void)state;
    char q[TR_QUEUES_MAX][ADI_TASKS_QUEUE_MAX + 1];
    size_t n = 0;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(tr_queues_parse("default", q, &n, &err), ADI_OK);
    assert_int_equal(n, 1);
    assert_string_equal(q[0], "default");
    assert_int_equal(tr_queues_parse(" high , default,low ,", q, &n, &err), ADI_OK);
    assert_int_equal(n, 3);
    assert_string_equal(q[0], "high");
    assert_string_equal(q[1], "default");
    assert_string_equal(q[2], "low");
    const char *bad[] = {"", " ", ",", "a,,b", "a,a", "UPPER", "a:b", "x y"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        adi_error_clear(&err);
        assert_int_equal(tr_queues_parse(bad[i], q, &n, &err), ADI_INVALID);
        assert_non_null(strstr(err.message, "TASK_QUEUES"));
    }
    char many[512] = "";
    for (int i = 0; i <= TR_QUEUES_MAX; i++) {
        char one[16];
        snprintf(one, sizeof(one), "%sq%d", i ? "," : "", i);
        strcat(many, one);
    }
    assert_int_equal(tr_queues_parse(many, q, &n, &err), ADI_INVALID);
}

static adi_err noop(tr_task_ctx_t *ctx, const adi_empty *args, adi_error_t *err)
{
    (void)ctx, (void)args, (void)err;
    return ADI_OK;
}
TR_TASK(row_a, "alpha", adi_empty, noop, 0, 0);
TR_TASK(row_b, "beta", adi_empty, noop, 3, 1000);

static void test_task_find(void **state)
{
    (void)state;
    const tr_task_def_t *const tasks[] = {&row_a, &row_b, NULL};
    assert_ptr_equal(tr_task_find(tasks, ADI_STR("alpha")), &row_a);
    assert_ptr_equal(tr_task_find(tasks, ADI_STR("beta")), &row_b);
    assert_null(tr_task_find(tasks, ADI_STR("alph")));
    assert_null(tr_task_find(tasks, ADI_STR("alphax")));
    assert_null(tr_task_find(tasks, ADI_STR_NULL));
    assert_null(tr_task_find(NULL, ADI_STR("alpha")));
    assert_int_equal(row_b.max_attempts, 3);
    assert_string_equal(row_b.default_queue, "default");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_names), cmocka_unit_test(test_unique_key),
        cmocka_unit_test(test_backoff),     cmocka_unit_test(test_queues_parse),
        cmocka_unit_test(test_task_find),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
