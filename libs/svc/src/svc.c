/* SPDX-License-Identifier: MIT */
/*
 * The life of a service: the common configuration table, building the op hash table from the
 * handler rows, starting and stopping the worker threads, the readiness check behind /readyz and
 * adi_svc_run, which ties configuration, logging, the ops server, the workers and SIGTERM
 * draining together for a service's main().
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adi/keys.h"
#include "svc_int.h"

/* ---- configuration ---------------------------------------------------------------------- */

#define CFG(field, env, type, def, flags, min, max, help)                                          \
    ADI_CFG(adi_svc_config_t, field, env, type, def, flags, min, max, help)

/* The common rows; OPS_PORT's default is patched per service (index OPS_PORT_ROW). */
static const adi_cfg_row_t common_rows[] = {
    CFG(redis_url, "REDIS_URL", STR, "redis://127.0.0.1:6379", ADI_CFG_SECRET, 0, 0,
        "Redis URL, redis://[[user]:password@]host[:port][/db]"),
    CFG(database_url, "DATABASE_URL", STR, "postgresql://postgres@127.0.0.1:5432/adinsights",
        ADI_CFG_SECRET, 0, 0, "PostgreSQL URL of the service's own role"),
    CFG(workers, "WORKERS", INT, "4", 0, 1, 64,
        "worker threads (one Redis and one PostgreSQL "
        "connection each)"),
    CFG(ops_host, "OPS_HOST", STR, "127.0.0.1", 0, 0, 0, "address of the ops port"),
    CFG(ops_port, "OPS_PORT", INT, "0", 0, 0, 65535,
        "ops port (/healthz, /readyz, /metrics); 0 picks a free port and logs it"),
    CFG(log_level, "LOG_LEVEL", STR, "info", 0, 0, 0, "debug, info, warn or error"),
    CFG(time_zone, "TIME_ZONE", STR, "America/Jamaica", 0, 0, 0, "IANA time zone of timestamps"),
    CFG(app_version, "APP_VERSION", STR, "0.1.0", 0, 0, 0, "version reported by health"),
    CFG(consumer_name, "CONSUMER_NAME", STR, "", 0, 0, 0,
        "consumer name prefix (pod name); empty means hostname-pid"),
    CFG(stream_maxlen, "STREAM_MAXLEN", INT, "100000", 0, 100, INT64_C(1000000000),
        "approximate cap (MAXLEN ~) of every stream written"),
    CFG(reclaim_idle_ms, "RECLAIM_IDLE_MS", INT, "30000", 0, 1, INT64_C(86400000),
        "entries pending this long with a consumer are reclaimed by another"),
    CFG(shutdown_grace_ms, "SHUTDOWN_GRACE_MS", INT, "25000", 0, 100, INT64_C(3600000),
        "time to finish in-flight requests after SIGTERM"),
};
#define NCOMMON  (sizeof(common_rows) / sizeof(common_rows[0]))
#define OPS_ROW  4
#define MAX_ROWS 128

void adi_svc_config_defaults(adi_svc_config_t *cfg, int ops_port)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->redis_url = "redis://127.0.0.1:6379";
    cfg->database_url = "postgresql://postgres@127.0.0.1:5432/adinsights";
    cfg->workers = 4;
    cfg->ops_host = "127.0.0.1";
    cfg->ops_port = ops_port;
    cfg->log_level = "info";
    cfg->time_zone = "America/Jamaica";
    cfg->app_version = "0.1.0";
    cfg->consumer_name = "";
    cfg->stream_maxlen = 100000;
    cfg->reclaim_idle_ms = 30000;
    cfg->shutdown_grace_ms = 25000;
}

/* ---- op table --------------------------------------------------------------------------- */

static uint32_t fnv1a(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 16777619u;
    }
    return h;
}

const adi_svc_handler_t *adi_svc__find(const adi_svc_t *svc, adi_str_t name)
{
    if (name.ptr == NULL)
        return NULL;
    uint32_t h = fnv1a(name.ptr, name.len);
    for (uint32_t i = h & svc->mask;; i = (i + 1) & svc->mask) {
        const adi_svc_slot_t *s = &svc->slots[i];
        if (s->h == NULL)
            return NULL;
        if (s->hash == h && adi_str_eq_c(name, s->h->op->name))
            return s->h;
    }
}

static adi_err add_handler(adi_svc_t *svc, const adi_svc_handler_t *h, adi_error_t *err)
{
    const adi_op_desc_t *op = h->op;
    if (op == NULL || op->name == NULL || h->fn == NULL)
        return adi_error_set(err, ADI_INVALID, "handler row without an operation or function");
    if (h->req != op->req || h->rep != op->rep)
        return adi_error_set(err, ADI_INVALID, "handler of %s takes types other than the op's",
                             op->name);
    if ((h->flags & ADI_SVC_NOTX) && (op->flags & ADI_OP_MUTATING))
        return adi_error_set(err, ADI_INVALID, "mutating op %s cannot run without a transaction",
                             op->name);
    if (op->service == NULL ||
        (strcmp(op->service, "*") != 0 && strcmp(op->service, svc->def->name) != 0))
        return adi_error_set(err, ADI_INVALID, "op %s belongs to service %s, not %s", op->name,
                             op->service ? op->service : "(none)", svc->def->name);
    adi_str_t name = adi_str_c(op->name);
    if (adi_svc__find(svc, name) != NULL)
        return adi_error_set(err, ADI_INVALID, "op %s has two handlers", op->name);
    uint32_t hash = fnv1a(name.ptr, name.len);
    uint32_t i = hash & svc->mask;
    while (svc->slots[i].h != NULL)
        i = (i + 1) & svc->mask;
    svc->slots[i].h = h;
    svc->slots[i].hash = hash;
    return ADI_OK;
}

static adi_err build_table(adi_svc_t *svc, adi_error_t *err)
{
    size_t n = 2;
    for (const adi_svc_handler_t *const *p = svc->def->handlers; p && *p; p++)
        n++;
    uint32_t size = 8;
    while (size < 2 * n)
        size *= 2;
    svc->slots = adi_xcalloc(size, sizeof(*svc->slots));
    svc->mask = size - 1;
    adi_err rc = add_handler(svc, &adi_svc__health_row, err);
    if (rc == ADI_OK)
        rc = add_handler(svc, &adi_svc__settled_row, err);
    for (const adi_svc_handler_t *const *p = svc->def->handlers; rc == ADI_OK && p && *p; p++)
        rc = add_handler(svc, *p, err);
    return rc;
}

/* ---- lifetime --------------------------------------------------------------------------- */

static bool valid_name(const char *s);

/* Threads of consumer `c` under configuration `cfg`. */
static int consumer_threads(const adi_svc_consumer_t *c, const adi_svc_config_t *cfg)
{
    return c->threads > 0 ? c->threads : (int)cfg->workers;
}

/* Checks the consumer table; returns the number of event workers it asks for in *n. */
static adi_err check_consumers(const adi_svc_def_t *def, const adi_svc_config_t *cfg, int *n,
                               adi_error_t *err)
{
    *n = 0;
    for (const adi_svc_consumer_t *const *p = def->consumers; p && *p; p++) {
        const adi_svc_consumer_t *c = *p;
        if (c->stream == NULL || c->stream[0] == '\0' || strlen(c->stream) > 200 ||
            c->msg == NULL || c->fn == NULL)
            return adi_error_set(err, ADI_INVALID,
                                 "consumer row without a stream, a message type or a handler");
        if (!valid_name(c->group))
            return adi_error_set(err, ADI_INVALID,
                                 "consumer group of %s must be 1-64 of "
                                 "[a-z0-9_.-]",
                                 c->stream);
        if (c->threads < 0 || c->threads > 64)
            return adi_error_set(err, ADI_INVALID, "consumer %s/%s: threads must be 0..64",
                                 c->stream, c->group);
        for (const adi_svc_consumer_t *const *q = def->consumers; q != p; q++)
            if (strcmp((*q)->stream, c->stream) == 0 && strcmp((*q)->group, c->group) == 0)
                return adi_error_set(err, ADI_INVALID, "two consumers of %s in group %s", c->stream,
                                     c->group);
        *n += consumer_threads(c, cfg);
    }
    return ADI_OK;
}

/* Sets up worker `w` (bus client, names) for the request stream (c NULL) or consumer `c`. */
static adi_err worker_init(adi_svc_t *svc, adi_svc_worker_t *w, const adi_svc_consumer_t *c,
                           int index, adi_error_t *err)
{
    const adi_svc_def_t *def = svc->def;
    w->svc = svc;
    w->ev = c;
    w->index = index;
    if (c == NULL) {
        w->stream = svc->stream;
        w->group = def->name;
        snprintf(w->label, sizeof(w->label), "%s", svc->stream_label);
        snprintf(w->consumer, sizeof(w->consumer), "%s-w%d", svc->consumer_base, index);
    } else {
        w->stream = c->stream;
        w->group = c->group;
        snprintf(w->label, sizeof(w->label), "stream=\"%s\",group=\"%s\"", c->stream, c->group);
        snprintf(w->consumer, sizeof(w->consumer), "%s-%s-w%d", svc->consumer_base, c->group,
                 index);
    }
    snprintf(w->reply_stream, sizeof(w->reply_stream), ADI_KEY_SVC_REP_FMT, def->name, w->consumer);
    adi_buf_init(&w->out);
    adi_bus_opts_t bo = {.url = svc->cfg.redis_url,
                         .maxlen = svc->cfg.stream_maxlen,
                         .reply_stream = w->reply_stream};
    return adi_bus_new(&bo, &w->bus, err);
}

static bool valid_ident(const char *s)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > 63 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

static bool valid_name(const char *s)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' ||
              *p == '.'))
            return false;
    return true;
}

/* Builds "<head><schema><tail>" (the schema is a checked identifier, never input). */
static char *sql_with_schema(const char *head, const char *schema, const char *tail)
{
    size_t n = strlen(head) + strlen(schema) + strlen(tail);
    char *p = adi_xmalloc(n + 1);
    snprintf(p, n + 1, "%s%s%s", head, schema, tail);
    return p;
}

adi_err adi_svc_new(const adi_svc_def_t *def, const adi_svc_config_t *cfg, adi_metrics_t *metrics,
                    adi_svc_t **out, adi_error_t *err)
{
    *out = NULL;
    if (!valid_name(def->name))
        return adi_error_set(err, ADI_INVALID, "service name must be 1-64 of [a-z0-9_.-]");
    if (!valid_ident(def->schema))
        return adi_error_set(err, ADI_INVALID, "schema must be a lower-case SQL identifier");
    if (cfg->workers < 1 || cfg->workers > 64)
        return adi_error_set(err, ADI_INVALID, "WORKERS must be 1..64");
    if (def->chore != NULL && def->chore_ms <= 0)
        return adi_error_set(err, ADI_INVALID, "a chore needs a period (chore_ms > 0)");

    adi_svc_t *svc = adi_xcalloc(1, sizeof(*svc));
    svc->def = def;
    svc->cfg = *cfg;
    snprintf(svc->stream, sizeof(svc->stream), ADI_KEY_REQ_FMT, def->name);
    snprintf(svc->stream_label, sizeof(svc->stream_label), "stream=\"%s\"", svc->stream);
    if (cfg->consumer_name != NULL && cfg->consumer_name[0] != '\0') {
        snprintf(svc->consumer_base, sizeof(svc->consumer_base), "%s", cfg->consumer_name);
    } else {
        char host[64] = "host";
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        snprintf(svc->consumer_base, sizeof(svc->consumer_base), "%s-%ld", host, (long)getpid());
    }
    svc->sql_select = sql_with_schema("SELECT op, reply FROM ", def->schema,
                                      ".adi_idempotency WHERE request_id = $1");
    svc->sql_insert = sql_with_schema("INSERT INTO ", def->schema,
                                      ".adi_idempotency (request_id, op, reply) "
                                      "VALUES ($1, $2, $3)");
    svc->sql_fence = sql_with_schema("INSERT INTO ", def->schema,
                                     ".adi_idempotency (request_id, op, reply) "
                                     "VALUES ($1, '" ADI_SVC__ABANDONED "', ''::bytea) "
                                     "ON CONFLICT (request_id) DO NOTHING RETURNING 1");
    svc->sql_cleanup = sql_with_schema("DELETE FROM ", def->schema,
                                       ".adi_idempotency WHERE created_at < now() - "
                                       "interval '1 day'");
    svc->sql_outbox_exists =
        sql_with_schema("SELECT to_regclass('", def->schema, ".adi_outbox') IS NOT NULL");
    svc->sql_outbox_insert = sql_with_schema("INSERT INTO ", def->schema,
                                             ".adi_outbox (stream, msg) VALUES ($1, $2) "
                                             "RETURNING id");
    svc->sql_outbox_delete =
        sql_with_schema("DELETE FROM ", def->schema, ".adi_outbox WHERE id = ANY($1::bigint[])");
    svc->sql_outbox_due =
        sql_with_schema("SELECT id, stream, msg FROM ", def->schema,
                        ".adi_outbox WHERE created_at < now() - interval '" ADI_SVC__OUTBOX_GRACE_S
                        " seconds' ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED");
    atomic_init(&svc->stop, false);
    atomic_init(&svc->group_joined, false);
    atomic_init(&svc->redis_down, 0);
    atomic_init(&svc->db_down, 0);
    pthread_mutex_init(&svc->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&svc->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (metrics != NULL) {
        svc->metrics = metrics;
    } else {
        svc->metrics = adi_metrics_new(def->name);
        svc->own_metrics = true;
    }

    int nevents = 0;
    adi_err rc = build_table(svc, err);
    if (rc == ADI_OK)
        rc = check_consumers(def, cfg, &nevents, err);
    svc->nrequest = (int)cfg->workers;
    svc->nworkers = svc->nrequest + nevents;
    svc->workers = adi_xcalloc((size_t)svc->nworkers, sizeof(*svc->workers));
    int at = 0;
    for (int i = 0; rc == ADI_OK && i < svc->nrequest; i++)
        rc = worker_init(svc, &svc->workers[at++], NULL, i, err);
    for (const adi_svc_consumer_t *const *p = def->consumers; rc == ADI_OK && p && *p; p++)
        for (int i = 0; rc == ADI_OK && i < consumer_threads(*p, cfg); i++)
            rc = worker_init(svc, &svc->workers[at++], *p, i, err);
    if (rc == ADI_OK && def->init != NULL)
        rc = def->init(&svc->cfg, def->cfg, &svc->app, err);
    if (rc != ADI_OK) {
        adi_svc_free(svc);
        return rc;
    }
    *out = svc;
    return ADI_OK;
}

adi_err adi_svc_start(adi_svc_t *svc, adi_error_t *err)
{
    if (svc->started)
        return adi_error_set(err, ADI_INTERNAL, "service already started");
    svc->started = true;
    for (int i = 0; i < svc->nworkers; i++) {
        adi_svc_worker_t *w = &svc->workers[i];
        pthread_mutex_lock(&svc->mu);
        svc->running++;
        pthread_mutex_unlock(&svc->mu);
        if (pthread_create(&w->thread, NULL, adi_svc__worker_main, w) != 0) {
            pthread_mutex_lock(&svc->mu);
            svc->running--;
            pthread_mutex_unlock(&svc->mu);
            adi_svc_stop(svc);
            for (int j = 0; j < i; j++) {
                pthread_join(svc->workers[j].thread, NULL);
                svc->workers[j].started = false;
            }
            return adi_error_set(err, ADI_INTERNAL, "cannot start worker thread %d", i);
        }
        w->started = true;
    }
    if (svc->def->start != NULL && svc->app != NULL) {
        adi_err rc = svc->def->start(svc->app, svc->metrics, err);
        if (rc != ADI_OK) {
            adi_svc_stop(svc); /* adi_svc_free joins the workers */
            return rc;
        }
    }
    return ADI_OK;
}

void adi_svc_stop(adi_svc_t *svc)
{
    atomic_store(&svc->stop, true);
    if (svc->def->stop != NULL && svc->app != NULL)
        svc->def->stop(svc->app);
    pthread_mutex_lock(&svc->mu);
    pthread_cond_broadcast(&svc->cv);
    pthread_mutex_unlock(&svc->mu);
}

static struct timespec mono_after(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

bool adi_svc_wait(adi_svc_t *svc, int64_t timeout_ms)
{
    struct timespec until = mono_after(timeout_ms);
    pthread_mutex_lock(&svc->mu);
    int rc = 0;
    while (svc->running > 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&svc->cv, &svc->mu, &until);
    bool done = svc->running == 0;
    pthread_mutex_unlock(&svc->mu);
    return done;
}

void adi_svc__nap(adi_svc_t *svc, int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec until = mono_after(ms);
    pthread_mutex_lock(&svc->mu);
    int rc = 0;
    while (!atomic_load(&svc->stop) && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&svc->cv, &svc->mu, &until);
    pthread_mutex_unlock(&svc->mu);
}

void adi_svc_free(adi_svc_t *svc)
{
    if (svc == NULL)
        return;
    adi_svc_stop(svc);
    for (int i = 0; svc->workers != NULL && i < svc->nworkers; i++) {
        adi_svc_worker_t *w = &svc->workers[i];
        if (w->started)
            pthread_join(w->thread, NULL);
        adi_bus_free(w->bus);
        adi_db_free(w->db);
        if (w->svc != NULL) /* initialised (a failed adi_svc_new may stop half-way) */
            adi_buf_dispose(&w->out);
    }
    if (svc->app != NULL && svc->def->fini != NULL)
        svc->def->fini(svc->app);
    adi_bus_free(svc->ready_bus);
    adi_db_free(svc->ready_db);
    if (svc->own_metrics)
        adi_metrics_free(svc->metrics);
    free(svc->workers);
    free(svc->slots);
    free(svc->sql_select);
    free(svc->sql_insert);
    free(svc->sql_fence);
    free(svc->sql_cleanup);
    free(svc->sql_outbox_exists);
    free(svc->sql_outbox_insert);
    free(svc->sql_outbox_delete);
    free(svc->sql_outbox_due);
    pthread_cond_destroy(&svc->cv);
    pthread_mutex_destroy(&svc->mu);
    free(svc);
}

adi_metrics_t *adi_svc_metrics(adi_svc_t *svc)
{
    return svc->metrics;
}

const char *adi_svc_stream(const adi_svc_t *svc)
{
    return svc->stream;
}

/* ---- readiness -------------------------------------------------------------------------- */

bool adi_svc_ready(adi_svc_t *svc, char why[128])
{
    if (atomic_load(&svc->stop)) {
        snprintf(why, 128, "shutting down");
        return false;
    }
    if (svc->ready_bus == NULL) {
        adi_bus_opts_t bo = {
            .url = svc->cfg.redis_url, .connect_timeout_ms = 1000, .command_timeout_ms = 1000};
        if (adi_bus_new(&bo, &svc->ready_bus, NULL) != ADI_OK) {
            snprintf(why, 128, "bad REDIS_URL");
            return false;
        }
    }
    adi_bus_group_info_t gi;
    adi_err rc = adi_bus_group_info(svc->ready_bus, svc->stream, svc->def->name, &gi, NULL);
    if (rc == ADI_UNAVAILABLE || rc == ADI_INTERNAL) {
        snprintf(why, 128, "redis unreachable");
        return false;
    }
    if (rc != ADI_OK || !atomic_load(&svc->group_joined)) {
        snprintf(why, 128, "consumer group not joined");
        return false;
    }
    if (svc->ready_db == NULL &&
        adi_db_connect(svc->cfg.database_url, &svc->ready_db, NULL) != ADI_OK) {
        snprintf(why, 128, "postgres unreachable");
        return false;
    }
    if (!adi_db_ping(svc->ready_db)) {
        snprintf(why, 128, "postgres unreachable");
        return false;
    }
    return true;
}

static bool ready_cb(void *arg, char why[128])
{
    return adi_svc_ready(arg, why);
}

/* ---- adi_svc_run ------------------------------------------------------------------------ */

static void usage(const adi_svc_def_t *def, FILE *f)
{
    fprintf(f,
            "usage: adi-%s [--config-table | --help]\n"
            "Runs the %s service. Configuration comes from the environment only;\n"
            "--config-table prints the variables as a Markdown table.\n",
            def->name, def->name);
}

int adi_svc_run(const adi_svc_def_t *def, int argc, char **argv)
{
    adi_cfg_row_t rows[MAX_ROWS];
    char ops_def[16];
    size_t nextra = def->cfg_rows ? def->ncfg_rows : 0;
    ADI_ASSERT(NCOMMON + nextra <= MAX_ROWS);
    memcpy(rows, common_rows, sizeof(common_rows));
    snprintf(ops_def, sizeof(ops_def), "%d", def->ops_port);
    rows[OPS_ROW].def = ops_def;
    if (nextra > 0)
        memcpy(rows + NCOMMON, def->cfg_rows, nextra * sizeof(rows[0]));

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config-table") == 0) {
            adi_cfg_table(rows, NCOMMON + nextra, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(def, stdout);
            return 0;
        }
        fprintf(stderr, "adi-%s: unknown argument %s\n", def->name, argv[i]);
        usage(def, stderr);
        return 2;
    }

    adi_svc_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    int bad = adi_cfg_load(rows, NCOMMON, &cfg, stderr);
    if (nextra > 0)
        bad += adi_cfg_load(def->cfg_rows, nextra, def->cfg, stderr);
    int level = adi_log_level_parse(cfg.log_level ? cfg.log_level : "");
    if (level < 0) {
        fprintf(stderr, "LOG_LEVEL: expected debug, info, warn or error\n");
        bad++;
    }
    if (bad > 0)
        return 2;
    adi_time_zone_set(cfg.time_zone);
    /* Every PostgreSQL session (libpq sends PGTZ at each connect, reconnects too) runs in the
       same zone, so a timestamp a client sends without an offset is that zone's local time, as
       Django made naive datetimes aware in TIME_ZONE. */
    if (cfg.time_zone != NULL && cfg.time_zone[0] != '\0')
        setenv("PGTZ", cfg.time_zone, 1);
    adi_log_init(def->name, (adi_log_level)level);
    adi_cfg_log(rows, NCOMMON, &cfg);
    if (nextra > 0)
        adi_cfg_log(def->cfg_rows, nextra, def->cfg);

    /* hiredis writes with write(2): a dead Redis must not kill us with SIGPIPE. SIGTERM and
       SIGINT are blocked here, before any thread starts, and taken by sigwait below. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    adi_error_t err;
    adi_error_clear(&err);
    adi_svc_t *svc = NULL;
    adi_ops_t *ops = NULL;
    if (adi_svc_new(def, &cfg, NULL, &svc, &err) != ADI_OK) {
        ADI_LOG(NULL, ADI_LOG_ERROR, "svc.start_failed", "%s", err.message);
        return 1;
    }
    if (adi_ops_start(cfg.ops_host, (int)cfg.ops_port, svc->metrics, ready_cb, svc, &ops, &err) !=
        ADI_OK) {
        ADI_LOG(NULL, ADI_LOG_ERROR, "svc.start_failed", "ops server: %s", err.message);
        adi_svc_free(svc);
        return 1;
    }
    if (adi_svc_start(svc, &err) != ADI_OK) {
        ADI_LOG(NULL, ADI_LOG_ERROR, "svc.start_failed", "%s", err.message);
        adi_ops_stop(ops);
        adi_svc_free(svc);
        return 1;
    }
    ADI_LOG(NULL, ADI_LOG_INFO, "svc.started",
            "stream %s, %d workers, consumers %s-w*, %d event workers, ops port %d, version %s",
            svc->stream, svc->nrequest, svc->consumer_base, svc->nworkers - svc->nrequest,
            adi_ops_port(ops), cfg.app_version);

    int sig = 0;
    while (sigwait(&set, &sig) != 0)
        ;
    ADI_LOG(NULL, ADI_LOG_INFO, "svc.stopping", "signal %d: draining in-flight requests", sig);
    adi_svc_stop(svc);
    if (!adi_svc_wait(svc, cfg.shutdown_grace_ms)) {
        ADI_LOG(NULL, ADI_LOG_ERROR, "svc.shutdown_timeout",
                "workers still busy after %" PRId64 " ms; exiting", cfg.shutdown_grace_ms);
        _exit(1);
    }
    adi_ops_stop(ops);
    adi_svc_free(svc);
    ADI_LOG(NULL, ADI_LOG_INFO, "svc.stopped", "all in-flight requests answered");
    return 0;
}
