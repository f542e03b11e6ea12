/* SPDX-License-Identifier: MIT */
/*
 * The metrics registry behind /metrics: per-operation request counters, error counters and latency
 * histograms, plus free-form counters and gauges, rendered in the Prometheus text format 0.0.4.
 *
 * The registry is fixed-size and protected by one mutex: recording is a short critical section
 * (a linear lookup among a few dozen operations and an add), and rendering copies nothing out but
 * holds the lock while it formats. The number of series is bounded so that a caller that puts an
 * unbounded value (a user id, a path) into a label cannot grow the process without limit: past the
 * bound new series are dropped and counted in adi_metrics_dropped_total. Every series carries the
 * constant label service="<name>". Label values are escaped once, when a series is created.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adi/ops.h"
#include "ops_int.h"

/* Upper bounds of the latency buckets in seconds; the +Inf bucket follows them. */
static const double bucket_bounds[] = {.001, .0025, .005, .01, .025, .05, .1,
                                       .25,  .5,    1,    2.5, 5,    10};
static const char *const bucket_labels[] = {"0.001", "0.0025", "0.005", "0.01", "0.025",
                                            "0.05",  "0.1",    "0.25",  "0.5",  "1",
                                            "2.5",   "5",      "10",    "+Inf"};
#define NBOUNDS  (sizeof(bucket_bounds) / sizeof(bucket_bounds[0]))
#define NBUCKETS (NBOUNDS + 1)

/* Families the registry renders itself; free-form metrics may not reuse their names. */
static const char *const reserved_names[] = {"adi_requests_total", "adi_errors_total",
                                             "adi_request_duration_seconds",
                                             "adi_metrics_dropped_total"};

typedef enum series_kind {
    KIND_COUNTER, /* monotonic, rendered as counter */
    KIND_GAUGE,   /* settable, rendered as gauge */
} series_kind;

/* One operation: its latency histogram and error count. */
typedef struct op_stat {
    char *name;                 /* operation name as given (lookup key), heap copy */
    char *label;                /* the name escaped for a label value, heap copy */
    uint64_t buckets[NBUCKETS]; /* observations per bucket, not cumulative; last is +Inf */
    double sum;                 /* total seconds observed */
    uint64_t count;             /* observations */
    uint64_t errors;            /* observations with status >= 500 */
} op_stat_t;

/* One adi_requests_total{op,status} counter. */
typedef struct status_stat {
    size_t op;  /* index into ops[] */
    int status; /* HTTP-like status */
    uint64_t n; /* requests */
} status_stat_t;

/* One free-form counter or gauge. */
typedef struct series {
    char *name;       /* full metric name (adi_ prefixed), heap copy */
    char *raw_labels; /* label set as the caller passed it (lookup key), heap copy */
    char *labels;     /* rendered label pairs after service="...", escaped; may be "" */
    series_kind kind; /* counter or gauge */
    double v;         /* current value */
} series_t;

struct adi_metrics {
    pthread_mutex_t mu;              /* guards everything below */
    char *service;                   /* service label value, escaped */
    op_stat_t ops[ADI_OPS__MAX_OPS]; /* operations seen, in order of first use */
    size_t nops;                     /* used entries of ops[] */
    status_stat_t *statuses;         /* (op, status) counters, ADI_OPS__MAX_SERIES slots */
    size_t nstatuses;                /* used entries of statuses[] */
    series_t *series;                /* free-form series, ADI_OPS__MAX_SERIES slots */
    size_t nseries;                  /* used entries of series[] */
    size_t used;                     /* series of every kind, bounded by ADI_OPS__MAX_SERIES */
    uint64_t dropped;                /* series refused because of a bound or a bad name */
};

/* Appends `s` escaped for a label value: backslash, double quote and newline. */
static void escape_into(adi_buf_t *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\')
            adi_buf_append(b, "\\\\", 2);
        else if (s[i] == '"')
            adi_buf_append(b, "\\\"", 2);
        else if (s[i] == '\n')
            adi_buf_append(b, "\\n", 2);
        else
            adi_buf_append(b, &s[i], 1);
    }
}

static char *escape_dup(const char *s)
{
    adi_buf_t b;
    adi_buf_init(&b);
    escape_into(&b, s, strlen(s));
    adi_buf_append(&b, "", 0);
    char *out = adi_xstrdup(b.data != NULL ? b.data : "");
    adi_buf_dispose(&b);
    return out;
}

/* Formats a sample value: integers exactly, others with the shortest round-tripping precision. */
static void append_num(adi_buf_t *b, double v)
{
    if (isnan(v)) {
        adi_buf_append_str(b, "NaN");
        return;
    }
    if (isinf(v)) {
        adi_buf_append_str(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        adi_buf_printf(b, "%lld", (long long)v);
        return;
    }
    char tmp[40];
    snprintf(tmp, sizeof(tmp), "%.15g", v);
    if (strtod(tmp, NULL) != v)
        snprintf(tmp, sizeof(tmp), "%.17g", v);
    adi_buf_append_str(b, tmp);
}

adi_metrics_t *adi_metrics_new(const char *service)
{
    adi_metrics_t *m = adi_xcalloc(1, sizeof(*m));
    if (pthread_mutex_init(&m->mu, NULL) != 0)
        adi__oom(sizeof(m->mu), __FILE__, __LINE__);
    m->service = escape_dup(service != NULL ? service : "");
    m->statuses = adi_xcalloc(ADI_OPS__MAX_SERIES, sizeof(*m->statuses));
    m->series = adi_xcalloc(ADI_OPS__MAX_SERIES, sizeof(*m->series));
    return m;
}

void adi_metrics_free(adi_metrics_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nops; i++) {
        free(m->ops[i].name);
        free(m->ops[i].label);
    }
    for (size_t i = 0; i < m->nseries; i++) {
        free(m->series[i].name);
        free(m->series[i].raw_labels);
        free(m->series[i].labels);
    }
    free(m->statuses);
    free(m->series);
    free(m->service);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* Finds or creates the operation `op`; NULL when a bound refuses it. Called with the lock held. */
static op_stat_t *find_op(adi_metrics_t *m, const char *op)
{
    for (size_t i = 0; i < m->nops; i++)
        if (strcmp(m->ops[i].name, op) == 0)
            return &m->ops[i];
    if (m->nops >= ADI_OPS__MAX_OPS || m->used >= ADI_OPS__MAX_SERIES ||
        strlen(op) > ADI_OPS__MAX_OP) {
        m->dropped++;
        return NULL;
    }
    op_stat_t *s = &m->ops[m->nops++];
    s->name = adi_xstrdup(op);
    s->label = escape_dup(op);
    m->used++;
    return s;
}

static size_t bucket_of(double seconds)
{
    for (size_t i = 0; i < NBOUNDS; i++)
        if (seconds <= bucket_bounds[i])
            return i;
    return NBOUNDS;
}

void adi_metrics_observe(adi_metrics_t *m, const char *op, int status, double seconds)
{
    if (m == NULL)
        return;
    if (op == NULL)
        op = "unknown";
    if (!(seconds >= 0)) /* negative or NaN: a clock step, count it as instant */
        seconds = 0;
    pthread_mutex_lock(&m->mu);
    op_stat_t *s = find_op(m, op);
    if (s == NULL)
        goto out;
    size_t idx = (size_t)(s - m->ops);
    s->buckets[bucket_of(seconds)]++;
    s->sum += seconds;
    s->count++;
    if (status >= 500)
        s->errors++;
    for (size_t i = 0; i < m->nstatuses; i++) {
        if (m->statuses[i].op == idx && m->statuses[i].status == status) {
            m->statuses[i].n++;
            goto out;
        }
    }
    if (m->used >= ADI_OPS__MAX_SERIES) {
        m->dropped++;
        goto out;
    }
    m->statuses[m->nstatuses++] = (status_stat_t){.op = idx, .status = status, .n = 1};
    m->used++;
out:
    pthread_mutex_unlock(&m->mu);
}

static bool name_char(char c, bool first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':')
        return true;
    return !first && c >= '0' && c <= '9';
}

/* Builds "adi_<name>" (unless already prefixed) into `out`; false for an invalid name. */
static bool full_name(const char *name, char out[ADI_OPS__MAX_NAME + 5])
{
    if (name == NULL || name[0] == '\0' || strlen(name) > ADI_OPS__MAX_NAME)
        return false;
    for (size_t i = 0; name[i] != '\0'; i++)
        if (!name_char(name[i], i == 0))
            return false;
    snprintf(out, ADI_OPS__MAX_NAME + 5, "%s%s", strncmp(name, "adi_", 4) == 0 ? "" : "adi_", name);
    for (size_t i = 0; i < sizeof(reserved_names) / sizeof(reserved_names[0]); i++)
        if (strncmp(out, reserved_names[i], strlen(reserved_names[i])) == 0)
            return false;
    return true;
}

/*
 * Parses the caller's label set `k="v",k2="v2"` (raw values: a value ends at a double quote that
 * is followed by a comma or the end) and renders it escaped, each pair prefixed by a comma, into
 * `out`. False when the set is malformed or uses a reserved label name.
 */
static bool render_labels(const char *in, adi_buf_t *out)
{
    const char *p = in;
    while (*p != '\0') {
        const char *k = p;
        while (name_char(*p, p == k) && *p != ':')
            p++;
        size_t klen = (size_t)(p - k);
        if (klen == 0 || p[0] != '=' || p[1] != '"')
            return false;
        if ((klen == 7 && strncmp(k, "service", 7) == 0) || strncmp(k, "__", 2) == 0)
            return false;
        p += 2;
        const char *v = p;
        const char *end = NULL;
        for (const char *q = p; *q != '\0'; q++) {
            if (*q == '"' && (q[1] == ',' || q[1] == '\0')) {
                end = q;
                break;
            }
        }
        if (end == NULL)
            return false;
        adi_buf_append(out, ",", 1);
        adi_buf_append(out, k, klen);
        adi_buf_append(out, "=\"", 2);
        escape_into(out, v, (size_t)(end - v));
        adi_buf_append(out, "\"", 1);
        p = end + 1;
        if (*p == ',') {
            p++;
            if (*p == '\0')
                return false;
        }
    }
    return true;
}

/* Finds or creates a free-form series; NULL when refused. Called with the lock held. */
static series_t *find_series(adi_metrics_t *m, const char *name, const char *labels,
                             series_kind kind)
{
    char full[ADI_OPS__MAX_NAME + 5];
    if (labels == NULL)
        labels = "";
    if (!full_name(name, full) || strlen(labels) > ADI_OPS__MAX_LABELS) {
        m->dropped++;
        return NULL;
    }
    for (size_t i = 0; i < m->nseries; i++) {
        series_t *s = &m->series[i];
        if (strcmp(s->name, full) != 0)
            continue;
        if (s->kind != kind) {
            /* One name is either a counter or a gauge, never both. */
            m->dropped++;
            return NULL;
        }
        if (strcmp(s->raw_labels, labels) == 0)
            return s;
    }
    if (m->used >= ADI_OPS__MAX_SERIES) {
        m->dropped++;
        return NULL;
    }
    adi_buf_t b;
    adi_buf_init(&b);
    bool ok = render_labels(labels, &b);
    adi_buf_append(&b, "", 0);
    if (!ok) {
        adi_buf_dispose(&b);
        m->dropped++;
        return NULL;
    }
    series_t *s = &m->series[m->nseries++];
    s->name = adi_xstrdup(full);
    s->raw_labels = adi_xstrdup(labels);
    s->labels = adi_xstrdup(b.data != NULL ? b.data : "");
    s->kind = kind;
    s->v = 0;
    m->used++;
    adi_buf_dispose(&b);
    return s;
}

void adi_metrics_count(adi_metrics_t *m, const char *name, const char *labels, double v)
{
    if (m == NULL || !(v >= 0)) /* counters never go down; NaN is ignored too */
        return;
    pthread_mutex_lock(&m->mu);
    series_t *s = find_series(m, name, labels, KIND_COUNTER);
    if (s != NULL)
        s->v += v;
    pthread_mutex_unlock(&m->mu);
}

void adi_metrics_gauge(adi_metrics_t *m, const char *name, const char *labels, double v)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->mu);
    series_t *s = find_series(m, name, labels, KIND_GAUGE);
    if (s != NULL)
        s->v = v;
    pthread_mutex_unlock(&m->mu);
}

static void family(adi_buf_t *out, const char *name, const char *type, const char *help)
{
    if (help != NULL)
        adi_buf_printf(out, "# HELP %s %s\n", name, help);
    adi_buf_printf(out, "# TYPE %s %s\n", name, type);
}

/* A free-form series' place in the rendering order. */
typedef struct series_ref {
    const char *name; /* the series' metric name */
    size_t i;         /* its index in series[], the creation order */
} series_ref_t;

/* Orders free-form series by name, then by creation, so that each family is contiguous. */
static int cmp_series(const void *a, const void *b)
{
    const series_ref_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    return x->i < y->i ? -1 : x->i > y->i;
}

static void render_ops(adi_metrics_t *m, adi_buf_t *out)
{
    if (m->nstatuses > 0)
        family(out, "adi_requests_total", "counter", "Requests handled, by operation and status.");
    for (size_t i = 0; i < m->nstatuses; i++) {
        const status_stat_t *s = &m->statuses[i];
        adi_buf_printf(out, "adi_requests_total{service=\"%s\",op=\"%s\",status=\"%d\"} ",
                       m->service, m->ops[s->op].label, s->status);
        append_num(out, (double)s->n);
        adi_buf_append(out, "\n", 1);
    }
    if (m->nops == 0)
        return;
    family(out, "adi_errors_total", "counter", "Requests that failed with a 5xx status.");
    for (size_t i = 0; i < m->nops; i++) {
        adi_buf_printf(out, "adi_errors_total{service=\"%s\",op=\"%s\"} ", m->service,
                       m->ops[i].label);
        append_num(out, (double)m->ops[i].errors);
        adi_buf_append(out, "\n", 1);
    }
    family(out, "adi_request_duration_seconds", "histogram", "Request latency in seconds.");
    for (size_t i = 0; i < m->nops; i++) {
        const op_stat_t *s = &m->ops[i];
        uint64_t cum = 0;
        for (size_t b = 0; b < NBUCKETS; b++) {
            cum += s->buckets[b];
            adi_buf_printf(
                out, "adi_request_duration_seconds_bucket{service=\"%s\",op=\"%s\",le=\"%s\"} ",
                m->service, s->label, bucket_labels[b]);
            append_num(out, (double)cum);
            adi_buf_append(out, "\n", 1);
        }
        adi_buf_printf(out, "adi_request_duration_seconds_sum{service=\"%s\",op=\"%s\"} ",
                       m->service, s->label);
        append_num(out, s->sum);
        adi_buf_printf(out, "\nadi_request_duration_seconds_count{service=\"%s\",op=\"%s\"} ",
                       m->service, s->label);
        append_num(out, (double)s->count);
        adi_buf_append(out, "\n", 1);
    }
}

static void render_series(adi_metrics_t *m, adi_buf_t *out)
{
    if (m->nseries == 0)
        return;
    series_ref_t *refs = adi_xmalloc(m->nseries * sizeof(*refs));
    for (size_t i = 0; i < m->nseries; i++)
        refs[i] = (series_ref_t){m->series[i].name, i};
    qsort(refs, m->nseries, sizeof(*refs), cmp_series);
    const char *prev = NULL;
    for (size_t i = 0; i < m->nseries; i++) {
        const series_t *s = &m->series[refs[i].i];
        if (prev == NULL || strcmp(prev, s->name) != 0)
            family(out, s->name, s->kind == KIND_COUNTER ? "counter" : "gauge", NULL);
        prev = s->name;
        adi_buf_printf(out, "%s{service=\"%s\"%s} ", s->name, m->service, s->labels);
        append_num(out, s->v);
        adi_buf_append(out, "\n", 1);
    }
    free(refs);
}

void adi_metrics_render(adi_metrics_t *m, adi_buf_t *out)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->mu);
    render_ops(m, out);
    render_series(m, out);
    family(out, "adi_metrics_dropped_total", "counter",
           "Metric series refused because of the series bound or a malformed name or label.");
    adi_buf_printf(out, "adi_metrics_dropped_total{service=\"%s\"} ", m->service);
    append_num(out, (double)m->dropped);
    adi_buf_append(out, "\n", 1);
    pthread_mutex_unlock(&m->mu);
}
