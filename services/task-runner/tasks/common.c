/* SPDX-License-Identifier: MIT */
/*
 * Helpers the tasks are written with (see tasks_int.h): service calls as the task runner acting
 * for a tenant, the callee's error turned into a task outcome, the tenant a task works for,
 * wiping plaintext, derived ids and JSON strings.
 *
 * A call is one adi_bus_call_req on the worker's own bus connection (its reply stream is the
 * worker's), bounded by the task's deadline: the callee drops the request if it only gets to it
 * after that, and the task stops waiting then.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "adi/crypto.h"
#include "tasks_int.h"

/* The task outcome of a callee's error code (task.h: which codes are permanent). */
static adi_err outcome(adi_err code)
{
    switch (code) {
    case ADI_INVALID:
    case ADI_NOT_FOUND:
    case ADI_FORBIDDEN:
    case ADI_CONFLICT:
        return code;
    case ADI_UNAUTHENTICATED:
    case ADI_METHOD:
    case ADI_TOO_LARGE:
    case ADI_UNPROCESSABLE:
        return ADI_INVALID; /* a 4xx the same request would get again: permanent */
    case ADI_OK:
        return ADI_INTERNAL; /* an error reply with a 2xx status: not to be trusted */
    default:
        return code; /* 429, 5xx: retried */
    }
}

/* Copies the callee's error reply into `err` and returns the task outcome. */
static adi_err take_error(const adi_op_desc_t *op, const adi_reply *r, adi_error_t *err)
{
    adi_err code = outcome(adi_err_from_http((int)r->status));
    const adi_reply_error *e = r->error;
    if (e == NULL)
        return adi_error_set(err, code, "%s failed with status %d.", op->name, (int)r->status);
    for (size_t i = 0; i < e->fields.n; i++) {
        const adi_reply_field *f = &e->fields.items[i];
        char name[ADI_ERROR_FIELD_LEN];
        snprintf(name, sizeof(name), "%.*s", (int)f->field.len, f->field.ptr);
        adi_error_field(err, name, "%.*s", (int)f->message.len,
                        f->message.ptr ? f->message.ptr : "");
    }
    const char *msg = e->message.ptr ? e->message.ptr : "";
    int len = (int)e->message.len;
    if (len == 0 && e->fields.n > 0) {
        msg = e->fields.items[0].message.ptr ? e->fields.items[0].message.ptr : "";
        len = (int)e->fields.items[0].message.len;
    }
    return adi_error_set(err, code, "%s: %.*s", op->name, len, msg);
}

adi_err tr_call(tr_task_ctx_t *ctx, const adi_op_desc_t *op, adi_str_t tenant_id, const void *req,
                void *rep, adi_str_t *raw, adi_error_t *err)
{
    if (raw != NULL)
        *raw = ADI_STR_NULL;
    if (adi_now_ms() >= ctx->deadline_ms)
        return adi_error_set(err, ADI_TIMEOUT, "Time limit exceeded.");
    adi_principal me;
    memset(&me, 0, sizeof(me));
    me.service = ADI_STR(TR_SERVICE);
    if (tenant_id.ptr != NULL && tenant_id.len > 0)
        me.tenant_id = tenant_id;
    adi_bus_request_t breq = {
        .service = op->service,
        .op = op->name,
        .id = NULL,
        .trace_id = tr_cstr(ctx->pool, ctx->task->request_id),
        .principal = &me,
        .params = ADI_STR_NULL,
        .body = req != NULL ? adi_proto_encode_pool(op->req, req, ctx->pool) : ADI_STR_NULL,
        .deadline_ms = ctx->deadline_ms,
    };
    adi_reply *r = NULL;
    adi_err rc = adi_bus_call_req(ctx->bus, &breq, ctx->pool, &r, err);
    if (rc == ADI_TIMEOUT)
        return adi_error_set(err, ADI_TIMEOUT, "%s did not answer within the time limit.",
                             op->name);
    if (rc != ADI_OK)
        return rc;
    bool has_body = r->body.ptr != NULL && !ADI_IS_NULL(adi_reply, r, body);
    if (raw != NULL && has_body)
        *raw = r->body;
    if (r->status >= 300 || r->status < 200)
        return take_error(op, r, err);
    if (rep == NULL)
        return ADI_OK;
    memset(rep, 0, op->rep->size);
    if (has_body) {
        adi_error_t inner;
        adi_error_clear(&inner);
        if (adi_proto_decode(op->rep, r->body.ptr, r->body.len, ctx->pool, rep, &inner) != ADI_OK)
            return adi_error_set(err, ADI_INTERNAL, "%s answered with an unreadable body.",
                                 op->name);
    }
    return ADI_OK;
}

adi_err tr_task_tenant(const tr_task_ctx_t *ctx, adi_str_t arg, adi_str_t *out, adi_error_t *err)
{
    *out = ADI_STR("");
    adi_str_t own = ctx->task->tenant_id;
    bool has_arg = arg.ptr != NULL && arg.len > 0;
    bool has_own = own.ptr != NULL && own.len > 0;
    if (has_own && !adi_uuid_valid(own))
        return adi_error_set(err, ADI_INVALID, "The task's tenant_id is not a valid UUID.");
    if (has_arg && has_own && !(arg.len == own.len && strncasecmp(arg.ptr, own.ptr, arg.len) == 0))
        return adi_error_field(err, "tenant_id", "Does not match the task's tenant.");
    if (has_arg)
        *out = arg;
    else if (has_own)
        *out = own;
    return ADI_OK;
}

void tr_wipe(adi_str_t s)
{
    if (s.ptr != NULL && s.len > 0)
        OPENSSL_cleanse((void *)(uintptr_t)s.ptr, s.len);
}

void tr_derived_uuid(const char *kind, adi_str_t key, char out[37])
{
    adi_buf_t seed;
    adi_buf_init(&seed);
    adi_buf_printf(&seed, "%s\n%.*s", kind, (int)key.len, key.ptr != NULL ? key.ptr : "");
    adi_uuid_derive((adi_str_t){seed.data, seed.len}, out);
    adi_buf_dispose(&seed);
}

const char *tr_cstr(adi_pool_t *pool, adi_str_t s)
{
    if (s.ptr == NULL)
        return "";
    return adi_pool_strdup(pool, s).ptr;
}

void tr_json_str(adi_buf_t *b, adi_str_t s)
{
    adi_buf_append(b, "\"", 1);
    if (s.ptr != NULL)
        adi_buf_append_json_escaped(b, s.ptr, s.len);
    adi_buf_append(b, "\"", 1);
}
