/* SPDX-License-Identifier: MIT */
/*
 * The one generic h2o handler. Every request goes through the same steps:
 *   1. request id (X-Request-ID if sane, else a new UUID) and CORS origin check;
 *   2. CORS preflight, else route matching (404 / 405 with Allow / OPTIONS 204);
 *   3. a route that is not public needs a Bearer access token, verified here on the loop with the
 *      shared key set (signature, pinned algorithm, exp with leeway, token_type), not older than
 *      the user's token version learnt from ev:auth, and for ADI_ADMIN the ADMIN role (or a
 *      superuser): else 401 (simplejwt's bodies, WWW-Authenticate) or 403; the claims become the
 *      envelope's principal;
 *   4. a local route is served by local.c; a proxied route is admitted (Redis up, the service's
 *      stream exists and its backlog is under BACKLOG_LIMIT, the thread's pending table has room),
 *      its JSON body becomes msgpack, path and query parameters a msgpack map, both go into an
 *      envelope; a login route is first checked and counted against the login throttle (429 with
 *      Retry-After while locked, see gw_login.h); with an Idempotency-Key on a mutating method the
 *      key is locked in Redis first (or the stored response replayed, 409 or 422);
 *   5. the envelope is XADDed to the service's stream and the request waits for its reply (matched
 *      by correlation id in bus.c) or its deadline (504);
 *   6. gw_respond writes the response with the common headers, logs one line (gw.request, path
 *      without query string, no headers, no body), records the route's metrics, settles the login
 *      attempt (auth's 401 stays a failure, 200 resets the account, anything else is taken back)
 *      and the Idempotency-Key (stores the response for 24 h, or releases the key after a 5xx).
 * Only login routes make a Redis round trip before the envelope is sent.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <hiredis/hiredis.h>

#include "adi/log.h"
#include "adi/proto.h"
#include "gw.h"
#include "gw_parse.h"

#define IDEM_LOCK_SLACK_MS 5000 /* a lock outlives its request's deadline by this much */

_Static_assert(GW_SCOPE_MAX >= sizeof("anon/") + GW_CLIENT_IP_MAX,
               "an anonymous Idempotency-Key scope holds the whole client address");
#define LOG_PATH_MAX 512 /* bytes of the path in the log line */

static const char *const www_auth[] = {"www-authenticate", GW_WWW_AUTHENTICATE, NULL};

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
    adi_buf_dispose(&r->me_user);
    adi_buf_dispose(&r->me_tenant);
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
/*
 * Stores the request's outcome under its Idempotency-Key (or releases the lock when the outcome is
 * not storable). With `cb`, the EVAL's answer (or the connection's failure) is handed to `cb`, and
 * true means it will be; false means nothing was sent.
 */
static bool idem_settle_cb(gw_req_t *r, int status, adi_str_t body,
                           void (*cb)(gw_req_t *r, void *reply))
{
    if (!r->idem)
        return false;
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
    const char *const keys[1] = {r->idem_key};
    bool sent = gw_bus_eval(r->t, gw_idem_settle_lua, keys, 1, args, 3, cb, cb ? r : NULL);
    if (!sent)
        ADI_LOG(NULL, ADI_LOG_WARN, "gw.idem_settle_failed", "request_id=%s", r->request_id);
    adi_buf_dispose(&done);
    return sent;
}

static void idem_settle(gw_req_t *r, int status, adi_str_t body)
{
    (void)idem_settle_cb(r, status, body, NULL);
}

/* Counts a login outcome (adi_gateway_login_attempts_total). */
static void count_login(gw_req_t *r, const char *outcome)
{
    char labels[48];
    snprintf(labels, sizeof(labels), "outcome=\"%s\"", outcome);
    adi_metrics_count(r->t->gw->metrics, "adi_gateway_login_attempts_total", labels, 1);
}

/* Settles a counted login attempt by its outcome (no reference: nothing to call back). */
static void login_settle(gw_req_t *r)
{
    if (!r->login_charged)
        return;
    r->login_charged = false;
    gw_login_outcome_t o = gw_login_outcome(r->login_status, r->login_from_auth);
    if (o == GW_LOGIN_FAILED) {
        count_login(r, "failed"); /* the check already counted it */
        return;
    }
    count_login(r, o == GW_LOGIN_SUCCEEDED ? "succeeded" : "void");
    const gw_login_check_t *c = &r->login_check;
    adi_str_t args[6] = {adi_str_c(r->login_account ? "1" : "0"),
                         adi_str_c(o == GW_LOGIN_SUCCEEDED ? "ok" : "void"),
                         adi_str_c(c->prev[0]),
                         adi_str_c(c->next[0]),
                         adi_str_c(c->prev[1]),
                         adi_str_c(c->next[1])};
    const char *const keys[2] = {r->login_keys[0], r->login_keys[1]};
    if (!gw_bus_eval(r->t, gw_login_settle_lua, keys, 2, args, 6, NULL, NULL))
        ADI_LOG(NULL, ADI_LOG_WARN, "gw.login_settle_failed", "request_id=%s", r->request_id);
}

static void log_request(gw_req_t *r, int status)
{
    adi_logctx_t lc = {
        r->request_id, r->authed && r->claims.tenant_id[0] ? r->claims.tenant_id : NULL,
        r->route && r->route->op ? r->route->op->name : NULL, r->start_ms, r->request_id};
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
        login_settle(r);
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
    adi_buf_init(&r->me_user);
    adi_buf_init(&r->me_tenant);
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

/* Sends the response now (the request is live). */
static void send_response(gw_req_t *r, int status, const char *body, size_t len,
                          const char *const *extra)
{
    h2o_req_t *req = r->req;
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

/* The settle EVAL of a held response was answered (or its connection failed): send it now. */
static void on_idem_settled(gw_req_t *r, void *reply)
{
    if (reply == NULL)
        ADI_LOG(NULL, ADI_LOG_WARN, "gw.idem_settle_failed", "request_id=%s", r->request_id);
    if (r->req == NULL) {
        log_request(r, 499); /* the client left while the outcome was being stored */
        return;
    }
    send_response(r, r->held_status, r->held_body.base, r->held_body.len,
                  (const char *const *)r->held_extra);
}

void gw_respond(gw_req_t *r, int status, const char *body, size_t len, const char *const *extra)
{
    if (r->responded)
        return;
    r->responded = true;
    gw_req_disarm_timer(r);
    gw_req_drop_calls(r);
    login_settle(r);
    h2o_req_t *req = r->req;
    if (ADI_NEVER(req == NULL))
        return;
    if (r->idem) {
        /* Answer only once the outcome is stored under the Idempotency-Key, so that a retry the
           client sends right after this answer is replayed rather than refused as in progress.
           The response is copied into the request's pool meanwhile. */
        r->held_status = status;
        r->held_body = h2o_strdup(&req->pool, body != NULL ? body : "", body != NULL ? len : 0);
        size_t n = 0;
        while (extra != NULL && extra[n] != NULL && extra[n + 1] != NULL)
            n += 2;
        r->held_extra = NULL;
        if (n > 0) {
            r->held_extra = h2o_mem_alloc_pool(&req->pool, (n + 1) * sizeof(char *));
            for (size_t i = 0; i < n; i++)
                r->held_extra[i] = h2o_strdup(&req->pool, extra[i], SIZE_MAX).base;
            r->held_extra[n] = NULL;
        }
        if (idem_settle_cb(r, status, (adi_str_t){body, len}, on_idem_settled))
            return;
    }
    send_response(r, status, body, len, extra);
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
    if (r->route != NULL && r->route->local != GW_LOCAL_NONE) {
        gw_local_reply(c, rep);
        return;
    }
    if (r->responded || r->req == NULL)
        return;
    int status = (int)rep->status;
    if (r->login) {
        r->login_from_auth = true;
        r->login_status = status;
    }
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
            adi_logctx_t lc = {r->request_id, NULL, r->route ? r->route->op->name : NULL, 0,
                               r->request_id};
            ADI_LOG(&lc, ADI_LOG_ERROR, "gw.bad_reply_body", "%s", err.message);
            gw_respond_error(r, 500, "server_error", GW_MSG_SERVER_ERROR);
        }
    } else {
        /* simplejwt's refresh view answers every refusal with code token_not_valid. */
        gw_respond_reply_error(
            r, rep, r->route != NULL && r->route->op == &adi_op_auth_refresh ? ADI_JWT_CODE : NULL);
    }
    adi_buf_dispose(&b);
}

void gw_respond_reply_error(gw_req_t *r, const adi_reply *rep, const char *code_401)
{
    adi_buf_t b;
    adi_buf_init(&b);
    int status = (int)rep->status;
    int st = gw_render_reply_error_code(status >= 400 ? status : 500, rep->error, code_401, &b);
    static const char *const retry[] = {"retry-after", "1", NULL};
    gw_respond(r, st, b.data, b.len, st == 503 ? retry : st == 401 ? www_auth : NULL);
    adi_buf_dispose(&b);
}

void gw_on_send_failed(gw_call_t *c, adi_err code)
{
    gw_req_t *r = c->owner;
    if (r->route != NULL && r->route->local != GW_LOCAL_NONE) {
        gw_local_reply(c, NULL);
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

static void idem_start(gw_req_t *r, adi_str_t key, adi_str_t body, int64_t deadline_ms);

/* The last step before the envelope leaves: the Idempotency-Key lock when there is a key. */
static void dispatch(gw_req_t *r)
{
    if (r->idem_hdr.ptr != NULL)
        idem_start(r, r->idem_hdr, (adi_str_t){r->req->entity.base, r->req->entity.len},
                   r->deadline_len_ms);
    else
        send_envelope(r);
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
    /* Scoped to the caller: user and tenant, or for an anonymous caller of a public route the
       client address the envelope carries (as the services scope it). */
    char scope[GW_SCOPE_MAX];
    gw_principal_scope(r->authed ? &r->claims : NULL, r->client_ip, scope);
    gw_idem_redis_key(key, adi_str_c(scope), r->idem_key);
    gw_idem_fingerprint(r->method, (adi_str_t){r->req->path.base, r->req->path.len}, body,
                        r->idem_fp);
    char token[37];
    adi_uuid_v4(token);
    gw_idem_running_value(r->idem_fp, token, &r->idem_running);
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%" PRId64, deadline_ms + IDEM_LOCK_SLACK_MS);
    adi_str_t args[2] = {{r->idem_running.data, r->idem_running.len}, adi_str_c(ttl)};
    const char *const keys[1] = {r->idem_key};
    if (!gw_bus_eval(r->t, gw_idem_acquire_lua, keys, 1, args, 2, on_idem_acquired, r))
        gw_respond_error(r, 503, "unavailable", GW_MSG_UNAVAILABLE);
}

/* ---- proxied routes --------------------------------------------------------------------- */

/* The client's address as text, from the connection (h2o caches it per socket). */
static void peer_address(gw_req_t *r)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t sl = r->req->conn->callbacks->get_peername != NULL
                       ? r->req->conn->callbacks->get_peername(r->req->conn, (struct sockaddr *)&ss)
                       : 0;
    r->client_ip[0] = '\0';
    if (sl == 0)
        return;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, r->client_ip,
                  sizeof(r->client_ip));
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, r->client_ip,
                  sizeof(r->client_ip));
}

/* The login throttle answered (reply NULL: Redis failed). */
static void on_login_checked(gw_req_t *r, void *reply)
{
    redisReply *rep = reply;
    long long vals[5];
    size_t n = 0;
    bool shaped = rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements <= 5;
    for (size_t i = 0; shaped && i < rep->elements; i++) {
        if (rep->element[i]->type != REDIS_REPLY_INTEGER)
            shaped = false;
        else
            vals[n++] = rep->element[i]->integer;
    }
    gw_login_check_t chk;
    if (!shaped || !gw_login_check_parse(vals, n, &chk)) {
        if (rep != NULL && rep->type == REDIS_REPLY_ERROR)
            ADI_LOG(NULL, ADI_LOG_ERROR, "gw.login_check_failed", "request_id=%s error=%.*s",
                    r->request_id, (int)(rep->len > 200 ? 200 : rep->len), rep->str);
        if (!r->responded)
            gw_respond_error(r, 503, "unavailable", GW_MSG_UNAVAILABLE);
        return;
    }
    if (chk.allowed) {
        r->login_check = chk;
        r->login_charged = true;
    }
    if (r->responded) {
        login_settle(r); /* timed out or gone meanwhile: the attempt is taken back */
        return;
    }
    if (!chk.allowed) {
        count_login(r, "locked");
        adi_buf_t b;
        adi_buf_init(&b);
        gw_login_render_locked(chk.retry_after, &b);
        char secs[24];
        snprintf(secs, sizeof(secs), "%" PRId64, chk.retry_after);
        const char *const hdrs[] = {"retry-after", secs, NULL};
        adi_logctx_t lc = {r->request_id, NULL, r->route->op->name, 0, r->request_id};
        ADI_LOG(&lc, ADI_LOG_INFO, "gw.login_locked", "retry_after=%" PRId64, chk.retry_after);
        gw_respond(r, 429, b.data, b.len, hdrs);
        adi_buf_dispose(&b);
        return;
    }
    dispatch(r);
}

/* Checks and counts a login attempt (async); continues in on_login_checked. */
static void login_start(gw_req_t *r, const adi_buf_t *body)
{
    gw_t *gw = r->t->gw;
    adi_str_t user;
    r->login_account = gw_body_string_member(body->data, body->len, "username", &user) &&
                       gw_login_account_key(user, r->login_keys[0]);
    if (!r->login_account)
        snprintf(r->login_keys[0], sizeof(r->login_keys[0]), "gw:{login}:a:-"); /* unused */
    gw_login_address_key(r->client_ip, r->login_keys[1]);
    char maxf[24], maxa[24], lock[24], cap[24], window[24];
    snprintf(maxf, sizeof(maxf), "%" PRId64, gw->cfg.login_max_fail);
    snprintf(maxa, sizeof(maxa), "%" PRId64,
             gw->cfg.login_addr_max > 0 ? gw->cfg.login_addr_max : gw->cfg.login_max_fail);
    snprintf(lock, sizeof(lock), "%" PRId64, gw->cfg.login_lockout_s);
    snprintf(cap, sizeof(cap), "%d", GW_LOGIN_LOCK_CAP_S);
    snprintf(window, sizeof(window), "%d", GW_LOGIN_WINDOW_S);
    adi_str_t args[6] = {adi_str_c(r->login_account ? "1" : "0"),
                         adi_str_c(maxf),
                         adi_str_c(maxa),
                         adi_str_c(lock),
                         adi_str_c(cap),
                         adi_str_c(window)};
    const char *const keys[2] = {r->login_keys[0], r->login_keys[1]};
    if (!gw_bus_eval(r->t, gw_login_check_lua, keys, 2, args, 6, on_login_checked, r))
        gw_respond_error(r, 503, "unavailable", GW_MSG_UNAVAILABLE);
}

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
    r->login = rt->op == &adi_op_auth_login || rt->op == &adi_op_auth_token;
    peer_address(r);

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
        /* Operations whose reply carries secrets (tokens) are not replayed: a kept response
           would be a kept secret. The (checked) key is ignored, so a retry runs again. */
        if (rt->op->flags & ADI_OP_SECRET)
            key = ADI_STR_NULL;
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
    r->deadline_len_ms = dl;
    adi_principal principal;
    gw_principal_roles_t proles;
    if (r->authed)
        gw_principal_from_claims(&r->claims, &principal, &proles);
    adi_envelope env;
    memset(&env, 0, sizeof(env));
    env.v = ADI_PROTO_VERSION;
    env.id = (adi_str_t){c->id, c->id_len};
    env.op = adi_str_c(rt->op->name);
    env.reply_to = adi_str_c(t->rep_stream);
    env.deadline_ms = r->deadline_ms;
    env.trace_id = adi_str_c(r->request_id);
    env.client_ip = adi_str_c(r->client_ip);
    env.principal = r->authed ? &principal : NULL;
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
    r->idem_hdr = key;
    if (r->login)
        login_start(r, &body);
    else
        dispatch(r);
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

/* Counts a refused request (adi_gateway_auth_refused_total). */
static void count_refusal(gw_req_t *r, const char *reason)
{
    char labels[64];
    snprintf(labels, sizeof(labels), "reason=\"%s\"", reason);
    adi_metrics_count(r->t->gw->metrics, "adi_gateway_auth_refused_total", labels, 1);
}

/*
 * Checks the Bearer token of a request to a non-public route: answers 401 or 403 and returns
 * false when refused; else the claims are in r->claims. Runs on the loop, no I/O.
 */
static bool authenticate(gw_req_t *r)
{
    h2o_req_t *req = r->req;
    ssize_t h = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    adi_str_t hv =
        h >= 0 ? (adi_str_t){req->headers.entries[h].value.base, req->headers.entries[h].value.len}
               : ADI_STR_NULL;
    adi_str_t token;
    switch (gw_bearer_parse(hv, &token)) {
    case GW_BEARER_NONE:
        count_refusal(r, "no_credentials");
        respond_detail(r, 401, GW_MSG_NO_CREDS, www_auth);
        return false;
    case GW_BEARER_MALFORMED: {
        count_refusal(r, "bad_header");
        adi_buf_t b;
        adi_buf_init(&b);
        gw_render_bad_auth_header(&b);
        gw_respond(r, 401, b.data, b.len, www_auth);
        adi_buf_dispose(&b);
        return false;
    }
    case GW_BEARER_TOKEN:
        break;
    }
    adi_jwt_verdict_t why;
    adi_error_t err;
    adi_error_clear(&err);
    const char *refusal = NULL;
    adi_jwt_reason reason = ADI_JWT_R_OK;
    int64_t now_s = adi_now_ms() / 1000;
    why.reason = ADI_JWT_R_OK;
    why.claim = NULL;
    if (gw_tcache_get(&r->t->tokens, token, now_s, &r->claims)) {
        /* verified before and not expired: no signature check, no allocation */
    } else if (adi_jwt_verify(r->t->gw->jwt, token, ADI_JWT_ACCESS, now_s, &r->claims, &why,
                              &err) != ADI_OK) {
        reason = why.reason;
        refusal = adi_jwt_reason_name(reason);
    } else {
        gw_tcache_put(&r->t->tokens, token, &r->claims);
    }
    if (refusal == NULL && !gw_vtable_allows(&r->t->versions, adi_str_c(r->claims.user_id),
                                             r->claims.ver, r->claims.iat)) {
        /* Issued before the user's roles changed or the user was deactivated. */
        reason = ADI_JWT_R_BAD_CLAIM;
        refusal = "revoked";
    }
    if (refusal != NULL) {
        adi_logctx_t lc = {r->request_id, NULL, r->route->op ? r->route->op->name : NULL, 0,
                           r->request_id};
        ADI_LOG(&lc, ADI_LOG_INFO, "gw.token_refused", "reason=%s claim=%s", refusal,
                why.reason != ADI_JWT_R_OK && why.claim != NULL ? why.claim : "-");
        count_refusal(r, refusal);
        adi_buf_t b;
        adi_buf_init(&b);
        adi_jwt_error_body(ADI_JWT_ACCESS, reason, &b);
        gw_respond(r, 401, b.data, b.len, www_auth);
        adi_buf_dispose(&b);
        return false;
    }
    r->authed = true;
    if (gw_access_decide(r->route->auth, &r->claims) != GW_ACCESS_OK) {
        count_refusal(r, "forbidden");
        respond_detail(r, 403, GW_MSG_NOT_ADMIN, NULL);
        return false;
    }
    return true;
}

/* Bytes of the request head as the client sent it, give or take the separators. */
static size_t head_bytes(const h2o_req_t *req)
{
    size_t n = req->method.len + req->path.len;
    for (size_t i = 0; i < req->headers.size; i++)
        n += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    return n;
}

static void serve(gw_req_t *r)
{
    h2o_req_t *req = r->req;
    gw_thread_t *t = r->t;
    /*
     * A hostile head (huge headers or target) that h2o still accepted gets a clear 431 before
     * anything parses, copies, echoes (the 404's "path") or logs it. Security check, issue 8.
     */
    if (head_bytes(req) > GW_HEAD_MAX) {
        snprintf(r->route_label, sizeof(r->route_label), "oversized_head");
        respond_detail(r, 431, "Request header fields too large.", NULL);
        return;
    }
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
    if (match.route->auth != ADI_PUBLIC && !authenticate(r))
        return;
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
