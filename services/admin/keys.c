/* SPDX-License-Identifier: MIT */
/*
 * The key subcommands of adi-admin, run through the vault service over the bus (REDIS_URL) as
 * the service principal "admin", so the keys are only ever handled by the vault:
 *
 *   rotate-keys [--tenant ID]   a new data key per tenant, every credential re-encrypted under it
 *                               and the old key versions deleted (vault.rotate)
 *   rewrap-keys [--tenant ID]   every wrapped data key re-wrapped under the current KMS key after
 *                               a KMS key change, credentials untouched (vault.rewrap)
 *
 * Both list the tenants that have a data key first (vault.key_tenants), then call the operation
 * once per tenant, printing a progress line per tenant ("[3/10] <tenant>: rotated, 4
 * credentials" or "...: FAILED (kept its old key)") and a summary. Each call has its own request
 * id and a generous deadline; a call that failed on the way (Redis) is retried with the same id,
 * which the vault answers from its stored reply when the first attempt did the work. Exit 0 when
 * every tenant succeeded, 1 when any failed (or the vault could not be reached), 2 for usage
 * errors.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "adi/bus.h"
#include "adi/messages.h"

#include "admin.h"

/* Deadline of the tenant listing, and of each tenant's rotate/rewrap call. */
#define LIST_TIMEOUT_MS   (30 * 1000)
#define TENANT_TIMEOUT_MS (10 * 60 * 1000)
/* Attempts of one call when Redis fails on the way (same request id each time). */
#define CALL_ATTEMPTS 3

/* What one subcommand does. */
typedef struct keys_cmd {
    const char *name;        /* subcommand name, for messages */
    const adi_op_desc_t *op; /* vault.rotate or vault.rewrap */
    const char *done;        /* progress word on success ("rotated") */
    const char *unit;        /* what the count counts ("credentials") */
    const char *kept;        /* what a failure leaves ("kept its old key") */
} keys_cmd_t;

static const keys_cmd_t rotate_cmd = {"rotate-keys", &adi_op_vault_rotate, "rotated", "credential",
                                      "kept its old key"};
static const keys_cmd_t rewrap_cmd = {"rewrap-keys", &adi_op_vault_rewrap, "rewrapped", "key",
                                      "left as it was"};

/* The bus client of one run. */
typedef struct conn {
    adi_bus_t *bus;   /* Redis connection with our reply stream */
    char reply[160];  /* the reply stream, deleted at the end */
    adi_principal me; /* the service principal the vault sees */
} conn_t;

/*
 * Calls `op` with `req` (NULL for none) until a reply arrives (retrying with the same request id
 * when Redis fails); decodes a 2xx body into `rep` (zeroed first). Returns ADI_OK with the reply
 * in `*out` (error replies included), or the transport error with a message in `err`.
 */
static adi_err call(conn_t *c, const adi_op_desc_t *op, const void *req, int64_t timeout_ms,
                    adi_pool_t *pool, adi_reply **out, void *rep, adi_error_t *err)
{
    char id[37];
    adi_uuid_v4(id);
    adi_bus_request_t breq = {
        .service = op->service,
        .op = op->name,
        .id = id,
        .principal = &c->me,
        .body = req != NULL ? adi_proto_encode_pool(op->req, req, pool) : ADI_STR_NULL,
        .deadline_ms = adi_now_ms() + timeout_ms,
    };
    adi_err rc = ADI_UNAVAILABLE;
    for (int attempt = 1; attempt <= CALL_ATTEMPTS; attempt++) {
        adi_error_clear(err);
        rc = adi_bus_call_req(c->bus, &breq, pool, out, err);
        if (rc != ADI_UNAVAILABLE || adi_now_ms() >= breq.deadline_ms)
            break;
        if (attempt < CALL_ATTEMPTS)
            usleep(500 * 1000 * (useconds_t)attempt);
    }
    if (rc != ADI_OK)
        return rc;
    memset(rep, 0, op->rep->size);
    const adi_reply *r = *out;
    if (r->status < 300 && r->body.ptr != NULL && !ADI_IS_NULL(adi_reply, r, body) &&
        adi_proto_decode(op->rep, r->body.ptr, r->body.len, pool, rep, err) != ADI_OK)
        return adi_error_set(err, ADI_INTERNAL, "%s answered with an unreadable body", op->name);
    return ADI_OK;
}

/* The error message of an error reply (never secret: the vault words them for clients). */
static const char *reply_message(const adi_reply *r, char *buf, size_t n)
{
    if (r->error != NULL && r->error->message.ptr != NULL)
        snprintf(buf, n, "%d %.*s", (int)r->status, (int)r->error->message.len,
                 r->error->message.ptr);
    else
        snprintf(buf, n, "status %d", (int)r->status);
    return buf;
}

/* Parses `[--tenant ID]`; false (after a message) on anything else. */
static bool parse_args(const keys_cmd_t *k, int argc, char **argv, const char **tenant)
{
    *tenant = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tenant") != 0) {
            fprintf(stderr, "%s: unknown option %s\nusage: adi-admin %s [--tenant ID]\n", k->name,
                    argv[i], k->name);
            return false;
        }
        if (i + 1 >= argc || *tenant != NULL) {
            fprintf(stderr, "%s: --tenant needs one tenant id\n", k->name);
            return false;
        }
        *tenant = argv[++i];
        if (!adi_uuid_valid(adi_str_c(*tenant))) {
            fprintf(stderr, "%s: --tenant: not a UUID\n", k->name);
            return false;
        }
    }
    return true;
}

/* Lists the tenants with a data key into `*list` (pool); false (after a message) on failure. */
static bool list_tenants(const keys_cmd_t *k, conn_t *c, adi_pool_t *pool, adi_strlist_t *list)
{
    adi_error_t err;
    adi_reply *r = NULL;
    vault_tenant_list rep;
    if (call(c, &adi_op_vault_key_tenants, NULL, LIST_TIMEOUT_MS, pool, &r, &rep, &err) != ADI_OK) {
        fprintf(stderr, "%s: the vault did not answer vault.key_tenants: %s\n", k->name,
                err.message);
        return false;
    }
    if (r->status >= 300) {
        char msg[300];
        fprintf(stderr, "%s: vault.key_tenants failed: %s\n", k->name,
                reply_message(r, msg, sizeof(msg)));
        return false;
    }
    *list = rep.tenant_ids;
    return true;
}

/* The run of one subcommand: list, then one call per tenant with progress lines. */
static int run(const keys_cmd_t *k, const admin_cfg_t *cfg, int argc, char **argv)
{
    const char *arg = NULL;
    if (!parse_args(k, argc, argv, &arg))
        return ADMIN_EXIT_USAGE;
    char lower[37];
    const char *only = NULL;
    if (arg != NULL) { /* ids are listed in lower case */
        for (size_t i = 0; i < sizeof(lower); i++)
            lower[i] = (char)(arg[i] >= 'A' && arg[i] <= 'F' ? arg[i] - 'A' + 'a' : arg[i]);
        only = lower;
    }
    conn_t c;
    memset(&c, 0, sizeof(c));
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    snprintf(c.reply, sizeof(c.reply), "svc:{admin}:%s-%ld:rep", host, (long)getpid());
    c.me.service = ADI_STR("admin");
    adi_error_t err;
    adi_error_clear(&err);
    adi_bus_opts_t bo = {.url = cfg->redis_url, .reply_stream = c.reply};
    if (adi_bus_new(&bo, &c.bus, &err) != ADI_OK) {
        fprintf(stderr, "%s: REDIS_URL: %s\n", k->name, err.message);
        return ADMIN_EXIT_USAGE;
    }
    adi_pool_t pool;
    adi_pool_init(&pool);
    int status = ADMIN_EXIT_FAILED;
    adi_strlist_t tenants = {0};
    if (!list_tenants(k, &c, &pool, &tenants))
        goto out;
    if (only != NULL) {
        bool found = false;
        for (size_t i = 0; i < tenants.n && !found; i++)
            found = adi_str_eq_c(tenants.items[i], only);
        if (!found) {
            fprintf(stderr, "%s: tenant %s has no data key\n", k->name, only);
            goto out;
        }
        tenants.items = adi_pool_alloc(&pool, sizeof(adi_str_t));
        tenants.items[0] = adi_pool_strdup(&pool, adi_str_c(only));
        tenants.n = 1;
    }
    printf("%s: %zu tenant%s\n", k->name, tenants.n, tenants.n == 1 ? "" : "s");
    fflush(stdout);
    size_t ok = 0, failed = 0;
    int64_t total = 0;
    for (size_t i = 0; i < tenants.n; i++) {
        adi_str_t tid = tenants.items[i];
        vault_keys_req req = {.tenant_id = tid};
        adi_reply *r = NULL;
        union {
            vault_rotate_rep rot;
            vault_rewrap_rep rew;
        } rep;
        memset(&rep, 0, sizeof(rep));
        adi_err rc = call(&c, k->op, &req, TENANT_TIMEOUT_MS, &pool, &r, &rep, &err);
        int64_t count = k->op == &adi_op_vault_rotate ? rep.rot.credentials : rep.rew.keys;
        size_t nfailed = k->op == &adi_op_vault_rotate ? rep.rot.failed.n : rep.rew.failed.n;
        if (rc == ADI_OK && r->status < 300 && nfailed == 0) {
            ok++;
            total += count;
            printf("[%zu/%zu] %.*s: %s, %lld %s%s\n", i + 1, tenants.n, (int)tid.len, tid.ptr,
                   k->done, (long long)count, k->unit, count == 1 ? "" : "s");
        } else if (rc != ADI_OK) {
            /* No answer: the vault may still finish it (a rerun with the same id is answered). */
            failed++;
            printf("[%zu/%zu] %.*s: FAILED (no answer from the vault: %s)\n", i + 1, tenants.n,
                   (int)tid.len, tid.ptr, err.message);
        } else {
            failed++;
            char msg[280], why[300] = "";
            if (r->status >= 300)
                snprintf(why, sizeof(why), ": %s", reply_message(r, msg, sizeof(msg)));
            printf("[%zu/%zu] %.*s: FAILED (%s)%s\n", i + 1, tenants.n, (int)tid.len, tid.ptr,
                   k->kept, why);
        }
        fflush(stdout);
    }
    printf("%s: %zu of %zu tenant%s %s (%lld %s%s), %zu failed\n", k->name, ok, tenants.n,
           tenants.n == 1 ? "" : "s", k->done, (long long)total, k->unit, total == 1 ? "" : "s",
           failed);
    status = failed == 0 ? ADMIN_EXIT_OK : ADMIN_EXIT_FAILED;
out:
    adi_bus_del(c.bus, c.reply, &err);
    adi_pool_dispose(&pool);
    adi_bus_free(c.bus);
    return status;
}

int admin_rotate_keys(const admin_cfg_t *cfg, int argc, char **argv)
{
    return run(&rotate_cmd, cfg, argc, argv);
}

int admin_rewrap_keys(const admin_cfg_t *cfg, int argc, char **argv)
{
    return run(&rewrap_cmd, cfg, argc, argv);
}
