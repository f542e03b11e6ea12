/* SPDX-License-Identifier: MIT */
/*
 * Tasks over the API (issue 6 "API"; see tasks_api.h). Both operations need a tenant admin
 * (checked here too, not only by the gateway) and work in the caller's tenant only.
 *
 * tasks.enqueue {name, args, countdown?} -> 202 {id}. `name` must be one of the tasks a tenant may
 * trigger (the two syncs) and known to this runner; `args` a JSON object (at most
 * TR_API_ARGS_MAX bytes once converted) that decodes as the task's args message, whose tenant_id,
 * when given, must be the caller's; countdown 0..86400 seconds delays the task. The task runs
 * with task_msg.tenant_id = the caller's tenant. The task id is derived from the request
 * (TR_API_ID_SEED + tenant/user/request id, scoped as libs/svc scopes idempotency keys) and
 * libs/tasks makes an enqueue under an id whose state exists a no-op, so a redelivered request
 * (say, the reply's commit was lost) answers the same id and never creates a second task.
 *
 * tasks.get {id} -> {id, name, state, result, error, attempt} from the state hash task:<id>; an
 * unknown or expired task, a malformed id and another tenant's (or no tenant's) task are all the
 * same 404, so a caller learns nothing of tasks that are not its tenant's.
 */
#include <stdio.h>
#include <string.h>

#include "adi/tasks.h"
#include "ops/tasks_api.h"
#include "task.h"

#define MSG_NOT_ADMIN  "You must be a tenant admin to perform this action."
#define MSG_NO_TENANT  "You do not belong to a tenant."
#define MSG_NOT_FOUND  "Not found."
#define MSG_NOT_TENANT "Must be the tenant you belong to."

/* The tasks a tenant admin may trigger (each must also be in the runner's table tr_tasks). */
static const char *const triggerable[] = {"sync_meta_example", "sync_google_example", NULL};

/* ADMIN of its tenant, or a superuser. */
static bool is_admin(const adi_principal *p)
{
    if (p == NULL)
        return false;
    if (p->superuser)
        return true;
    for (size_t i = 0; i < p->roles.n; i++)
        if (adi_str_eq_c(p->roles.items[i], "ADMIN"))
            return true;
    return false;
}

/* Compares two ids ignoring ASCII case (UUIDs may arrive in either case). */
static bool id_eq(adi_str_t a, adi_str_t b)
{
    if (a.len != b.len || (a.len > 0 && (a.ptr == NULL || b.ptr == NULL)))
        return false;
    for (size_t i = 0; i < a.len; i++) {
        char x = a.ptr[i], y = b.ptr[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (char)(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return true;
}

/* A NUL-terminated lower-case copy of `s` in `pool`. */
static char *lower_dup(adi_pool_t *pool, adi_str_t s)
{
    char *out = adi_pool_alloc(pool, s.len + 1);
    for (size_t i = 0; i < s.len; i++)
        out[i] = s.ptr[i] >= 'A' && s.ptr[i] <= 'Z' ? (char)(s.ptr[i] - 'A' + 'a') : s.ptr[i];
    out[s.len] = '\0';
    return out;
}

/* The runner's row of a task a tenant may trigger, or NULL. */
static const tr_task_def_t *triggerable_row(adi_str_t name)
{
    for (const char *const *n = triggerable; *n != NULL; n++) {
        if (!adi_str_eq_c(name, *n))
            continue;
        for (const tr_task_def_t *const *t = tr_tasks; *t != NULL; t++)
            if (strcmp((*t)->name, *n) == 0)
                return *t;
    }
    return NULL;
}

/* Python's name of the type of the msgpack value starting with byte `b` (DRF's wording). */
static const char *py_type(unsigned char b)
{
    if (b <= 0x7f || b >= 0xe0 || (b >= 0xcc && b <= 0xd3))
        return "int";
    if ((b >= 0x90 && b <= 0x9f) || b == 0xdc || b == 0xdd)
        return "list";
    if ((b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb) || (b >= 0xc4 && b <= 0xc6))
        return "str";
    if (b == 0xc2 || b == 0xc3)
        return "bool";
    if (b == 0xca || b == 0xcb)
        return "float";
    return "object";
}

static bool is_map(unsigned char b)
{
    return (b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf;
}

/*
 * Checks `args` as the args of task `row` run for `tenant`: a map that decodes as the row's args
 * message (its messages reported on "args" or "args.<field>"), naming no other tenant. Adds field
 * errors to `err` and returns false when it does not pass.
 */
static bool args_ok(adi_ctx_t *ctx, const tr_task_def_t *row, adi_str_t args, adi_str_t tenant,
                    adi_error_t *err)
{
    if (args.ptr == NULL || args.len == 0) {
        adi_error_field(err, "args", "This field is required.");
        return false;
    }
    unsigned char first = (unsigned char)args.ptr[0];
    if (!is_map(first)) {
        adi_error_field(err, "args", "Expected a dictionary of items but got type \"%s\".",
                        py_type(first));
        return false;
    }
    if (row == NULL || row->args == NULL)
        return true;
    void *a = adi_pool_alloc(ctx->pool, row->args->size);
    adi_error_t e;
    adi_error_clear(&e);
    adi_err rc = adi_proto_decode(row->args, args.ptr, args.len, ctx->pool, a, &e);
    if (rc == ADI_OK)
        rc = adi_proto_check_required(row->args, a, &e);
    if (rc != ADI_OK) {
        for (size_t i = 0; i < e.nfields; i++) {
            const char *f = e.fields[i].field;
            char name[ADI_ERROR_FIELD_LEN + 8]; /* adi_error_field truncates to fit */
            if (strcmp(f, "non_field_errors") == 0)
                snprintf(name, sizeof(name), "args");
            else
                snprintf(name, sizeof(name), "args.%s", f);
            adi_error_field(err, name, "%s", e.fields[i].message);
        }
        if (e.nfields == 0)
            adi_error_field(err, "args", "%s", e.message[0] ? e.message : "Invalid value.");
        return false;
    }
    if (row->args == &task_tenant_args__desc) {
        const task_tenant_args *t = a;
        if (t->tenant_id.len > 0 && !id_eq(t->tenant_id, tenant)) {
            adi_error_field(err, "args.tenant_id", MSG_NOT_TENANT);
            return false;
        }
    }
    return true;
}

static adi_err op_enqueue(adi_ctx_t *ctx, const tasks_enqueue_req *req, tasks_enqueue_rep *rep,
                          adi_error_t *err)
{
    const adi_principal *p = ctx->principal;
    if (!is_admin(p))
        return adi_error_set(err, ADI_FORBIDDEN, MSG_NOT_ADMIN);
    if (p->tenant_id.len == 0)
        return adi_error_field(err, "non_field_errors", MSG_NO_TENANT);
    adi_str_t tenant = p->tenant_id;

    const tr_task_def_t *row = triggerable_row(req->name);
    if (row == NULL)
        adi_error_field(err, "name", "\"%.*s\" is not a valid choice.", (int)req->name.len,
                        req->name.ptr);
    bool ok = args_ok(ctx, row, req->args, tenant, err) && row != NULL;
    if (!ok)
        return ADI_INVALID;

    /* The id the first delivery of this request used, and every redelivery will use. */
    adi_str_t seed =
        adi_pool_printf(ctx->pool, TR_API_ID_SEED "%.*s/%.*s/%s", (int)tenant.len, tenant.ptr,
                        (int)p->user_id.len, p->user_id.ptr != NULL ? p->user_id.ptr : "",
                        ctx->request_id != NULL ? ctx->request_id : "");
    char id[37];
    adi_tasks_derive_id(seed, id);
    adi_task_spec_t spec = {
        .queue = row->default_queue,
        .name = row->name,
        .args = req->args,
        .tenant_id = lower_dup(ctx->pool, tenant),
        .request_id = ctx->request_id,
        .delay_ms = req->countdown * 1000,
        .id = id,
    };
    char got[37];
    adi_error_t e;
    adi_error_clear(&e);
    adi_err rc = adi_tasks_enqueue(ctx->bus, &spec, got, &e);
    if (rc == ADI_UNAVAILABLE || rc == ADI_TIMEOUT) {
        adi_log_write(&ctx->log, ADI_LOG_ERROR, "tasks.enqueue_failed", "%s: %s", row->name,
                      adi_err_name(rc));
        return adi_error_set(err, rc, "The task queue is unavailable.");
    }
    if (rc != ADI_OK) {
        /* The request was checked above: what the queue refuses is this service's fault. */
        adi_log_write(&ctx->log, ADI_LOG_ERROR, "tasks.enqueue_failed", "%s: %s (%s)", row->name,
                      adi_err_name(rc), e.message);
        return adi_error_set(err, ADI_INTERNAL, "The task could not be enqueued.");
    }
    rep->id = adi_pool_strdup(ctx->pool, adi_str_c(got));
    adi_log_write(&ctx->log, ADI_LOG_INFO, "tasks.enqueued", "%s id=%s countdown=%lld", row->name,
                  got, (long long)req->countdown);
    ctx->status = 202;
    return ADI_OK;
}

static adi_err op_get(adi_ctx_t *ctx, const tasks_get_req *req, tasks_task *rep, adi_error_t *err)
{
    const adi_principal *p = ctx->principal;
    if (!is_admin(p))
        return adi_error_set(err, ADI_FORBIDDEN, MSG_NOT_ADMIN);
    if (p->tenant_id.len == 0 || !adi_uuid_valid(req->id))
        return adi_error_set(err, ADI_NOT_FOUND, MSG_NOT_FOUND);
    adi_task_state_t st;
    adi_error_t e;
    adi_error_clear(&e);
    adi_err rc = adi_tasks_state_get(ctx->bus, lower_dup(ctx->pool, req->id), ctx->pool, &st, &e);
    if (rc == ADI_NOT_FOUND || rc == ADI_INVALID)
        return adi_error_set(err, ADI_NOT_FOUND, MSG_NOT_FOUND);
    if (rc != ADI_OK) {
        adi_log_write(&ctx->log, ADI_LOG_ERROR, "tasks.state_failed", "%s: %s", adi_err_name(rc),
                      e.message);
        return adi_error_set(err, rc == ADI_UNAVAILABLE || rc == ADI_TIMEOUT ? rc : ADI_INTERNAL,
                             "The task state could not be read.");
    }
    if (!id_eq(st.tenant_id, p->tenant_id))
        return adi_error_set(err, ADI_NOT_FOUND, MSG_NOT_FOUND);

    rep->id = st.id;
    rep->name = st.name.ptr != NULL ? st.name : ADI_STR("");
    rep->state = st.state.ptr != NULL ? st.state : ADI_STR("PENDING");
    rep->attempt = st.attempt;
    rep->error = st.error; /* ptr NULL: encoded as null */
    rep->result = ADI_STR_NULL;
    if (st.result.ptr != NULL && st.result.len > 0) {
        adi_buf_t mp;
        adi_buf_init(&mp);
        adi_error_t je;
        adi_error_clear(&je);
        if (adi_json_to_msgpack(st.result.ptr, st.result.len, &mp, &je) == ADI_OK)
            rep->result = adi_pool_strdup(ctx->pool, (adi_str_t){mp.data, mp.len});
        else
            adi_log_write(&ctx->log, ADI_LOG_WARN, "tasks.result_unreadable",
                          "task %.*s: stored result is not JSON (%s)", (int)st.id.len, st.id.ptr,
                          je.message);
        adi_buf_dispose(&mp);
    }
    return ADI_OK;
}

ADI_SVC_HANDLER(tr_enqueue_row, adi_op_tasks_enqueue, tasks_enqueue_req, tasks_enqueue_rep,
                op_enqueue);
ADI_SVC_HANDLER_F(tr_get_row, adi_op_tasks_get, tasks_get_req, tasks_task, op_get, ADI_SVC_NOTX);
