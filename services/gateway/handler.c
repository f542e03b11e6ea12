/* SPDX-License-Identifier: MIT */
/*
 * The one generic h2o handler. Every request goes through the same steps:
 *   1. request id (X-Request-ID if sane, else a new UUID) and CORS origin check;
 *   2. CORS preflight, else route matching (404 / 405 with Allow / OPTIONS 204);
 *   3. a local route is served by local.c; a proxied route is admitted (Redis up, the service's
 *      stream exists and its backlog is under BACKLOG_LIMIT, the thread's pending table has room),
 *      its JSON body becomes msgpack, path and query parameters a msgpack map, both go into an
 *      envelope; with an Idempotency-Key on a mutating method the key is locked in Redis first
 *      (or the stored response replayed, 409 or 422);
 *   4. the envelope is XADDed to the service's stream and the request waits for its reply (matched
 *      by correlation id in bus.c) or its deadline (504);
 *   5. gw_respond writes the response with the common headers, logs one line (gw.request, path
 *      without query string, no headers, no body), records the route's metrics and settles the
 *      Idempotency-Key (stores the response for 24 h, or releases the key after a 5xx).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "adi/log.h"
#include "adi/proto.h"
#include "gw.h"
#include "gw_parse.h"

#define IDEM_LOCK_SLACK_MS 5000 /* a lock outlives its request's deadline by this much */
#define LOG_PATH_MAX       512  /* bytes of the path in the log line */

/* What h2o's request pool holds: when h2o disposes the request, the gw_req_t learns it. */
typedef struct anchor {
    gw_req_t *r; /* the request */
} anchor_t;

/* ---- lifetime --------------------------------------------------------------------------- */

void gw_req_ref(gw_req_t *r)
{
    r->refs++;
}

void gw_req_unref(gw_req_t *r)
{
    ADI_ASSERT(r->refs > 0);
    if (--r->refs > 0)
        return;
    ADI_ASSERT(!r->timer_linked);
    adi_buf_dispose(&r->env);
    adi_buf_dispose(&r->idem_running);
    r->t->live--;
    free(r);
}

void gw_req_arm_timer(gw_req_t *r, size_t dclass, h2o_timeout_cb cb)
{
    gw_req_disarm_timer(r);
    r->timer.cb = cb;
    h2o_timeout_link(&r->t->loop, &r->t->timeouts[dclass], &r->timer);
    r->timer_linked = true;
}

void gw_req_disarm_timer(gw_req_t *r)
{
    if (r->timer_linked)
        h2o_timeout_unlink(&r->timer);
    r->timer_linked = false;
}

void gw_req_drop_calls(gw_req_t *r)
{
    for (size_t i = 0; i < r->ncalls; i++)
        gw_pending_remove(r->t, &r->calls[i]);
}

/* Releases or stores the Idempotency-Key lock we hold (no reference: nothing to call back). */
static void idem_settle(gw_req_t *r, int status, adi_str_t body)
{
    if (!r->idem)
        return;
    r->idem = false;
    adi_buf_t done;
    adi_buf_init(&done);
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%d", GW_IDEM_TTL_MS);
    if (gw_idem_storable(status))
        gw_idem_done_value(r->idem_fp, status, body, &done);
    adi_str_t args[3] = {{r->idem_running.data, r->idem_running.len},
                         {done.data ? done.data : "", done.len},
                         adi_str_c(ttl)};
    if (!gw_bus_eval(r->t, gw_idem_settle_lua, r->idem_key, args, 3, NULL, NULL))
        ADI_LOG(NULL, ADI_LOG_WARN, "gw.idem_settle_failed", "request_id=%s", r->request_id);
    adi_buf_dispose(&done);
}

static void log_request(gw_req_t *r, int status)
{
    adi_logctx_t lc = {r->request_id, NULL, r->route && r->route->op ? r->route->op->name : NULL,
                       r->start_ms};
    ADI_LOG(&lc, ADI_LOG_INFO, "gw.request", "method=%s path=%s status=%d", r->log_method,
            r->log_path, status);
    double secs = (double)(adi_mono_ms() - r->start_ms) / 1000.0;
    adi_metrics_observe(r->t->gw->metrics, r->route_label, status, secs < 0 ? 0 : secs);
}

static void anchor_dispose(void *p)
{
    anchor_t *a = p;
    gw_req_t *r = a->r;
    r->req = NULL;
    if (!r->responded) {
        /* h2o dropped the request before our answer (its connection died): 499 as in nginx. */
        r->responded = true;
        gw_req_disarm_timer(r);
        gw_req_drop_calls(r);
        idem_settle(r, 499, ADI_STR_NULL);
        log_request(r, 499);
    }
    gw_req_unref(r);
}

static gw_req_t *req_new(gw_thread_t *t, h2o_req_t *req)
{
    gw_req_t *r = adi_xcalloc(1, sizeof(*r));
    r->t = t;
    r->req = req;
    r->refs = 1;
    r->start_ms = adi_mono_ms();
    adi_buf_init(&r->env);
    adi_buf_init(&r->idem_running);
    t->live++;
    anchor_t *a = h2o_mem_alloc_shared(&req->pool, sizeof(*a), anchor_dispose);
    a->r = r;

    r->method = (adi_str_t){req->method.base, req->method.len};
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    r->path = (adi_str_t){req->path.base, plen};
    snprintf(r->log_method, sizeof(r->log_method), "%.*s",
             (int)(r->method.len < sizeof(r->log_method) - 1 ? r->method.len
                                                             : sizeof(r->log_method) - 1),
             r->method.ptr);
    snprintf(r->log_path, sizeof(r->log_path), "%.*s",
             (int)(plen < LOG_PATH_MAX ? plen : LOG_PATH_MAX), r->path.ptr);
    snprintf(r->route_label, sizeof(r->route_label), "unmatched");

    ssize_t h = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
    adi_str_t rid =
        h >= 0 ? (adi_str_t){req->headers.entries[h].value.base, req->headers.entries[h].value.len}
               : ADI_STR_NULL;
    if (gw_request_id_valid(rid)) {
        memcpy(r->request_id, rid.ptr, rid.len);
        r->request_id[rid.len] = '\0';
    } else {
        adi_uuid_v4(r->request_id);
    }
    h = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1);
    if (h >= 0) {
        r->origin =
            (adi_str_t){req->headers.entries[h].value.base, req->headers.entries[h].value.len};
        r->cors = gw_origins_allowed(&t->gw->origins, r->origin);
    }
    return r;
}

/* ---- responding ------------------------------------------------------------------------- */

static void add_header(h2o_req_t *req, const char *name, const char *value)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 1, NULL, value,
                          strlen(value));
}

void gw_respond(gw_req_t *r, int status, const char *body, size_t len, const char *const *extra)
{
    if (r->responded)
        return;
    r->responded = true;
    gw_req_disarm_timer(r);
    gw_req_drop_calls(r);
    idem_settle(r, status, (adi_str_t){body, len});
    h2o_req_t *req = r->req;
    if (ADI_NEVER(req == NULL))
        return;
    req->res.status = status;
    req->res.reason = gw_reason(status);
    bool empty = status == 204 || status == 304;
    if (!empty)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                       H2O_STRLIT("application/json"));
    add_header(req, "x-request-id", r->request_id);
    if (r->cors) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ACCESS_CONTROL_ALLOW_ORIGIN, NULL,
                       r->origin.ptr, r->origin.len);
        add_header(req, "access-control-expose-headers", "X-Request-ID, Retry-After");
    }
    if (r->origin.ptr != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VARY, NULL, H2O_STRLIT("Origin"));
    for (size_t i = 0; extra != NULL && extra[i] != NULL && extra[i + 1] != NULL; i += 2)
        add_header(req, extra[i], extra[i + 1]);
    req->res.content_length = empty ? SIZE_MAX : len; /* no Content-Length on 204 (RFC 9110) */
    log_request(r, status);
    h2o_send_inline(req, empty ? "" : body, empty ? 0 : len);
}

void gw_respond_error(gw_req_t *r, int status, const char *code, const char *msg)
{
    adi_buf_t b;
    adi_buf_init(&b);
    gw_render_error_obj(&b, code, msg);
    static const char *const retry[] = {"retry-after", "1", NULL};
    gw_respond(r, status, b.data, b.len, status == 503 ? retry : NULL);
    adi_buf_dispose(&b);
}

static void respond_detail(gw_req_t *r, int status, const char *msg, const char *const *extra)
{
    adi_buf_t b;
    adi_buf_init(&b);
    gw_render_detail(&b, msg, strlen(msg));
    gw_respond(r, status, b.data, b.len, extra);
    adi_buf_dispose(&b);
}

static void respond_not_found(gw_req_t *r)
{
    adi_buf_t b;
    adi_buf_init(&b);
    gw_render_not_found(&b, r->path);
    gw_respond(r, 404, b.data, b.len, NULL);
    adi_buf_dispose(&b);
}

/* ---- replies from the bus --------------------------------------------------------------- */

void gw_on_reply(gw_call_t *c, const adi_reply *rep)
{
    gw_req_t *r = c->owner;
    if (r->route != NULL && r->route->local == GW_LOCAL_HEALTH) {
        gw_local_health_reply(c, rep);
        return;
    }
    if (r->responded || r->req == NULL)
        return;
    int status = (int)rep->status;
    adi_buf_t b;
    adi_buf_init(&b);
    if (status >= 200 && status < 300) {
        adi_error_t err;
        adi_error_clear(&err);
        if (status == 204) {
            gw_respond(r, 204, "", 0, NULL);
        } else if (rep->body.ptr == NULL) {
            gw_respond(r, status, "{}", 2, NULL);
        } else if (adi_msgpack_to_json(rep->body.ptr, rep->body.len, &b, &err) == ADI_OK) {
            gw_respond(r, status, b.data, b.len, NULL);
        } else {
            adi_logctx_t lc = {r->request_id, NULL, r->route ? r->route->op->name : NULL, 0};
            ADI_LOG(&lc, ADI_LOG_ERROR, "gw.bad_reply_body", "%s", err.message);
            gw_respond_error(r, 500, "server_error", GW_MSG_SERVER_ERROR);
        }
    } else {
        int st = gw_render_reply_error(status >= 400 ? status : 500, rep->error, &b);
        static const char *const retry[] = {"retry-after", "1", NULL};
        static const char *const www[] = {"www-authenticate", "Bearer realm=\"api\"", NULL};
        gw_respond(r, st, b.data, b.len, st == 503 ? retry : st == 401 ? www : NULL);
    }
    adi_buf_dispose(&b);
}

void gw_on_send_failed(gw_call_t *c, adi_err code)
{
    gw_req_t *r = c->owner;
    if (r->route != NULL && r->route->local == GW_LOCAL_HEALTH) {
        gw_local_health_reply(c, NULL);
        return;
    }
    if (r->responded || r->req == NULL)
        return;
    (void)code;
    gw_respond_error(r, 503, "unavailable", GW_MSG_UNAVAILABLE);
}

static void on_proxy_timeout(h2o_timeout_entry_t *entry)
{
    gw_req_t *r = H2O_STRUCT_FROM_MEMBER(gw_req_t, timer, entry);
    r->timer_linked = false;
    gw_respond_error(r, 504, "timeout", GW_MSG_TIMEOUT);
}

/* ---- Idempotency-Key -------------------------------------------------------------------- */

static void send_envelope(gw_req_t *r)
{
    gw_bus_send(r->t, &r->calls[0], r->service, &r->env);
    adi_buf_dispose(&r->env);
}

static void on_idem_acquired(gw_req_t *r, void *reply)
{
    redisReply *rep = reply;
    if (rep != NULL && rep->type == REDIS_REPLY_NIL) {
        r->idem = true; /* we own the key now: every outcome settles it */
        if (r->responded) {
            idem_settle(r, 499, ADI_STR_NULL);
            return;
        }
        send_envelope(r);
        return;
    }
    if (r->responded)
        return;
    if (rep == NULL || rep->type != REDIS_REPLY_STRING) {
        gw_respond_error(r, 503, "unavailable", GW_MSG_UNAVAILABLE);
        return;
    }
    int status;
    adi_str_t body;
    switch (gw_idem_judge((adi_str_t){rep->str, rep->len}, r->idem_fp, &status, &body)) {
    case GW_IDEM_REPLAY: {
        static const char *const replayed[] = {"idempotent-replayed", "true", NULL};
        gw_respond(r, status, body.ptr, body.len, replayed);
        return;
    }
    case GW_IDEM_BUSY:
        respond_detail(r, 409, GW_IDEM_MSG_BUSY, NULL);
        return;
    case GW_IDEM_MISMATCH:
        respond_detail(r, 422, GW_IDEM_MSG_REUSE, NULL);
        return;
    case GW_IDEM_CORRUPT:
        break;
    }
    gw_respond_error(r, 500, "server_error", GW_MSG_SERVER_ERROR);
}

/* Locks the key (async); the verdict continues in on_idem_acquired. */
static void idem_start(gw_req_t *r, adi_str_t key, adi_str_t body, int64_t deadline_ms)
{
    /* No principal yet (public routes only): the key is scoped to anonymous callers. */
    gw_idem_redis_key(key, ADI_STR_NULL, r->idem_key);
    gw_idem_fingerprint(r->method, (adi_str_t){r->req->path.base, r->req->path.len}, body,
                        r->idem_fp);
    char token[37];
    adi_uuid_v4(token);
    gw_idem_running_value(r->idem_fp, token, &r->idem_running);
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%" PRId64, deadline_ms + IDEM_LOCK_SLACK_MS);
    adi_str_t args[2] = {{r->idem_running.data, r->idem_running.len}, adi_str_c(ttl)};
    if (!gw_bus_eval(r->t, gw_idem_acquire_lua, r->idem_key, args, 2, on_idem_acquired, r))
        gw_respond_error(r, 503, "unavailable", GW_MSG_UNAVAILABLE);
}

/* ---- proxied routes --------------------------------------------------------------------- */

static bool is_mutating(gw_method_t m)
{
    return m == GW_M_POST || m == GW_M_PUT || m == GW_M_PATCH || m == GW_M_DELETE;
}

/* Converts the body to msgpack into `mp`; answers and returns false on bad input. */
static bool read_body(gw_req_t *r, adi_buf_t *mp)
{
    gw_t *gw = r->t->gw;
    h2o_req_t *req = r->req;
    size_t len = req->entity.base != NULL ? req->entity.len : 0;
    char msg[96];
    if (len > (size_t)gw->cfg.max_body) {
        snprintf(msg, sizeof(msg), "Request body exceeds %" PRId64 " bytes.", gw->cfg.max_body);
        respond_detail(r, 413, msg, NULL);
        return false;
    }
    if (len == 0) {
        adi_buf_append(mp, "\x80", 1); /* empty body = {} */
        return true;
    }
    ssize_t h = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (h >= 0) {
        adi_str_t ct = {req->headers.entries[h].value.base, req->headers.entries[h].value.len};
        if (!gw_content_type_is_json(ct)) {
            adi_buf_t b;
            adi_buf_init(&b);
            adi_buf_append_str(&b, "Unsupported media type \"");
            adi_buf_append(&b, ct.ptr, ct.len > 100 ? 100 : ct.len);
            adi_buf_append_str(&b, "\" in request.");
            respond_detail(r, 415, b.data, NULL);
            adi_buf_dispose(&b);
            return false;
        }
    }
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_json_to_msgpack(req->entity.base, len, mp, &err) != ADI_OK) {
        adi_buf_t b;
        adi_buf_init(&b);
        if (strncmp(err.message, "JSON parse error", 16) != 0)
            adi_buf_append_str(&b, "JSON parse error - ");
        adi_buf_append_str(&b, err.message[0] ? err.message : "invalid JSON");
        respond_detail(r, 400, b.data, NULL);
        adi_buf_dispose(&b);
        return false;
    }
    const char *type = gw_body_type(mp->data, mp->len);
    if (type != NULL) {
        char m[96];
        snprintf(m, sizeof(m), "Invalid data. Expected a dictionary, but got %s.", type);
        adi_buf_t b;
        adi_buf_init(&b);
        gw_render_non_field(&b, m, strlen(m));
        gw_respond(r, 400, b.data, b.len, NULL);
        adi_buf_dispose(&b);
        return false;
    }
    if (mp->len > gw->body_mp_max) {
        /* Within MAX_BODY_BYTES as JSON, but larger than an envelope may carry once converted. */
        respond_detail(r, 413, "Request body is too large.", NULL);
        return false;
    }
    return true;
}

/* Packs query and path parameters into `out`; answers and returns false on bad input. */
static bool read_params(gw_req_t *r, const gw_match_t *match, adi_buf_t *out)
{
    h2o_req_t *req = r->req;
    gw_params_t *p = adi_xmalloc(sizeof(*p));
    gw_params_init(p);
    adi_error_t err;
    adi_error_clear(&err);
    bool ok = true;
    if (req->query_at != SIZE_MAX) {
        adi_str_t q = {req->path.base + req->query_at + 1, req->path.len - req->query_at - 1};
        if (gw_params_add_query(p, q, &err) != ADI_OK) {
            respond_detail(r, 400, err.message, NULL);
            ok = false;
        }
    }
    for (size_t i = 0; ok && i < match->nparams; i++) {
        if (gw_params_add_path(p, match->params[i].name, match->params[i].value, &err) != ADI_OK) {
            respond_not_found(r);
            ok = false;
        }
    }
    if (ok)
        gw_params_pack(p, out);
    free(p);
    return ok;
}

static void proxy(gw_req_t *r, gw_method_t m, const gw_match_t *match)
{
    gw_thread_t *t = r->t;
    gw_t *gw = t->gw;
    const gw_route_t *rt = r->route;
    r->service = rt->service != NULL ? rt->service : rt->op->service;

    adi_str_t key = ADI_STR_NULL;
    if (is_mutating(m)) {
        ssize_t h = h2o_find_header_by_str(&r->req->headers, H2O_STRLIT("idempotency-key"), -1);
        if (h >= 0) {
            adi_error_t err;
            adi_error_clear(&err);
            adi_str_t hv = {r->req->headers.entries[h].value.base,
                            r->req->headers.entries[h].value.len};
            if (gw_idem_key_parse(hv, &key, &err) != ADI_OK) {
                respond_detail(r, 400, err.message, NULL);
                return;
            }
        }
    }

    adi_buf_t body, params;
    adi_buf_init(&body);
    adi_buf_init(&params);
    /* Bad input is answered first: it does not depend on the state of any service. */
    if (!read_body(r, &body) || !read_params(r, match, &params))
        goto out;
    adi_err admit = gw_bus_ready(t) ? gw_bus_admit(t, r->service) : ADI_UNAVAILABLE;
    if (admit != ADI_OK) {
        gw_respond_error(r, 503, "unavailable",
                         admit == ADI_BUSY ? GW_MSG_OVERLOADED : GW_MSG_UNAVAILABLE);
        goto out;
    }

    gw_call_t *c = &r->calls[0];
    r->ncalls = 1;
    c->owner = r;
    c->slot = 0;
    if (key.ptr != NULL) {
        memcpy(c->id, key.ptr, key.len);
        c->id_len = key.len;
    } else {
        adi_uuid_v4(c->id);
        c->id_len = 36;
    }
    c->id[c->id_len] = '\0';

    size_t dclass = gw->route_class[match->index];
    int64_t dl = gw->deadlines[dclass];
    r->deadline_ms = adi_now_ms() + dl;
    adi_envelope env;
    memset(&env, 0, sizeof(env));
    env.v = ADI_PROTO_VERSION;
    env.id = (adi_str_t){c->id, c->id_len};
    env.op = adi_str_c(rt->op->name);
    env.reply_to = adi_str_c(t->rep_stream);
    env.deadline_ms = r->deadline_ms;
    env.trace_id = adi_str_c(r->request_id);
    env.principal = NULL;
    env.params = (adi_str_t){params.data, params.len};
    env.body = (adi_str_t){body.data, body.len};
    adi_proto_encode(&adi_envelope__desc, &env, &r->env);

    switch (gw_pending_add(t, c)) {
    case ADI_OK:
        break;
    case ADI_CONFLICT:
        respond_detail(r, 409, GW_IDEM_MSG_BUSY, NULL);
        goto out;
    default:
        gw_respond_error(r, 503, "unavailable", GW_MSG_OVERLOADED);
        goto out;
    }
    gw_req_arm_timer(r, dclass, on_proxy_timeout);
    if (key.ptr != NULL)
        idem_start(r, key, (adi_str_t){r->req->entity.base, r->req->entity.len}, dl);
    else
        send_envelope(r);
out:
    adi_buf_dispose(&body);
    adi_buf_dispose(&params);
}

/* ---- entry ------------------------------------------------------------------------------ */

static void preflight(gw_req_t *r)
{
    if (!r->cors) {
        gw_respond(r, 204, "", 0, NULL);
        return;
    }
    static const char *const hdrs[] = {"access-control-allow-methods",
                                       "GET, POST, PUT, PATCH, DELETE, OPTIONS",
                                       "access-control-allow-headers",
                                       "Authorization, Content-Type, Idempotency-Key, X-Request-ID",
                                       "access-control-max-age",
                                       "86400",
                                       NULL};
    gw_respond(r, 204, "", 0, hdrs);
}

static void serve(gw_req_t *r)
{
    h2o_req_t *req = r->req;
    gw_thread_t *t = r->t;
    gw_method_t m = gw_method_parse(r->method);
    if (m == GW_M_OPTIONS && r->origin.ptr != NULL &&
        h2o_find_header_by_str(&req->headers, H2O_STRLIT("access-control-request-method"), -1) >=
            0) {
        snprintf(r->route_label, sizeof(r->route_label), "cors_preflight");
        preflight(r);
        return;
    }
    gw_match_t match;
    switch (gw_router_match(t->gw->router, m, r->path, &match)) {
    case GW_MATCH_NOT_FOUND:
        respond_not_found(r);
        return;
    case GW_MATCH_METHOD: {
        char allow[64];
        gw_allow_header(match.allowed, allow);
        const char *const hdrs[] = {"allow", allow, NULL};
        if (m == GW_M_OPTIONS) {
            gw_respond(r, 204, "", 0, hdrs);
            return;
        }
        adi_buf_t b;
        adi_buf_init(&b);
        gw_render_method_not_allowed(&b, r->method);
        gw_respond(r, 405, b.data, b.len, hdrs);
        adi_buf_dispose(&b);
        return;
    }
    case GW_MATCH_OK:
        break;
    }
    r->route = match.route;
    snprintf(r->route_label, sizeof(r->route_label), "%s %s", gw_method_name(match.route->method),
             match.route->pattern);
    if (match.route->auth != ADI_PUBLIC) {
        static const char *const www[] = {"www-authenticate", "Bearer realm=\"api\"", NULL};
        respond_detail(r, 401, GW_MSG_NO_CREDS, www);
        return;
    }
    if (match.route->local != GW_LOCAL_NONE) {
        gw_local_serve(r, match.index);
        return;
    }
    proxy(r, m, &match);
}

int gw_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    gw_thread_t *t = H2O_STRUCT_FROM_MEMBER(gw_thread_t, ctx, req->conn->ctx);
    gw_req_t *r = req_new(t, req);
    serve(r);
    return 0;
}
