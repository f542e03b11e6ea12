/* SPDX-License-Identifier: MIT */
/*
 * What a handler can do beyond its own transaction: call another service over the bus
 * (adi_svc_call, typed through the op descriptors), publish events once its transaction has
 * committed (adi_svc_publish) and mark its reply as carrying secrets to be wiped as soon as it is
 * encoded and sent (adi_svc_sensitive). Also the sys.health operation every service answers.
 */
#include <stdio.h>
#include <string.h>

#include "svc_int.h"

/* ---- sys.health ------------------------------------------------------------------------- */

static adi_err sys_health(adi_ctx_t *ctx, const adi_empty *req, sys_health_rep *rep,
                          adi_error_t *err)
{
    (void)req;
    (void)err;
    bool db_ok = ctx->db != NULL && adi_db_ping(ctx->db);
    rep->service = adi_str_c(ctx->service);
    rep->status = adi_str_c(db_ok ? "ok" : "degraded");
    rep->version = adi_str_c(ctx->version);
    rep->consumer = adi_str_c(ctx->consumer);
    rep->database = db_ok;
    return ADI_OK;
}

ADI_SVC_HANDLER_F(adi_svc__health_row, adi_op_sys_health, adi_empty, sys_health_rep, sys_health,
                  ADI_SVC_NOTX);

/* ---- service-to-service calls ----------------------------------------------------------- */

/* Copies the callee's error reply into `err` and returns its code. */
static adi_err take_error(const adi_reply *r, adi_error_t *err)
{
    adi_err code = adi_err_from_http((int)r->status);
    if (code == ADI_OK)
        code = ADI_INTERNAL;
    const adi_reply_error *e = r->error;
    if (e == NULL)
        return adi_error_set(err, code, "Call failed with status %d.", (int)r->status);
    for (size_t i = 0; i < e->fields.n; i++) {
        const adi_reply_field *f = &e->fields.items[i];
        char name[ADI_ERROR_FIELD_LEN];
        snprintf(name, sizeof(name), "%.*s", (int)f->field.len, f->field.ptr);
        adi_error_field(err, name, "%.*s", (int)f->message.len,
                        f->message.ptr ? f->message.ptr : "");
    }
    adi_error_set(err, code, "%.*s", (int)e->message.len, e->message.ptr ? e->message.ptr : "");
    return code;
}

adi_err adi_svc_call(adi_ctx_t *ctx, const adi_op_desc_t *op, const char *service, const void *req,
                     void *rep, adi_error_t *err)
{
    const char *target = service != NULL ? service : op->service;
    if (target == NULL || strcmp(target, "*") == 0)
        return adi_error_set(err, ADI_INVALID, "call of %s names no service", op->name);
    adi_svc_worker_t *w = ctx->worker_;

    adi_principal me;
    memset(&me, 0, sizeof(me));
    if (ctx->principal != NULL)
        me = *ctx->principal;
    me.service = adi_str_c(ctx->service);

    /* Derived ids repeat when the request is redelivered, so the callee's idempotency holds. */
    char id[129];
    unsigned n = ++ctx->ncalls_;
    if (strlen(ctx->request_id) + 12 < sizeof(id))
        snprintf(id, sizeof(id), "%s.%u", ctx->request_id, n);
    else
        adi_uuid_v4(id);

    adi_bus_request_t breq = {
        .service = target,
        .op = op->name,
        .id = id,
        .trace_id = ctx->trace_id,
        .principal = &me,
        .params = ADI_STR_NULL,
        .body = req != NULL ? adi_proto_encode_pool(op->req, req, ctx->pool) : ADI_STR_NULL,
        .deadline_ms = ctx->deadline_ms,
    };
    adi_reply *r = NULL;
    adi_err rc = adi_bus_call_req(w->bus, &breq, ctx->pool, &r, err);
    if (rc != ADI_OK)
        return rc;
    if (r->status >= 300)
        return take_error(r, err);
    if (rep == NULL)
        return ADI_OK;
    memset(rep, 0, op->rep->size);
    if (r->body.ptr != NULL && !ADI_IS_NULL(adi_reply, r, body)) {
        rc = adi_proto_decode(op->rep, r->body.ptr, r->body.len, ctx->pool, rep, err);
        if (rc != ADI_OK)
            return adi_error_set(err, ADI_INTERNAL, "%s answered with an unreadable body",
                                 op->name);
    }
    return ADI_OK;
}

/* ---- sensitive replies ------------------------------------------------------------------ */

typedef struct wipe_item {
    struct wipe_item *next; /* next callback, in registration order */
    void (*fn)(void *arg);  /* the handler's wipe */
    void *arg;              /* its argument */
} wipe_item_t;

void adi_svc_sensitive(adi_ctx_t *ctx, void (*wipe)(void *arg), void *arg)
{
    adi_svc_worker_t *w = ctx->worker_;
    if (w == NULL) /* a handler called outside a worker (no reply will be sent) */
        return;
    w->sensitive = true;
    if (wipe == NULL)
        return;
    wipe_item_t *it = adi_pool_alloc(ctx->pool, sizeof(*it));
    it->fn = wipe;
    it->arg = arg;
    wipe_item_t **tail = (wipe_item_t **)&w->wipes;
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = it;
}

void adi_svc__run_wipes(adi_svc_worker_t *w)
{
    wipe_item_t *it = w->wipes;
    w->wipes = NULL;
    for (; it != NULL; it = it->next)
        it->fn(it->arg);
}

/* ---- events after commit ---------------------------------------------------------------- */

typedef struct outbox_item {
    struct outbox_item *next; /* next event, in publication order */
    const char *stream;       /* target stream (pool copy) */
    adi_str_t msg;            /* encoded event (pool) */
} outbox_item_t;

void adi_svc_publish(adi_ctx_t *ctx, const char *stream, const adi_msg_desc_t *d, const void *msg)
{
    outbox_item_t *it = adi_pool_alloc(ctx->pool, sizeof(*it));
    it->stream = adi_pool_strdup(ctx->pool, adi_str_c(stream)).ptr;
    it->msg = adi_proto_encode_pool(d, msg, ctx->pool);
    outbox_item_t **tail = (outbox_item_t **)&ctx->outbox_;
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = it;
}

void adi_svc__flush_outbox(adi_ctx_t *ctx)
{
    adi_svc_worker_t *w = ctx->worker_;
    for (outbox_item_t *it = ctx->outbox_; it != NULL; it = it->next) {
        adi_error_t err;
        adi_error_clear(&err);
        if (adi_bus_add(w->bus, it->stream, it->msg, NULL, &err) != ADI_OK)
            ADI_LOG(&ctx->log, ADI_LOG_ERROR, "svc.publish_failed", "event to %s lost: %s",
                    it->stream, err.message);
    }
    ctx->outbox_ = NULL;
}
