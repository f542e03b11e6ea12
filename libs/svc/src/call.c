/* SPDX-License-Identifier: MIT */
/*
 * What a handler can do beyond its own transaction: call another service over the bus
 * (adi_svc_call, typed through the op descriptors), publish events once its transaction has
 * committed (adi_svc_publish) and mark its reply as carrying secrets to be wiped as soon as it is
 * encoded and sent (adi_svc_sensitive). Also the sys.health operation every service answers.
 */
#include <stdio.h>
#include <string.h>

#include "adi/crypto.h"
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

/* ---- sys.settled ------------------------------------------------------------------------ */

/*
 * Whether the request with idempotency key `key` committed. A transactional mutating request
 * writes its key into <schema>.adi_idempotency just before COMMIT; so the tombstone INSERT below
 * either goes in (the request has not committed, and now never will: its own INSERT of the key
 * meets the tombstone and it rolls back, answering 409), or meets the request's row, waiting for
 * its transaction to end if it is still open, and the row then says which way it went.
 */
static adi_err sys_settled(adi_ctx_t *ctx, const sys_settled_req *req, sys_settled_rep *rep,
                           adi_error_t *err)
{
    adi_svc_worker_t *w = ctx->worker_;
    if (ctx->db == NULL)
        return adi_error_set(err, ADI_UNAVAILABLE, "The database is unavailable.");
    adi_db_res_t *res = NULL;
    adi_err rc = adi_db_exec(ctx->db, ctx->pool, w->svc->sql_fence, 1, &req->key, &res, err);
    if (rc != ADI_OK)
        return rc;
    if (adi_db_nrows(res) == 1) {
        ADI_LOG(&ctx->log, ADI_LOG_WARN, "svc.request_fenced",
                "a request that had not committed was asked about; it is abandoned");
        rep->committed = false;
        return ADI_OK;
    }
    /* A new statement, so a new snapshot: it sees the row the INSERT waited for. */
    rc = adi_db_exec(ctx->db, ctx->pool, w->svc->sql_select, 1, &req->key, &res, err);
    if (rc != ADI_OK)
        return rc;
    rep->committed =
        adi_db_nrows(res) == 1 && !adi_str_eq_c(adi_db_get(res, 0, 0), ADI_SVC__ABANDONED);
    return ADI_OK;
}

ADI_SVC_HANDLER_F(adi_svc__settled_row, adi_op_sys_settled, sys_settled_req, sys_settled_rep,
                  sys_settled, ADI_SVC_NOTX);

/* ---- service-to-service calls ----------------------------------------------------------- */

adi_str_t adi_svc__idem_key(adi_pool_t *pool, const adi_principal *p, adi_str_t client_ip,
                            adi_str_t id)
{
    if (p != NULL && (p->user_id.len > 0 || p->tenant_id.len > 0 || p->service.len > 0))
        return adi_pool_printf(pool, "%.*s/%.*s/%.*s/%.*s", (int)p->tenant_id.len,
                               p->tenant_id.ptr ? p->tenant_id.ptr : "", (int)p->user_id.len,
                               p->user_id.ptr ? p->user_id.ptr : "", (int)p->service.len,
                               p->service.ptr ? p->service.ptr : "", (int)id.len, id.ptr);
    return adi_pool_printf(pool, "anon/%.*s/%.*s", (int)client_ip.len,
                           client_ip.ptr ? client_ip.ptr : "", (int)id.len, id.ptr);
}

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

    /* Derived ids repeat when the request is redelivered, so the callee's idempotency holds.
       The callee scopes them by the caller's principal, which for an anonymous client (signup,
       accept-invite) is the same for every client: their ids come from the whole idempotency
       key of the request, which holds the client's address, so that two clients who picked the
       same Idempotency-Key never meet in the callee. */
    char id[129];
    unsigned n = ++ctx->ncalls_;
    const adi_principal *p = ctx->principal;
    bool anonymous = p == NULL || (p->user_id.len == 0 && p->tenant_id.len == 0);
    if (anonymous && ctx->op != NULL) { /* a request (event handlers and chores have no op) */
        char h[37];
        adi_uuid_derive(
            adi_svc__idem_key(ctx->pool, p, adi_str_c(ctx->client_ip), adi_str_c(ctx->request_id)),
            h);
        snprintf(id, sizeof(id), "%s.%u", h, n);
    } else if (strlen(ctx->request_id) + 12 < sizeof(id)) {
        snprintf(id, sizeof(id), "%s.%u", ctx->request_id, n);
    } else {
        adi_uuid_v4(id);
    }

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
    adi_str_t row;            /* its <schema>.adi_outbox id once staged (pool), else NULL */
} outbox_item_t;

void adi_svc_publish(adi_ctx_t *ctx, const char *stream, const adi_msg_desc_t *d, const void *msg)
{
    outbox_item_t *it = adi_pool_alloc(ctx->pool, sizeof(*it));
    it->stream = adi_pool_strdup(ctx->pool, adi_str_c(stream)).ptr;
    it->msg = adi_proto_encode_pool(d, msg, ctx->pool);
    it->row = ADI_STR_NULL;
    outbox_item_t **tail = (outbox_item_t **)&ctx->outbox_;
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = it;
}

/* Whether the service has <schema>.adi_outbox (asked once per worker). */
static bool outbox_present(adi_svc_worker_t *w, adi_db_t *db)
{
    if (w->outbox == 0) {
        adi_db_res_t *res = NULL;
        adi_error_t err;
        adi_error_clear(&err);
        adi_pool_t pool;
        adi_pool_init(&pool);
        if (adi_db_exec(db, &pool, w->svc->sql_outbox_exists, 0, NULL, &res, &err) == ADI_OK)
            w->outbox = adi_str_eq_c(adi_db_get(res, 0, 0), "t") ? 1 : -1;
        adi_pool_dispose(&pool);
    }
    return w->outbox > 0;
}

adi_err adi_svc__stage_outbox(adi_ctx_t *ctx, adi_db_t *db, adi_error_t *err)
{
    adi_svc_worker_t *w = ctx->worker_;
    if (ctx->outbox_ == NULL || !outbox_present(w, db))
        return ADI_OK;
    static const adi_db_type types[2] = {ADI_DB_TEXT, ADI_DB_BYTEA};
    for (outbox_item_t *it = ctx->outbox_; it != NULL; it = it->next) {
        adi_str_t params[2] = {adi_str_c(it->stream), it->msg};
        adi_db_res_t *res = NULL;
        adi_err rc = adi_db_exec_typed(db, ctx->pool, w->svc->sql_outbox_insert, 2, params, types,
                                       &res, err);
        if (rc != ADI_OK)
            return rc;
        it->row = adi_db_get(res, 0, 0);
    }
    return ADI_OK;
}

/* Appends `id` to the Postgres array literal being built in `ids` ("{1,2,...}" once closed). */
static void add_id(adi_buf_t *ids, adi_str_t id)
{
    adi_buf_append(ids, ids->len == 0 ? "{" : ",", 1);
    adi_buf_append(ids, id.ptr, id.len);
}

/* Deletes the outbox rows listed in `ids` (an unclosed array literal; nothing when empty). */
static adi_err delete_rows(adi_svc_worker_t *w, adi_db_t *db, adi_buf_t *ids, adi_error_t *err)
{
    if (ids->len == 0)
        return ADI_OK;
    adi_buf_append(ids, "}", 1);
    adi_str_t p = {ids->data, ids->len};
    return adi_db_exec(db, NULL, w->svc->sql_outbox_delete, 1, &p, NULL, err);
}

void adi_svc__flush_outbox(adi_ctx_t *ctx)
{
    adi_svc_worker_t *w = ctx->worker_;
    adi_buf_t done; /* outbox rows published: deleted in one statement */
    adi_buf_init(&done);
    for (outbox_item_t *it = ctx->outbox_; it != NULL; it = it->next) {
        adi_error_t err;
        adi_error_clear(&err);
        if (adi_bus_add(w->bus, it->stream, it->msg, NULL, &err) != ADI_OK) {
            if (it->row.ptr != NULL)
                ADI_LOG(&ctx->log, ADI_LOG_WARN, "svc.publish_deferred",
                        "event to %s kept in the outbox: %s", it->stream, err.message);
            else
                ADI_LOG(&ctx->log, ADI_LOG_ERROR, "svc.publish_failed", "event to %s lost: %s",
                        it->stream, err.message);
            continue;
        }
        if (it->row.ptr != NULL)
            add_id(&done, it->row);
    }
    /* A failure here only means a second, harmless copy from the sweep (consumers are
       idempotent by event id). */
    adi_error_t err;
    adi_error_clear(&err);
    if (w->db != NULL && delete_rows(w, w->db, &done, &err) != ADI_OK)
        ADI_LOG(&ctx->log, ADI_LOG_WARN, "svc.outbox_delete_failed", "%s", err.message);
    adi_buf_dispose(&done);
    ctx->outbox_ = NULL;
}

adi_err adi_svc_commit(adi_ctx_t *ctx, adi_error_t *err)
{
    adi_err rc = adi_svc__stage_outbox(ctx, ctx->db, err);
    if (rc == ADI_OK)
        rc = adi_db_commit(ctx->db, err);
    if (rc != ADI_OK) {
        adi_db_rollback(ctx->db);
        ctx->outbox_ = NULL;
        return rc;
    }
    adi_svc__flush_outbox(ctx);
    return ADI_OK;
}

void adi_svc_keep_writes(adi_ctx_t *ctx)
{
    ctx->keep_writes_ = true;
}

const char *adi_svc_settle_key(const adi_ctx_t *ctx)
{
    return ctx->settle_key_ != NULL ? ctx->settle_key_ : "";
}

void adi_svc__sweep_outbox(adi_svc_worker_t *w, adi_db_t *db)
{
    if (!outbox_present(w, db))
        return;
    adi_error_t err;
    adi_error_clear(&err);
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_db_res_t *res = NULL;
    adi_buf_t done; /* rows published: deleted in one statement */
    adi_buf_init(&done);
    int sent = 0, n = 0;
    adi_err rc = adi_db_begin(db, ADI_STR_NULL, &err);
    if (rc == ADI_OK)
        rc = adi_db_exec(db, &pool, w->svc->sql_outbox_due, 0, NULL, &res, &err);
    n = rc == ADI_OK ? adi_db_nrows(res) : 0;
    for (int i = 0; i < n && rc == ADI_OK; i++) {
        adi_str_t id = adi_db_get(res, i, 0);
        char stream[256];
        snprintf(stream, sizeof(stream), "%.*s", (int)adi_db_get(res, i, 1).len,
                 adi_db_get(res, i, 1).ptr);
        rc = adi_bus_add(w->bus, stream, adi_db_get_bytea(res, i, 2), NULL, &err);
        if (rc == ADI_OK) {
            add_id(&done, id);
            sent++;
        }
    }
    if (sent > 0) {
        adi_error_t derr;
        adi_error_clear(&derr);
        if (delete_rows(w, db, &done, &derr) != ADI_OK) {
            sent = 0; /* rolled back below: published again next time (harmless) */
            rc = ADI_UNAVAILABLE;
            err = derr;
        }
    }
    /* What was published and deleted commits; an event whose XADD failed stays for next time. */
    if (adi_db_in_tx(db)) {
        adi_error_t cerr;
        adi_error_clear(&cerr);
        if (sent > 0)
            (void)adi_db_commit(db, &cerr);
        else
            adi_db_rollback(db);
    }
    if (sent > 0)
        ADI_LOG(NULL, ADI_LOG_WARN, "svc.outbox_swept",
                "%d event(s) left behind by a failed publish published now", sent);
    if (rc != ADI_OK)
        ADI_LOG(NULL, ADI_LOG_WARN, "svc.outbox_sweep_failed", "%s", err.message);
    adi_buf_dispose(&done);
    adi_pool_dispose(&pool);
}
