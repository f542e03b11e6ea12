/* SPDX-License-Identifier: MIT */
/*
 * Process and thread lifecycle. gw_start compiles the routes, configures h2o (one host, the
 * generic handler on "/", a filter that turns h2o's own plain-text errors such as its 413 into the
 * API's JSON shapes), binds one SO_REUSEPORT listener per thread on the same port, prepares every
 * thread's loop, h2o context and Redis connections, starts the threads and the ops port.
 *
 * gw_stop drains: each thread stops accepting, tells h2o to shut down (HTTP/2 GOAWAY, no more
 * keep-alive), closes idle HTTP/1 connections at once, waits for the requests in flight (each ends
 * by its own deadline at the latest) and the open connections, bounded by SHUTDOWN_GRACE_MS, then
 * flushes and closes its Redis connections, disposes its h2o context and closes its loop.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "adi/log.h"
#include "adi/proto.h"
#include "gw.h"
#include "gw_parse.h"

#define DRAIN_CHECK_MS 50
#define LOG_PATH_MAX_  512  /* bytes of the path in the log line */
#define CLOSE_LIMIT_MS 3000 /* after the drain, how long Redis may take to flush and close */

/* The filter registered on the fallback path, where h2o's own error responses go. */
typedef struct gw_filter {
    h2o_filter_t super; /* h2o filter */
    gw_t *gw;           /* the process */
} gw_filter_t;

/* An ostream that replaces the body of an h2o error response with our JSON. */
typedef struct json_ostream {
    h2o_ostream_t super; /* h2o ostream */
    h2o_iovec_t body;    /* the JSON body (request pool) */
} json_ostream_t;

/* ---- h2o's own errors -------------------------------------------------------------------- */

static void json_do_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                         h2o_send_state_t state)
{
    json_ostream_t *os = (json_ostream_t *)self;
    (void)bufs;
    (void)bufcnt;
    bool head = req->method.len == 4 && memcmp(req->method.base, "HEAD", 4) == 0;
    if (h2o_send_state_is_in_progress(state)) {
        /* h2o_send_inline sends its body in one final call; nothing to forward before that. */
        h2o_ostream_send_next(self, req, NULL, 0, state);
        return;
    }
    h2o_ostream_send_next(self, req, head ? NULL : &os->body, head ? 0 : 1, state);
}

static void on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    gw_filter_t *f = (gw_filter_t *)self;
    if (h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-request-id"), -1) >= 0)
        goto next; /* ours */
    adi_buf_t b;
    adi_buf_init(&b);
    char msg[96];
    int status = req->res.status;
    if (status == 413)
        snprintf(msg, sizeof(msg), "Request body exceeds %lld bytes.",
                 (long long)f->gw->cfg.max_body);
    else if (status == 400)
        snprintf(msg, sizeof(msg), "Malformed request.");
    else
        snprintf(msg, sizeof(msg), "%s", gw_reason(status));
    if (status >= 500)
        gw_render_error_obj(&b, status == 503 ? "unavailable" : "server_error", msg);
    else
        gw_render_detail(&b, msg, strlen(msg));

    char rid[GW_REQUEST_ID_MAX + 1];
    ssize_t h = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
    adi_str_t in =
        h >= 0 ? (adi_str_t){req->headers.entries[h].value.base, req->headers.entries[h].value.len}
               : ADI_STR_NULL;
    if (gw_request_id_valid(in)) {
        memcpy(rid, in.ptr, in.len);
        rid[in.len] = '\0';
    } else {
        adi_uuid_v4(rid);
    }
    ssize_t ct = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (ct >= 0)
        req->res.headers.entries[ct].value = h2o_iovec_init(H2O_STRLIT("application/json"));
    else
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                       H2O_STRLIT("application/json"));
    h2o_iovec_t v = h2o_strdup(&req->pool, rid, strlen(rid));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL,
                          v.base, v.len);
    req->res.content_length = b.len;
    json_ostream_t *os = (json_ostream_t *)h2o_add_ostream(req, sizeof(*os), slot);
    os->super.do_send = json_do_send;
    os->body = h2o_strdup(&req->pool, b.data, b.len);
    slot = &os->super.next;

    char path[LOG_PATH_MAX_ + 1];
    size_t plen = req->input.query_at != SIZE_MAX ? req->input.query_at : req->input.path.len;
    snprintf(path, sizeof(path), "%.*s", (int)(plen > LOG_PATH_MAX_ ? LOG_PATH_MAX_ : plen),
             req->input.path.base ? req->input.path.base : "");
    adi_logctx_t lc = {rid, NULL, NULL, 0, rid};
    ADI_LOG(&lc, ADI_LOG_INFO, "gw.request", "method=%.*s path=%s status=%d",
            (int)(req->input.method.len > 15 ? 15 : req->input.method.len),
            req->input.method.base ? req->input.method.base : "", path, status);
    adi_metrics_observe(f->gw->metrics, "rejected", status, 0);
    adi_buf_dispose(&b);
next:
    h2o_setup_next_ostream(req, slot);
}

/* ---- listeners --------------------------------------------------------------------------- */

/* Binds (SO_REUSEPORT) and listens on host:port; returns the fd or -1 with err set. */
static int bind_listener(const char *host, int port, int *bound_port, adi_error_t *err)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[8];
    snprintf(ps, sizeof(ps), "%d", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc != 0) {
        adi_error_set(err, ADI_UNAVAILABLE, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        adi_error_set(err, ADI_UNAVAILABLE, "cannot listen on %s:%d: %s", host, port,
                      strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                           : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static void on_conn_close(uv_handle_t *h)
{
    free(h);
}

static void on_accept(uv_stream_t *listener, int status)
{
    gw_thread_t *t = listener->data;
    if (status != 0 || t->state != GW_RUNNING)
        return;
    uv_tcp_t *conn = adi_xmalloc(sizeof(*conn));
    uv_tcp_init(listener->loop, conn);
    if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, on_conn_close);
        return;
    }
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)conn, on_conn_close);
    h2o_accept(&t->accept, sock);
}

/* ---- thread lifecycle -------------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

/* True when no h2o timeout of the context has an entry left (h2o_context_dispose asserts it). */
static bool h2o_timeouts_idle(gw_thread_t *t)
{
    /* The HTTP/2 GOAWAY re-send entry stays linked for a second after the shutdown request. */
    if (h2o_timeout_is_linked(&t->ctx.http2._graceful_shutdown_timeout))
        h2o_timeout_unlink(&t->ctx.http2._graceful_shutdown_timeout);
    h2o_timeout_t *all[] = {&t->ctx.zero_timeout,
                            &t->ctx.one_sec_timeout,
                            &t->ctx.hundred_ms_timeout,
                            &t->ctx.handshake_timeout,
                            &t->ctx.http1.req_timeout,
                            &t->ctx.http2.idle_timeout,
                            &t->ctx.http2.graceful_shutdown_timeout,
                            &t->ctx.proxy.io_timeout};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (!h2o_linklist_is_empty(&all[i]->_entries))
            return false;
    for (size_t i = 0; i < t->gw->ndeadlines; i++)
        if (!h2o_linklist_is_empty(&t->timeouts[i]._entries))
            return false;
    return true;
}

static void thread_finish(gw_thread_t *t, bool clean)
{
    uv_timer_stop(&t->drain_timer);
    clean = clean && h2o_timeouts_idle(t);
    if (!clean) {
        /* Something is still open after the grace period: leave it to process exit. */
        ADI_LOG(NULL, ADI_LOG_WARN, "gw.shutdown_forced", "thread=%zu live=%zu", t->index, t->live);
        uv_stop(&t->loop);
        return;
    }
    gw_bus_close_handles(t);
    uv_close((uv_handle_t *)&t->drain_timer, on_handle_closed);
    uv_close((uv_handle_t *)&t->wake, on_handle_closed);
    for (size_t i = 0; i < t->gw->ndeadlines; i++)
        h2o_timeout_dispose(&t->loop, &t->timeouts[i]);
    h2o_context_dispose(&t->ctx);
}

static void on_drain_check(uv_timer_t *timer)
{
    gw_thread_t *t = timer->data;
    int64_t now = adi_mono_ms();
    bool conns = !h2o_linklist_is_empty(&t->ctx.http1._conns) ||
                 !h2o_linklist_is_empty(&t->ctx.http2._conns);
    if (t->state == GW_DRAINING) {
        if ((t->live > 0 || conns) && now < t->drain_until)
            return;
        t->state = GW_CLOSING;
        t->drain_until = now + CLOSE_LIMIT_MS;
        gw_bus_stop(t, t->live > 0 || conns);
    }
    if (!gw_bus_closed(t) && now < t->drain_until)
        return;
    if (!gw_bus_closed(t))
        gw_bus_stop(t, true);
    thread_finish(t, gw_bus_closed(t) && t->live == 0 && !conns);
}

static void begin_drain(gw_thread_t *t)
{
    if (t->state != GW_RUNNING)
        return;
    t->state = GW_DRAINING;
    atomic_store(&t->ready, false);
    uv_close((uv_handle_t *)&t->listener, on_handle_closed);
    h2o_context_request_shutdown(&t->ctx);
    /*
     * HTTP/1 has no shutdown hook in h2o 2.2.5: idle keep-alive connections wait for their request
     * timeout. Make that timeout zero and run it, which closes the idle ones now; a connection
     * serving a request closes right after its response (h2o stops keep-alive on shutdown).
     */
    t->ctx.http1.req_timeout.timeout = 0;
    h2o_timeout_run(&t->loop, &t->ctx.http1.req_timeout, h2o_now(&t->loop));
    t->drain_until = adi_mono_ms() + t->gw->cfg.grace_ms;
    uv_timer_start(&t->drain_timer, on_drain_check, 0, DRAIN_CHECK_MS);
}

static void on_wake(uv_async_t *a)
{
    begin_drain(a->data);
}

/*
 * h2o recycles freed socket buffers and pool chunks through per-thread lists that nothing frees
 * when a thread ends. Empty both before the thread returns: the buffers through their exported
 * prototype; the chunks (a private list) by letting a scratch pool take each one and freeing it.
 */
static void release_h2o_thread_memory(void)
{
    h2o_mem_recycle_t *bufs = &h2o_socket_buffer_prototype.allocator;
    while (bufs->cnt > 0)
        free(h2o_mem_alloc_recycle(bufs, 1));
    for (size_t i = 0; i < 16; i++) {
        h2o_mem_pool_t scratch;
        h2o_mem_init_pool(&scratch);
        (void)h2o_mem_alloc_pool(&scratch, 1);
        free(scratch.chunks); /* the chunk came from the list (or malloc): never back to h2o */
    }
}

static void *thread_main(void *arg)
{
    gw_thread_t *t = arg;
    uv_run(&t->loop, UV_RUN_DEFAULT);
    if (t->state == GW_CLOSING && uv_loop_close(&t->loop) != 0)
        ADI_LOG(NULL, ADI_LOG_WARN, "gw.loop_busy", "thread=%zu", t->index);
    release_h2o_thread_memory();
    return NULL;
}

/* Prepares everything of thread `t` on its (not yet running) loop. */
static adi_err thread_init(gw_t *gw, gw_thread_t *t, size_t index, adi_error_t *err)
{
    t->gw = gw;
    t->index = index;
    uv_loop_init(&t->loop);
    h2o_context_init(&t->ctx, &t->loop, &gw->h2o);
    t->accept.ctx = &t->ctx;
    t->accept.hosts = gw->h2o.hosts;
    t->timeouts = adi_xcalloc(gw->ndeadlines, sizeof(*t->timeouts));
    for (size_t i = 0; i < gw->ndeadlines; i++)
        h2o_timeout_init(&t->loop, &t->timeouts[i], (uint64_t)gw->deadlines[i]);
    uv_async_init(&t->loop, &t->wake, on_wake);
    t->wake.data = t;
    uv_timer_init(&t->loop, &t->drain_timer);
    t->drain_timer.data = t;
    atomic_init(&t->ready, false);
    uv_tcp_init(&t->loop, &t->listener);
    t->listener.data = t;
    int rc = uv_tcp_open(&t->listener, t->listen_fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&t->listener, 1024, on_accept);
    if (rc != 0)
        return adi_error_set(err, ADI_UNAVAILABLE, "listener of thread %zu: %s", index,
                             uv_strerror(rc));
    gw_bus_start(t);
    return ADI_OK;
}

/* ---- process ----------------------------------------------------------------------------- */

static bool ready(void *arg, char why[128])
{
    gw_t *gw = arg;
    for (size_t i = 0; i < gw->nthreads; i++) {
        if (!atomic_load(&gw->threads[i].ready)) {
            snprintf(why, 128, "thread %zu: redis not connected or ev:auth not caught up", i);
            return false;
        }
    }
    return true;
}

static void instance_name(gw_t *gw)
{
    if (gw->cfg.instance[0]) {
        snprintf(gw->instance, sizeof(gw->instance), "%s", gw->cfg.instance);
        return;
    }
    char host[64] = "gateway";
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    for (char *p = host; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-'))
            *p = '-';
    snprintf(gw->instance, sizeof(gw->instance), "%s-%ld", host, (long)getpid());
}

/* Effective deadline per route and the distinct values (one h2o_timeout_t each per thread). */
static adi_err compile_deadlines(gw_t *gw, adi_error_t *err)
{
    gw->route_class = adi_xcalloc(gw_routes_count ? gw_routes_count : 1, sizeof(size_t));
    gw->deadlines = adi_xcalloc(gw_routes_count ? gw_routes_count : 1, sizeof(int64_t));
    for (size_t i = 0; i < gw_routes_count; i++) {
        const gw_route_t *r = &gw_routes[i];
        int64_t d = r->deadline_ms > 0 ? r->deadline_ms : gw->cfg.timeout_ms;
        size_t k = 0;
        while (k < gw->ndeadlines && gw->deadlines[k] != d)
            k++;
        if (k == gw->ndeadlines)
            gw->deadlines[gw->ndeadlines++] = d;
        gw->route_class[i] = k;
        if (r->local == GW_LOCAL_NONE) {
            const char *svc = r->service ? r->service : r->op ? r->op->service : NULL;
            if (svc == NULL || gw_service_index(svc) < 0 || (r->op->flags & ADI_OP_INTERNAL))
                return adi_error_set(err, ADI_INVALID,
                                     "route %s: its op has no single service or is internal",
                                     r->pattern);
        }
    }
    return ADI_OK;
}

static size_t envelope_body_max(void)
{
    for (size_t i = 0; i < adi_envelope__desc.nfields; i++)
        if (strcmp(adi_envelope__desc.fields[i].name, "body") == 0)
            return (size_t)adi_envelope__desc.fields[i].max;
    return 1048576;
}

adi_err gw_start(gw_t *gw, adi_error_t *err)
{
    instance_name(gw);
    gw->body_mp_max = envelope_body_max();
    if (gw_router_new(gw_routes, gw_routes_count, &gw->router, err) != ADI_OK)
        return err->code;
    if (compile_deadlines(gw, err) != ADI_OK)
        return err->code;

    h2o_config_init(&gw->h2o);
    gw->h2o.server_name = h2o_iovec_init(H2O_STRLIT(""));
    gw->h2o.max_request_entity_size = (size_t)gw->cfg.max_body;
    /*
     * HTTP/1.1 only: TLS and HTTP/2 end at the ingress. (h2o 2.2.5 keeps HTTP/2 write buffers in
     * a thread-local cache it does not export, which would outlive the threads; and this switch
     * also turns off h2c prior knowledge.)
     */
    gw->h2o.http1.upgrade_to_http2 = 0;
    h2o_hostconf_t *host =
        h2o_config_register_host(&gw->h2o, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(path, sizeof(*handler));
    handler->on_req = gw_on_req;
    gw_filter_t *filter = (gw_filter_t *)h2o_create_filter(&host->fallback_path, sizeof(*filter));
    filter->super.on_setup_ostream = on_setup_ostream;
    filter->gw = gw;

    gw->metrics = adi_metrics_new("gateway");
    gw->nthreads = (size_t)gw->cfg.threads;
    gw->threads = adi_xcalloc(gw->nthreads, sizeof(gw_thread_t));
    int port = (int)gw->cfg.http_port;
    for (size_t i = 0; i < gw->nthreads; i++) {
        gw->threads[i].listen_fd = bind_listener(gw->cfg.http_host, port, &port, err);
        if (gw->threads[i].listen_fd < 0)
            return err->code;
    }
    gw->port = port;
    for (size_t i = 0; i < gw->nthreads; i++)
        if (thread_init(gw, &gw->threads[i], i, err) != ADI_OK)
            return err->code;
    if (adi_ops_start(gw->cfg.ops_host, (int)gw->cfg.ops_port, gw->metrics, ready, gw, &gw->ops,
                      err) != ADI_OK)
        return err->code;
    for (size_t i = 0; i < gw->nthreads; i++)
        pthread_create(&gw->threads[i].tid, NULL, thread_main, &gw->threads[i]);
    ADI_LOG(NULL, ADI_LOG_INFO, "gw.started",
            "listening on %s:%d, ops port %d, %zu threads, instance %s", gw->cfg.http_host,
            gw->port, adi_ops_port(gw->ops), gw->nthreads, gw->instance);
    return ADI_OK;
}

void gw_stop(gw_t *gw)
{
    for (size_t i = 0; i < gw->nthreads; i++)
        uv_async_send(&gw->threads[i].wake);
    for (size_t i = 0; i < gw->nthreads; i++)
        pthread_join(gw->threads[i].tid, NULL);
    ADI_LOG(NULL, ADI_LOG_INFO, "gw.stopped", "all threads drained");
}

void gw_dispose(gw_t *gw)
{
    if (gw->ops != NULL)
        adi_ops_stop(gw->ops);
    bool clean = true;
    for (size_t i = 0; gw->threads != NULL && i < gw->nthreads; i++) {
        gw_thread_t *t = &gw->threads[i];
        clean = clean && t->state == GW_CLOSING && gw_bus_closed(t) && t->live == 0;
    }
    if (!clean)
        return; /* a thread was stopped by force: its memory is still referenced; exit frees it */
    for (size_t i = 0; gw->threads != NULL && i < gw->nthreads; i++) {
        free(gw->threads[i].timeouts);
        free(gw->threads[i].buckets);
        gw_vtable_dispose(&gw->threads[i].versions);
        gw_tcache_dispose(&gw->threads[i].tokens);
    }
    free(gw->threads);
    if (gw->router != NULL)
        h2o_config_dispose(&gw->h2o);
    gw_router_free(gw->router);
    free(gw->deadlines);
    free(gw->route_class);
    if (gw->metrics != NULL)
        adi_metrics_free(gw->metrics);
    adi_jwt_free(gw->jwt);
    gw->jwt = NULL;
}
