/* SPDX-License-Identifier: MIT */
/*
 * The synchronous Redis client of a worker thread: URL parsing, connecting with AUTH and SELECT,
 * reconnecting with exponential backoff after any connection error, and the stream commands the
 * bus needs (XGROUP CREATE, XREADGROUP, XAUTOCLAIM, XREAD, XACK, XADD, XINFO GROUPS). Every command
 * goes through redisCommandArgv, so payloads are binary-safe and never parsed as a format string.
 * Replies are parsed defensively: an unexpected shape is an ADI_INTERNAL error, never a crash.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "adi/bus.h"
#include "bus_int.h"

#define DEFAULT_CONNECT_MS 2000
#define DEFAULT_COMMAND_MS 5000
#define DEFAULT_MAXLEN     100000
#define BACKOFF_MIN_MS     100
#define BACKOFF_MAX_MS     2000

/* ---- URL -------------------------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Copies s[0..n) into a new string, decoding %XX escapes; NULL when an escape is malformed. */
static char *pct_decode(const char *s, size_t n)
{
    char *out = adi_xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        if (i + 2 >= n || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0) {
            free(out);
            return NULL;
        }
        out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
        i += 2;
    }
    out[o] = '\0';
    return out;
}

static adi_err parse_url(adi_bus_t *b, const char *url, adi_error_t *err)
{
    static const char scheme[] = "redis://";
    if (url == NULL || strncmp(url, scheme, sizeof(scheme) - 1) != 0)
        return adi_error_set(err, ADI_INVALID, "REDIS_URL must start with redis://");
    const char *p = url + sizeof(scheme) - 1;
    const char *end = p + strlen(p);
    const char *slash = memchr(p, '/', (size_t)(end - p));
    const char *auth_end = slash ? slash : end;
    const char *at = NULL;
    for (const char *q = p; q < auth_end; q++)
        if (*q == '@')
            at = q;
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon != NULL) {
            if (colon > p)
                b->user = pct_decode(p, (size_t)(colon - p));
            b->password = pct_decode(colon + 1, (size_t)(at - colon - 1));
            if ((colon > p && b->user == NULL) || b->password == NULL)
                return adi_error_set(err, ADI_INVALID,
                                     "REDIS_URL has a malformed user or password");
        } else if (at > p) {
            /* redis://password@host is accepted as a password, as redis-cli does. */
            b->password = pct_decode(p, (size_t)(at - p));
            if (b->password == NULL)
                return adi_error_set(err, ADI_INVALID, "REDIS_URL has a malformed password");
        }
        p = at + 1;
    }
    const char *host_start = p;
    const char *host_end;
    const char *port_start = NULL;
    if (*p == '[') {
        host_start = p + 1;
        host_end = memchr(host_start, ']', (size_t)(auth_end - host_start));
        if (host_end == NULL)
            return adi_error_set(err, ADI_INVALID, "REDIS_URL has a malformed IPv6 host");
        if (host_end + 1 < auth_end) {
            if (host_end[1] != ':')
                return adi_error_set(err, ADI_INVALID, "REDIS_URL has a malformed host");
            port_start = host_end + 2;
        }
    } else {
        host_end = memchr(p, ':', (size_t)(auth_end - p));
        if (host_end != NULL)
            port_start = host_end + 1;
        else
            host_end = auth_end;
    }
    if (host_end == host_start)
        return adi_error_set(err, ADI_INVALID, "REDIS_URL has no host");
    b->host = adi_xmalloc((size_t)(host_end - host_start) + 1);
    memcpy(b->host, host_start, (size_t)(host_end - host_start));
    b->host[host_end - host_start] = '\0';
    b->port = 6379;
    if (port_start != NULL) {
        long v = 0;
        if (port_start == auth_end)
            return adi_error_set(err, ADI_INVALID, "REDIS_URL has an empty port");
        for (const char *q = port_start; q < auth_end; q++) {
            if (*q < '0' || *q > '9' || v > 65535)
                return adi_error_set(err, ADI_INVALID, "REDIS_URL has a malformed port");
            v = v * 10 + (*q - '0');
        }
        if (v < 1 || v > 65535)
            return adi_error_set(err, ADI_INVALID, "REDIS_URL port must be 1..65535");
        b->port = (int)v;
    }
    b->db = 0;
    if (slash != NULL && slash + 1 < end) {
        long v = 0;
        for (const char *q = slash + 1; q < end; q++) {
            if (*q < '0' || *q > '9' || v > 100000)
                return adi_error_set(err, ADI_INVALID, "REDIS_URL database must be a number");
            v = v * 10 + (*q - '0');
        }
        b->db = (int)v;
    }
    return ADI_OK;
}

/* ---- lifetime --------------------------------------------------------------------------- */

adi_err adi_bus_new(const adi_bus_opts_t *opts, adi_bus_t **out, adi_error_t *err)
{
    *out = NULL;
    adi_bus_t *b = adi_xcalloc(1, sizeof(*b));
    adi_err rc = parse_url(b, opts->url, err);
    if (rc != ADI_OK) {
        adi_bus_free(b);
        return rc;
    }
    b->connect_timeout_ms =
        opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : DEFAULT_CONNECT_MS;
    b->command_timeout_ms =
        opts->command_timeout_ms > 0 ? opts->command_timeout_ms : DEFAULT_COMMAND_MS;
    snprintf(b->maxlen, sizeof(b->maxlen), "%" PRId64,
             opts->maxlen > 0 ? opts->maxlen : (int64_t)DEFAULT_MAXLEN);
    if (opts->reply_stream != NULL)
        b->reply_stream = adi_xstrdup(opts->reply_stream);
    *out = b;
    return ADI_OK;
}

void adi_bus_free(adi_bus_t *bus)
{
    if (bus == NULL)
        return;
    if (bus->c != NULL)
        redisFree(bus->c);
    free(bus->host);
    free(bus->user);
    if (bus->password != NULL) {
        /* The password is a secret: wipe it before the memory returns to the allocator. */
        volatile char *p = bus->password;
        while (*p)
            *p++ = 0;
    }
    free(bus->password);
    free(bus->reply_stream);
    free(bus);
}

bool adi_bus_connected(const adi_bus_t *bus)
{
    return bus->c != NULL;
}

int64_t adi_bus_retry_in_ms(const adi_bus_t *bus)
{
    if (bus->c != NULL)
        return 0;
    int64_t left = bus->retry_at_ms - adi_mono_ms();
    return left > 0 ? left : 0;
}

const char *adi_bus__reply_stream(const adi_bus_t *bus)
{
    return bus->reply_stream;
}

/* ---- connection ------------------------------------------------------------------------- */

static struct timeval tv_ms(int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

/* Forgets a broken connection; the next call reconnects at once (a restarted Redis is back). */
static void drop(adi_bus_t *b)
{
    if (b->c != NULL)
        redisFree(b->c);
    b->c = NULL;
    b->cur_timeout_ms = 0;
    b->retry_at_ms = adi_mono_ms();
}

static adi_err connect_failed(adi_bus_t *b, adi_error_t *err, const char *why)
{
    if (b->c != NULL)
        redisFree(b->c);
    b->c = NULL;
    b->cur_timeout_ms = 0;
    b->backoff_ms = b->backoff_ms ? b->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (b->backoff_ms > BACKOFF_MAX_MS)
        b->backoff_ms = BACKOFF_MAX_MS;
    b->retry_at_ms = adi_mono_ms() + b->backoff_ms;
    return adi_error_set(err, ADI_UNAVAILABLE, "Redis unavailable: %s", why);
}

/* Runs one setup command on a fresh connection; false (with `why` set) on failure. */
static bool setup_command(adi_bus_t *b, int argc, const char **argv, const char **why)
{
    redisReply *r = redisCommandArgv(b->c, argc, argv, NULL);
    if (r == NULL) {
        *why = "connection lost during setup";
        return false;
    }
    bool ok = r->type != REDIS_REPLY_ERROR;
    if (!ok)
        *why = argv[0][0] == 'A' ? "authentication failed" : "SELECT failed";
    freeReplyObject(r);
    return ok;
}

static adi_err ensure_connected(adi_bus_t *b, adi_error_t *err)
{
    if (b->c != NULL)
        return ADI_OK;
    if (adi_mono_ms() < b->retry_at_ms)
        return adi_error_set(err, ADI_UNAVAILABLE, "Redis unavailable: reconnecting");
    b->c = redisConnectWithTimeout(b->host, b->port, tv_ms(b->connect_timeout_ms));
    if (b->c == NULL)
        adi__oom(sizeof(redisContext), __FILE__, __LINE__);
    if (b->c->err) {
        char why[160];
        snprintf(why, sizeof(why), "%s", b->c->errstr);
        return connect_failed(b, err, why);
    }
    redisEnableKeepAlive(b->c);
    if (redisSetTimeout(b->c, tv_ms(b->command_timeout_ms)) != REDIS_OK)
        return connect_failed(b, err, "cannot set the socket timeout");
    b->cur_timeout_ms = b->command_timeout_ms;
    const char *why = NULL;
    if (b->password != NULL) {
        const char *argv[3] = {"AUTH", b->user ? b->user : b->password, b->password};
        if (!setup_command(b, b->user ? 3 : 2, argv, &why))
            return connect_failed(b, err, why);
    }
    if (b->db != 0) {
        char dbs[16];
        snprintf(dbs, sizeof(dbs), "%d", b->db);
        const char *argv[2] = {"SELECT", dbs};
        if (!setup_command(b, 2, argv, &why))
            return connect_failed(b, err, why);
    }
    b->backoff_ms = 0;
    return ADI_OK;
}

/* Sets the socket timeout to block_ms plus the command timeout (only when it changes). */
static adi_err set_timeout(adi_bus_t *b, int block_ms, adi_error_t *err)
{
    int want = block_ms + b->command_timeout_ms;
    if (want == b->cur_timeout_ms)
        return ADI_OK;
    if (redisSetTimeout(b->c, tv_ms(want)) != REDIS_OK) {
        drop(b);
        return adi_error_set(err, ADI_UNAVAILABLE, "Redis unavailable: cannot set the timeout");
    }
    b->cur_timeout_ms = want;
    return ADI_OK;
}

/* Error replies that mean "Redis is not serving right now" rather than "bad command". */
static bool transient_error(const redisReply *r)
{
    static const char *const prefixes[] = {"LOADING", "MASTERDOWN", "READONLY", "TRYAGAIN",
                                           "CLUSTERDOWN"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (r->len >= strlen(prefixes[i]) && memcmp(r->str, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

bool adi_bus__error_is(const redisReply *r, const char *prefix)
{
    size_t n = strlen(prefix);
    return r != NULL && r->type == REDIS_REPLY_ERROR && r->len >= n &&
           memcmp(r->str, prefix, n) == 0;
}

adi_err adi_bus__command(adi_bus_t *b, int block_ms, int argc, const char **argv,
                         const size_t *lens, redisReply **out, adi_error_t *err)
{
    *out = NULL;
    adi_err rc = ensure_connected(b, err);
    if (rc != ADI_OK)
        return rc;
    rc = set_timeout(b, block_ms, err);
    if (rc != ADI_OK)
        return rc;
    redisReply *r = redisCommandArgv(b->c, argc, argv, lens);
    if (r == NULL) {
        char why[160];
        snprintf(why, sizeof(why), "%s", b->c->errstr);
        drop(b);
        return adi_error_set(err, ADI_UNAVAILABLE, "Redis unavailable: %s", why);
    }
    if (r->type == REDIS_REPLY_ERROR && transient_error(r)) {
        freeReplyObject(r);
        return adi_error_set(err, ADI_UNAVAILABLE, "Redis unavailable: not serving");
    }
    *out = r;
    return ADI_OK;
}

/* Fails with ADI_INTERNAL naming the command, for an error reply or an unexpected shape. */
static adi_err unexpected(redisReply *r, const char *cmd, adi_error_t *err)
{
    adi_err rc;
    if (r != NULL && r->type == REDIS_REPLY_ERROR)
        rc = adi_error_set(err, ADI_INTERNAL, "%s failed: %.100s", cmd, r->str);
    else
        rc = adi_error_set(err, ADI_INTERNAL, "%s: unexpected reply", cmd);
    freeReplyObject(r);
    return rc;
}

bool adi_bus_ping(adi_bus_t *bus)
{
    const char *argv[1] = {"PING"};
    redisReply *r = NULL;
    if (adi_bus__command(bus, 0, 1, argv, NULL, &r, NULL) != ADI_OK)
        return false;
    bool ok = r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    return ok;
}

/* ---- streams ---------------------------------------------------------------------------- */

adi_err adi_bus_ensure_group(adi_bus_t *bus, const char *stream, const char *group,
                             adi_error_t *err)
{
    /* From the start of the stream, not "$": requests written before the first consumer made
       the group (a gateway that came up first) are served, or dropped by their deadline. */
    const char *argv[6] = {"XGROUP", "CREATE", stream, group, "0", "MKSTREAM"};
    redisReply *r = NULL;
    adi_err rc = adi_bus__command(bus, 0, 6, argv, NULL, &r, err);
    if (rc != ADI_OK)
        return rc;
    if (r->type == REDIS_REPLY_ERROR && !adi_bus__error_is(r, "BUSYGROUP"))
        return unexpected(r, "XGROUP CREATE", err);
    freeReplyObject(r);
    return ADI_OK;
}

void adi_bus_batch_dispose(adi_bus_batch_t *batch)
{
    if (batch->reply_ != NULL)
        freeReplyObject(batch->reply_);
    batch->reply_ = NULL;
    batch->n = 0;
}

static void batch_init(adi_bus_batch_t *batch)
{
    batch->n = 0;
    batch->reply_ = NULL;
}

/* Reads the entries of one [[id, [k, v, ...]], ...] array into the batch. */
static bool fill_entries(adi_bus_batch_t *batch, const redisReply *arr)
{
    if (arr->type != REDIS_REPLY_ARRAY)
        return false;
    for (size_t i = 0; i < arr->elements && batch->n < ADI_BUS_BATCH_MAX; i++) {
        const redisReply *e = arr->element[i];
        /* Redis 6.2 reports entries deleted while pending as nil; skip them. */
        if (e->type == REDIS_REPLY_NIL)
            continue;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 1 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            return false;
        adi_bus_entry_t *it = &batch->items[batch->n++];
        memset(it, 0, sizeof(*it));
        it->id = (adi_str_t){e->element[0]->str, e->element[0]->len};
        if (e->elements < 2 || e->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        const redisReply *kv = e->element[1];
        for (size_t k = 0; k + 1 < kv->elements; k += 2) {
            const redisReply *key = kv->element[k];
            const redisReply *val = kv->element[k + 1];
            if (key->type != REDIS_REPLY_STRING || val->type != REDIS_REPLY_STRING)
                continue;
            if (key->len != strlen(ADI_STREAM_FIELD) ||
                memcmp(key->str, ADI_STREAM_FIELD, key->len) != 0)
                continue;
            if (val->len > ADI_BUS_MAX_ENTRY) {
                it->too_large = true;
                break;
            }
            it->msg = (adi_str_t){val->str, val->len};
            break;
        }
    }
    return true;
}

/* Parses an XREAD/XREADGROUP reply (nil on timeout, else [[stream, entries]]). */
static adi_err take_read_reply(adi_bus_batch_t *batch, redisReply *r, const char *cmd,
                               adi_error_t *err)
{
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return ADI_OK;
    }
    if (r->type != REDIS_REPLY_ARRAY)
        return unexpected(r, cmd, err);
    batch->reply_ = r;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *s = r->element[i];
        if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 ||
            !fill_entries(batch, s->element[1])) {
            batch->reply_ = NULL;
            batch->n = 0;
            return unexpected(r, cmd, err);
        }
    }
    return ADI_OK;
}

static int clamp_count(int count)
{
    if (count < 1)
        return 1;
    return count > ADI_BUS_BATCH_MAX ? ADI_BUS_BATCH_MAX : count;
}

adi_err adi_bus_read_group(adi_bus_t *bus, const char *stream, const char *group,
                           const char *consumer, int count, int block_ms, adi_bus_batch_t *batch,
                           adi_error_t *err)
{
    batch_init(batch);
    if (block_ms < 1)
        block_ms = 1;
    char counts[16], blocks[16];
    snprintf(counts, sizeof(counts), "%d", clamp_count(count));
    snprintf(blocks, sizeof(blocks), "%d", block_ms);
    const char *argv[11] = {"XREADGROUP", "GROUP", group,     consumer, "COUNT", counts,
                            "BLOCK",      blocks,  "STREAMS", stream,   ">"};
    redisReply *r = NULL;
    adi_err rc = adi_bus__command(bus, block_ms, 11, argv, NULL, &r, err);
    if (rc != ADI_OK)
        return rc;
    if (adi_bus__error_is(r, "NOGROUP")) {
        freeReplyObject(r);
        return adi_error_set(err, ADI_NOT_FOUND, "consumer group %s does not exist", group);
    }
    return take_read_reply(batch, r, "XREADGROUP", err);
}

adi_err adi_bus_reclaim(adi_bus_t *bus, const char *stream, const char *group, const char *consumer,
                        int64_t min_idle_ms, int count, char cursor[ADI_BUS_ID_MAX],
                        adi_bus_batch_t *batch, adi_error_t *err)
{
    batch_init(batch);
    char idles[24], counts[16];
    snprintf(idles, sizeof(idles), "%" PRId64, min_idle_ms < 0 ? 0 : min_idle_ms);
    snprintf(counts, sizeof(counts), "%d", clamp_count(count));
    if (cursor[0] == '\0')
        snprintf(cursor, ADI_BUS_ID_MAX, "0-0");
    const char *argv[8] = {"XAUTOCLAIM", stream, group, consumer, idles, cursor, "COUNT", counts};
    redisReply *r = NULL;
    adi_err rc = adi_bus__command(bus, 0, 8, argv, NULL, &r, err);
    if (rc != ADI_OK)
        return rc;
    if (adi_bus__error_is(r, "NOGROUP")) {
        freeReplyObject(r);
        return adi_error_set(err, ADI_NOT_FOUND, "consumer group %s does not exist", group);
    }
    /* Redis 7: [next-cursor, [entries], [deleted ids]]; Redis 6.2: the first two. */
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= ADI_BUS_ID_MAX)
        return unexpected(r, "XAUTOCLAIM", err);
    batch->reply_ = r;
    if (!fill_entries(batch, r->element[1])) {
        batch->reply_ = NULL;
        batch->n = 0;
        return unexpected(r, "XAUTOCLAIM", err);
    }
    memcpy(cursor, r->element[0]->str, r->element[0]->len);
    cursor[r->element[0]->len] = '\0';
    return ADI_OK;
}

adi_err adi_bus_read(adi_bus_t *bus, const char *stream, char after[ADI_BUS_ID_MAX], int count,
                     int block_ms, adi_bus_batch_t *batch, adi_error_t *err)
{
    batch_init(batch);
    if (block_ms < 1)
        block_ms = 1;
    char counts[16], blocks[16];
    snprintf(counts, sizeof(counts), "%d", clamp_count(count));
    snprintf(blocks, sizeof(blocks), "%d", block_ms);
    if (after[0] == '\0')
        snprintf(after, ADI_BUS_ID_MAX, "0-0");
    const char *argv[8] = {"XREAD", "COUNT", counts, "BLOCK", blocks, "STREAMS", stream, after};
    redisReply *r = NULL;
    adi_err rc = adi_bus__command(bus, block_ms, 8, argv, NULL, &r, err);
    if (rc != ADI_OK)
        return rc;
    rc = take_read_reply(batch, r, "XREAD", err);
    if (rc == ADI_OK && batch->n > 0) {
        adi_str_t last = batch->items[batch->n - 1].id;
        if (last.len < ADI_BUS_ID_MAX) {
            memcpy(after, last.ptr, last.len);
            after[last.len] = '\0';
        }
    }
    return rc;
}

/* XACK needs a NUL-terminated id for argv; ids are short, so copy into a stack buffer. */
static bool id_copy(char out[ADI_BUS_ID_MAX], adi_str_t id)
{
    if (id.ptr == NULL || id.len == 0 || id.len >= ADI_BUS_ID_MAX)
        return false;
    memcpy(out, id.ptr, id.len);
    out[id.len] = '\0';
    return true;
}

adi_err adi_bus_ack(adi_bus_t *bus, const char *stream, const char *group, adi_str_t id,
                    adi_error_t *err)
{
    char ids[ADI_BUS_ID_MAX];
    if (!id_copy(ids, id))
        return adi_error_set(err, ADI_INVALID, "malformed stream entry id");
    const char *argv[4] = {"XACK", stream, group, ids};
    redisReply *r = NULL;
    adi_err rc = adi_bus__command(bus, 0, 4, argv, NULL, &r, err);
    if (rc != ADI_OK)
        return rc;
    if (r->type != REDIS_REPLY_INTEGER)
        return unexpected(r, "XACK", err);
    freeReplyObject(r);
    return ADI_OK;
}

adi_err adi_bus_add(adi_bus_t *bus, const char *stream, adi_str_t msg, char id_out[ADI_BUS_ID_MAX],
                    adi_error_t *err)
{
    if (id_out != NULL)
        id_out[0] = '\0';
    if (msg.len > ADI_BUS_MAX_ENTRY)
        return adi_error_set(err, ADI_TOO_LARGE, "message of %zu bytes exceeds the bus limit",
                             msg.len);
    const char *argv[8] = {"XADD",      stream, "MAXLEN",         "~",
                           bus->maxlen, "*",    ADI_STREAM_FIELD, msg.ptr ? msg.ptr : ""};
    size_t lens[8];
    for (int i = 0; i < 7; i++)
        lens[i] = strlen(argv[i]);
    lens[7] = msg.len;
    redisReply *r = NULL;
    adi_err rc = adi_bus__command(bus, 0, 8, argv, lens, &r, err);
    if (rc != ADI_OK)
        return rc;
    if (r->type != REDIS_REPLY_STRING || r->len >= ADI_BUS_ID_MAX)
        return unexpected(r, "XADD", err);
    if (id_out != NULL) {
        memcpy(id_out, r->str, r->len);
        id_out[r->len] = '\0';
    }
    freeReplyObject(r);
    return ADI_OK;
}

adi_err adi_bus_reply_ack(adi_bus_t *bus, const char *reply_stream, adi_str_t msg,
                          const char *stream, const char *group, adi_str_t id, adi_error_t *err)
{
    if (msg.len > ADI_BUS_MAX_ENTRY)
        return adi_error_set(err, ADI_TOO_LARGE, "reply of %zu bytes exceeds the bus limit",
                             msg.len);
    char ids[ADI_BUS_ID_MAX];
    if (!id_copy(ids, id))
        return adi_error_set(err, ADI_INVALID, "malformed stream entry id");
    adi_err rc = ensure_connected(bus, err);
    if (rc != ADI_OK)
        return rc;
    rc = set_timeout(bus, 0, err);
    if (rc != ADI_OK)
        return rc;
    const char *xadd[8] = {"XADD",      reply_stream, "MAXLEN",         "~",
                           bus->maxlen, "*",          ADI_STREAM_FIELD, msg.ptr ? msg.ptr : ""};
    size_t lens[8];
    for (int i = 0; i < 7; i++)
        lens[i] = strlen(xadd[i]);
    lens[7] = msg.len;
    const char *xack[4] = {"XACK", stream, group, ids};
    redisReply *r1 = NULL, *r2 = NULL;
    if (redisAppendCommandArgv(bus->c, 8, xadd, lens) != REDIS_OK ||
        redisAppendCommandArgv(bus->c, 4, xack, NULL) != REDIS_OK ||
        redisGetReply(bus->c, (void **)&r1) != REDIS_OK ||
        redisGetReply(bus->c, (void **)&r2) != REDIS_OK) {
        char why[160];
        snprintf(why, sizeof(why), "%s", bus->c->errstr);
        freeReplyObject(r1);
        drop(bus);
        return adi_error_set(err, ADI_UNAVAILABLE, "Redis unavailable: %s", why);
    }
    if (r1->type != REDIS_REPLY_STRING) {
        freeReplyObject(r2);
        return unexpected(r1, "XADD", err);
    }
    freeReplyObject(r1);
    if (r2->type != REDIS_REPLY_INTEGER)
        return unexpected(r2, "XACK", err);
    freeReplyObject(r2);
    return ADI_OK;
}

/* The integer value of `key` in a flat [k, v, k, v, ...] array; `def` when absent or nil. */
static int64_t kv_int(const redisReply *kv, const char *key, int64_t def)
{
    for (size_t i = 0; i + 1 < kv->elements; i += 2) {
        const redisReply *k = kv->element[i];
        if (k->type != REDIS_REPLY_STRING || k->len != strlen(key) || memcmp(k->str, key, k->len))
            continue;
        const redisReply *v = kv->element[i + 1];
        return v->type == REDIS_REPLY_INTEGER ? (int64_t)v->integer : def;
    }
    return def;
}

static bool kv_str_eq(const redisReply *kv, const char *key, const char *want)
{
    for (size_t i = 0; i + 1 < kv->elements; i += 2) {
        const redisReply *k = kv->element[i];
        const redisReply *v = kv->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && k->len == strlen(key) &&
            memcmp(k->str, key, k->len) == 0)
            return v->type == REDIS_REPLY_STRING && v->len == strlen(want) &&
                   memcmp(v->str, want, v->len) == 0;
    }
    return false;
}

adi_err adi_bus_group_info(adi_bus_t *bus, const char *stream, const char *group,
                           adi_bus_group_info_t *out, adi_error_t *err)
{
    memset(out, 0, sizeof(*out));
    const char *argv[3] = {"XINFO", "GROUPS", stream};
    redisReply *r = NULL;
    adi_err rc = adi_bus__command(bus, 0, 3, argv, NULL, &r, err);
    if (rc != ADI_OK)
        return rc;
    if (r->type == REDIS_REPLY_ERROR) {
        /* "ERR no such key" for a missing stream. */
        freeReplyObject(r);
        return adi_error_set(err, ADI_NOT_FOUND, "stream %s does not exist", stream);
    }
    if (r->type != REDIS_REPLY_ARRAY)
        return unexpected(r, "XINFO GROUPS", err);
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *g = r->element[i];
        if (g->type != REDIS_REPLY_ARRAY || !kv_str_eq(g, "name", group))
            continue;
        out->consumers = kv_int(g, "consumers", 0);
        out->pending = kv_int(g, "pending", 0);
        out->lag = kv_int(g, "lag", -1);
        out->entries_read = kv_int(g, "entries-read", -1);
        freeReplyObject(r);
        return ADI_OK;
    }
    freeReplyObject(r);
    return adi_error_set(err, ADI_NOT_FOUND, "consumer group %s does not exist", group);
}

adi_err adi_bus_retire_consumer(adi_bus_t *bus, const char *stream, const char *group,
                                const char *consumer, adi_error_t *err)
{
    const char *pending[7] = {"XPENDING", stream, group, "-", "+", "1", consumer};
    redisReply *r = NULL;
    adi_err rc = adi_bus__command(bus, 0, 7, pending, NULL, &r, err);
    if (rc != ADI_OK)
        return rc;
    if (adi_bus__error_is(r, "NOGROUP")) {
        freeReplyObject(r);
        return adi_error_set(err, ADI_NOT_FOUND, "consumer group %s does not exist", group);
    }
    if (r->type != REDIS_REPLY_ARRAY)
        return unexpected(r, "XPENDING", err);
    size_t held = r->elements;
    freeReplyObject(r);
    if (held > 0)
        return adi_error_set(err, ADI_CONFLICT, "consumer %s still holds entries", consumer);
    const char *del[5] = {"XGROUP", "DELCONSUMER", stream, group, consumer};
    rc = adi_bus__command(bus, 0, 5, del, NULL, &r, err);
    if (rc != ADI_OK)
        return rc;
    if (r->type != REDIS_REPLY_INTEGER)
        return unexpected(r, "XGROUP DELCONSUMER", err);
    freeReplyObject(r);
    return ADI_OK;
}

adi_err adi_bus_del(adi_bus_t *bus, const char *key, adi_error_t *err)
{
    const char *argv[2] = {"DEL", key};
    redisReply *r = NULL;
    adi_err rc = adi_bus__command(bus, 0, 2, argv, NULL, &r, err);
    if (rc != ADI_OK)
        return rc;
    if (r->type != REDIS_REPLY_INTEGER)
        return unexpected(r, "DEL", err);
    freeReplyObject(r);
    return ADI_OK;
}
