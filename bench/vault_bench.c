/* SPDX-License-Identifier: MIT */
/*
 * adi-vault-bench: the vault's throughput over the bus against a running vault (REDIS_URL),
 * beside the raw AES-256-GCM rate of this machine, so their ratio is visible (issue 5 point 7).
 *
 *   create   vault.create of a 64-byte access token, as an ADMIN of one bench tenant, from
 *            --callers threads (each its own Redis connection and reply stream) for --seconds
 *   decrypt  vault.decrypt (internal: the task-runner service principal) of the credentials the
 *            create phase made, chosen at random, same callers and duration, after one warm-up
 *            round that leaves the tenant's DEK in the vault's cache (a warm DEK cache)
 *   aead     adi_aead_seal + adi_aead_open of a 64-byte token with the vault's associated data
 *            (tenant|credential|field), on this thread only (one core), for --seconds
 *
 * Prints one line per phase (operations/s, latency p50/p99 in ms, errors) and the ratios, and
 * writes the figures as JSON to --json FILE when given. Exit 1 when a phase saw errors.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adi/bus.h"
#include "adi/config.h"
#include "adi/crypto.h"
#include "adi/messages.h"

#define MAX_CALLERS     256
#define MAX_SAMPLES     2000000
#define CALL_TIMEOUT_MS 10000

/* Settings from the environment. */
typedef struct bench_cfg {
    const char *redis_url; /* REDIS_URL: where the vault's stream is */
} bench_cfg_t;

static const adi_cfg_row_t rows[] = {
    ADI_CFG(bench_cfg_t, redis_url, "REDIS_URL", STR, "redis://127.0.0.1:6379", ADI_CFG_SECRET, 0,
            0, "Redis URL of the suite under test"),
};

/* What the run shares between its threads. */
typedef struct run {
    const char *redis_url;  /* REDIS_URL */
    char tenant[37];        /* the bench tenant */
    char user[37];          /* its ADMIN user (as the gateway would name it) */
    int callers;            /* threads */
    double seconds;         /* duration of each phase */
    bool decrypt;           /* phase: decrypt (else create) */
    atomic_bool stop;       /* the phase is over */
    pthread_mutex_t mu;     /* guards ids and samples */
    char (*ids)[37];        /* credential ids made by the create phase */
    size_t nids, capids;    /* their count and capacity */
    double *samples;        /* latencies in ms */
    size_t nsamples;        /* their count */
    atomic_long ok, errors; /* outcomes */
} run_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* 64 printable random bytes: a stand-in for an OAuth access token. */
static void random_token(char out[65])
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[64];
    adi_crypto_random(raw, sizeof(raw));
    for (int i = 0; i < 64; i++)
        out[i] = alphabet[raw[i] & 63];
    out[64] = '\0';
}

/* One call of the phase's operation; true on a 2xx reply. */
static bool one_call(run_t *r, adi_bus_t *bus, int me, long seq, adi_pool_t *pool)
{
    adi_str_t roles[1] = {ADI_STR("ADMIN")};
    adi_principal p;
    memset(&p, 0, sizeof(p));
    p.tenant_id = adi_str_c(r->tenant);
    const adi_op_desc_t *op;
    adi_str_t body;
    char token[65], account[64], id[37];
    if (r->decrypt) {
        p.service = ADI_STR("task-runner");
        pthread_mutex_lock(&r->mu);
        size_t pick = r->nids > 0 ? (size_t)rand() % r->nids : 0;
        memcpy(id, r->ids[pick], sizeof(id));
        pthread_mutex_unlock(&r->mu);
        vault_id_req req = {.id = adi_str_c(id)};
        op = &adi_op_vault_decrypt;
        body = adi_proto_encode_pool(op->req, &req, pool);
    } else {
        p.user_id = adi_str_c(r->user);
        p.email = ADI_STR("bench@example.com");
        p.roles.items = roles;
        p.roles.n = 1;
        random_token(token);
        snprintf(account, sizeof(account), "bench-%d-%ld-%ld", me, (long)getpid(), seq);
        vault_create_req req;
        memset(&req, 0, sizeof(req));
        req.provider = ADI_STR("META");
        req.account_id = adi_str_c(account);
        req.access_token = adi_str_c(token);
        req.refresh_token = ADI_STR_NULL;
        req.expires_at = ADI_STR_NULL;
        op = &adi_op_vault_create;
        body = adi_proto_encode_pool(op->req, &req, pool);
    }
    adi_reply *rep = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_bus_call(bus, "vault", op->name, &p, body, adi_now_ms() + CALL_TIMEOUT_MS, pool, &rep,
                     &err) != ADI_OK)
        return false;
    if (rep->status >= 300)
        return false;
    if (!r->decrypt) {
        vault_credential c;
        if (adi_proto_decode(&vault_credential__desc, rep->body.ptr, rep->body.len, pool, &c,
                             &err) != ADI_OK)
            return false;
        pthread_mutex_lock(&r->mu);
        if (r->nids == r->capids) {
            r->capids = r->capids ? r->capids * 2 : 1024;
            r->ids = realloc(r->ids, r->capids * sizeof(*r->ids));
            if (r->ids == NULL)
                abort();
        }
        snprintf(r->ids[r->nids++], 37, "%.*s", (int)c.id.len, c.id.ptr);
        pthread_mutex_unlock(&r->mu);
    }
    return true;
}

/* Arguments of one caller thread. */
typedef struct caller {
    run_t *run; /* the run */
    int index;  /* 0..callers-1 */
} caller_t;

static void *caller_main(void *arg)
{
    caller_t *c = arg;
    run_t *r = c->run;
    char reply[128];
    snprintf(reply, sizeof(reply), "svc:{bench}:%ld-%d:rep", (long)getpid(), c->index);
    adi_bus_opts_t bo = {.url = r->redis_url, .reply_stream = reply};
    adi_bus_t *bus = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_bus_new(&bo, &bus, &err) != ADI_OK) {
        atomic_fetch_add(&r->errors, 1);
        return NULL;
    }
    for (long seq = 0; !atomic_load(&r->stop); seq++) {
        adi_pool_t pool;
        adi_pool_init(&pool);
        double t0 = now_s();
        bool good = one_call(r, bus, c->index, seq, &pool);
        double ms = (now_s() - t0) * 1000.0;
        adi_pool_dispose(&pool);
        if (!good) {
            atomic_fetch_add(&r->errors, 1);
            continue;
        }
        if (atomic_load(&r->stop))
            break; /* finished after the end: not counted */
        atomic_fetch_add(&r->ok, 1);
        pthread_mutex_lock(&r->mu);
        if (r->nsamples < MAX_SAMPLES)
            r->samples[r->nsamples++] = ms;
        pthread_mutex_unlock(&r->mu);
    }
    adi_bus_del(bus, reply, &err);
    adi_bus_free(bus);
    return NULL;
}

/* Figures of one phase. */
typedef struct figures {
    double per_sec;  /* successful operations per second */
    double p50, p99; /* latency percentiles, ms (0 for aead) */
    long ok, errors; /* counts */
} figures_t;

/* Runs one bus phase with r->callers threads for r->seconds. */
static figures_t bus_phase(run_t *r, bool decrypt)
{
    r->decrypt = decrypt;
    r->nsamples = 0;
    atomic_store(&r->ok, 0);
    atomic_store(&r->errors, 0);
    atomic_store(&r->stop, false);
    pthread_t th[MAX_CALLERS];
    caller_t args[MAX_CALLERS];
    double t0 = now_s();
    for (int i = 0; i < r->callers; i++) {
        args[i] = (caller_t){r, i};
        if (pthread_create(&th[i], NULL, caller_main, &args[i]) != 0)
            abort();
    }
    while (now_s() - t0 < r->seconds)
        usleep(20 * 1000);
    atomic_store(&r->stop, true);
    double elapsed = now_s() - t0;
    for (int i = 0; i < r->callers; i++)
        pthread_join(th[i], NULL);
    figures_t f = {0};
    f.ok = atomic_load(&r->ok);
    f.errors = atomic_load(&r->errors);
    f.per_sec = (double)f.ok / elapsed;
    if (r->nsamples > 0) {
        qsort(r->samples, r->nsamples, sizeof(double), cmp_double);
        f.p50 = r->samples[r->nsamples / 2];
        f.p99 = r->samples[(size_t)((double)r->nsamples * 0.99)];
    }
    return f;
}

/* Raw AES-256-GCM seal + open of a 64-byte token on this thread for `seconds`. */
static figures_t aead_phase(double seconds)
{
    unsigned char raw[32];
    adi_crypto_random(raw, sizeof(raw));
    adi_secret_t key;
    adi_secret_init(&key, raw, sizeof(raw));
    char token[65];
    random_token(token);
    const char aad[] = "0b9e4c1a-2f4d-4d6b-9a52-0d0f6b5e2c11|6f1c8a3e-5b7d-4e21-8c9f-3a2b1d0e4f56|"
                       "access_token";
    unsigned char box[64 + ADI_AEAD_OVERHEAD], back[64];
    figures_t f = {0};
    adi_error_t err;
    adi_error_clear(&err);
    double t0 = now_s(), t = t0;
    long n = 0;
    while (t - t0 < seconds) {
        for (int i = 0; i < 1000; i++) {
            size_t blen = 0, plen = 0;
            if (adi_aead_seal(&key, aad, sizeof(aad) - 1, token, 64, box, sizeof(box), &blen,
                              &err) != ADI_OK ||
                adi_aead_open(&key, aad, sizeof(aad) - 1, box, blen, back, sizeof(back), &plen,
                              &err) != ADI_OK ||
                plen != 64)
                f.errors++;
            else
                n++;
        }
        t = now_s();
    }
    adi_secret_dispose(&key);
    f.ok = n;
    f.per_sec = (double)n / (t - t0);
    return f;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: adi-vault-bench [--callers N] [--seconds S] [--json FILE]\n"
               "  needs a running vault on REDIS_URL; see bench/vault.sh\n");
}

int main(int argc, char **argv)
{
    run_t r;
    memset(&r, 0, sizeof(r));
    r.callers = 8;
    r.seconds = 10;
    const char *json = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            usage(stderr);
            return 2;
        }
        if (strcmp(argv[i], "--callers") == 0)
            r.callers = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0)
            r.seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--json") == 0)
            json = argv[++i];
        else {
            usage(stderr);
            return 2;
        }
    }
    if (r.callers < 1 || r.callers > MAX_CALLERS || r.seconds <= 0) {
        fprintf(stderr, "adi-vault-bench: --callers 1..%d, --seconds > 0\n", MAX_CALLERS);
        return 2;
    }
    bench_cfg_t cfg;
    if (adi_cfg_load(rows, sizeof(rows) / sizeof(rows[0]), &cfg, stderr) != 0)
        return 2;
    r.redis_url = cfg.redis_url;
    adi_uuid_v4(r.tenant);
    adi_uuid_v4(r.user);
    pthread_mutex_init(&r.mu, NULL);
    r.samples = malloc(MAX_SAMPLES * sizeof(double));
    if (r.samples == NULL)
        abort();
    srand((unsigned)getpid());

    printf("vault bench: tenant %s, %d callers, %.0f s per phase\n", r.tenant, r.callers,
           r.seconds);
    fflush(stdout);
    figures_t create = bus_phase(&r, false);
    printf("create   %10.1f/s  p50 %7.2f ms  p99 %7.2f ms  errors %ld\n", create.per_sec,
           create.p50, create.p99, create.errors);
    fflush(stdout);
    int status = 0;
    figures_t decrypt = {0};
    if (r.nids == 0) {
        fprintf(stderr, "adi-vault-bench: no credential was created: is the vault up?\n");
        status = 1;
    } else {
        /* Warm-up: every caller's first decrypts put the tenant's DEK into the cache. */
        double keep = r.seconds;
        r.seconds = 1;
        bus_phase(&r, true);
        r.seconds = keep;
        decrypt = bus_phase(&r, true);
        printf("decrypt  %10.1f/s  p50 %7.2f ms  p99 %7.2f ms  errors %ld  (warm DEK cache, "
               "%zu credentials)\n",
               decrypt.per_sec, decrypt.p50, decrypt.p99, decrypt.errors, r.nids);
    }
    figures_t aead = aead_phase(r.seconds < 5 ? r.seconds : 5);
    printf("aes-gcm  %10.1f/s  seal+open of a 64-byte token, one core (libs/crypto)\n",
           aead.per_sec);
    if (decrypt.per_sec > 0)
        printf("ratio    raw AES-GCM / decrypt = %.0fx, raw AES-GCM / create = %.0fx\n",
               aead.per_sec / decrypt.per_sec,
               aead.per_sec / (create.per_sec ? create.per_sec : 1));
    if (create.errors > 0 || decrypt.errors > 0 || aead.errors > 0)
        status = 1;
    if (json != NULL) {
        FILE *f = fopen(json, "w");
        if (f == NULL) {
            perror(json);
            status = 1;
        } else {
            fprintf(f,
                    "{\n  \"callers\": %d,\n  \"seconds\": %.1f,\n"
                    "  \"create\": {\"per_sec\": %.1f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
                    "\"ok\": %ld, \"errors\": %ld},\n"
                    "  \"decrypt\": {\"per_sec\": %.1f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
                    "\"ok\": %ld, \"errors\": %ld},\n"
                    "  \"aes_gcm_seal_open_per_sec_one_core\": %.1f\n}\n",
                    r.callers, r.seconds, create.per_sec, create.p50, create.p99, create.ok,
                    create.errors, decrypt.per_sec, decrypt.p50, decrypt.p99, decrypt.ok,
                    decrypt.errors, aead.per_sec);
            fclose(f);
        }
    }
    free(r.ids);
    free(r.samples);
    pthread_mutex_destroy(&r.mu);
    return status;
}
