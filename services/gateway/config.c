/* SPDX-License-Identifier: MIT */
/*
 * The gateway's environment table and the checks adi_cfg_load cannot do by itself: the Redis URL
 * (which may carry a password, so it is a secret and no message repeats it), the CORS origin list
 * and the log level. Every problem is reported at once so an operator fixes a deployment in one
 * round; main exits 2 when there is any.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adi/config.h"
#include "adi/log.h"
#include "gw_config.h"
#include "gw_login.h"

#define PEM_FILE_MAX 65536 /* bytes of JWT_PUBLIC_KEY_FILE read */

#define ROW(field, env, type, def, flags, min, max, help)                                          \
    ADI_CFG(gw_config_t, field, env, type, def, flags, min, max, help)

static const adi_cfg_row_t rows[] = {
    ROW(http_host, "HTTP_HOST", STR, "127.0.0.1", 0, 0, 0, "address the HTTP API listens on"),
    ROW(http_port, "HTTP_PORT", INT, "8000", 0, 0, 65535, "HTTP port (0 = pick a free one)"),
    ROW(threads, "GATEWAY_THREADS", INT, "0", 0, 0, GW_THREADS_MAX,
        "event-loop threads, each with its own listener (SO_REUSEPORT) and Redis connections "
        "(0 = one per online CPU, at most 64)"),
    ROW(instance, "GATEWAY_INSTANCE", STR, "", 0, 0, 0,
        "instance name in reply stream keys gw:{<instance>-<thread>}:rep (default hostname-pid)"),
    ROW(redis_url, "REDIS_URL", STR, "redis://127.0.0.1:6379", ADI_CFG_SECRET, 0, 0,
        "Redis server: redis://[[user]:password@]host[:port][/db]"),
    ROW(ops_host, "OPS_HOST", STR, "127.0.0.1", 0, 0, 0, "address of the ops port"),
    ROW(ops_port, "OPS_PORT", INT, "9100", 0, 0, 65535,
        "ops port: /healthz, /readyz, /metrics (0 = pick a free one)"),
    ROW(cors_origins, "CORS_ALLOWED_ORIGINS", STR, "", 0, 0, 0,
        "comma-separated origins allowed by CORS, e.g. https://app.example.com (empty = none)"),
    ROW(max_body, "MAX_BODY_BYTES", INT, "1048576", 0, 2, 16777216,
        "largest accepted request body (413 above)"),
    ROW(timeout_ms, "REQUEST_TIMEOUT_MS", INT, "5000", 0, 10, 600000,
        "default deadline of a proxied request (504 after it)"),
    ROW(backlog_limit, "BACKLOG_LIMIT", INT, "10000", 0, 1, 1000000000,
        "backlog (lag + pending) of a service above which its routes answer 503"),
    ROW(max_pending, "GATEWAY_MAX_PENDING", INT, "10000", 0, 1, 1000000,
        "in-flight bus calls per thread above which requests answer 503"),
    ROW(stream_maxlen, "STREAM_MAXLEN", INT, "100000", 0, 1, 1000000000,
        "approximate cap (MAXLEN ~) of the request streams"),
    ROW(grace_ms, "SHUTDOWN_GRACE_MS", INT, "25000", 0, 0, 600000,
        "how long SIGTERM waits for in-flight requests and open connections"),
    ROW(time_zone, "TIME_ZONE", STR, "America/Jamaica", 0, 0, 0,
        "time zone reported by /api/timezone/"),
    ROW(app_version, "APP_VERSION", STR, "0.1.0", 0, 0, 0,
        "version reported by /api/health/version/"),
    ROW(log_level, "LOG_LEVEL", STR, "info", 0, 0, 0, "debug, info, warn or error"),
    ROW(jwt_alg, "JWT_ALGORITHM", STR, "HS256", 0, 0, 0,
        "algorithm access tokens must be signed with: HS256, RS256 or ES256"),
    ROW(jwt_key, "JWT_SIGNING_KEY", STR, "", ADI_CFG_SECRET, 0, 0,
        "HS256 shared secret, the same as adi-auth's (required with HS256)"),
    ROW(jwt_pub_file, "JWT_PUBLIC_KEY_FILE", STR, "", 0, 0, 0,
        "PEM public key file for RS256/ES256 (required with them)"),
    ROW(jwt_leeway_s, "JWT_LEEWAY_S", INT, "0", 0, 0, ADI_JWT_LEEWAY_MAX,
        "clock skew tolerated on a token's exp, nbf and iat, in seconds"),
    ROW(access_ttl_s, "ACCESS_TOKEN_LIFETIME_S", INT, "1800", 0, 1, 31536000,
        "access token lifetime (as adi-auth's): how much ev:auth history is read at start"),
    ROW(login_max_fail, "LOGIN_MAX_FAILURES", INT, "5", 0, 1, 1000000,
        "failed logins of one account before it is locked out (429 with Retry-After)"),
    ROW(login_addr_max, "LOGIN_ADDRESS_MAX_FAILURES", INT, "0", 0, 0, 1000000000,
        "failed logins from one client address before it is locked out (0 = LOGIN_MAX_FAILURES)"),
    ROW(login_lockout_s, "LOGIN_LOCKOUT_S", INT, "60", 0, 1, GW_LOGIN_LOCK_CAP_S,
        "first lockout in seconds; doubles with every further failure, at most 3600"),
};

#define NROWS (sizeof(rows) / sizeof(rows[0]))

int gw_config_load(gw_config_t *cfg, gw_redis_url_t *url, gw_origins_t *origins, FILE *errs)
{
    memset(cfg, 0, sizeof(*cfg));
    memset(url, 0, sizeof(*url));
    memset(origins, 0, sizeof(*origins));
    int bad = adi_cfg_load(rows, NROWS, cfg, errs);
    if (bad > 0)
        return bad;
    cfg->threads_auto = cfg->threads == 0;
    cfg->threads = gw_threads_resolve(cfg->threads, sysconf(_SC_NPROCESSORS_ONLN));
    adi_error_t e;
    adi_error_clear(&e);
    if (gw_redis_url_parse(cfg->redis_url, url, &e) != ADI_OK) {
        fprintf(errs, "REDIS_URL: %s\n", e.message);
        bad++;
    }
    adi_error_clear(&e);
    if (gw_origins_parse(cfg->cors_origins, origins, &e) != ADI_OK) {
        fprintf(errs, "CORS_ALLOWED_ORIGINS: %s\n", e.message);
        bad++;
    }
    if (adi_log_level_parse(cfg->log_level) < 0) {
        fprintf(errs, "LOG_LEVEL: expected debug, info, warn or error\n");
        bad++;
    }
    if (strlen(cfg->instance) > GW_INSTANCE_MAX) {
        fprintf(errs, "GATEWAY_INSTANCE: at most %d bytes\n", GW_INSTANCE_MAX);
        bad++;
    }
    for (const char *p = cfg->instance; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.') {
            fprintf(errs, "GATEWAY_INSTANCE: only letters, digits, '-', '_' and '.'\n");
            bad++;
            break;
        }
    }
    adi_jwt_alg alg;
    if (adi_jwt_alg_parse(adi_str_c(cfg->jwt_alg), &alg, &e) != ADI_OK) {
        fprintf(errs, "JWT_ALGORITHM: expected HS256, RS256 or ES256\n");
        bad++;
    } else if (alg == ADI_JWT_HS256 && cfg->jwt_key[0] == '\0') {
        fprintf(errs, "JWT_SIGNING_KEY: required with JWT_ALGORITHM=HS256\n");
        bad++;
    } else if (alg != ADI_JWT_HS256 && cfg->jwt_pub_file[0] == '\0') {
        fprintf(errs, "JWT_PUBLIC_KEY_FILE: required with JWT_ALGORITHM=%s\n", cfg->jwt_alg);
        bad++;
    }
    return bad;
}

/* Reads at most PEM_FILE_MAX bytes of `path` into `out`; false with a message in `why`. */
static bool read_pem(const char *path, adi_buf_t *out, char why[128])
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(why, 128, "cannot open %.80s", path);
        return false;
    }
    char chunk[4096];
    size_t n;
    bool ok = true;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (out->len + n > PEM_FILE_MAX) {
            snprintf(why, 128, "%.80s is larger than %d bytes", path, PEM_FILE_MAX);
            ok = false;
            break;
        }
        adi_buf_append(out, chunk, n);
    }
    if (ok && ferror(f)) {
        snprintf(why, 128, "cannot read %.80s", path);
        ok = false;
    }
    fclose(f);
    return ok;
}

int gw_config_jwt(const gw_config_t *cfg, adi_jwt_t **out, FILE *errs)
{
    *out = NULL;
    adi_error_t e;
    adi_error_clear(&e);
    adi_jwt_config_t jc;
    memset(&jc, 0, sizeof(jc));
    if (adi_jwt_alg_parse(adi_str_c(cfg->jwt_alg), &jc.alg, &e) != ADI_OK) {
        fprintf(errs, "JWT_ALGORITHM: expected HS256, RS256 or ES256\n");
        return 1;
    }
    jc.leeway_s = cfg->jwt_leeway_s;
    adi_buf_t pem;
    adi_buf_init(&pem);
    int bad = 0;
    if (jc.alg == ADI_JWT_HS256) {
        jc.secret = adi_str_c(cfg->jwt_key);
    } else {
        char why[128];
        if (cfg->jwt_pub_file[0] == '\0') {
            fprintf(errs, "JWT_PUBLIC_KEY_FILE: required with JWT_ALGORITHM=%s\n", cfg->jwt_alg);
            bad++;
            goto out;
        }
        if (!read_pem(cfg->jwt_pub_file, &pem, why)) {
            fprintf(errs, "JWT_PUBLIC_KEY_FILE: %s\n", why);
            bad++;
            goto out;
        }
        jc.public_key_pem = (adi_str_t){pem.data, pem.len};
    }
    if (adi_jwt_new(out, &jc, &e) != ADI_OK) {
        fprintf(errs, "%s: %s\n",
                jc.alg == ADI_JWT_HS256 ? "JWT_SIGNING_KEY" : "JWT_PUBLIC_KEY_FILE", e.message);
        bad++;
    }
out:
    adi_buf_dispose(&pem);
    return bad;
}

int64_t gw_threads_resolve(int64_t configured, long online)
{
    if (configured > 0)
        return configured;
    if (online < 1)
        return 1;
    return online < GW_THREADS_MAX ? online : GW_THREADS_MAX;
}

void gw_config_table(FILE *f)
{
    adi_cfg_table(rows, NROWS, f);
}

void gw_config_log(const gw_config_t *cfg)
{
    adi_cfg_log(rows, NROWS, cfg);
}

/* Decodes %XX escapes of [p, p + n) into `dst` (capacity cap, NUL-terminated). */
static bool copy_decoded(char *dst, size_t cap, const char *p, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '%' && i + 2 < n && isxdigit((unsigned char)p[i + 1]) &&
            isxdigit((unsigned char)p[i + 2])) {
            char hex[3] = {p[i + 1], p[i + 2], 0};
            c = (char)strtol(hex, NULL, 16);
            i += 2;
        }
        if (o + 1 >= cap)
            return false;
        dst[o++] = c;
    }
    dst[o] = '\0';
    return true;
}

static bool parse_uint(const char *p, size_t n, long max, long *out)
{
    if (n == 0 || n > 10)
        return false;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i]))
            return false;
        v = v * 10 + (p[i] - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

adi_err gw_redis_url_parse(const char *s, gw_redis_url_t *out, adi_error_t *err)
{
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    static const char scheme[] = "redis://";
    if (s == NULL || strncmp(s, scheme, sizeof(scheme) - 1) != 0)
        return adi_error_set(err, ADI_INVALID, "expected redis://host[:port][/db]");
    const char *p = s + sizeof(scheme) - 1;
    const char *end = p + strcspn(p, "/?#");
    const char *at = NULL;
    /* The last '@' separates the credentials (an '@' in a password should be encoded). */
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *uend = colon ? colon : at;
        if (!copy_decoded(out->user, sizeof(out->user), p, (size_t)(uend - p)))
            return adi_error_set(err, ADI_INVALID, "user name too long");
        if (colon != NULL && !copy_decoded(out->password, sizeof(out->password), colon + 1,
                                           (size_t)(at - colon - 1)))
            return adi_error_set(err, ADI_INVALID, "password too long");
        if (colon == NULL) {
            /* redis://secret@host: a lone credential is the password (redis-cli does the same). */
            memcpy(out->password, out->user, sizeof(out->user));
            out->user[0] = '\0';
        }
        p = at + 1;
    }
    const char *hend;
    const char *portp = NULL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (rb == NULL)
            return adi_error_set(err, ADI_INVALID, "unterminated [IPv6] host");
        if ((size_t)(rb - p - 1) >= sizeof(out->host) || rb == p + 1)
            return adi_error_set(err, ADI_INVALID, "bad host");
        memcpy(out->host, p + 1, (size_t)(rb - p - 1));
        hend = rb + 1;
        if (hend < end && *hend != ':')
            return adi_error_set(err, ADI_INVALID, "bad host");
        if (hend < end)
            portp = hend + 1;
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        hend = colon ? colon : end;
        if (hend == p || (size_t)(hend - p) >= sizeof(out->host))
            return adi_error_set(err, ADI_INVALID, "missing or too long host");
        memcpy(out->host, p, (size_t)(hend - p));
        if (colon)
            portp = colon + 1;
    }
    if (portp != NULL) {
        long port;
        if (!parse_uint(portp, (size_t)(end - portp), 65535, &port) || port == 0)
            return adi_error_set(err, ADI_INVALID, "port must be 1 to 65535");
        out->port = (int)port;
    }
    if (*end == '/') {
        const char *db = end + 1;
        size_t n = strcspn(db, "?#");
        long v = 0;
        if (n > 0 && !parse_uint(db, n, 1000000, &v))
            return adi_error_set(err, ADI_INVALID, "database must be a number");
        out->db = (int)v;
        end = db + n;
    }
    if (*end != '\0')
        return adi_error_set(err, ADI_INVALID, "query and fragment are not supported");
    return ADI_OK;
}

/* True for "http://host[:port]" or "https://..." with nothing after the authority. */
static bool origin_valid(const char *p, size_t n)
{
    size_t skip;
    if (n > 7 && memcmp(p, "http://", 7) == 0)
        skip = 7;
    else if (n > 8 && memcmp(p, "https://", 8) == 0)
        skip = 8;
    else
        return false;
    bool port = false;
    size_t digits = 0;
    for (size_t i = skip; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (port) {
            if (!isdigit(c) || ++digits > 5)
                return false;
        } else if (c == ':' && i > skip) {
            port = true;
        } else if (!isalnum(c) && c != '-' && c != '.' && c != '[' && c != ']') {
            return false;
        }
    }
    return !port || digits > 0;
}

adi_err gw_origins_parse(const char *s, gw_origins_t *out, adi_error_t *err)
{
    memset(out, 0, sizeof(*out));
    if (s == NULL)
        return ADI_OK;
    const char *p = s;
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *b = p;
        const char *e = p + n;
        while (b < e && isspace((unsigned char)*b))
            b++;
        while (e > b && isspace((unsigned char)e[-1]))
            e--;
        size_t len = (size_t)(e - b);
        if (len > 0) {
            if (len >= GW_ORIGIN_MAX_LEN || !origin_valid(b, len))
                return adi_error_set(err, ADI_INVALID,
                                     "\"%.*s\" is not an origin like https://app.example.com",
                                     (int)(len > 80 ? 80 : len), b);
            if (out->n == GW_MAX_ORIGINS)
                return adi_error_set(err, ADI_INVALID, "at most %d origins", GW_MAX_ORIGINS);
            memcpy(out->items[out->n], b, len);
            out->items[out->n][len] = '\0';
            out->n++;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return ADI_OK;
}

bool gw_origins_allowed(const gw_origins_t *o, adi_str_t origin)
{
    if (origin.ptr == NULL || origin.len == 0 || origin.len >= GW_ORIGIN_MAX_LEN)
        return false;
    for (size_t i = 0; i < o->n; i++)
        if (strlen(o->items[i]) == origin.len && memcmp(o->items[i], origin.ptr, origin.len) == 0)
            return true;
    return false;
}
