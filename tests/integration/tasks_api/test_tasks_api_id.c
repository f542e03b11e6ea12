/* SPDX-License-Identifier: MIT */
/*
 * What makes POST /api/tasks/ safe against a redelivered request (services/task-runner/ops):
 * adi_tasks_derive_id gives the same RFC 9562 version-8 UUID for the same seed (a fixed vector,
 * computed independently with Python's hashlib) and different ones for different seeds; and
 * adi_tasks_enqueue under a caller-chosen id enqueues once: a repeat (immediate or delayed)
 * leaves the stream, the delayed set and the state as the first call made them. Bad ids are
 * refused on "id"; enqueueing without an id still makes a fresh one. Works on a queue named
 * uniquely for the process in Redis database RDB, deleted at the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adi/keys.h"
#include "adi/messages.h"
#include "adi/tasks.h"
#include "itest.h"

#define RDB 9

typedef struct fx {
    char redis_url[256]; /* REDIS_URL with database RDB */
    char queue[48];      /* this process's queue */
    char stream[96];     /* tasks:<queue> */
    char delayed[112];   /* tasks:<queue>:delayed */
    char seed[96];       /* unique seed prefix of this process */
    adi_bus_t *bus;      /* the test's client */
    char ids[8][37];     /* tasks made (their state keys are deleted at the end) */
    int nids;            /* used entries of ids[] */
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    snprintf(f->redis_url, sizeof(f->redis_url), "%s/%d", itest_env("REDIS_URL"), RDB);
    itest_unique(f->queue, sizeof(f->queue), "tapi");
    snprintf(f->stream, sizeof(f->stream), ADI_KEY_TASKS_FMT, f->queue);
    snprintf(f->delayed, sizeof(f->delayed), ADI_KEY_TASKS_DELAYED_FMT, f->queue);
    snprintf(f->seed, sizeof(f->seed), "tasks.enqueue:%s/", f->queue);
    adi_bus_opts_t o = {.url = f->redis_url};
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_bus_new(&o, &f->bus, &err), ADI_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    itest_redis_cleanup(RDB, f->queue);
    for (int i = 0; i < f->nids; i++) {
        char key[64];
        snprintf(key, sizeof(key), ADI_KEY_TASK_STATE_FMT, f->ids[i]);
        const char *del[2] = {"DEL", key};
        itest_redis_int(RDB, 2, del);
    }
    adi_bus_free(f->bus);
    free(f);
    return 0;
}

static long long count(const char *cmd, const char *key)
{
    const char *argv[2] = {cmd, key};
    return itest_redis_int(RDB, 2, argv);
}

/* The derived id of this process's seed prefix + `req` (kept for cleanup). */
static const char *derived(fx_t *f, const char *req)
{
    assert_true(f->nids < 8);
    char seed[160];
    snprintf(seed, sizeof(seed), "%s%s", f->seed, req);
    adi_tasks_derive_id(adi_str_c(seed), f->ids[f->nids]);
    return f->ids[f->nids++];
}

static void test_derive_id(void **state)
{
    (void)state;
    char a[37], b[37], c[37];
    adi_tasks_derive_id(ADI_STR("tasks.enqueue:abc"), a);
    /* python3: uuid.UUID(bytes=sha256(b"tasks.enqueue:abc")[:16] with version 4 / RFC variant) */
    assert_string_equal(a, "2c37cdc0-e90a-43a9-8729-457affee48ad");
    adi_tasks_derive_id(ADI_STR("tasks.enqueue:abc"), b);
    assert_string_equal(a, b);
    adi_tasks_derive_id(ADI_STR("tasks.enqueue:abd"), c);
    assert_string_not_equal(a, c);
    assert_true(adi_uuid_valid(adi_str_c(c)));
    assert_int_equal(c[14], '4');           /* version 4: what clients' validators expect */
    assert_non_null(strchr("89ab", c[19])); /* RFC 9562 variant */
    adi_tasks_derive_id(ADI_STR_NULL, c);   /* an empty seed is a seed too */
    assert_true(adi_uuid_valid(adi_str_c(c)));
}

/* Field `field` (state, tenant_id or enqueued_at_ms) of task `id`'s state, in `pool`. */
static const char *state_field(fx_t *f, const char *id, const char *field, adi_pool_t *pool)
{
    adi_task_state_t st;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_tasks_state_get(f->bus, id, pool, &st, &err), ADI_OK);
    if (strcmp(field, "enqueued_at_ms") == 0)
        return adi_pool_printf(pool, "%lld", (long long)st.enqueued_at_ms).ptr;
    if (strcmp(field, "tenant_id") == 0)
        return adi_pool_strdup(pool, st.tenant_id).ptr;
    return adi_pool_strdup(pool, st.state).ptr;
}

static void test_repeat_is_noop(void **state)
{
    fx_t *f = *state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    const char *tenant = "0b5e3c4a-5a56-4d7e-9f1a-2b7f6c1d9e01";
    task_tenant_args args = {.tenant_id = ADI_STR("")};
    adi_task_spec_t spec = {
        .queue = f->queue,
        .name = "sync_meta_example",
        .args = adi_proto_encode_pool(&task_tenant_args__desc, &args, &pool),
        .tenant_id = tenant,
        .request_id = "req-1",
        .id = derived(f, "req-1"),
    };
    char id[37], again[37];
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_tasks_enqueue(f->bus, &spec, id, &err), ADI_OK);
    assert_string_equal(id, spec.id);
    const char *first_at = state_field(f, id, "enqueued_at_ms", &pool);
    assert_string_equal(state_field(f, id, "tenant_id", &pool), tenant);
    assert_int_equal(count("XLEN", f->stream), 1);

    /* The redelivery: the same id, nothing new on the stream, the state untouched. */
    assert_int_equal(adi_tasks_enqueue(f->bus, &spec, again, &err), ADI_OK);
    assert_string_equal(again, id);
    assert_int_equal(count("XLEN", f->stream), 1);
    assert_string_equal(state_field(f, id, "enqueued_at_ms", &pool), first_at);
    assert_string_equal(state_field(f, id, "state", &pool), "PENDING");

    /* Even when the repeat asks for uniqueness or a delay, it is the same task. */
    spec.unique = true;
    spec.delay_ms = 60000;
    assert_int_equal(adi_tasks_enqueue(f->bus, &spec, again, &err), ADI_OK);
    assert_string_equal(again, id);
    assert_int_equal(count("XLEN", f->stream), 1);
    assert_int_equal(count("ZCARD", f->delayed), 0);

    /* Another request: another task. */
    spec.unique = false;
    spec.delay_ms = 0;
    spec.id = derived(f, "req-2");
    assert_int_equal(adi_tasks_enqueue(f->bus, &spec, again, &err), ADI_OK);
    assert_string_not_equal(again, id);
    assert_int_equal(count("XLEN", f->stream), 2);
    adi_pool_dispose(&pool);
}

static void test_delayed_repeat_is_noop(void **state)
{
    fx_t *f = *state;
    adi_task_spec_t spec = {
        .queue = f->queue,
        .name = "sync_google_example",
        .delay_ms = 3600 * 1000,
        .id = derived(f, "req-delayed"),
    };
    char id[37];
    adi_error_t err;
    adi_error_clear(&err);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(adi_tasks_enqueue(f->bus, &spec, id, &err), ADI_OK);
        assert_string_equal(id, spec.id);
    }
    assert_int_equal(count("ZCARD", f->delayed), 1);
    assert_int_equal(count("XLEN", f->stream), 0);
}

static void test_bad_ids_and_fresh_ids(void **state)
{
    fx_t *f = *state;
    static const char *const bad[] = {"not-a-uuid", "2C37CDC0-E90A-83A9-8729-457AFFEE48AD",
                                      "2c37cdc0-e90a-83a9-8729-457affee48ad0"};
    char id[37];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        adi_task_spec_t spec = {.queue = f->queue, .name = "t", .id = bad[i]};
        adi_error_t err;
        adi_error_clear(&err);
        assert_int_equal(adi_tasks_enqueue(f->bus, &spec, id, &err), ADI_INVALID);
        assert_int_equal(err.nfields, 1);
        assert_string_equal(err.fields[0].field, "id");
        assert_string_equal(id, "");
    }
    assert_int_equal(count("XLEN", f->stream), 0);

    /* Without an id (every producer before the API): a fresh one each time. */
    adi_task_spec_t spec = {.queue = f->queue, .name = "t", .id = ""};
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_tasks_enqueue(f->bus, &spec, f->ids[f->nids++], &err), ADI_OK);
    spec.id = NULL;
    assert_int_equal(adi_tasks_enqueue(f->bus, &spec, f->ids[f->nids++], &err), ADI_OK);
    assert_string_not_equal(f->ids[f->nids - 1], f->ids[f->nids - 2]);
    assert_int_equal(count("XLEN", f->stream), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_derive_id),
        cmocka_unit_test_setup_teardown(test_repeat_is_noop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delayed_repeat_is_noop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_ids_and_fresh_ids, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
