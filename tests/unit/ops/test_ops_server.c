/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the ops HTTP server: started on port 0 (a free port) and queried over a plain
 * loopback socket for /healthz, /readyz (ready and not ready), /metrics, an unknown path and a
 * wrong method; a second server on a taken port fails cleanly; stop joins the ops thread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "adi/ops.h"

/* What the readiness callback answers; flipped by the tests. */
typedef struct readiness {
    atomic_bool ready; /* answer of the check */
    atomic_int calls;  /* how often /readyz asked */
} readiness_t;

typedef struct fixture {
    adi_metrics_t *metrics; /* rendered by /metrics */
    readiness_t readiness;  /* state behind /readyz */
    adi_ops_t *ops;         /* the server under test */
} fixture_t;

/* One parsed HTTP response. */
typedef struct response {
    int status;       /* status code, 0 if unparsable */
    adi_buf_t raw;    /* the whole response, NUL-terminated */
    const char *body; /* points into raw after the blank line */
} response_t;

static bool check_ready(void *arg, char why[128])
{
    readiness_t *r = arg;
    atomic_fetch_add(&r->calls, 1);
    if (atomic_load(&r->ready))
        return true;
    snprintf(why, 128, "postgres unreachable");
    return false;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    f->metrics = adi_metrics_new("test");
    atomic_init(&f->readiness.ready, true);
    atomic_init(&f->readiness.calls, 0);
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_ops_start("127.0.0.1", 0, f->metrics, check_ready, &f->readiness, &f->ops, &err) !=
        ADI_OK) {
        print_error("start: %s\n", err.message);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    adi_ops_stop(f->ops);
    adi_metrics_free(f->metrics);
    free(f);
    return 0;
}

/* Sends `request` verbatim to the server and reads until it closes the connection. */
static void http(int port, const char *request, response_t *r)
{
    memset(r, 0, sizeof(*r));
    adi_buf_init(&r->raw);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    size_t len = strlen(request);
    assert_int_equal(write(fd, request, len), (ssize_t)len);
    char chunk[4096];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        adi_buf_append(&r->raw, chunk, (size_t)n);
    close(fd);
    adi_buf_append(&r->raw, "", 0);
    if (sscanf(r->raw.data, "HTTP/1.%*d %d", &r->status) != 1)
        r->status = 0;
    const char *sep = strstr(r->raw.data, "\r\n\r\n");
    r->body = sep != NULL ? sep + 4 : "";
}

/* True when the head of `raw` has a line starting with `line` (name compared case-insensitively).
 */
static bool has_header(const char *raw, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = strstr(raw, "\r\n"); p != NULL && strncmp(p, "\r\n\r\n", 4) != 0;
         p = strstr(p + 2, "\r\n")) {
        const char *h = p + 2;
        bool same = true;
        for (size_t i = 0; i < n && same; i++)
            same = tolower((unsigned char)h[i]) == tolower((unsigned char)line[i]);
        if (same)
            return true;
    }
    return false;
}

static void get(int port, const char *path, response_t *r)
{
    char req[256];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
    http(port, req, r);
}

static void test_healthz(void **state)
{
    fixture_t *f = *state;
    assert_true(adi_ops_port(f->ops) > 0);
    response_t r;
    get(adi_ops_port(f->ops), "/healthz", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");
    adi_buf_dispose(&r.raw);
}

static void test_readyz(void **state)
{
    fixture_t *f = *state;
    response_t r;
    get(adi_ops_port(f->ops), "/readyz", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ready\n");
    adi_buf_dispose(&r.raw);

    atomic_store(&f->readiness.ready, false);
    get(adi_ops_port(f->ops), "/readyz", &r);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "postgres unreachable\n");
    adi_buf_dispose(&r.raw);
    assert_int_equal(atomic_load(&f->readiness.calls), 2);

    /* Readiness is asked again on every probe. */
    atomic_store(&f->readiness.ready, true);
    get(adi_ops_port(f->ops), "/readyz?verbose=1", &r);
    assert_int_equal(r.status, 200);
    adi_buf_dispose(&r.raw);
}

static void test_metrics(void **state)
{
    fixture_t *f = *state;
    adi_metrics_observe(f->metrics, "auth.login", 201, 0.02);
    adi_metrics_gauge(f->metrics, "backlog", "stream=\"svc:{auth}:req\"", 3);
    response_t r;
    get(adi_ops_port(f->ops), "/metrics", &r);
    assert_int_equal(r.status, 200);
    assert_true(has_header(r.raw.data, "content-type: text/plain; version=0.0.4"));
    assert_non_null(strstr(r.body, "adi_requests_total{service=\"test\",op=\"auth.login\","
                                   "status=\"201\"} 1\n"));
    assert_non_null(strstr(r.body, "adi_backlog{service=\"test\",stream=\"svc:{auth}:req\"} 3\n"));
    assert_non_null(strstr(r.body, "adi_metrics_dropped_total{service=\"test\"} 0\n"));
    adi_buf_dispose(&r.raw);
}

static void test_unknown_path_and_method(void **state)
{
    fixture_t *f = *state;
    response_t r;
    get(adi_ops_port(f->ops), "/nope", &r);
    assert_int_equal(r.status, 404);
    adi_buf_dispose(&r.raw);
    get(adi_ops_port(f->ops), "/healthz/extra", &r);
    assert_int_equal(r.status, 404);
    adi_buf_dispose(&r.raw);
    http(adi_ops_port(f->ops),
         "POST /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n", &r);
    assert_int_equal(r.status, 405);
    adi_buf_dispose(&r.raw);
    /* Garbage is a 400, and the server keeps serving. */
    http(adi_ops_port(f->ops), "NOT HTTP AT ALL\r\n\r\n", &r);
    assert_int_equal(r.status, 400);
    adi_buf_dispose(&r.raw);
    get(adi_ops_port(f->ops), "/healthz", &r);
    assert_int_equal(r.status, 200);
    adi_buf_dispose(&r.raw);
}

static void test_port_taken(void **state)
{
    fixture_t *f = *state;
    adi_ops_t *second = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    adi_err rc =
        adi_ops_start("127.0.0.1", adi_ops_port(f->ops), f->metrics, NULL, NULL, &second, &err);
    assert_int_equal(rc, ADI_UNAVAILABLE);
    assert_null(second);
    assert_non_null(strstr(err.message, "Cannot listen"));
    rc = adi_ops_start("127.0.0.1", 70000, f->metrics, NULL, NULL, &second, &err);
    assert_int_equal(rc, ADI_INVALID);
    assert_null(second);
}

static void test_no_ready_callback(void **state)
{
    (void)state;
    adi_ops_t *ops = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_ops_start("127.0.0.1", 0, NULL, NULL, NULL, &ops, &err), ADI_OK);
    response_t r;
    get(adi_ops_port(ops), "/readyz", &r);
    assert_int_equal(r.status, 200);
    adi_buf_dispose(&r.raw);
    get(adi_ops_port(ops), "/metrics", &r);
    assert_int_equal(r.status, 200);
    adi_buf_dispose(&r.raw);
    adi_ops_stop(ops);
}

static void test_stop_with_idle_connection(void **state)
{
    (void)state;
    adi_ops_t *ops = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_ops_start("127.0.0.1", 0, NULL, NULL, NULL, &ops, &err), ADI_OK);
    /* A client that connects and never sends a request. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)adi_ops_port(ops))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    /* Connections are accepted in order: once this answer arrives, the idle one is open. */
    response_t r;
    get(adi_ops_port(ops), "/healthz", &r);
    assert_int_equal(r.status, 200);
    adi_buf_dispose(&r.raw);
    /* Stop cuts the idle connection instead of waiting for h2o's request timeout. */
    adi_ops_stop(ops);
    char c;
    assert_true(read(fd, &c, 1) <= 0);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_healthz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readyz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_path_and_method, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_taken, setup, teardown),
        cmocka_unit_test(test_no_ready_callback),
        cmocka_unit_test(test_stop_with_idle_connection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
