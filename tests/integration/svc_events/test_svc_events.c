/* SPDX-License-Identifier: MIT */
/*
 * libs/svc's event consumers (adi_svc_def_t.consumers) in-process against real Redis and
 * PostgreSQL. Each test has a service name, an event stream and a Postgres schema of its own, so
 * the tests run in parallel with everything else. The consumer reads audit_event messages (a
 * message with a tenant_id) and its handler does what the event's `action` asks:
 *
 *   ok        records the event (and what the handler saw) in <schema>.seen
 *   publish   records it and publishes it again on <stream>:out (sent after the commit)
 *   flaky     fails with ADI_UNAVAILABLE the first time, then records it
 *   internal  always fails with ADI_INTERNAL (a poison entry)
 *   invalid   always fails with ADI_INVALID
 *
 * Covered: entries are decoded, run in a transaction scoped to the event's tenant with the
 * documented ctx fields, committed and acknowledged; undecodable, empty and invalid entries are
 * dropped without running the handler; a transient failure is left pending and redelivered by
 * XAUTOCLAIM; a poison entry is dropped after ADI_SVC_EVENT_MAX_ATTEMPTS runs, a bad-input
 * failure at once; events published by a handler are sent after its commit; several threads share
 * a group; an ADI_SVC_NOTX consumer runs outside any transaction; bad consumer rows are refused
 * by adi_svc_new; stopping retires the consumers.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adi/svc.h"
#include "itest.h"

#define TENANT_A "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
#define TENANT_B "6f1c0f6e-9a51-4a87-bb1c-0d3b7a0c1a11"

/* The test's state, handed to handlers as ctx->app. */
typedef struct app {
    char schema[64];         /* per-test Postgres schema */
    char out[160];           /* stream the "publish" action writes to */
    atomic_int flaky_calls;  /* runs of "flaky" events */
    atomic_int poison_calls; /* runs of "internal" events */
    atomic_int bad_calls;    /* runs of "invalid" events */
    atomic_int all_calls;    /* runs of any event */
} app_t;

static adi_err app_init(const adi_svc_config_t *common, void *cfg, void **app, adi_error_t *err)
{
    (void)common;
    (void)err;
    *app = cfg;
    return ADI_OK;
}

static adi_err on_event(adi_ctx_t *ctx, const audit_event *ev, adi_error_t *err)
{
    app_t *app = ctx->app;
    atomic_fetch_add(&app->all_calls, 1);
    if (adi_str_eq_c(ev->action, "internal")) {
        atomic_fetch_add(&app->poison_calls, 1);
        return adi_error_set(err, ADI_INTERNAL, "boom");
    }
    if (adi_str_eq_c(ev->action, "invalid")) {
        atomic_fetch_add(&app->bad_calls, 1);
        return adi_error_set(err, ADI_INVALID, "never");
    }
    if (adi_str_eq_c(ev->action, "flaky") && atomic_fetch_add(&app->flaky_calls, 1) == 0)
        return adi_error_set(err, ADI_UNAVAILABLE, "try later");
    const adi_principal *p = ctx->principal;
    adi_str_t sql = adi_pool_printf(
        ctx->pool,
        "INSERT INTO %s.seen (id, tenant, scoped, principal_tenant, entry, op_null) "
        "VALUES ($1, $2, current_setting('app.tenant_id', true), $3, $4, $5) "
        "ON CONFLICT (id) DO NOTHING",
        app->schema);
    adi_str_t params[5] = {ev->id, ev->tenant_id, p != NULL ? p->tenant_id : ADI_STR(""),
                           adi_str_c(ctx->request_id),
                           ctx->op == NULL ? ADI_STR("t") : ADI_STR("f")};
    adi_err rc = adi_db_exec(ctx->db, NULL, sql.ptr, 5, params, NULL, err);
    if (rc != ADI_OK)
        return rc;
    if (adi_str_eq_c(ev->action, "publish"))
        adi_svc_publish(ctx, app->out, &audit_event__desc, ev);
    return ADI_OK;
}

/* The generated row; each test copies it with its own stream and group. */
ADI_SVC_CONSUMER(template_row, "unused", "unused", audit_event, tenant_id, on_event);

/* ---- fixture ---------------------------------------------------------------------------- */

typedef struct fix {
    char name[48];                     /* service name and schema, unique per test */
    char stream[128];                  /* the event stream */
    char group[64];                    /* its consumer group */
    app_t app;                         /* handler state */
    adi_svc_consumer_t row;            /* the consumer */
    const adi_svc_consumer_t *rows[2]; /* the consumer table */
    adi_svc_def_t def;                 /* the test service */
    adi_svc_config_t cfg;              /* its configuration */
    adi_svc_t *svc;                    /* running service, NULL when stopped */
    adi_bus_t *bus;                    /* test client */
    adi_db_t *db;                      /* admin connection */
    adi_pool_t pool;                   /* scratch */
    int sent;                          /* entries added to the stream */
} fix_t;

static int setup(void **state)
{
    fix_t *f = calloc(1, sizeof(*f));
    itest_unique(f->name, sizeof(f->name), "tev");
    snprintf(f->stream, sizeof(f->stream), "ev:{%s}:test", f->name);
    snprintf(f->group, sizeof(f->group), "%s-grp", f->name);
    snprintf(f->app.schema, sizeof(f->app.schema), "%s", f->name);
    snprintf(f->app.out, sizeof(f->app.out), "ev:{%s}:out", f->name);
    f->db = itest_db();
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "CREATE SCHEMA %s;"
             "CREATE TABLE %s.adi_idempotency (request_id text PRIMARY KEY, op text NOT NULL,"
             " reply bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now());"
             "CREATE TABLE %s.seen (id text PRIMARY KEY, tenant text, scoped text,"
             " principal_tenant text, entry text, op_null text);",
             f->name, f->name, f->name);
    itest_sql(f->db, sql);
    f->row = template_row;
    f->row.stream = f->stream;
    f->row.group = f->group;
    f->rows[0] = &f->row;
    f->def = (adi_svc_def_t){.name = f->name,
                             .schema = f->app.schema,
                             .cfg = &f->app,
                             .init = app_init,
                             .consumers = f->rows};
    adi_svc_config_defaults(&f->cfg, 0);
    f->cfg.redis_url = itest_env("REDIS_URL");
    f->cfg.database_url = itest_env("DATABASE_URL");
    f->cfg.workers = 1;
    f->cfg.consumer_name = f->name;
    f->cfg.reclaim_idle_ms = 100; /* redeliveries come quickly */
    f->bus = itest_bus(NULL);
    adi_pool_init(&f->pool);
    *state = f;
    return 0;
}

static void start(fix_t *f)
{
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_svc_new(&f->def, &f->cfg, NULL, &f->svc, &err) != ADI_OK)
        fail_msg("adi_svc_new: %s", err.message);
    if (adi_svc_start(f->svc, &err) != ADI_OK)
        fail_msg("adi_svc_start: %s", err.message);
}

static void stop(fix_t *f)
{
    if (f->svc == NULL)
        return;
    adi_svc_stop(f->svc);
    assert_true(adi_svc_wait(f->svc, 60000));
    adi_svc_free(f->svc);
    f->svc = NULL;
}

static int teardown(void **state)
{
    fix_t *f = *state;
    stop(f);
    char sql[256];
    snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", f->name);
    itest_sql(f->db, sql);
    adi_db_free(f->db);
    adi_bus_free(f->bus);
    adi_pool_dispose(&f->pool);
    itest_redis_cleanup(0, f->name);
    free(f);
    return 0;
}

/* XADDs raw bytes as the "m" field; returns the entry id in the pool. */
static const char *add_raw(fix_t *f, adi_str_t bytes)
{
    char id[ADI_BUS_ID_MAX];
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_bus_add(f->bus, f->stream, bytes, id, &err) != ADI_OK)
        fail_msg("XADD: %s", err.message);
    f->sent++;
    return adi_pool_strdup(&f->pool, adi_str_c(id)).ptr;
}

/* Adds an audit_event with `action` for tenant `tid`; writes its event id to `id` (37 bytes). */
static const char *add_event(fix_t *f, const char *action, const char *tid, char id[37])
{
    adi_uuid_v4(id);
    audit_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.id = adi_str_c(id);
    ev.tenant_id = adi_str_c(tid);
    ev.action = adi_str_c(action);
    ev.resource_type = ADI_STR("test");
    ev.created_at_us = adi_now_us();
    return add_raw(f, adi_proto_encode_pool(&audit_event__desc, &ev, &f->pool));
}

static void nap_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

/*
 * Polls (up to 60 s) until the group has read every entry sent and holds none pending: every
 * entry was then handled and acknowledged or dropped.
 */
static void wait_drained(fix_t *f)
{
    for (int i = 0; i < 3000; i++) {
        adi_bus_group_info_t gi;
        adi_error_t err;
        adi_error_clear(&err);
        if (adi_bus_group_info(f->bus, f->stream, f->group, &gi, &err) == ADI_OK &&
            gi.entries_read >= f->sent && gi.pending == 0 && gi.lag == 0)
            return;
        nap_ms(20);
    }
    fail_msg("consumer group %s did not drain", f->group);
}

static long long seen(fix_t *f, const char *where)
{
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.seen WHERE %s", f->name, where);
    return itest_sql_int(f->db, sql, NULL);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_consumed_in_tenant_scope(void **state)
{
    fix_t *f = *state;
    f->row.threads = 2; /* two threads share the group */
    start(f);
    char id[37];
    const char *first_entry = add_event(f, "ok", TENANT_A, id);
    for (int i = 1; i < 20; i++)
        add_event(f, "ok", i % 2 ? TENANT_B : TENANT_A, id);
    wait_drained(f);
    assert_int_equal(seen(f, "true"), 20);
    assert_int_equal(seen(f, "scoped = tenant AND principal_tenant = tenant AND op_null = 't'"),
                     20);
    assert_int_equal(seen(f, "tenant = '" TENANT_B "'"), 10);
    char where[128];
    snprintf(where, sizeof(where), "entry = '%s'", first_entry);
    assert_int_equal(seen(f, where), 1); /* ctx->request_id is the stream entry id */
    assert_int_equal(atomic_load(&f->app.all_calls), 20);
}

static void test_bad_entries_dropped(void **state)
{
    fix_t *f = *state;
    start(f);
    add_raw(f, ADI_STR("\xc1 not msgpack"));
    audit_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.id = ADI_STR("not-a-uuid");
    ev.tenant_id = ADI_STR(TENANT_A);
    ev.action = ADI_STR("ok");
    ev.resource_type = ADI_STR("test");
    add_raw(f, adi_proto_encode_pool(&audit_event__desc, &ev, &f->pool)); /* bad uuid */
    ev.id = ADI_STR("0b7e4c1e-2f0b-4c55-9c7b-6f1c0f6e9a51");
    ev.action = ADI_STR_NULL;
    add_raw(f, adi_proto_encode_pool(&audit_event__desc, &ev, &f->pool)); /* action missing */
    const char *argv[5] = {"XADD", f->stream, "*", "other", "x"};
    itest_redis_int(0, 5, argv); /* no "m" field */
    f->sent++;
    char id[37];
    add_event(f, "ok", TENANT_A, id); /* the consumer carries on after them */
    wait_drained(f);
    assert_int_equal(atomic_load(&f->app.all_calls), 1);
    assert_int_equal(seen(f, "true"), 1);
}

static void test_transient_failure_redelivered(void **state)
{
    fix_t *f = *state;
    start(f);
    char id[37];
    add_event(f, "flaky", TENANT_A, id);
    wait_drained(f); /* pending until XAUTOCLAIM ran it again */
    assert_int_equal(atomic_load(&f->app.flaky_calls), 2);
    assert_int_equal(seen(f, "true"), 1);
}

static void test_poison_and_bad_input_dropped(void **state)
{
    fix_t *f = *state;
    start(f);
    char id[37];
    add_event(f, "internal", TENANT_A, id);
    add_event(f, "invalid", TENANT_B, id);
    add_event(f, "ok", TENANT_B, id);
    wait_drained(f);
    assert_int_equal(atomic_load(&f->app.poison_calls), ADI_SVC_EVENT_MAX_ATTEMPTS);
    assert_int_equal(atomic_load(&f->app.bad_calls), 1);
    assert_int_equal(seen(f, "true"), 1);
}

static void test_publish_after_commit(void **state)
{
    fix_t *f = *state;
    start(f);
    char id[37];
    add_event(f, "publish", TENANT_A, id);
    adi_bus_batch_t b;
    adi_error_t err;
    adi_error_clear(&err);
    char after[ADI_BUS_ID_MAX] = "0-0";
    /* Blocks until the event is published (60 s at most). */
    assert_int_equal(adi_bus_read(f->bus, f->app.out, after, 10, 60000, &b, &err), ADI_OK);
    assert_int_equal(b.n, 1);
    audit_event *ev = adi_pool_alloc(&f->pool, sizeof(*ev));
    assert_int_equal(adi_proto_decode(&audit_event__desc, b.items[0].msg.ptr, b.items[0].msg.len,
                                      &f->pool, ev, &err),
                     ADI_OK);
    assert_true(adi_str_eq_c(ev->id, id));
    adi_bus_batch_dispose(&b);
    wait_drained(f);
    assert_int_equal(seen(f, "true"), 1); /* published only after this row was committed */
}

/* ADI_SVC_NOTX: the handler gets the bare connection, no transaction and no tenant scope. */
static void test_notx_consumer(void **state)
{
    fix_t *f = *state;
    f->row.flags = ADI_SVC_NOTX;
    start(f);
    char id[37];
    add_event(f, "ok", TENANT_A, id);
    wait_drained(f);
    assert_int_equal(seen(f, "coalesce(scoped, '') = '' AND principal_tenant = tenant"), 1);
}

static void test_bad_rows_refused(void **state)
{
    fix_t *f = *state;
    adi_error_t err;
    const char *bad_groups[] = {"", "Upper", "has space", NULL};
    for (int i = 0; bad_groups[i] != NULL; i++) {
        f->row.group = bad_groups[i];
        adi_error_clear(&err);
        assert_int_equal(adi_svc_new(&f->def, &f->cfg, NULL, &f->svc, &err), ADI_INVALID);
        assert_null(f->svc);
    }
    f->row.group = f->group;
    adi_svc_consumer_t twin = f->row;
    const adi_svc_consumer_t *rows[3] = {&f->row, &twin, NULL};
    f->def.consumers = rows;
    adi_error_clear(&err);
    assert_int_equal(adi_svc_new(&f->def, &f->cfg, NULL, &f->svc, &err), ADI_INVALID);
    twin.group = "another";
    twin.msg = NULL;
    adi_error_clear(&err);
    assert_int_equal(adi_svc_new(&f->def, &f->cfg, NULL, &f->svc, &err), ADI_INVALID);
    twin.msg = &audit_event__desc;
    twin.threads = 65;
    adi_error_clear(&err);
    assert_int_equal(adi_svc_new(&f->def, &f->cfg, NULL, &f->svc, &err), ADI_INVALID);
    twin.threads = 0; /* = WORKERS */
    adi_error_clear(&err);
    assert_int_equal(adi_svc_new(&f->def, &f->cfg, NULL, &f->svc, &err), ADI_OK);
    adi_svc_free(f->svc);
    f->svc = NULL;
    f->def.consumers = f->rows;
}

static void test_stop_retires_consumers(void **state)
{
    fix_t *f = *state;
    f->row.threads = 3;
    start(f);
    char id[37];
    add_event(f, "ok", TENANT_A, id);
    wait_drained(f);
    adi_bus_group_info_t gi;
    adi_error_t err;
    adi_error_clear(&err);
    stop(f);
    assert_int_equal(adi_bus_group_info(f->bus, f->stream, f->group, &gi, &err), ADI_OK);
    assert_int_equal(gi.consumers, 0);
    assert_int_equal(gi.pending, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_consumed_in_tenant_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_entries_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transient_failure_redelivered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poison_and_bad_input_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish_after_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notx_consumer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_rows_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_retires_consumers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
