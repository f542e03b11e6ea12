/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the metrics registry: the Prometheus text format of every family, histogram bucket
 * boundaries (le is inclusive and cumulative), label escaping, name prefixing, malformed input,
 * the series bound and concurrent recording.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "adi/ops.h"
#include "ops_int.h"

/* Renders `m` into a fresh NUL-terminated heap string owned by the caller's buffer. */
static void render(adi_metrics_t *m, adi_buf_t *b)
{
    adi_buf_init(b);
    adi_metrics_render(m, b);
    adi_buf_append(b, "", 0);
}

static void assert_has(const adi_buf_t *b, const char *line)
{
    if (strstr(b->data, line) == NULL) {
        print_error("missing line: %s\nin:\n%s\n", line, b->data);
        fail();
    }
}

static size_t count_lines_with(const adi_buf_t *b, const char *needle)
{
    size_t n = 0;
    for (const char *p = b->data; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* Every line is a comment or `name{labels} value`, and the text ends with a newline. */
static void assert_well_formed(const adi_buf_t *b)
{
    assert_true(b->len > 0 && b->data[b->len - 1] == '\n');
    const char *p = b->data;
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        if (*p != '#') {
            const char *brace = memchr(p, '{', (size_t)(nl - p));
            const char *close = NULL;
            for (const char *q = nl; q > p; q--)
                if (q[-1] == '}') {
                    close = q - 1;
                    break;
                }
            assert_non_null(brace);
            assert_non_null(close);
            assert_true(close[1] == ' ');
            assert_true(close + 2 < nl);
        } else {
            assert_true(strncmp(p, "# TYPE ", 7) == 0 || strncmp(p, "# HELP ", 7) == 0);
        }
        p = nl + 1;
    }
}

static void test_request_families(void **state)
{
    (void)state;
    adi_metrics_t *m = adi_metrics_new("auth");
    adi_metrics_observe(m, "auth.login", 200, 0.00390625);
    adi_metrics_observe(m, "auth.login", 500, 0.125);
    adi_metrics_observe(m, "auth.login", 200, 0.00390625);
    adi_metrics_observe(m, "auth.me", 200, 20);
    adi_buf_t b;
    render(m, &b);
    assert_well_formed(&b);
    assert_has(&b, "# TYPE adi_requests_total counter\n");
    assert_has(&b, "adi_requests_total{service=\"auth\",op=\"auth.login\",status=\"200\"} 2\n");
    assert_has(&b, "adi_requests_total{service=\"auth\",op=\"auth.login\",status=\"500\"} 1\n");
    assert_has(&b, "adi_requests_total{service=\"auth\",op=\"auth.me\",status=\"200\"} 1\n");
    assert_has(&b, "# TYPE adi_errors_total counter\n");
    assert_has(&b, "adi_errors_total{service=\"auth\",op=\"auth.login\"} 1\n");
    assert_has(&b, "adi_errors_total{service=\"auth\",op=\"auth.me\"} 0\n");
    assert_has(&b, "# TYPE adi_request_duration_seconds histogram\n");
    assert_has(&b, "adi_request_duration_seconds_bucket{service=\"auth\",op=\"auth.login\","
                   "le=\"0.0025\"} 0\n");
    assert_has(&b, "adi_request_duration_seconds_bucket{service=\"auth\",op=\"auth.login\","
                   "le=\"0.005\"} 2\n");
    assert_has(&b, "adi_request_duration_seconds_bucket{service=\"auth\",op=\"auth.login\","
                   "le=\"0.1\"} 2\n");
    assert_has(&b, "adi_request_duration_seconds_bucket{service=\"auth\",op=\"auth.login\","
                   "le=\"0.25\"} 3\n");
    assert_has(&b, "adi_request_duration_seconds_bucket{service=\"auth\",op=\"auth.login\","
                   "le=\"+Inf\"} 3\n");
    assert_has(&b,
               "adi_request_duration_seconds_sum{service=\"auth\",op=\"auth.login\"} 0.1328125\n");
    assert_has(&b, "adi_request_duration_seconds_count{service=\"auth\",op=\"auth.login\"} 3\n");
    assert_has(&b, "adi_request_duration_seconds_bucket{service=\"auth\",op=\"auth.me\","
                   "le=\"10\"} 0\n");
    assert_has(&b, "adi_request_duration_seconds_bucket{service=\"auth\",op=\"auth.me\","
                   "le=\"+Inf\"} 1\n");
    assert_has(&b, "adi_request_duration_seconds_sum{service=\"auth\",op=\"auth.me\"} 20\n");
    assert_has(&b, "adi_metrics_dropped_total{service=\"auth\"} 0\n");
    /* 14 buckets per operation, in the documented order. */
    assert_int_equal(count_lines_with(&b, "op=\"auth.me\",le="), 14);
    const char *les[] = {"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
                         "0.25",  "0.5",    "1",     "2.5",  "5",     "10",   "+Inf"};
    const char *prev = b.data;
    for (size_t i = 0; i < sizeof(les) / sizeof(les[0]); i++) {
        char want[128];
        snprintf(want, sizeof(want), "op=\"auth.me\",le=\"%s\"}", les[i]);
        const char *at = strstr(b.data, want);
        assert_non_null(at);
        assert_true(at > prev);
        prev = at;
    }
    adi_buf_dispose(&b);
    adi_metrics_free(m);
}

static void test_bucket_boundaries(void **state)
{
    (void)state;
    adi_metrics_t *m = adi_metrics_new("svc");
    /* A value equal to a bound falls into that bucket (le = less or equal). */
    adi_metrics_observe(m, "op", 200, 0.001);
    adi_metrics_observe(m, "op", 200, 0.0010001);
    adi_metrics_observe(m, "op", 200, 10);
    adi_metrics_observe(m, "op", 200, 10.5);
    adi_metrics_observe(m, "op", 200, -1); /* clock step: counted as 0 */
    adi_buf_t b;
    render(m, &b);
    assert_has(&b, "op=\"op\",le=\"0.001\"} 2\n");
    assert_has(&b, "op=\"op\",le=\"0.0025\"} 3\n");
    assert_has(&b, "op=\"op\",le=\"5\"} 3\n");
    assert_has(&b, "op=\"op\",le=\"10\"} 4\n");
    assert_has(&b, "op=\"op\",le=\"+Inf\"} 5\n");
    assert_has(&b, "adi_request_duration_seconds_count{service=\"svc\",op=\"op\"} 5\n");
    adi_buf_dispose(&b);
    adi_metrics_free(m);
}

static void test_counters_gauges_and_escaping(void **state)
{
    (void)state;
    adi_metrics_t *m = adi_metrics_new("ta\"sk\\runner");
    adi_metrics_count(m, "reclaimed_total", "stream=\"svc:{auth}:req\"", 2);
    adi_metrics_count(m, "adi_reclaimed_total", "stream=\"svc:{auth}:req\"", 3);
    adi_metrics_count(m, "reclaimed_total", NULL, 1);
    adi_metrics_gauge(m, "backlog", "stream=\"a\"b\\c\nd\",group=\"g\"", 7);
    adi_metrics_gauge(m, "backlog", "stream=\"a\"b\\c\nd\",group=\"g\"", 5.5);
    adi_metrics_observe(m, "we\"ird\\op\n", 404, 0.01);
    adi_buf_t b;
    render(m, &b);
    assert_well_formed(&b);
    assert_has(&b, "# TYPE adi_reclaimed_total counter\n");
    assert_has(&b, "adi_reclaimed_total{service=\"ta\\\"sk\\\\runner\","
                   "stream=\"svc:{auth}:req\"} 5\n");
    assert_has(&b, "adi_reclaimed_total{service=\"ta\\\"sk\\\\runner\"} 1\n");
    assert_has(&b, "# TYPE adi_backlog gauge\n");
    assert_has(&b, "adi_backlog{service=\"ta\\\"sk\\\\runner\",stream=\"a\\\"b\\\\c\\nd\","
                   "group=\"g\"} 5.5\n");
    assert_has(&b, "op=\"we\\\"ird\\\\op\\n\",status=\"404\"} 1\n");
    /* One TYPE line per family. */
    assert_int_equal(count_lines_with(&b, "# TYPE adi_reclaimed_total"), 1);
    adi_buf_dispose(&b);
    adi_metrics_free(m);
}

static void test_bad_input_is_dropped(void **state)
{
    (void)state;
    adi_metrics_t *m = adi_metrics_new("svc");
    adi_metrics_count(m, "ok_total", "stream=unquoted", 1);      /* malformed labels */
    adi_metrics_count(m, "ok_total", "=\"x\"", 1);               /* empty label name */
    adi_metrics_count(m, "ok_total", "a=\"x\",", 1);             /* trailing comma */
    adi_metrics_count(m, "ok_total", "service=\"forged\"", 1);   /* reserved label */
    adi_metrics_count(m, "bad name", "", 1);                     /* invalid metric name */
    adi_metrics_count(m, "", "", 1);                             /* empty metric name */
    adi_metrics_count(m, NULL, "", 1);                           /* no metric name */
    adi_metrics_count(m, "requests_total", "", 1);               /* a built-in family */
    adi_metrics_gauge(m, "request_duration_seconds_sum", "", 1); /* a built-in family */
    adi_metrics_count(m, "mixed", "", 1);
    adi_metrics_gauge(m, "mixed", "x=\"1\"", 1); /* counter name as gauge */
    adi_metrics_count(m, "ok_total", "", -5);    /* counters never go down */
    adi_buf_t b;
    render(m, &b);
    assert_well_formed(&b);
    assert_has(&b, "adi_metrics_dropped_total{service=\"svc\"} 10\n");
    assert_has(&b, "adi_mixed{service=\"svc\"} 1\n");
    assert_null(strstr(b.data, "forged"));
    assert_null(strstr(b.data, "adi_ok_total"));
    assert_int_equal(count_lines_with(&b, "# TYPE adi_requests_total"), 0);
    adi_buf_dispose(&b);
    adi_metrics_free(m);
}

static void test_series_bound(void **state)
{
    (void)state;
    adi_metrics_t *m = adi_metrics_new("svc");
    char labels[64];
    for (int i = 0; i < ADI_OPS__MAX_SERIES + 10; i++) {
        snprintf(labels, sizeof(labels), "id=\"%d\"", i);
        adi_metrics_gauge(m, "g", labels, i);
    }
    /* Existing series still update once the bound is reached. */
    adi_metrics_gauge(m, "g", "id=\"0\"", 42);
    /* New operations are refused too, and so are their request counters. */
    adi_metrics_observe(m, "late.op", 200, 0.1);
    adi_buf_t b;
    render(m, &b);
    assert_well_formed(&b);
    assert_int_equal(count_lines_with(&b, "adi_g{"), ADI_OPS__MAX_SERIES);
    assert_has(&b, "adi_g{service=\"svc\",id=\"0\"} 42\n");
    assert_null(strstr(b.data, "late.op"));
    assert_has(&b, "adi_metrics_dropped_total{service=\"svc\"} 11\n");
    adi_buf_dispose(&b);
    adi_metrics_free(m);
}

#define THREADS    4
#define PER_THREAD 2000

static void *record(void *arg)
{
    adi_metrics_t *m = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        adi_metrics_observe(m, i % 2 ? "a" : "b", 200, 0.01);
        adi_metrics_count(m, "events_total", "", 1);
    }
    return NULL;
}

static void test_concurrent_recording(void **state)
{
    (void)state;
    adi_metrics_t *m = adi_metrics_new("svc");
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, record, m), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    adi_buf_t b;
    render(m, &b);
    assert_has(&b, "adi_request_duration_seconds_count{service=\"svc\",op=\"a\"} 4000\n");
    assert_has(&b, "adi_request_duration_seconds_count{service=\"svc\",op=\"b\"} 4000\n");
    assert_has(&b, "adi_events_total{service=\"svc\"} 8000\n");
    adi_buf_dispose(&b);
    adi_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_families),
        cmocka_unit_test(test_bucket_boundaries),
        cmocka_unit_test(test_counters_gauges_and_escaping),
        cmocka_unit_test(test_bad_input_is_dropped),
        cmocka_unit_test(test_series_bound),
        cmocka_unit_test(test_concurrent_recording),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
