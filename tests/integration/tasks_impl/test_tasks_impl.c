/* SPDX-License-Identifier: MIT */
/*
 * The task runner's tasks (services/task-runner/tasks) called directly, as a worker calls them,
 * with hand-made task contexts, against real services: the tenant and vault services in-process
 * (adi_tenant_core, adi_vault_core), the real adi-auth binary, the harness Redis and PostgreSQL
 * (a database of this test's own migrated by adi-admin), and a real SMTP server on loopback
 * (tests/harness/mail_sink.py on Debian's python3-aiosmtpd):
 *
 *   argv[1] adi-admin     applies services/{auth,tenant,vault}/migrations
 *   argv[2] adi-auth      runs as a child process on that database
 *   argv[3] services/     the repository's services folder
 *   argv[4] mail_sink.py  the SMTP sink, run with /usr/bin/python3
 *
 * Everything uses Redis database RDB, so the fixed stream names (svc:{tenant}:req, ev:audit,
 * tasks:default) cannot meet a running suite or another test.
 *
 * Covered: the task table; tenant.invitation_mail (the facts, internal only, tenant scoping, 404,
 * 409 for accepted and expired, 400 without a tenant); send_invitation_email delivering the
 * invitation the tenant service enqueued (envelope, headers, link, role, expiry, Message-ID),
 * encoded-words and quoted-printable for a non-ASCII tenant, no mail without SMTP_URL, header
 * injection refused, accepted/expired/unknown invitations permanent, SMTP AUTH from the URL
 * (accepted, refused login retryable, no password in the error), an unreachable server and a
 * silent one (retryable: unavailable, timeout), a bad scheme (permanent), a passed deadline;
 * the sync tasks (the audit entry written once even when the task runs twice, no token in the
 * result, "No GOOGLE credential." permanent, a tenant mismatch refused, the fan-out enqueuing one
 * unique copy per tenant with a key); rotate_deks (every tenant, one tenant, the result JSON,
 * credentials still decrypting after it).
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "adi/keys.h"
#include "adi/svc.h"
#include "adi/tasks.h"
#include "itest.h"
#include "task_runner.h"
#include "tasks_int.h"
#include "tenant.h"
#include "vault.h"

#define RDB          14
#define REPLIES      "svc:{task-runner}:itest-client:rep"
#define TASK_REPLIES "svc:{task-runner}:itest-worker:rep"
#define BASE_URL     "https://app.example.test/"
#define SINK_SECRET  "sink-pass-Zq9"

static const char *admin_bin, *auth_bin, *services_dir, *sink_py;
/* The schemas this test's database has. */
static const char *const migrated[] = {"auth", "tenant", "vault", NULL};

/* An SMTP sink child. */
typedef struct sink {
    pid_t pid;     /* the python process */
    char dir[512]; /* where it stores mails */
    int port;      /* where it listens */
} sink_t;

/* Everything the tests share. */
typedef struct world {
    char dbname[48];            /* this test's database */
    char mig_dir[512];          /* MIGRATIONS_DIR with links to auth, tenant and vault */
    char redis_url[256];        /* REDIS_URL with database RDB */
    char key_b64[64];           /* the vault's local KMS master key */
    adi_db_t *root;             /* admin connection to the harness database */
    adi_db_t *db;               /* admin (superuser) connection to this test's database */
    pid_t auth_pid;             /* the adi-auth child */
    adi_svc_t *tenant;          /* the tenant service */
    adi_svc_t *vault;           /* the vault service */
    adi_svc_config_t tcfg;      /* the tenant service's configuration */
    adi_svc_config_t vcfg;      /* the vault service's configuration */
    vault_cfg_t vault_own;      /* the vault's own settings */
    adi_svc_def_t vault_def;    /* the vault's declaration */
    char tenant_url[256];       /* DATABASE_URL of the tenant service */
    char vault_url[256];        /* DATABASE_URL of the vault service */
    adi_bus_t *bus;             /* test client, replies on REPLIES */
    adi_bus_t *tbus;            /* the tasks' bus (as a worker's), replies on TASK_REPLIES */
    char after[ADI_BUS_ID_MAX]; /* read position on REPLIES */
    sink_t sink;                /* the plain SMTP sink */
    sink_t auth_sink;           /* a sink that requires AUTH */
} world_t;

static world_t W;

static adi_str_t admin_role[] = {{"ADMIN", 5}};

/* A tenant made by signup. */
typedef struct acct {
    char id[37];          /* tenant id */
    char admin_id[37];    /* its first admin */
    char email[96];       /* the admin's e-mail (as stored: lower case) */
    adi_principal admin;  /* the admin as the gateway would describe them */
    adi_principal runner; /* the task runner acting for the tenant */
} acct_t;

/* ---- plumbing --------------------------------------------------------------------------- */

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Starts mail_sink.py storing in a fresh folder; with `auth` it requires user:SINK_SECRET. */
static void sink_start(sink_t *s, const char *name, bool auth)
{
    memset(s, 0, sizeof(*s));
    char port_file[600], log[600];
    snprintf(s->dir, sizeof(s->dir), "%s/%s-%s", itest_env("ADI_TEST_DIR"), W.dbname, name);
    assert_int_equal(mkdir(s->dir, 0755), 0);
    snprintf(port_file, sizeof(port_file), "%s.port", s->dir);
    snprintf(log, sizeof(log), "%s.log", s->dir);
    unlink(port_file);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *f = freopen(log, "w", stdout);
        if (f == NULL || dup2(STDOUT_FILENO, STDERR_FILENO) < 0)
            _exit(126);
        setenv("ITEST_SINK_AUTH", "mailer:" SINK_SECRET, 1);
        if (auth)
            execl("/usr/bin/python3", "python3", sink_py, "--dir", s->dir, "--port-file", port_file,
                  "--auth-env", "ITEST_SINK_AUTH", (char *)NULL);
        else
            execl("/usr/bin/python3", "python3", sink_py, "--dir", s->dir, "--port-file", port_file,
                  (char *)NULL);
        _exit(127);
    }
    s->pid = pid;
    for (int i = 0; i < 3000; i++) {
        FILE *f = fopen(port_file, "r");
        if (f != NULL) {
            int ok = fscanf(f, "%d", &s->port);
            fclose(f);
            if (ok == 1 && s->port > 0)
                return;
        }
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid)
            fail_msg("mail_sink.py exited (see %s)", log);
        nap_ms(20);
    }
    fail_msg("mail_sink.py did not start (see %s)", log);
}

static void sink_stop(sink_t *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    assert_int_equal(itest_wait_child(s->pid), 0);
    s->pid = 0;
}

/* Mails stored by `s` so far. */
static int sink_count(const sink_t *s)
{
    DIR *d = opendir(s->dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* The whole file `<dir>/<n>.<ext>` (NUL-terminated, in `pool`). */
static const char *sink_file(adi_pool_t *pool, const sink_t *s, int n, const char *ext)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/%06d.%s", s->dir, n, ext);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("no %s", path);
    adi_buf_t b;
    adi_buf_init(&b);
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        adi_buf_append(&b, chunk, got);
    fclose(f);
    adi_buf_append(&b, "", 0);
    const char *out = adi_pool_strdup(pool, (adi_str_t){b.data ? b.data : "", b.len}).ptr;
    adi_buf_dispose(&b);
    return out;
}

static void expect_has(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL)
        fail_msg("\"%s\" not found in:\n%s", needle, hay);
}

/* One request to `stream`, waiting for its reply (in `pool`). */
static adi_reply *call(adi_pool_t *pool, const char *stream, const adi_op_desc_t *op,
                       adi_principal *p, const void *body)
{
    char id[37];
    adi_uuid_v4(id);
    adi_str_t b = body ? adi_proto_encode_pool(op->req, body, pool) : ADI_STR_NULL;
    adi_envelope env;
    itest_envelope(&env, id, op->name, REPLIES, adi_now_ms() + 60000, p, b);
    itest_send(W.bus, stream, &env);
    return itest_wait(W.bus, REPLIES, id, W.after, pool);
}

static void *ok(adi_pool_t *pool, const adi_op_desc_t *op, const adi_reply *r, int status)
{
    if (r->status != status) {
        const adi_reply_error *e = r->error;
        fail_msg("%s: status %d (%.*s), expected %d", op->name, (int)r->status,
                 e ? (int)e->message.len : 0, e ? e->message.ptr : "", status);
    }
    void *out = adi_pool_alloc(pool, op->rep->size);
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_proto_decode(op->rep, r->body.ptr, r->body.len, pool, out, &err), ADI_OK);
    return out;
}

static void expect_status(const adi_reply *r, int status, const char *message)
{
    if (r->status != status)
        fail_msg("status %d, expected %d", (int)r->status, status);
    if (message == NULL)
        return;
    assert_non_null(r->error);
    bool found = adi_str_eq_c(r->error->message, message);
    for (size_t i = 0; i < r->error->fields.n; i++)
        found = found || adi_str_eq_c(r->error->fields.items[i].message, message);
    if (!found)
        fail_msg("no message \"%s\" (detail \"%.*s\")", message, (int)r->error->message.len,
                 r->error->message.ptr);
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

/* Runs trusted SQL with one text parameter on this test's database. */
static void sql_exec(const char *sql, const char *param)
{
    adi_str_t p = adi_str_c(param);
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_db_exec(W.db, NULL, sql, param ? 1 : 0, &p, NULL, &err) != ADI_OK)
        fail_msg("SQL failed (%s): %s", err.message, sql);
}

/* ---- fixture ---------------------------------------------------------------------------- */

static void start_services(void)
{
    adi_error_t err;
    adi_error_clear(&err);
    snprintf(W.tenant_url, sizeof(W.tenant_url), "postgresql://adi_tenant@127.0.0.1:%s/%s",
             itest_env("ADI_PG_PORT"), W.dbname);
    adi_svc_config_defaults(&W.tcfg, 0);
    W.tcfg.redis_url = W.redis_url;
    W.tcfg.database_url = W.tenant_url;
    W.tcfg.workers = 3;
    W.tcfg.consumer_name = "tasks-impl-itest-tenant";
    if (adi_svc_new(&tenant_def, &W.tcfg, NULL, &W.tenant, &err) != ADI_OK ||
        adi_svc_start(W.tenant, &err) != ADI_OK)
        fail_msg("tenant service: %s", err.message);

    unsigned char raw[32];
    adi_random(raw, sizeof(raw));
    size_t n = 0;
    assert_int_equal(adi_b64_encode(raw, sizeof(raw), W.key_b64, sizeof(W.key_b64), &n, &err),
                     ADI_OK);
    snprintf(W.vault_url, sizeof(W.vault_url), "postgresql://adi_vault@127.0.0.1:%s/%s",
             itest_env("ADI_PG_PORT"), W.dbname);
    adi_svc_config_defaults(&W.vcfg, 0);
    W.vcfg.redis_url = W.redis_url;
    W.vcfg.database_url = W.vault_url;
    W.vcfg.workers = 2;
    W.vcfg.consumer_name = "tasks-impl-itest-vault";
    vault_cfg_defaults(&W.vault_own);
    W.vault_own.kms_local_key = W.key_b64;
    W.vault_def = (adi_svc_def_t){.name = "vault",
                                  .schema = "vault",
                                  .handlers = vault_handlers,
                                  .cfg_rows = vault_cfg_rows,
                                  .ncfg_rows = vault_ncfg_rows,
                                  .cfg = &W.vault_own,
                                  .init = vault_init,
                                  .fini = vault_fini};
    if (adi_svc_new(&W.vault_def, &W.vcfg, NULL, &W.vault, &err) != ADI_OK ||
        adi_svc_start(W.vault, &err) != ADI_OK)
        fail_msg("vault service: %s", err.message);
}

static int world_setup(void **state)
{
    (void)state;
    memset(&W, 0, sizeof(W));
    snprintf(W.after, sizeof(W.after), "0-0");
    itest_unique(W.dbname, sizeof(W.dbname), "ttasks");
    snprintf(W.redis_url, sizeof(W.redis_url), "%s/%d", itest_env("REDIS_URL"), RDB);
    itest_redis_cleanup(RDB, "");

    itest_scratch_db(W.dbname, admin_bin, services_dir, migrated, W.mig_dir, sizeof(W.mig_dir),
                     &W.root, &W.db);
    adi_error_t err;
    adi_error_clear(&err);

    W.auth_pid =
        itest_spawn_auth(auth_bin, "tasks-impl-itest-auth", W.redis_url, W.dbname, 2, NULL);
    start_services();
    adi_bus_opts_t bo = {.url = W.redis_url, .reply_stream = REPLIES};
    assert_int_equal(adi_bus_new(&bo, &W.bus, &err), ADI_OK);
    adi_bus_opts_t to = {.url = W.redis_url, .reply_stream = TASK_REPLIES};
    assert_int_equal(adi_bus_new(&to, &W.tbus, &err), ADI_OK);
    sink_start(&W.sink, "mail", false);
    sink_start(&W.auth_sink, "mail-auth", true);

    /* Every service answers before any test starts. */
    adi_pool_t pool;
    adi_pool_init(&pool);
    const char *streams[] = {"svc:{auth}:req", "svc:{tenant}:req", "svc:{vault}:req"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(call(&pool, streams[i], &adi_op_sys_health, NULL, NULL)->status, 200);
    adi_pool_dispose(&pool);
    return 0;
}

static int world_teardown(void **state)
{
    (void)state;
    sink_stop(&W.sink);
    sink_stop(&W.auth_sink);
    adi_svc_t *svcs[2] = {W.tenant, W.vault};
    for (int i = 0; i < 2; i++) {
        if (svcs[i] == NULL)
            continue;
        adi_svc_stop(svcs[i]);
        assert_true(adi_svc_wait(svcs[i], 60000));
        adi_svc_free(svcs[i]);
    }
    if (W.auth_pid > 0) {
        kill(W.auth_pid, SIGTERM);
        assert_int_equal(itest_wait_child(W.auth_pid), 0);
    }
    adi_bus_free(W.bus);
    adi_bus_free(W.tbus);
    itest_scratch_db_drop(W.dbname, W.mig_dir, migrated, W.root, W.db);
    itest_redis_cleanup(RDB, "");
    return 0;
}

/* ---- tenants, invitations, credentials -------------------------------------------------- */

static void signup(adi_pool_t *pool, const char *name, acct_t *a)
{
    memset(a, 0, sizeof(*a));
    char u[48];
    itest_unique(u, sizeof(u), "adm");
    snprintf(a->email, sizeof(a->email), "%s@inviter.example", u);
    tenant_signup_req req = {.name = adi_str_c(name),
                             .admin_email = adi_str_c(a->email),
                             .admin_password = ADI_STR("correct horse battery")};
    tenant_signup_rep *rep =
        ok(pool, &adi_op_tenant_signup,
           call(pool, "svc:{tenant}:req", &adi_op_tenant_signup, NULL, &req), 201);
    snprintf(a->id, sizeof(a->id), "%.*s", (int)rep->id.len, rep->id.ptr);
    snprintf(a->admin_id, sizeof(a->admin_id), "%.*s", (int)rep->admin_user_id.len,
             rep->admin_user_id.ptr);
    a->admin = (adi_principal){
        .user_id = adi_str_c(a->admin_id), .tenant_id = adi_str_c(a->id), .roles = {1, admin_role}};
    a->runner = (adi_principal){.tenant_id = adi_str_c(a->id), .service = ADI_STR(TR_SERVICE)};
}

/* An invitation of `a` to `email` (role may be NULL); its id and token in `id`, `token`. */
static void invite(adi_pool_t *pool, acct_t *a, const char *email, const char *role, char id[37],
                   char token[64])
{
    tenant_invite_req req = {.email = adi_str_c(email), .role = adi_str_c(role)};
    tenant_invitation *inv =
        ok(pool, &adi_op_tenant_invite,
           call(pool, "svc:{tenant}:req", &adi_op_tenant_invite, &a->admin, &req), 201);
    snprintf(id, 37, "%.*s", (int)inv->id.len, inv->id.ptr);
    snprintf(token, 64, "%.*s", (int)inv->token.len, inv->token.ptr);
}

/* Waits for the send_invitation_email task the tenant service enqueued for `inv_id`. */
static task_msg *enqueued_mail_task(adi_pool_t *pool, const char *inv_id)
{
    char after[ADI_BUS_ID_MAX] = "0-0";
    int64_t until = adi_now_ms() + 60000;
    while (adi_now_ms() < until) {
        adi_bus_batch_t batch;
        adi_error_t err;
        adi_error_clear(&err);
        adi_err rc =
            adi_bus_read(W.bus, "tasks:default", after, ADI_BUS_BATCH_MAX, 500, &batch, &err);
        if (rc != ADI_OK)
            fail_msg("XREAD tasks:default: %s", err.message);
        for (size_t i = 0; i < batch.n; i++) {
            adi_str_t m = adi_pool_strdup(pool, batch.items[i].msg);
            task_msg *t = adi_pool_alloc(pool, sizeof(*t));
            task_send_invitation_args args;
            memset(&args, 0, sizeof(args));
            if (adi_proto_decode(&task_msg__desc, m.ptr, m.len, pool, t, &err) != ADI_OK ||
                !adi_str_eq_c(t->name, "send_invitation_email") ||
                adi_proto_decode(&task_send_invitation_args__desc, t->args.ptr, t->args.len, pool,
                                 &args, &err) != ADI_OK ||
                !adi_str_eq_c(args.invitation_id, inv_id))
                continue;
            adi_bus_batch_dispose(&batch);
            return t;
        }
        adi_bus_batch_dispose(&batch);
    }
    fail_msg("no send_invitation_email task for %s on tasks:default", inv_id);
    return NULL;
}

static const char *create_credential(adi_pool_t *pool, acct_t *a, const char *provider,
                                     const char *access)
{
    vault_create_req req;
    memset(&req, 0, sizeof(req));
    req.provider = adi_str_c(provider);
    req.account_id = ADI_STR("act_1234");
    req.access_token = adi_str_c(access);
    req.refresh_token = ADI_STR("refresh-token-SECRET-2");
    vault_credential *c =
        ok(pool, &adi_op_vault_create,
           call(pool, "svc:{vault}:req", &adi_op_vault_create, &a->admin, &req), 201);
    return adi_pool_strdup(pool, c->id).ptr;
}

/* ---- running a task as a worker would ---------------------------------------------------- */

/* One run of a task function and what it left. */
typedef struct run {
    adi_pool_t pool;  /* the task's pool */
    adi_buf_t result; /* its result JSON */
    adi_error_t err;  /* its error */
    adi_err rc;       /* its outcome */
    task_msg task;    /* the task it ran */
    char id[37];      /* the task id */
    adi_logctx_t log; /* its log context */
    tr_app_t app;     /* the runner's state it saw */
} run_t;

/* A task_msg for `row`, as adi_tasks_enqueue would make it. */
static void task_init(run_t *r, const tr_task_def_t *row, const char *id, const char *tenant,
                      adi_str_t args)
{
    memset(r, 0, sizeof(*r));
    adi_pool_init(&r->pool);
    adi_buf_init(&r->result);
    adi_error_clear(&r->err);
    if (id != NULL)
        snprintf(r->id, sizeof(r->id), "%s", id);
    else
        adi_uuid_v4(r->id);
    r->task.id = adi_str_c(r->id);
    r->task.name = adi_str_c(row->name);
    r->task.args = args;
    r->task.tenant_id = adi_str_c(tenant ? tenant : "");
    r->task.request_id = ADI_STR("itest-request");
    r->task.enqueued_at_ms = adi_now_ms();
}

/* Runs `row` on r->task with settings `cfg` (NULL: defaults) and a time limit of `limit_ms`. */
static adi_err task_run(run_t *r, const tr_task_def_t *row, const tr_cfg_t *cfg, int64_t limit_ms)
{
    void *args = adi_pool_alloc(&r->pool, row->args_size);
    adi_error_t derr;
    adi_error_clear(&derr);
    if (r->task.args.ptr != NULL && adi_proto_decode(row->args, r->task.args.ptr, r->task.args.len,
                                                     &r->pool, args, &derr) != ADI_OK)
        fail_msg("args of %s do not decode: %s", row->name, derr.message);
    assert_int_equal(adi_proto_check_required(row->args, args, &derr), ADI_OK);
    if (cfg != NULL)
        r->app.cfg = *cfg;
    r->log = (adi_logctx_t){
        .request_id = r->id, .tenant_id = tr_cstr(&r->pool, r->task.tenant_id), .op = row->name};
    tr_task_ctx_t ctx = {.app = &r->app,
                         .bus = W.tbus,
                         .pool = &r->pool,
                         .log = &r->log,
                         .task = &r->task,
                         .deadline_ms = adi_now_ms() + limit_ms,
                         .result = &r->result};
    r->rc = row->fn(&ctx, args, &r->err);
    return r->rc;
}

static void run_dispose(run_t *r)
{
    adi_buf_dispose(&r->result);
    adi_pool_dispose(&r->pool);
}

static const char *result_of(const run_t *r)
{
    return r->result.data ? r->result.data : "";
}

/* Mail settings pointing at `s` (NULL: no SMTP_URL). */
static void mail_cfg(tr_cfg_t *cfg, char *url, size_t n, const sink_t *s)
{
    memset(cfg, 0, sizeof(*cfg));
    if (s != NULL)
        snprintf(url, n, "smtp://127.0.0.1:%d", s->port);
    else
        snprintf(url, n, "%s", "");
    cfg->smtp_url = url;
    cfg->smtp_from = "ADinsights <no-reply@adinsights.local>";
    cfg->smtp_timeout_ms = 20000;
    cfg->app_base_url = BASE_URL;
}

/* ---- the table -------------------------------------------------------------------------- */

static void test_table(void **state)
{
    (void)state;
    static const char *const names[] = {"rotate_deks", "sync_meta_example", "sync_google_example",
                                        "send_invitation_email", "noop"};
    size_t n = 0;
    for (const tr_task_def_t *const *p = tr_tasks; *p != NULL; p++, n++) {
        const tr_task_def_t *row = *p;
        assert_string_equal(row->name, names[n]);
        assert_non_null(row->fn);
        assert_non_null(row->args);
        assert_int_equal(row->args_size, row->args->size);
        assert_true(row->max_attempts >= 1);
        assert_true(row->time_limit_ms >= 1000);
        assert_string_equal(row->default_queue, "default");
    }
    assert_int_equal(n, 5);
}

/* ---- tenant.invitation_mail --------------------------------------------------------------- */

static void test_invitation_mail_op(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    acct_t a, b;
    signup(&pool, "Facts Inc", &a);
    signup(&pool, "Other Inc", &b);
    char inv[37], token[64];
    invite(&pool, &a, "Facts.Person@Example.com", "ANALYST", inv, token);

    tenant_invitation_mail_req req = {.invitation_id = adi_str_c(inv)};
    const adi_op_desc_t *op = &adi_op_tenant_invitation_mail;
    tenant_invitation_mail_rep *rep =
        ok(&pool, op, call(&pool, "svc:{tenant}:req", op, &a.runner, &req), 200);
    assert_true(adi_str_eq_c(rep->email, "Facts.Person@Example.com"));
    assert_true(adi_str_eq_c(rep->token, token));
    assert_true(adi_str_eq_c(rep->tenant_name, "Facts Inc"));
    assert_true(adi_str_eq_c(rep->role, "ANALYST"));
    assert_int_equal(rep->expires_at.len, 32); /* ISO 8601 with microseconds and offset */
    assert_true(adi_str_eq_c(rep->invited_by_email, a.email));

    /* Services only; the tenant's own scope; the right errors. */
    expect_status(call(&pool, "svc:{tenant}:req", op, &a.admin, &req), 403, NULL);
    expect_status(call(&pool, "svc:{tenant}:req", op, &b.runner, &req), 404, "Not found.");
    adi_principal bare = {.service = ADI_STR(TR_SERVICE)};
    expect_status(call(&pool, "svc:{tenant}:req", op, &bare, &req), 400, TENANT_MSG_NO_TENANT);
    char ghost[37];
    adi_uuid_v4(ghost);
    tenant_invitation_mail_req g = {.invitation_id = adi_str_c(ghost)};
    expect_status(call(&pool, "svc:{tenant}:req", op, &a.runner, &g), 404, "Not found.");
    tenant_invitation_mail_req junk = {.invitation_id = ADI_STR("not-a-uuid")};
    expect_status(call(&pool, "svc:{tenant}:req", op, &a.runner, &junk), 400, NULL);

    /* Expired, then accepted: 409 with the accept route's wording. */
    sql_exec("UPDATE tenant.invitations SET expires_at = now() - interval '1 minute' "
             "WHERE id = $1::uuid",
             inv);
    expect_status(call(&pool, "svc:{tenant}:req", op, &a.runner, &req), 409,
                  TENANT_MSG_TOKEN_EXPIRED);
    sql_exec("UPDATE tenant.invitations SET accepted_at = now() WHERE id = $1::uuid", inv);
    expect_status(call(&pool, "svc:{tenant}:req", op, &a.runner, &req), 409, TENANT_MSG_TOKEN_USED);

    /* No role, and an inviter auth does not know: null role, "" inviter. */
    char inv2[37], token2[64];
    invite(&pool, &a, "norole@example.com", NULL, inv2, token2);
    char ghost_user[37];
    adi_uuid_v4(ghost_user);
    char sql[200];
    snprintf(sql, sizeof(sql),
             "UPDATE tenant.invitations SET invited_by = '%s' WHERE id = $1::uuid", ghost_user);
    sql_exec(sql, inv2);
    tenant_invitation_mail_req req2 = {.invitation_id = adi_str_c(inv2)};
    adi_reply *r = call(&pool, "svc:{tenant}:req", op, &a.runner, &req2);
    rep = ok(&pool, op, r, 200);
    assert_null(rep->role.ptr);
    assert_true(ADI_IS_NULL(tenant_invitation_mail_rep, rep, role));
    assert_int_equal(rep->invited_by_email.len, 0);
    adi_pool_dispose(&pool);
}

/* ---- send_invitation_email ---------------------------------------------------------------- */

static void test_send_invitation(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    acct_t a;
    signup(&pool, "Acme Mail", &a);
    char inv[37], token[64];
    invite(&pool, &a, "new.analyst@example.com", "ANALYST", inv, token);
    task_msg *t = enqueued_mail_task(&pool, inv);
    assert_true(adi_str_eq_c(t->tenant_id, a.id));

    tr_cfg_t cfg;
    char url[64];
    mail_cfg(&cfg, url, sizeof(url), &W.sink);
    int before = sink_count(&W.sink);
    run_t r;
    task_init(&r, &tr_task_send_invitation_email, tr_cstr(&pool, t->id), a.id, t->args);
    if (task_run(&r, &tr_task_send_invitation_email, &cfg, 60000) != ADI_OK)
        fail_msg("send_invitation_email: %s", r.err.message);
    assert_int_equal(sink_count(&W.sink), before + 1);
    char want[200];
    snprintf(want, sizeof(want), "\"sent\":true,\"invitation_id\":\"%s\"", inv);
    expect_has(result_of(&r), want);
    assert_null(strstr(result_of(&r), token));

    const char *meta = sink_file(&pool, &W.sink, before + 1, "json");
    expect_has(meta, "\"mail_from\": \"no-reply@adinsights.local\"");
    expect_has(meta, "\"rcpt_tos\": [\"new.analyst@example.com\"]");
    const char *eml = sink_file(&pool, &W.sink, before + 1, "eml");
    expect_has(eml, "\r\nTo: <new.analyst@example.com>\r\n");
    expect_has(eml, "\r\nFrom: \"ADinsights\" <no-reply@adinsights.local>\r\n");
    expect_has(eml, "\r\nSubject: You're invited to Acme Mail on ADinsights\r\n");
    assert_int_equal(strncmp(eml, "Date: ", 6), 0);
    snprintf(want, sizeof(want), "\r\nMessage-ID: <%s@adinsights.local>\r\n", r.id);
    expect_has(eml, want);
    expect_has(eml, "\r\nContent-Type: text/plain; charset=UTF-8\r\n");
    snprintf(want, sizeof(want), "\r\nhttps://app.example.test/accept-invite?token=%s\r\n", token);
    expect_has(eml, want);
    expect_has(eml, "\r\nRole: ANALYST\r\n");
    snprintf(want, sizeof(want), "%s has invited you to join\r\nAcme Mail\r\n", a.email);
    expect_has(eml, want);
    expect_has(eml, "This invitation expires on ");
    run_dispose(&r);

    /* Without SMTP_URL nothing is sent: the task succeeds and says so. */
    mail_cfg(&cfg, url, sizeof(url), NULL);
    task_init(&r, &tr_task_send_invitation_email, NULL, a.id, t->args);
    assert_int_equal(task_run(&r, &tr_task_send_invitation_email, &cfg, 60000), ADI_OK);
    expect_has(result_of(&r), "\"sent\":false");
    assert_int_equal(sink_count(&W.sink), before + 1);
    run_dispose(&r);
    adi_pool_dispose(&pool);
}

/* Decodes the RFC 2047 words (UTF-8, B) of the Subject of `eml` into `out`. */
static void decoded_subject(const char *eml, char *out, size_t n)
{
    const char *s = strstr(eml, "\r\nSubject: ");
    assert_non_null(s);
    const char *end = strstr(s + 2, "\r\n");
    while (end != NULL && end[2] == ' ')
        end = strstr(end + 2, "\r\n");
    assert_non_null(end);
    size_t o = 0;
    for (const char *p = strstr(s, "=?UTF-8?B?"); p != NULL && p < end;
         p = strstr(p, "=?UTF-8?B?")) {
        p += 10;
        const char *q = strstr(p, "?=");
        assert_non_null(q);
        unsigned char buf[128];
        int len = EVP_DecodeBlock(buf, (const unsigned char *)p, (int)(q - p));
        assert_true(len >= 0);
        while (len > 0 && q[-1] == '=' && buf[len - 1] == 0) { /* padding decodes as NULs */
            len--;
            q--;
        }
        assert_true(o + (size_t)len < n);
        memcpy(out + o, buf, (size_t)len);
        o += (size_t)len;
        p = strstr(p, "?=") + 2;
    }
    out[o] = '\0';
}

/* The body of `eml` (after the blank line) with quoted-printable decoded, in `pool`. */
static char *qp_body(adi_pool_t *pool, const char *eml)
{
    const char *p = strstr(eml, "\r\n\r\n");
    assert_non_null(p);
    p += 4;
    size_t n = strlen(p), o = 0;
    char *out = adi_pool_alloc(pool, n + 1);
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '=') {
            out[o++] = p[i];
        } else if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') {
            i += 2; /* soft line break */
        } else {
            unsigned v = 0;
            assert_true(i + 2 < n && sscanf(p + i + 1, "%2X", &v) == 1);
            out[o++] = (char)v;
            i += 2;
        }
    }
    out[o] = '\0';
    return out;
}

static void test_send_invitation_unicode(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    acct_t a;
    const char *name = "Caf\xc3\xa9 M\xc3\xbcnchen \xe2\x80\x94 \xe5\xba\x83\xe5\x91\x8a "
                       "Werbeagentur mit einem sehr langen Namen";
    signup(&pool, name, &a);
    char inv[37], token[64];
    invite(&pool, &a, "unicode@example.com", "VIEWER", inv, token);
    task_msg *t = enqueued_mail_task(&pool, inv);
    tr_cfg_t cfg;
    char url[64];
    mail_cfg(&cfg, url, sizeof(url), &W.sink);
    int before = sink_count(&W.sink);
    run_t r;
    task_init(&r, &tr_task_send_invitation_email, NULL, a.id, t->args);
    if (task_run(&r, &tr_task_send_invitation_email, &cfg, 60000) != ADI_OK)
        fail_msg("send_invitation_email: %s", r.err.message);
    run_dispose(&r);
    const char *eml = sink_file(&pool, &W.sink, before + 1, "eml");
    expect_has(eml, "\r\nSubject: =?UTF-8?B?");
    char subject[512], want[512];
    decoded_subject(eml, subject, sizeof(subject));
    snprintf(want, sizeof(want), "You're invited to %s on ADinsights", name);
    assert_string_equal(subject, want);
    expect_has(eml, "\r\nContent-Transfer-Encoding: quoted-printable\r\n");
    expect_has(eml, "Caf=C3=A9 M=C3=BCnchen");
    /* Every line fits in 78 characters; decoded, the body has the name and the link. */
    for (const char *l = strstr(eml, "\r\n\r\n") + 4; *l != '\0';) {
        const char *e = strstr(l, "\r\n");
        assert_non_null(e);
        assert_true(e - l <= 76);
        l = e + 2;
    }
    char *body = qp_body(&pool, eml);
    snprintf(want, sizeof(want), "\r\n%s\r\non ADinsights.\r\n", name);
    expect_has(body, want);
    snprintf(want, sizeof(want), "\r\nhttps://app.example.test/accept-invite?token=%s\r\n", token);
    expect_has(body, want);
    adi_pool_dispose(&pool);
}

static void test_send_invitation_refused(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    acct_t a;
    signup(&pool, "Refusals Ltd", &a);
    tr_cfg_t cfg;
    char url[64];
    mail_cfg(&cfg, url, sizeof(url), &W.sink);
    int before = sink_count(&W.sink);
    char inv[37], token[64];
    run_t r;

    /* Unknown invitation: permanent 404. */
    char ghost[37];
    adi_uuid_v4(ghost);
    task_send_invitation_args ga = {.invitation_id = adi_str_c(ghost)};
    task_init(&r, &tr_task_send_invitation_email, NULL, a.id,
              adi_proto_encode_pool(&task_send_invitation_args__desc, &ga, &pool));
    assert_int_equal(task_run(&r, &tr_task_send_invitation_email, &cfg, 60000), ADI_NOT_FOUND);
    run_dispose(&r);

    /* No tenant on the task: permanent. */
    invite(&pool, &a, "someone@example.com", "VIEWER", inv, token);
    task_send_invitation_args args = {.invitation_id = adi_str_c(inv)};
    adi_str_t mp = adi_proto_encode_pool(&task_send_invitation_args__desc, &args, &pool);
    task_init(&r, &tr_task_send_invitation_email, NULL, "", mp);
    assert_int_equal(task_run(&r, &tr_task_send_invitation_email, &cfg, 60000), ADI_INVALID);
    run_dispose(&r);

    /* A deadline already passed: nothing is called. */
    task_init(&r, &tr_task_send_invitation_email, NULL, a.id, mp);
    assert_int_equal(task_run(&r, &tr_task_send_invitation_email, &cfg, -1), ADI_TIMEOUT);
    run_dispose(&r);

    /* Not smtp(s)://: permanent, and nothing sent. */
    tr_cfg_t bad = cfg;
    bad.smtp_url = "http://127.0.0.1:1/";
    task_init(&r, &tr_task_send_invitation_email, NULL, a.id, mp);
    assert_int_equal(task_run(&r, &tr_task_send_invitation_email, &bad, 60000), ADI_INVALID);
    run_dispose(&r);

    /* A bad sender: permanent. */
    bad = cfg;
    bad.smtp_from = "ADinsights <no-reply@adinsights.local>\r\nBcc: evil@example.com";
    task_init(&r, &tr_task_send_invitation_email, NULL, a.id, mp);
    assert_int_equal(task_run(&r, &tr_task_send_invitation_email, &bad, 60000), ADI_INVALID);
    run_dispose(&r);

    /* Nobody listening: retryable. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    char dead[64];
    snprintf(dead, sizeof(dead), "smtp://127.0.0.1:%d", ntohs(sa.sin_port));
    bad = cfg;
    bad.smtp_url = dead;
    task_init(&r, &tr_task_send_invitation_email, NULL, a.id, mp);
    assert_int_equal(task_run(&r, &tr_task_send_invitation_email, &bad, 60000), ADI_UNAVAILABLE);
    run_dispose(&r);

    /* Listening but silent (no greeting): the delivery times out, retryable. */
    assert_int_equal(listen(fd, 4), 0);
    bad.smtp_timeout_ms = 300;
    task_init(&r, &tr_task_send_invitation_email, NULL, a.id, mp);
    assert_int_equal(task_run(&r, &tr_task_send_invitation_email, &bad, 60000), ADI_TIMEOUT);
    run_dispose(&r);
    close(fd);

    /* A tenant name with a line break never reaches a header. */
    sql_exec("UPDATE tenant.tenants SET name = E'Evil\\r\\nBcc: victim@example.com' "
             "WHERE id = $1::uuid",
             a.id);
    task_init(&r, &tr_task_send_invitation_email, NULL, a.id, mp);
    assert_int_equal(task_run(&r, &tr_task_send_invitation_email, &cfg, 60000), ADI_INVALID);
    run_dispose(&r);
    sql_exec("UPDATE tenant.tenants SET name = 'Refusals Ltd' WHERE id = $1::uuid", a.id);

    /* Accepted or expired: permanent 409. */
    sql_exec("UPDATE tenant.invitations SET accepted_at = now() WHERE id = $1::uuid", inv);
    task_init(&r, &tr_task_send_invitation_email, NULL, a.id, mp);
    assert_int_equal(task_run(&r, &tr_task_send_invitation_email, &cfg, 60000), ADI_CONFLICT);
    expect_has(r.err.message, TENANT_MSG_TOKEN_USED);
    run_dispose(&r);
    sql_exec("UPDATE tenant.invitations SET accepted_at = NULL, "
             "expires_at = now() - interval '1 second' WHERE id = $1::uuid",
             inv);
    task_init(&r, &tr_task_send_invitation_email, NULL, a.id, mp);
    assert_int_equal(task_run(&r, &tr_task_send_invitation_email, &cfg, 60000), ADI_CONFLICT);
    expect_has(r.err.message, TENANT_MSG_TOKEN_EXPIRED);
    run_dispose(&r);

    assert_int_equal(sink_count(&W.sink), before);
    adi_pool_dispose(&pool);
}

static void test_send_invitation_smtp_auth(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    acct_t a;
    signup(&pool, "Auth Mail", &a);
    char inv[37], token[64];
    invite(&pool, &a, "authed@example.com", "ADMIN", inv, token);
    task_send_invitation_args args = {.invitation_id = adi_str_c(inv)};
    adi_str_t mp = adi_proto_encode_pool(&task_send_invitation_args__desc, &args, &pool);
    tr_cfg_t cfg;
    char url[64], with_auth[160];
    mail_cfg(&cfg, url, sizeof(url), &W.auth_sink);
    int before = sink_count(&W.auth_sink);
    run_t r;

    /* No login: the server refuses the mail (530, permanent). */
    task_init(&r, &tr_task_send_invitation_email, NULL, a.id, mp);
    assert_int_not_equal(task_run(&r, &tr_task_send_invitation_email, &cfg, 60000), ADI_OK);
    run_dispose(&r);

    /* A wrong password: retryable, and the error never quotes the URL's password. */
    snprintf(with_auth, sizeof(with_auth), "smtp://mailer:wrong-PASS-77@127.0.0.1:%d",
             W.auth_sink.port);
    cfg.smtp_url = with_auth;
    task_init(&r, &tr_task_send_invitation_email, NULL, a.id, mp);
    assert_int_equal(task_run(&r, &tr_task_send_invitation_email, &cfg, 60000), ADI_UNAVAILABLE);
    assert_null(strstr(r.err.message, "wrong-PASS-77"));
    assert_null(strstr(r.err.message, "mailer"));
    run_dispose(&r);
    assert_int_equal(sink_count(&W.auth_sink), before);

    /* The right one: delivered as that user. */
    snprintf(with_auth, sizeof(with_auth), "smtp://mailer:%s@127.0.0.1:%d", SINK_SECRET,
             W.auth_sink.port);
    task_init(&r, &tr_task_send_invitation_email, NULL, a.id, mp);
    if (task_run(&r, &tr_task_send_invitation_email, &cfg, 60000) != ADI_OK)
        fail_msg("send_invitation_email: %s", r.err.message);
    assert_null(strstr(result_of(&r), SINK_SECRET));
    run_dispose(&r);
    assert_int_equal(sink_count(&W.auth_sink), before + 1);
    const char *meta = sink_file(&pool, &W.auth_sink, before + 1, "json");
    expect_has(meta, "\"auth_user\": \"mailer\"");
    expect_has(meta, "\"rcpt_tos\": [\"authed@example.com\"]");
    expect_has(sink_file(&pool, &W.auth_sink, before + 1, "eml"), "\r\nRole: ADMIN\r\n");
    adi_pool_dispose(&pool);
}

/* ---- the sync tasks --------------------------------------------------------------------- */

static void test_sync_tenant(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    acct_t a;
    signup(&pool, "Sync Co", &a);
    const char *cred = create_credential(&pool, &a, "META", "EAAB-meta-access-SECRET-1");

    run_t r;
    task_init(&r, &tr_task_sync_meta, NULL, a.id, ADI_STR_NULL);
    if (task_run(&r, &tr_task_sync_meta, NULL, 60000) != ADI_OK)
        fail_msg("sync_meta_example: %s", r.err.message);
    char want[160];
    snprintf(want, sizeof(want), "{\"provider\":\"META\",\"credential_id\":\"%s\"}", cred);
    assert_string_equal(result_of(&r), want);
    assert_null(strstr(result_of(&r), "SECRET"));
    char task_id[37];
    snprintf(task_id, sizeof(task_id), "%s", r.id);
    run_dispose(&r);

    static const char audit_sql[] =
        "SELECT count(*) FROM tenant.audit_log WHERE tenant_id = $1::uuid AND "
        "action = 'sync_triggered' AND resource_type = 'sync' AND resource_id = 'META' AND "
        "metadata = '{\"provider\": \"META\"}'::jsonb AND user_id IS NULL";
    wait_count(audit_sql, a.id, 1);

    /* The same task again (a lost acknowledgement): the same event, still one entry. Another
       task: a second entry. Both wait for the audit writer to drain ev:audit. */
    task_init(&r, &tr_task_sync_meta, task_id, a.id, ADI_STR_NULL);
    assert_int_equal(task_run(&r, &tr_task_sync_meta, NULL, 60000), ADI_OK);
    run_dispose(&r);
    task_init(&r, &tr_task_sync_meta, NULL, a.id, ADI_STR_NULL);
    assert_int_equal(task_run(&r, &tr_task_sync_meta, NULL, 60000), ADI_OK);
    run_dispose(&r);
    wait_count(audit_sql, a.id, 2);
    for (int i = 0; i < 3000; i++) {
        adi_bus_group_info_t gi;
        adi_error_t err;
        adi_error_clear(&err);
        if (adi_bus_group_info(W.bus, ADI_KEY_EV_AUDIT, TENANT_AUDIT_GROUP, &gi, &err) == ADI_OK &&
            gi.lag == 0 && gi.pending == 0)
            break;
        nap_ms(20);
    }
    assert_int_equal(sql_int(audit_sql, a.id), 2);

    /* The tenant in args, as adi-admin may give it; it must match the task's. */
    task_tenant_args ta = {.tenant_id = adi_str_c(a.id)};
    adi_str_t mp = adi_proto_encode_pool(&task_tenant_args__desc, &ta, &pool);
    task_init(&r, &tr_task_sync_meta, NULL, "", mp);
    assert_int_equal(task_run(&r, &tr_task_sync_meta, NULL, 60000), ADI_OK);
    run_dispose(&r);
    char other[37];
    adi_uuid_v4(other);
    task_init(&r, &tr_task_sync_meta, NULL, other, mp);
    assert_int_equal(task_run(&r, &tr_task_sync_meta, NULL, 60000), ADI_INVALID);
    run_dispose(&r);

    /* No GOOGLE credential: permanent, in the Django wording. */
    task_init(&r, &tr_task_sync_google, NULL, a.id, ADI_STR_NULL);
    assert_int_equal(task_run(&r, &tr_task_sync_google, NULL, 60000), ADI_NOT_FOUND);
    assert_string_equal(r.err.message, "No GOOGLE credential.");
    run_dispose(&r);
    adi_pool_dispose(&pool);
}

/* The entries of tasks:default named `name` and scoped to `tenant`. */
static int queued_copies(adi_pool_t *pool, const char *name, const char *tenant)
{
    char after[ADI_BUS_ID_MAX] = "0-0";
    int n = 0;
    for (;;) {
        adi_bus_batch_t batch;
        adi_error_t err;
        adi_error_clear(&err);
        assert_int_equal(
            adi_bus_read(W.bus, "tasks:default", after, ADI_BUS_BATCH_MAX, 1, &batch, &err),
            ADI_OK);
        size_t got = batch.n;
        for (size_t i = 0; i < batch.n; i++) {
            adi_str_t m = adi_pool_strdup(pool, batch.items[i].msg);
            task_msg t;
            memset(&t, 0, sizeof(t));
            if (adi_proto_decode(&task_msg__desc, m.ptr, m.len, pool, &t, &err) == ADI_OK &&
                adi_str_eq_c(t.name, name) && adi_str_eq_c(t.tenant_id, tenant))
                n++;
        }
        adi_bus_batch_dispose(&batch);
        if (got == 0)
            return n;
    }
}

static void test_sync_fan_out(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    acct_t a, b, c;
    signup(&pool, "Fan A", &a);
    signup(&pool, "Fan B", &b);
    signup(&pool, "Fan C", &c); /* no credential: no data key, no copy */
    create_credential(&pool, &a, "META", "token-a");
    create_credential(&pool, &b, "GOOGLE", "token-b");

    run_t r;
    task_init(&r, &tr_task_sync_meta, NULL, "", ADI_STR_NULL);
    if (task_run(&r, &tr_task_sync_meta, NULL, 60000) != ADI_OK)
        fail_msg("sync_meta_example: %s", r.err.message);
    expect_has(result_of(&r), "\"already_queued\":0}");
    run_dispose(&r);
    assert_int_equal(queued_copies(&pool, "sync_meta_example", a.id), 1);
    assert_int_equal(queued_copies(&pool, "sync_meta_example", b.id), 1);
    assert_int_equal(queued_copies(&pool, "sync_meta_example", c.id), 0);

    /* Again while the copies wait: unique per tenant, nothing doubled. */
    task_init(&r, &tr_task_sync_meta, NULL, "", ADI_STR_NULL);
    assert_int_equal(task_run(&r, &tr_task_sync_meta, NULL, 60000), ADI_OK);
    expect_has(result_of(&r), "\"enqueued\":0,");
    run_dispose(&r);
    assert_int_equal(queued_copies(&pool, "sync_meta_example", a.id), 1);
    assert_int_equal(queued_copies(&pool, "sync_meta_example", b.id), 1);
    adi_pool_dispose(&pool);
}

/* ---- rotate_deks ------------------------------------------------------------------------- */

static void test_rotate_deks(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    acct_t a, b;
    signup(&pool, "Rotate A", &a);
    signup(&pool, "Rotate B", &b);
    create_credential(&pool, &a, "META", "rot-a-1");
    create_credential(&pool, &a, "GOOGLE", "rot-a-2");
    create_credential(&pool, &b, "META", "rot-b-1");
    long long keyed = sql_int("SELECT count(DISTINCT tenant_id) FROM vault.tenant_keys", NULL);
    long long creds = sql_int("SELECT count(*) FROM vault.platform_credentials", NULL);

    run_t r;
    task_init(&r, &tr_task_rotate_deks, NULL, "", ADI_STR_NULL);
    if (task_run(&r, &tr_task_rotate_deks, NULL, 120000) != ADI_OK)
        fail_msg("rotate_deks: %s", r.err.message);
    char want[160];
    snprintf(want, sizeof(want), "{\"rotated\":%lld,\"credentials\":%lld,\"failed\":[]}", keyed,
             creds);
    assert_string_equal(result_of(&r), want);
    run_dispose(&r);
    assert_int_equal(sql_int("SELECT max(version) FROM vault.tenant_keys WHERE "
                             "tenant_id = $1::uuid",
                             a.id),
                     2);

    /* One tenant only (the task's tenant). */
    task_init(&r, &tr_task_rotate_deks, NULL, b.id, ADI_STR_NULL);
    assert_int_equal(task_run(&r, &tr_task_rotate_deks, NULL, 120000), ADI_OK);
    assert_string_equal(result_of(&r), "{\"rotated\":1,\"credentials\":1,\"failed\":[]}");
    run_dispose(&r);
    assert_int_equal(sql_int("SELECT max(version) FROM vault.tenant_keys WHERE "
                             "tenant_id = $1::uuid",
                             b.id),
                     3);
    assert_int_equal(sql_int("SELECT max(version) FROM vault.tenant_keys WHERE "
                             "tenant_id = $1::uuid",
                             a.id),
                     2);

    /* The credentials still decrypt: the sync proves it. */
    task_init(&r, &tr_task_sync_meta, NULL, b.id, ADI_STR_NULL);
    assert_int_equal(task_run(&r, &tr_task_sync_meta, NULL, 60000), ADI_OK);
    run_dispose(&r);
    task_init(&r, &tr_task_sync_google, NULL, a.id, ADI_STR_NULL);
    assert_int_equal(task_run(&r, &tr_task_sync_google, NULL, 60000), ADI_OK);
    run_dispose(&r);
    adi_pool_dispose(&pool);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s <adi-admin> <adi-auth> <services dir> <mail_sink.py>\n",
                argv[0]);
        return 2;
    }
    admin_bin = argv[1];
    auth_bin = argv[2];
    services_dir = argv[3];
    sink_py = argv[4];
    signal(SIGPIPE, SIG_IGN);
    adi_time_zone_set("America/Jamaica");
    adi_log_init("tasks-impl-itest", ADI_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_invitation_mail_op),
        cmocka_unit_test(test_send_invitation),
        cmocka_unit_test(test_send_invitation_unicode),
        cmocka_unit_test(test_send_invitation_refused),
        cmocka_unit_test(test_send_invitation_smtp_auth),
        cmocka_unit_test(test_sync_tenant),
        cmocka_unit_test(test_sync_fan_out),
        cmocka_unit_test(test_rotate_deks),
    };
    return cmocka_run_group_tests(tests, world_setup, world_teardown);
}
