/* SPDX-License-Identifier: MIT */
/*
 * The gateway's side of the bus, one instance per thread, all on the thread's libuv loop through
 * hiredis's async API and its libuv adapter:
 *   - three connections: `cmd` for XADD, EVAL, XINFO and XDEL, `rd` that keeps one
 *     XREAD BLOCK outstanding on the thread's reply stream gw:{<instance>-<n>}:rep, and `ev` that
 *     follows ev:auth (its own connection: the two streams need not share a Cluster slot);
 *   - ev:auth is read from ACCESS_TOKEN_LIFETIME_S (+ leeway) back at start, then followed; after
 *     every (re)connect it is read without blocking until caught up, and the thread counts as
 *     ready only then, so no request is served with a token revoked while the thread looked away.
 *     Each event raises the user's token version in the thread's own table (no locks);
 *   - the host name is resolved with uv_getaddrinfo (off the loop) before every connect, and a
 *     lost connection reconnects by itself with exponential backoff (100 ms doubling to 2 s);
 *   - pending calls live in a hash table keyed by correlation id; replies are matched there and
 *     the entries read are XDELed so the reply stream stays short;
 *   - every 250 ms a script (XINFO GROUPS, see backlog_lua) tells each service's backlog so that
 *     requests are shed with 503 without a Redis round trip of their own.
 * Nothing here blocks: every command completes in a callback.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libuv.h>

#include "adi/log.h"
#include "adi/proto.h"
#include "gw.h"

#define BACKOFF_MIN_MS   100
#define BACKOFF_MAX_MS   2000
#define POLL_MS          250
#define XREAD_COUNT      "256"
#define XREAD_BLOCK_MS   "5000"
#define XREAD_RETRY_MS   1000
#define EV_COUNT         512     /* ev:auth entries per XREAD */
#define REP_STREAM_TTL   "60000" /* a dead gateway's reply stream expires a minute after it stops */
#define CONNECT_LIMIT_MS 1000    /* a connect (and its AUTH/SELECT/PING) must finish in this */
#define ANSWER_LIMIT_MS  3000    /* a connection whose commands go unanswered this long is dead */

const char *const gw_service_names[ADI_SERVICE_COUNT] = ADI_SERVICE_NAMES;

static void conn_open(gw_conn_t *c);
static void xread_issue(gw_thread_t *t);
static void ev_issue(gw_thread_t *t);

int gw_service_index(const char *service)
{
    for (int i = 0; i < ADI_SERVICE_COUNT; i++)
        if (strcmp(gw_service_names[i], service) == 0)
            return i;
    return -1;
}

/* ---- pending table ---------------------------------------------------------------------- */

static size_t hash_id(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

static gw_call_t *pending_find(gw_thread_t *t, const char *id, size_t n)
{
    for (gw_call_t *c = t->buckets[hash_id(id, n) & (t->nbuckets - 1)]; c; c = c->next)
        if (c->id_len == n && memcmp(c->id, id, n) == 0)
            return c;
    return NULL;
}

adi_err gw_pending_add(gw_thread_t *t, gw_call_t *c)
{
    if (t->buckets == NULL) {
        size_t nb = 64;
        while (nb < (size_t)t->gw->cfg.max_pending && nb < ((size_t)1 << 20))
            nb <<= 1;
        t->buckets = adi_xcalloc(nb, sizeof(*t->buckets));
        t->nbuckets = nb;
    }
    if (pending_find(t, c->id, c->id_len) != NULL)
        return ADI_CONFLICT;
    if (t->npending >= (size_t)t->gw->cfg.max_pending)
        return ADI_BUSY;
    size_t b = hash_id(c->id, c->id_len) & (t->nbuckets - 1);
    c->next = t->buckets[b];
    t->buckets[b] = c;
    c->linked = true;
    t->npending++;
    return ADI_OK;
}

void gw_pending_remove(gw_thread_t *t, gw_call_t *c)
{
    if (!c->linked)
        return;
    gw_call_t **pp = &t->buckets[hash_id(c->id, c->id_len) & (t->nbuckets - 1)];
    while (*pp != NULL && *pp != c)
        pp = &(*pp)->next;
    if (ADI_ALWAYS(*pp == c))
        *pp = c->next;
    c->next = NULL;
    c->linked = false;
    t->npending--;
}

/* ---- connections ------------------------------------------------------------------------ */

static void update_ready(gw_thread_t *t)
{
    atomic_store(&t->ready,
                 t->cmd.up && t->rd.up && t->ev.up && t->ev_synced && t->state == GW_RUNNING);
}

bool gw_bus_ready(const gw_thread_t *t)
{
    return t->cmd.up && t->rd.up && t->ev.up && t->ev_synced && t->state != GW_CLOSING;
}

static const char *conn_name(const gw_conn_t *c)
{
    switch (c->kind) {
    case GW_CONN_REPLY:
        return "reply";
    case GW_CONN_EVENTS:
        return "events";
    case GW_CONN_CMD:
        break;
    }
    return "command";
}

/* Forgets what was in flight on a connection that is gone. */
static void conn_lost(gw_conn_t *c)
{
    c->ac = NULL;
    c->up = false;
    switch (c->kind) {
    case GW_CONN_REPLY:
        c->t->xread_inflight = false;
        break;
    case GW_CONN_EVENTS:
        c->t->ev_inflight = false;
        c->t->ev_synced = false;
        break;
    case GW_CONN_CMD:
        c->t->poll_outstanding = 0;
        break;
    }
    update_ready(c->t);
}

static void on_retry(uv_timer_t *timer)
{
    gw_conn_t *c = timer->data;
    c->retry_pending = false;
    conn_open(c);
}

static void schedule_retry(gw_conn_t *c)
{
    if (c->t->state == GW_CLOSING || c->retry_pending)
        return;
    c->retry_pending = true;
    uv_timer_start(&c->retry, on_retry, (uint64_t)c->backoff_ms, 0);
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

/* Counts a lost connection or a failed connect attempt (adi_gateway_redis_failures_total). */
static void count_failure(gw_conn_t *c)
{
    char labels[64];
    snprintf(labels, sizeof(labels), "connection=\"%s\",thread=\"%zu\"", conn_name(c), c->t->index);
    adi_metrics_count(c->t->gw->metrics, "adi_gateway_redis_failures_total", labels, 1);
}

static void log_down(gw_conn_t *c, const char *why)
{
    if (c->logged_down)
        return;
    c->logged_down = true;
    ADI_LOG(NULL, ADI_LOG_WARN, "gw.redis_down", "thread=%zu connection=%s error=%s", c->t->index,
            conn_name(c), why ? why : "unknown");
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    gw_conn_t *c = ac->data;
    (void)status;
    if (c == NULL || c->ac != ac)
        return; /* freed on purpose by gw_bus_stop */
    conn_lost(c);
    if (c->t->state == GW_CLOSING)
        return; /* our own disconnect at shutdown */
    log_down(c, ac->errstr[0] ? ac->errstr : "connection closed");
    count_failure(c);
    schedule_retry(c);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    gw_conn_t *c = ac->data;
    if (status == REDIS_OK || c == NULL || c->ac != ac)
        return;
    /* hiredis frees the context after this callback; the disconnect callback will not run. */
    conn_lost(c);
    log_down(c, ac->errstr);
    count_failure(c);
    schedule_retry(c);
}

static void poll_backlog(gw_thread_t *t);

/* The reply to the PING that follows AUTH/SELECT: the connection is usable. */
static void on_ready(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    gw_conn_t *c = ac->data;
    redisReply *r = reply;
    if (r == NULL || c == NULL || c->ac != ac)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        /* Wrong password, ACL, ...: logged once per outage, retried with backoff. */
        char why[160];
        snprintf(why, sizeof(why), "setup failed: %.*s", (int)(r->len > 120 ? 120 : r->len),
                 r->str);
        log_down(c, why);
        redisAsyncDisconnect(ac);
        return;
    }
    c->up = true;
    c->backoff_ms = BACKOFF_MIN_MS;
    if (c->logged_down)
        ADI_LOG(NULL, ADI_LOG_INFO, "gw.redis_up", "thread=%zu connection=%s", c->t->index,
                conn_name(c));
    c->logged_down = false;
    switch (c->kind) {
    case GW_CONN_REPLY:
        update_ready(c->t);
        xread_issue(c->t);
        break;
    case GW_CONN_EVENTS:
        /* Not ready until ev:auth has been read up to its end on this connection. */
        c->t->ev_synced = false;
        update_ready(c->t);
        ev_issue(c->t);
        break;
    case GW_CONN_CMD:
        update_ready(c->t);
        c->t->poll_outstanding = 0;
        poll_backlog(c->t);
        break;
    }
}

static void connect_ip(gw_conn_t *c, const char *ip)
{
    gw_thread_t *t = c->t;
    const gw_redis_url_t *u = &t->gw->redis;
    redisAsyncContext *ac = redisAsyncConnect(ip, u->port);
    if (ac == NULL) {
        log_down(c, "out of memory");
        schedule_retry(c);
        return;
    }
    if (ac->err) {
        log_down(c, ac->errstr);
        count_failure(c);
        redisAsyncFree(ac);
        schedule_retry(c);
        return;
    }
    ac->data = c;
    c->started_ms = adi_mono_ms();
    if (redisLibuvAttach(ac, &t->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        schedule_retry(c);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->ac = ac;
    /* Commands queue until the connection completes; PING's reply says setup is done. */
    if (u->password[0] && u->user[0])
        redisAsyncCommand(ac, NULL, NULL, "AUTH %s %s", u->user, u->password);
    else if (u->password[0])
        redisAsyncCommand(ac, NULL, NULL, "AUTH %s", u->password);
    if (u->db != 0)
        redisAsyncCommand(ac, NULL, NULL, "SELECT %d", u->db);
    redisAsyncCommand(ac, on_ready, NULL, "PING");
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    gw_conn_t *c = req->data;
    c->resolving = false;
    if (status == UV_ECANCELED || c->t->state == GW_CLOSING) {
        uv_freeaddrinfo(res);
        return;
    }
    char ip[INET6_ADDRSTRLEN] = "";
    if (status == 0 && res != NULL) {
        if (res->ai_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr, ip,
                      sizeof(ip));
        else if (res->ai_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)res->ai_addr)->sin6_addr, ip,
                      sizeof(ip));
    }
    uv_freeaddrinfo(res);
    if (ip[0] == '\0') {
        log_down(c, status ? uv_strerror(status) : "no address");
        schedule_retry(c);
        return;
    }
    connect_ip(c, ip);
}

static void conn_open(gw_conn_t *c)
{
    gw_thread_t *t = c->t;
    if (t->state == GW_CLOSING || c->ac != NULL || c->resolving)
        return;
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    c->resolve.data = c;
    c->resolving = true;
    int rc = uv_getaddrinfo(&t->loop, &c->resolve, on_resolved, t->gw->redis.host, NULL, &hints);
    if (rc != 0) {
        c->resolving = false;
        log_down(c, uv_strerror(rc));
        schedule_retry(c);
    }
}

/* ---- reply stream ----------------------------------------------------------------------- */

static void dispatch_entry(gw_thread_t *t, const redisReply *fields)
{
    if (fields == NULL || fields->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i];
        const redisReply *v = fields->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            k->len != strlen(ADI_STREAM_FIELD) || memcmp(k->str, ADI_STREAM_FIELD, k->len) != 0)
            continue;
        adi_pool_t pool;
        adi_pool_init(&pool);
        adi_reply rep;
        memset(&rep, 0, sizeof(rep));
        adi_error_t err;
        adi_error_clear(&err);
        if (adi_proto_decode(&adi_reply__desc, v->str, v->len, &pool, &rep, &err) == ADI_OK &&
            adi_proto_check_required(&adi_reply__desc, &rep, &err) == ADI_OK) {
            gw_call_t *c = pending_find(t, rep.id.ptr, rep.id.len);
            if (c != NULL) {
                gw_pending_remove(t, c);
                gw_on_reply(c, &rep);
            }
        } else {
            ADI_LOG(NULL, ADI_LOG_WARN, "gw.bad_reply", "stream=%s error=%s", t->rep_stream,
                    err.message);
        }
        adi_pool_dispose(&pool);
        return;
    }
}

static void on_xread(redisAsyncContext *ac, void *reply, void *priv);

static void on_xread_retry(uv_timer_t *timer)
{
    xread_issue(timer->data);
}

static void xread_issue(gw_thread_t *t)
{
    if (t->xread_inflight || !t->rd.up || t->rd.ac == NULL || t->state == GW_CLOSING)
        return;
    const char *argv[] = {"XREAD",        "COUNT",   XREAD_COUNT,   "BLOCK",
                          XREAD_BLOCK_MS, "STREAMS", t->rep_stream, t->last_id};
    size_t lens[8];
    for (size_t i = 0; i < 8; i++)
        lens[i] = strlen(argv[i]);
    if (redisAsyncCommandArgv(t->rd.ac, on_xread, NULL, 8, argv, lens) == REDIS_OK) {
        t->xread_inflight = true;
        t->xread_sent_ms = adi_mono_ms();
    }
}

static void on_xread(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    gw_conn_t *c = ac->data;
    redisReply *r = reply;
    if (c == NULL)
        return;
    gw_thread_t *t = c->t;
    t->xread_inflight = false;
    if (r == NULL || c->ac != ac)
        return; /* connection gone: the disconnect callback reconnects */
    if (r->type == REDIS_REPLY_ERROR) {
        ADI_LOG(NULL, ADI_LOG_ERROR, "gw.xread_failed", "stream=%s error=%.*s", t->rep_stream,
                (int)(r->len > 200 ? 200 : r->len), r->str);
        uv_timer_start(&t->xread_retry, on_xread_retry, XREAD_RETRY_MS, 0);
        return;
    }
    if (r->type == REDIS_REPLY_ARRAY) {
        const char *del[2 + 256];
        size_t dlen[2 + 256];
        size_t nd = 2;
        del[0] = "XDEL";
        del[1] = t->rep_stream;
        for (size_t s = 0; s < r->elements; s++) {
            const redisReply *st = r->element[s];
            if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 ||
                st->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            const redisReply *entries = st->element[1];
            for (size_t e = 0; e < entries->elements; e++) {
                const redisReply *en = entries->element[e];
                if (en->type != REDIS_REPLY_ARRAY || en->elements != 2 ||
                    en->element[0]->type != REDIS_REPLY_STRING)
                    continue;
                const redisReply *id = en->element[0];
                if (id->len < sizeof(t->last_id)) {
                    memcpy(t->last_id, id->str, id->len);
                    t->last_id[id->len] = '\0';
                    if (nd < sizeof(del) / sizeof(del[0])) {
                        del[nd] = id->str;
                        dlen[nd] = id->len;
                        nd++;
                    }
                }
                dispatch_entry(t, en->element[1]);
            }
        }
        if (nd > 2 && t->cmd.up && t->cmd.ac != NULL) {
            dlen[0] = 4;
            dlen[1] = strlen(t->rep_stream);
            redisAsyncCommandArgv(t->cmd.ac, NULL, NULL, (int)nd, del, dlen);
        }
    }
    xread_issue(t);
}

/* ---- ev:auth ---------------------------------------------------------------------------- */

/* Counts ev:auth entries applied by a thread (adi_gateway_auth_events_total{thread}). */
static void count_event(gw_thread_t *t, double n)
{
    char labels[32];
    snprintf(labels, sizeof(labels), "thread=\"%zu\"", t->index);
    adi_metrics_count(t->gw->metrics, "adi_gateway_auth_events_total", labels, n);
}

/* Applies one ev:auth entry: the user's token version rises to the event's. */
static void apply_event(gw_thread_t *t, const redisReply *id, const redisReply *fields)
{
    if (fields == NULL || fields->type != REDIS_REPLY_ARRAY)
        return;
    int64_t event_ms = 0;
    gw_stream_id_ms((adi_str_t){id->str, id->len}, &event_ms);
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i];
        const redisReply *v = fields->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            k->len != strlen(ADI_STREAM_FIELD) || memcmp(k->str, ADI_STREAM_FIELD, k->len) != 0)
            continue;
        adi_pool_t pool;
        adi_pool_init(&pool);
        auth_event ev;
        memset(&ev, 0, sizeof(ev));
        adi_error_t err;
        adi_error_clear(&err);
        if (adi_proto_decode(&auth_event__desc, v->str, v->len, &pool, &ev, &err) == ADI_OK &&
            adi_proto_check_required(&auth_event__desc, &ev, &err) == ADI_OK &&
            gw_vtable_note(&t->versions, ev.user_id, ev.version, event_ms, adi_now_ms()) ==
                ADI_OK) {
            count_event(t, 1);
            if (t->index == 0)
                ADI_LOG(NULL, ADI_LOG_INFO, "gw.token_version",
                        "user_id=%.*s version=%" PRId64 " kind=%.*s entry=%.*s",
                        (int)ev.user_id.len, ev.user_id.ptr, ev.version, (int)ev.kind.len,
                        ev.kind.ptr ? ev.kind.ptr : "", (int)id->len, id->str);
        } else if (t->index == 0) {
            ADI_LOG(NULL, ADI_LOG_WARN, "gw.bad_auth_event", "entry=%.*s error=%s", (int)id->len,
                    id->str, err.message[0] ? err.message : "invalid user id or version");
        }
        adi_pool_dispose(&pool);
        return;
    }
}

static void on_ev_xread(redisAsyncContext *ac, void *reply, void *priv);

static void on_ev_retry(uv_timer_t *timer)
{
    ev_issue(timer->data);
}

/* Reads ev:auth after ev_last_id: without blocking until caught up, then blocking. */
static void ev_issue(gw_thread_t *t)
{
    if (t->ev_inflight || !t->ev.up || t->ev.ac == NULL || t->state == GW_CLOSING)
        return;
    char count[16];
    snprintf(count, sizeof(count), "%d", EV_COUNT);
    const char *argv[8];
    size_t n = 0;
    argv[n++] = "XREAD";
    argv[n++] = "COUNT";
    argv[n++] = count;
    if (t->ev_synced) {
        argv[n++] = "BLOCK";
        argv[n++] = XREAD_BLOCK_MS;
    }
    argv[n++] = "STREAMS";
    argv[n++] = ADI_KEY_EV_AUTH;
    argv[n++] = t->ev_last_id;
    size_t lens[8];
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    if (redisAsyncCommandArgv(t->ev.ac, on_ev_xread, NULL, (int)n, argv, lens) == REDIS_OK) {
        t->ev_inflight = true;
        t->ev_sent_ms = adi_mono_ms();
    }
}

static void on_ev_xread(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    gw_conn_t *c = ac->data;
    redisReply *r = reply;
    if (c == NULL)
        return;
    gw_thread_t *t = c->t;
    t->ev_inflight = false;
    if (r == NULL || c->ac != ac)
        return; /* connection gone: the disconnect callback reconnects */
    if (r->type == REDIS_REPLY_ERROR) {
        ADI_LOG(NULL, ADI_LOG_ERROR, "gw.xread_failed", "stream=%s error=%.*s", ADI_KEY_EV_AUTH,
                (int)(r->len > 200 ? 200 : r->len), r->str);
        uv_timer_start(&t->ev_retry, on_ev_retry, XREAD_RETRY_MS, 0);
        return;
    }
    size_t seen = 0;
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t s = 0; s < r->elements; s++) {
            const redisReply *st = r->element[s];
            if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 ||
                st->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            const redisReply *entries = st->element[1];
            for (size_t e = 0; e < entries->elements; e++) {
                const redisReply *en = entries->element[e];
                if (en->type != REDIS_REPLY_ARRAY || en->elements != 2 ||
                    en->element[0]->type != REDIS_REPLY_STRING)
                    continue;
                const redisReply *id = en->element[0];
                seen++;
                if (id->len < sizeof(t->ev_last_id)) {
                    memcpy(t->ev_last_id, id->str, id->len);
                    t->ev_last_id[id->len] = '\0';
                }
                apply_event(t, id, en->element[1]);
            }
        }
    }
    if (!t->ev_synced && seen < EV_COUNT) {
        t->ev_synced = true;
        update_ready(t);
    }
    ev_issue(t);
}

/* ---- sending ---------------------------------------------------------------------------- */

static void on_xadd(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    gw_call_t *c = priv;
    gw_req_t *r = c->owner;
    redisReply *rep = reply;
    bool failed = rep == NULL || rep->type == REDIS_REPLY_ERROR || rep->type == REDIS_REPLY_NIL;
    if (failed && rep != NULL && rep->type == REDIS_REPLY_ERROR)
        ADI_LOG(NULL, ADI_LOG_ERROR, "gw.xadd_failed", "service=%s error=%.*s",
                r->service ? r->service : "?", (int)(rep->len > 200 ? 200 : rep->len), rep->str);
    if (failed && c->linked) {
        gw_pending_remove(r->t, c);
        gw_on_send_failed(c, ADI_UNAVAILABLE);
    }
    gw_req_unref(r);
}

void gw_bus_send(gw_thread_t *t, gw_call_t *c, const char *service, const adi_buf_t *env)
{
    char stream[128];
    char maxlen[24];
    snprintf(stream, sizeof(stream), ADI_KEY_REQ_FMT, service);
    snprintf(maxlen, sizeof(maxlen), "%" PRId64, t->gw->cfg.stream_maxlen);
    const char *argv[] = {"XADD", stream, "NOMKSTREAM",     "MAXLEN", "~",
                          maxlen, "*",    ADI_STREAM_FIELD, env->data};
    size_t lens[9];
    for (size_t i = 0; i < 8; i++)
        lens[i] = strlen(argv[i]);
    lens[8] = env->len;
    if (!gw_bus_ready(t) ||
        redisAsyncCommandArgv(t->cmd.ac, on_xadd, c, 9, argv, lens) != REDIS_OK) {
        gw_pending_remove(t, c);
        gw_on_send_failed(c, ADI_UNAVAILABLE);
        return;
    }
    gw_req_ref(c->owner);
}

/* Carries an EVAL's callback and request. */
typedef struct eval_ctx {
    void (*cb)(gw_req_t *r, void *reply); /* continuation */
    gw_req_t *r;                          /* request (referenced) */
} eval_ctx_t;

static void on_eval(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    eval_ctx_t *e = priv;
    if (e->cb != NULL)
        e->cb(e->r, reply);
    if (e->r != NULL)
        gw_req_unref(e->r);
    free(e);
}

bool gw_bus_eval(gw_thread_t *t, const char *script, const char *const *keys, size_t nkeys,
                 const adi_str_t *args, size_t nargs, void (*cb)(gw_req_t *r, void *reply),
                 gw_req_t *r)
{
    if (t->cmd.ac == NULL || !t->cmd.up || nkeys < 1 || nkeys > 2 || nargs > 6)
        return false;
    const char *argv[3 + 2 + 6];
    size_t lens[3 + 2 + 6];
    size_t n = 0;
    argv[n++] = "EVAL";
    argv[n++] = script;
    argv[n++] = nkeys == 1 ? "1" : "2";
    for (size_t i = 0; i < nkeys; i++)
        argv[n++] = keys[i];
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    for (size_t i = 0; i < nargs; i++) {
        argv[n] = args[i].ptr ? args[i].ptr : "";
        lens[n++] = args[i].len;
    }
    eval_ctx_t *e = adi_xcalloc(1, sizeof(*e));
    e->cb = cb;
    e->r = r;
    if (redisAsyncCommandArgv(t->cmd.ac, on_eval, e, (int)n, argv, lens) != REDIS_OK) {
        free(e);
        return false;
    }
    if (r != NULL)
        gw_req_ref(r);
    return true;
}

/* ---- backlog ---------------------------------------------------------------------------- */

adi_err gw_bus_admit(const gw_thread_t *t, const char *service)
{
    int i = gw_service_index(service);
    if (i < 0)
        return ADI_UNAVAILABLE;
    if (t->svc[i].known < 0)
        return ADI_UNAVAILABLE;
    if (t->svc[i].known > 0 && t->svc[i].backlog > t->gw->cfg.backlog_limit)
        return ADI_BUSY;
    return ADI_OK;
}

/*
 * The backlog of one service's group (KEYS[1] its request stream, ARGV[1] the group, ARGV[2]
 * BACKLOG_LIMIT): pending + lag, -1 when the stream or the group is missing. Redis's `lag` is an
 * estimate: nil after entries were deleted mid-stream, and after an AOF reload too high forever
 * (Redis 7.0 propagates XREADGROUP as XCLAIM ... LASTID, which does not carry entries-read, so
 * the reloaded counter lags the real one by every entry read since the last rewrite; found by
 * tests/faults: the gateway then shed every request with 503 after a Redis restart). So when
 * the estimate is missing or says "shed", the undelivered entries are counted (up to limit + 1,
 * so the cost stays bounded, and only then).
 */
static const char backlog_lua[] =
    "local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])\n"
    "if not ok then return -1 end\n"
    "for _, g in ipairs(groups) do\n"
    "  local f = {}\n"
    "  for j = 1, #g, 2 do f[g[j]] = g[j + 1] end\n"
    "  if f['name'] == ARGV[1] then\n"
    "    local lag, limit = f['lag'], tonumber(ARGV[2])\n"
    "    if type(lag) ~= 'number' or lag > limit then\n"
    "      lag = #redis.call('XRANGE', KEYS[1], '(' .. f['last-delivered-id'], '+', 'COUNT',\n"
    "                        limit + 1)\n"
    "    end\n"
    "    return f['pending'] + lag\n"
    "  end\n"
    "end\n"
    "return -1\n";

static void on_xinfo(redisAsyncContext *ac, void *reply, void *priv)
{
    gw_conn_t *c = ac->data;
    redisReply *r = reply;
    size_t i = (size_t)(uintptr_t)priv;
    if (c == NULL || r == NULL || i >= ADI_SERVICE_COUNT || c->ac != ac)
        return;
    gw_thread_t *t = c->t;
    if (t->poll_outstanding > 0)
        t->poll_outstanding--;
    gw_svc_state_t st = {-1, 0};
    if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0) {
        st.known = 1;
        st.backlog = r->integer;
    } else if (r->type == REDIS_REPLY_ERROR) {
        ADI_LOG(NULL, ADI_LOG_WARN, "gw.backlog_poll_failed", "service=%s error=%.*s",
                gw_service_names[i], (int)(r->len > 200 ? 200 : r->len), r->str);
    }
    if (st.known != t->svc[i].known)
        ADI_LOG(NULL, st.known > 0 ? ADI_LOG_INFO : ADI_LOG_WARN, "gw.service_stream",
                "thread=%zu service=%s stream=%s", t->index, gw_service_names[i],
                st.known > 0 ? "ready" : "missing");
    t->svc[i] = st;
    /* Per thread: each thread sheds load on its own view, and tests can wait for every view. */
    char labels[96];
    snprintf(labels, sizeof(labels), "backend=\"%s\",thread=\"%zu\"", gw_service_names[i],
             t->index);
    adi_metrics_gauge(t->gw->metrics, "adi_gateway_backend_backlog", labels, (double)st.backlog);
    adi_metrics_gauge(t->gw->metrics, "adi_gateway_backend_stream_up", labels,
                      st.known > 0 ? 1 : 0);
}

static void poll_backlog(gw_thread_t *t)
{
    if (!t->cmd.up || t->cmd.ac == NULL || t->state == GW_CLOSING || t->poll_outstanding > 0)
        return;
    t->poll_sent_ms = adi_mono_ms();
    for (size_t i = 0; i < ADI_SERVICE_COUNT; i++) {
        char stream[128];
        snprintf(stream, sizeof(stream), ADI_KEY_REQ_FMT, gw_service_names[i]);
        if (redisAsyncCommand(t->cmd.ac, on_xinfo, (void *)(uintptr_t)i, "EVAL %s 1 %s %s %d",
                              backlog_lua, stream, gw_service_names[i],
                              t->gw->cfg.backlog_limit) == REDIS_OK)
            t->poll_outstanding++;
    }
    redisAsyncCommand(t->cmd.ac, NULL, NULL, "PEXPIRE %s %s", t->rep_stream, REP_STREAM_TTL);
}

/*
 * Drops a connection that hiredis cannot see failing, and reconnects. hiredis 0.14.1's libuv
 * adapter ignores poll errors (libuv reports a refused connect or a reset connection as a poll
 * error, not as readable/writable), so such a connection would hang forever. The pending
 * callbacks run now with a NULL reply (requests answer 503; the deadline covers the rest).
 */
static void conn_drop(gw_conn_t *c, const char *why)
{
    redisAsyncContext *ac = c->ac;
    conn_lost(c);
    log_down(c, why);
    count_failure(c);
    redisAsyncFree(ac);
    schedule_retry(c);
}

/* Checks one connection for the failures hiredis misses: socket errors, slow connects, silence. */
static void watchdog(gw_conn_t *c, int64_t now)
{
    if (c->ac == NULL)
        return;
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(c->ac->c.fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr != 0) {
        conn_drop(c, strerror(soerr));
    } else if (!c->up && now - c->started_ms > CONNECT_LIMIT_MS) {
        conn_drop(c, "connect timed out");
    } else if (c->up && c->kind == GW_CONN_REPLY && c->t->xread_inflight &&
               now - c->t->xread_sent_ms > atoi(XREAD_BLOCK_MS) + ANSWER_LIMIT_MS) {
        conn_drop(c, "no answer to XREAD");
    } else if (c->up && c->kind == GW_CONN_EVENTS && c->t->ev_inflight &&
               now - c->t->ev_sent_ms > atoi(XREAD_BLOCK_MS) + ANSWER_LIMIT_MS) {
        conn_drop(c, "no answer to XREAD of ev:auth");
    } else if (c->up && c->kind == GW_CONN_CMD && c->t->poll_outstanding > 0 &&
               now - c->t->poll_sent_ms > ANSWER_LIMIT_MS) {
        conn_drop(c, "no answer to XINFO");
    }
}

static void on_poll(uv_timer_t *timer)
{
    gw_thread_t *t = timer->data;
    int64_t now = adi_mono_ms();
    watchdog(&t->cmd, now);
    watchdog(&t->rd, now);
    watchdog(&t->ev, now);
    poll_backlog(t);
}

/* ---- lifecycle -------------------------------------------------------------------------- */

static void conn_init(gw_thread_t *t, gw_conn_t *c, gw_conn_kind_t kind)
{
    memset(c, 0, sizeof(*c));
    c->t = t;
    c->kind = kind;
    c->backoff_ms = BACKOFF_MIN_MS;
    uv_timer_init(&t->loop, &c->retry);
    c->retry.data = c;
}

void gw_bus_start(gw_thread_t *t)
{
    char name[GW_INSTANCE_MAX + 32];
    snprintf(name, sizeof(name), "%s-%zu", t->gw->instance, t->index);
    snprintf(t->rep_stream, sizeof(t->rep_stream), ADI_KEY_GW_REP_FMT, name);
    snprintf(t->last_id, sizeof(t->last_id), "0-0");
    /* Every access token issued before an event older than this has expired. */
    int64_t ttl_ms = (t->gw->cfg.access_ttl_s + t->gw->cfg.jwt_leeway_s) * 1000;
    gw_vtable_init(&t->versions, GW_VTABLE_MAX_SLOTS, ttl_ms);
    gw_tcache_init(&t->tokens, t->gw->cfg.jwt_leeway_s);
    gw_vtable_history_id(adi_now_ms(), ttl_ms, t->ev_last_id, sizeof(t->ev_last_id));
    t->ev_synced = false;
    conn_init(t, &t->cmd, GW_CONN_CMD);
    conn_init(t, &t->rd, GW_CONN_REPLY);
    conn_init(t, &t->ev, GW_CONN_EVENTS);
    uv_timer_init(&t->loop, &t->xread_retry);
    t->xread_retry.data = t;
    uv_timer_init(&t->loop, &t->ev_retry);
    t->ev_retry.data = t;
    uv_timer_init(&t->loop, &t->poll);
    t->poll.data = t;
    uv_timer_start(&t->poll, on_poll, POLL_MS, POLL_MS);
    count_event(t, 0); /* the series exists from the start */
    conn_open(&t->cmd);
    conn_open(&t->rd);
    conn_open(&t->ev);
}

/* Drops a connection at once: pending callbacks run with a NULL reply. */
static void conn_free(gw_conn_t *c)
{
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    c->up = false;
    if (ac != NULL)
        redisAsyncFree(ac);
}

void gw_bus_stop(gw_thread_t *t, bool force)
{
    uv_timer_stop(&t->poll);
    uv_timer_stop(&t->xread_retry);
    uv_timer_stop(&t->ev_retry);
    gw_conn_t *conns[3] = {&t->rd, &t->ev, &t->cmd};
    for (size_t i = 0; i < 3; i++) {
        gw_conn_t *c = conns[i];
        uv_timer_stop(&c->retry);
        c->retry_pending = false;
        if (c->resolving)
            uv_cancel((uv_req_t *)&c->resolve);
    }
    conn_free(&t->rd);
    conn_free(&t->ev);
    update_ready(t);
    if (t->cmd.ac == NULL)
        return;
    if (force || !t->cmd.up) {
        conn_free(&t->cmd);
        update_ready(t);
        return;
    }
    /* Flush what is queued (idempotency records, XDEL), drop the reply stream, then close. */
    redisAsyncCommand(t->cmd.ac, NULL, NULL, "DEL %s", t->rep_stream);
    redisAsyncDisconnect(t->cmd.ac);
}

bool gw_bus_closed(const gw_thread_t *t)
{
    return t->cmd.ac == NULL && t->rd.ac == NULL && t->ev.ac == NULL && !t->cmd.resolving &&
           !t->rd.resolving && !t->ev.resolving;
}

void gw_bus_close_handles(gw_thread_t *t)
{
    uv_close((uv_handle_t *)&t->cmd.retry, NULL);
    uv_close((uv_handle_t *)&t->rd.retry, NULL);
    uv_close((uv_handle_t *)&t->ev.retry, NULL);
    uv_close((uv_handle_t *)&t->xread_retry, NULL);
    uv_close((uv_handle_t *)&t->ev_retry, NULL);
    uv_close((uv_handle_t *)&t->poll, NULL);
}
