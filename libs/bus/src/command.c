/* SPDX-License-Identifier: MIT */
/*
 * Generic commands for callers that need more than the stream primitives of bus.c (the task
 * queues: hashes, sorted sets, multi-stream reads, Lua scripts). A reply is copied out of hiredis
 * into the caller's pool as a small tree of adi_bus_value_t, so no hiredis type leaks out of
 * libs/bus. Scripts run with EVALSHA: each client remembers the digest SCRIPT LOAD gave for a
 * script (keyed by the script's address), and loads it again after NOSCRIPT.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <hiredis/hiredis.h>

#include "adi/bus.h"
#include "bus_int.h"

/* Copies reply `r` into `v` (pool memory); false when it nests deeper than allowed. */
static bool copy_value(const redisReply *r, adi_bus_value_t *v, adi_pool_t *pool, int depth)
{
    memset(v, 0, sizeof(*v));
    switch (r->type) {
    case REDIS_REPLY_INTEGER:
        v->type = ADI_BUS_V_INT;
        v->i = (int64_t)r->integer;
        return true;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        v->type = ADI_BUS_V_STR;
        v->s = adi_pool_strdup(pool, (adi_str_t){r->str != NULL ? r->str : "", r->len});
        return true;
    case REDIS_REPLY_ARRAY:
        if (depth >= ADI_BUS_VALUE_DEPTH)
            return false;
        v->type = ADI_BUS_V_ARRAY;
        v->n = r->elements;
        v->items = r->elements ? adi_pool_alloc(pool, r->elements * sizeof(*v->items)) : NULL;
        for (size_t i = 0; i < r->elements; i++)
            if (!copy_value(r->element[i], &v->items[i], pool, depth + 1))
                return false;
        return true;
    default: /* NIL, and anything this hiredis may add */
        v->type = ADI_BUS_V_NIL;
        return true;
    }
}

/* Runs argv and hands back the raw reply (an error reply is turned into ADI_INTERNAL). */
static adi_err run(adi_bus_t *bus, int block_ms, int argc, const char **argv, const size_t *lens,
                   const char *what, redisReply **out, adi_error_t *err)
{
    *out = NULL;
    if (argc < 1 || argc > ADI_BUS_ARGV_MAX)
        return adi_error_set(err, ADI_INVALID, "a command takes 1..%d arguments", ADI_BUS_ARGV_MAX);
    size_t total = 0;
    for (int i = 0; i < argc; i++)
        total += lens != NULL ? lens[i] : strlen(argv[i]);
    if (total > ADI_BUS_MAX_ENTRY)
        return adi_error_set(err, ADI_TOO_LARGE, "command of %zu bytes exceeds the bus limit",
                             total);
    redisReply *r = NULL;
    adi_err rc = adi_bus__command(bus, block_ms < 0 ? 0 : block_ms, argc, argv, lens, &r, err);
    if (rc != ADI_OK)
        return rc;
    if (r->type == REDIS_REPLY_ERROR && !adi_bus__error_is(r, "NOSCRIPT")) {
        rc = adi_error_set(err, ADI_INTERNAL, "%s failed: %.120s", what, r->str);
        freeReplyObject(r);
        return rc;
    }
    *out = r;
    return ADI_OK;
}

/* Copies `r` into the pool as `*out` and frees it. */
static adi_err take(redisReply *r, adi_pool_t *pool, adi_bus_value_t **out, const char *what,
                    adi_error_t *err)
{
    adi_bus_value_t *v = adi_pool_alloc(pool, sizeof(*v));
    bool ok = copy_value(r, v, pool, 0);
    freeReplyObject(r);
    if (!ok)
        return adi_error_set(err, ADI_INTERNAL, "%s: reply nested too deeply", what);
    *out = v;
    return ADI_OK;
}

adi_err adi_bus_command(adi_bus_t *bus, int block_ms, int argc, const char **argv,
                        const size_t *lens, adi_pool_t *pool, adi_bus_value_t **out,
                        adi_error_t *err)
{
    *out = NULL;
    char what[32] = "command";
    if (argc >= 1 && argv[0] != NULL)
        snprintf(what, sizeof(what), "%.31s", argv[0]);
    redisReply *r = NULL;
    adi_err rc = run(bus, block_ms, argc, argv, lens, what, &r, err);
    if (rc != ADI_OK)
        return rc;
    if (r->type == REDIS_REPLY_ERROR) { /* NOSCRIPT outside EVALSHA: an ordinary failure */
        rc = adi_error_set(err, ADI_INTERNAL, "%s failed: %.120s", what, r->str);
        freeReplyObject(r);
        return rc;
    }
    return take(r, pool, out, what, err);
}

/* The cached digest of `script`, or NULL. */
static const char *cached_sha(const adi_bus_t *bus, const char *script)
{
    for (int i = 0; i < bus->nscripts; i++)
        if (bus->scripts[i].script == script)
            return bus->scripts[i].sha;
    return NULL;
}

/* SCRIPT LOAD `script`, remembering its digest; returns the digest. */
static adi_err load_script(adi_bus_t *bus, const char *script, const char **sha, adi_error_t *err)
{
    const char *argv[3] = {"SCRIPT", "LOAD", script};
    redisReply *r = NULL;
    adi_err rc = run(bus, 0, 3, argv, NULL, "SCRIPT LOAD", &r, err);
    if (rc != ADI_OK)
        return rc;
    if (r->type != REDIS_REPLY_STRING || r->len != 40) {
        freeReplyObject(r);
        return adi_error_set(err, ADI_INTERNAL, "SCRIPT LOAD: unexpected reply");
    }
    int slot = -1;
    for (int i = 0; i < bus->nscripts && slot < 0; i++)
        if (bus->scripts[i].script == script || bus->scripts[i].script == NULL)
            slot = i;
    if (slot >= 0) {
        bus->scripts[slot].script = script;
    } else {
        /* A full cache recycles its first slot: only a caller with many scripts pays for it. */
        slot = bus->nscripts < ADI_BUS__SCRIPTS ? bus->nscripts++ : 0;
        bus->scripts[slot].script = script;
    }
    memcpy(bus->scripts[slot].sha, r->str, 40);
    bus->scripts[slot].sha[40] = '\0';
    freeReplyObject(r);
    *sha = bus->scripts[slot].sha;
    return ADI_OK;
}

adi_err adi_bus_eval(adi_bus_t *bus, const char *script, int nkeys, int argc, const char **argv,
                     const size_t *lens, adi_pool_t *pool, adi_bus_value_t **out, adi_error_t *err)
{
    *out = NULL;
    if (script == NULL || nkeys < 0 || argc < 0 || nkeys > argc || argc > ADI_BUS_ARGV_MAX - 3)
        return adi_error_set(err, ADI_INVALID, "EVALSHA: bad script, key or argument count");
    const char *av[ADI_BUS_ARGV_MAX];
    size_t lv[ADI_BUS_ARGV_MAX];
    char numkeys[16];
    snprintf(numkeys, sizeof(numkeys), "%d", nkeys);
    av[0] = "EVALSHA";
    lv[0] = 7;
    av[2] = numkeys;
    lv[2] = strlen(numkeys);
    for (int i = 0; i < argc; i++) {
        av[3 + i] = argv[i] != NULL ? argv[i] : "";
        lv[3 + i] = lens != NULL ? lens[i] : strlen(av[3 + i]);
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        const char *sha = cached_sha(bus, script);
        adi_err rc = ADI_OK;
        if (sha == NULL && (rc = load_script(bus, script, &sha, err)) != ADI_OK)
            return rc;
        av[1] = sha;
        lv[1] = 40;
        redisReply *r = NULL;
        rc = run(bus, 0, 3 + argc, av, lv, "script", &r, err);
        if (rc != ADI_OK)
            return rc;
        if (r->type != REDIS_REPLY_ERROR)
            return take(r, pool, out, "script", err);
        /* NOSCRIPT: Redis restarted or flushed its scripts; load it again and retry once. */
        freeReplyObject(r);
        for (int i = 0; i < bus->nscripts; i++)
            if (bus->scripts[i].script == script)
                bus->scripts[i].script = NULL;
    }
    return adi_error_set(err, ADI_INTERNAL, "script failed: NOSCRIPT after loading it");
}
