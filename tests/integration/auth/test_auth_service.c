/* SPDX-License-Identifier: MIT */
/*
 * The auth service's handlers in-process (adi_auth_core on libs/svc) against the harness Redis and
 * PostgreSQL: a fresh database of its own with services/auth/migrations applied (argv[1] is that
 * folder) and the service connected as its own role adi_auth, so row-level security is real.
 * Redis database 10 keeps its streams (svc:{auth}:req, ev:auth, ev:audit) away from a suite that
 * may run at the same time. Requests are envelopes sent through libs/bus, as the gateway sends
 * them, with the principal the gateway would build from a token.
 *
 * Covered: login and token (good, wrong password, unknown e-mail, inactive, case-insensitive
 * e-mail, hash upgrade, audit "login"), refresh (rotation, wrong type, garbage, reuse revokes the
 * family, the grace answer for the immediately preceding token, inactive user, new roles and
 * version picked up), me (tenant-less superuser, X-Tenant-Id for superusers only), users
 * list/get/create (tenant scoping both ways, 404 for other tenants and malformed ids, duplicate
 * e-mail, validation, ADMIN re-check), roles list/create/assign/delete (idempotent grant, other
 * tenant's user, version bump + ev:auth + audit events), user_provision (services only), RLS with
 * no tenant set, and the hashing gate (busy after its bounded wait; under a login storm with the
 * slots full and a login waiting, other logins are refused at once with 503 and /api/me/ is still
 * served). Refresh: an inactive user's answer comes before the revocation checks, and a reuse
 * bumps the token version on ev:auth.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adi/crypto.h"
#include "adi/jwt.h"
#include "auth.h"
#include "itest.h"

#define RDB       10
#define KEY       "integration-test-signing-key-0123456789"
#define ITER      1000
#define TENANT_A  "aaaaaaaa-0000-4000-8000-00000000000a"
#define TENANT_B  "bbbbbbbb-0000-4000-8000-00000000000b"
#define PASSWORD  "correct horse battery"
#define NOT_FOUND "Not found."

static const char *migrations_dir;

/* The running service's state (auth_app_t), kept by capture_init for the gate tests. */
static auth_app_t *service_app;

/* auth_init that keeps the state it built. */
static adi_err capture_init(const adi_svc_config_t *common, void *cfg, void **app, adi_error_t *err)
{
    adi_err rc = auth_init(common, cfg, app, err);
    if (rc == ADI_OK)
        service_app = *app;
    return rc;
}

/* A user made by the fixture. */
typedef struct tuser {
    char id[37];        /* uuid */
    const char *email;  /* e-mail */
    const char *tenant; /* tenant, NULL for none */
    const char *role;   /* role or NULL */
    bool superuser;     /* is_superuser */
} tuser_t;

typedef struct fix {
    char dbname[48];            /* the test's database */
    char consumer[48];          /* consumer name prefix */
    char redis_url[160];        /* REDIS_URL/10 */
    char db_url[256];           /* adi_auth on the test database */
    char reply[160];            /* the test client's reply stream */
    auth_cfg_t acfg;            /* the service's own settings */
    adi_svc_def_t def;          /* the service */
    adi_svc_config_t cfg;       /* its common settings */
    adi_svc_t *svc;             /* running service */
    adi_bus_t *bus;             /* test client on RDB */
    adi_db_t *db;               /* admin connection to the test database */
    adi_jwt_t *jwt;             /* verifies the service's tokens */
    adi_pool_t pool;            /* replies of the current test */
    char after[ADI_BUS_ID_MAX]; /* reply stream position */
    tuser_t admin_a;            /* ADMIN of tenant A */
    tuser_t viewer_a;           /* VIEWER of tenant A */
    tuser_t admin_b;            /* ADMIN of tenant B */
    tuser_t root;               /* superuser without tenant */
} fix_t;

/* ---- setup ------------------------------------------------------------------------------ */

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static void apply_migrations(adi_db_t *db)
{
    struct dirent **names = NULL;
    int n = scandir(migrations_dir, &names, NULL, by_name);
    assert_true(n > 0);
    for (int i = 0; i < n; i++) {
        size_t len = strlen(names[i]->d_name);
        if (len > 4 && strcmp(names[i]->d_name + len - 4, ".sql") == 0) {
            char path[1024];
            snprintf(path, sizeof(path), "%s/%s", migrations_dir, names[i]->d_name);
            FILE *fp = fopen(path, "rb");
            assert_non_null(fp);
            adi_buf_t b;
            adi_buf_init(&b);
            char chunk[4096];
            size_t k;
            while ((k = fread(chunk, 1, sizeof(chunk), fp)) > 0)
                adi_buf_append(&b, chunk, k);
            fclose(fp);
            itest_sql(db, b.data);
            adi_buf_dispose(&b);
        }
        free(names[i]);
    }
    free(names);
}

static adi_db_t *connect_to(const char *role, const char *dbname)
{
    char url[256];
    snprintf(url, sizeof(url), "postgresql://%s@127.0.0.1:%s/%s", role, itest_env("ADI_PG_PORT"),
             dbname);
    adi_db_t *db = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_db_connect(url, &db, &err) != ADI_OK)
        fail_msg("connect as %s: %s", role, err.message);
    return db;
}

/* Inserts a user directly (as the admin), hashed with `iter` iterations. */
static void make_user(fix_t *f, tuser_t *u, const char *email, const char *tenant_id,
                      const char *role, bool superuser, unsigned iter)
{
    char hash[ADI_PASSWORD_ENCODED_MAX];
    assert_int_equal(adi_password_hash(ADI_STR(PASSWORD), iter, hash, sizeof(hash), NULL), ADI_OK);
    adi_uuid_v4(u->id);
    u->email = email;
    u->tenant = tenant_id;
    u->role = role;
    u->superuser = superuser;
    adi_str_t p[5] = {adi_str_c(u->id), adi_str_c(tenant_id), adi_str_c(email), adi_str_c(hash),
                      superuser ? ADI_STR("t") : ADI_STR("f")};
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_db_exec(f->db, NULL,
                    "INSERT INTO auth.users (id, tenant_id, email, password, is_superuser, "
                    "first_name) VALUES ($1::uuid, $2::uuid, $3, $4, $5::boolean, 'First')",
                    5, p, NULL, &err) != ADI_OK)
        fail_msg("insert user: %s [%s]", err.message, adi_db_diag(f->db));
    if (role != NULL) {
        adi_str_t rp[3] = {adi_str_c(u->id), adi_str_c(tenant_id), adi_str_c(role)};
        assert_int_equal(adi_db_exec(f->db, NULL,
                                     "INSERT INTO auth.user_roles (user_id, tenant_id, role) "
                                     "VALUES ($1::uuid, $2::uuid, $3)",
                                     3, rp, NULL, &err),
                         ADI_OK);
    }
}

static int group_setup(void **state)
{
    fix_t *f = calloc(1, sizeof(*f));
    itest_unique(f->dbname, sizeof(f->dbname), "tauth");
    itest_unique(f->consumer, sizeof(f->consumer), "itauth");
    snprintf(f->redis_url, sizeof(f->redis_url), "%s/%d", itest_env("REDIS_URL"), RDB);
    snprintf(f->reply, sizeof(f->reply), "svc:{auth}:%s-client:rep", f->consumer);
    itest_redis_cleanup(RDB, "");

    adi_db_t *admin = itest_db();
    char sql[256];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", f->dbname);
    itest_sql(admin, sql);
    adi_db_free(admin);
    f->db = connect_to("postgres", f->dbname);
    apply_migrations(f->db);
    snprintf(f->db_url, sizeof(f->db_url), "postgresql://adi_auth@127.0.0.1:%s/%s",
             itest_env("ADI_PG_PORT"), f->dbname);

    make_user(f, &f->admin_a, "alice@a.example", TENANT_A, "ADMIN", false, ITER);
    make_user(f, &f->viewer_a, "bob@a.example", TENANT_A, "VIEWER", false, ITER);
    make_user(f, &f->admin_b, "carol@b.example", TENANT_B, "ADMIN", false, ITER);
    make_user(f, &f->root, "root@platform.example", NULL, NULL, true, ITER);

    auth_cfg_defaults(&f->acfg);
    f->acfg.jwt_signing_key = KEY;
    f->acfg.password_iterations = ITER;
    f->acfg.hash_concurrency = 1; /* with 3 workers: 1 slot, 1 waiter, 1 worker left free */
    f->def = (adi_svc_def_t){.name = "auth",
                             .schema = "auth",
                             .handlers = auth_handlers,
                             .cfg_rows = auth_cfg_rows,
                             .ncfg_rows = auth_ncfg_rows,
                             .cfg = &f->acfg,
                             .init = capture_init,
                             .fini = auth_fini};
    adi_svc_config_defaults(&f->cfg, 0);
    f->cfg.redis_url = f->redis_url;
    f->cfg.database_url = f->db_url;
    f->cfg.workers = 3;
    f->cfg.consumer_name = f->consumer;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_svc_new(&f->def, &f->cfg, NULL, &f->svc, &err) != ADI_OK)
        fail_msg("adi_svc_new: %s", err.message);
    if (adi_svc_start(f->svc, &err) != ADI_OK)
        fail_msg("adi_svc_start: %s", err.message);

    adi_bus_opts_t bo = {.url = f->redis_url, .reply_stream = f->reply};
    assert_int_equal(adi_bus_new(&bo, &f->bus, &err), ADI_OK);
    adi_jwt_config_t jc = {.alg = ADI_JWT_HS256, .secret = ADI_STR(KEY)};
    assert_int_equal(adi_jwt_new(&f->jwt, &jc, &err), ADI_OK);
    snprintf(f->after, sizeof(f->after), "0-0");
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    fix_t *f = *state;
    adi_svc_stop(f->svc);
    assert_true(adi_svc_wait(f->svc, 60000));
    adi_svc_free(f->svc);
    adi_bus_free(f->bus);
    adi_jwt_free(f->jwt);
    adi_db_free(f->db);
    adi_db_t *admin = itest_db();
    char sql[256];
    snprintf(sql, sizeof(sql), "DROP DATABASE %s WITH (FORCE)", f->dbname);
    itest_sql(admin, sql);
    adi_db_free(admin);
    itest_redis_cleanup(RDB, "");
    free(f);
    return 0;
}

static int test_setup(void **state)
{
    adi_pool_init(&((fix_t *)*state)->pool);
    return 0;
}

static int test_teardown(void **state)
{
    adi_pool_dispose(&((fix_t *)*state)->pool);
    return 0;
}

/* ---- requests --------------------------------------------------------------------------- */

/* A principal as the gateway builds it for `u` (roles from the fixture). */
static adi_principal *who(fix_t *f, const tuser_t *u)
{
    adi_principal *p = adi_pool_alloc(&f->pool, sizeof(*p));
    p->user_id = adi_str_c(u->id);
    p->tenant_id = u->tenant ? adi_str_c(u->tenant) : ADI_STR("");
    p->email = ADI_STR("");
    p->superuser = u->superuser;
    if (u->role != NULL) {
        p->roles.items = adi_pool_alloc(&f->pool, sizeof(adi_str_t));
        p->roles.items[0] = adi_str_c(u->role);
        p->roles.n = 1;
    }
    return p;
}

/* Sends `op` with `body` (type op->req, may be NULL) and `params` (encoded map or NULL). */
static adi_reply *call_p(fix_t *f, const adi_op_desc_t *op, adi_principal *p, const void *body,
                         adi_str_t params)
{
    char id[37];
    adi_uuid_v4(id);
    adi_envelope env;
    adi_str_t b = body ? adi_proto_encode_pool(op->req, body, &f->pool) : ADI_STR_NULL;
    itest_envelope(&env, id, op->name, f->reply, adi_now_ms() + 60000, p, b);
    env.params = params;
    env.client_ip = ADI_STR("127.0.0.1");
    itest_send(f->bus, "svc:{auth}:req", &env);
    return itest_wait(f->bus, f->reply, id, f->after, &f->pool);
}

static adi_reply *call(fix_t *f, const adi_op_desc_t *op, adi_principal *p, const void *body)
{
    return call_p(f, op, p, body, ADI_STR_NULL);
}

/* Sends `op` with the path parameter {id}. */
static adi_reply *call_id(fix_t *f, const adi_op_desc_t *op, adi_principal *p, const char *id)
{
    auth_id_req q;
    memset(&q, 0, sizeof(q));
    q.id = adi_str_c(id);
    return call_p(f, op, p, NULL, adi_proto_encode_pool(&auth_id_req__desc, &q, &f->pool));
}

/* The reply body decoded as op->rep; fails unless the status is `status`. */
static void *body_of(fix_t *f, const adi_op_desc_t *op, const adi_reply *r, int status)
{
    if (r->status != status)
        fail_msg("%s: status %d (want %d): %.*s", op->name, (int)r->status, status,
                 r->error ? (int)r->error->message.len : 0, r->error ? r->error->message.ptr : "");
    void *out = adi_pool_alloc(&f->pool, op->rep->size);
    adi_error_t err;
    adi_error_clear(&err);
    assert_non_null(r->body.ptr);
    assert_int_equal(adi_proto_decode(op->rep, r->body.ptr, r->body.len, &f->pool, out, &err),
                     ADI_OK);
    return out;
}

/* Asserts an error reply: status and message. */
static void assert_error(const adi_reply *r, int status, const char *message)
{
    if (r->status != status || r->error == NULL)
        fail_msg("status %d (want %d)", (int)r->status, status);
    if (!adi_str_eq_c(r->error->message, message))
        fail_msg("message '%.*s' (want '%s')", (int)r->error->message.len, r->error->message.ptr,
                 message);
}

/* Asserts an error reply: status, message and code. */
static void assert_error_code(const adi_reply *r, int status, const char *message, const char *code)
{
    assert_error(r, status, message);
    if (!adi_str_eq_c(r->error->code, code))
        fail_msg("code '%.*s' (want '%s')", (int)r->error->code.len, r->error->code.ptr, code);
}

/* Asserts a 400 whose field errors include `field` with `message`. */
static void assert_field(const adi_reply *r, const char *field, const char *message)
{
    assert_int_equal(r->status, 400);
    assert_non_null(r->error);
    for (size_t i = 0; i < r->error->fields.n; i++)
        if (adi_str_eq_c(r->error->fields.items[i].field, field) &&
            adi_str_eq_c(r->error->fields.items[i].message, message))
            return;
    fail_msg("no field error %s: %s", field, message);
}

static auth_login_rep *login(fix_t *f, const char *email, const char *password)
{
    auth_login_req q;
    memset(&q, 0, sizeof(q));
    q.username = adi_str_c(email);
    q.password = adi_str_c(password);
    return body_of(f, &adi_op_auth_login, call(f, &adi_op_auth_login, NULL, &q), 200);
}

static adi_reply *refresh(fix_t *f, adi_str_t token)
{
    auth_refresh_req q;
    memset(&q, 0, sizeof(q));
    q.refresh = token;
    return call(f, &adi_op_auth_refresh, NULL, &q);
}

static adi_jwt_claims_t verify(fix_t *f, adi_str_t token, adi_jwt_type type)
{
    adi_jwt_claims_t c;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_jwt_verify(f->jwt, token, type, adi_now_ms() / 1000, &c, NULL, &err) != ADI_OK)
        fail_msg("token refused: %s", err.message);
    return c;
}

static long long sql_int(fix_t *f, const char *sql, const char *param)
{
    return itest_sql_int(f->db, sql, param);
}

/* ---- events ----------------------------------------------------------------------------- */

/* Counts entries of ev:audit with `action` and `resource_id` (and metadata role, if given). */
static int audits(fix_t *f, const char *action, const char *resource_id, const char *role)
{
    char after[ADI_BUS_ID_MAX] = "0-0";
    int found = 0;
    for (;;) {
        adi_bus_batch_t b;
        adi_error_t err;
        adi_error_clear(&err);
        assert_int_equal(adi_bus_read(f->bus, ADI_KEY_EV_AUDIT, after, 64, 1, &b, &err), ADI_OK);
        size_t n = b.n;
        for (size_t i = 0; i < n; i++) {
            audit_event ev;
            memset(&ev, 0, sizeof(ev));
            assert_int_equal(adi_proto_decode(&audit_event__desc, b.items[i].msg.ptr,
                                              b.items[i].msg.len, &f->pool, &ev, &err),
                             ADI_OK);
            assert_int_equal(adi_proto_check_required(&audit_event__desc, &ev, &err), ADI_OK);
            if (!adi_str_eq_c(ev.action, action) || !adi_str_eq_c(ev.resource_id, resource_id))
                continue;
            if (role != NULL) {
                adi_buf_t js;
                adi_buf_init(&js);
                char want[64];
                snprintf(want, sizeof(want), "{\"role\":\"%s\"}", role);
                bool same =
                    ev.metadata.ptr != NULL &&
                    adi_msgpack_to_json(ev.metadata.ptr, ev.metadata.len, &js, &err) == ADI_OK &&
                    strcmp(js.data, want) == 0;
                adi_buf_dispose(&js);
                if (!same)
                    continue;
            }
            found++;
        }
        adi_bus_batch_dispose(&b);
        if (n == 0)
            return found;
    }
}

/* The highest version published on ev:auth for `user` (kind must match), -1 when none. */
static long long auth_event_version(fix_t *f, const char *user, const char *kind)
{
    char after[ADI_BUS_ID_MAX] = "0-0";
    long long v = -1;
    for (;;) {
        adi_bus_batch_t b;
        adi_error_t err;
        adi_error_clear(&err);
        assert_int_equal(adi_bus_read(f->bus, ADI_KEY_EV_AUTH, after, 64, 1, &b, &err), ADI_OK);
        size_t n = b.n;
        for (size_t i = 0; i < n; i++) {
            auth_event ev;
            memset(&ev, 0, sizeof(ev));
            assert_int_equal(adi_proto_decode(&auth_event__desc, b.items[i].msg.ptr,
                                              b.items[i].msg.len, &f->pool, &ev, &err),
                             ADI_OK);
            if (adi_str_eq_c(ev.user_id, user) && adi_str_eq_c(ev.kind, kind) && ev.version > v)
                v = ev.version;
        }
        adi_bus_batch_dispose(&b);
        if (n == 0)
            return v;
    }
}

/* ---- login and token -------------------------------------------------------------------- */

static void test_login(void **state)
{
    fix_t *f = *state;
    int before = audits(f, "login", f->admin_a.id, NULL);
    auth_login_rep *rep = login(f, "Alice@A.example", PASSWORD);
    assert_true(adi_str_eq_c(rep->tenant_id, TENANT_A));
    assert_true(adi_str_eq_c(rep->user->id, f->admin_a.id));
    assert_true(adi_str_eq_c(rep->user->email, "alice@a.example"));
    assert_true(adi_str_eq_c(rep->user->first_name, "First"));
    assert_true(adi_str_eq_c(rep->user->last_name, ""));
    assert_true(adi_str_eq_c(rep->user->tenant, TENANT_A));
    assert_true(adi_str_eq_c(rep->user->timezone, "America/Jamaica"));
    assert_int_equal(rep->user->roles.n, 1);
    assert_true(adi_str_eq_c(rep->user->roles.items[0], "ADMIN"));

    adi_jwt_claims_t a = verify(f, rep->access, ADI_JWT_ACCESS);
    adi_jwt_claims_t r = verify(f, rep->refresh, ADI_JWT_REFRESH);
    assert_string_equal(a.user_id, f->admin_a.id);
    assert_string_equal(a.tenant_id, TENANT_A);
    assert_int_equal(a.nroles, 1);
    assert_string_equal(a.roles[0], "ADMIN");
    assert_int_equal(a.exp - a.iat, 1800);
    assert_int_equal(r.exp - r.iat, 86400);
    assert_false(a.is_superuser);
    assert_string_not_equal(a.jti, r.jti);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM auth.refresh_tokens WHERE jti = $1", r.jti),
                     1);
    assert_int_equal(audits(f, "login", f->admin_a.id, NULL), before + 1);

    /* auth.token: the same check, just the pair. */
    auth_login_req q = {.username = ADI_STR("bob@a.example"), .password = ADI_STR(PASSWORD)};
    auth_token_pair *tp =
        body_of(f, &adi_op_auth_token, call(f, &adi_op_auth_token, NULL, &q), 200);
    a = verify(f, tp->access, ADI_JWT_ACCESS);
    assert_string_equal(a.user_id, f->viewer_a.id);
    assert_string_equal(a.roles[0], "VIEWER");
}

static void test_login_refused(void **state)
{
    fix_t *f = *state;
    auth_login_req q = {.username = ADI_STR("alice@a.example"), .password = ADI_STR("wrong-pw")};
    assert_error(call(f, &adi_op_auth_login, NULL, &q), 401, AUTH_MSG_BAD_LOGIN);
    assert_error(call(f, &adi_op_auth_token, NULL, &q), 401, AUTH_MSG_BAD_LOGIN);
    q.username = ADI_STR("nobody@a.example");
    q.password = ADI_STR(PASSWORD);
    assert_error(call(f, &adi_op_auth_login, NULL, &q), 401, AUTH_MSG_BAD_LOGIN);

    tuser_t gone;
    make_user(f, &gone, "gone@a.example", TENANT_A, NULL, false, ITER);
    itest_sql(f->db, "UPDATE auth.users SET is_active = false WHERE email = 'gone@a.example'");
    q.username = ADI_STR("gone@a.example");
    assert_error(call(f, &adi_op_auth_login, NULL, &q), 401, AUTH_MSG_BAD_LOGIN);

    /* Unusable, malformed and other-algorithm hashes verify nothing: the same refusal (padded
       with a dummy verification of the configured cost, see unit.crypto_password). */
    static const char *const unusable[] = {
        "!Rh3DkVUcqXMHdrzyx6bd0Wbkw0bDFGd2YXkUrXo1",
        "pbkdf2_sha256$1000$x$y",
        "argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
    };
    for (size_t i = 0; i < sizeof(unusable) / sizeof(unusable[0]); i++) {
        char email[64];
        snprintf(email, sizeof(email), "unusable%zu@a.example", i);
        tuser_t un;
        make_user(f, &un, adi_pool_strdup(&f->pool, adi_str_c(email)).ptr, TENANT_A, NULL, false,
                  ITER);
        adi_str_t p[2] = {adi_str_c(un.id), adi_str_c(unusable[i])};
        adi_error_t err;
        adi_error_clear(&err);
        assert_int_equal(adi_db_exec(f->db, NULL,
                                     "UPDATE auth.users SET password = $2 WHERE id = $1::uuid", 2,
                                     p, NULL, &err),
                         ADI_OK);
        q.username = adi_str_c(email);
        assert_error(call(f, &adi_op_auth_login, NULL, &q), 401, AUTH_MSG_BAD_LOGIN);
    }

    /* Validation: both fields required. */
    auth_login_req empty;
    memset(&empty, 0, sizeof(empty));
    adi_reply *r = call(f, &adi_op_auth_login, NULL, &empty);
    assert_field(r, "username", "This field is required.");
    assert_field(r, "password", "This field is required.");
}

/* Sends `op` with the request id `id` (a redelivery reuses it). */
static adi_reply *call_as(fix_t *f, const adi_op_desc_t *op, const char *id, const void *body)
{
    adi_envelope env;
    adi_str_t b = adi_proto_encode_pool(op->req, body, &f->pool);
    itest_envelope(&env, id, op->name, f->reply, adi_now_ms() + 60000, NULL, b);
    env.client_ip = ADI_STR("127.0.0.1");
    itest_send(f->bus, "svc:{auth}:req", &env);
    return itest_wait(f->bus, f->reply, id, f->after, &f->pool);
}

/*
 * Replies carrying tokens are never kept in the idempotency table: a second delivery of the
 * same login is answered 409 (send a new request), and no token is in the database.
 */
static void test_token_reply_not_stored(void **state)
{
    fix_t *f = *state;
    char id[48];
    itest_unique(id, sizeof(id), "login-again");
    auth_login_req q = {.username = ADI_STR("alice@a.example"), .password = ADI_STR(PASSWORD)};
    auth_login_rep *rep =
        body_of(f, &adi_op_auth_login, call_as(f, &adi_op_auth_login, id, &q), 200);
    char access[2048];
    snprintf(access, sizeof(access), "%.*s", (int)rep->access.len, rep->access.ptr);
    assert_error(call_as(f, &adi_op_auth_login, id, &q), 409,
                 "This request was already served; its reply held secrets and is not kept: send "
                 "a new request.");
    assert_int_equal(itest_sql_int(f->db,
                                   "SELECT count(*) FROM auth.adi_idempotency "
                                   "WHERE position(convert_to($1, 'UTF8') in reply) > 0",
                                   access),
                     0);
    assert_int_equal(
        itest_sql_int(f->db, "SELECT count(*) FROM auth.adi_idempotency WHERE op = 'auth.login'",
                      NULL) > 0,
        1);
}

static void test_login_upgrades_hash(void **state)
{
    fix_t *f = *state;
    tuser_t old;
    make_user(f, &old, "old@a.example", TENANT_A, NULL, false, 500);
    assert_int_equal(sql_int(f,
                             "SELECT count(*) FROM auth.users WHERE email = $1 AND "
                             "password LIKE 'pbkdf2_sha256$500$%'",
                             "old@a.example"),
                     1);
    login(f, "old@a.example", PASSWORD);
    assert_int_equal(sql_int(f,
                             "SELECT count(*) FROM auth.users WHERE email = $1 AND "
                             "password LIKE 'pbkdf2_sha256$1000$%'",
                             "old@a.example"),
                     1);
    login(f, "old@a.example", PASSWORD); /* the new hash verifies */
}

static void test_same_email_two_tenants(void **state)
{
    fix_t *f = *state;
    tuser_t twin;
    make_user(f, &twin, "alice@a.example", TENANT_B, NULL, false, ITER);
    /* Both accounts have the same password: the oldest wins, deterministically. */
    auth_login_rep *rep = login(f, "alice@a.example", PASSWORD);
    assert_true(adi_str_eq_c(rep->user->id, f->admin_a.id));
    itest_sql(f->db, "UPDATE auth.users SET password = 'pbkdf2_sha256$1000$x$y' "
                     "WHERE email = 'alice@a.example' AND tenant_id = '" TENANT_B "'");
    adi_str_t p = adi_str_c(twin.id);
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(
        adi_db_exec(f->db, NULL, "DELETE FROM auth.users WHERE id = $1::uuid", 1, &p, NULL, &err),
        ADI_OK);
}

/* ---- refresh ---------------------------------------------------------------------------- */

static void test_refresh_rotation_and_reuse(void **state)
{
    fix_t *f = *state;
    auth_login_rep *l = login(f, "bob@a.example", PASSWORD);
    adi_jwt_claims_t c1 = verify(f, l->refresh, ADI_JWT_REFRESH);

    auth_token_pair *p2 = body_of(f, &adi_op_auth_refresh, refresh(f, l->refresh), 200);
    adi_jwt_claims_t c2 = verify(f, p2->refresh, ADI_JWT_REFRESH);
    adi_jwt_claims_t a2 = verify(f, p2->access, ADI_JWT_ACCESS);
    assert_string_equal(a2.user_id, f->viewer_a.id);
    assert_string_not_equal(c1.jti, c2.jti);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM auth.refresh_tokens WHERE jti = $1 AND rotated_at IS NOT NULL "
             "AND replaced_by = '%s'",
             c2.jti);
    assert_int_equal(sql_int(f, sql, c1.jti), 1);
    snprintf(sql, sizeof(sql),
             "SELECT count(DISTINCT family) FROM auth.refresh_tokens WHERE jti IN ($1, '%s')",
             c2.jti);
    assert_int_equal(sql_int(f, sql, c1.jti), 1); /* the same family */

    auth_token_pair *p3 = body_of(f, &adi_op_auth_refresh, refresh(f, p2->refresh), 200);
    long long ver =
        sql_int(f, "SELECT token_version FROM auth.users WHERE id = $1::uuid", f->viewer_a.id);
    assert_int_equal(verify(f, p3->access, ADI_JWT_ACCESS).ver, ver);
    /* t1 again: rotated, and its successor t2 is rotated too: reuse, the family is revoked, and
       the user's token version is bumped and on ev:auth already when the 401 arrives, so the
       access tokens issued so far (the thief's too) are refused at once. */
    assert_error(refresh(f, l->refresh), 401, AUTH_MSG_BLACKLISTED);
    assert_int_equal(
        sql_int(f, "SELECT token_version FROM auth.users WHERE id = $1::uuid", f->viewer_a.id),
        ver + 1);
    assert_int_equal(auth_event_version(f, f->viewer_a.id, "tokens_revoked"), ver + 1);
    assert_error(refresh(f, p3->refresh), 401, AUTH_MSG_BLACKLISTED);
    /* A token of the revoked family is no reuse: no second bump. */
    assert_int_equal(
        sql_int(f, "SELECT token_version FROM auth.users WHERE id = $1::uuid", f->viewer_a.id),
        ver + 1);
    assert_int_equal(sql_int(f,
                             "SELECT count(*) FROM auth.refresh_tokens t JOIN "
                             "auth.refresh_tokens o ON o.family = t.family "
                             "WHERE t.jti = $1 AND o.revoked_at IS NULL",
                             c1.jti),
                     0);
    /* A new login starts a new family that works. */
    auth_login_rep *l2 = login(f, "bob@a.example", PASSWORD);
    body_of(f, &adi_op_auth_refresh, refresh(f, l2->refresh), 200);
}

static void test_refresh_grace(void **state)
{
    fix_t *f = *state;
    auth_login_rep *l = login(f, "bob@a.example", PASSWORD);
    adi_jwt_claims_t c1 = verify(f, l->refresh, ADI_JWT_REFRESH);
    auth_token_pair *p2 = body_of(f, &adi_op_auth_refresh, refresh(f, l->refresh), 200);
    /* Within the grace, the immediately preceding token gets a fresh pair, nothing revoked. */
    auth_token_pair *g = body_of(f, &adi_op_auth_refresh, refresh(f, l->refresh), 200);
    verify(f, g->refresh, ADI_JWT_REFRESH);
    assert_int_equal(sql_int(f,
                             "SELECT count(*) FROM auth.refresh_tokens b WHERE b.revoked_at IS "
                             "NULL AND b.family = (SELECT family FROM auth.refresh_tokens "
                             "WHERE jti = $1)",
                             c1.jti),
                     3);
    body_of(f, &adi_op_auth_refresh, refresh(f, p2->refresh), 200);
    /* Past the grace (rotation moved an hour back), the same presentation is a reuse. */
    auth_login_rep *l3 = login(f, "bob@a.example", PASSWORD);
    adi_jwt_claims_t c3 = verify(f, l3->refresh, ADI_JWT_REFRESH);
    auth_token_pair *p4 = body_of(f, &adi_op_auth_refresh, refresh(f, l3->refresh), 200);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "UPDATE auth.refresh_tokens SET rotated_at = now() - interval '1 hour' "
             "WHERE jti = '%s'",
             c3.jti);
    itest_sql(f->db, sql);
    assert_error(refresh(f, l3->refresh), 401, AUTH_MSG_BLACKLISTED);
    assert_error(refresh(f, p4->refresh), 401, AUTH_MSG_BLACKLISTED);
}

static void test_refresh_refused(void **state)
{
    fix_t *f = *state;
    auth_login_rep *l = login(f, "bob@a.example", PASSWORD);
    assert_error(refresh(f, l->access), 401, ADI_JWT_MSG_WRONG_TYPE);
    assert_error(refresh(f, ADI_STR("not-a-token")), 401, ADI_JWT_MSG_INVALID);

    /* Signed with our key but never issued here (the Django version's, or PyJWT's): taken into
       a family of its own and rotated, as simplejwt accepts it; presented again, a reuse. Made
       for a user of another tenant than it names, or an unknown user: refused. */
    adi_jwt_claims_t c;
    adi_jwt_claims_init(&c, ADI_JWT_REFRESH, adi_now_ms() / 1000, 600);
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_jwt_claims_set_ids(&c, adi_str_c(f->viewer_a.id), ADI_STR(TENANT_A), &err),
                     ADI_OK);
    char tok[ADI_JWT_TOKEN_MAX + 1];
    assert_int_equal(adi_jwt_sign(f->jwt, &c, tok, sizeof(tok), NULL, &err), ADI_OK);
    auth_token_pair *adopted = body_of(f, &adi_op_auth_refresh, refresh(f, adi_str_c(tok)), 200);
    assert_int_equal(
        verify(f, adopted->access, ADI_JWT_ACCESS).ver,
        sql_int(f, "SELECT token_version FROM auth.users WHERE id = $1::uuid", f->viewer_a.id));
    assert_int_equal(sql_int(f,
                             "SELECT count(*) FROM auth.refresh_tokens WHERE jti = $1 AND "
                             "rotated_at IS NOT NULL",
                             c.jti),
                     1);
    /* Its successor rotated in turn (no grace for two tabs then): presenting it is a reuse. */
    body_of(f, &adi_op_auth_refresh, refresh(f, adopted->refresh), 200);
    assert_error(refresh(f, adi_str_c(tok)), 401, AUTH_MSG_BLACKLISTED);
    adi_jwt_claims_t other;
    adi_jwt_claims_init(&other, ADI_JWT_REFRESH, adi_now_ms() / 1000, 600);
    assert_int_equal(
        adi_jwt_claims_set_ids(&other, adi_str_c(f->viewer_a.id), ADI_STR(TENANT_B), &err), ADI_OK);
    assert_int_equal(adi_jwt_sign(f->jwt, &other, tok, sizeof(tok), NULL, &err), ADI_OK);
    assert_error(refresh(f, adi_str_c(tok)), 401, ADI_JWT_MSG_INVALID);
    char ghost[37];
    adi_uuid_v4(ghost);
    adi_jwt_claims_init(&other, ADI_JWT_REFRESH, adi_now_ms() / 1000, 600);
    assert_int_equal(adi_jwt_claims_set_ids(&other, adi_str_c(ghost), ADI_STR(TENANT_A), &err),
                     ADI_OK);
    assert_int_equal(adi_jwt_sign(f->jwt, &other, tok, sizeof(tok), NULL, &err), ADI_OK);
    assert_error(refresh(f, adi_str_c(tok)), 401, ADI_JWT_MSG_INVALID);

    /* A deactivated user cannot refresh. */
    tuser_t tmp;
    make_user(f, &tmp, "tmp@a.example", TENANT_A, NULL, false, ITER);
    auth_login_rep *lt = login(f, "tmp@a.example", PASSWORD);
    itest_sql(f->db, "UPDATE auth.users SET is_active = false WHERE email = 'tmp@a.example'");
    assert_error(refresh(f, lt->refresh), 401, "No active account found for the given token.");

    /* The account is checked first (simplejwt): a revoked token (as deactivate-user leaves them)
       and a reused one of an inactive user get the same answer, and the reuse revokes nothing. */
    tuser_t off;
    make_user(f, &off, "off@a.example", TENANT_A, NULL, false, ITER);
    auth_login_rep *lo = login(f, "off@a.example", PASSWORD);
    auth_token_pair *o2 = body_of(f, &adi_op_auth_refresh, refresh(f, lo->refresh), 200);
    body_of(f, &adi_op_auth_refresh, refresh(f, o2->refresh), 200);
    auth_login_rep *lr = login(f, "off@a.example", PASSWORD);
    assert_int_equal(sql_int(f,
                             "WITH r AS (UPDATE auth.refresh_tokens SET revoked_at = now() "
                             "WHERE jti = $1 RETURNING 1) SELECT count(*) FROM r",
                             verify(f, lr->refresh, ADI_JWT_REFRESH).jti),
                     1);
    itest_sql(f->db, "UPDATE auth.users SET is_active = false WHERE email = 'off@a.example'");
    assert_error(refresh(f, lr->refresh), 401, "No active account found for the given token.");
    assert_error(refresh(f, lo->refresh), 401, "No active account found for the given token.");
    assert_int_equal(sql_int(f, "SELECT token_version FROM auth.users WHERE id = $1::uuid", off.id),
                     0);
    assert_int_equal(sql_int(f,
                             "SELECT count(*) FROM auth.refresh_tokens WHERE revoked_at IS NOT "
                             "NULL AND family = (SELECT family FROM auth.refresh_tokens "
                             "WHERE jti = $1)",
                             verify(f, lo->refresh, ADI_JWT_REFRESH).jti),
                     0);
}

/* ---- me --------------------------------------------------------------------------------- */

static void test_me(void **state)
{
    fix_t *f = *state;
    auth_me_rep *m =
        body_of(f, &adi_op_auth_me, call(f, &adi_op_auth_me, who(f, &f->viewer_a), NULL), 200);
    assert_true(adi_str_eq_c(m->user->id, f->viewer_a.id));
    assert_true(adi_str_eq_c(m->tenant_id, TENANT_A));
    assert_int_equal(m->user->roles.n, 1);

    /* X-Tenant-Id from a non-superuser is ignored. */
    auth_me_req q = {.tenant_override = ADI_STR(TENANT_B)};
    adi_str_t params = adi_proto_encode_pool(&auth_me_req__desc, &q, &f->pool);
    m = body_of(f, &adi_op_auth_me, call_p(f, &adi_op_auth_me, who(f, &f->viewer_a), NULL, params),
                200);
    assert_true(adi_str_eq_c(m->tenant_id, TENANT_A));

    /* A superuser without tenant: its own row, tenant null, and the override honoured. */
    m = body_of(f, &adi_op_auth_me, call(f, &adi_op_auth_me, who(f, &f->root), NULL), 200);
    assert_true(adi_str_eq_c(m->user->id, f->root.id));
    assert_null(m->tenant_id.ptr);
    assert_null(m->user->tenant.ptr);
    m = body_of(f, &adi_op_auth_me, call_p(f, &adi_op_auth_me, who(f, &f->root), NULL, params),
                200);
    assert_true(adi_str_eq_c(m->tenant_id, TENANT_B));

    /* Unknown user and no principal. */
    tuser_t ghost = f->viewer_a;
    adi_uuid_v4(ghost.id);
    assert_error_code(call(f, &adi_op_auth_me, who(f, &ghost), NULL), 401, "User not found",
                      "user_not_found");
    assert_error(call(f, &adi_op_auth_me, NULL, NULL), 401, AUTH_MSG_NO_CREDS);
    /* An inactive user (whose token the gateway has not refused yet). */
    tuser_t idle;
    make_user(f, &idle, "idle@a.example", TENANT_A, NULL, false, ITER);
    itest_sql(f->db, "UPDATE auth.users SET is_active = false WHERE email = 'idle@a.example'");
    assert_error_code(call(f, &adi_op_auth_me, who(f, &idle), NULL), 401, "User is inactive",
                      "user_inactive");
    /* Other refusals keep the generic code. */
    assert_error_code(call(f, &adi_op_auth_me, NULL, NULL), 401, AUTH_MSG_NO_CREDS,
                      "unauthenticated");

    /* The tenant-less superuser logs in too. */
    auth_login_rep *l = login(f, "root@platform.example", PASSWORD);
    assert_null(l->tenant_id.ptr);
    adi_jwt_claims_t a = verify(f, l->access, ADI_JWT_ACCESS);
    assert_true(a.is_superuser);
    assert_string_equal(a.tenant_id, "");
    body_of(f, &adi_op_auth_refresh, refresh(f, l->refresh), 200);
}

/* ---- users ------------------------------------------------------------------------------ */

static bool list_has(const auth_user_list *l, const char *id)
{
    for (size_t i = 0; i < l->items.n; i++)
        if (adi_str_eq_c(l->items.items[i].id, id))
            return true;
    return false;
}

static void test_users_scoping(void **state)
{
    fix_t *f = *state;
    auth_user_list *la = body_of(f, &adi_op_auth_users_list,
                                 call(f, &adi_op_auth_users_list, who(f, &f->viewer_a), NULL), 200);
    assert_true(list_has(la, f->admin_a.id));
    assert_true(list_has(la, f->viewer_a.id));
    assert_false(list_has(la, f->admin_b.id));
    assert_false(list_has(la, f->root.id));
    for (size_t i = 0; i < la->items.n; i++) {
        assert_true(adi_str_eq_c(la->items.items[i].tenant, TENANT_A));
        if (i > 0) {
            const adi_str_t *a = &la->items.items[i - 1].email, *b = &la->items.items[i].email;
            size_t n = a->len < b->len ? a->len : b->len;
            int c = memcmp(a->ptr, b->ptr, n);
            assert_true(c < 0 || (c == 0 && a->len <= b->len));
        }
        if (adi_str_eq_c(la->items.items[i].id, f->admin_a.id))
            assert_true(adi_str_eq_c(la->items.items[i].roles.items[0], "ADMIN"));
    }
    auth_user_list *lb = body_of(f, &adi_op_auth_users_list,
                                 call(f, &adi_op_auth_users_list, who(f, &f->admin_b), NULL), 200);
    assert_true(list_has(lb, f->admin_b.id));
    assert_false(list_has(lb, f->admin_a.id));
    /* No tenant in the principal: nothing. */
    auth_user_list *lr = body_of(f, &adi_op_auth_users_list,
                                 call(f, &adi_op_auth_users_list, who(f, &f->root), NULL), 200);
    assert_int_equal(lr->items.n, 0);

    auth_user *u =
        body_of(f, &adi_op_auth_users_get,
                call_id(f, &adi_op_auth_users_get, who(f, &f->viewer_a), f->admin_a.id), 200);
    assert_true(adi_str_eq_c(u->email, "alice@a.example"));
    assert_error(call_id(f, &adi_op_auth_users_get, who(f, &f->viewer_a), f->admin_b.id), 404,
                 NOT_FOUND);
    assert_error(call_id(f, &adi_op_auth_users_get, who(f, &f->admin_b), f->admin_a.id), 404,
                 NOT_FOUND);
    assert_error(call_id(f, &adi_op_auth_users_get, who(f, &f->viewer_a), "not-a-uuid"), 404,
                 NOT_FOUND);
    assert_error(call_id(f, &adi_op_auth_users_get, who(f, &f->viewer_a),
                         "00000000-0000-4000-8000-000000000000"),
                 404, NOT_FOUND);

    /* Row-level security on its own: the service role with no tenant set sees nothing. */
    adi_db_t *svcdb = connect_to("adi_auth", f->dbname);
    assert_int_equal(itest_sql_int(svcdb, "SELECT count(*) FROM auth.users", NULL), 0);
    assert_int_equal(itest_sql_int(svcdb, "SELECT count(*) FROM auth.user_roles", NULL), 0);
    assert_int_equal(itest_sql_int(svcdb, "SELECT count(*) FROM auth.refresh_tokens", NULL), 0);
    adi_db_free(svcdb);
}

static void test_users_create(void **state)
{
    fix_t *f = *state;
    auth_user_create_req q;
    memset(&q, 0, sizeof(q));
    q.email = ADI_STR("Dave@A.Example");
    q.password = ADI_STR("dave-password");
    q.first_name = ADI_STR("Dave");
    auth_user_create_rep *c =
        body_of(f, &adi_op_auth_users_create,
                call(f, &adi_op_auth_users_create, who(f, &f->admin_a), &q), 201);
    assert_true(adi_str_eq_c(c->email, "Dave@a.example")); /* domain normalised */
    assert_true(adi_str_eq_c(c->first_name, "Dave"));
    assert_true(adi_str_eq_c(c->last_name, ""));
    assert_true(adi_str_eq_c(c->timezone, "America/Jamaica"));
    auth_login_rep *l = login(f, "dave@a.example", "dave-password");
    assert_true(adi_str_eq(l->user->id, c->id));
    assert_int_equal(l->user->roles.n, 0);

    /* The same e-mail again (any case) in the tenant: DRF's unique message. */
    q.email = ADI_STR("DAVE@a.example");
    assert_field(call(f, &adi_op_auth_users_create, who(f, &f->admin_a), &q), "email",
                 AUTH_MSG_EMAIL_TAKEN);
    /* Another tenant may have it. */
    q.timezone = ADI_STR("Europe/London");
    c = body_of(f, &adi_op_auth_users_create,
                call(f, &adi_op_auth_users_create, who(f, &f->admin_b), &q), 201);
    assert_true(adi_str_eq_c(c->timezone, "Europe/London"));

    /* Not an admin: 403 even if the gateway let it through. */
    q.email = ADI_STR("eve@a.example");
    assert_error(call(f, &adi_op_auth_users_create, who(f, &f->viewer_a), &q), 403,
                 AUTH_MSG_NOT_ADMIN);
    /* Validation. */
    q.password = ADI_STR("short");
    q.email = ADI_STR("not-an-email");
    adi_reply *r = call(f, &adi_op_auth_users_create, who(f, &f->admin_a), &q);
    assert_field(r, "email", "Enter a valid email address.");
    assert_field(r, "password", "Ensure this field has at least 8 characters.");
    auth_user_create_req none;
    memset(&none, 0, sizeof(none));
    r = call(f, &adi_op_auth_users_create, who(f, &f->admin_a), &none);
    assert_field(r, "email", "This field is required.");
    assert_field(r, "password", "This field is required.");
}

/* ---- roles ------------------------------------------------------------------------------ */

static void test_roles(void **state)
{
    fix_t *f = *state;
    tuser_t u;
    make_user(f, &u, "roles@a.example", TENANT_A, NULL, false, ITER);
    auth_login_rep *l = login(f, "roles@a.example", PASSWORD);
    assert_int_equal(verify(f, l->access, ADI_JWT_ACCESS).ver, 0);

    auth_role_create_req q = {.user = adi_str_c(u.id), .role = ADI_STR("ANALYST")};
    auth_role *r1 = body_of(f, &adi_op_auth_roles_create,
                            call(f, &adi_op_auth_roles_create, who(f, &f->admin_a), &q), 201);
    assert_true(adi_str_eq_c(r1->user, u.id));
    assert_true(adi_str_eq_c(r1->tenant, TENANT_A));
    assert_true(adi_str_eq_c(r1->role, "ANALYST"));
    assert_int_equal(r1->created_at.len, 32); /* 2026-11-23T19:51:09.354026-05:00 */
    assert_int_equal(auth_event_version(f, u.id, "roles_changed"), 1);
    assert_int_equal(audits(f, "role_assigned", u.id, "ANALYST"), 1);

    /* Idempotent: the same assignment again, nothing changes. */
    auth_role *r2 = body_of(f, &adi_op_auth_roles_assign,
                            call(f, &adi_op_auth_roles_assign, who(f, &f->admin_a), &q), 201);
    assert_true(adi_str_eq(r1->id, r2->id));
    assert_int_equal(auth_event_version(f, u.id, "roles_changed"), 1);
    assert_int_equal(audits(f, "role_assigned", u.id, "ANALYST"), 1);

    /* assign: a second role, version 2; the refresh picks up both roles and the version. */
    q.role = ADI_STR("VIEWER");
    auth_role *r3 = body_of(f, &adi_op_auth_roles_assign,
                            call(f, &adi_op_auth_roles_assign, who(f, &f->admin_a), &q), 201);
    assert_int_equal(auth_event_version(f, u.id, "roles_changed"), 2);
    auth_token_pair *p = body_of(f, &adi_op_auth_refresh, refresh(f, l->refresh), 200);
    adi_jwt_claims_t a = verify(f, p->access, ADI_JWT_ACCESS);
    assert_int_equal(a.ver, 2);
    assert_int_equal(a.nroles, 2);
    assert_string_equal(a.roles[0], "ANALYST");
    assert_string_equal(a.roles[1], "VIEWER");

    /* Errors: another tenant's user, unknown user, malformed id, bad role, not an admin. */
    q.user = adi_str_c(f->admin_b.id);
    assert_field(call(f, &adi_op_auth_roles_create, who(f, &f->admin_a), &q), "user",
                 AUTH_MSG_OTHER_TENANT);
    q.user = ADI_STR("00000000-0000-4000-8000-000000000000");
    assert_field(call(f, &adi_op_auth_roles_assign, who(f, &f->admin_a), &q), "user",
                 AUTH_MSG_OTHER_TENANT);
    q.user = ADI_STR("nope");
    assert_field(call(f, &adi_op_auth_roles_assign, who(f, &f->admin_a), &q), "user",
                 "Must be a valid UUID.");
    q.user = adi_str_c(u.id);
    q.role = ADI_STR("OWNER");
    assert_field(call(f, &adi_op_auth_roles_assign, who(f, &f->admin_a), &q), "role",
                 "\"OWNER\" is not a valid choice.");
    q.role = ADI_STR("ADMIN");
    assert_error(call(f, &adi_op_auth_roles_assign, who(f, &f->viewer_a), &q), 403,
                 AUTH_MSG_NOT_ADMIN);

    /* Lists are per tenant. */
    auth_role_list *la = body_of(f, &adi_op_auth_roles_list,
                                 call(f, &adi_op_auth_roles_list, who(f, &f->viewer_a), NULL), 200);
    bool seen = false;
    for (size_t i = 0; i < la->items.n; i++) {
        assert_true(adi_str_eq_c(la->items.items[i].tenant, TENANT_A));
        seen = seen || adi_str_eq(la->items.items[i].id, r3->id);
    }
    assert_true(seen);
    auth_role_list *lb = body_of(f, &adi_op_auth_roles_list,
                                 call(f, &adi_op_auth_roles_list, who(f, &f->admin_b), NULL), 200);
    for (size_t i = 0; i < lb->items.n; i++)
        assert_true(adi_str_eq_c(lb->items.items[i].tenant, TENANT_B));

    /* Delete: 404 for another tenant, then 204, version 3, audit; then 404. */
    char rid[37];
    snprintf(rid, sizeof(rid), "%.*s", (int)r3->id.len, r3->id.ptr);
    assert_error(call_id(f, &adi_op_auth_roles_delete, who(f, &f->admin_b), rid), 404, NOT_FOUND);
    assert_error(call_id(f, &adi_op_auth_roles_delete, who(f, &f->viewer_a), rid), 403,
                 AUTH_MSG_NOT_ADMIN);
    adi_reply *d = call_id(f, &adi_op_auth_roles_delete, who(f, &f->admin_a), rid);
    assert_int_equal(d->status, 204);
    assert_null(d->body.ptr);
    assert_int_equal(auth_event_version(f, u.id, "roles_changed"), 3);
    assert_int_equal(audits(f, "role_revoked", u.id, "VIEWER"), 1);
    assert_error(call_id(f, &adi_op_auth_roles_delete, who(f, &f->admin_a), rid), 404, NOT_FOUND);
    assert_error(call_id(f, &adi_op_auth_roles_delete, who(f, &f->admin_a), "x"), 404, NOT_FOUND);
    p = body_of(f, &adi_op_auth_refresh, refresh(f, p->refresh), 200);
    a = verify(f, p->access, ADI_JWT_ACCESS);
    assert_int_equal(a.ver, 3);
    assert_int_equal(a.nroles, 1);
}

/* ---- provisioning ----------------------------------------------------------------------- */

static void test_user_provision(void **state)
{
    fix_t *f = *state;
    auth_user_provision_req q;
    memset(&q, 0, sizeof(q));
    q.tenant_id = ADI_STR("cccccccc-0000-4000-8000-00000000000c");
    q.email = ADI_STR("first@c.example");
    q.password = ADI_STR("first-password");
    q.role = ADI_STR("ADMIN");
    /* A user principal cannot call it. */
    assert_int_equal(call(f, &adi_op_auth_user_provision, who(f, &f->admin_a), &q)->status, 403);
    adi_principal svc = {.service = ADI_STR("tenant")};
    auth_user *u = body_of(f, &adi_op_auth_user_provision,
                           call(f, &adi_op_auth_user_provision, &svc, &q), 201);
    assert_true(adi_str_eq_c(u->tenant, "cccccccc-0000-4000-8000-00000000000c"));
    assert_int_equal(u->roles.n, 1);
    auth_login_rep *l = login(f, "first@c.example", "first-password");
    assert_true(adi_str_eq_c(l->user->roles.items[0], "ADMIN"));
    assert_field(call(f, &adi_op_auth_user_provision, &svc, &q), "email", AUTH_MSG_EMAIL_TAKEN);
}

/* ---- the hashing gate ------------------------------------------------------------------- */

/* The requests waiting for a hashing slot of `app` now. */
static int gate_waiting(auth_app_t *app)
{
    pthread_mutex_lock(&app->gate.mu);
    int n = app->gate.waiting;
    pthread_mutex_unlock(&app->gate.mu);
    return n;
}

/* Sends a login of `email` without waiting for the reply; `id` receives the request id. */
static void send_login(fix_t *f, const char *email, char id[37])
{
    adi_uuid_v4(id);
    auth_login_req q = {.username = adi_str_c(email), .password = ADI_STR(PASSWORD)};
    adi_envelope env;
    itest_envelope(&env, id, adi_op_auth_login.name, f->reply, adi_now_ms() + 60000, NULL,
                   adi_proto_encode_pool(adi_op_auth_login.req, &q, &f->pool));
    env.client_ip = ADI_STR("127.0.0.1");
    itest_send(f->bus, "svc:{auth}:req", &env);
}

/*
 * A login storm on the running service (3 workers, 1 hashing slot, so 1 waiter): with the slot
 * taken and one login waiting for it, every other login is refused at once (503, AUTH_MSG_BUSY)
 * instead of holding a worker, and /api/me/ is served on the worker left free while that login
 * is still queued. The wait is made as long as the request's deadline, so the order shown does
 * not depend on timing.
 */
static void test_gate_storm(void **state)
{
    fix_t *f = *state;
    auth_app_t *app = service_app;
    assert_non_null(app);
    assert_int_equal(app->hash_slots, 1);
    assert_int_equal(app->gate.max_waiting, 1);
    pthread_mutex_lock(&app->gate.mu);
    int64_t wait_ms = app->gate.wait_ms;
    app->gate.wait_ms = 60000;
    pthread_mutex_unlock(&app->gate.mu);

    /* The slot is taken, as by a login hashing. */
    adi_ctx_t holder = {
        .app = app, .metrics = adi_svc_metrics(f->svc), .deadline_ms = adi_now_ms() + 60000};
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(auth_gate_enter(&holder, &err), ADI_OK);

    /* A login queues for it (its reply is read later from this position). */
    char queued_after[ADI_BUS_ID_MAX];
    snprintf(queued_after, sizeof(queued_after), "%s", f->after);
    char queued[37];
    send_login(f, "alice@a.example", queued);
    for (int i = 0; i < 60000 && gate_waiting(app) < 1; i++)
        nanosleep(&(struct timespec){0, 1000000L}, NULL); /* polls the gate, bounded */
    assert_int_equal(gate_waiting(app), 1);

    /* The other logins do not wait: 503 at once with the busy message (the gateway renders it
       {"error": {"code": "unavailable", "message": ...}} with Retry-After). */
    for (int i = 0; i < 3; i++) {
        char id[37];
        send_login(f, "bob@a.example", id);
        assert_error(itest_wait(f->bus, f->reply, id, f->after, &f->pool), 503, AUTH_MSG_BUSY);
    }
    /* /api/me/ is served while the slot is full and the first login still waits. */
    auth_me_rep *m =
        body_of(f, &adi_op_auth_me, call(f, &adi_op_auth_me, who(f, &f->viewer_a), NULL), 200);
    assert_true(adi_str_eq_c(m->user->id, f->viewer_a.id));
    assert_int_equal(gate_waiting(app), 1);

    /* The slot given back, the queued login goes through. */
    auth_gate_leave(&holder);
    auth_login_rep *l = body_of(f, &adi_op_auth_login,
                                itest_wait(f->bus, f->reply, queued, queued_after, &f->pool), 200);
    assert_true(adi_str_eq_c(l->user->id, f->admin_a.id));
    assert_int_equal(gate_waiting(app), 0);
    pthread_mutex_lock(&app->gate.mu);
    app->gate.wait_ms = wait_ms;
    pthread_mutex_unlock(&app->gate.mu);
}

static void test_gate(void **state)
{
    (void)state;
    auth_cfg_t cfg;
    auth_cfg_defaults(&cfg);
    cfg.jwt_signing_key = KEY;
    cfg.hash_concurrency = 2;
    adi_svc_config_t common;
    adi_svc_config_defaults(&common, 0);
    void *app = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(auth_init(&common, &cfg, &app, &err), ADI_OK);
    adi_metrics_t *m = adi_metrics_new("auth-test");
    adi_ctx_t ctx = {.app = app, .metrics = m, .deadline_ms = adi_now_ms() + 60000};
    assert_int_equal(auth_gate_enter(&ctx, &err), ADI_OK);
    assert_int_equal(auth_gate_enter(&ctx, &err), ADI_OK);
    assert_int_equal(auth_gate_enter(&ctx, &err), ADI_BUSY);
    assert_string_equal(err.message, AUTH_MSG_BUSY);
    auth_gate_leave(&ctx);
    assert_int_equal(auth_gate_enter(&ctx, &err), ADI_OK);
    auth_gate_leave(&ctx);
    auth_gate_leave(&ctx);
    /* A passed deadline does not wait at all. */
    auth_gate_enter(&ctx, &err);
    auth_gate_enter(&ctx, &err);
    ctx.deadline_ms = adi_now_ms() - 1;
    assert_int_equal(auth_gate_enter(&ctx, &err), ADI_BUSY);
    auth_gate_leave(&ctx);
    auth_gate_leave(&ctx);
    adi_metrics_free(m);
    auth_app_t *a = app;
    assert_int_equal(a->gate.max_waiting, 1); /* 4 workers - 2 slots - 1 */
    auth_fini(app);

    /* The slots and waiters always leave a worker free: no waiter when the slots take all but
       one worker, and never more slots than WORKERS - 1. */
    cfg.hash_concurrency = 3;
    assert_int_equal(auth_init(&common, &cfg, &app, &err), ADI_OK);
    a = app;
    assert_int_equal(a->hash_slots, 3);
    assert_int_equal(a->gate.max_waiting, 0);
    ctx = (adi_ctx_t){.app = app, .metrics = NULL, .deadline_ms = adi_now_ms() + 60000};
    a->gate.wait_ms = 60000;
    m = adi_metrics_new("auth-test");
    ctx.metrics = m;
    for (int i = 0; i < 3; i++)
        assert_int_equal(auth_gate_enter(&ctx, &err), ADI_OK);
    assert_int_equal(auth_gate_enter(&ctx, &err), ADI_BUSY); /* at once: nobody may wait */
    for (int i = 0; i < 3; i++)
        auth_gate_leave(&ctx);
    adi_metrics_free(m);
    auth_fini(app);
    cfg.hash_concurrency = 64;
    assert_int_equal(auth_init(&common, &cfg, &app, &err), ADI_OK);
    a = app;
    assert_int_equal(a->hash_slots, 3);
    assert_int_equal(a->gate.max_waiting, 0);
    auth_fini(app);
    cfg.hash_concurrency = 0;
    common.workers = 1;
    assert_int_equal(auth_init(&common, &cfg, &app, &err), ADI_OK);
    a = app;
    assert_int_equal(a->hash_slots, 1);
    assert_int_equal(a->gate.max_waiting, 0);
    auth_fini(app);
    common.workers = 4;

    /* Startup checks. */
    cfg.jwt_signing_key = "";
    assert_int_equal(auth_init(&common, &cfg, &app, &err), ADI_INVALID);
    assert_non_null(strstr(err.message, "JWT_SIGNING_KEY"));
    cfg.jwt_algorithm = "none";
    assert_int_equal(auth_init(&common, &cfg, &app, &err), ADI_INVALID);
    cfg.jwt_algorithm = "RS256";
    cfg.jwt_private_key_file = "/nonexistent/key.pem";
    assert_int_equal(auth_init(&common, &cfg, &app, &err), ADI_INVALID);
    assert_non_null(strstr(err.message, "JWT_PRIVATE_KEY_FILE"));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <services/auth/migrations>\n", argv[0]);
        return 2;
    }
    migrations_dir = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_login, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_login_refused, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_token_reply_not_stored, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_login_upgrades_hash, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_same_email_two_tenants, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_refresh_rotation_and_reuse, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_refresh_grace, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_refresh_refused, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_me, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_users_scoping, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_users_create, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_roles, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_user_provision, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_gate_storm, test_setup, test_teardown),
        cmocka_unit_test(test_gate),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
