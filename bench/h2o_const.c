// SPDX-License-Identifier: MIT
/*
 * adi-h2o-const: bare h2o serving a constant, the baseline of the gateway's own overhead in
 * bench/run.sh. It sets h2o up the way services/gateway/server.c does (libh2o's libuv binding,
 * HTTP/1.1 only, one event-loop thread per listener, each listener bound with SO_REUSEPORT on the
 * same port) and answers every request with 200 and the JSON body {"version": "0.1.0"}, the size
 * of the gateway's GET /api/health/version/ reply, so the two runs differ only by what the gateway
 * does per request (routing, request id, CORS, JSON rendering, metrics).
 *
 *   adi-h2o-const [port [threads]]   port 0 (default) picks a free port; threads default 2
 *
 * Prints "port <n>" on stdout once it listens, then serves until killed (SIGTERM or SIGINT end
 * it; it keeps no state worth a clean shutdown).
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <h2o.h>
#include <uv.h>

enum { MAX_THREADS = 16 };

/* One event-loop thread: its loop, h2o context and listener. */
typedef struct {
    uv_loop_t loop;          /* this thread's libuv loop */
    h2o_context_t ctx;       /* h2o context on that loop */
    h2o_accept_ctx_t accept; /* accept context (ctx + hosts) */
    uv_tcp_t listener;       /* SO_REUSEPORT listener of this thread */
    int fd;                  /* its socket */
    pthread_t tid;           /* the thread */
} const_thread_t;

static h2o_globalconf_t config;
static const char body[] = "{\"version\": \"0.1.0\"}";

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = sizeof(body) - 1;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json"));
    h2o_send_inline(req, body, sizeof(body) - 1);
    return 0;
}

static void on_conn_close(uv_handle_t *h)
{
    free(h);
}

static void on_accept(uv_stream_t *listener, int status)
{
    const_thread_t *t = listener->data;
    if (status != 0)
        return;
    uv_tcp_t *conn = malloc(sizeof(*conn));
    if (conn == NULL)
        return;
    uv_tcp_init(listener->loop, conn);
    if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, on_conn_close);
        return;
    }
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)conn, on_conn_close);
    h2o_accept(&t->accept, sock);
}

/* Binds a SO_REUSEPORT listener on 127.0.0.1:port; returns the fd or -1 (errno set). */
static int bind_listener(int port, int *bound)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int on = 1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 1024) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        errno = e;
        return -1;
    }
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    *bound = ntohs(sa.sin_port);
    return fd;
}

static void *thread_main(void *arg)
{
    const_thread_t *t = arg;
    uv_run(&t->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* Parses a decimal argument in [lo, hi]; returns -1 when it is not one. */
static long parse_arg(const char *s, long lo, long hi)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    return v;
}

int main(int argc, char **argv)
{
    static const_thread_t threads[MAX_THREADS];
    long port = argc > 1 ? parse_arg(argv[1], 0, 65535) : 0;
    long n = argc > 2 ? parse_arg(argv[2], 1, MAX_THREADS) : 2;
    if (argc > 3 || port < 0 || n < 0) {
        fprintf(stderr, "usage: adi-h2o-const [port (0-65535, 0 = free)] [threads (1-%d)]\n",
                MAX_THREADS);
        return 2;
    }

    h2o_config_init(&config);
    config.server_name = h2o_iovec_init(H2O_STRLIT(""));
    config.http1.upgrade_to_http2 = 0;
    h2o_hostconf_t *host =
        h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(path, sizeof(*handler));
    handler->on_req = on_req;

    /* The first listener fixes the port (a free one for 0); the others share it. */
    int bound = (int)port;
    for (long i = 0; i < n; i++) {
        const_thread_t *t = &threads[i];
        t->fd = bind_listener(bound, &bound);
        if (t->fd < 0) {
            fprintf(stderr, "adi-h2o-const: cannot listen on 127.0.0.1:%d: %s\n", bound,
                    strerror(errno));
            return 1;
        }
        uv_loop_init(&t->loop);
        h2o_context_init(&t->ctx, &t->loop, &config);
        t->accept.ctx = &t->ctx;
        t->accept.hosts = config.hosts;
        uv_tcp_init(&t->loop, &t->listener);
        t->listener.data = t;
        int rc = uv_tcp_open(&t->listener, t->fd);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&t->listener, 1024, on_accept);
        if (rc != 0) {
            fprintf(stderr, "adi-h2o-const: listener %ld: %s\n", i, uv_strerror(rc));
            return 1;
        }
    }
    printf("port %d\n", bound);
    fflush(stdout);
    for (long i = 1; i < n; i++) {
        if (pthread_create(&threads[i].tid, NULL, thread_main, &threads[i]) != 0) {
            fprintf(stderr, "adi-h2o-const: cannot start thread %ld\n", i);
            return 1;
        }
    }
    thread_main(&threads[0]);
    return 0;
}
