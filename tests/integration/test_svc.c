/* SPDX-License-Identifier: MIT */
/*
 * libs/svc's worker machinery in-process against real Redis and PostgreSQL, with test-only
 * operations whose descriptors are defined here by hand (bound to handlers with ADI_SVC_HANDLER,
 * as a service does with the generated ones). Each test gets a service name and a Postgres schema
 * of its own (holding adi_idempotency and an `execs` table that counts handler executions), so
 * the tests can run in parallel with everything else.
 *
 * Covered: request/reply round trip in a tenant-scoped transaction, validation (400 with fields),
 * unknown op (404), internal ops (403 unless a service calls), handler errors roll back,
 * sys.health, a service-to-service call (adi_svc_call), idempotent mutating ops (same request id
 * twice, and a redelivery reclaimed from a dead consumer: executed once, answered identically),
 * an entry past its deadline acknowledged without running, malformed entries dropped, and
 * draining on stop (nothing left pending), and sys.settled (a committed request is reported
 * committed; one that has not committed is fenced and can never commit afterwards).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adi/svc.h"
#include "itest.h"

#define TENANT "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
#define USER   "6f1c0f6e-9a51-4a87-bb1c-0d3b7a0c1a11"

/* ---- test operations (hand-written descriptors; service name filled in at setup) --------- */

static adi_op_desc_t op_echo = {"t.echo", NULL, &adi_reply_field__desc, &adi_reply_field__desc, 0};
static adi_op_desc_t op_count = {"t.count", NULL, &adi_reply_field__desc, &adi_reply_field__desc,
                                 ADI_OP_MUTATING};
static adi_op_desc_t op_fail = {"t.fail", NULL, &adi_reply_field__desc, &adi_reply_field__desc,
                                ADI_OP_MUTATING};
static adi_op_desc_t op_internal = {"t.internal", NULL, &adi_empty__desc, &adi_empty__desc,
                                    ADI_OP_INTERNAL};
static adi_op_desc_t op_gated = {"t.gated", NULL, &adi_reply_field__desc, &adi_reply_field__desc,
                                 ADI_OP_MUTATING};
static adi_op_desc_t op_relay = {"t.relay", NULL, &adi_reply_field__desc, &adi_reply_field__desc,
                                 0};

/* The test's schema, handed to handlers as ctx->app by init. */
typedef struct app {
    char schema[64]; /* per-test Postgres schema */
} app_t;

static adi_err app_init(const adi_svc_config_t *common, void *cfg, void **app, adi_error_t *err)
{
    (void)common;
    (void)err;
    *app = cfg;
    return ADI_OK;
}

/* Echoes the request and reports the tenant the transaction was scoped to. */
static adi_err t_echo(adi_ctx_t *ctx, const adi_reply_field *req, adi_reply_field *rep,
                      adi_error_t *err)
{
    adi_db_res_t *res = NULL;
    adi_err rc = adi_db_exec(ctx->db, ctx->pool, "SELECT current_setting('app.tenant_id', true)", 0,
                             NULL, &res, err);
    if (rc != ADI_OK)
        return rc;
    adi_str_t scope = adi_db_get(res, 0, 0);
    const adi_principal *p = ctx->principal;
    rep->field = req->field;
    rep->message =
        adi_pool_printf(ctx->pool, "%.*s|%s|%.*s", (int)req->message.len, req->message.ptr,
                        scope.ptr ? scope.ptr : "", p ? (int)p->service.len : 0,
                        p && p->service.ptr ? p->service.ptr : "");
    return ADI_OK;
}

/* Records one execution in <schema>.execs and answers with a value that differs every run. */
static adi_err t_count(adi_ctx_t *ctx, const adi_reply_field *req, adi_reply_field *rep,
                       adi_error_t *err)
{
    const app_t *app = ctx->app;
    adi_str_t sql = adi_pool_printf(ctx->pool,
                                    "INSERT INTO %s.execs (request_id, k) VALUES ($1, $2) "
                                    "RETURNING clock_timestamp()::text",
                                    app->schema);
    adi_str_t params[2] = {adi_str_c(ctx->request_id), req->field};
    adi_db_res_t *res = NULL;
    adi_err rc = adi_db_exec(ctx->db, ctx->pool, sql.ptr, 2, params, &res, err);
    if (rc != ADI_OK)
        return rc;
    rep->field = req->field;
    rep->message = adi_pool_strdup(ctx->pool, adi_db_get(res, 0, 0));
    ctx->status = 201;
    return ADI_OK;
}

/* Waits for the test's advisory lock (key in req->field), then counts like t.count. */
static adi_err t_gated(adi_ctx_t *ctx, const adi_reply_field *req, adi_reply_field *rep,
                       adi_error_t *err)
{
    adi_err rc = adi_db_exec(ctx->db, NULL, "SELECT pg_advisory_xact_lock_shared($1::bigint)", 1,
                             &req->field, NULL, err);
    if (rc != ADI_OK)
        return rc;
    return t_count(ctx, req, rep, err);
}

/* Writes, then fails: the write must be rolled back and nothing stored for the request id. */
static adi_err t_fail(adi_ctx_t *ctx, const adi_reply_field *req, adi_reply_field *rep,
                      adi_error_t *err)
{
    (void)rep;
    const app_t *app = ctx->app;
    adi_str_t sql = adi_pool_printf(ctx->pool,
                                    "INSERT INTO %s.execs (request_id, k) VALUES "
                                    "($1, $2)",
                                    app->schema);
    adi_str_t params[2] = {adi_str_c(ctx->request_id), req->field};
    adi_err rc = adi_db_exec(ctx->db, NULL, sql.ptr, 2, params, NULL, err);
    if (rc != ADI_OK)
        return rc;
    return adi_error_set(err, ADI_CONFLICT, "A thing with that name already exists.");
}

static adi_err t_internal(adi_ctx_t *ctx, const adi_empty *req, adi_empty *rep, adi_error_t *err)
{
    (void)ctx;
    (void)req;
    (void)rep;
    (void)err;
    return ADI_OK;
}

/* The test service's chore: one row in execs and one event, committed together. */
static adi_err t_chore(adi_ctx_t *ctx, adi_error_t *err)
{
    const app_t *app = ctx->app;
    adi_err rc = adi_db_begin(ctx->db, ADI_STR_NULL, err);
    if (rc != ADI_OK)
        return rc;
    adi_str_t sql = adi_pool_printf(
        ctx->pool, "INSERT INTO %s.execs (request_id, k) VALUES ($1, 'chore')", app->schema);
    adi_str_t id = adi_str_c(ctx->request_id);
    rc = adi_db_exec(ctx->db, NULL, sql.ptr, 1, &id, NULL, err);
    if (rc != ADI_OK) {
        adi_db_rollback(ctx->db);
        return rc;
    }
    adi_reply_field ev = {.field = ADI_STR("chore"), .message = id};
    adi_str_t stream = adi_pool_printf(ctx->pool, "%s:chore-events", app->schema);
    adi_svc_publish(ctx, stream.ptr, &adi_reply_field__desc, &ev);
    return adi_svc_commit(ctx, err);
}

/* Calls t.echo of the same service over the bus (needs a second free worker). */
static adi_err t_relay(adi_ctx_t *ctx, const adi_reply_field *req, adi_reply_field *rep,
                       adi_error_t *err)
{
    return adi_svc_call(ctx, &op_echo, NULL, req, rep, err);
}

ADI_SVC_HANDLER(row_echo, op_echo, adi_reply_field, adi_reply_field, t_echo);
ADI_SVC_HANDLER(row_count, op_count, adi_reply_field, adi_reply_field, t_count);
ADI_SVC_HANDLER(row_gated, op_gated, adi_reply_field, adi_reply_field, t_gated);
ADI_SVC_HANDLER(row_fail, op_fail, adi_reply_field, adi_reply_field, t_fail);
ADI_SVC_HANDLER(row_internal, op_internal, adi_empty, adi_empty, t_internal);
ADI_SVC_HANDLER(row_relay, op_relay, adi_reply_field, adi_reply_field, t_relay);

static const adi_svc_handler_t *const handlers[] = {
    &row_echo, &row_count, &row_fail, &row_internal, &row_relay, &row_gated, NULL};

/* ---- fixture ---------------------------------------------------------------------------- */

typedef struct fix {
    char name[48];              /* service name, unique per test */
    char stream[128];           /* its request stream */
    char reply[160];            /* the test client's reply stream */
    app_t app;                  /* schema */
    adi_svc_def_t def;          /* the test service */
    adi_svc_config_t cfg;       /* its configuration */
    adi_svc_t *svc;             /* the running service, NULL when not started */
    adi_bus_t *bus;             /* the test client */
    adi_db_t *db;               /* admin connection */
    adi_pool_t pool;            /* replies */
    char after[ADI_BUS_ID_MAX]; /* reply stream read position */
    adi_principal principal;    /* a tenant user */
} fix_t;

static int setup(void **state)
{
    fix_t *f = calloc(1, sizeof(*f));
    itest_unique(f->name, sizeof(f->name), "tsvc");
    snprintf(f->stream, sizeof(f->stream), ADI_KEY_REQ_FMT, f->name);
    snprintf(f->reply, sizeof(f->reply), "svc:{%s}:client:rep", f->name);
    snprintf(f->app.schema, sizeof(f->app.schema), "%s", f->name);
    adi_op_desc_t *ops[] = {&op_echo, &op_count, &op_fail, &op_internal, &op_relay, &op_gated};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        ops[i]->service = f->name;

    f->db = itest_db();
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "CREATE SCHEMA %s;"
             "CREATE TABLE %s.adi_idempotency (request_id text PRIMARY KEY, op text NOT NULL,"
             " reply bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now());"
             "CREATE TABLE %s.execs (request_id text NOT NULL, k text NOT NULL);",
             f->name, f->name, f->name);
    itest_sql(f->db, sql);

    f->def = (adi_svc_def_t){.name = f->name,
                             .schema = f->app.schema,
                             .handlers = handlers,
                             .cfg = &f->app,
                             .init = app_init};
    adi_svc_config_defaults(&f->cfg, 0);
    f->cfg.redis_url = itest_env("REDIS_URL");
    f->cfg.database_url = itest_env("DATABASE_URL");
    f->cfg.workers = 2;
    f->cfg.consumer_name = f->name;
    f->cfg.reclaim_idle_ms = 600000;
    f->bus = itest_bus(f->reply);
    adi_pool_init(&f->pool);
    f->principal.tenant_id = ADI_STR(TENANT);
    f->principal.user_id = ADI_STR(USER);
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

/* Stops the service; afterwards every entry it took has been answered and acknowledged. */
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

static adi_str_t body(fix_t *f, const char *field, const char *message)
{
    adi_reply_field m;
    memset(&m, 0, sizeof(m));
    m.field = adi_str_c(field);
    m.message = adi_str_c(message);
    return adi_proto_encode_pool(&adi_reply_field__desc, &m, &f->pool);
}

/* Sends one request and waits for its reply. */
static adi_reply *request(fix_t *f, const char *id, const char *op, adi_principal *p, adi_str_t b)
{
    adi_envelope env;
    itest_envelope(&env, id, op, f->reply, adi_now_ms() + 60000, p, b);
    itest_send(f->bus, f->stream, &env);
    return itest_wait(f->bus, f->reply, id, f->after, &f->pool);
}

static adi_reply_field *rep_body(fix_t *f, const adi_reply *r)
{
    adi_reply_field *m = adi_pool_alloc(&f->pool, sizeof(*m));
    adi_error_t err;
    adi_error_clear(&err);
    assert_non_null(r->body.ptr);
    assert_int_equal(
        adi_proto_decode(&adi_reply_field__desc, r->body.ptr, r->body.len, &f->pool, m, &err),
        ADI_OK);
    return m;
}

static long long execs(fix_t *f, const char *id)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.execs WHERE request_id = $1", f->name);
    return itest_sql_int(f->db, sql, id);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_round_trip_and_errors(void **state)
{
    fix_t *f = *state;
    start(f);

    adi_reply *r = request(f, "rt-1", "t.echo", &f->principal, body(f, "a", "hello"));
    assert_int_equal(r->status, 200);
    assert_null(r->error);
    adi_reply_field *m = rep_body(f, r);
    assert_true(adi_str_eq_c(m->field, "a"));
    assert_true(adi_str_eq_c(m->message, "hello|" TENANT "|"));

    /* Anonymous: no tenant set in the transaction. */
    r = request(f, "rt-2", "t.echo", NULL, body(f, "a", "anon"));
    assert_int_equal(r->status, 200);
    assert_true(adi_str_eq_c(rep_body(f, r)->message, "anon||"));

    /* Missing required field: 400 with the field named. */
    r = request(f, "rt-3", "t.echo", NULL, body(f, NULL, "x"));
    assert_int_equal(r->status, 400);
    assert_non_null(r->error);
    assert_true(adi_str_eq_c(r->error->code, "invalid"));
    assert_int_equal(r->error->fields.n, 1);
    assert_true(adi_str_eq_c(r->error->fields.items[0].field, "field"));

    /* A body that is not a map: 400. */
    r = request(f, "rt-4", "t.echo", NULL, ADI_STR("\x93\x01\x02\x03"));
    assert_int_equal(r->status, 400);

    /* Unknown operation: 404. */
    r = request(f, "rt-5", "t.nope", NULL, ADI_STR_NULL);
    assert_int_equal(r->status, 404);
    assert_true(adi_str_eq_c(r->error->code, "not_found"));

    /* Internal op: refused to a user, served to a service. */
    r = request(f, "rt-6", "t.internal", &f->principal, ADI_STR_NULL);
    assert_int_equal(r->status, 403);
    adi_principal svcp = f->principal;
    svcp.service = ADI_STR("other");
    r = request(f, "rt-7", "t.internal", &svcp, ADI_STR_NULL);
    assert_int_equal(r->status, 200);

    /* A failing handler: error reply, its writes rolled back, no reply stored. */
    r = request(f, "rt-8", "t.fail", &f->principal, body(f, "dup", ""));
    assert_int_equal(r->status, 409);
    assert_true(adi_str_eq_c(r->error->message, "A thing with that name already exists."));
    assert_int_equal(execs(f, "rt-8"), 0);
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.adi_idempotency", f->name);
    assert_int_equal(itest_sql_int(f->db, sql, NULL), 0);

    /* sys.health, answered by libs/svc itself. */
    r = request(f, "rt-9", "sys.health", NULL, ADI_STR_NULL);
    assert_int_equal(r->status, 200);
    sys_health_rep *h = adi_pool_alloc(&f->pool, sizeof(*h));
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(
        adi_proto_decode(&sys_health_rep__desc, r->body.ptr, r->body.len, &f->pool, h, &err),
        ADI_OK);
    assert_true(adi_str_eq_c(h->service, f->name));
    assert_true(adi_str_eq_c(h->status, "ok"));
    assert_true(h->database);
    assert_true(adi_str_eq_c(h->version, "0.1.0"));
    assert_true(h->consumer.len > strlen(f->name));

    /* A service-to-service call: t.relay calls t.echo over the bus as this service. */
    r = request(f, "rt-10", "t.relay", &f->principal, body(f, "b", "via"));
    assert_int_equal(r->status, 200);
    m = rep_body(f, r);
    char want[256];
    snprintf(want, sizeof(want), "via|%s|%s", TENANT, f->name);
    assert_true(adi_str_eq_c(m->message, want));
    /* The caller's reply stream carries a TTL, so a killed caller leaves nothing behind. */
    int with_ttl = 0;
    for (int i = 0; i < f->cfg.workers; i++) {
        char key[256];
        snprintf(key, sizeof(key), "svc:{%s}:%s-w%d:rep", f->name, f->name, i);
        const char *pttl[2] = {"PTTL", key};
        long long ms = itest_redis_int(0, 2, pttl);
        assert_true(ms != -1); /* -2: that worker made no call; else a TTL */
        with_ttl += ms > 0;
    }
    assert_int_equal(with_ttl, 1);

    /* Readiness: Redis, Postgres and the group are there. */
    char why[128] = "";
    assert_true(adi_svc_ready(f->svc, why));

    stop(f);
    adi_bus_group_info_t gi;
    assert_int_equal(adi_bus_group_info(f->bus, f->stream, f->name, &gi, &err), ADI_OK);
    assert_int_equal(gi.pending, 0);
    assert_int_equal(gi.lag, 0);
    assert_int_equal(gi.consumers, 0); /* retired on the way out */
}

static void test_mutating_same_id_twice(void **state)
{
    fix_t *f = *state;
    start(f);
    adi_reply *r1 = request(f, "idem-1", "t.count", &f->principal, body(f, "k", ""));
    assert_int_equal(r1->status, 201);
    adi_reply *r2 = request(f, "idem-1", "t.count", &f->principal, body(f, "k", ""));
    assert_int_equal(r2->status, 201);
    /* Executed once, answered identically (the run-specific timestamp is the same). */
    assert_int_equal(execs(f, "idem-1"), 1);
    assert_true(adi_str_eq(r1->body, r2->body));
    assert_true(adi_str_eq(rep_body(f, r1)->message, rep_body(f, r2)->message));

    /* The same request id from another tenant is another request. */
    adi_principal other = f->principal;
    other.tenant_id = ADI_STR("00000000-0000-4000-8000-000000000001");
    adi_reply *r3 = request(f, "idem-1", "t.count", &other, body(f, "k", ""));
    assert_int_equal(r3->status, 201);
    assert_int_equal(execs(f, "idem-1"), 2);

    /* The same request id for another operation is refused. */
    adi_reply *r4 = request(f, "idem-1", "t.fail", &f->principal, body(f, "k", ""));
    assert_int_equal(r4->status, 409);
    assert_int_equal(execs(f, "idem-1"), 2);
}

static void test_concurrent_duplicates(void **state)
{
    fix_t *f = *state;
    /* Both workers run the same request at once: both look the id up (nothing stored yet), both
       run the handler, which waits on an advisory lock this test holds. Released, the first
       commits its reply; the second's insert of the same id conflicts, so it rolls back and
       answers with the stored reply. */
    char key[24];
    unsigned char r[3];
    adi_random(r, sizeof(r));
    snprintf(key, sizeof(key), "%d", 1000000 + (r[0] << 16 | r[1] << 8 | r[2]));
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(%s)", key);
    itest_sql(f->db, sql);
    start(f);
    adi_envelope env;
    itest_envelope(&env, "conc-1", "t.gated", f->reply, adi_now_ms() + 60000, &f->principal,
                   body(f, key, ""));
    itest_send(f->bus, f->stream, &env);
    itest_send(f->bus, f->stream, &env);
    /* Poll until both handlers wait on the lock. */
    int64_t until = adi_mono_ms() + 60000;
    while (itest_sql_int(f->db,
                         "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                         "objid::text::bigint = $1::bigint AND NOT granted",
                         key) < 2) {
        if (adi_mono_ms() > until)
            fail_msg("the two deliveries never ran concurrently");
        struct timespec ts = {0, 5000000L};
        nanosleep(&ts, NULL);
    }
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(%s)", key);
    itest_sql(f->db, sql);
    char after[ADI_BUS_ID_MAX] = "";
    adi_reply *a = itest_wait(f->bus, f->reply, "conc-1", after, &f->pool);
    adi_reply *b = itest_wait(f->bus, f->reply, "conc-1", after, &f->pool);
    assert_int_equal(a->status, 201);
    assert_int_equal(b->status, 201);
    assert_true(adi_str_eq(a->body, b->body));
    assert_int_equal(execs(f, "conc-1"), 1);
}

/* Asks the test service, as service "caller", whether the request with idempotency key `key`
   committed. */
static bool settled(fix_t *f, const char *id, const char *key)
{
    adi_principal svc;
    memset(&svc, 0, sizeof(svc));
    svc.service = ADI_STR("caller");
    sys_settled_req q = {.key = adi_str_c(key)};
    adi_reply *r = request(f, id, "sys.settled", &svc,
                           adi_proto_encode_pool(&sys_settled_req__desc, &q, &f->pool));
    assert_int_equal(r->status, 200);
    sys_settled_rep a;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(
        adi_proto_decode(&sys_settled_rep__desc, r->body.ptr, r->body.len, &f->pool, &a, &err),
        ADI_OK);
    return a.committed;
}

static void test_settled(void **state)
{
    fix_t *f = *state;
    start(f);
    /* The idempotency key of a tenant user's request: tenant/user/service/id. */
    adi_reply *r = request(f, "set-1", "t.count", &f->principal, body(f, "k", ""));
    assert_int_equal(r->status, 201);
    assert_true(settled(f, "ask-1", TENANT "/" USER "//set-1"));
    assert_true(settled(f, "ask-1b", TENANT "/" USER "//set-1")); /* asking changes nothing */

    /* Never seen: not committed, and fenced: the request arriving late is refused, unrun. */
    assert_false(settled(f, "ask-2", TENANT "/" USER "//set-2"));
    assert_false(settled(f, "ask-2b", TENANT "/" USER "//set-2"));
    r = request(f, "set-2", "t.count", &f->principal, body(f, "k", ""));
    assert_int_equal(r->status, 409);
    assert_non_null(r->error);
    assert_non_null(strstr(r->error->message.ptr, "abandoned"));
    assert_int_equal(execs(f, "set-2"), 0);

    /* In flight (its handler waits on a lock this test holds): fenced before it could commit,
       it rolls back when released and answers 409; its write is gone. */
    char key[24];
    unsigned char rb[3];
    adi_random(rb, sizeof(rb));
    snprintf(key, sizeof(key), "%d", 2000000 + (rb[0] << 16 | rb[1] << 8 | rb[2]));
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(%s)", key);
    itest_sql(f->db, sql);
    adi_envelope env;
    itest_envelope(&env, "set-3", "t.gated", f->reply, adi_now_ms() + 60000, &f->principal,
                   body(f, key, ""));
    itest_send(f->bus, f->stream, &env);
    int64_t until = adi_mono_ms() + 60000;
    while (itest_sql_int(f->db,
                         "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                         "objid::text::bigint = $1::bigint AND NOT granted",
                         key) < 1) {
        if (adi_mono_ms() > until)
            fail_msg("the request never started");
        struct timespec ts = {0, 5000000L};
        nanosleep(&ts, NULL);
    }
    assert_false(settled(f, "ask-3", TENANT "/" USER "//set-3"));
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(%s)", key);
    itest_sql(f->db, sql);
    r = itest_wait(f->bus, f->reply, "set-3", f->after, &f->pool);
    assert_int_equal(r->status, 409);
    assert_int_equal(execs(f, "set-3"), 0);

    /* Internal: a client (no service principal) may not ask. */
    sys_settled_req q = {.key = ADI_STR("x")};
    r = request(f, "ask-4", "sys.settled", &f->principal,
                adi_proto_encode_pool(&sys_settled_req__desc, &q, &f->pool));
    assert_int_equal(r->status, 403);
}

static void test_reclaim_redelivery_and_deadline(void **state)
{
    fix_t *f = *state;
    adi_error_t err;
    adi_error_clear(&err);
    /* One worker, so entries it holds itself are never reclaimed from under it. */
    f->cfg.reclaim_idle_ms = 1;
    f->cfg.workers = 1;
    assert_int_equal(adi_bus_ensure_group(f->bus, f->stream, f->name, &err), ADI_OK);

    /* Queued before the service runs: a mutating request twice (same id), one past its
       deadline, one malformed entry and a plain echo. */
    adi_envelope env;
    itest_envelope(&env, "dup-1", "t.count", f->reply, adi_now_ms() + 60000, &f->principal,
                   body(f, "k", ""));
    itest_send(f->bus, f->stream, &env);
    itest_send(f->bus, f->stream, &env);
    itest_envelope(&env, "late-1", "t.count", f->reply, adi_now_ms() - 1, &f->principal,
                   body(f, "k", ""));
    itest_send(f->bus, f->stream, &env);
    assert_int_equal(adi_bus_add(f->bus, f->stream, ADI_STR("\xc1garbage"), NULL, &err), ADI_OK);
    itest_envelope(&env, "echo-1", "t.echo", f->reply, adi_now_ms() + 60000, NULL,
                   body(f, "e", "x"));
    itest_send(f->bus, f->stream, &env);

    /* A consumer takes the first copy of dup-1 and dies holding it. */
    adi_bus_t *dead = itest_bus(NULL);
    adi_bus_batch_t b;
    assert_int_equal(adi_bus_read_group(dead, f->stream, f->name, "dead", 1, 1000, &b, &err),
                     ADI_OK);
    assert_int_equal(b.n, 1);
    adi_bus_batch_dispose(&b);
    adi_bus_free(dead);

    /* The service reads the rest and reclaims the dead consumer's entry. */
    start(f);
    char after[ADI_BUS_ID_MAX] = "";
    adi_reply *a = itest_wait(f->bus, f->reply, "dup-1", after, &f->pool);
    adi_reply *c = itest_wait(f->bus, f->reply, "dup-1", after, &f->pool);
    snprintf(after, sizeof(after), "0-0");
    adi_reply *e = itest_wait(f->bus, f->reply, "echo-1", after, &f->pool);
    assert_int_equal(e->status, 200);
    assert_int_equal(a->status, 201);
    assert_int_equal(c->status, 201);
    assert_true(adi_str_eq(a->body, c->body));
    assert_int_equal(execs(f, "dup-1"), 1);

    stop(f);
    /* Every entry was acknowledged; the late one never ran and got no reply. */
    adi_bus_group_info_t gi;
    assert_int_equal(adi_bus_group_info(f->bus, f->stream, f->name, &gi, &err), ADI_OK);
    assert_int_equal(gi.pending, 0);
    assert_int_equal(gi.lag, 0);
    assert_int_equal(execs(f, "late-1"), 0);
    snprintf(after, sizeof(after), "0-0");
    size_t replies = 0;
    for (;;) {
        assert_int_equal(adi_bus_read(f->bus, f->reply, after, 64, 1, &b, &err), ADI_OK);
        size_t n = b.n;
        for (size_t i = 0; i < n; i++) {
            adi_reply *r = adi_pool_alloc(&f->pool, sizeof(*r));
            adi_str_t copy = adi_pool_strdup(&f->pool, b.items[i].msg);
            assert_int_equal(
                adi_proto_decode(&adi_reply__desc, copy.ptr, copy.len, &f->pool, r, &err), ADI_OK);
            assert_false(adi_str_eq_c(r->id, "late-1"));
        }
        replies += n;
        adi_bus_batch_dispose(&b);
        if (n == 0)
            break;
    }
    assert_int_equal(replies, 3);
}

static void test_bad_definitions(void **state)
{
    fix_t *f = *state;
    adi_error_t err;
    adi_error_clear(&err);
    /* A service may record into metrics it owns. */
    adi_metrics_t *m = adi_metrics_new(f->name);
    adi_svc_t *svc = NULL;
    assert_int_equal(adi_svc_new(&f->def, &f->cfg, m, &svc, &err), ADI_OK);
    assert_ptr_equal(adi_svc_metrics(svc), m);
    assert_string_equal(adi_svc_stream(svc), f->stream);
    adi_svc_free(svc);
    adi_metrics_free(m);

    /* Bad definitions are refused at startup. */
    adi_svc_def_t bad = f->def;
    bad.schema = "x; DROP TABLE y";
    assert_int_equal(adi_svc_new(&bad, &f->cfg, NULL, &svc, &err), ADI_INVALID);
    assert_null(svc);
    static const adi_svc_handler_t *const twice[] = {&row_echo, &row_echo, NULL};
    bad = f->def;
    bad.handlers = twice;
    assert_int_equal(adi_svc_new(&bad, &f->cfg, NULL, &svc, &err), ADI_INVALID);
    bad = f->def;
    bad.name = "other-service";
    assert_int_equal(adi_svc_new(&bad, &f->cfg, NULL, &svc, &err), ADI_INVALID);
    assert_null(svc);
    bad = f->def;
    bad.chore = t_chore; /* a chore without a period */
    assert_int_equal(adi_svc_new(&bad, &f->cfg, NULL, &svc, &err), ADI_INVALID);
    assert_null(svc);
}

/* A periodic chore runs on its own: its transaction commits with the event it published. */
static void test_chore(void **state)
{
    fix_t *f = *state;
    f->def.chore = t_chore;
    f->def.chore_ms = 50;
    start(f);
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.execs WHERE k = 'chore'", f->name);
    int64_t until = adi_mono_ms() + 60000;
    while (itest_sql_int(f->db, sql, NULL) < 2) {
        if (adi_mono_ms() > until)
            fail_msg("the chore did not run twice");
        struct timespec ts = {0, 20000000L};
        nanosleep(&ts, NULL);
    }
    char stream[160];
    snprintf(stream, sizeof(stream), "%s:chore-events", f->name);
    adi_error_t err;
    adi_error_clear(&err);
    adi_bus_batch_t b;
    char after[ADI_BUS_ID_MAX] = "0-0";
    until = adi_mono_ms() + 60000;
    for (;;) {
        assert_int_equal(adi_bus_read(f->bus, stream, after, 10, 100, &b, &err), ADI_OK);
        size_t n = b.n;
        adi_bus_batch_dispose(&b);
        if (n >= 1)
            break;
        if (adi_mono_ms() > until)
            fail_msg("the chore's event was not published");
    }
}

static void test_expired_counted_in_metrics(void **state)
{
    fix_t *f = *state;
    f->cfg.workers = 1; /* one worker serves the stream in order */
    start(f);
    adi_envelope env;
    itest_envelope(&env, "late-3", "t.count", f->reply, adi_now_ms() - 1000, &f->principal,
                   body(f, "k", ""));
    itest_send(f->bus, f->stream, &env);
    adi_reply *r = request(f, "after-late", "t.echo", NULL, body(f, "a", "b"));
    assert_int_equal(r->status, 200);
    /* In stream order, late-3 was dropped before after-late was served. */
    assert_int_equal(execs(f, "late-3"), 0);
    /* The worker records a request's metrics just after it sends the reply,
     * so the reply may reach us first: wait (bounded) for the observation. */
    bool expired = false, echo = false;
    for (int i = 0; i < 200 && !(expired && echo); i++) {
        adi_buf_t out;
        adi_buf_init(&out);
        adi_metrics_render(adi_svc_metrics(f->svc), &out);
        expired = strstr(out.data, "adi_bus_expired_total") != NULL;
        echo = strstr(out.data, "t.echo") != NULL;
        adi_buf_dispose(&out);
        if (!(expired && echo))
            usleep(10 * 1000);
    }
    assert_true(expired);
    assert_true(echo);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* a killed Redis connection must not kill the test */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mutating_same_id_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reclaim_redelivery_and_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_definitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_counted_in_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chore, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
