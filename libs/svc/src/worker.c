/* SPDX-License-Identifier: MIT */
/*
 * The worker loop and the request path. Each worker thread owns one Redis connection and one
 * PostgreSQL connection and shares nothing with the others. It reads new entries of the service's
 * stream through the consumer group (short BLOCK, so a stop request is noticed quickly), sweeps
 * entries that other consumers left pending (XAUTOCLAIM) and serves each entry:
 *
 *   decode the envelope -> version and deadline checks -> op lookup (hash table) -> decode and
 *   validate the request -> tenant-scoped transaction -> (mutating: stored reply? replay it) ->
 *   handler -> encode the reply (mutating: store it in the same transaction) -> COMMIT ->
 *   XADD the reply to reply_to, then XACK -> metrics and one log line.
 *
 * ADI_SVC_NOTX | ADI_SVC_IDEMPOTENT handlers get the idempotency protocol without the request
 * transaction: a session advisory lock on the idempotency key, the stored reply or the handler,
 * then its reply stored by a statement of its own. A reply marked sensitive (adi_svc_sensitive)
 * has the handler's wipes run once it is encoded, and its encoded copies wiped once sent.
 *
 * Entries are acknowledged only after their reply is written, so a worker that dies leaves them
 * pending for another consumer to reclaim; mutating operations are idempotent by request id, so a
 * redelivered request is answered with the stored reply instead of running twice. Redis and
 * PostgreSQL outages are survived in place: the worker backs off, logs once per outage for the
 * whole process, and carries on when the server is back.
 *
 * Event workers (adi_svc_def_t.consumers) run the same loop on their consumer's stream and group,
 * serving each entry with serve_event: decode and validate the message, run the typed handler in
 * a transaction scoped to the message's tenant, commit, then XACK; failures either leave the entry
 * pending for a later XAUTOCLAIM or drop it (see adi_svc_consumer_t).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "adi/keys.h"
#include "svc_int.h"

#define DB_BACKOFF_MIN_MS 100
#define DB_BACKOFF_MAX_MS 2000

/* One request being served. Everything it points to lives in `pool` or in the stream entry. */
typedef struct request {
    adi_svc_worker_t *w;        /* the worker serving it */
    adi_pool_t pool;            /* the request's arena */
    adi_envelope *env;          /* decoded envelope */
    const adi_svc_handler_t *h; /* the operation's handler, NULL when unknown */
    adi_logctx_t log;           /* request id, tenant, op, start */
    adi_str_t reply;            /* the encoded reply to send */
    int status;                 /* its status */
    bool replayed;              /* the reply is a stored one (idempotent redelivery) */
    adi_error_t err;            /* detail of a failure */
    const char *code;           /* the handler's own error code (ctx.error_code), NULL for none */
} request_t;

/* ---- outage tracking: one log line per outage for the whole process ------------------------ */

static void redis_trouble(adi_svc_worker_t *w, const adi_error_t *err)
{
    if (w->redis_down)
        return;
    w->redis_down = true;
    if (atomic_fetch_add(&w->svc->redis_down, 1) == 0)
        ADI_LOG(NULL, ADI_LOG_WARN, "bus.unavailable", "%s; retrying", err->message);
}

static void redis_fine(adi_svc_worker_t *w)
{
    if (!w->redis_down)
        return;
    w->redis_down = false;
    if (atomic_fetch_sub(&w->svc->redis_down, 1) == 1)
        ADI_LOG(NULL, ADI_LOG_INFO, "bus.recovered", "Redis reachable again");
}

static void db_trouble(adi_svc_worker_t *w, const adi_error_t *err)
{
    if (w->db_down)
        return;
    w->db_down = true;
    if (atomic_fetch_add(&w->svc->db_down, 1) == 0)
        ADI_LOG(NULL, ADI_LOG_WARN, "db.unavailable", "%s; retrying", err->message);
}

static void db_fine(adi_svc_worker_t *w)
{
    if (!w->db_down)
        return;
    w->db_down = false;
    if (atomic_fetch_sub(&w->svc->db_down, 1) == 1)
        ADI_LOG(NULL, ADI_LOG_INFO, "db.recovered", "PostgreSQL reachable again");
}

/* The worker's PostgreSQL connection, connecting (with backoff) when there is none yet. */
static adi_db_t *worker_db(adi_svc_worker_t *w, adi_error_t *err)
{
    if (w->db != NULL)
        return w->db;
    int64_t now = adi_mono_ms();
    if (now < w->db_retry_at) {
        adi_error_set(err, ADI_UNAVAILABLE, "Database unavailable.");
        return NULL;
    }
    if (adi_db_connect(w->svc->cfg.database_url, &w->db, err) != ADI_OK) {
        w->db_backoff = w->db_backoff ? w->db_backoff * 2 : DB_BACKOFF_MIN_MS;
        if (w->db_backoff > DB_BACKOFF_MAX_MS)
            w->db_backoff = DB_BACKOFF_MAX_MS;
        w->db_retry_at = now + w->db_backoff;
        db_trouble(w, err);
        adi_error_set(err, ADI_UNAVAILABLE, "Database unavailable.");
        return NULL;
    }
    w->db_backoff = 0;
    return w->db;
}

/*
 * BEGIN scoped to `scope` (a tenant id), retried once: a restarted server shows up as a failed
 * first statement and the retry reconnects. Tracks the outage state either way.
 */
static adi_err begin(adi_svc_worker_t *w, adi_db_t *db, adi_str_t scope, adi_error_t *err)
{
    adi_err rc = adi_db_begin(db, scope, err);
    if (rc == ADI_UNAVAILABLE) {
        adi_error_clear(err);
        rc = adi_db_begin(db, scope, err);
    }
    if (rc == ADI_UNAVAILABLE)
        db_trouble(w, err);
    else if (rc == ADI_OK)
        db_fine(w);
    return rc;
}

/* ---- replies ---------------------------------------------------------------------------- */

static const char *cstr(adi_pool_t *pool, adi_str_t s)
{
    return s.ptr ? adi_pool_strdup(pool, s).ptr : "";
}

static void encode_reply(request_t *r, const adi_reply *rep)
{
    adi_buf_reset(&r->w->out);
    adi_proto_encode(&adi_reply__desc, rep, &r->w->out);
    r->reply = (adi_str_t){r->w->out.data, r->w->out.len};
    r->status = (int)rep->status;
}

static void reply_ok(request_t *r, int status, adi_str_t body)
{
    adi_reply rep;
    memset(&rep, 0, sizeof(rep));
    rep.v = ADI_PROTO_VERSION;
    rep.id = r->env->id;
    rep.status = status;
    rep.body = body;
    encode_reply(r, &rep);
}

/* Encodes the error reply for `code` with the detail in r->err (or a generic message). */
static void reply_error(request_t *r, adi_err code)
{
    adi_error_t *e = &r->err;
    if (code == ADI_OK)
        code = ADI_INTERNAL;
    if (e->message[0] == '\0' && e->nfields == 0)
        adi_error_set(e, code, "%s", adi_err_name(code));
    adi_reply_error re;
    memset(&re, 0, sizeof(re));
    re.code = adi_str_c(r->code != NULL ? r->code : adi_err_name(code));
    re.message = adi_str_c(e->message);
    if (e->nfields > 0) {
        re.fields.n = e->nfields;
        re.fields.items = adi_pool_alloc(&r->pool, e->nfields * sizeof(*re.fields.items));
        for (size_t i = 0; i < e->nfields; i++) {
            re.fields.items[i].field = adi_str_c(e->fields[i].field);
            re.fields.items[i].message = adi_str_c(e->fields[i].message);
        }
    }
    adi_reply rep;
    memset(&rep, 0, sizeof(rep));
    rep.v = ADI_PROTO_VERSION;
    rep.id = r->env->id;
    rep.status = adi_err_http(code);
    rep.error = &re;
    encode_reply(r, &rep);
}

static void reply_error_msg(request_t *r, adi_err code, const char *msg)
{
    adi_error_clear(&r->err);
    adi_error_set(&r->err, code, "%s", msg);
    reply_error(r, code);
}

/* ---- idempotency ------------------------------------------------------------------------ */

/* The request's idempotency key (adi_svc__idem_key). */
static adi_str_t idem_key(request_t *r)
{
    const adi_envelope *env = r->env;
    return adi_svc__idem_key(&r->pool, env->principal, env->client_ip, env->id);
}

/* Looks the stored reply of `key` up; on a hit r->reply/status hold it and *found is true. */
static adi_err lookup(request_t *r, adi_db_t *db, adi_str_t key, bool *found)
{
    *found = false;
    adi_db_res_t *res = NULL;
    adi_err rc = adi_db_exec(db, &r->pool, r->w->svc->sql_select, 1, &key, &res, &r->err);
    if (rc != ADI_OK || adi_db_nrows(res) == 0)
        return rc;
    if (adi_str_eq_c(adi_db_get(res, 0, 0), ADI_SVC__ABANDONED))
        return adi_error_set(&r->err, ADI_CONFLICT, ADI_SVC__ABANDONED_MSG);
    if (!adi_str_eq_c(adi_db_get(res, 0, 0), r->h->op->name))
        return adi_error_set(&r->err, ADI_CONFLICT,
                             "This request id was already used for another operation.");
    adi_str_t bytes = adi_db_get_bytea(res, 0, 1);
    adi_reply *stored = adi_pool_alloc(&r->pool, sizeof(*stored));
    adi_error_t ignored;
    if (bytes.ptr == NULL || adi_proto_decode(&adi_reply__desc, bytes.ptr, bytes.len, &r->pool,
                                              stored, &ignored) != ADI_OK)
        return adi_error_set(&r->err, ADI_INTERNAL, "Stored reply is unreadable.");
    r->reply = bytes;
    r->status = (int)stored->status;
    r->replayed = true;
    *found = true;
    return ADI_OK;
}

/*
 * What the idempotency table keeps of a successful reply: the reply itself, unless it carries
 * secrets (an ADI_OP_SECRET op such as auth.login, or adi_svc_sensitive). Those are never
 * stored; a redelivery of such a request (its worker died after COMMIT, before the reply was
 * sent) is answered 409 and the caller sends a new request.
 */
static adi_str_t stored_reply(request_t *r)
{
    if (!r->w->sensitive)
        return r->reply;
    adi_reply_error re;
    memset(&re, 0, sizeof(re));
    re.code = adi_str_c(adi_err_name(ADI_CONFLICT));
    re.message = adi_str_c("This request was already served; its reply held secrets and is not "
                           "kept: send a new request.");
    adi_reply rep;
    memset(&rep, 0, sizeof(rep));
    rep.v = ADI_PROTO_VERSION;
    rep.id = r->env->id;
    rep.status = adi_err_http(ADI_CONFLICT);
    rep.error = &re;
    return adi_proto_encode_pool(&adi_reply__desc, &rep, &r->pool);
}

/*
 * A handler context on worker `w` with the fields every kind of run shares (pool, bus, app,
 * metrics, names, version, status 200, the worker); the caller fills in the rest.
 */
static adi_ctx_t worker_ctx(adi_svc_worker_t *w, adi_pool_t *pool, const char *request_id,
                            int64_t deadline_ms, adi_logctx_t log)
{
    adi_svc_t *svc = w->svc;
    return (adi_ctx_t){
        .pool = pool,
        .bus = w->bus,
        .deadline_ms = deadline_ms,
        .request_id = request_id,
        .trace_id = "",
        .client_ip = "",
        .log = log,
        .app = svc->app,
        .metrics = svc->metrics,
        .service = svc->def->name,
        .consumer = w->consumer,
        .version = svc->cfg.app_version,
        .status = 200,
        .worker_ = w,
    };
}

/* ---- the request path ------------------------------------------------------------------- */

static bool has_raw(adi_str_t raw, bool is_null)
{
    return raw.ptr != NULL && raw.len > 0 && !is_null;
}

/* Decodes body, then params over it, then checks required fields. */
static adi_err decode_request(request_t *r, void *req)
{
    const adi_msg_desc_t *d = r->h->op->req;
    adi_envelope *env = r->env;
    adi_err rc = ADI_OK;
    if (has_raw(env->body, ADI_IS_NULL(adi_envelope, env, body)))
        rc = adi_proto_decode_input(d, env->body.ptr, env->body.len, &r->pool, req, &r->err);
    if (rc == ADI_OK && has_raw(env->params, ADI_IS_NULL(adi_envelope, env, params)))
        rc = adi_proto_decode_input(d, env->params.ptr, env->params.len, &r->pool, req, &r->err);
    if (rc == ADI_OK)
        rc = adi_proto_check_required(d, req, &r->err);
    return rc;
}

static void fail_tx(request_t *r, adi_db_t *db, adi_err code)
{
    adi_svc__run_wipes(r->w);
    adi_db_rollback(db);
    if (code == ADI_UNAVAILABLE)
        db_trouble(r->w, &r->err);
    reply_error(r, code);
}

/* A failing handler that asked for its writes to be kept (adi_svc_keep_writes): commits them
   with their events, then answers its error `code` (or the commit's failure). */
static void commit_then_fail(request_t *r, adi_ctx_t *ctx, adi_db_t *db, adi_err code)
{
    adi_error_t cerr;
    adi_error_clear(&cerr);
    adi_err rc = adi_svc__stage_outbox(ctx, db, &cerr);
    if (rc == ADI_OK)
        rc = adi_db_commit(db, &cerr);
    if (rc != ADI_OK) {
        r->code = NULL;
        r->err = cerr;
        fail_tx(r, db, rc);
        return;
    }
    adi_svc__run_wipes(r->w);
    adi_svc__flush_outbox(ctx);
    reply_error(r, code);
}

/* Wipes `n` bytes of (writable) pool or buffer memory that held a secret. */
static void wipe_bytes(const char *p, size_t n)
{
    if (p != NULL && n > 0)
        explicit_bzero((void *)(uintptr_t)p, n);
}

/*
 * Encodes the handler's successful reply `rep`, runs the adi_svc_sensitive wipes and builds the
 * reply message; a sensitive body is wiped once it has been copied into the message.
 */
static void reply_handler(request_t *r, const adi_ctx_t *ctx, const void *rep)
{
    const adi_op_desc_t *op = r->h->op;
    adi_str_t body =
        ctx->status == 204 ? ADI_STR_NULL : adi_proto_encode_pool(op->rep, rep, &r->pool);
    adi_svc__run_wipes(r->w);
    reply_ok(r, ctx->status, body);
    if (r->w->sensitive)
        wipe_bytes(body.ptr, body.len);
}

/* Key of the session advisory lock that serialises deliveries of one idempotency key. */
#define IDEM_LOCK_CLASS "1634747753" /* "adii" */

/*
 * An ADI_SVC_NOTX | ADI_SVC_IDEMPOTENT handler: under a session advisory lock on the idempotency
 * key, answers a stored reply, or runs the handler and stores its successful reply.
 */
static void execute_notx_idem(request_t *r, adi_ctx_t *ctx, void *req, void *rep)
{
    adi_svc_worker_t *w = r->w;
    adi_db_t *db = ctx->db;
    if (db == NULL) {
        reply_error(r, ADI_UNAVAILABLE);
        return;
    }
    adi_str_t key = idem_key(r);
    adi_err rc = adi_db_exec(db, NULL, "SELECT pg_advisory_lock(" IDEM_LOCK_CLASS ", hashtext($1))",
                             1, &key, NULL, &r->err);
    if (rc != ADI_OK) {
        if (rc == ADI_UNAVAILABLE)
            db_trouble(w, &r->err);
        reply_error(r, rc);
        return;
    }
    bool found = false;
    rc = lookup(r, db, key, &found);
    if (rc != ADI_OK) {
        reply_error(r, rc);
    } else if (!found) {
        rc = r->h->fn(ctx, req, rep, &r->err);
        if (rc != ADI_OK) {
            r->code = ctx->error_code;
            adi_svc__run_wipes(w);
            reply_error(r, rc);
        } else {
            reply_handler(r, ctx, rep);
            if (ADI_NEVER(adi_db_in_tx(db))) {
                ADI_LOG(&r->log, ADI_LOG_ERROR, "svc.tx_leak",
                        "transaction left open; rolled back");
                adi_db_rollback(db);
            }
            adi_str_t params[3] = {key, adi_str_c(r->h->op->name), stored_reply(r)};
            static const adi_db_type types[3] = {ADI_DB_TEXT, ADI_DB_TEXT, ADI_DB_BYTEA};
            adi_error_t ierr;
            adi_error_clear(&ierr);
            if (adi_db_exec_typed(db, NULL, w->svc->sql_insert, 3, params, types, NULL, &ierr) !=
                ADI_OK)
                ADI_LOG(&r->log, ADI_LOG_WARN, "svc.idempotency_store_failed",
                        "reply not stored: %s", ierr.message);
            adi_svc__flush_outbox(ctx);
        }
    }
    if (ADI_NEVER(adi_db_in_tx(db))) {
        ADI_LOG(&r->log, ADI_LOG_ERROR, "svc.tx_leak", "transaction left open; rolled back");
        adi_db_rollback(db);
    }
    adi_error_t uerr;
    adi_error_clear(&uerr);
    adi_db_exec(db, NULL, "SELECT pg_advisory_unlock(" IDEM_LOCK_CLASS ", hashtext($1))", 1, &key,
                NULL, &uerr); /* a lost connection released it anyway */
}

/* Runs the handler inside the transaction and idempotency protocol; sets r->reply. */
static void execute(request_t *r)
{
    adi_svc_worker_t *w = r->w;
    adi_svc_t *svc = w->svc;
    const adi_svc_handler_t *h = r->h;
    const adi_op_desc_t *op = h->op;
    adi_envelope *env = r->env;
    const adi_principal *p = env->principal;

    if ((op->flags & ADI_OP_INTERNAL) && (p == NULL || p->service.len == 0)) {
        reply_error_msg(r, ADI_FORBIDDEN, "This operation is only available to services.");
        return;
    }
    void *req = adi_pool_alloc(&r->pool, op->req->size);
    adi_err rc = decode_request(r, req);
    if (rc != ADI_OK) {
        reply_error(r, rc);
        return;
    }
    void *rep = adi_pool_alloc(&r->pool, op->rep->size);
    adi_ctx_t ctx = worker_ctx(w, &r->pool, r->log.request_id, env->deadline_ms, r->log);
    ctx.principal = p;
    ctx.trace_id = cstr(&r->pool, env->trace_id);
    ctx.client_ip = cstr(&r->pool, env->client_ip);
    ctx.op = op;
    bool notx = (h->flags & ADI_SVC_NOTX) != 0;
    adi_db_t *db = worker_db(w, &r->err);
    ctx.db = db;
    if (notx) {
        adi_error_clear(&r->err); /* a missing database is the handler's to judge here */
        if (h->flags & ADI_SVC_IDEMPOTENT) {
            execute_notx_idem(r, &ctx, req, rep);
            return;
        }
        rc = h->fn(&ctx, req, rep, &r->err);
        if (rc != ADI_OK) {
            r->code = ctx.error_code;
            adi_svc__run_wipes(w);
            reply_error(r, rc);
            return;
        }
        reply_handler(r, &ctx, rep);
        adi_svc__flush_outbox(&ctx);
        return;
    }
    if (db == NULL) {
        reply_error(r, ADI_UNAVAILABLE);
        return;
    }
    adi_str_t scope = p != NULL && p->tenant_id.len > 0 ? p->tenant_id : ADI_STR_NULL;
    rc = begin(w, db, scope, &r->err);
    if (rc != ADI_OK) {
        reply_error(r, rc);
        return;
    }

    bool mutating = (op->flags & ADI_OP_MUTATING) != 0 || (h->flags & ADI_SVC_IDEMPOTENT) != 0;
    adi_str_t key = ADI_STR_NULL;
    if (mutating) {
        bool found = false;
        key = idem_key(r);
        ctx.settle_key_ = key.ptr;
        rc = lookup(r, db, key, &found);
        if (rc != ADI_OK || found) {
            if (rc != ADI_OK)
                fail_tx(r, db, rc);
            else
                adi_db_rollback(db);
            return;
        }
    }

    rc = h->fn(&ctx, req, rep, &r->err);
    if (rc != ADI_OK) {
        r->code = ctx.error_code;
        if (ctx.keep_writes_)
            commit_then_fail(r, &ctx, db, rc);
        else
            fail_tx(r, db, rc);
        return;
    }
    reply_handler(r, &ctx, rep);

    if (mutating) {
        adi_str_t params[3] = {key, adi_str_c(op->name), stored_reply(r)};
        static const adi_db_type types[3] = {ADI_DB_TEXT, ADI_DB_TEXT, ADI_DB_BYTEA};
        rc = adi_db_exec_typed(db, NULL, svc->sql_insert, 3, params, types, NULL, &r->err);
        if (rc == ADI_CONFLICT) {
            /* A concurrent delivery of the same request committed first: answer as it did. */
            adi_db_rollback(db);
            bool found = false;
            adi_error_clear(&r->err);
            rc = lookup(r, db, key, &found);
            if (rc != ADI_OK || !found)
                reply_error(r, rc != ADI_OK ? rc : ADI_INTERNAL);
            return;
        }
        if (rc != ADI_OK) {
            fail_tx(r, db, rc);
            return;
        }
    }
    /* Events commit with the writes they describe (the outbox), then are published. */
    rc = adi_svc__stage_outbox(&ctx, db, &r->err);
    if (rc != ADI_OK) {
        fail_tx(r, db, rc);
        return;
    }
    rc = adi_db_commit(db, &r->err);
    if (rc != ADI_OK) {
        if (rc == ADI_UNAVAILABLE)
            db_trouble(w, &r->err);
        reply_error(r, rc);
        return;
    }
    adi_svc__flush_outbox(&ctx);
}

static void ack_only(adi_svc_worker_t *w, const adi_bus_entry_t *e)
{
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_bus_ack(w->bus, w->stream, w->group, e->id, &err) != ADI_OK) {
        ADI_LOG(NULL, ADI_LOG_WARN, "bus.ack_failed", "entry %s: %s", e->id.ptr, err.message);
        if (err.code == ADI_UNAVAILABLE)
            redis_trouble(w, &err);
    }
}

/* Serves one stream entry from decoding to acknowledgement. */
static void serve(adi_svc_worker_t *w, const adi_bus_entry_t *e)
{
    adi_svc_t *svc = w->svc;
    request_t r;
    memset(&r, 0, sizeof(r));
    r.w = w;
    adi_pool_init(&r.pool);
    adi_error_clear(&r.err);
    r.log.start_ms = adi_mono_ms();
    w->wipes = NULL;
    w->sensitive = false;

    if (e->msg.ptr == NULL) {
        ADI_LOG(NULL, ADI_LOG_WARN, "svc.bad_entry", "entry %s %s; dropped", e->id.ptr,
                e->too_large ? "exceeds the size limit" : "has no message");
        adi_metrics_count(svc->metrics, "adi_bus_bad_entries_total", svc->stream_label, 1);
        ack_only(w, e);
        goto out;
    }
    r.env = adi_pool_alloc(&r.pool, sizeof(*r.env));
    if (adi_proto_decode(&adi_envelope__desc, e->msg.ptr, e->msg.len, &r.pool, r.env, &r.err) !=
            ADI_OK ||
        adi_proto_check_required(&adi_envelope__desc, r.env, &r.err) != ADI_OK) {
        if (r.err.nfields > 0)
            ADI_LOG(NULL, ADI_LOG_WARN, "svc.bad_envelope", "entry %s: %s: %s; dropped", e->id.ptr,
                    r.err.fields[0].field, r.err.fields[0].message);
        else
            ADI_LOG(NULL, ADI_LOG_WARN, "svc.bad_envelope", "entry %s: %s; dropped", e->id.ptr,
                    r.err.message);
        adi_metrics_count(svc->metrics, "adi_bus_bad_entries_total", svc->stream_label, 1);
        ack_only(w, e);
        goto out;
    }
    adi_envelope *env = r.env;
    r.log.request_id = cstr(&r.pool, env->id);
    r.log.op = cstr(&r.pool, env->op);
    if (env->trace_id.len > 0) /* the client's X-Request-ID: one grep finds every hop */
        r.log.trace_id = cstr(&r.pool, env->trace_id);
    if (env->principal != NULL && env->principal->tenant_id.len > 0)
        r.log.tenant_id = cstr(&r.pool, env->principal->tenant_id);
    r.h = adi_svc__find(svc, env->op);

    if (env->v < ADI_PROTO_VERSION_MIN || env->v > ADI_PROTO_VERSION) {
        reply_error_msg(&r, ADI_UNAVAILABLE, "Unsupported protocol version.");
    } else if (env->deadline_ms <= adi_now_ms()) {
        /* The caller has already answered 504: executing now would only cause surprises. */
        adi_metrics_count(svc->metrics, "adi_bus_expired_total", svc->stream_label, 1);
        ADI_LOG(&r.log, ADI_LOG_WARN, "bus.expired", "entry %s past its deadline; dropped",
                e->id.ptr);
        ack_only(w, e);
        goto out;
    } else if (r.h == NULL) {
        adi_error_set(&r.err, ADI_NOT_FOUND, "Unknown operation.");
        reply_error(&r, ADI_NOT_FOUND);
    } else {
        /* A reply that carries secrets is wiped once sent and never stored (stored_reply). */
        w->sensitive = (r.h->op->flags & ADI_OP_SECRET) != 0;
        execute(&r);
        adi_svc__run_wipes(w); /* every path ran them already; never leave one behind */
        if (ADI_NEVER(w->db != NULL && adi_db_in_tx(w->db))) {
            /* A handler left a transaction of its own open: never carry it to the next one. */
            ADI_LOG(&r.log, ADI_LOG_ERROR, "svc.tx_leak", "transaction left open; rolled back");
            adi_db_rollback(w->db);
        }
    }

    const char *reply_to = cstr(&r.pool, env->reply_to);
    adi_error_t berr;
    adi_error_clear(&berr);
    if (adi_bus_reply_ack(w->bus, reply_to, r.reply, svc->stream, svc->def->name, e->id, &berr) !=
        ADI_OK) {
        /* Left pending: another consumer (or this one) reclaims it later. */
        ADI_LOG(&r.log, ADI_LOG_WARN, "svc.reply_failed", "entry %s: %s", e->id.ptr, berr.message);
        if (berr.code == ADI_UNAVAILABLE)
            redis_trouble(w, &berr);
    }
    if (w->sensitive) {
        /* The reply carried secrets: keep no copy once it is on the caller's stream. */
        wipe_bytes(r.reply.ptr, r.reply.len);
        wipe_bytes(w->out.data, w->out.len);
        w->sensitive = false;
    }
    const char *op_label = r.h ? r.h->op->name : "unknown";
    adi_metrics_observe(svc->metrics, op_label, r.status,
                        (double)(adi_mono_ms() - r.log.start_ms) / 1000.0);
    if (r.replayed)
        adi_metrics_count(svc->metrics, "adi_idempotent_replays_total", svc->stream_label, 1);
    if (r.status >= 500)
        ADI_LOG(&r.log, ADI_LOG_ERROR, "svc.request", "status=%d code=%s %s", r.status,
                adi_err_name(adi_err_from_http(r.status)), r.err.message);
    else if (r.status >= 400)
        ADI_LOG(&r.log, ADI_LOG_INFO, "svc.request", "status=%d %s", r.status, r.err.message);
    else
        ADI_LOG(&r.log, ADI_LOG_INFO, "svc.request", "status=%d%s", r.status,
                r.replayed ? " replayed" : "");
out:
    adi_pool_dispose(&r.pool);
}

/* ---- event consumers -------------------------------------------------------------------- */

/* What became of one event entry. */
typedef enum ev_outcome {
    EV_DONE = 200,    /* committed and acknowledged */
    EV_DROPPED = 400, /* acknowledged without effect: it can never succeed */
    EV_RETRY = 503,   /* left pending, for XAUTOCLAIM to deliver again */
} ev_outcome_t;

/* Counts one more failed run of entry `id`; returns the runs failed so far. */
static int note_failure(adi_svc_worker_t *w, adi_str_t id)
{
    for (size_t i = 0; i < ADI_SVC__FAILED_SLOTS; i++)
        if (adi_str_eq_c(id, w->failed[i].id))
            return ++w->failed[i].attempts;
    adi_svc_failed_t *f = &w->failed[w->failed_next++ % ADI_SVC__FAILED_SLOTS];
    snprintf(f->id, sizeof(f->id), "%.*s", (int)id.len, id.ptr);
    f->attempts = 1;
    return 1;
}

/* Forgets the failures of entry `id` (it succeeded or was dropped). */
static void forget_failure(adi_svc_worker_t *w, adi_str_t id)
{
    for (size_t i = 0; i < ADI_SVC__FAILED_SLOTS; i++)
        if (adi_str_eq_c(id, w->failed[i].id))
            w->failed[i].id[0] = '\0';
}

/* Runs the consumer's handler for `msg` in its transaction (unless NOTX), then commits. */
static adi_err run_event(adi_svc_worker_t *w, adi_ctx_t *ctx, const void *msg, adi_str_t scope,
                         adi_error_t *err)
{
    const adi_svc_consumer_t *c = w->ev;
    adi_db_t *db = worker_db(w, err);
    ctx->db = db;
    if (c->flags & ADI_SVC_NOTX) {
        adi_error_clear(err); /* a missing database is the handler's to judge here */
        return c->fn(ctx, msg, err);
    }
    if (db == NULL)
        return ADI_UNAVAILABLE;
    adi_err rc = begin(w, db, scope, err);
    if (rc != ADI_OK)
        return rc;
    rc = c->fn(ctx, msg, err);
    if (rc != ADI_OK) {
        adi_db_rollback(db);
        return rc;
    }
    rc = adi_db_commit(db, err);
    if (rc == ADI_UNAVAILABLE)
        db_trouble(w, err);
    return rc;
}

/* Decides an entry's fate after its handler failed with `rc`. */
static ev_outcome_t judge_failure(adi_svc_worker_t *w, adi_str_t id, adi_err rc)
{
    if (rc == ADI_UNAVAILABLE || rc == ADI_TIMEOUT || rc == ADI_BUSY)
        return EV_RETRY;
    if (rc == ADI_INTERNAL && note_failure(w, id) < ADI_SVC_EVENT_MAX_ATTEMPTS)
        return EV_RETRY;
    return EV_DROPPED;
}

/* Serves one entry of a consumer's stream: decode, handler in a transaction, commit, XACK. */
static void serve_event(adi_svc_worker_t *w, const adi_bus_entry_t *e)
{
    adi_svc_t *svc = w->svc;
    const adi_svc_consumer_t *c = w->ev;
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_error_t err;
    adi_error_clear(&err);
    adi_logctx_t log = {.request_id = e->id.ptr, .op = c->group, .start_ms = adi_mono_ms()};
    ev_outcome_t outcome = EV_DROPPED;
    adi_err rc = ADI_INVALID;

    void *msg = adi_pool_alloc(&pool, c->msg->size);
    if (e->msg.ptr == NULL) {
        adi_error_set(&err, ADI_INVALID, "%s",
                      e->too_large ? "exceeds the size limit" : "no message");
    } else if (adi_proto_decode(c->msg, e->msg.ptr, e->msg.len, &pool, msg, &err) == ADI_OK &&
               adi_proto_check_required(c->msg, msg, &err) == ADI_OK) {
        adi_str_t scope = c->tenant != NULL ? c->tenant(msg) : ADI_STR_NULL;
        if (scope.len == 0)
            scope = ADI_STR_NULL;
        adi_principal *p = NULL;
        if (scope.ptr != NULL) {
            p = adi_pool_alloc(&pool, sizeof(*p));
            p->tenant_id = scope;
            log.tenant_id = adi_pool_strdup(&pool, scope).ptr;
        }
        adi_ctx_t ctx =
            worker_ctx(w, &pool, e->id.ptr, adi_now_ms() + svc->cfg.reclaim_idle_ms, log);
        ctx.principal = p;
        w->wipes = NULL;
        w->sensitive = false;
        rc = run_event(w, &ctx, msg, scope, &err);
        adi_svc__run_wipes(w);
        w->sensitive = false;
        if (ADI_NEVER(w->db != NULL && adi_db_in_tx(w->db)))
            adi_db_rollback(w->db); /* a NOTX handler left a transaction of its own open */
        if (rc == ADI_OK) {
            outcome = EV_DONE;
            adi_svc__flush_outbox(&ctx);
        } else {
            outcome = judge_failure(w, e->id, rc);
        }
    } else if (err.nfields > 0) {
        /* Name the first offending field (never its value) for the operator. */
        char first[ADI_ERROR_FIELD_LEN + ADI_ERROR_MSG_LEN + 4];
        snprintf(first, sizeof(first), "%s: %s", err.fields[0].field, err.fields[0].message);
        adi_error_set(&err, ADI_INVALID, "%s", first);
    }

    if (outcome == EV_RETRY) {
        ADI_LOG(&log, ADI_LOG_WARN, "svc.event_retry", "entry %s of %s: %s; left pending",
                e->id.ptr, c->stream, err.message[0] ? err.message : adi_err_name(rc));
    } else {
        if (outcome == EV_DROPPED) {
            adi_metrics_count(svc->metrics, "adi_events_dropped_total", w->label, 1);
            ADI_LOG(&log, ADI_LOG_ERROR, "svc.event_dropped", "entry %s of %s: %s: %s; dropped",
                    e->id.ptr, c->stream, adi_err_name(rc), err.message);
        }
        forget_failure(w, e->id);
        ack_only(w, e);
    }
    adi_metrics_observe(svc->metrics, c->group, (int)outcome,
                        (double)(adi_mono_ms() - log.start_ms) / 1000.0);
    adi_pool_dispose(&pool);
    /* The database is down: give it a moment instead of failing every entry of the backlog. */
    if (outcome == EV_RETRY && rc == ADI_UNAVAILABLE && (w->db_down || w->db == NULL))
        adi_svc__nap(svc, DB_BACKOFF_MAX_MS);
}

static void serve_any(adi_svc_worker_t *w, const adi_bus_entry_t *e)
{
    if (w->ev != NULL)
        serve_event(w, e);
    else
        serve(w, e);
}

/* ---- the loop --------------------------------------------------------------------------- */

static int64_t reclaim_interval(const adi_svc_t *svc)
{
    int64_t v = svc->cfg.reclaim_idle_ms / 2;
    if (v < 50)
        v = 50;
    return v > 10000 ? 10000 : v;
}

/* Takes over entries other consumers left pending too long, and serves them. */
static void reclaim(adi_svc_worker_t *w)
{
    adi_svc_t *svc = w->svc;
    for (int round = 0; round < 4 && !atomic_load(&svc->stop); round++) {
        adi_bus_batch_t b;
        adi_error_t err;
        adi_error_clear(&err);
        adi_err rc =
            adi_bus_reclaim(w->bus, w->stream, w->group, w->consumer, svc->cfg.reclaim_idle_ms,
                            ADI_SVC__RECLAIM_COUNT, w->cursor, &b, &err);
        if (rc != ADI_OK) {
            adi_bus_batch_dispose(&b);
            if (rc == ADI_NOT_FOUND)
                w->group_ok = false;
            else if (rc == ADI_UNAVAILABLE)
                redis_trouble(w, &err);
            return;
        }
        if (b.n > 0) {
            adi_metrics_count(svc->metrics, "adi_bus_reclaimed_total", w->label, (double)b.n);
            ADI_LOG(NULL, ADI_LOG_WARN, "bus.reclaimed",
                    "%zu entries idle over %" PRId64 " ms taken over by %s", b.n,
                    svc->cfg.reclaim_idle_ms, w->consumer);
        }
        for (size_t i = 0; i < b.n; i++)
            serve_any(w, &b.items[i]);
        size_t n = b.n;
        adi_bus_batch_dispose(&b);
        if (n == 0 || strcmp(w->cursor, "0-0") == 0)
            return;
    }
}

/* Runs the service's own periodic chore (adi_svc_def_t.chore) once. */
static void run_chore(adi_svc_worker_t *w)
{
    adi_svc_t *svc = w->svc;
    adi_error_t err;
    adi_error_clear(&err);
    adi_db_t *db = worker_db(w, &err);
    if (db == NULL)
        return;
    char id[37];
    adi_uuid_v4(id);
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_logctx_t log = {.request_id = id, .op = "chore", .start_ms = adi_mono_ms()};
    adi_ctx_t ctx = worker_ctx(w, &pool, id, adi_now_ms() + svc->def->chore_ms, log);
    ctx.db = db;
    /* The next run comes a period after this one ended, ten after a failure (a callee that
       is down must not keep this worker, which serves requests too, waiting). */
    int64_t period = svc->def->chore_ms;
    if (svc->def->chore(&ctx, &err) != ADI_OK) {
        ADI_LOG(&ctx.log, ADI_LOG_WARN, "svc.chore_failed", "%s", err.message);
        if (err.code == ADI_UNAVAILABLE)
            db_trouble(w, &err);
        period *= 10;
    }
    w->next_chore = adi_mono_ms() + period;
    if (ADI_NEVER(adi_db_in_tx(db))) {
        ADI_LOG(&ctx.log, ADI_LOG_ERROR, "svc.tx_leak", "chore left a transaction open");
        adi_db_rollback(db);
    }
    adi_pool_dispose(&pool);
}

/*
 * Periodic chores of the first worker of each stream: backlog gauges, and for the request
 * stream's, publishing outbox events left behind and trimming the idempotency table.
 */
static void housekeeping(adi_svc_worker_t *w, int64_t now)
{
    adi_svc_t *svc = w->svc;
    adi_error_t err;
    adi_error_clear(&err);
    if (now >= w->next_gauge) {
        w->next_gauge = now + ADI_SVC__GAUGE_MS;
        adi_bus_group_info_t gi;
        if (adi_bus_group_info(w->bus, w->stream, w->group, &gi, &err) == ADI_OK) {
            adi_metrics_gauge(svc->metrics, "adi_stream_backlog", w->label,
                              (double)(gi.lag < 0 ? 0 : gi.lag));
            adi_metrics_gauge(svc->metrics, "adi_stream_pending", w->label, (double)gi.pending);
            adi_metrics_gauge(svc->metrics, "adi_stream_consumers", w->label, (double)gi.consumers);
        }
    }
    if (w->ev == NULL && now >= w->next_outbox) {
        w->next_outbox = now + ADI_SVC__OUTBOX_SWEEP_MS;
        adi_db_t *db = worker_db(w, &err);
        if (db != NULL)
            adi_svc__sweep_outbox(w, db);
        adi_error_clear(&err);
    }
    if (w->ev == NULL && svc->def->chore != NULL && now >= w->next_chore)
        run_chore(w);
    if (w->ev == NULL && now >= w->next_cleanup) {
        w->next_cleanup = now + ADI_SVC__CLEANUP_MS;
        adi_db_t *db = worker_db(w, &err);
        if (db != NULL && adi_db_exec(db, NULL, svc->sql_cleanup, 0, NULL, NULL, &err) != ADI_OK)
            ADI_LOG(NULL, ADI_LOG_WARN, "svc.cleanup_failed", "idempotency cleanup: %s",
                    err.message);
    }
}

void *adi_svc__worker_main(void *arg)
{
    adi_svc_worker_t *w = arg;
    adi_svc_t *svc = w->svc;
    int64_t now = adi_mono_ms();
    w->next_reclaim = now;
    w->next_gauge = now;
    w->next_cleanup = now + 60000;
    w->next_outbox = now + ADI_SVC__OUTBOX_SWEEP_MS;
    w->next_chore = now + svc->def->chore_ms;
    snprintf(w->cursor, sizeof(w->cursor), "0-0");

    while (!atomic_load(&svc->stop)) {
        adi_error_t err;
        adi_error_clear(&err);
        if (!w->group_ok) {
            if (adi_bus_ensure_group(w->bus, w->stream, w->group, &err) != ADI_OK) {
                redis_trouble(w, &err);
                int64_t wait = adi_bus_retry_in_ms(w->bus);
                adi_svc__nap(svc, wait > 0 ? wait : 100);
                continue;
            }
            w->group_ok = true;
            if (w->ev == NULL)
                atomic_store(&svc->group_joined, true);
            redis_fine(w);
        }
        now = adi_mono_ms();
        if (now >= w->next_reclaim) {
            w->next_reclaim = now + reclaim_interval(svc);
            reclaim(w);
        }
        if (w->index == 0)
            housekeeping(w, now);
        int64_t block = w->next_reclaim - adi_mono_ms();
        if (block > ADI_SVC__BLOCK_MS)
            block = ADI_SVC__BLOCK_MS;
        adi_bus_batch_t b;
        adi_err rc = adi_bus_read_group(w->bus, w->stream, w->group, w->consumer,
                                        ADI_SVC__READ_COUNT, block < 1 ? 1 : (int)block, &b, &err);
        if (rc != ADI_OK) {
            adi_bus_batch_dispose(&b);
            if (rc == ADI_NOT_FOUND) {
                w->group_ok = false;
                continue;
            }
            redis_trouble(w, &err);
            int64_t wait = adi_bus_retry_in_ms(w->bus);
            adi_svc__nap(svc, wait > 0 ? wait : 100);
            continue;
        }
        redis_fine(w);
        /* Entries already delivered to this consumer are served even when a stop arrived. */
        for (size_t i = 0; i < b.n; i++)
            serve_any(w, &b.items[i]);
        adi_bus_batch_dispose(&b);
    }

    /* Leave the group tidy: this consumer and its reply stream go when nothing is pending. */
    adi_error_t err;
    adi_error_clear(&err);
    if (w->group_ok &&
        adi_bus_retire_consumer(w->bus, w->stream, w->group, w->consumer, &err) == ADI_OK)
        adi_bus_del(w->bus, w->reply_stream, &err);

    pthread_mutex_lock(&svc->mu);
    svc->running--;
    pthread_cond_broadcast(&svc->cv);
    pthread_mutex_unlock(&svc->mu);
    return NULL;
}
