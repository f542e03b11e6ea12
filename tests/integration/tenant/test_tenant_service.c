/* SPDX-License-Identifier: MIT */
/*
 * The tenant service in-process (adi_tenant_core on libs/svc) against the harness Redis and
 * PostgreSQL, with the real adi-auth binary answering auth.user_provision:
 *
 *   argv[1] adi-admin   applies services/{auth,tenant}/migrations to a fresh database of this
 *                       test's own (MIGRATIONS_DIR = a folder of links to just those two)
 *   argv[2] adi-auth    runs as a child process on that database (role adi_auth)
 *   argv[3] services/   the repository's services folder
 *
 * Both services use Redis database RDB, so their fixed stream names (svc:{tenant}:req,
 * svc:{auth}:req, ev:audit, tasks:default) cannot meet a suite running at the same time.
 *
 * Covered: signup (201 shape, the admin user and role in auth, idempotent replay, validation
 * before anything is written, auth refusing -> renamed field error and no tenant, auth not
 * answering -> 504 and no tenant), tenants list/get visibility (own tenant, other tenant 404,
 * superuser sees all), invite (both flows, 403/404/400 cases, superuser into another tenant, the
 * mail task on tasks:default without the token), accept (every API.md error, the user and role,
 * claim released when auth refuses, 20 concurrent accepts -> exactly one 201), the audit consumer
 * (idempotent by event id, metadata stored as an object) and the audit list (newest first,
 * filters, user null, other tenants invisible), the audit entries of the service's own
 * actions, and all-or-nothing across the two services: when the tenant service's own COMMIT
 * fails after auth made the user (signup, accept-invite), auth's settle chore removes that user
 * (sys.settled), the request id is fenced, and the invitation can be redeemed again.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "adi/keys.h"
#include "adi/svc.h"
#include "itest.h"
#include "tenant.h"

#define RDB     11
#define REPLIES "svc:{tenant}:itest-client:rep"
#define TZ_OFF  "-05:00" /* America/Jamaica has no daylight saving time */

static const char *admin_bin, *auth_bin, *services_dir;
static const char *const migrated[] = {"auth", "tenant", NULL}; /* this test's database's schemas */

/* Everything the tests share: one database, one auth process, one tenant service. */
typedef struct world {
    char dbname[48];            /* this test's database */
    char mig_dir[512];          /* MIGRATIONS_DIR with links to auth and tenant */
    char redis_url[256];        /* REDIS_URL with database RDB */
    adi_db_t *root;             /* admin connection to the harness database */
    adi_db_t *db;               /* admin (superuser) connection to this test's database */
    pid_t auth_pid;             /* the adi-auth child */
    adi_svc_t *svc;             /* the tenant service */
    adi_svc_config_t cfg;       /* its configuration */
    char tenant_url[256];       /* DATABASE_URL of the tenant service (role adi_tenant) */
    adi_bus_t *bus;             /* test client, replies on REPLIES */
    char after[ADI_BUS_ID_MAX]; /* read position on REPLIES */
} world_t;

static world_t W;

static adi_str_t admin_role[] = {{"ADMIN", 5}};
static adi_str_t viewer_role[] = {{"VIEWER", 6}};

/* A tenant made by signup, with principals of its admin and of a viewer. */
typedef struct acct {
    char id[37];             /* tenant id */
    char admin_id[37];       /* the first admin's user id */
    char email[96];          /* the admin's e-mail */
    char viewer_id[37];      /* a (made-up) viewer's user id */
    adi_principal admin;     /* the admin as the gateway would describe them */
    adi_principal viewer;    /* a VIEWER of the tenant */
    adi_principal superuser; /* a superuser of no tenant */
} acct_t;

/* ---- process and database plumbing ------------------------------------------------------ */

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Sends `op` to `stream` with `body` (and the path id in params when not NULL). */
static void send_req(adi_pool_t *pool, const char *stream, const char *id, const char *op,
                     adi_principal *p, adi_str_t body, const char *path_id, int64_t deadline_ms)
{
    adi_envelope env;
    itest_envelope(&env, id, op, REPLIES, deadline_ms, p, body);
    if (path_id != NULL) {
        tenant_id_req params = {.id = adi_str_c(path_id)};
        env.params = adi_proto_encode_pool(&tenant_id_req__desc, &params, pool);
    }
    itest_send(W.bus, stream, &env);
}

/* One request to the tenant service, waiting for its reply (in `pool`). */
static adi_reply *call_id(adi_pool_t *pool, const char *id, const adi_op_desc_t *op,
                          adi_principal *p, const void *body, const char *path_id)
{
    adi_str_t b = body ? adi_proto_encode_pool(op->req, body, pool) : ADI_STR_NULL;
    send_req(pool, "svc:{tenant}:req", id, op->name, p, b, path_id, adi_now_ms() + 60000);
    return itest_wait(W.bus, REPLIES, id, W.after, pool);
}

static adi_reply *call(adi_pool_t *pool, const adi_op_desc_t *op, adi_principal *p,
                       const void *body, const char *path_id)
{
    char id[37];
    adi_uuid_v4(id);
    return call_id(pool, id, op, p, body, path_id);
}

/* The reply body decoded as `op`'s reply; fails unless the status is `status`. */
static void *ok(adi_pool_t *pool, const adi_op_desc_t *op, const adi_reply *r, int status)
{
    if (r->status != status) {
        const adi_reply_error *e = r->error;
        const adi_reply_field *f = e != NULL && e->fields.n > 0 ? e->fields.items : NULL;
        fail_msg("%s: status %d (%.*s %.*s: %.*s), expected %d", op->name, (int)r->status,
                 e ? (int)e->message.len : 0, e ? e->message.ptr : "", f ? (int)f->field.len : 0,
                 f ? f->field.ptr : "", f ? (int)f->message.len : 0, f ? f->message.ptr : "",
                 status);
    }
    void *out = adi_pool_alloc(pool, op->rep->size);
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_proto_decode(op->rep, r->body.ptr, r->body.len, pool, out, &err), ADI_OK);
    return out;
}

/* Fails unless `r` is a 400 with `message` among the messages of `field`. */
static void expect_field(const adi_reply *r, const char *field, const char *message)
{
    assert_int_equal(r->status, 400);
    assert_non_null(r->error);
    const adi_reply_field *f = r->error->fields.items;
    for (size_t i = 0; i < r->error->fields.n; i++)
        if (adi_str_eq_c(f[i].field, field) && adi_str_eq_c(f[i].message, message))
            return;
    fail_msg("no 400 error \"%s\": \"%s\" (%zu fields, first %.*s)", field, message,
             r->error->fields.n, r->error->fields.n ? (int)f[0].field.len : 0,
             r->error->fields.n ? f[0].field.ptr : "");
}

/* Fails unless `r` has `status` and the detail `message`. */
static void expect_detail(const adi_reply *r, int status, const char *message)
{
    assert_int_equal(r->status, status);
    assert_non_null(r->error);
    if (!adi_str_eq_c(r->error->message, message))
        fail_msg("detail \"%.*s\", expected \"%s\"", (int)r->error->message.len,
                 r->error->message.ptr, message);
}

static long long sql_int(const char *sql, const char *param)
{
    return itest_sql_int(W.db, sql, param);
}

/* Polls (60 s at most) until `sql` (one parameter) counts `want`. */
static void wait_count(const char *sql, const char *param, long long want)
{
    for (int i = 0; i < 3000; i++) {
        if (sql_int(sql, param) == want)
            return;
        nap_ms(20);
    }
    fail_msg("%s [%s] never counted %lld (now %lld)", sql, param ? param : "", want,
             sql_int(sql, param));
}

/* Polls (60 s at most) until the audit writer has taken and acknowledged everything. */
static void wait_audit_drained(void)
{
    for (int i = 0; i < 3000; i++) {
        adi_bus_group_info_t gi;
        adi_error_t err;
        adi_error_clear(&err);
        if (adi_bus_group_info(W.bus, ADI_KEY_EV_AUDIT, TENANT_AUDIT_GROUP, &gi, &err) == ADI_OK &&
            gi.lag == 0 && gi.pending == 0)
            return;
        nap_ms(20);
    }
    fail_msg("the audit consumer did not drain ev:audit");
}

/* ---- fixture ---------------------------------------------------------------------------- */

static int world_setup(void **state)
{
    (void)state;
    memset(&W, 0, sizeof(W));
    snprintf(W.after, sizeof(W.after), "0-0");
    itest_unique(W.dbname, sizeof(W.dbname), "ttenant");
    snprintf(W.redis_url, sizeof(W.redis_url), "%s/%d", itest_env("REDIS_URL"), RDB);
    itest_redis_cleanup(RDB, "");

    itest_scratch_db(W.dbname, admin_bin, services_dir, migrated, W.mig_dir, sizeof(W.mig_dir),
                     &W.root, &W.db);
    adi_error_t err;
    adi_error_clear(&err);

    /* Users of failed requests go within seconds (the settle chore). */
    static const char *const settle[] = {"SETTLE_AFTER_S=3", NULL};
    W.auth_pid = itest_spawn_auth(auth_bin, "tenant-itest-auth", W.redis_url, W.dbname, 3, settle);
    snprintf(W.tenant_url, sizeof(W.tenant_url), "postgresql://adi_tenant@127.0.0.1:%s/%s",
             itest_env("ADI_PG_PORT"), W.dbname);
    adi_svc_config_defaults(&W.cfg, 0);
    W.cfg.redis_url = W.redis_url;
    W.cfg.database_url = W.tenant_url;
    W.cfg.workers = 4;
    W.cfg.consumer_name = "tenant-itest";
    W.cfg.reclaim_idle_ms = 2000;
    if (adi_svc_new(&tenant_def, &W.cfg, NULL, &W.svc, &err) != ADI_OK ||
        adi_svc_start(W.svc, &err) != ADI_OK)
        fail_msg("tenant service: %s", err.message);
    adi_bus_opts_t bo = {.url = W.redis_url, .reply_stream = REPLIES};
    assert_int_equal(adi_bus_new(&bo, &W.bus, &err), ADI_OK);

    /* Both services answer before any test starts. */
    adi_pool_t pool;
    adi_pool_init(&pool);
    const char *streams[] = {"svc:{auth}:req", "svc:{tenant}:req"};
    for (int i = 0; i < 2; i++) {
        char id[37];
        adi_uuid_v4(id);
        send_req(&pool, streams[i], id, "sys.health", NULL, ADI_STR_NULL, NULL,
                 adi_now_ms() + 60000);
        assert_int_equal(itest_wait(W.bus, REPLIES, id, W.after, &pool)->status, 200);
    }
    adi_pool_dispose(&pool);
    return 0;
}

static int world_teardown(void **state)
{
    (void)state;
    if (W.svc != NULL) {
        adi_svc_stop(W.svc);
        assert_true(adi_svc_wait(W.svc, 60000));
        adi_svc_free(W.svc);
    }
    if (W.auth_pid > 0) {
        kill(W.auth_pid, SIGCONT);
        kill(W.auth_pid, SIGTERM);
        assert_int_equal(itest_wait_child(W.auth_pid), 0);
    }
    adi_bus_free(W.bus);
    itest_scratch_db_drop(W.dbname, W.mig_dir, migrated, W.root, W.db);
    itest_redis_cleanup(RDB, "");
    return 0;
}

/* Signs a new tenant up (201 expected) and fills `a`. */
static void signup(adi_pool_t *pool, const char *name, acct_t *a)
{
    memset(a, 0, sizeof(*a));
    char u[48];
    itest_unique(u, sizeof(u), "adm");
    snprintf(a->email, sizeof(a->email), "%s@Example.COM", u);
    tenant_signup_req req = {.name = adi_str_c(name),
                             .admin_email = adi_str_c(a->email),
                             .admin_password = ADI_STR("correct horse battery"),
                             .admin_first_name = ADI_STR("Ada")};
    adi_reply *r = call(pool, &adi_op_tenant_signup, NULL, &req, NULL);
    tenant_signup_rep *rep = ok(pool, &adi_op_tenant_signup, r, 201);
    snprintf(a->id, sizeof(a->id), "%.*s", (int)rep->id.len, rep->id.ptr);
    snprintf(a->admin_id, sizeof(a->admin_id), "%.*s", (int)rep->admin_user_id.len,
             rep->admin_user_id.ptr);
    adi_uuid_v4(a->viewer_id);
    a->admin = (adi_principal){
        .user_id = adi_str_c(a->admin_id), .tenant_id = adi_str_c(a->id), .roles = {1, admin_role}};
    a->viewer = (adi_principal){.user_id = adi_str_c(a->viewer_id),
                                .tenant_id = adi_str_c(a->id),
                                .roles = {1, viewer_role}};
    a->superuser = (adi_principal){.user_id = adi_str_c(a->viewer_id), .superuser = true};
}

/* ---- signup ----------------------------------------------------------------------------- */

static void test_signup(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    char rid[37], email[96], u[48];
    adi_uuid_v4(rid);
    itest_unique(u, sizeof(u), "first");
    snprintf(email, sizeof(email), "%s@example.com", u);
    tenant_signup_req req = {.name = ADI_STR("Acme Ads"),
                             .admin_email = adi_str_c(email),
                             .admin_password = ADI_STR("s3cret-passw0rd"),
                             .admin_first_name = ADI_STR("Grace"),
                             .admin_last_name = ADI_STR("Hopper")};
    adi_reply *r = call_id(&pool, rid, &adi_op_tenant_signup, NULL, &req, NULL);
    tenant_signup_rep *rep = ok(&pool, &adi_op_tenant_signup, r, 201);
    assert_true(adi_uuid_valid(rep->id));
    assert_true(adi_uuid_valid(rep->admin_user_id));
    assert_true(adi_str_eq_c(rep->name, "Acme Ads"));
    /* 2026-11-27T14:03:13.476080-05:00 */
    assert_int_equal(rep->created_at.len, 32);
    assert_memory_equal(rep->created_at.ptr + 26, TZ_OFF, 6);
    char tid[37], uid[37];
    snprintf(tid, sizeof(tid), "%.*s", 36, rep->id.ptr);
    snprintf(uid, sizeof(uid), "%.*s", 36, rep->admin_user_id.ptr);

    assert_int_equal(sql_int("SELECT count(*) FROM tenant.tenants WHERE id = $1::uuid", tid), 1);
    assert_int_equal(
        sql_int("SELECT count(*) FROM auth.users u JOIN auth.user_roles r ON r.user_id = u.id "
                "WHERE u.tenant_id = $1::uuid AND r.role = 'ADMIN' AND u.first_name = 'Grace'",
                tid),
        1);

    /* The same request id again: the stored reply, no second tenant. */
    adi_reply *again = call_id(&pool, rid, &adi_op_tenant_signup, NULL, &req, NULL);
    tenant_signup_rep *rep2 = ok(&pool, &adi_op_tenant_signup, again, 201);
    assert_true(adi_str_eq(rep2->id, rep->id));
    assert_true(adi_str_eq(rep2->admin_user_id, rep->admin_user_id));
    assert_int_equal(sql_int("SELECT count(*) FROM auth.users WHERE email = lower($1)", email), 1);

    /* Audited once, as the new admin. */
    wait_count("SELECT count(*) FROM tenant.audit_log WHERE tenant_id = $1::uuid AND "
               "action = 'tenant_created' AND resource_type = 'tenant' AND "
               "resource_id = $1 AND metadata->>'name' = 'Acme Ads' AND user_id IS NOT NULL",
               tid, 1);
    assert_int_equal(sql_int("SELECT count(*) FROM tenant.audit_log WHERE user_id = $1::uuid AND "
                             "user_email <> ''",
                             uid),
                     1);
    adi_pool_dispose(&pool);
}

static void test_signup_validation(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    long long before = sql_int("SELECT count(*) FROM tenant.tenants", NULL);
    tenant_signup_req req = {.name = ADI_STR("Valid Name"),
                             .admin_email = ADI_STR("someone@example.com"),
                             .admin_password = ADI_STR("long enough")};
    tenant_signup_req bad = req;
    bad.admin_email = ADI_STR("not-an-email");
    expect_field(call(&pool, &adi_op_tenant_signup, NULL, &bad, NULL), "admin_email",
                 "Enter a valid email address.");
    bad = req;
    bad.admin_password = ADI_STR("short");
    expect_field(call(&pool, &adi_op_tenant_signup, NULL, &bad, NULL), "admin_password",
                 "Ensure this field has at least 8 characters.");
    bad = req;
    bad.name = ADI_STR("   ");
    expect_field(call(&pool, &adi_op_tenant_signup, NULL, &bad, NULL), "name",
                 "This field may not be blank.");
    tenant_signup_req empty;
    memset(&empty, 0, sizeof(empty));
    adi_reply *r = call(&pool, &adi_op_tenant_signup, NULL, &empty, NULL);
    expect_field(r, "name", "This field is required.");
    expect_field(r, "admin_email", "This field is required.");
    expect_field(r, "admin_password", "This field is required.");
    assert_int_equal(sql_int("SELECT count(*) FROM tenant.tenants", NULL), before);
    adi_pool_dispose(&pool);
}

/* Auth refuses the first user: the client gets auth's error under admin_*, nothing is left. */
static void test_signup_auth_refuses(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    char rid[37], tid[37];
    adi_uuid_v4(rid);
    adi_ctx_t fake = {.request_id = rid, .client_ip = ""};
    tenant_signup_id(&fake, tid);
    /* The e-mail is already taken in the tenant this request will create. */
    char sql[512];
    snprintf(sql, sizeof(sql),
             "INSERT INTO auth.users (tenant_id, email, password) VALUES ('%s', "
             "'taken@example.com', 'pbkdf2_sha256$1000$x$y')",
             tid);
    itest_sql(W.db, sql);
    tenant_signup_req req = {.name = ADI_STR("Doomed"),
                             .admin_email = ADI_STR("taken@example.com"),
                             .admin_password = ADI_STR("long enough")};
    adi_reply *r = call_id(&pool, rid, &adi_op_tenant_signup, NULL, &req, NULL);
    expect_field(r, "admin_email", "user with this email already exists.");
    assert_int_equal(sql_int("SELECT count(*) FROM tenant.tenants WHERE id = $1::uuid", tid), 0);
    assert_int_equal(sql_int("SELECT count(*) FROM tenant.tenants WHERE name = 'Doomed'", NULL), 0);
    snprintf(sql, sizeof(sql), "DELETE FROM auth.users WHERE tenant_id = '%s'", tid);
    itest_sql(W.db, sql);
    adi_pool_dispose(&pool);
}

/* Auth does not answer in time: 504, and neither tenant nor user is left behind. */
static void test_signup_auth_timeout(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    assert_int_equal(kill(W.auth_pid, SIGSTOP), 0);
    int status = 0;
    while (waitpid(W.auth_pid, &status, WUNTRACED) < 0)
        assert_int_equal(errno, EINTR);
    assert_true(WIFSTOPPED(status));

    char rid[37];
    adi_uuid_v4(rid);
    tenant_signup_req req = {.name = ADI_STR("Never Born"),
                             .admin_email = ADI_STR("never@example.com"),
                             .admin_password = ADI_STR("long enough")};
    send_req(&pool, "svc:{tenant}:req", rid, "tenant.signup", NULL,
             adi_proto_encode_pool(&tenant_signup_req__desc, &req, &pool), NULL,
             adi_now_ms() + 1500);
    adi_reply *r = itest_wait(W.bus, REPLIES, rid, W.after, &pool);
    assert_int_equal(r->status, 504);
    assert_int_equal(kill(W.auth_pid, SIGCONT), 0);
    assert_int_equal(sql_int("SELECT count(*) FROM tenant.tenants WHERE name = 'Never Born'", NULL),
                     0);
    /* The request reached auth past its deadline: dropped there, never executed. */
    char hid[37];
    adi_uuid_v4(hid);
    send_req(&pool, "svc:{auth}:req", hid, "sys.health", NULL, ADI_STR_NULL, NULL,
             adi_now_ms() + 60000);
    assert_int_equal(itest_wait(W.bus, REPLIES, hid, W.after, &pool)->status, 200);
    assert_int_equal(
        sql_int("SELECT count(*) FROM auth.users WHERE email = 'never@example.com'", NULL), 0);
    adi_pool_dispose(&pool);
}

/* ---- tenants ---------------------------------------------------------------------------- */

static void test_tenants_visibility(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    acct_t a, b;
    signup(&pool, "Visible A", &a);
    signup(&pool, "Visible B", &b);

    tenant_list *l =
        ok(&pool, &adi_op_tenant_list, call(&pool, &adi_op_tenant_list, &a.admin, NULL, NULL), 200);
    assert_int_equal(l->items.n, 1);
    assert_true(adi_str_eq_c(((tenant_info *)l->items.items)[0].id, a.id));
    l = ok(&pool, &adi_op_tenant_list, call(&pool, &adi_op_tenant_list, &b.viewer, NULL, NULL),
           200);
    assert_int_equal(l->items.n, 1);
    assert_true(adi_str_eq_c(((tenant_info *)l->items.items)[0].id, b.id));

    tenant_info *t =
        ok(&pool, &adi_op_tenant_get, call(&pool, &adi_op_tenant_get, &a.viewer, NULL, a.id), 200);
    assert_true(adi_str_eq_c(t->name, "Visible A"));
    assert_memory_equal(t->created_at.ptr + 26, TZ_OFF, 6);
    expect_detail(call(&pool, &adi_op_tenant_get, &a.admin, NULL, b.id), 404, "Not found.");
    expect_detail(call(&pool, &adi_op_tenant_get, &a.admin, NULL, "nope"), 404, "Not found.");
    expect_detail(call(&pool, &adi_op_tenant_get, NULL, NULL, a.id), 404, "Not found.");
    l = ok(&pool, &adi_op_tenant_list, call(&pool, &adi_op_tenant_list, NULL, NULL, NULL), 200);
    assert_int_equal(l->items.n, 0);

    /* A superuser sees every tenant, oldest first. */
    l = ok(&pool, &adi_op_tenant_list, call(&pool, &adi_op_tenant_list, &a.superuser, NULL, NULL),
           200);
    assert_true(l->items.n >= 2);
    long ia = -1, ib = -1;
    for (size_t i = 0; i < l->items.n; i++) {
        adi_str_t id = ((tenant_info *)l->items.items)[i].id;
        ia = adi_str_eq_c(id, a.id) ? (long)i : ia;
        ib = adi_str_eq_c(id, b.id) ? (long)i : ib;
    }
    assert_true(ia >= 0 && ib > ia);
    assert_int_equal(l->items.n, sql_int("SELECT count(*) FROM tenant.tenants", NULL));
    t = ok(&pool, &adi_op_tenant_get, call(&pool, &adi_op_tenant_get, &a.superuser, NULL, b.id),
           200);
    assert_true(adi_str_eq_c(t->name, "Visible B"));
    adi_pool_dispose(&pool);
}

/* ---- invitations ------------------------------------------------------------------------ */

/* Invites `email` (role may be NULL) as `p` into the path tenant `path_id` (NULL: own). */
static adi_reply *invite(adi_pool_t *pool, adi_principal *p, const char *path_id, const char *email,
                         const char *role)
{
    tenant_invite_req req = {.email = adi_str_c(email)};
    if (role != NULL)
        req.role = adi_str_c(role);
    return call(pool, &adi_op_tenant_invite, p, &req, path_id);
}

/* True when `needle` occurs in `hay` (bytes). */
static bool contains(adi_str_t hay, adi_str_t needle)
{
    for (size_t i = 0; needle.len > 0 && i + needle.len <= hay.len; i++)
        if (memcmp(hay.ptr + i, needle.ptr, needle.len) == 0)
            return true;
    return false;
}

/* The task enqueued for invitation `id` on tasks:default (fails when there is none). */
static void expect_mail_task(adi_pool_t *pool, adi_str_t inv_id, adi_str_t tid, adi_str_t token)
{
    char after[ADI_BUS_ID_MAX] = "0-0";
    for (;;) {
        adi_bus_batch_t b;
        adi_error_t err;
        adi_error_clear(&err);
        assert_int_equal(adi_bus_read(W.bus, TENANT_TASK_QUEUE, after, 64, 1, &b, &err), ADI_OK);
        if (b.n == 0) {
            adi_bus_batch_dispose(&b);
            fail_msg("no task for invitation %.*s", (int)inv_id.len, inv_id.ptr);
        }
        for (size_t i = 0; i < b.n; i++) {
            adi_str_t m = adi_pool_strdup(pool, b.items[i].msg);
            assert_false(contains(m, token)); /* never the token */
            task_msg *t = adi_pool_alloc(pool, sizeof(*t));
            assert_int_equal(adi_proto_decode(&task_msg__desc, m.ptr, m.len, pool, t, &err),
                             ADI_OK);
            task_send_invitation_args *a = adi_pool_alloc(pool, sizeof(*a));
            assert_int_equal(adi_proto_decode(&task_send_invitation_args__desc, t->args.ptr,
                                              t->args.len, pool, a, &err),
                             ADI_OK);
            if (adi_str_eq(a->invitation_id, inv_id)) {
                assert_true(adi_str_eq_c(t->name, TENANT_TASK_INVITE_MAIL));
                assert_true(adi_str_eq(t->tenant_id, tid));
                assert_true(adi_uuid_valid(t->id));
                adi_bus_batch_dispose(&b);
                return;
            }
        }
        adi_bus_batch_dispose(&b);
    }
}

static void test_invite(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    acct_t a, b;
    signup(&pool, "Inviter A", &a);
    signup(&pool, "Inviter B", &b);

    /* The legacy route (no id): the caller's tenant. */
    tenant_invitation *inv =
        ok(&pool, &adi_op_tenant_invite,
           invite(&pool, &a.admin, NULL, "new.analyst@example.com", "ANALYST"), 201);
    assert_true(adi_uuid_valid(inv->id));
    assert_true(adi_str_eq_c(inv->email, "new.analyst@example.com"));
    assert_true(adi_str_eq_c(inv->role, "ANALYST"));
    assert_int_equal(inv->token.len, 43);
    assert_int_equal(
        strspn(inv->token.ptr, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        43);
    assert_true(ADI_IS_NULL(tenant_invitation, inv, accepted_at));
    assert_memory_equal(inv->expires_at.ptr + 26, TZ_OFF, 6);
    char iid[37];
    snprintf(iid, sizeof(iid), "%.*s", 36, inv->id.ptr);
    assert_int_equal(sql_int("SELECT count(*) FROM tenant.invitations WHERE id = $1::uuid AND "
                             "expires_at - created_at = interval '7 days' AND invited_by IS NOT "
                             "NULL",
                             iid),
                     1);
    expect_mail_task(&pool, inv->id, adi_str_c(a.id), inv->token);
    wait_count("SELECT count(*) FROM tenant.audit_log WHERE action = 'invitation_created' AND "
               "resource_type = 'invitation' AND resource_id = $1 AND user_email <> '' AND "
               "metadata->>'role' = 'ANALYST'",
               iid, 1);

    /* The tenant route: own id fine, another tenant's id (or junk) 404, no role -> null. */
    inv = ok(&pool, &adi_op_tenant_invite, invite(&pool, &a.admin, a.id, "plain@example.com", NULL),
             201);
    assert_true(inv->role.ptr == NULL || ADI_IS_NULL(tenant_invitation, inv, role));
    expect_detail(invite(&pool, &a.admin, b.id, "x@example.com", "VIEWER"), 404, "Not found.");
    expect_detail(invite(&pool, &a.admin, "junk", "x@example.com", "VIEWER"), 404, "Not found.");
    expect_detail(invite(&pool, &a.viewer, NULL, "x@example.com", "VIEWER"), 403,
                  TENANT_MSG_NOT_ADMIN);
    expect_detail(invite(&pool, NULL, a.id, "x@example.com", "VIEWER"), 403, TENANT_MSG_NOT_ADMIN);
    expect_field(invite(&pool, &a.admin, NULL, "x@example.com", "OWNER"), "role",
                 "\"OWNER\" is not a valid choice.");
    expect_field(invite(&pool, &a.admin, NULL, "not-an-email", "VIEWER"), "email",
                 "Enter a valid email address.");
    assert_int_equal(sql_int("SELECT count(*) FROM tenant.invitations WHERE email = "
                             "'x@example.com'",
                             NULL),
                     0);

    /* A superuser may invite into any existing tenant. */
    inv = ok(&pool, &adi_op_tenant_invite,
             invite(&pool, &a.superuser, b.id, "from.su@example.com", "VIEWER"), 201);
    snprintf(iid, sizeof(iid), "%.*s", 36, inv->id.ptr);
    assert_int_equal(sql_int("SELECT count(*) FROM tenant.invitations WHERE id = $1::uuid AND "
                             "tenant_id = (SELECT id FROM tenant.tenants WHERE name = 'Inviter B')",
                             iid),
                     1);
    char ghost[37];
    adi_uuid_v4(ghost);
    expect_detail(invite(&pool, &a.superuser, ghost, "x@example.com", NULL), 404, "Not found.");
    expect_field(invite(&pool, &a.superuser, NULL, "x@example.com", NULL), "non_field_errors",
                 TENANT_MSG_NO_TENANT);
    adi_pool_dispose(&pool);
}

/* ---- accept ----------------------------------------------------------------------------- */

static adi_reply *accept(adi_pool_t *pool, adi_str_t token, const char *password)
{
    tenant_accept_req req = {
        .token = token, .password = adi_str_c(password), .first_name = ADI_STR("Invited")};
    return call(pool, &adi_op_tenant_accept_invite, NULL, &req, NULL);
}

static void test_accept(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    acct_t a;
    signup(&pool, "Acceptor", &a);
    tenant_invitation *inv =
        ok(&pool, &adi_op_tenant_invite,
           invite(&pool, &a.admin, NULL, "joiner@example.com", "ANALYST"), 201);

    expect_field(accept(&pool, ADI_STR("no-such-token"), "long enough"), "token",
                 TENANT_MSG_TOKEN_INVALID);
    char longer[600]; /* any length is just an invalid token, never a length error */
    memset(longer, 'A', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    expect_field(accept(&pool, adi_str_c(longer), "long enough"), "token",
                 TENANT_MSG_TOKEN_INVALID);
    longer[TENANT_TOKEN_LEN] = '\0'; /* our length, not ours */
    expect_field(accept(&pool, adi_str_c(longer), "long enough"), "token",
                 TENANT_MSG_TOKEN_INVALID);
    expect_field(accept(&pool, inv->token, "short"), "password",
                 "Ensure this field has at least 8 characters.");

    auth_user *u =
        ok(&pool, &adi_op_tenant_accept_invite, accept(&pool, inv->token, "long enough"), 201);
    assert_true(adi_str_eq_c(u->email, "joiner@example.com"));
    assert_true(adi_str_eq_c(u->tenant, a.id));
    assert_true(adi_str_eq_c(u->first_name, "Invited"));
    assert_int_equal(u->roles.n, 1);
    assert_true(adi_str_eq_c(u->roles.items[0], "ANALYST"));
    char iid[37], uid[37];
    snprintf(iid, sizeof(iid), "%.*s", 36, inv->id.ptr);
    snprintf(uid, sizeof(uid), "%.*s", 36, u->id.ptr);
    assert_int_equal(sql_int("SELECT count(*) FROM tenant.invitations WHERE id = $1::uuid AND "
                             "accepted_at IS NOT NULL AND accepted_user_id = (SELECT id FROM "
                             "auth.users WHERE email = 'joiner@example.com')",
                             iid),
                     1);
    expect_field(accept(&pool, inv->token, "long enough"), "token", TENANT_MSG_TOKEN_USED);
    wait_count("SELECT count(*) FROM tenant.audit_log WHERE action = 'invitation_accepted' AND "
               "resource_id = $1 AND user_email = 'joiner@example.com' AND "
               "metadata->>'role' = 'ANALYST'",
               iid, 1);

    /* Expired. */
    inv = ok(&pool, &adi_op_tenant_invite, invite(&pool, &a.admin, NULL, "late@example.com", NULL),
             201);
    snprintf(iid, sizeof(iid), "%.*s", 36, inv->id.ptr);
    assert_int_equal(sql_int("WITH u AS (UPDATE tenant.invitations SET expires_at = now() - "
                             "interval '1 second' WHERE id = $1::uuid RETURNING 1) "
                             "SELECT count(*) FROM u",
                             iid),
                     1);
    expect_field(accept(&pool, inv->token, "long enough"), "token", TENANT_MSG_TOKEN_EXPIRED);

    /* The e-mail is already a user of the tenant: non-field error, the claim is released. */
    char lower[96];
    snprintf(lower, sizeof(lower), "%s", a.email);
    for (char *c = lower; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    inv = ok(&pool, &adi_op_tenant_invite, invite(&pool, &a.admin, NULL, lower, "VIEWER"), 201);
    snprintf(iid, sizeof(iid), "%.*s", 36, inv->id.ptr);
    expect_field(accept(&pool, inv->token, "long enough"), "non_field_errors",
                 TENANT_MSG_EMAIL_TAKEN);
    assert_int_equal(sql_int("SELECT count(*) FROM tenant.invitations WHERE id = $1::uuid AND "
                             "accepted_at IS NULL",
                             iid),
                     1);

    /* No role: a user without roles. */
    inv = ok(&pool, &adi_op_tenant_invite,
             invite(&pool, &a.admin, NULL, "norole@example.com", NULL), 201);
    u = ok(&pool, &adi_op_tenant_accept_invite, accept(&pool, inv->token, "long enough"), 201);
    assert_int_equal(u->roles.n, 0);
    adi_pool_dispose(&pool);
}

/* 20 accepts of one token at once: exactly one 201, the rest "already accepted". */
static void test_accept_concurrent(void **state)
{
    (void)state;
    enum { N = 20 };
    adi_pool_t pool;
    adi_pool_init(&pool);
    acct_t a;
    signup(&pool, "Race", &a);
    tenant_invitation *inv = ok(&pool, &adi_op_tenant_invite,
                                invite(&pool, &a.admin, NULL, "racer@example.com", "VIEWER"), 201);
    tenant_accept_req req = {.token = inv->token, .password = ADI_STR("long enough")};
    adi_str_t body = adi_proto_encode_pool(&tenant_accept_req__desc, &req, &pool);
    char ids[N][37];
    for (int i = 0; i < N; i++) {
        adi_uuid_v4(ids[i]);
        send_req(&pool, "svc:{tenant}:req", ids[i], "tenant.accept_invite", NULL, body, NULL,
                 adi_now_ms() + 60000);
    }
    int created = 0, used = 0, seen = 0;
    bool done[N] = {false};
    while (seen < N) {
        adi_bus_batch_t b;
        adi_error_t err;
        adi_error_clear(&err);
        assert_int_equal(adi_bus_read(W.bus, REPLIES, W.after, 64, 60000, &b, &err), ADI_OK);
        assert_true(b.n > 0);
        for (size_t k = 0; k < b.n; k++) {
            adi_reply *r = adi_pool_alloc(&pool, sizeof(*r));
            adi_str_t m = adi_pool_strdup(&pool, b.items[k].msg);
            assert_int_equal(adi_proto_decode(&adi_reply__desc, m.ptr, m.len, &pool, r, &err),
                             ADI_OK);
            for (int i = 0; i < N; i++) {
                if (done[i] || !adi_str_eq_c(r->id, ids[i]))
                    continue;
                done[i] = true;
                seen++;
                if (r->status == 201) {
                    created++;
                } else {
                    expect_field(r, "token", TENANT_MSG_TOKEN_USED);
                    used++;
                }
            }
        }
        adi_bus_batch_dispose(&b);
    }
    assert_int_equal(created, 1);
    assert_int_equal(used, N - 1);
    assert_int_equal(
        sql_int("SELECT count(*) FROM auth.users WHERE email = 'racer@example.com'", NULL), 1);
    adi_pool_dispose(&pool);
}

/* ---- audit ------------------------------------------------------------------------------ */

/* XADDs an audit event to ev:audit (metadata: raw msgpack or ADI_STR_NULL). */
static void publish_audit(adi_pool_t *pool, const char *id, const char *tid, const char *user,
                          const char *action, const char *rtype, adi_str_t metadata, int64_t at_us)
{
    audit_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.id = adi_str_c(id);
    ev.tenant_id = adi_str_c(tid);
    if (user != NULL) {
        ev.user_id = adi_str_c(user);
        ev.user_email = ADI_STR("actor@example.com");
    }
    ev.action = adi_str_c(action);
    ev.resource_type = adi_str_c(rtype);
    ev.resource_id = ADI_STR("r-1");
    ev.metadata = metadata;
    ev.created_at_us = at_us;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_bus_add(W.bus, ADI_KEY_EV_AUDIT,
                                 adi_proto_encode_pool(&audit_event__desc, &ev, pool), NULL, &err),
                     ADI_OK);
}

static void test_audit_consumer_idempotent(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    acct_t a;
    signup(&pool, "Audited", &a);
    char id[37], arr[37];
    adi_uuid_v4(id);
    adi_uuid_v4(arr);
    tenant_audit_meta meta = {.name = ADI_STR("twice")};
    adi_str_t mp = adi_proto_encode_pool(&tenant_audit_meta__desc, &meta, &pool);
    int64_t now = adi_now_us();
    publish_audit(&pool, id, a.id, a.admin_id, "login", "auth", mp, now);
    publish_audit(&pool, id, a.id, a.admin_id, "login", "auth", mp, now); /* redelivered */
    publish_audit(&pool, arr, a.id, NULL, "sync_triggered", "sync", ADI_STR("\x92\x01\x02"), now);
    wait_audit_drained();
    assert_int_equal(sql_int("SELECT count(*) FROM tenant.audit_log WHERE id = $1::uuid AND "
                             "metadata = '{\"name\": \"twice\"}'::jsonb",
                             id),
                     1);
    assert_int_equal(sql_int("SELECT count(*) FROM tenant.audit_log WHERE id = $1::uuid AND "
                             "metadata = '{\"value\": [1, 2]}'::jsonb AND user_id IS NULL",
                             arr),
                     1);
    adi_pool_dispose(&pool);
}

static void test_audit_list(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    acct_t a, b;
    signup(&pool, "Listed A", &a);
    signup(&pool, "Listed B", &b);
    char e1[37], e2[37], e3[37], eb[37];
    adi_uuid_v4(e1);
    adi_uuid_v4(e2);
    adi_uuid_v4(e3);
    adi_uuid_v4(eb);
    int64_t t0 = adi_now_us() + 1000000; /* after the signup's own entry */
    tenant_audit_meta meta = {.role = ADI_STR("ANALYST")};
    publish_audit(&pool, e1, a.id, a.admin_id, "login", "auth", ADI_STR_NULL, t0 + 1);
    publish_audit(&pool, e2, a.id, a.admin_id, "role_assigned", "role",
                  adi_proto_encode_pool(&tenant_audit_meta__desc, &meta, &pool), t0 + 2);
    publish_audit(&pool, e3, a.id, NULL, "sync_triggered", "sync", ADI_STR_NULL, t0 + 3);
    publish_audit(&pool, eb, b.id, b.admin_id, "login", "auth", ADI_STR_NULL, t0 + 4);
    wait_audit_drained();

    tenant_audit_list_req req;
    memset(&req, 0, sizeof(req));
    tenant_audit_list *l = ok(&pool, &adi_op_tenant_audit_list,
                              call(&pool, &adi_op_tenant_audit_list, &a.viewer, &req, NULL), 200);
    assert_int_equal(l->items.n, 4); /* tenant_created plus the three */
    tenant_audit_entry *it = l->items.items;
    assert_true(adi_str_eq_c(it[0].id, e3));
    assert_true(adi_str_eq_c(it[1].id, e2));
    assert_true(adi_str_eq_c(it[2].id, e1));
    assert_true(adi_str_eq_c(it[3].action, "tenant_created"));
    assert_null(it[0].user);
    assert_non_null(it[1].user);
    assert_true(adi_str_eq_c(it[1].user->id, a.admin_id));
    assert_true(adi_str_eq_c(it[1].user->email, "actor@example.com"));
    assert_true(adi_str_eq_c(it[1].tenant, a.id));
    assert_true(adi_str_eq_c(it[1].resource_id, "r-1"));
    assert_memory_equal(it[1].created_at.ptr + 26, TZ_OFF, 6);
    adi_buf_t json;
    adi_buf_init(&json);
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_msgpack_to_json(it[1].metadata.ptr, it[1].metadata.len, &json, &err),
                     ADI_OK);
    adi_buf_append(&json, "", 1);
    assert_string_equal(json.data, "{\"role\":\"ANALYST\"}");
    adi_buf_reset(&json);
    assert_int_equal(adi_msgpack_to_json(it[0].metadata.ptr, it[0].metadata.len, &json, &err),
                     ADI_OK);
    adi_buf_append(&json, "", 1);
    assert_string_equal(json.data, "{}");
    adi_buf_dispose(&json);

    req.action = ADI_STR("role_assigned");
    l = ok(&pool, &adi_op_tenant_audit_list,
           call(&pool, &adi_op_tenant_audit_list, &a.viewer, &req, NULL), 200);
    assert_int_equal(l->items.n, 1);
    assert_true(adi_str_eq_c(((tenant_audit_entry *)l->items.items)[0].id, e2));
    req.action = ADI_STR("");
    req.resource_type = ADI_STR("auth");
    l = ok(&pool, &adi_op_tenant_audit_list,
           call(&pool, &adi_op_tenant_audit_list, &a.viewer, &req, NULL), 200);
    assert_int_equal(l->items.n, 1);
    assert_true(adi_str_eq_c(((tenant_audit_entry *)l->items.items)[0].id, e1));
    req.action = ADI_STR("login");
    req.resource_type = ADI_STR("role");
    l = ok(&pool, &adi_op_tenant_audit_list,
           call(&pool, &adi_op_tenant_audit_list, &a.viewer, &req, NULL), 200);
    assert_int_equal(l->items.n, 0);

    /* The other tenant sees its own entries only; no tenant sees nothing. */
    memset(&req, 0, sizeof(req));
    l = ok(&pool, &adi_op_tenant_audit_list,
           call(&pool, &adi_op_tenant_audit_list, &b.admin, &req, NULL), 200);
    assert_int_equal(l->items.n, 2);
    assert_true(adi_str_eq_c(((tenant_audit_entry *)l->items.items)[0].id, eb));
    l = ok(&pool, &adi_op_tenant_audit_list,
           call(&pool, &adi_op_tenant_audit_list, &a.superuser, &req, NULL), 200);
    assert_int_equal(l->items.n, 0);
    adi_pool_dispose(&pool);
}

/* ---- all or nothing across services ------------------------------------------------------ */

/* The tenant's own COMMIT fails after auth made the user (a deferred constraint trigger raising
   at COMMIT stands for a lost connection or a failed commit): the client gets an error, auth's
   settle chore asks sys.settled, learns the request never committed and removes the user; a
   retry of the same request id is refused, and a failed accept leaves the invitation usable. */
static void test_commit_failure_leaves_no_user(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    acct_t a;
    signup(&pool, "Committer", &a);
    itest_sql(W.db,
              "CREATE FUNCTION tenant.itest_fail_commit() RETURNS trigger LANGUAGE plpgsql AS $f$ "
              "BEGIN IF to_jsonb(NEW)->>'name' = 'Fails At Commit' OR (to_jsonb(NEW)->>'email' = "
              "'fails-at-commit@example.com' AND to_jsonb(NEW)->>'accepted_at' IS NOT NULL) THEN "
              "RAISE EXCEPTION 'injected commit failure'; END IF; RETURN NEW; END $f$;"
              "CREATE CONSTRAINT TRIGGER itest_fail_tenant AFTER INSERT ON tenant.tenants "
              "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "
              "tenant.itest_fail_commit();"
              "CREATE CONSTRAINT TRIGGER itest_fail_invitation AFTER UPDATE ON tenant.invitations "
              "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "
              "tenant.itest_fail_commit();");

    /* Signup. */
    char rid[37], email[96], u[48];
    adi_uuid_v4(rid);
    itest_unique(u, sizeof(u), "orphan");
    snprintf(email, sizeof(email), "%s@example.com", u);
    tenant_signup_req req = {.name = ADI_STR("Fails At Commit"),
                             .admin_email = adi_str_c(email),
                             .admin_password = ADI_STR("long enough")};
    adi_reply *r = call_id(&pool, rid, &adi_op_tenant_signup, NULL, &req, NULL);
    assert_int_equal(r->status, 500);
    /* Auth committed the user before the tenant's COMMIT failed: provisional until settled. */
    assert_int_equal(sql_int("SELECT count(*) FROM auth.users WHERE email = $1 AND "
                             "settle_caller = 'tenant' AND settle_key IS NOT NULL",
                             email),
                     1);
    wait_count("SELECT count(*) FROM auth.users WHERE email = $1", email, 0);
    assert_int_equal(
        sql_int("SELECT count(*) FROM tenant.tenants WHERE name = 'Fails At Commit'", NULL), 0);
    /* The request id is fenced: a late redelivery cannot create the tenant any more. */
    r = call_id(&pool, rid, &adi_op_tenant_signup, NULL, &req, NULL);
    expect_detail(r, 409,
                  "This request was abandoned before it completed: send it again with a "
                  "new Idempotency-Key.");
    assert_int_equal(sql_int("SELECT count(*) FROM auth.users WHERE email = $1", email), 0);

    /* Accept-invite. */
    tenant_invitation *inv =
        ok(&pool, &adi_op_tenant_invite,
           invite(&pool, &a.admin, NULL, "fails-at-commit@example.com", "ANALYST"), 201);
    char iid[37];
    snprintf(iid, sizeof(iid), "%.*s", 36, inv->id.ptr);
    r = accept(&pool, inv->token, "long enough");
    assert_int_equal(r->status, 500);
    wait_count("SELECT count(*) FROM auth.users WHERE tenant_id = $1::uuid AND "
               "email = 'fails-at-commit@example.com'",
               a.id, 0);
    assert_int_equal(sql_int("SELECT count(*) FROM tenant.invitations WHERE id = $1::uuid AND "
                             "accepted_at IS NULL",
                             iid),
                     1);
    itest_sql(W.db, "DROP TRIGGER itest_fail_tenant ON tenant.tenants;"
                    "DROP TRIGGER itest_fail_invitation ON tenant.invitations;"
                    "DROP FUNCTION tenant.itest_fail_commit()");
    auth_user *joined =
        ok(&pool, &adi_op_tenant_accept_invite, accept(&pool, inv->token, "long enough"), 201);
    assert_true(adi_str_eq_c(joined->email, "fails-at-commit@example.com"));

    /* Users of requests that did commit are kept, their mark cleared. */
    char jid[37];
    snprintf(jid, sizeof(jid), "%.*s", 36, joined->id.ptr);
    wait_count("SELECT count(*) FROM auth.users WHERE id = $1::uuid AND settle_key IS NULL", jid,
               1);
    wait_count("SELECT count(*) FROM auth.users WHERE id = $1::uuid AND settle_key IS NULL",
               a.admin_id, 1);
    adi_pool_dispose(&pool);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s <adi-admin> <adi-auth> <services dir>\n", argv[0]);
        return 2;
    }
    admin_bin = argv[1];
    auth_bin = argv[2];
    services_dir = argv[3];
    adi_time_zone_set("America/Jamaica");
    adi_log_init("tenant-itest", ADI_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signup),
        cmocka_unit_test(test_signup_validation),
        cmocka_unit_test(test_signup_auth_refuses),
        cmocka_unit_test(test_signup_auth_timeout),
        cmocka_unit_test(test_tenants_visibility),
        cmocka_unit_test(test_invite),
        cmocka_unit_test(test_accept),
        cmocka_unit_test(test_accept_concurrent),
        cmocka_unit_test(test_audit_consumer_idempotent),
        cmocka_unit_test(test_audit_list),
        cmocka_unit_test(test_commit_failure_leaves_no_user),
    };
    return cmocka_run_group_tests(tests, world_setup, world_teardown);
}
