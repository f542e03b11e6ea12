/* SPDX-License-Identifier: MIT */
/*
 * The queue runtime (see task_runner.h): worker threads and one keeper thread, each with its own
 * Redis client.
 *
 * A worker reads its queues' streams through the consumer group "task-runner" (one XREADGROUP
 * over every queue, COUNT 1 per stream, short BLOCK so a stop is noticed quickly), sweeps entries
 * other consumers left silent for longer than the visibility timeout (XAUTOCLAIM, one at a time,
 * so it never holds more than it runs) and serves each entry:
 *
 *   decode task_msg -> find the row -> decode and check the args -> state STARTED -> run with a
 *   deadline -> one script that, while this consumer still owns the entry, records SUCCESS (with
 *   the result), RETRY (the next attempt ZADDed to the delayed set, full-jitter backoff) or
 *   FAILURE (a dead letter), releases a unique lock on completion, sets the state TTL, XACKs and
 *   XDELs the entry.
 *
 * Entries a worker holds are listed under its mutex; the keeper re-claims each (XCLAIM JUSTID
 * in a script that first checks this consumer still owns it) every visibility/3, runs the
 * delayed mover every 250 ms and updates the queue gauges. Stopping: workers take nothing new,
 * hand back entries they read but did not start, finish the running task, leave the group; what
 * still runs at the drain deadline is handed back (re-queued at once) and its outcome discarded.
 *
 * Never logged: a task's args or result. Error texts come from the task (task.h forbids secrets).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adi/keys.h"
#include "adi/messages.h"
#include "adi/proto.h"
#include "task_runner.h"

#define KEY_MAX        256
#define READ_BLOCK_MS  1000          /* longest XREADGROUP block: a stop is noticed within this */
#define MOVE_EVERY_MS  250           /* delayed mover period */
#define MOVE_LIMIT     100           /* delayed tasks one mover script moves */
#define MOVE_ROUNDS    10            /* mover scripts per queue and period, at most */
#define GAUGE_EVERY_MS 5000          /* queue gauges period */
#define ENTRY_MAX      (1024 * 1024) /* larger stream entries are dead-lettered unread */
#define RECORD_NAP_MIN 50            /* first pause between tries to record an outcome */
#define RECORD_NAP_MAX 2000          /* longest pause */
#define DEFAULT_MAXLEN 100000

/* ---- scripts ------------------------------------------------------------------------------ */

#define LUA_PRELUDE                                                                                \
    "local function s(n) return string.format('%d', n) end\n"                                      \
    "local t = redis.call('TIME')\n"                                                               \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

/* True (in Lua) when consumer ARGV[2] of group ARGV[1] holds entry ARGV[3] of stream KEYS[1]. */
#define LUA_OWNED "#redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2]) == 1"

/* Lua: `m` = the "m" field of entry ARGV[3] of KEYS[1], or '' when gone. */
#define LUA_ENTRY_M                                                                                \
    "local m = ''\n"                                                                               \
    "local e = redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3])\n"                                  \
    "if #e == 1 then\n"                                                                            \
    "  local f = e[1][2]\n"                                                                        \
    "  for i = 1, #f, 2 do if f[i] == 'm' then m = f[i + 1] end end\n"                             \
    "end\n"

/* KEYS: stream. ARGV: group, consumer, id. Refreshes the claim while this consumer owns it. */
static const char heartbeat_lua[] =
    "if not (" LUA_OWNED ") then return 0 end\n"
    "redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')\n"
    "return 1\n";

/*
 * KEYS: state. ARGV: id, name, queue, tenant, attempt, max_attempts, worker, ttl s, request id.
 * started_at_us is the same instant in microseconds (bench/tasks.sh measures sub-millisecond
 * enqueue-to-start latency with it); readers that do not know it ignore it.
 */
static const char started_lua[] = LUA_PRELUDE
    "redis.call('HSET', KEYS[1], 'id', ARGV[1], 'state', 'STARTED', 'name', ARGV[2],\n"
    "  'queue', ARGV[3], 'tenant_id', ARGV[4], 'attempt', ARGV[5], 'max_attempts', ARGV[6],\n"
    "  'worker', ARGV[7], 'request_id', ARGV[9], 'started_at_ms', s(now), 'updated_at_ms', "
    "s(now),\n"
    "  'started_at_us', s(tonumber(t[1]) * 1000000 + tonumber(t[2])))\n"
    "redis.call('HDEL', KEYS[1], 'due_at_ms')\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[8])\n"
    "return now\n";

/*
 * KEYS: stream, state, delayed, dead, unique lock. ARGV: group, consumer, entry id, outcome
 * (SUCCESS|RETRY|FAILURE), result or error text, ttl s, task id, retry payload, retry delay ms,
 * dead-letter maxlen, next attempt, lock extension ms, name, queue, tenant, attempt.
 * Returns 1 when recorded and acknowledged, 0 when this consumer no longer owns the entry.
 */
static const char finish_lua[] = LUA_PRELUDE
    "if not (" LUA_OWNED ") then return 0 end\n"
    "local st = ARGV[4]\n"
    "local held = redis.call('GET', KEYS[5]) == ARGV[7]\n"
    "redis.call('HSET', KEYS[2], 'id', ARGV[7], 'name', ARGV[13], 'queue', ARGV[14],\n"
    "  'tenant_id', ARGV[15], 'attempt', ARGV[16], 'state', st, 'updated_at_ms', s(now))\n"
    "if st == 'SUCCESS' then\n"
    "  redis.call('HSET', KEYS[2], 'finished_at_ms', s(now))\n"
    "  if ARGV[5] ~= '' then redis.call('HSET', KEYS[2], 'result', ARGV[5])\n"
    "  else redis.call('HDEL', KEYS[2], 'result') end\n"
    "  redis.call('HDEL', KEYS[2], 'error', 'due_at_ms')\n"
    "  if held then redis.call('DEL', KEYS[5]) end\n"
    "elseif st == 'RETRY' then\n"
    "  local due = now + tonumber(ARGV[9])\n"
    "  redis.call('HSET', KEYS[2], 'error', ARGV[5], 'attempt', ARGV[11], 'due_at_ms', s(due))\n"
    "  redis.call('ZADD', KEYS[3], s(due), ARGV[8])\n"
    "  if held then redis.call('PEXPIRE', KEYS[5], s(tonumber(ARGV[9]) + tonumber(ARGV[12]))) end\n"
    "else\n" LUA_ENTRY_M "  redis.call('HSET', KEYS[2], 'state', 'FAILURE', 'error', ARGV[5],\n"
    "    'finished_at_ms', s(now))\n"
    "  redis.call('HDEL', KEYS[2], 'result', 'due_at_ms')\n"
    "  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[10], '*', 'm', m, 'error', ARGV[5])\n"
    "  if held then redis.call('DEL', KEYS[5]) end\n"
    "end\n"
    "redis.call('EXPIRE', KEYS[2], ARGV[6])\n"
    "redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])\n"
    "redis.call('XDEL', KEYS[1], ARGV[3])\n"
    "return 1\n";

/*
 * An entry that is not a task (no message, too large, undecodable): to the dead-letter stream
 * as it is. KEYS: stream, dead. ARGV: group, consumer, id, error, maxlen.
 */
static const char dead_raw_lua[] =
    "if not (" LUA_OWNED ") then return 0 end\n" LUA_ENTRY_M
    "redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'm', m, 'error', ARGV[4])\n"
    "redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])\n"
    "redis.call('XDEL', KEYS[1], ARGV[3])\n"
    "return 1\n";

/*
 * Hands an entry back: a copy at the end of the stream for any worker, the original acknowledged
 * and deleted, the state PENDING again. KEYS: stream, state (or the stream again when unknown).
 * ARGV: group, consumer, id, ttl s, has state (1/0).
 */
static const char handback_lua[] =
    LUA_PRELUDE "if not (" LUA_OWNED ") then return 0 end\n" LUA_ENTRY_M
                "if m ~= '' then redis.call('XADD', KEYS[1], '*', 'm', m) end\n"
                "redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])\n"
                "redis.call('XDEL', KEYS[1], ARGV[3])\n"
                "if ARGV[5] == '1' and redis.call('EXISTS', KEYS[2]) == 1 then\n"
                "  redis.call('HSET', KEYS[2], 'state', 'PENDING', 'updated_at_ms', s(now))\n"
                "  redis.call('EXPIRE', KEYS[2], ARGV[4])\n"
                "end\n"
                "return 1\n";

/* ---- structures --------------------------------------------------------------------------- */

/** One stream entry a worker holds (read or reclaimed, not yet acknowledged). */
typedef struct held {
    int queue;               /* index into the runtime's queues */
    char id[ADI_BUS_ID_MAX]; /* entry id */
    char task_id[37];        /* the task's id once decoded, "" before */
    bool abandoned;          /* handed back by the drain: the outcome is discarded */
} held_t;

/** One stream entry being served (borrowed from a read's reply). */
typedef struct entry {
    int queue;      /* index into the runtime's queues */
    const char *id; /* entry id, NUL-terminated */
    adi_str_t msg;  /* the "m" field, ptr NULL when absent */
    bool too_large; /* the "m" field exceeded ENTRY_MAX */
} entry_t;

typedef struct worker {
    tr_runtime_t *rt;                           /* the runtime it works for */
    int index;                                  /* 0..workers-1 */
    char consumer[192];                         /* <consumer_base>-t<index> */
    char reply_stream[256];                     /* its reply stream for service calls */
    adi_bus_t *bus;                             /* its own Redis client */
    pthread_t thread;                           /* the thread, valid once started */
    bool started;                               /* the thread was created */
    pthread_mutex_t mu;                         /* guards held[] and nheld (the keeper reads) */
    held_t held[TR_QUEUES_MAX];                 /* entries it holds */
    int nheld;                                  /* used entries of held[] */
    char cursor[TR_QUEUES_MAX][ADI_BUS_ID_MAX]; /* XAUTOCLAIM cursor per queue */
    int64_t next_reclaim;                       /* monotonic ms of the next sweep */
    bool groups_ok;                             /* every queue's group is known to exist */
    bool redis_down;                            /* counted in rt->redis_down */
    adi_buf_t result;                           /* the running task's result */
} worker_t;

struct tr_runtime {
    tr_runtime_config_t cfg;                              /* settings (strings borrowed) */
    char queues[TR_QUEUES_MAX][ADI_TASKS_QUEUE_MAX + 1];  /* queue names */
    char streams[TR_QUEUES_MAX][KEY_MAX];                 /* tasks:<q> */
    char delayed[TR_QUEUES_MAX][KEY_MAX];                 /* tasks:<q>:delayed */
    char dead[TR_QUEUES_MAX][KEY_MAX];                    /* tasks:<q>:dead */
    char labels[TR_QUEUES_MAX][ADI_TASKS_QUEUE_MAX + 16]; /* queue="<q>" */
    size_t nqueues;                                       /* queues served */
    char maxlen[24];                                      /* dead-letter MAXLEN ~, as text */
    char ttl[24];                                         /* state TTL in s, as text */
    worker_t *workers;                                    /* the workers */
    int nworkers;                                         /* their number */
    adi_bus_t *keeper_bus;                                /* the keeper's client */
    pthread_t keeper;                                     /* the keeper thread */
    bool keeper_started;                                  /* it was created */
    bool started;                                         /* tr_runtime_start ran */
    atomic_bool stop;                                     /* workers take nothing new */
    atomic_bool keeper_stop;                              /* the keeper leaves */
    atomic_int redis_down;                                /* threads currently without Redis */
    pthread_mutex_t mu;                                   /* guards running, with cv */
    pthread_cond_t cv;                                    /* signalled on stops and exits */
    int running;                                          /* workers still in their loop */
    _Atomic int64_t st[10];                               /* counters, see tr_runtime_stats_t */
};

enum {
    ST_RUNS,
    ST_OK,
    ST_RETRY,
    ST_FAIL,
    ST_LOST,
    ST_RECLAIMED,
    ST_SWEEPS,
    ST_HB,
    ST_BACK,
    ST_MOVED
};

static void bump(tr_runtime_t *rt, int which, int64_t n)
{
    atomic_fetch_add(&rt->st[which], n);
}

/* ---- small helpers ------------------------------------------------------------------------ */

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

/* Sleeps up to `ms`; returns early when `flag` (stop or keeper_stop) is set, unless NULL. */
static void nap(tr_runtime_t *rt, int64_t ms, atomic_bool *flag)
{
    if (ms <= 0)
        return;
    struct timespec until = mono_after(ms);
    pthread_mutex_lock(&rt->mu);
    int rc = 0;
    while ((flag == NULL || !atomic_load(flag)) && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&rt->cv, &rt->mu, &until);
    pthread_mutex_unlock(&rt->mu);
}

static void redis_trouble(worker_t *w, const adi_error_t *err)
{
    if (w->redis_down)
        return;
    w->redis_down = true;
    if (atomic_fetch_add(&w->rt->redis_down, 1) == 0)
        ADI_LOG(NULL, ADI_LOG_WARN, "bus.unavailable", "task worker: %s; retrying", err->message);
}

static void redis_fine(worker_t *w)
{
    if (!w->redis_down)
        return;
    w->redis_down = false;
    if (atomic_fetch_sub(&w->rt->redis_down, 1) == 1)
        ADI_LOG(NULL, ADI_LOG_INFO, "bus.recovered", "Redis reachable again");
}

static bool valid_consumer_base(const char *s)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > 160)
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '{' || *p == '}')
            return false;
    return true;
}

/* ---- public pure helpers ------------------------------------------------------------------ */

int64_t tr_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms, uint64_t rnd)
{
    if (base_ms < 1)
        base_ms = 1;
    if (max_ms < base_ms)
        max_ms = base_ms;
    int64_t cap = base_ms;
    for (int i = 0; i < attempt && cap < max_ms; i++)
        cap = cap > max_ms / 2 ? max_ms : cap * 2;
    if (cap > max_ms)
        cap = max_ms;
    return (int64_t)(rnd % ((uint64_t)cap + 1u));
}

const tr_task_def_t *tr_task_find(const tr_task_def_t *const *tasks, adi_str_t name)
{
    for (const tr_task_def_t *const *p = tasks; p != NULL && *p != NULL; p++)
        if ((*p)->name != NULL && adi_str_eq_c(name, (*p)->name))
            return *p;
    return NULL;
}

/* ---- held entries ------------------------------------------------------------------------- */

static void hold(worker_t *w, int queue, const char *id)
{
    pthread_mutex_lock(&w->mu);
    if (ADI_ALWAYS(w->nheld < TR_QUEUES_MAX)) {
        held_t *h = &w->held[w->nheld++];
        memset(h, 0, sizeof(*h));
        h->queue = queue;
        snprintf(h->id, sizeof(h->id), "%s", id);
    }
    pthread_mutex_unlock(&w->mu);
}

/* Forgets entry `id`; returns whether the drain had abandoned it. */
static bool release(worker_t *w, const char *id)
{
    bool abandoned = false;
    pthread_mutex_lock(&w->mu);
    for (int i = 0; i < w->nheld; i++) {
        if (strcmp(w->held[i].id, id) != 0)
            continue;
        abandoned = w->held[i].abandoned;
        w->held[i] = w->held[--w->nheld];
        break;
    }
    pthread_mutex_unlock(&w->mu);
    return abandoned;
}

static bool is_abandoned(worker_t *w, const char *id)
{
    bool abandoned = false;
    pthread_mutex_lock(&w->mu);
    for (int i = 0; i < w->nheld; i++)
        if (strcmp(w->held[i].id, id) == 0)
            abandoned = w->held[i].abandoned;
    pthread_mutex_unlock(&w->mu);
    return abandoned;
}

static void set_task_id(worker_t *w, const char *id, const char *task_id)
{
    pthread_mutex_lock(&w->mu);
    for (int i = 0; i < w->nheld; i++)
        if (strcmp(w->held[i].id, id) == 0)
            snprintf(w->held[i].task_id, sizeof(w->held[i].task_id), "%s", task_id);
    pthread_mutex_unlock(&w->mu);
}

/* ---- scripts from C ----------------------------------------------------------------------- */

/* Runs `script` and returns its integer result (-1 on an unexpected reply). */
static adi_err eval_int(adi_bus_t *bus, const char *script, int nkeys, int argc, const char **argv,
                        const size_t *lens, int64_t *out, adi_error_t *err)
{
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_bus_value_t *v = NULL;
    adi_err rc = adi_bus_eval(bus, script, nkeys, argc, argv, lens, &pool, &v, err);
    *out = rc == ADI_OK && v->type == ADI_BUS_V_INT ? v->i : -1;
    if (rc == ADI_OK && v->type != ADI_BUS_V_INT)
        rc = adi_error_set(err, ADI_INTERNAL, "script: unexpected reply");
    adi_pool_dispose(&pool);
    return rc;
}

/* Hands entry `id` of queue q (held by consumer `consumer`) back to the stream. */
static adi_err hand_back(tr_runtime_t *rt, adi_bus_t *bus, const char *consumer, int q,
                         const char *id, const char *task_id, int64_t *done, adi_error_t *err)
{
    char state[KEY_MAX];
    bool has_state = task_id[0] != '\0';
    snprintf(state, sizeof(state), ADI_KEY_TASK_STATE_FMT, has_state ? task_id : "-");
    const char *argv[7] = {rt->streams[q],
                           has_state ? state : rt->streams[q],
                           ADI_TASKS_GROUP,
                           consumer,
                           id,
                           rt->ttl,
                           has_state ? "1" : "0"};
    return eval_int(bus, handback_lua, 2, 7, argv, NULL, done, err);
}

/* ---- serving one entry -------------------------------------------------------------------- */

/* What one run came to. */
typedef struct outcome {
    const char *state;              /* SUCCESS, RETRY or FAILURE */
    char text[ADI_TASKS_ERROR_MAX]; /* error text (RETRY, FAILURE) */
    int64_t delay_ms;               /* RETRY: backoff */
    const char *label;              /* metrics outcome label */
} outcome_t;

static bool permanent(adi_err rc)
{
    return rc == ADI_INVALID || rc == ADI_NOT_FOUND || rc == ADI_FORBIDDEN || rc == ADI_CONFLICT;
}

/* The error text of `err` (its message, and its first field message), bounded. */
static void error_text(const adi_error_t *err, adi_err rc, char out[ADI_TASKS_ERROR_MAX])
{
    const char *msg = err->message[0] != '\0' ? err->message : adi_err_name(rc);
    if (err->nfields > 0)
        snprintf(out, ADI_TASKS_ERROR_MAX, "%s (%s: %s)", msg, err->fields[0].field,
                 err->fields[0].message);
    else
        snprintf(out, ADI_TASKS_ERROR_MAX, "%s", msg);
}

/* Dead-letters an entry that is not a task; counts and logs it. */
static void dead_raw(worker_t *w, const entry_t *e, const char *why)
{
    tr_runtime_t *rt = w->rt;
    const char *argv[7] = {rt->streams[e->queue],
                           rt->dead[e->queue],
                           ADI_TASKS_GROUP,
                           w->consumer,
                           e->id,
                           why,
                           rt->maxlen};
    adi_error_t err;
    adi_error_clear(&err);
    int64_t done = 0;
    adi_err rc = eval_int(w->bus, dead_raw_lua, 2, 7, argv, NULL, &done, &err);
    if (rc != ADI_OK) {
        /* Left pending: it is swept again after the visibility timeout. */
        ADI_LOG(NULL, ADI_LOG_WARN, "task.dead_letter_failed", "entry %s of %s: %s", e->id,
                rt->streams[e->queue], err.message);
        return;
    }
    adi_metrics_count(rt->cfg.metrics, "adi_tasks_total", "task=\"invalid\",outcome=\"failure\"",
                      1);
    adi_metrics_count(rt->cfg.metrics, "adi_tasks_dead_lettered_total", rt->labels[e->queue], 1);
    bump(rt, ST_FAIL, 1);
    ADI_LOG(NULL, ADI_LOG_ERROR, "task.bad_entry", "entry %s of %s: %s; dead-lettered", e->id,
            rt->streams[e->queue], why);
}

/** One task being served: what its outcome script and its log line need. */
typedef struct job {
    worker_t *w;              /* the worker serving it */
    const entry_t *e;         /* its stream entry */
    adi_pool_t pool;          /* memory of this run */
    task_msg *t;              /* the decoded task */
    const tr_task_def_t *row; /* its row, NULL when unknown */
    const char *task_id;      /* t->id, NUL-terminated */
    const char *name;         /* t->name, NUL-terminated */
    const char *tenant;       /* t->tenant_id, "" for none */
    const char *request_id;   /* t->request_id, "" for none */
    const char *label;        /* metrics label of the task: its row's name or "unknown" */
    int max_attempts;         /* attempts allowed */
    int64_t time_limit_ms;    /* its time limit */
    adi_logctx_t log;         /* task id, name, tenant, start */
} job_t;

/* The task's args bytes, ADI_STR_NULL when absent or nil (as the producer hashed them). */
static adi_str_t args_of(const task_msg *t)
{
    if (t->args.ptr == NULL || t->args.len == 0 || ADI_IS_NULL(task_msg, t, args))
        return ADI_STR_NULL;
    return t->args;
}

/*
 * Records the outcome (one script), retrying while Redis is unavailable for up to the visibility
 * timeout (the keeper keeps the claim fresh meanwhile). Returns 1 recorded, 0 lost (another
 * consumer owns the entry now), -1 not recorded (left pending for a later sweep), -2 abandoned
 * by the drain (handed back: the outcome is discarded).
 */
static int record(job_t *j, const outcome_t *o, adi_str_t text, adi_str_t retry_bytes)
{
    worker_t *w = j->w;
    tr_runtime_t *rt = w->rt;
    int q = j->e->queue;
    char state[KEY_MAX], unique[KEY_MAX], delay[24], next[24], ext[24], attempt[24];
    snprintf(state, sizeof(state), ADI_KEY_TASK_STATE_FMT, j->task_id);
    if (!adi_tasks_unique_key(j->name, j->t->tenant_id, args_of(j->t), unique, sizeof(unique)))
        snprintf(unique, sizeof(unique), ADI_KEY_TASK_UNIQUE_FMT, "-", "-");
    snprintf(delay, sizeof(delay), "%" PRId64, o->delay_ms);
    snprintf(next, sizeof(next), "%" PRId64, j->t->attempt + 1);
    snprintf(ext, sizeof(ext), "%lld", (long long)ADI_TASKS_UNIQUE_TTL_MS);
    snprintf(attempt, sizeof(attempt), "%" PRId64, j->t->attempt);
    const char *argv[21] = {rt->streams[q],
                            state,
                            rt->delayed[q],
                            rt->dead[q],
                            unique,
                            ADI_TASKS_GROUP,
                            w->consumer,
                            j->e->id,
                            o->state,
                            text.ptr ? text.ptr : "",
                            rt->ttl,
                            j->task_id,
                            retry_bytes.ptr ? retry_bytes.ptr : "",
                            delay,
                            rt->maxlen,
                            next,
                            ext,
                            j->name,
                            rt->queues[q],
                            j->tenant,
                            attempt};
    size_t lens[21];
    for (int i = 0; i < 21; i++)
        lens[i] = strlen(argv[i]);
    lens[9] = text.len;
    lens[12] = retry_bytes.len;
    int64_t pause = RECORD_NAP_MIN;
    int64_t give_up = adi_mono_ms() + rt->cfg.visibility_ms;
    for (;;) {
        if (is_abandoned(w, j->e->id))
            return -2;
        adi_error_t err;
        adi_error_clear(&err);
        int64_t done = 0;
        adi_err rc = eval_int(w->bus, finish_lua, 5, 21, argv, lens, &done, &err);
        if (rc == ADI_OK) {
            redis_fine(w);
            return done == 1 ? 1 : 0;
        }
        if (rc != ADI_UNAVAILABLE || adi_mono_ms() >= give_up) {
            ADI_LOG(&j->log, ADI_LOG_ERROR, "task.record_failed",
                    "outcome %s of entry %s not recorded: %s; left pending", o->state, j->e->id,
                    err.message);
            if (rc == ADI_UNAVAILABLE)
                redis_trouble(w, &err);
            return -1;
        }
        redis_trouble(w, &err);
        nap(rt, pause, NULL);
        pause = pause * 2 > RECORD_NAP_MAX ? RECORD_NAP_MAX : pause * 2;
    }
}

/* Checks a successful run's result: bounded, and JSON. Returns the text to store. */
static adi_str_t checked_result(job_t *j)
{
    adi_buf_t *r = &j->w->result;
    if (r->len == 0)
        return ADI_STR_NULL;
    if (r->len > ADI_TASKS_RESULT_MAX) {
        ADI_LOG(&j->log, ADI_LOG_WARN, "task.result_dropped",
                "result of %zu bytes exceeds %d; not stored", r->len, ADI_TASKS_RESULT_MAX);
        return ADI_STR_NULL;
    }
    adi_buf_t scratch;
    adi_buf_init(&scratch);
    adi_error_t err;
    adi_error_clear(&err);
    adi_err rc = adi_json_to_msgpack(r->data, r->len, &scratch, &err);
    adi_buf_dispose(&scratch);
    if (rc != ADI_OK) {
        ADI_LOG(&j->log, ADI_LOG_WARN, "task.result_dropped", "result is not JSON: %s; not stored",
                err.message);
        return ADI_STR_NULL;
    }
    return (adi_str_t){r->data, r->len};
}

/* Records the outcome, then counts and logs it (one line per task end). */
static void finish(job_t *j, outcome_t *o)
{
    worker_t *w = j->w;
    tr_runtime_t *rt = w->rt;
    int q = j->e->queue;
    bool success = strcmp(o->state, "SUCCESS") == 0;
    bool retry = strcmp(o->state, "RETRY") == 0;
    adi_str_t text = success ? checked_result(j) : adi_str_c(o->text);
    adi_str_t retry_bytes = ADI_STR_NULL;
    if (retry) {
        task_msg next = *j->t;
        next.attempt = j->t->attempt + 1;
        retry_bytes = adi_proto_encode_pool(&task_msg__desc, &next, &j->pool);
    }
    int r = record(j, o, text, retry_bytes);
    const char *outcome = o->label;
    adi_log_level level = success ? ADI_LOG_INFO : retry ? ADI_LOG_WARN : ADI_LOG_ERROR;
    if (r == 1) {
        bump(rt, success ? ST_OK : retry ? ST_RETRY : ST_FAIL, 1);
        if (retry) {
            char l[160];
            snprintf(l, sizeof(l), "task=\"%s\"", j->label);
            adi_metrics_count(rt->cfg.metrics, "adi_tasks_retried_total", l, 1);
        } else if (!success) {
            adi_metrics_count(rt->cfg.metrics, "adi_tasks_dead_lettered_total", rt->labels[q], 1);
        }
    } else {
        outcome = r == 0 ? "lost" : r == -2 ? "abandoned" : "unrecorded";
        level = ADI_LOG_WARN;
        if (r == 0) {
            bump(rt, ST_LOST, 1);
            adi_metrics_count(rt->cfg.metrics, "adi_tasks_claims_lost_total", rt->labels[q], 1);
        }
    }
    char labels[200];
    snprintf(labels, sizeof(labels), "task=\"%s\",outcome=\"%s\"", j->label, outcome);
    adi_metrics_count(rt->cfg.metrics, "adi_tasks_total", labels, 1);
    char op[160];
    snprintf(op, sizeof(op), "task:%s", j->label);
    adi_metrics_observe(rt->cfg.metrics, op,
                        success && r == 1 ? 200
                        : retry           ? 503
                                          : 500,
                        (double)(adi_mono_ms() - j->log.start_ms) / 1000.0);
    ADI_LOG(&j->log, level, "task.done", "task %s %s attempt %" PRId64 "/%d on %s: %s%s%s%s%s",
            j->task_id, j->name, j->t->attempt + 1, j->max_attempts, rt->queues[q], outcome,
            success ? "" : " error=", success ? "" : o->text,
            j->request_id[0] ? " request_id=" : "", j->request_id);
}

static void set_outcome(outcome_t *o, const char *state, const char *label, const char *text)
{
    o->state = state;
    o->label = label;
    /* Longer error texts are cut (a bounded copy: the compiler cannot prove snprintf's fits). */
    size_t n = text != NULL ? strnlen(text, sizeof(o->text) - 1) : 0;
    if (n > 0)
        memcpy(o->text, text, n);
    o->text[n] = '\0';
}

/*
 * Writes STARTED and runs the task function, deciding the outcome. Returns false when the task
 * could not be started (Redis): the entry is left pending for a later sweep.
 */
static bool run(job_t *j, const void *args, outcome_t *o)
{
    worker_t *w = j->w;
    tr_runtime_t *rt = w->rt;
    char state[KEY_MAX], attempt[24], maxa[16];
    snprintf(state, sizeof(state), ADI_KEY_TASK_STATE_FMT, j->task_id);
    snprintf(attempt, sizeof(attempt), "%" PRId64, j->t->attempt);
    snprintf(maxa, sizeof(maxa), "%d", j->max_attempts);
    const char *argv[10] = {state,     j->task_id,   j->name, rt->queues[j->e->queue],
                            j->tenant, attempt,      maxa,    w->consumer,
                            rt->ttl,   j->request_id};
    adi_error_t err;
    adi_error_clear(&err);
    int64_t started = 0;
    if (eval_int(w->bus, started_lua, 1, 10, argv, NULL, &started, &err) != ADI_OK) {
        ADI_LOG(&j->log, ADI_LOG_WARN, "task.start_failed", "entry %s: %s; left pending", j->e->id,
                err.message);
        if (err.code == ADI_UNAVAILABLE)
            redis_trouble(w, &err);
        return false;
    }
    redis_fine(w);
    adi_buf_reset(&w->result);
    tr_task_ctx_t ctx = {
        .app = rt->cfg.app,
        .bus = w->bus,
        .pool = &j->pool,
        .log = &j->log,
        .task = j->t,
        .deadline_ms = adi_now_ms() + j->time_limit_ms,
        .result = &w->result,
    };
    bump(rt, ST_RUNS, 1);
    int64_t t0 = adi_mono_ms();
    adi_error_t ferr;
    adi_error_clear(&ferr);
    adi_err rc = j->row->fn(&ctx, args, &ferr);
    int64_t took = adi_mono_ms() - t0;
    bool overrun = took > j->time_limit_ms;
    if (overrun)
        ADI_LOG(&j->log, ADI_LOG_WARN, "task.overrun",
                "task %s ran %" PRId64 " ms, over its limit of %" PRId64 " ms", j->task_id, took,
                j->time_limit_ms);
    char text[ADI_TASKS_ERROR_MAX];
    if (rc == ADI_OK && !overrun) {
        set_outcome(o, "SUCCESS", "success", NULL);
        return true;
    }
    if (rc != ADI_OK && permanent(rc)) {
        error_text(&ferr, rc, text);
        set_outcome(o, "FAILURE", "failure", text);
        return true;
    }
    if (overrun)
        snprintf(text, sizeof(text), "Time limit exceeded.");
    else
        error_text(&ferr, rc, text);
    if (j->t->attempt + 1 < j->max_attempts) {
        uint64_t rnd = 0;
        adi_random(&rnd, sizeof(rnd));
        set_outcome(o, "RETRY", "retry", text);
        o->delay_ms =
            tr_backoff_ms((int)j->t->attempt, rt->cfg.retry_base_ms, rt->cfg.retry_max_ms, rnd);
    } else {
        set_outcome(o, "FAILURE", "failure", text);
    }
    return true;
}

/* Decodes and checks the task's args with its row's descriptor into `*out` (pool memory). */
static adi_err decode_args(job_t *j, void **out, adi_error_t *err)
{
    *out = NULL;
    const adi_msg_desc_t *d = j->row->args;
    if (d == NULL)
        return ADI_OK;
    size_t size = d->size > j->row->args_size ? d->size : j->row->args_size;
    void *args = adi_pool_alloc(&j->pool, size);
    adi_str_t raw = args_of(j->t);
    adi_err rc = ADI_OK;
    if (raw.ptr != NULL)
        rc = adi_proto_decode(d, raw.ptr, raw.len, &j->pool, args, err);
    if (rc == ADI_OK)
        rc = adi_proto_check_required(d, args, err);
    if (rc == ADI_OK)
        *out = args;
    return rc;
}

static const char *cstr(adi_pool_t *pool, adi_str_t s)
{
    return s.ptr != NULL ? adi_pool_strdup(pool, s).ptr : "";
}

/* Serves one held entry from decoding to its recorded outcome. */
static void serve(worker_t *w, const entry_t *e)
{
    tr_runtime_t *rt = w->rt;
    if (e->msg.ptr == NULL) {
        dead_raw(w, e, e->too_large ? "Entry exceeds the size limit." : "Entry has no task.");
        return;
    }
    job_t j;
    memset(&j, 0, sizeof(j));
    j.w = w;
    j.e = e;
    adi_pool_init(&j.pool);
    adi_error_t err;
    adi_error_clear(&err);
    task_msg *t = adi_pool_alloc(&j.pool, sizeof(*t));
    if (adi_proto_decode(&task_msg__desc, e->msg.ptr, e->msg.len, &j.pool, t, &err) != ADI_OK ||
        adi_proto_check_required(&task_msg__desc, t, &err) != ADI_OK) {
        char text[ADI_TASKS_ERROR_MAX], why[ADI_TASKS_ERROR_MAX + 16];
        error_text(&err, ADI_INVALID, text);
        snprintf(why, sizeof(why), "Malformed task: %s", text);
        dead_raw(w, e, why);
        goto out;
    }
    j.t = t;
    j.task_id = cstr(&j.pool, t->id);
    j.name = cstr(&j.pool, t->name);
    j.tenant = cstr(&j.pool, t->tenant_id);
    j.request_id = cstr(&j.pool, t->request_id);
    set_task_id(w, e->id, j.task_id);
    j.log = (adi_logctx_t){.request_id = j.task_id,
                           .tenant_id = j.tenant[0] ? j.tenant : NULL,
                           .op = j.name,
                           .start_ms = adi_mono_ms()};
    j.row = tr_task_find(rt->cfg.tasks, t->name);
    j.label = j.row != NULL ? j.row->name : "unknown";
    j.max_attempts = t->max_attempts > 0                        ? (int)t->max_attempts
                     : j.row != NULL && j.row->max_attempts > 0 ? j.row->max_attempts
                                                                : rt->cfg.max_attempts;
    j.time_limit_ms = t->time_limit_ms > 0                        ? t->time_limit_ms
                      : j.row != NULL && j.row->time_limit_ms > 0 ? j.row->time_limit_ms
                                                                  : rt->cfg.time_limit_ms;
    outcome_t o;
    memset(&o, 0, sizeof(o));
    void *args = NULL;
    if (j.row == NULL) {
        set_outcome(&o, "FAILURE", "failure", "Unknown task.");
    } else if (decode_args(&j, &args, &err) != ADI_OK) {
        char text[ADI_TASKS_ERROR_MAX], why[ADI_TASKS_ERROR_MAX + 24];
        error_text(&err, ADI_INVALID, text);
        snprintf(why, sizeof(why), "Invalid arguments: %s", text);
        set_outcome(&o, "FAILURE", "failure", why);
    } else if (!run(&j, args, &o)) {
        goto out;
    }
    finish(&j, &o);
out:
    adi_pool_dispose(&j.pool);
}

/* Serves a held entry, or hands it back untouched when the runtime is stopping; releases it. */
static void serve_held(worker_t *w, const entry_t *e)
{
    tr_runtime_t *rt = w->rt;
    if (atomic_load(&rt->stop)) {
        adi_error_t err;
        adi_error_clear(&err);
        int64_t done = 0;
        if (hand_back(rt, w->bus, w->consumer, e->queue, e->id, "", &done, &err) != ADI_OK)
            ADI_LOG(NULL, ADI_LOG_WARN, "task.hand_back_failed", "entry %s of %s: %s", e->id,
                    rt->streams[e->queue], err.message);
        else if (done == 1)
            bump(rt, ST_BACK, 1);
    } else {
        serve(w, e);
    }
    release(w, e->id);
}

/* ---- the worker loop ---------------------------------------------------------------------- */

static int64_t reclaim_interval(const tr_runtime_t *rt)
{
    int64_t v = rt->cfg.visibility_ms / 2;
    if (v < 50)
        v = 50;
    return v > 10000 ? 10000 : v;
}

/* Takes over (one at a time) entries other consumers left silent too long, and serves them. */
static void reclaim(worker_t *w)
{
    tr_runtime_t *rt = w->rt;
    for (size_t q = 0; q < rt->nqueues; q++) {
        for (int round = 0; round < 8 && !atomic_load(&rt->stop); round++) {
            adi_bus_batch_t b;
            adi_error_t err;
            adi_error_clear(&err);
            adi_err rc = adi_bus_reclaim(w->bus, rt->streams[q], ADI_TASKS_GROUP, w->consumer,
                                         rt->cfg.visibility_ms, 1, w->cursor[q], &b, &err);
            bump(rt, ST_SWEEPS, 1);
            if (rc != ADI_OK) {
                adi_bus_batch_dispose(&b);
                if (rc == ADI_NOT_FOUND)
                    w->groups_ok = false;
                else if (rc == ADI_UNAVAILABLE)
                    redis_trouble(w, &err);
                return;
            }
            size_t n = b.n;
            for (size_t i = 0; i < b.n; i++) {
                const adi_bus_entry_t *it = &b.items[i];
                entry_t e = {(int)q, it->id.ptr, it->msg, it->too_large};
                hold(w, (int)q, e.id);
                bump(rt, ST_RECLAIMED, 1);
                adi_metrics_count(rt->cfg.metrics, "adi_tasks_reclaimed_total", rt->labels[q], 1);
                ADI_LOG(NULL, ADI_LOG_WARN, "task.reclaimed",
                        "entry %s of %s silent over %" PRId64 " ms taken over by %s", e.id,
                        rt->streams[q], rt->cfg.visibility_ms, w->consumer);
                serve_held(w, &e);
            }
            adi_bus_batch_dispose(&b);
            if (n > 0 || strcmp(w->cursor[q], "0-0") == 0)
                break;
        }
    }
}

/* The queue index of stream `name`, or -1. */
static int queue_of_stream(const tr_runtime_t *rt, adi_str_t name)
{
    for (size_t q = 0; q < rt->nqueues; q++)
        if (adi_str_eq_c(name, rt->streams[q]))
            return (int)q;
    return -1;
}

/* XREADGROUP over every queue (COUNT 1 each): up to nqueues entries into out[]. */
static adi_err read_entries(worker_t *w, int block_ms, adi_pool_t *pool, entry_t *out, int *n,
                            adi_error_t *err)
{
    tr_runtime_t *rt = w->rt;
    *n = 0;
    char blocks[16];
    snprintf(blocks, sizeof(blocks), "%d", block_ms);
    const char *argv[8 + 2 * TR_QUEUES_MAX];
    int argc = 0;
    argv[argc++] = "XREADGROUP";
    argv[argc++] = "GROUP";
    argv[argc++] = ADI_TASKS_GROUP;
    argv[argc++] = w->consumer;
    argv[argc++] = "COUNT";
    argv[argc++] = "1";
    argv[argc++] = "BLOCK";
    argv[argc++] = blocks;
    argv[argc++] = "STREAMS";
    for (size_t q = 0; q < rt->nqueues; q++)
        argv[argc++] = rt->streams[q];
    for (size_t q = 0; q < rt->nqueues; q++)
        argv[argc++] = ">";
    adi_bus_value_t *v = NULL;
    adi_err rc = adi_bus_command(w->bus, block_ms, argc, argv, NULL, pool, &v, err);
    if (rc == ADI_INTERNAL && strstr(err->message, "NOGROUP") != NULL)
        return ADI_NOT_FOUND;
    if (rc != ADI_OK || v->type == ADI_BUS_V_NIL)
        return rc;
    if (v->type != ADI_BUS_V_ARRAY)
        return adi_error_set(err, ADI_INTERNAL, "XREADGROUP: unexpected reply");
    for (size_t i = 0; i < v->n; i++) {
        const adi_bus_value_t *s = &v->items[i];
        if (s->type != ADI_BUS_V_ARRAY || s->n != 2 || s->items[0].type != ADI_BUS_V_STR ||
            s->items[1].type != ADI_BUS_V_ARRAY)
            return adi_error_set(err, ADI_INTERNAL, "XREADGROUP: unexpected reply");
        int q = queue_of_stream(rt, s->items[0].s);
        const adi_bus_value_t *list = &s->items[1];
        for (size_t k = 0; q >= 0 && k < list->n && *n < (int)rt->nqueues; k++) {
            const adi_bus_value_t *en = &list->items[k];
            if (en->type != ADI_BUS_V_ARRAY || en->n < 1 || en->items[0].type != ADI_BUS_V_STR ||
                en->items[0].s.len >= ADI_BUS_ID_MAX)
                return adi_error_set(err, ADI_INTERNAL, "XREADGROUP: unexpected entry");
            entry_t *e = &out[(*n)++];
            memset(e, 0, sizeof(*e));
            e->queue = q;
            e->id = en->items[0].s.ptr;
            if (en->n < 2 || en->items[1].type != ADI_BUS_V_ARRAY)
                continue;
            const adi_bus_value_t *kv = &en->items[1];
            for (size_t f = 0; f + 1 < kv->n; f += 2) {
                if (kv->items[f].type != ADI_BUS_V_STR || kv->items[f + 1].type != ADI_BUS_V_STR ||
                    !adi_str_eq_c(kv->items[f].s, ADI_STREAM_FIELD))
                    continue;
                if (kv->items[f + 1].s.len > ENTRY_MAX)
                    e->too_large = true;
                else
                    e->msg = kv->items[f + 1].s;
                break;
            }
        }
    }
    return ADI_OK;
}

static bool ensure_groups(worker_t *w)
{
    tr_runtime_t *rt = w->rt;
    for (size_t q = 0; q < rt->nqueues; q++) {
        adi_error_t err;
        adi_error_clear(&err);
        if (adi_bus_ensure_group(w->bus, rt->streams[q], ADI_TASKS_GROUP, &err) != ADI_OK) {
            redis_trouble(w, &err);
            return false;
        }
    }
    redis_fine(w);
    return true;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    tr_runtime_t *rt = w->rt;
    w->next_reclaim = adi_mono_ms();
    for (size_t q = 0; q < rt->nqueues; q++)
        snprintf(w->cursor[q], ADI_BUS_ID_MAX, "0-0");

    while (!atomic_load(&rt->stop)) {
        if (!w->groups_ok) {
            w->groups_ok = ensure_groups(w);
            if (!w->groups_ok) {
                int64_t wait = adi_bus_retry_in_ms(w->bus);
                nap(rt, wait > 0 ? wait : 100, &rt->stop);
                continue;
            }
        }
        int64_t now = adi_mono_ms();
        if (now >= w->next_reclaim) {
            w->next_reclaim = now + reclaim_interval(rt);
            reclaim(w);
            continue;
        }
        int64_t block = w->next_reclaim - now;
        if (block > READ_BLOCK_MS)
            block = READ_BLOCK_MS;
        adi_pool_t pool;
        adi_pool_init(&pool);
        entry_t entries[TR_QUEUES_MAX];
        int n = 0;
        adi_error_t err;
        adi_error_clear(&err);
        adi_err rc = read_entries(w, block < 1 ? 1 : (int)block, &pool, entries, &n, &err);
        if (rc != ADI_OK) {
            adi_pool_dispose(&pool);
            if (rc == ADI_NOT_FOUND) {
                w->groups_ok = false;
                continue;
            }
            if (rc == ADI_UNAVAILABLE)
                redis_trouble(w, &err);
            else
                ADI_LOG(NULL, ADI_LOG_ERROR, "task.read_failed", "%s", err.message);
            int64_t wait = adi_bus_retry_in_ms(w->bus);
            nap(rt, wait > 0 ? wait : 100, &rt->stop);
            continue;
        }
        redis_fine(w);
        /* Every entry read is listed first, so the keeper keeps all of their claims fresh. */
        for (int i = 0; i < n; i++)
            hold(w, entries[i].queue, entries[i].id);
        for (int i = 0; i < n; i++)
            serve_held(w, &entries[i]);
        adi_pool_dispose(&pool);
    }

    /* Leave the group tidy: the consumer goes when it holds nothing, with its reply stream. */
    bool clean = true;
    for (size_t q = 0; q < rt->nqueues; q++) {
        adi_error_t err;
        adi_error_clear(&err);
        if (adi_bus_retire_consumer(w->bus, rt->streams[q], ADI_TASKS_GROUP, w->consumer, &err) !=
            ADI_OK)
            clean = false;
    }
    if (clean) {
        adi_error_t err;
        adi_error_clear(&err);
        adi_bus_del(w->bus, w->reply_stream, &err);
    }
    pthread_mutex_lock(&rt->mu);
    rt->running--;
    pthread_cond_broadcast(&rt->cv);
    pthread_mutex_unlock(&rt->mu);
    return NULL;
}

/* ---- the keeper --------------------------------------------------------------------------- */

/* Refreshes the claim of every entry the workers hold. */
static void heartbeat(tr_runtime_t *rt)
{
    for (int i = 0; i < rt->nworkers; i++) {
        worker_t *w = &rt->workers[i];
        held_t copy[TR_QUEUES_MAX];
        int n = 0;
        pthread_mutex_lock(&w->mu);
        for (int k = 0; k < w->nheld; k++)
            if (!w->held[k].abandoned)
                copy[n++] = w->held[k];
        pthread_mutex_unlock(&w->mu);
        for (int k = 0; k < n; k++) {
            const char *argv[4] = {rt->streams[copy[k].queue], ADI_TASKS_GROUP, w->consumer,
                                   copy[k].id};
            adi_error_t err;
            adi_error_clear(&err);
            int64_t done = 0;
            if (eval_int(rt->keeper_bus, heartbeat_lua, 1, 4, argv, NULL, &done, &err) != ADI_OK)
                return; /* Redis is away: the workers notice and log it */
            if (done == 1)
                bump(rt, ST_HB, 1);
            else
                ADI_LOG(NULL, ADI_LOG_WARN, "task.claim_lost",
                        "entry %s of %s is no longer held by %s", copy[k].id,
                        rt->streams[copy[k].queue], w->consumer);
        }
    }
}

static void move_due(tr_runtime_t *rt)
{
    for (size_t q = 0; q < rt->nqueues; q++) {
        for (int round = 0; round < MOVE_ROUNDS; round++) {
            adi_error_t err;
            adi_error_clear(&err);
            int64_t moved = 0;
            if (adi_tasks_move_due(rt->keeper_bus, rt->queues[q], MOVE_LIMIT, &moved, &err) !=
                ADI_OK)
                return;
            bump(rt, ST_MOVED, moved);
            if (moved < MOVE_LIMIT)
                break;
        }
    }
}

static void gauges(tr_runtime_t *rt)
{
    for (size_t q = 0; q < rt->nqueues; q++) {
        adi_task_queue_stats_t st;
        adi_error_t err;
        adi_error_clear(&err);
        if (adi_tasks_queue_stats(rt->keeper_bus, rt->queues[q], &st, &err) != ADI_OK)
            return;
        adi_metrics_gauge(rt->cfg.metrics, "adi_task_queue_waiting", rt->labels[q],
                          (double)st.waiting);
        adi_metrics_gauge(rt->cfg.metrics, "adi_task_queue_running", rt->labels[q],
                          (double)st.pending);
        adi_metrics_gauge(rt->cfg.metrics, "adi_task_queue_delayed", rt->labels[q],
                          (double)st.delayed);
        adi_metrics_gauge(rt->cfg.metrics, "adi_task_queue_dead", rt->labels[q], (double)st.dead);
    }
}

static void *keeper_main(void *arg)
{
    tr_runtime_t *rt = arg;
    int64_t hb_every = rt->cfg.visibility_ms / 3 > 10 ? rt->cfg.visibility_ms / 3 : 10;
    int64_t now = adi_mono_ms();
    int64_t next_hb = now + hb_every, next_move = now, next_gauge = now;
    while (!atomic_load(&rt->keeper_stop)) {
        now = adi_mono_ms();
        if (now >= next_hb) {
            next_hb = now + hb_every;
            heartbeat(rt);
        }
        bool moving = !atomic_load(&rt->stop);
        if (moving && now >= next_move) {
            next_move = now + MOVE_EVERY_MS;
            move_due(rt);
        }
        if (rt->cfg.metrics != NULL && now >= next_gauge) {
            next_gauge = now + GAUGE_EVERY_MS;
            gauges(rt);
        }
        int64_t wake = next_hb;
        if (moving && next_move < wake)
            wake = next_move;
        if (rt->cfg.metrics != NULL && next_gauge < wake)
            wake = next_gauge;
        nap(rt, wake - adi_mono_ms(), &rt->keeper_stop);
    }
    return NULL;
}

/* ---- lifetime ----------------------------------------------------------------------------- */

static adi_err check_config(const tr_runtime_config_t *c, adi_error_t *err)
{
    if (c->redis_url == NULL)
        return adi_error_set(err, ADI_INVALID, "REDIS_URL is required");
    if (c->queues == NULL || c->nqueues < 1 || c->nqueues > TR_QUEUES_MAX)
        return adi_error_set(err, ADI_INVALID, "TASK_QUEUES must name 1..%d queues", TR_QUEUES_MAX);
    for (size_t i = 0; i < c->nqueues; i++) {
        if (!adi_tasks_queue_valid(c->queues[i]))
            return adi_error_set(err, ADI_INVALID, "TASK_QUEUES: bad queue name");
        for (size_t k = 0; k < i; k++)
            if (strcmp(c->queues[i], c->queues[k]) == 0)
                return adi_error_set(err, ADI_INVALID, "TASK_QUEUES names %s twice", c->queues[i]);
    }
    if (c->workers < 1 || c->workers > TR_WORKERS_MAX)
        return adi_error_set(err, ADI_INVALID, "TASK_WORKERS must be 1..%d", TR_WORKERS_MAX);
    if (c->visibility_ms < 100)
        return adi_error_set(err, ADI_INVALID, "TASK_VISIBILITY_MS must be >= 100");
    if (c->max_attempts < 1 || c->max_attempts > 1000)
        return adi_error_set(err, ADI_INVALID, "TASK_MAX_ATTEMPTS must be 1..1000");
    if (c->time_limit_ms < 1 || c->time_limit_ms > 86400000)
        return adi_error_set(err, ADI_INVALID, "TASK_TIME_LIMIT_MS must be 1..86400000");
    if (c->retry_base_ms < 1 || c->retry_max_ms < c->retry_base_ms)
        return adi_error_set(err, ADI_INVALID,
                             "TASK_RETRY_BASE_MS must be >= 1 and TASK_RETRY_MAX_MS >= it");
    if (c->result_ttl_s < 1)
        return adi_error_set(err, ADI_INVALID, "TASK_RESULT_TTL_S must be >= 1");
    if (!valid_consumer_base(c->consumer_base))
        return adi_error_set(err, ADI_INVALID, "bad consumer name");
    if (c->tasks == NULL)
        return adi_error_set(err, ADI_INVALID, "no task table");
    for (const tr_task_def_t *const *p = c->tasks; *p != NULL; p++)
        if ((*p)->name == NULL || (*p)->fn == NULL)
            return adi_error_set(err, ADI_INVALID, "a task row without a name or function");
    return ADI_OK;
}

adi_err tr_runtime_new(const tr_runtime_config_t *cfg, tr_runtime_t **out, adi_error_t *err)
{
    *out = NULL;
    adi_err rc = check_config(cfg, err);
    if (rc != ADI_OK)
        return rc;
    tr_runtime_t *rt = adi_xcalloc(1, sizeof(*rt));
    rt->cfg = *cfg;
    rt->nqueues = cfg->nqueues;
    for (size_t q = 0; q < rt->nqueues; q++) {
        snprintf(rt->queues[q], sizeof(rt->queues[q]), "%s", cfg->queues[q]);
        snprintf(rt->streams[q], KEY_MAX, ADI_KEY_TASKS_FMT, rt->queues[q]);
        snprintf(rt->delayed[q], KEY_MAX, ADI_KEY_TASKS_DELAYED_FMT, rt->queues[q]);
        snprintf(rt->dead[q], KEY_MAX, ADI_KEY_TASKS_DEAD_FMT, rt->queues[q]);
        snprintf(rt->labels[q], sizeof(rt->labels[q]), "queue=\"%s\"", rt->queues[q]);
    }
    snprintf(rt->maxlen, sizeof(rt->maxlen), "%" PRId64,
             cfg->stream_maxlen > 0 ? cfg->stream_maxlen : (int64_t)DEFAULT_MAXLEN);
    snprintf(rt->ttl, sizeof(rt->ttl), "%" PRId64, cfg->result_ttl_s);
    atomic_init(&rt->stop, false);
    atomic_init(&rt->keeper_stop, false);
    atomic_init(&rt->redis_down, 0);
    for (size_t i = 0; i < sizeof(rt->st) / sizeof(rt->st[0]); i++)
        atomic_init(&rt->st[i], 0);
    pthread_mutex_init(&rt->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rt->cv, &ca);
    pthread_condattr_destroy(&ca);
    rt->nworkers = cfg->workers;
    rt->workers = adi_xcalloc((size_t)rt->nworkers, sizeof(*rt->workers));
    for (int i = 0; i < rt->nworkers; i++) {
        worker_t *w = &rt->workers[i];
        w->rt = rt;
        w->index = i;
        pthread_mutex_init(&w->mu, NULL);
        adi_buf_init(&w->result);
        snprintf(w->consumer, sizeof(w->consumer), "%s-t%d", cfg->consumer_base, i);
        snprintf(w->reply_stream, sizeof(w->reply_stream), ADI_KEY_SVC_REP_FMT, ADI_TASKS_GROUP,
                 w->consumer);
    }
    for (int i = 0; rc == ADI_OK && i < rt->nworkers; i++) {
        worker_t *w = &rt->workers[i];
        adi_bus_opts_t bo = {
            .url = cfg->redis_url, .maxlen = cfg->stream_maxlen, .reply_stream = w->reply_stream};
        rc = adi_bus_new(&bo, &w->bus, err);
    }
    if (rc == ADI_OK) {
        adi_bus_opts_t bo = {.url = cfg->redis_url, .maxlen = cfg->stream_maxlen};
        rc = adi_bus_new(&bo, &rt->keeper_bus, err);
    }
    if (rc != ADI_OK) {
        tr_runtime_free(rt);
        return rc;
    }
    *out = rt;
    return ADI_OK;
}

static void stop_keeper(tr_runtime_t *rt)
{
    atomic_store(&rt->keeper_stop, true);
    pthread_mutex_lock(&rt->mu);
    pthread_cond_broadcast(&rt->cv);
    pthread_mutex_unlock(&rt->mu);
    if (rt->keeper_started)
        pthread_join(rt->keeper, NULL);
    rt->keeper_started = false;
}

adi_err tr_runtime_start(tr_runtime_t *rt, adi_error_t *err)
{
    if (rt->started)
        return adi_error_set(err, ADI_INTERNAL, "task runtime already started");
    rt->started = true;
    for (int i = 0; i < rt->nworkers; i++) {
        worker_t *w = &rt->workers[i];
        pthread_mutex_lock(&rt->mu);
        rt->running++;
        pthread_mutex_unlock(&rt->mu);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            pthread_mutex_lock(&rt->mu);
            rt->running--;
            pthread_mutex_unlock(&rt->mu);
            tr_runtime_stop(rt);
            for (int k = 0; k < i; k++) {
                pthread_join(rt->workers[k].thread, NULL);
                rt->workers[k].started = false;
            }
            return adi_error_set(err, ADI_INTERNAL, "cannot start task worker %d", i);
        }
        w->started = true;
    }
    if (pthread_create(&rt->keeper, NULL, keeper_main, rt) != 0) {
        tr_runtime_stop(rt);
        for (int k = 0; k < rt->nworkers; k++) {
            pthread_join(rt->workers[k].thread, NULL);
            rt->workers[k].started = false;
        }
        return adi_error_set(err, ADI_INTERNAL, "cannot start the task keeper");
    }
    rt->keeper_started = true;
    return ADI_OK;
}

void tr_runtime_stop(tr_runtime_t *rt)
{
    atomic_store(&rt->stop, true);
    pthread_mutex_lock(&rt->mu);
    pthread_cond_broadcast(&rt->cv);
    pthread_mutex_unlock(&rt->mu);
}

bool tr_runtime_drain(tr_runtime_t *rt, int64_t deadline_ms)
{
    tr_runtime_stop(rt);
    int64_t left = deadline_ms - adi_mono_ms();
    struct timespec until = mono_after(left > 0 ? left : 0);
    pthread_mutex_lock(&rt->mu);
    int rc = 0;
    while (rt->running > 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&rt->cv, &rt->mu, &until);
    bool done = rt->running == 0;
    pthread_mutex_unlock(&rt->mu);
    stop_keeper(rt);
    if (done)
        return true;
    /* Hand back what still runs: another worker takes it at once; its outcome is discarded. */
    for (int i = 0; i < rt->nworkers; i++) {
        worker_t *w = &rt->workers[i];
        held_t copy[TR_QUEUES_MAX];
        int n = 0;
        pthread_mutex_lock(&w->mu);
        for (int k = 0; k < w->nheld; k++) {
            if (w->held[k].abandoned)
                continue;
            w->held[k].abandoned = true;
            copy[n++] = w->held[k];
        }
        pthread_mutex_unlock(&w->mu);
        for (int k = 0; k < n; k++) {
            adi_error_t err;
            adi_error_clear(&err);
            int64_t back = 0;
            if (hand_back(rt, rt->keeper_bus, w->consumer, copy[k].queue, copy[k].id,
                          copy[k].task_id, &back, &err) != ADI_OK) {
                ADI_LOG(NULL, ADI_LOG_ERROR, "task.hand_back_failed",
                        "entry %s of %s: %s; another worker takes it after the visibility timeout",
                        copy[k].id, rt->streams[copy[k].queue], err.message);
                continue;
            }
            if (back == 1)
                bump(rt, ST_BACK, 1);
            ADI_LOG(NULL, ADI_LOG_WARN, "task.handed_back",
                    "task %s (entry %s of %s) still running at the drain deadline; %s",
                    copy[k].task_id[0] ? copy[k].task_id : "-", copy[k].id,
                    rt->streams[copy[k].queue], back == 1 ? "re-queued" : "already taken over");
        }
    }
    return false;
}

void tr_runtime_stats(const tr_runtime_t *rt, tr_runtime_stats_t *out)
{
    tr_runtime_t *m = (tr_runtime_t *)(uintptr_t)rt; /* atomic loads need a non-const object */
    out->runs = atomic_load(&m->st[ST_RUNS]);
    out->succeeded = atomic_load(&m->st[ST_OK]);
    out->retried = atomic_load(&m->st[ST_RETRY]);
    out->failed = atomic_load(&m->st[ST_FAIL]);
    out->lost = atomic_load(&m->st[ST_LOST]);
    out->reclaimed = atomic_load(&m->st[ST_RECLAIMED]);
    out->sweeps = atomic_load(&m->st[ST_SWEEPS]);
    out->heartbeats = atomic_load(&m->st[ST_HB]);
    out->handed_back = atomic_load(&m->st[ST_BACK]);
    out->moved = atomic_load(&m->st[ST_MOVED]);
}

void tr_runtime_free(tr_runtime_t *rt)
{
    if (rt == NULL)
        return;
    tr_runtime_stop(rt);
    for (int i = 0; rt->workers != NULL && i < rt->nworkers; i++)
        if (rt->workers[i].started)
            pthread_join(rt->workers[i].thread, NULL);
    stop_keeper(rt);
    for (int i = 0; rt->workers != NULL && i < rt->nworkers; i++) {
        worker_t *w = &rt->workers[i];
        adi_bus_free(w->bus);
        adi_buf_dispose(&w->result);
        pthread_mutex_destroy(&w->mu);
    }
    adi_bus_free(rt->keeper_bus);
    free(rt->workers);
    pthread_cond_destroy(&rt->cv);
    pthread_mutex_destroy(&rt->mu);
    free(rt);
}
