/* SPDX-License-Identifier: MIT */
/*
 * Internals of libs/bus shared between its source files. Not for use outside libs/bus.
 */
#ifndef ADI_BUS_INT_H
#define ADI_BUS_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "adi/bus.h"

/** Scripts whose digests one client remembers (adi_bus_eval). */
#define ADI_BUS__SCRIPTS 16

struct redisContext;
struct redisReply;

struct adi_bus {
    struct redisContext *c; /* the connection, NULL while disconnected */
    char *host;             /* Redis host from the URL */
    int port;               /* Redis port from the URL */
    char *user;             /* ACL user for AUTH, or NULL */
    char *password;         /* AUTH password, or NULL; wiped on free */
    int db;                 /* database selected after connecting */
    int connect_timeout_ms; /* connect timeout */
    int command_timeout_ms; /* reply timeout beyond a command's BLOCK time */
    int cur_timeout_ms;     /* socket timeout currently set on c */
    char maxlen[24];        /* MAXLEN ~ argument of XADD, as text */
    char *reply_stream;     /* own reply stream for adi_bus_call, or NULL */
    int64_t retry_at_ms;    /* monotonic time before which no reconnect is tried */
    int64_t backoff_ms;     /* current reconnect backoff, 0 after a success */
    struct {
        const char *script;      /* a script adi_bus_eval ran (its address is the cache key) */
        char sha[41];            /* its SHA1 digest as SCRIPT LOAD returned it */
    } scripts[ADI_BUS__SCRIPTS]; /* digests of scripts loaded through this client */
    int nscripts;                /* used entries of scripts[] */
    int64_t reply_ttl_at_ms;     /* adi_mono_ms of the last TTL refresh of reply_stream, 0 never */
};

/* TTL of a caller's reply stream, and how often a caller refreshes it (see call.c). */
#define ADI_BUS__REPLY_TTL_MS     (15 * 60 * 1000)
#define ADI_BUS__REPLY_REFRESH_MS (10 * 1000)

/**
 * Runs one command (connecting first), waiting block_ms plus the command timeout for the reply.
 * On ADI_OK `*out` is the reply, possibly an error reply, which the caller frees. Connection
 * failures drop the connection and return ADI_UNAVAILABLE, as do transient error replies.
 */
adi_err adi_bus__command(adi_bus_t *b, int block_ms, int argc, const char **argv,
                         const size_t *lens, struct redisReply **out, adi_error_t *err);

/** True when `r` is an error reply starting with `prefix` ("NOGROUP", "BUSYGROUP"). */
bool adi_bus__error_is(const struct redisReply *r, const char *prefix);

/** The reply stream configured at adi_bus_new, or NULL. */
const char *adi_bus__reply_stream(const adi_bus_t *bus);

#endif
