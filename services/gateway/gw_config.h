/* SPDX-License-Identifier: MIT */
/*
 * The gateway's configuration: one table of environment variables (printed as the README table by
 * `adi-gateway --config-table`), the values parsed from it, and the two settings derived from
 * strings that need checking beyond adi_cfg_load: the Redis URL and the CORS origin list. Both
 * parsers are pure and unit-tested.
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "adi/core.h"
#include "adi/jwt.h"

#define GW_MAX_ORIGINS    64  /* entries of CORS_ALLOWED_ORIGINS */
#define GW_ORIGIN_MAX_LEN 256 /* bytes of one origin */
#define GW_INSTANCE_MAX   120 /* bytes of GATEWAY_INSTANCE (reply stream names stay < 200) */
#define GW_THREADS_MAX    64  /* most event-loop threads (GATEWAY_THREADS) */

/** A parsed redis:// URL. Strings are NUL-terminated copies owned by the struct. */
typedef struct gw_redis_url {
    char host[256];     /* host name or address */
    int port;           /* TCP port */
    char password[256]; /* AUTH password, "" for none (secret: never logged) */
    char user[128];     /* ACL user name, "" for the default user */
    int db;             /* SELECT index, 0 by default */
} gw_redis_url_t;

/** The allowed CORS origins, each an exact "scheme://host[:port]" compared byte-wise. */
typedef struct gw_origins {
    size_t n;                                      /* used entries */
    char items[GW_MAX_ORIGINS][GW_ORIGIN_MAX_LEN]; /* NUL-terminated origins */
} gw_origins_t;

/** The raw values of the environment table (strings point into the environment). */
typedef struct gw_config {
    const char *http_host;    /* HTTP_HOST */
    int64_t http_port;        /* HTTP_PORT (0 = pick a free one) */
    int64_t threads;          /* GATEWAY_THREADS, resolved: 0 became one per online CPU */
    bool threads_auto;        /* GATEWAY_THREADS was 0: `threads` is the online CPU count */
    const char *instance;     /* GATEWAY_INSTANCE ("" = hostname-pid) */
    const char *redis_url;    /* REDIS_URL (secret: may hold a password) */
    const char *ops_host;     /* OPS_HOST */
    int64_t ops_port;         /* OPS_PORT */
    const char *cors_origins; /* CORS_ALLOWED_ORIGINS, comma separated */
    int64_t max_body;         /* MAX_BODY_BYTES */
    int64_t timeout_ms;       /* REQUEST_TIMEOUT_MS, default route deadline */
    int64_t backlog_limit;    /* BACKLOG_LIMIT: lag + pending over which a service sheds load */
    int64_t max_pending;      /* GATEWAY_MAX_PENDING: in-flight bus calls per thread */
    int64_t stream_maxlen;    /* STREAM_MAXLEN for XADD MAXLEN ~ */
    int64_t grace_ms;         /* SHUTDOWN_GRACE_MS */
    const char *time_zone;    /* TIME_ZONE */
    const char *app_version;  /* APP_VERSION */
    const char *log_level;    /* LOG_LEVEL */
    const char *jwt_alg;      /* JWT_ALGORITHM: HS256, RS256 or ES256 */
    const char *jwt_key;      /* JWT_SIGNING_KEY: the HS256 secret (secret: never logged) */
    const char *jwt_pub_file; /* JWT_PUBLIC_KEY_FILE: PEM public key for RS256/ES256 */
    int64_t jwt_leeway_s;     /* JWT_LEEWAY_S: clock skew tolerated on exp, nbf and iat */
    int64_t access_ttl_s;     /* ACCESS_TOKEN_LIFETIME_S: how long an ev:auth event matters */
    int64_t login_max_fail;   /* LOGIN_MAX_FAILURES: failures of an account before a lockout */
    int64_t login_addr_max;   /* LOGIN_ADDRESS_MAX_FAILURES: of a client address (0: as above) */
    int64_t login_lockout_s;  /* LOGIN_LOCKOUT_S: first lockout, doubling per further failure */
} gw_config_t;

/**
 * Parses the environment into `cfg` and checks the derived settings (Redis URL, CORS origins, log
 * level). GATEWAY_THREADS=0 (the default) is resolved here with gw_threads_resolve and the online
 * CPU count, so cfg->threads is the number of threads to run and the effective configuration
 * logs it. Writes one line per problem to `errs` and returns the number of problems (0 = ok).
 * `url` and `origins` receive the parsed values.
 */
int gw_config_load(gw_config_t *cfg, gw_redis_url_t *url, gw_origins_t *origins, FILE *errs);

/**
 * Builds the token key set from JWT_ALGORITHM, JWT_SIGNING_KEY (HS256), JWT_PUBLIC_KEY_FILE
 * (RS256/ES256, read here: call at start-up only) and JWT_LEEWAY_S. Writes one line per problem
 * to `errs` (never the key) and returns the number of problems; on 0 `*out` is the key set
 * (adi_jwt_free), else NULL.
 */
int gw_config_jwt(const gw_config_t *cfg, adi_jwt_t **out, FILE *errs);

/**
 * The number of event-loop threads for GATEWAY_THREADS=`configured`: `configured` itself when
 * positive, else (0: automatic) `online` (the online CPU count, sysconf(_SC_NPROCESSORS_ONLN))
 * clamped to 1..GW_THREADS_MAX; an unknown count (`online` < 1, sysconf's -1) gives 1.
 */
int64_t gw_threads_resolve(int64_t configured, long online);

/** Prints the README table of the gateway's variables. */
void gw_config_table(FILE *f);

/** Logs the effective configuration (secrets redacted). */
void gw_config_log(const gw_config_t *cfg);

/**
 * Parses redis://[[user]:password@]host[:port][/db]. Errors: ADI_INVALID with a message naming
 * the problem (the message never repeats the password).
 */
adi_err gw_redis_url_parse(const char *s, gw_redis_url_t *out, adi_error_t *err);

/**
 * Parses a comma-separated origin list ("https://a.example, http://localhost:3000"). Blanks around
 * commas and empty items are ignored. Each origin must be scheme "http" or "https", a host, an
 * optional port and nothing else (no path, no trailing slash), at most GW_ORIGIN_MAX_LEN - 1 bytes;
 * at most GW_MAX_ORIGINS of them. Errors: ADI_INVALID naming the bad entry.
 */
adi_err gw_origins_parse(const char *s, gw_origins_t *out, adi_error_t *err);

/** True when `origin` (the request's Origin header) is one of the allowed origins. */
bool gw_origins_allowed(const gw_origins_t *o, adi_str_t origin);

#endif
