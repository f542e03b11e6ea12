/* SPDX-License-Identifier: MIT */
/*
 * The ops HTTP server: /healthz, /readyz and /metrics served by h2o (libuv binding) on a thread of
 * its own with a loop of its own, so that busy or stuck workers never hide the process from its
 * probes and scrapes.
 *
 * The listening socket is bound on the caller's thread, so that adi_ops_start can report a port
 * that cannot be bound and the port that was picked; the loop then runs on the ops thread, which
 * alone touches it afterwards. adi_ops_stop wakes the loop with a uv_async, which closes the
 * listener and waits for the open connections to finish (responses are never kept alive, so that
 * is at most one short request each, bounded by h2o's request timeout), then disposes h2o and the
 * loop on the ops thread before the caller joins it.
 */
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <h2o.h>
#include <uv.h>

#include "adi/ops.h"

/* How long a connection may take to send its request (ms); also bounds adi_ops_stop. */
#define REQ_TIMEOUT_MS 5000

/* Our handler, with h2o's handler embedded first so that h2o's pointer converts back. */
typedef struct ops_handler {
    h2o_handler_t super; /* h2o's part */
    adi_ops_t *ops;      /* the server it belongs to */
} ops_handler_t;

struct adi_ops {
    uv_loop_t loop;             /* the ops thread's loop */
    uv_tcp_t listener;          /* the listening socket */
    uv_async_t stop_async;      /* wakes the loop to stop */
    uv_thread_t thread;         /* the ops thread */
    h2o_globalconf_t config;    /* h2o configuration: one host, one path */
    h2o_context_t ctx;          /* h2o context bound to `loop` */
    h2o_accept_ctx_t accept;    /* what h2o_accept needs */
    int port;                   /* bound port */
    int conns;                  /* open client connections (touched on the ops thread only) */
    struct ops_conn *conn_list; /* those connections, so that stop can cut them */
    bool stopping;              /* adi_ops_stop was called; stop when conns reaches 0 */
    adi_metrics_t *metrics;     /* rendered by /metrics; borrowed */
    adi_ops_ready_fn ready;     /* readiness check, or NULL for always ready */
    void *ready_arg;            /* its argument */
};

/*
 * A client connection's libuv handle. h2o takes over the handle's `data`, so the way back to the
 * server is this wrapper, whose first member is the handle.
 */
typedef struct ops_conn {
    uv_tcp_t tcp;          /* the accepted socket; first, so a handle pointer converts back */
    adi_ops_t *ops;        /* the server it belongs to */
    struct ops_conn *prev; /* neighbours in the server's list of open connections */
    struct ops_conn *next;
} ops_conn_t;

/* One route of the ops port. */
typedef struct route {
    const char *path;                        /* exact path */
    void (*fn)(adi_ops_t *ops, h2o_req_t *); /* sends the response */
} route_t;

static void send_text(h2o_req_t *req, int status, const char *reason, const char *ctype,
                      const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = reason;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ctype,
                   strlen(ctype));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store"));
    req->res.content_length = len;
    /* h2o_send_inline copies the body into the request's pool. */
    h2o_send_inline(req, body, len);
}

static void serve_healthz(adi_ops_t *ops, h2o_req_t *req)
{
    (void)ops;
    send_text(req, 200, "OK", "text/plain; charset=utf-8", H2O_STRLIT("ok\n"));
}

static void serve_readyz(adi_ops_t *ops, h2o_req_t *req)
{
    char why[128] = "";
    if (ops->ready == NULL || ops->ready(ops->ready_arg, why)) {
        send_text(req, 200, "OK", "text/plain; charset=utf-8", H2O_STRLIT("ready\n"));
        return;
    }
    why[sizeof(why) - 1] = '\0';
    char body[sizeof(why) + 2];
    int n = snprintf(body, sizeof(body), "%s\n", why[0] != '\0' ? why : "not ready");
    send_text(req, 503, "Service Unavailable", "text/plain; charset=utf-8", body, (size_t)n);
}

static void serve_metrics(adi_ops_t *ops, h2o_req_t *req)
{
    adi_buf_t b;
    adi_buf_init(&b);
    if (ops->metrics != NULL)
        adi_metrics_render(ops->metrics, &b);
    send_text(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
              b.data != NULL ? b.data : "", b.len);
    adi_buf_dispose(&b);
}

static const route_t routes[] = {
    {"/healthz", serve_healthz},
    {"/readyz", serve_readyz},
    {"/metrics", serve_metrics},
};

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    adi_ops_t *ops = ((ops_handler_t *)self)->ops;
    /* One request per connection: nothing stays open that adi_ops_stop would wait for. */
    req->http1_is_persistent = 0;
    h2o_iovec_t path = req->path_normalized;
    /* The query string plays no part in routing. */
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (!h2o_memis(path.base, path.len, routes[i].path, strlen(routes[i].path)))
            continue;
        if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
            !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                           H2O_STRLIT("GET, HEAD"));
            h2o_send_error_405(req, "Method Not Allowed", "method not allowed\n",
                               H2O_SEND_ERROR_KEEP_HEADERS);
            return 0;
        }
        routes[i].fn(ops, req);
        return 0;
    }
    h2o_send_error_404(req, "Not Found", "not found\n", 0);
    return 0;
}

/* Tears the loop down once no connection is open any more. Runs on the ops thread. */
static void maybe_finish(adi_ops_t *ops)
{
    if (ops->stopping && ops->conns == 0)
        uv_stop(&ops->loop);
}

static void on_conn_closed(uv_handle_t *h)
{
    ops_conn_t *c = (ops_conn_t *)h;
    adi_ops_t *ops = c->ops;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        ops->conn_list = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    free(c);
    ops->conns--;
    maybe_finish(ops);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void on_accept(uv_stream_t *listener, int status)
{
    adi_ops_t *ops = listener->data;
    if (status != 0 || ops->stopping)
        return;
    ops_conn_t *conn = adi_xcalloc(1, sizeof(*conn));
    conn->ops = ops;
    uv_tcp_init(&ops->loop, &conn->tcp);
    if (uv_accept(listener, (uv_stream_t *)&conn->tcp) != 0) {
        uv_close((uv_handle_t *)&conn->tcp, free_handle);
        return;
    }
    ops->conns++;
    conn->next = ops->conn_list;
    if (conn->next != NULL)
        conn->next->prev = conn;
    ops->conn_list = conn;
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&conn->tcp, on_conn_closed);
    h2o_accept(&ops->accept, sock);
}

static void on_stop(uv_async_t *a)
{
    adi_ops_t *ops = a->data;
    ops->stopping = true;
    uv_close((uv_handle_t *)&ops->listener, NULL);
    uv_close((uv_handle_t *)&ops->stop_async, NULL);
    h2o_context_request_shutdown(&ops->ctx);
    /*
     * A client may hold a connection open without sending a request. Shutting the socket down
     * makes h2o read EOF and close the connection through its own path, which frees its state.
     */
    for (ops_conn_t *c = ops->conn_list; c != NULL; c = c->next) {
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
            shutdown(fd, SHUT_RDWR);
    }
    maybe_finish(ops);
}

static void close_leftover(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/*
 * h2o keeps freed socket buffers and memory-pool chunks in per-thread recycle lists (at most 16
 * each). They would leak when the ops thread exits, so the thread empties them before it ends:
 * the socket buffers through their exported prototype, the pool chunks (whose list is private to
 * h2o) by taking each one out into a throw-away pool and freeing it.
 */
static void drain_h2o_thread_caches(void)
{
    h2o_mem_recycle_t *bufs = &h2o_socket_buffer_prototype.allocator;
    while (bufs->cnt > 0)
        free(h2o_mem_alloc_recycle(bufs, 1));
    for (int i = 0; i < 16; i++) {
        h2o_mem_pool_t pool;
        h2o_mem_init_pool(&pool);
        (void)h2o_mem_alloc_pool(&pool, 1);
        /* The pool's only chunk, a plain malloc, recycled or new; not handed back to h2o. */
        free(pool.chunks);
    }
}

static void ops_thread(void *arg)
{
    adi_ops_t *ops = arg;
    uv_run(&ops->loop, UV_RUN_DEFAULT);
    /*
     * h2o_context_request_shutdown armed the HTTP/2 GOAWAY timer, and h2o_context_dispose insists
     * that no timer is pending. h2o closes its own handles (timers, queue) in dispose; the loop
     * then runs once more so that those closes finish.
     */
    if (h2o_timeout_is_linked(&ops->ctx.http2._graceful_shutdown_timeout))
        h2o_timeout_unlink(&ops->ctx.http2._graceful_shutdown_timeout);
    h2o_context_dispose(&ops->ctx);
    uv_run(&ops->loop, UV_RUN_DEFAULT);
    uv_walk(&ops->loop, close_leftover, NULL);
    uv_run(&ops->loop, UV_RUN_DEFAULT);
    drain_h2o_thread_caches();
}

/* Resolves a numeric or named host for binding, preferring what getaddrinfo lists first. */
static int resolve(const char *host, int port, struct sockaddr_storage *out)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    if (getaddrinfo(host, service, &hints, &res) != 0 || res == NULL)
        return -1;
    memcpy(out, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

/* Undoes a partial start on the caller's thread: closes what exists and drains the loop. */
static void abort_start(adi_ops_t *ops, bool listener_open)
{
    if (listener_open)
        uv_close((uv_handle_t *)&ops->listener, NULL);
    uv_close((uv_handle_t *)&ops->stop_async, NULL);
    h2o_context_dispose(&ops->ctx);
    uv_run(&ops->loop, UV_RUN_DEFAULT);
    uv_walk(&ops->loop, close_leftover, NULL);
    uv_run(&ops->loop, UV_RUN_DEFAULT);
    uv_loop_close(&ops->loop);
    h2o_config_dispose(&ops->config);
    free(ops);
}

adi_err adi_ops_start(const char *host, int port, adi_metrics_t *m, adi_ops_ready_fn ready,
                      void *arg, adi_ops_t **out, adi_error_t *err)
{
    *out = NULL;
    if (host == NULL || port < 0 || port > 65535)
        return adi_error_set(err, ADI_INVALID, "Invalid ops address.");
    struct sockaddr_storage addr;
    if (resolve(host, port, &addr) != 0)
        return adi_error_set(err, ADI_INVALID, "Cannot resolve ops host %s.", host);

    /*
     * A scraper that hangs up mid-response must not kill the process with SIGPIPE (libuv writes
     * with plain write()). Only the default disposition is changed; a handler someone set stays.
     */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);
    }

    adi_ops_t *ops = adi_xcalloc(1, sizeof(*ops));
    ops->metrics = m;
    ops->ready = ready;
    ops->ready_arg = arg;
    if (uv_loop_init(&ops->loop) != 0) {
        free(ops);
        return adi_error_set(err, ADI_INTERNAL, "Cannot create the ops loop.");
    }
    h2o_config_init(&ops->config);
    ops->config.http1.req_timeout = REQ_TIMEOUT_MS;
    /* Probes and scrapes speak HTTP/1.1; an h2c upgrade would only keep connections open. */
    ops->config.http1.upgrade_to_http2 = 0;
    /* The server header would only tell scanners our h2o version. */
    ops->config.server_name = h2o_iovec_init(H2O_STRLIT("adinsights"));
    h2o_hostconf_t *hc =
        h2o_config_register_host(&ops->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path(hc, "/", 0);
    ops_handler_t *h = (ops_handler_t *)h2o_create_handler(pc, sizeof(*h));
    h->super.on_req = on_req;
    h->ops = ops;
    h2o_context_init(&ops->ctx, &ops->loop, &ops->config);
    ops->accept.ctx = &ops->ctx;
    ops->accept.hosts = ops->config.hosts;

    uv_async_init(&ops->loop, &ops->stop_async, on_stop);
    ops->stop_async.data = ops;
    uv_tcp_init(&ops->loop, &ops->listener);
    ops->listener.data = ops;
    int rc = uv_tcp_bind(&ops->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&ops->listener, 128, on_accept);
    if (rc != 0) {
        abort_start(ops, true);
        return adi_error_set(err, ADI_UNAVAILABLE, "Cannot listen on %s:%d: %s.", host, port,
                             uv_strerror(rc));
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    uv_tcp_getsockname(&ops->listener, (struct sockaddr *)&bound, &blen);
    ops->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                            : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    if (uv_thread_create(&ops->thread, ops_thread, ops) != 0) {
        abort_start(ops, true);
        return adi_error_set(err, ADI_INTERNAL, "Cannot start the ops thread.");
    }
    *out = ops;
    return ADI_OK;
}

int adi_ops_port(const adi_ops_t *ops)
{
    return ops->port;
}

void adi_ops_stop(adi_ops_t *ops)
{
    if (ops == NULL)
        return;
    uv_async_send(&ops->stop_async);
    uv_thread_join(&ops->thread);
    uv_loop_close(&ops->loop);
    h2o_config_dispose(&ops->config);
    free(ops);
}
