/* SPDX-License-Identifier: MIT */
/*
 * The scheduler (see scheduler.h): the schedule file and its defaults, and one thread per
 * replica that competes for the leader's lease and, while leading, fires the due slots of every
 * schedule through a fenced Lua script. All Redis state lives in four kinds of keys: the lease
 * (sched:leader), the fencing counter (sched:fence), the last run of each schedule
 * (sched:last:<name>, epoch ms of the slot) and what a fire writes (tasks:<queue>, task:<id>).
 * The last runs are cached by the leader from the moment it acquires the lease; the fence makes a
 * stale cache harmless, because a fire by a replica that lost the lease is refused in Redis.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "adi/bus.h"
#include "adi/cron.h"
#include "adi/log.h"
#include "adi/messages.h"
#include "adi/ops.h"
#include "scheduler.h"

#define FILE_MAX_BYTES (1024 * 1024)
#define NAME_MAX_LEN   64
#define TASK_MAX_LEN   128
#define QUEUE_MAX_LEN  64
#define HOLDER_MAX_LEN 128
#define PREFIX_MAX_LEN 64
#define EVERY_MAX_S    31536000
#define ARGS_MAX_BYTES 65536
#define CATCHUP_LIMIT  100
#define KEY_LEN        (PREFIX_MAX_LEN + NAME_MAX_LEN + 32)
#define DEFAULT_MAXLEN 100000
#define ERROR_LOG_MS   10000
/* How far back the cron catch-up first looks (seconds); it widens 16-fold until enough slots. */
#define CATCHUP_WINDOW_S 3600

/* ---- Lua scripts ------------------------------------------------------------------------ */

/* KEYS: leader, fence. ARGV: holder, lease ms. Returns the new fencing token, or 0 (held). */
static const char acquire_lua[] =
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then\n"
    "  return redis.call('INCR', KEYS[2])\n"
    "end\n"
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "  return redis.call('INCR', KEYS[2])\n"
    "end\n"
    "return 0\n";

/* KEYS: leader, fence. ARGV: holder, token, lease ms. Compare-and-extend: 1, or 0 (lost). */
static const char renew_lua[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('GET', KEYS[2]) == ARGV[2] then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

/* KEYS: leader. ARGV: holder. Deletes the lease only when this holder has it. */
static const char release_lua[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                                  "  return redis.call('DEL', KEYS[1])\n"
                                  "end\n"
                                  "return 0\n";

/*
 * KEYS: fence, last. ARGV: token, now ms. The stored last run of a schedule; one never run before
 * starts now (no backfill). -1 when the fence moved on.
 */
static const char last_lua[] = "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end\n"
                               "local v = tonumber(redis.call('GET', KEYS[2]) or '')\n"
                               "if v then return v end\n"
                               "redis.call('SET', KEYS[2], ARGV[2])\n"
                               "return tonumber(ARGV[2])\n";

/*
 * KEYS: fence, last, stream, state. ARGV: token, slot ms, task_msg bytes, id, task name, queue,
 * maxlen, state ttl s, request id. Returns 1 (fired), 0 (this slot or a later one already ran)
 * or -1 (the fence moved on: leadership lost).
 */
static const char fire_lua[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end\n"
    "local last = tonumber(redis.call('GET', KEYS[2]) or '')\n"
    "if last and last >= tonumber(ARGV[2]) then return 0 end\n"
    "redis.call('SET', KEYS[2], ARGV[2])\n"
    "redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*', 'm', ARGV[3])\n"
    "local t = redis.call('TIME')\n"
    "local now = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))\n"
    "redis.call('HSET', KEYS[4], 'id', ARGV[4], 'state', 'PENDING', 'name', ARGV[5],\n"
    "  'queue', ARGV[6], 'tenant_id', '', 'attempt', '0', 'max_attempts', '0',\n"
    "  'request_id', ARGV[9], 'enqueued_at_ms', now, 'updated_at_ms', now)\n"
    "redis.call('EXPIRE', KEYS[4], ARGV[8])\n"
    "return 1\n";

/* ---- state ------------------------------------------------------------------------------ */

/* One schedule. */
typedef struct entry {
    char name[NAME_MAX_LEN + 1];     /* schedule name (unique) */
    char task[TASK_MAX_LEN + 1];     /* task name */
    char queue[QUEUE_MAX_LEN + 1];   /* queue it is enqueued on */
    char spec[ADI_CRON_MAX_LEN + 1]; /* the cron text, or "every <n>s", for logs */
    bool is_cron;                    /* cron (else every_s) */
    adi_cron_t cron;                 /* parsed cron expression */
    int64_t every_s;                 /* interval in seconds (when !is_cron) */
    bool enabled;                    /* fired at all */
    char *args;                      /* msgpack map of the task's args (heap) */
    size_t args_len;                 /* bytes of args */
    char last_key[KEY_LEN];          /* [prefix]sched:last:<name> */
    char labels[NAME_MAX_LEN + 16];  /* metric labels: schedule="<name>" */
    int64_t last_ms;                 /* last run (slot ms) as the leader knows it */
} entry_t;

struct tr_scheduler {
    char *redis_url;              /* REDIS_URL (heap copy) */
    char *holder;                 /* lease value: this replica's id (heap copy) */
    char *time_zone;              /* TIME_ZONE for logs (heap copy, may be "") */
    char key_leader[KEY_LEN];     /* [prefix]sched:leader */
    char key_fence[KEY_LEN];      /* [prefix]sched:fence */
    int64_t lease_ms;             /* lease length */
    int64_t tick_ms;              /* pause between rounds of the thread */
    int catchup_max;              /* due slots one schedule fires after a gap */
    char maxlen[24];              /* MAXLEN ~ of task streams, as text */
    adi_metrics_t *metrics;       /* metrics or NULL (borrowed) */
    adi_logctx_t log;             /* log context (copy) */
    int64_t (*now_ms)(void *arg); /* the clock deciding what is due */
    void *now_arg;                /* its argument */
    bool manual;                  /* no thread; tests call tr_scheduler_tick */
    bool keep_lease;              /* do not release the lease on stop */
    adi_bus_t *bus;               /* this scheduler's own Redis client */
    entry_t *entries;             /* the schedules */
    size_t n;                     /* entries */
    size_t enabled;               /* enabled entries */
    int64_t fence;                /* fencing token while leading, else 0 (ticking thread only) */
    int64_t renewed_mono;         /* monotonic ms of the last successful acquire/renew */
    atomic_bool leader;           /* fence > 0, readable from any thread */
    bool failing;                 /* the last round failed on Redis */
    int64_t error_logged_mono;    /* when the last Redis error was logged */
    pthread_t thread;             /* the scheduler thread */
    bool thread_started;          /* thread is joinable */
    pthread_mutex_t mu;           /* guards stopping */
    pthread_cond_t cv;            /* wakes the thread to stop */
    bool stopping;                /* stop was asked */
};

/* ---- the schedule file ------------------------------------------------------------------ */

/* True when `s` is 1..max characters of [A-Za-z0-9_.:-] (lower only: [a-z0-9_.-]). */
static bool name_ok(const char *s, size_t max, bool queue)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
                  c == '.' || (!queue && ((c >= 'A' && c <= 'Z') || c == ':'));
        if (!ok)
            return false;
    }
    return true;
}

/* Copies `s` for a message: printable ASCII without quotes, at most 40 characters. */
static void printable(const char *s, char out[48])
{
    size_t n = 0;
    for (; s[n] != '\0' && n < 40; n++) {
        unsigned char c = (unsigned char)s[n];
        out[n] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
    }
    if (s[n] != '\0') {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* Fails entry i (named `name` when known) at `field`: message and field error. */
static adi_err entry_fail(adi_error_t *err, size_t i, const char *name, const char *field,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static adi_err entry_fail(adi_error_t *err, size_t i, const char *name, const char *field,
                          const char *fmt, ...)
{
    char msg[ADI_ERROR_MSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char f[48];
    printable(field, f);
    if (name != NULL)
        adi_error_set(err, ADI_INVALID, "schedules[%zu] \"%s\": %s: %s", i, name, f, msg);
    else
        adi_error_set(err, ADI_INVALID, "schedules[%zu]: %s: %s", i, f, msg);
    char key[ADI_ERROR_FIELD_LEN];
    snprintf(key, sizeof(key), "schedules[%zu].%s", i, f);
    adi_error_field(err, key, "%s", msg);
    return ADI_INVALID;
}

/* True when `task` is in the NULL-terminated `names` (or there is no list). */
static bool task_known(const char *const *names, const char *task)
{
    if (names == NULL)
        return true;
    for (size_t i = 0; names[i] != NULL; i++)
        if (strcmp(names[i], task) == 0)
            return true;
    return false;
}

/* Sets the entry's derived fields (keys, labels) once name and spec are known. */
static void entry_finish(entry_t *e, const char *prefix)
{
    snprintf(e->last_key, sizeof(e->last_key), "%s" ADI_KEY_SCHED_LAST_FMT, prefix, e->name);
    snprintf(e->labels, sizeof(e->labels), "schedule=\"%s\"", e->name);
    e->last_ms = -1;
}

/* Reads the members of entry `i` (object `o`) into `e`. */
static adi_err parse_entry(size_t i, json_t *o, const tr_sched_config_t *cfg, entry_t *e,
                           adi_error_t *err)
{
    static const char *const allowed[] = {"name",  "task", "cron",    "every_s",
                                          "queue", "args", "enabled", NULL};
    if (!json_is_object(o))
        return entry_fail(err, i, NULL, "schedule", "must be a JSON object.");
    json_t *jname = json_object_get(o, "name");
    const char *name = json_is_string(jname) ? json_string_value(jname) : NULL;
    if (jname == NULL)
        return entry_fail(err, i, NULL, "name", "This field is required.");
    if (name == NULL || !name_ok(name, NAME_MAX_LEN, false))
        return entry_fail(err, i, NULL, "name",
                          "must be 1-%d characters of A-Z a-z 0-9 _ . : - (a string).",
                          NAME_MAX_LEN);
    snprintf(e->name, sizeof(e->name), "%s", name);

    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        bool ok = false;
        for (size_t k = 0; allowed[k] != NULL && !ok; k++)
            ok = strcmp(key, allowed[k]) == 0;
        if (!ok)
            return entry_fail(err, i, name, key,
                              "unknown member (allowed: name, task, cron, every_s, queue, args, "
                              "enabled).");
    }

    json_t *jtask = json_object_get(o, "task");
    if (jtask == NULL)
        return entry_fail(err, i, name, "task", "This field is required.");
    if (!json_is_string(jtask) || !name_ok(json_string_value(jtask), TASK_MAX_LEN, false))
        return entry_fail(err, i, name, "task",
                          "must be 1-%d characters of A-Z a-z 0-9 _ . : - (a string).",
                          TASK_MAX_LEN);
    if (!task_known(cfg->task_names, json_string_value(jtask)))
        return entry_fail(err, i, name, "task", "unknown task \"%s\".", json_string_value(jtask));
    snprintf(e->task, sizeof(e->task), "%s", json_string_value(jtask));

    json_t *jcron = json_object_get(o, "cron");
    json_t *jevery = json_object_get(o, "every_s");
    if ((jcron == NULL) == (jevery == NULL))
        return entry_fail(err, i, name, "cron", "give exactly one of cron and every_s.");
    if (jcron != NULL) {
        if (!json_is_string(jcron))
            return entry_fail(err, i, name, "cron", "must be a string such as \"0 3 * * 0\".");
        adi_error_t cerr;
        adi_error_clear(&cerr);
        adi_str_t text = {json_string_value(jcron), json_string_length(jcron)};
        if (adi_cron_parse(text, &e->cron, &cerr) != ADI_OK)
            return entry_fail(err, i, name, "cron", "%s", cerr.message);
        e->is_cron = true;
        snprintf(e->spec, sizeof(e->spec), "%s", json_string_value(jcron));
    } else {
        json_int_t n = json_is_integer(jevery) ? json_integer_value(jevery) : 0;
        if (n < 1 || n > EVERY_MAX_S)
            return entry_fail(err, i, name, "every_s",
                              "must be an integer between 1 and %d (seconds).", EVERY_MAX_S);
        e->every_s = (int64_t)n;
        snprintf(e->spec, sizeof(e->spec), "every %llds", (long long)n);
    }

    json_t *jqueue = json_object_get(o, "queue");
    const char *queue = "default";
    if (jqueue != NULL) {
        if (!json_is_string(jqueue) || !name_ok(json_string_value(jqueue), QUEUE_MAX_LEN, true))
            return entry_fail(err, i, name, "queue",
                              "must be 1-%d characters of a-z 0-9 _ . - (a string).",
                              QUEUE_MAX_LEN);
        queue = json_string_value(jqueue);
    }
    snprintf(e->queue, sizeof(e->queue), "%s", queue);

    json_t *jenabled = json_object_get(o, "enabled");
    if (jenabled != NULL && !json_is_boolean(jenabled))
        return entry_fail(err, i, name, "enabled", "must be true or false.");
    e->enabled = jenabled == NULL || json_is_true(jenabled);

    json_t *jargs = json_object_get(o, "args");
    if (jargs != NULL && !json_is_object(jargs))
        return entry_fail(err, i, name, "args", "must be a JSON object.");
    char *text = jargs != NULL ? json_dumps(jargs, JSON_COMPACT) : NULL;
    adi_buf_t mp;
    adi_buf_init(&mp);
    adi_error_t aerr;
    adi_error_clear(&aerr);
    adi_err rc = adi_json_to_msgpack(text != NULL ? text : "{}", text != NULL ? strlen(text) : 2,
                                     &mp, &aerr);
    free(text);
    if (rc == ADI_OK && mp.len > ARGS_MAX_BYTES)
        rc = entry_fail(err, i, name, "args", "is larger than %d bytes.", ARGS_MAX_BYTES);
    else if (rc != ADI_OK)
        rc = entry_fail(err, i, name, "args", "%s", aerr.message);
    if (rc == ADI_OK) {
        e->args = adi_xmalloc(mp.len);
        memcpy(e->args, mp.data, mp.len);
        e->args_len = mp.len;
    }
    adi_buf_dispose(&mp);
    return rc;
}

/* Frees the entries' args and the array. */
static void entries_free(entry_t *entries, size_t n)
{
    for (size_t i = 0; entries != NULL && i < n; i++)
        free(entries[i].args);
    free(entries);
}

/* Reads the schedule file into s->entries. */
static adi_err load_file(tr_scheduler_t *s, const char *path, const tr_sched_config_t *cfg,
                         const char *prefix, adi_error_t *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return adi_error_set(err, ADI_NOT_FOUND, "Schedule file %.120s cannot be read: %s.", path,
                             strerror(errno));
    if (!S_ISREG(st.st_mode))
        return adi_error_set(err, ADI_NOT_FOUND, "Schedule file %.120s is not a regular file.",
                             path);
    if (st.st_size > FILE_MAX_BYTES)
        return adi_error_set(err, ADI_TOO_LARGE, "Schedule file %.120s is larger than 1 MiB.",
                             path);
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL)
        return adi_error_set(err, ADI_INVALID, "Schedule file: line %d, column %d: %.120s", je.line,
                             je.column, je.text);
    adi_err rc = ADI_OK;
    json_t *list = json_object_get(root, "schedules");
    if (!json_is_object(root) || json_object_size(root) != 1 || !json_is_array(list)) {
        rc = adi_error_set(err, ADI_INVALID,
                           "Schedule file: expected {\"schedules\": [...]} and nothing else.");
        goto out;
    }
    size_t n = json_array_size(list);
    if (n > TR_SCHED_MAX) {
        rc =
            adi_error_set(err, ADI_INVALID, "Schedule file: more than %d schedules.", TR_SCHED_MAX);
        goto out;
    }
    s->entries = adi_xcalloc(n > 0 ? n : 1, sizeof(entry_t));
    for (size_t i = 0; i < n; i++) {
        entry_t *e = &s->entries[i];
        rc = parse_entry(i, json_array_get(list, i), cfg, e, err);
        if (rc != ADI_OK)
            goto out;
        s->n = i + 1;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(s->entries[j].name, e->name) == 0) {
                rc = entry_fail(err, i, e->name, "name", "repeats the name of schedules[%zu].", j);
                goto out;
            }
        }
        entry_finish(e, prefix);
    }
out:
    json_decref(root);
    return rc;
}

/* The built-in schedules used when there is no file. */
static void load_defaults(tr_scheduler_t *s, const char *prefix)
{
    static const struct {
        const char *name, *task, *cron;
    } defs[] = {
        {"rotate-deks", "rotate_deks", "0 3 * * 0"},
        {"sync-meta-example", "sync_meta_example", "0 * * * *"},
        {"sync-google-example", "sync_google_example", "0 * * * *"},
    };
    size_t n = sizeof(defs) / sizeof(defs[0]);
    s->entries = adi_xcalloc(n, sizeof(entry_t));
    for (size_t i = 0; i < n; i++) {
        entry_t *e = &s->entries[i];
        snprintf(e->name, sizeof(e->name), "%s", defs[i].name);
        snprintf(e->task, sizeof(e->task), "%s", defs[i].task);
        snprintf(e->queue, sizeof(e->queue), "%s", "default");
        snprintf(e->spec, sizeof(e->spec), "%s", defs[i].cron);
        ADI_ASSERT(adi_cron_parse(adi_str_c(defs[i].cron), &e->cron, NULL) == ADI_OK);
        e->is_cron = true;
        e->enabled = true;
        e->args = adi_xmalloc(1);
        e->args[0] = (char)0x80; /* msgpack {} */
        e->args_len = 1;
        entry_finish(e, prefix);
        s->n = i + 1;
    }
}

/* ---- slots ------------------------------------------------------------------------------ */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/*
 * The slots of `e` due in (last_ms, now_ms]: the latest `cap` of them in `slots` (ascending),
 * their number in `*n`, and in `*skipped` how many older due slots the cap left out (a lower
 * bound for a cron schedule whose gap reaches beyond the search window).
 */
static void due_slots(const entry_t *e, int64_t last_ms, int64_t now_ms, int cap, int64_t *slots,
                      int *n, int64_t *skipped)
{
    *n = 0;
    *skipped = 0;
    if (now_ms <= last_ms)
        return;
    if (!e->is_cron) {
        int64_t every = e->every_s * 1000;
        int64_t first = (floor_div(last_ms, every) + 1) * every;
        int64_t latest = floor_div(now_ms, every) * every;
        if (first > latest)
            return;
        int64_t total = (latest - first) / every + 1;
        int64_t take = total < cap ? total : cap;
        for (int64_t k = 0; k < take; k++)
            slots[k] = latest - (take - 1 - k) * every;
        *n = (int)take;
        *skipped = total - take;
        return;
    }
    int64_t last_s = floor_div(last_ms, 1000);
    int64_t now_s = floor_div(now_ms, 1000);
    int64_t t = 0;
    if (adi_cron_next(&e->cron, last_s, &t, NULL) != ADI_OK || t > now_s)
        return;
    /* Look back from now over a widening window until it holds `cap` slots or reaches last. */
    int64_t window = CATCHUP_WINDOW_S;
    for (;;) {
        int64_t from = now_s - window > last_s ? now_s - window : last_s;
        int64_t count = 0;
        int64_t ring[CATCHUP_LIMIT];
        for (int64_t at = from; adi_cron_next(&e->cron, at, &t, NULL) == ADI_OK && t <= now_s;
             at = t)
            ring[count++ % cap] = t;
        if (count >= cap || from == last_s) {
            int64_t take = count < cap ? count : cap;
            for (int64_t k = 0; k < take; k++)
                slots[k] = ring[(count - take + k) % cap] * 1000;
            *n = (int)take;
            *skipped = count - take;
            /* Due slots before the window were skipped too: count at least one. */
            if (from > last_s && adi_cron_next(&e->cron, last_s, &t, NULL) == ADI_OK && t <= from)
                *skipped += 1;
            return;
        }
        window *= 16;
    }
}

/* ---- Redis rounds ----------------------------------------------------------------------- */

static int64_t clock_now(const tr_scheduler_t *s)
{
    return s->now_ms != NULL ? s->now_ms(s->now_arg) : adi_now_ms();
}

/* Runs `script` with `argc` arguments (the first `nkeys` keys) expecting an integer result. */
static adi_err eval_int(tr_scheduler_t *s, adi_pool_t *pool, const char *script, int nkeys,
                        int argc, const char **argv, const size_t *lens, int64_t *out,
                        adi_error_t *err)
{
    *out = 0;
    adi_bus_value_t *v = NULL;
    adi_err rc = adi_bus_eval(s->bus, script, nkeys, argc, argv, lens, pool, &v, err);
    if (rc != ADI_OK)
        return rc;
    if (v->type != ADI_BUS_V_INT)
        return adi_error_set(err, ADI_INTERNAL, "scheduler script: unexpected reply");
    *out = v->i;
    return ADI_OK;
}

/* Leadership is gone (or was never confirmed): stop firing until acquired again. */
static void lose(tr_scheduler_t *s, const char *why)
{
    if (s->fence == 0)
        return;
    ADI_LOG(&s->log, ADI_LOG_WARN, "scheduler.leader_lost", "holder %s fence %lld: %s", s->holder,
            (long long)s->fence, why);
    s->fence = 0;
    atomic_store(&s->leader, false);
    adi_metrics_gauge(s->metrics, "adi_scheduler_leader", "", 0);
    /* Another leader may fire meanwhile: read the last runs again on the next acquisition. */
    for (size_t i = 0; i < s->n; i++)
        s->entries[i].last_ms = -1;
}

/*
 * Reads the last run of `e` from Redis (a schedule never run before starts now: no backfill).
 * Clears the leadership instead when the fence moved on.
 */
static adi_err load_last(tr_scheduler_t *s, adi_pool_t *pool, entry_t *e, adi_error_t *err)
{
    char token[24];
    char now[24];
    snprintf(token, sizeof(token), "%lld", (long long)s->fence);
    snprintf(now, sizeof(now), "%lld", (long long)clock_now(s));
    const char *argv[4] = {s->key_fence, e->last_key, token, now};
    int64_t v = 0;
    adi_err rc = eval_int(s, pool, last_lua, 2, 4, argv, NULL, &v, err);
    if (rc != ADI_OK)
        return rc;
    if (v < 0)
        lose(s, "the fence moved on while reading the last runs");
    else
        e->last_ms = v;
    return ADI_OK;
}

/* Fires slot `slot_ms` of `e`: *res = 1 fired, 0 already ran, -1 refused (fence moved on). */
static adi_err fire(tr_scheduler_t *s, adi_pool_t *pool, const entry_t *e, int64_t slot_ms,
                    int64_t *res, adi_error_t *err)
{
    char id[37];
    adi_uuid_v4(id);
    char request_id[NAME_MAX_LEN + 32];
    snprintf(request_id, sizeof(request_id), "sched:%s:%lld", e->name, (long long)slot_ms);
    task_msg t;
    memset(&t, 0, sizeof(t));
    t.id = adi_str_c(id);
    t.name = adi_str_c(e->task);
    t.args = (adi_str_t){e->args, e->args_len};
    t.request_id = adi_str_c(request_id);
    t.enqueued_at_ms = adi_now_ms();
    adi_buf_t msg;
    adi_buf_init(&msg);
    adi_proto_encode(&task_msg__desc, &t, &msg);

    char stream[QUEUE_MAX_LEN + 16];
    char state[64];
    char token[24];
    char slot[24];
    char ttl[24];
    snprintf(stream, sizeof(stream), ADI_KEY_TASKS_FMT, e->queue);
    snprintf(state, sizeof(state), ADI_KEY_TASK_STATE_FMT, id);
    snprintf(token, sizeof(token), "%lld", (long long)s->fence);
    snprintf(slot, sizeof(slot), "%lld", (long long)slot_ms);
    snprintf(ttl, sizeof(ttl), "%d", TR_SCHED_STATE_TTL_S);
    const char *argv[13] = {s->key_fence, e->last_key, stream,    state,   token,
                            slot,         msg.data,    id,        e->task, e->queue,
                            s->maxlen,    ttl,         request_id};
    size_t lens[13];
    for (int i = 0; i < 13; i++)
        lens[i] = strlen(argv[i]);
    lens[6] = msg.len;
    adi_err rc = eval_int(s, pool, fire_lua, 4, 13, argv, lens, res, err);
    adi_buf_dispose(&msg);
    if (rc == ADI_OK && *res == 1)
        ADI_LOG(&s->log, ADI_LOG_INFO, "scheduler.fired",
                "schedule %s task %s queue %s slot %lld id %s fence %lld", e->name, e->task,
                e->queue, (long long)slot_ms, id, (long long)s->fence);
    return rc;
}

/* Fires what is due for every enabled schedule. */
static adi_err fire_due(tr_scheduler_t *s, adi_pool_t *pool, tr_sched_tick_t *st, adi_error_t *err)
{
    int64_t now = clock_now(s);
    for (size_t i = 0; i < s->n && s->fence > 0; i++) {
        entry_t *e = &s->entries[i];
        if (!e->enabled)
            continue;
        if (e->last_ms < 0) {
            adi_err rc = load_last(s, pool, e, err);
            if (rc != ADI_OK || s->fence == 0)
                return rc;
        }
        int64_t slots[CATCHUP_LIMIT];
        int n = 0;
        int64_t skipped = 0;
        due_slots(e, e->last_ms, now, s->catchup_max, slots, &n, &skipped);
        if (skipped > 0) {
            ADI_LOG(&s->log, ADI_LOG_WARN, "scheduler.coalesced",
                    "schedule %s: %lld older due slot(s) since %lld skipped, firing the latest %d",
                    e->name, (long long)skipped, (long long)e->last_ms, n);
            adi_metrics_count(s->metrics, "adi_scheduler_coalesced_total", e->labels,
                              (double)skipped);
            st->coalesced += (int)(skipped > 1000000 ? 1000000 : skipped);
        }
        for (int k = 0; k < n; k++) {
            int64_t res = 0;
            adi_err rc = fire(s, pool, e, slots[k], &res, err);
            if (rc != ADI_OK)
                return rc;
            if (res < 0) {
                st->refused++;
                adi_metrics_count(s->metrics, "adi_scheduler_refused_total", "", 1);
                lose(s, "a fire was refused: another replica holds a newer fence");
                return ADI_OK;
            }
            if (res == 1) {
                st->fired++;
                adi_metrics_count(s->metrics, "adi_scheduler_fired_total", e->labels, 1);
            }
            if (slots[k] > e->last_ms)
                e->last_ms = slots[k];
        }
    }
    return ADI_OK;
}

/* One round: keep or get the lease, then fire. */
static adi_err round_run(tr_scheduler_t *s, tr_sched_tick_t *st, adi_error_t *err)
{
    memset(st, 0, sizeof(*st));
    st->schedules = s->enabled;
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_err rc = ADI_OK;
    char lease[24];
    snprintf(lease, sizeof(lease), "%lld", (long long)s->lease_ms);
    int64_t mono = adi_mono_ms();

    if (s->fence > 0 && mono - s->renewed_mono >= s->lease_ms / 3) {
        char token[24];
        snprintf(token, sizeof(token), "%lld", (long long)s->fence);
        const char *argv[5] = {s->key_leader, s->key_fence, s->holder, token, lease};
        int64_t ok = 0;
        rc = eval_int(s, &pool, renew_lua, 2, 5, argv, NULL, &ok, err);
        if (rc != ADI_OK) {
            if (mono - s->renewed_mono >= s->lease_ms)
                lose(s, "the lease ran out while Redis was unreachable");
            goto out;
        }
        if (ok == 1)
            s->renewed_mono = mono;
        else
            lose(s, "the lease is held by another replica or expired");
    }
    if (s->fence == 0) {
        const char *argv[4] = {s->key_leader, s->key_fence, s->holder, lease};
        int64_t token = 0;
        rc = eval_int(s, &pool, acquire_lua, 2, 4, argv, NULL, &token, err);
        if (rc != ADI_OK)
            goto out;
        if (token > 0) {
            s->fence = token;
            s->renewed_mono = mono;
            atomic_store(&s->leader, true);
            adi_metrics_gauge(s->metrics, "adi_scheduler_leader", "", 1);
            ADI_LOG(&s->log, ADI_LOG_INFO, "scheduler.leader_acquired",
                    "holder %s fence %lld lease %lld ms", s->holder, (long long)token,
                    (long long)s->lease_ms);
        }
    }
    if (s->fence > 0)
        rc = fire_due(s, &pool, st, err);
out:
    st->leader = s->fence > 0;
    st->fence = s->fence;
    adi_pool_dispose(&pool);
    return rc;
}

/* Logs a failed round at most every ERROR_LOG_MS, and the recovery once. */
static void report(tr_scheduler_t *s, adi_err rc, const adi_error_t *err)
{
    int64_t mono = adi_mono_ms();
    if (rc == ADI_OK) {
        if (s->failing)
            ADI_LOG(&s->log, ADI_LOG_INFO, "scheduler.recovered", "Redis answers again");
        s->failing = false;
        return;
    }
    if (!s->failing || mono - s->error_logged_mono >= ERROR_LOG_MS) {
        ADI_LOG(&s->log, ADI_LOG_WARN, "scheduler.redis_error", "%s: %s", adi_err_name(rc),
                err->message);
        s->error_logged_mono = mono;
    }
    s->failing = true;
}

static void *thread_main(void *arg)
{
    tr_scheduler_t *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        pthread_mutex_unlock(&s->mu);
        tr_sched_tick_t st;
        adi_error_t err;
        adi_error_clear(&err);
        adi_err rc = round_run(s, &st, &err);
        report(s, rc, &err);
        pthread_mutex_lock(&s->mu);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        int64_t ns = (int64_t)until.tv_nsec + (s->tick_ms % 1000) * 1000000;
        until.tv_sec += (time_t)(s->tick_ms / 1000 + ns / 1000000000);
        until.tv_nsec = (long)(ns % 1000000000);
        while (!s->stopping) {
            if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT)
                break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

static void scheduler_free(tr_scheduler_t *s)
{
    adi_bus_free(s->bus);
    entries_free(s->entries, s->n);
    free(s->redis_url);
    free(s->holder);
    free(s->time_zone);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* Checks the settings that do not come from the file. */
static adi_err check_config(const tr_sched_config_t *cfg, adi_error_t *err)
{
    if (cfg->redis_url == NULL || cfg->redis_url[0] == '\0')
        return adi_error_set(err, ADI_INVALID, "The scheduler needs REDIS_URL.");
    if (cfg->holder == NULL || cfg->holder[0] == '\0' || strlen(cfg->holder) > HOLDER_MAX_LEN)
        return adi_error_set(err, ADI_INVALID,
                             "The scheduler needs a holder id of 1-%d characters.", HOLDER_MAX_LEN);
    if (cfg->lease_ms != 0 && cfg->lease_ms < TR_SCHED_LEASE_MIN_MS)
        return adi_error_set(err, ADI_INVALID, "SCHEDULER_LEASE_MS must be at least %d.",
                             TR_SCHED_LEASE_MIN_MS);
    if (cfg->catchup_max < 0 || cfg->catchup_max > CATCHUP_LIMIT)
        return adi_error_set(err, ADI_INVALID, "The catch-up cap must be 1-%d.", CATCHUP_LIMIT);
    if (cfg->stream_maxlen < 0)
        return adi_error_set(err, ADI_INVALID, "STREAM_MAXLEN must not be negative.");
    if (cfg->key_prefix != NULL && strlen(cfg->key_prefix) > PREFIX_MAX_LEN)
        return adi_error_set(err, ADI_INVALID, "The key prefix is longer than %d.", PREFIX_MAX_LEN);
    return ADI_OK;
}

adi_err tr_scheduler_start(const tr_sched_config_t *cfg, tr_scheduler_t **out, adi_error_t *err)
{
    *out = NULL;
    adi_err rc = check_config(cfg, err);
    if (rc != ADI_OK)
        return rc;
    tr_scheduler_t *s = adi_xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&s->leader, false);
    const char *prefix = cfg->key_prefix != NULL ? cfg->key_prefix : "";
    s->redis_url = adi_xstrdup(cfg->redis_url);
    s->holder = adi_xstrdup(cfg->holder);
    s->time_zone = adi_xstrdup(cfg->time_zone != NULL ? cfg->time_zone : "");
    snprintf(s->key_leader, sizeof(s->key_leader), "%s%s", prefix, ADI_KEY_SCHED_LEADER);
    snprintf(s->key_fence, sizeof(s->key_fence), "%s%s", prefix, ADI_KEY_SCHED_FENCE);
    s->lease_ms = cfg->lease_ms > 0 ? cfg->lease_ms : TR_SCHED_LEASE_MS;
    s->tick_ms = s->lease_ms / 3 < 1000 ? s->lease_ms / 3 : 1000;
    s->catchup_max = cfg->catchup_max > 0 ? cfg->catchup_max : TR_SCHED_CATCHUP_MAX;
    snprintf(s->maxlen, sizeof(s->maxlen), "%lld",
             (long long)(cfg->stream_maxlen > 0 ? cfg->stream_maxlen : DEFAULT_MAXLEN));
    s->metrics = cfg->metrics;
    if (cfg->log != NULL)
        s->log = *cfg->log;
    else
        s->log.op = "scheduler";
    s->now_ms = cfg->now_ms;
    s->now_arg = cfg->now_arg;
    s->manual = cfg->manual;
    s->keep_lease = cfg->keep_lease_on_stop;

    bool from_file = cfg->schedule_file != NULL && cfg->schedule_file[0] != '\0';
    if (from_file)
        rc = load_file(s, cfg->schedule_file, cfg, prefix, err);
    else
        load_defaults(s, prefix);
    if (rc != ADI_OK)
        goto fail;
    for (size_t i = 0; i < s->n; i++)
        s->enabled += s->entries[i].enabled ? 1 : 0;

    adi_bus_opts_t bo = {.url = s->redis_url, .connect_timeout_ms = 2000};
    rc = adi_bus_new(&bo, &s->bus, err);
    if (rc != ADI_OK)
        goto fail;
    adi_metrics_gauge(s->metrics, "adi_scheduler_leader", "", 0);
    ADI_LOG(&s->log, ADI_LOG_INFO, "scheduler.started",
            "holder %s: %zu schedule(s), %zu enabled, from %s; lease %lld ms; time zone %s",
            s->holder, s->n, s->enabled, from_file ? "SCHEDULE_FILE" : "the defaults",
            (long long)s->lease_ms, s->time_zone[0] != '\0' ? s->time_zone : "(process)");
    for (size_t i = 0; i < s->n; i++)
        ADI_LOG(&s->log, ADI_LOG_DEBUG, "scheduler.schedule", "%s: task %s queue %s %s%s",
                s->entries[i].name, s->entries[i].task, s->entries[i].queue, s->entries[i].spec,
                s->entries[i].enabled ? "" : " (disabled)");
    if (!s->manual) {
        if (pthread_create(&s->thread, NULL, thread_main, s) != 0) {
            rc = adi_error_set(err, ADI_INTERNAL, "The scheduler thread could not start.");
            goto fail;
        }
        s->thread_started = true;
    }
    *out = s;
    return ADI_OK;
fail:
    scheduler_free(s);
    return rc;
}

adi_err tr_scheduler_tick(tr_scheduler_t *s, tr_sched_tick_t *out, adi_error_t *err)
{
    tr_sched_tick_t st;
    if (out == NULL)
        out = &st;
    memset(out, 0, sizeof(*out));
    if (!s->manual)
        return adi_error_set(err, ADI_INVALID, "tr_scheduler_tick needs a manual scheduler.");
    return round_run(s, out, err);
}

bool tr_scheduler_is_leader(const tr_scheduler_t *s)
{
    return s != NULL && atomic_load(&s->leader);
}

void tr_scheduler_stop(tr_scheduler_t *s)
{
    if (s == NULL)
        return;
    if (s->thread_started) {
        pthread_mutex_lock(&s->mu);
        s->stopping = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    if (s->fence > 0 && !s->keep_lease) {
        adi_pool_t pool;
        adi_pool_init(&pool);
        const char *argv[2] = {s->key_leader, s->holder};
        int64_t released = 0;
        adi_error_t err;
        adi_error_clear(&err);
        if (eval_int(s, &pool, release_lua, 1, 2, argv, NULL, &released, &err) != ADI_OK)
            ADI_LOG(&s->log, ADI_LOG_WARN, "scheduler.release_failed",
                    "the lease will expire by itself: %s", err.message);
        adi_pool_dispose(&pool);
    }
    adi_metrics_gauge(s->metrics, "adi_scheduler_leader", "", 0);
    ADI_LOG(&s->log, ADI_LOG_INFO, "scheduler.stopped", "holder %s%s", s->holder,
            s->fence > 0 && !s->keep_lease ? ": lease released" : "");
    scheduler_free(s);
}
