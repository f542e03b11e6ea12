/* SPDX-License-Identifier: MIT */
/*
 * Internals of libs/svc shared between its source files: the service and worker structures, the
 * op table lookup and the worker entry point. Not for use outside libs/svc.
 */
#ifndef ADI_SVC_INT_H
#define ADI_SVC_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "adi/svc.h"

/** Entries one XREADGROUP takes: one, so idle workers are never starved by a busy one's batch. */
#define ADI_SVC__READ_COUNT 1
/** Longest XREADGROUP block, so a stop request is noticed within this time. */
#define ADI_SVC__BLOCK_MS 1000
/** Entries one XAUTOCLAIM takes. */
#define ADI_SVC__RECLAIM_COUNT 16
/** Period of the backlog gauges (worker 0). */
#define ADI_SVC__GAUGE_MS 5000
/** Period and horizon of the idempotency table cleanup (worker 0). */
#define ADI_SVC__CLEANUP_MS (10 * 60 * 1000)
/* How often worker 0 sweeps the outbox, and how old an event must be to count as left behind. */
#define ADI_SVC__OUTBOX_SWEEP_MS 5000
#define ADI_SVC__OUTBOX_GRACE_S  "10"
/* Operation name of the tombstone sys.settled leaves under the key of a request that never
   committed; any later delivery of that request is answered 409 ADI_SVC__ABANDONED_MSG. */
#define ADI_SVC__ABANDONED "sys.abandoned"
#define ADI_SVC__ABANDONED_MSG                                                                     \
    "This request was abandoned before it completed: send it again with a new Idempotency-Key."

typedef struct adi_svc_worker adi_svc_worker_t;

/** Distinct entries whose failures (ADI_INTERNAL) one event worker remembers. */
#define ADI_SVC__FAILED_SLOTS 8

/** Failed runs of one event entry, for ADI_SVC_EVENT_MAX_ATTEMPTS. */
typedef struct adi_svc_failed {
    char id[ADI_BUS_ID_MAX]; /* entry id, "" for a free slot */
    int attempts;            /* failed runs seen so far */
} adi_svc_failed_t;

/**
 * One worker thread and everything it owns; nothing here is shared with another worker. A
 * request worker serves the service's request stream; an event worker serves one consumer's.
 */
struct adi_svc_worker {
    adi_svc_t *svc;               /* the service it works for */
    const adi_svc_consumer_t *ev; /* the consumer it runs, NULL for a request worker */
    const char *stream;           /* stream it reads (svc->stream or ev->stream) */
    const char *group;            /* its consumer group (the service name or ev->group) */
    char label[256];              /* metric labels: stream="..." (plus group="..." for events) */
    adi_svc_failed_t failed[ADI_SVC__FAILED_SLOTS]; /* event entries that failed (ring) */
    unsigned failed_next;                           /* next ring slot to reuse */
    int index;                                      /* 0..n-1 among the workers of its stream */
    pthread_t thread;                               /* the thread, valid once started */
    bool started;                                   /* the thread was created */
    char consumer[160];                             /* consumer name: <base>-w<index> */
    char reply_stream[256];      /* svc:{name}:<consumer>:rep for service-to-service calls */
    adi_bus_t *bus;              /* this worker's Redis connection */
    adi_db_t *db;                /* this worker's PostgreSQL connection, NULL until connected */
    int64_t db_retry_at;         /* monotonic ms before which no new db connect is tried */
    int64_t db_backoff;          /* current db connect backoff in ms */
    bool redis_down;             /* this worker currently counts in svc->redis_down */
    bool db_down;                /* this worker currently counts in svc->db_down */
    bool group_ok;               /* the consumer group is known to exist */
    adi_buf_t out;               /* reply encoding buffer, reused across requests */
    char cursor[ADI_BUS_ID_MAX]; /* XAUTOCLAIM cursor */
    int64_t next_reclaim;        /* monotonic ms of the next reclaim sweep */
    int64_t next_gauge;          /* monotonic ms of the next backlog gauge update (worker 0) */
    int64_t next_cleanup;        /* monotonic ms of the next idempotency cleanup (worker 0) */
    int64_t next_outbox;         /* monotonic ms of the next outbox sweep (worker 0) */
    int64_t next_chore;          /* monotonic ms of the next def->chore run (worker 0) */
    int outbox;                  /* <schema>.adi_outbox: 0 not known yet, 1 there, -1 absent */
    void *wipes;                 /* the current request's adi_svc_sensitive callbacks (pool list) */
    bool sensitive;              /* the current request's reply carries secrets */
};

/** One slot of the open-addressing op table. */
typedef struct adi_svc_slot {
    const adi_svc_handler_t *h; /* the handler, NULL for an empty slot */
    uint32_t hash;              /* hash of h->op->name */
} adi_svc_slot_t;

struct adi_svc {
    const adi_svc_def_t *def;  /* what main.c declared */
    adi_svc_config_t cfg;      /* common configuration (strings borrowed) */
    char stream[128];          /* svc:{name}:req */
    char stream_label[160];    /* stream="svc:{name}:req" for metrics */
    char consumer_base[128];   /* CONSUMER_NAME or hostname-pid */
    adi_svc_slot_t *slots;     /* op table */
    uint32_t mask;             /* slots - 1 (a power of two minus one) */
    adi_metrics_t *metrics;    /* where requests are recorded */
    bool own_metrics;          /* metrics were made here and are freed here */
    void *app;                 /* def->init's state */
    char *sql_select;          /* SELECT op, reply FROM <schema>.adi_idempotency ... */
    char *sql_insert;          /* INSERT INTO <schema>.adi_idempotency ... */
    char *sql_fence;           /* sys.settled: INSERT the tombstone unless the key is there */
    char *sql_cleanup;         /* DELETE old rows of <schema>.adi_idempotency */
    char *sql_outbox_exists;   /* is there a <schema>.adi_outbox table? */
    char *sql_outbox_insert;   /* INSERT an event into <schema>.adi_outbox RETURNING id */
    char *sql_outbox_delete;   /* DELETE published events: $1 = '{id,id,...}' */
    char *sql_outbox_due;      /* events left behind (older than the grace), locked */
    adi_svc_worker_t *workers; /* request workers first (cfg.workers), then event workers */
    int nworkers;              /* number of workers of every kind */
    int nrequest;              /* number of request workers (the first ones) */
    bool started;              /* adi_svc_start ran */
    atomic_bool stop;          /* workers stop reading when set */
    atomic_bool group_joined;  /* some worker ensured the consumer group */
    atomic_int redis_down;     /* workers currently without Redis */
    atomic_int db_down;        /* workers currently without PostgreSQL */
    pthread_mutex_t mu;        /* guards running, with cv */
    pthread_cond_t cv;         /* signalled on stop and when a worker exits */
    int running;               /* workers still in their loop */
    adi_bus_t *ready_bus;      /* the readiness check's own Redis connection */
    adi_db_t *ready_db;        /* the readiness check's own PostgreSQL connection */
};

/** The handler of operation `name`, or NULL. */
const adi_svc_handler_t *adi_svc__find(const adi_svc_t *svc, adi_str_t name);

/** The worker thread's main function (arg: adi_svc_worker_t *). */
void *adi_svc__worker_main(void *arg);

/** Sleeps up to `ms`, returning early when the service is asked to stop. */
void adi_svc__nap(adi_svc_t *svc, int64_t ms);

/**
 * The idempotency key of request `id` from `principal` (NULL when anonymous) at `client_ip`:
 * the request id scoped to its caller, "<tenant>/<user>/<service>/<id>", or for an anonymous
 * client "anon/<client_ip>/<id>", so two tenants (or two anonymous clients) that pick the same
 * Idempotency-Key never see each other's replies. Allocated from `pool`.
 */
adi_str_t adi_svc__idem_key(adi_pool_t *pool, const adi_principal *principal, adi_str_t client_ip,
                            adi_str_t id);

/** The built-in sys.health and sys.settled handler rows. */
extern const adi_svc_handler_t adi_svc__health_row;
extern const adi_svc_handler_t adi_svc__settled_row;

/** Runs (once) the adi_svc_sensitive callbacks registered for the worker's current request. */
void adi_svc__run_wipes(adi_svc_worker_t *w);

/** Sends the events queued by adi_svc_publish on `ctx` (after a commit); frees the queue. */
void adi_svc__flush_outbox(adi_ctx_t *ctx);

/**
 * Inside the request's transaction, just before COMMIT: writes the events queued on `ctx` into
 * <schema>.adi_outbox (when the service has that table), so that they commit or roll back with
 * the request's writes; adi_svc__flush_outbox then publishes and deletes them, and the sweep
 * (adi_svc__sweep_outbox) publishes what a process that died in between left behind.
 */
adi_err adi_svc__stage_outbox(adi_ctx_t *ctx, adi_db_t *db, adi_error_t *err);

/** Publishes (at least once) and deletes the events of <schema>.adi_outbox left behind. */
void adi_svc__sweep_outbox(adi_svc_worker_t *w, adi_db_t *db);

#endif
