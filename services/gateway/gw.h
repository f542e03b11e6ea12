/* SPDX-License-Identifier: MIT */
/*
 * The gateway's runtime, shared by its files and not used outside services/gateway. The process
 * runs GATEWAY_THREADS threads; each owns one libuv loop with its h2o context, its listening socket
 * (SO_REUSEPORT on the shared port), its three hiredis async connections (commands, the blocking
 * XREAD of its reply stream, and the blocking XREAD of ev:auth), its table of pending bus calls,
 * its view of the services' backlogs and its table of user token versions. Threads share only the
 * read-only configuration, the token key set, the route table and the metrics.
 *
 * A request is a gw_req_t (heap, reference-counted): h2o's request pool holds one reference until
 * h2o disposes the request, and every Redis command in flight for it holds one more, so a late
 * Redis reply never touches freed memory; `req` turns NULL when h2o is done with the request.
 */
#ifndef GW_H
#define GW_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <h2o.h>
#include <uv.h>

#include "adi/core.h"
#include "adi/jwt.h"
#include "adi/keys.h"
#include "adi/messages.h"
#include "adi/ops.h"
#include "gw_auth.h"
#include "gw_config.h"
#include "gw_idem.h"
#include "gw_login.h"
#include "gw_parse.h"
#include "gw_render.h"
#include "gw_router.h"

struct redisAsyncContext;

#define GW_ID_MAX         128 /* envelope id (correlation id) bytes */
#define GW_REP_STREAM_MAX 200 /* reply stream key bytes */
#define GW_CLIENT_IP_MAX  64  /* client address text bytes (IPv6 fits) */
/*
 * Largest request head served (request target plus every header name and value): above it 431.
 * h2o itself reads heads of up to H2O_MAX_REQLEN (about 408 KiB) and answers 400 beyond; an API
 * client never needs more than a few KiB (the largest header is a ~1 KiB bearer token).
 */
#define GW_HEAD_MAX (64 * 1024)

typedef struct gw gw_t;
typedef struct gw_thread gw_thread_t;
typedef struct gw_req gw_req_t;

/** One bus call waiting for its reply, found by correlation id in its thread's table. */
typedef struct gw_call {
    char id[GW_ID_MAX + 1]; /* correlation id (envelope id), NUL-terminated */
    size_t id_len;          /* its length */
    struct gw_call *next;   /* hash chain */
    bool linked;            /* in the pending table */
    gw_req_t *owner;        /* the request it belongs to */
    size_t slot;            /* index in owner->calls */
} gw_call_t;

/** One HTTP request being served. */
struct gw_req {
    unsigned refs;                          /* h2o pool + Redis commands in flight */
    gw_thread_t *t;                         /* serving thread */
    h2o_req_t *req;                         /* NULL once h2o disposed the request */
    adi_str_t method;                       /* request method (h2o pool memory; valid while req) */
    adi_str_t path;                         /* path without query (same lifetime) */
    char log_method[16];                    /* copy of the method for the log line */
    char log_path[513];                     /* copy of the path (truncated) for the log line */
    const gw_route_t *route;                /* matched route, NULL before matching */
    char route_label[96];                   /* metrics label: "GET /api/health/" or "unmatched" */
    char request_id[GW_REQUEST_ID_MAX + 1]; /* X-Request-ID (echoed or generated) */
    bool cors;                              /* the Origin is allowed: add CORS headers */
    adi_str_t origin;                       /* the Origin header (h2o pool memory) */
    int64_t start_ms;                       /* adi_mono_ms at arrival */
    bool responded;                         /* a response was started */
    bool timer_linked;                      /* `timer` is linked */
    h2o_timeout_entry_t timer;              /* deadline of the proxied call or the health fan-out */
    int64_t deadline_ms;                    /* absolute wall-clock deadline sent in the envelope */
    int64_t deadline_len_ms;            /* the route's deadline (ms), for the idempotency lock */
    gw_call_t calls[ADI_SERVICE_COUNT]; /* bus calls (1 proxied, 4 for health, 2 for me) */
    size_t ncalls;                      /* used entries of calls */
    const char *service;                /* target service of a proxied route */
    adi_buf_t env;                      /* encoded envelope waiting for the idempotency verdict */
    bool idem;                          /* an Idempotency-Key lock is held (settle on response) */
    char idem_key[GW_IDEM_KEY_LEN + 1]; /* Redis key of the lock */
    char idem_fp[65];                   /* request fingerprint */
    adi_buf_t idem_running;             /* our "running" value (identifies the owner) */
    adi_str_t idem_hdr;                 /* the Idempotency-Key (h2o pool memory), for later */
    int held_status;                    /* response held until the idempotency settle is acked */
    h2o_iovec_t held_body;              /* its body (h2o pool memory) */
    const char **held_extra;            /* its extra header pairs (h2o pool memory), or NULL */
    char client_ip[GW_CLIENT_IP_MAX];   /* peer address as text, "" when unknown */
    bool authed;                        /* `claims` hold a verified access token */
    adi_jwt_claims_t claims;            /* the caller's verified claims (when authed) */
    bool login;                         /* a throttled login route */
    bool login_account;                 /* the account key is in use (a username was sent) */
    bool login_charged;                 /* the attempt is counted in Redis: settle it */
    bool login_from_auth;               /* the answer came from auth's reply */
    int login_status;                   /* that reply's status */
    char login_keys[2][GW_LOGIN_KEY_MAX + 1];    /* account key, address key */
    gw_login_check_t login_check;                /* what the check script answered */
    gw_health_entry_t health[ADI_SERVICE_COUNT]; /* health fan-out results */
    size_t health_left;                          /* services not answered yet */
    bool me_serial;      /* GET /api/me/ with X-Tenant-Id: tenant.get waits for auth.me's answer */
    bool me_user_done;   /* auth.me answered 2xx; its body is in me_user */
    bool me_tenant_ask;  /* a tenant.get is (or will be) made */
    bool me_tenant_done; /* tenant.get settled (or is not needed); me_tenant holds its body */
    adi_buf_t me_user;   /* auth.me reply body (msgpack auth_me_rep) */
    adi_buf_t me_tenant; /* tenant.get reply body (msgpack tenant_info), empty for null */
};

/** What a thread knows of one service's request stream (from XINFO GROUPS). */
typedef struct gw_svc_state {
    int known;       /* 0 never polled, 1 stream and group exist, -1 missing */
    int64_t backlog; /* lag + pending of the service's group */
} gw_svc_state_t;

/** What a thread's Redis connection is for. */
typedef enum gw_conn_kind {
    GW_CONN_CMD = 0, /* commands: XADD, EVAL, XINFO, XDEL */
    GW_CONN_REPLY,   /* XREAD BLOCK on the reply stream */
    GW_CONN_EVENTS,  /* XREAD (BLOCK once caught up) on ev:auth */
} gw_conn_kind_t;

/** One hiredis async connection with its reconnect timer. */
typedef struct gw_conn {
    struct redisAsyncContext *ac; /* NULL while disconnected */
    bool up;                      /* connected and set up (AUTH/SELECT answered) */
    gw_conn_kind_t kind;          /* its role */
    bool retry_pending;           /* `retry` is armed */
    int64_t backoff_ms;           /* next reconnect delay */
    uv_timer_t retry;             /* reconnect timer */
    uv_getaddrinfo_t resolve;     /* host lookup before each connect (off the loop) */
    bool resolving;               /* `resolve` is in flight */
    gw_thread_t *t;               /* owner */
    bool logged_down;             /* the outage was logged once */
    int64_t started_ms;           /* adi_mono_ms of the current connect attempt */
} gw_conn_t;

enum gw_thread_state {
    GW_RUNNING = 0, /* serving */
    GW_DRAINING,    /* not accepting; waiting for in-flight requests and connections */
    GW_CLOSING,     /* closing Redis and the loop */
};

struct gw_thread {
    gw_t *gw;                   /* the process */
    size_t index;               /* thread number */
    pthread_t tid;              /* the thread */
    uv_loop_t loop;             /* its loop */
    h2o_context_t ctx;          /* its h2o context */
    h2o_accept_ctx_t accept;    /* accept parameters */
    int listen_fd;              /* bound socket, handed to `listener` on start */
    uv_tcp_t listener;          /* listening handle */
    uv_async_t wake;            /* stop request from the main thread */
    enum gw_thread_state state; /* lifecycle */
    uv_timer_t drain_timer;     /* checks drain progress */
    int64_t drain_until;        /* adi_mono_ms limit of the drain */
    size_t live;                /* gw_req_t objects alive */
    h2o_timeout_t *timeouts;    /* one per distinct route deadline */
    /* bus */
    gw_conn_t cmd;                         /* commands: XADD, EVAL, XINFO, XDEL */
    gw_conn_t rd;                          /* XREAD BLOCK on rep_stream */
    gw_conn_t ev;                          /* XREAD on ev:auth */
    char rep_stream[GW_REP_STREAM_MAX];    /* gw:{<instance>-<n>}:rep */
    char last_id[64];                      /* last reply entry id seen */
    bool xread_inflight;                   /* an XREAD is outstanding */
    int64_t xread_sent_ms;                 /* adi_mono_ms when it was sent */
    int poll_outstanding;                  /* XINFO replies still expected from the last poll */
    int64_t poll_sent_ms;                  /* adi_mono_ms of that poll */
    uv_timer_t xread_retry;                /* delay after an XREAD error */
    uv_timer_t poll;                       /* backlog poll, every 250 ms */
    gw_svc_state_t svc[ADI_SERVICE_COUNT]; /* per service of ADI_SERVICE_NAMES */
    gw_call_t **buckets;                   /* pending calls by correlation id */
    size_t nbuckets;                       /* power of two */
    size_t npending;                       /* linked calls */
    char ev_last_id[64];                   /* last ev:auth entry id seen (history start at first) */
    bool ev_inflight;                      /* an ev:auth XREAD is outstanding */
    int64_t ev_sent_ms;                    /* adi_mono_ms when it was sent */
    bool ev_synced;                        /* ev:auth read up to its end since the last connect */
    uv_timer_t ev_retry;                   /* delay after an ev:auth XREAD error */
    gw_vtable_t versions;                  /* user_id -> token version from ev:auth */
    gw_tcache_t tokens;                    /* access tokens that verified (cache) */
    atomic_bool ready;                     /* Redis connections up and ev:auth caught up (read by
                                              the ops thread) */
};

struct gw {
    gw_config_t cfg;                    /* environment */
    gw_redis_url_t redis;               /* parsed REDIS_URL */
    gw_origins_t origins;               /* parsed CORS_ALLOWED_ORIGINS */
    char instance[GW_INSTANCE_MAX + 1]; /* GATEWAY_INSTANCE or hostname-pid */
    gw_router_t *router;                /* compiled routes */
    int64_t *deadlines;                 /* distinct effective route deadlines (ms) */
    size_t ndeadlines;                  /* their count */
    size_t *route_class;                /* per route row: index into deadlines */
    h2o_globalconf_t h2o;               /* h2o configuration shared by the threads */
    adi_metrics_t *metrics;             /* process metrics */
    adi_ops_t *ops;                     /* ops server */
    gw_thread_t *threads;               /* the threads */
    size_t nthreads;                    /* GATEWAY_THREADS */
    int port;                           /* bound HTTP port */
    size_t body_mp_max;                 /* largest msgpack body an envelope may carry */
    adi_jwt_t *jwt;                     /* token key set (read-only, shared by the threads) */
};

extern const char *const gw_service_names[ADI_SERVICE_COUNT];

/* ---- server.c ---------------------------------------------------------------------------- */

/** Sets up h2o, binds the listeners and starts the ops port. Errors leave nothing running. */
adi_err gw_start(gw_t *gw, adi_error_t *err);
/** Asks every thread to drain and waits until they exit. */
void gw_stop(gw_t *gw);
/** Frees what gw_start made. */
void gw_dispose(gw_t *gw);

/* ---- handler.c --------------------------------------------------------------------------- */

/** The h2o on_req of the one generic handler. */
int gw_on_req(h2o_handler_t *self, h2o_req_t *req);
/** A reply for `c` arrived (c is already unlinked). */
void gw_on_reply(gw_call_t *c, const adi_reply *rep);
/** The XADD of `c` failed (stream missing, Redis error or disconnect); c is already unlinked. */
void gw_on_send_failed(gw_call_t *c, adi_err code);

/** Reference counting of requests. */
void gw_req_ref(gw_req_t *r);
void gw_req_unref(gw_req_t *r);

/**
 * Sends a response (once; later calls do nothing): status, body, the common headers (Content-Type,
 * X-Request-ID, CORS) and `extra` headers as name/value pairs ending with NULL; then logs the
 * request, records its metrics and settles a held Idempotency-Key.
 */
void gw_respond(gw_req_t *r, int status, const char *body, size_t len, const char *const *extra);

/**
 * Answers with the error of a non-2xx service reply `rep`, rendered per API.md (with
 * WWW-Authenticate on 401 and Retry-After on 503). `code_401` as in gw_render_reply_error_code.
 */
void gw_respond_reply_error(gw_req_t *r, const adi_reply *rep, const char *code_401);

/** gw_respond with {"error": {"code", "message"}} and Retry-After: 1 (for 503). */
void gw_respond_error(gw_req_t *r, int status, const char *code, const char *msg);

/** Links the request's deadline timer for its route's deadline class. */
void gw_req_arm_timer(gw_req_t *r, size_t dclass, h2o_timeout_cb cb);
void gw_req_disarm_timer(gw_req_t *r);

/** Unlinks every pending call of `r`. */
void gw_req_drop_calls(gw_req_t *r);

/* ---- local.c ----------------------------------------------------------------------------- */

/** Serves a local route (`route_index` is its row in the route table). */
void gw_local_serve(gw_req_t *r, size_t route_index);
/** A bus call of a local route (health, me) finished (rep NULL = it could not be sent). */
void gw_local_reply(gw_call_t *c, const adi_reply *rep);

/* ---- bus.c ------------------------------------------------------------------------------- */

/** Starts the thread's Redis connections (reconnecting by themselves). */
void gw_bus_start(gw_thread_t *t);
/** Every connection up and ev:auth caught up: requests may be served. */
bool gw_bus_ready(const gw_thread_t *t);
/** Begins closing the connections (flushes pending commands first). */
void gw_bus_stop(gw_thread_t *t, bool force);
/** Both connections closed and timers stopped. */
bool gw_bus_closed(const gw_thread_t *t);
/** Closes the bus's uv handles (after gw_bus_closed). */
void gw_bus_close_handles(gw_thread_t *t);

/** Index of `service` in ADI_SERVICE_NAMES, -1 if unknown. */
int gw_service_index(const char *service);

/** Load-shedding verdict for a service: ADI_OK, ADI_UNAVAILABLE (no stream/group) or ADI_BUSY. */
adi_err gw_bus_admit(const gw_thread_t *t, const char *service);

/** Adds `c` to the pending table. Errors: ADI_CONFLICT (id in use), ADI_BUSY (table full). */
adi_err gw_pending_add(gw_thread_t *t, gw_call_t *c);
/** Removes `c` if linked. */
void gw_pending_remove(gw_thread_t *t, gw_call_t *c);

/**
 * XADDs the envelope `env` of linked call `c` to svc:{service}:req (NOMKSTREAM, MAXLEN ~). The
 * outcome arrives as gw_on_reply or gw_on_send_failed. Holds a reference on the owner meanwhile.
 */
void gw_bus_send(gw_thread_t *t, gw_call_t *c, const char *service, const adi_buf_t *env);

/**
 * Runs EVAL `script` with `nkeys` keys (at most 2) and `nargs` string arguments (at most 6) on
 * the command connection. `cb` gets the reply (NULL when the connection failed) and `r` (which
 * holds a reference meanwhile). Returns false (nothing sent) when the connection is down.
 */
bool gw_bus_eval(gw_thread_t *t, const char *script, const char *const *keys, size_t nkeys,
                 const adi_str_t *args, size_t nargs, void (*cb)(gw_req_t *r, void *reply),
                 gw_req_t *r);

#endif
