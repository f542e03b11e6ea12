/* SPDX-License-Identifier: MIT */
/*
 * Internals of libs/kms, not for use outside libs/kms (and its unit tests, which reach the pure
 * parsers through this header). The public entry points in kms.c dispatch to the local provider
 * (kms.c) or the aws provider (aws.c), which signs its KMS requests with adi/sigv4.h, sends them
 * over a small pool of curl handles (aws_http.c) and gets its credentials from the chain in
 * aws_creds.c (static keys, web identity through STS, the shared credentials file, IMDSv2).
 */
#ifndef ADI_KMS_INT_H
#define ADI_KMS_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "adi/kms.h"

/* ---- limits ----------------------------------------------------------------------------- */

/* Largest HTTP response body read from KMS, STS or IMDS; a larger one fails the call. */
#define ADI_KMS__BODY_MAX (64 * 1024)
/* Longest access key id, secret access key and session token accepted from any source. */
#define ADI_KMS__AKID_MAX   128
#define ADI_KMS__SECRET_MAX 512
#define ADI_KMS__TOKEN_MAX  8192
/* Longest KMS key id (AWS: 2048) and encryption context value sent to KMS. */
#define ADI_KMS__KEY_ID_MAX  2048
#define ADI_KMS__CONTEXT_MAX 512
/* Largest shared credentials file and web identity token file read. */
#define ADI_KMS__FILE_MAX (64 * 1024)
/* Temporary credentials are refreshed this long before they expire. */
#define ADI_KMS__REFRESH_AHEAD_MS (5 * 60 * 1000)
/* After a failed refresh of still-valid credentials, the next try waits this long. */
#define ADI_KMS__REFRESH_RETRY_MS 5000
/* Ceiling of one backoff delay between attempts. */
#define ADI_KMS__BACKOFF_CAP_MS 10000

/* ---- credentials ------------------------------------------------------------------------ */

/**
 * Once per process: curl_global_init, xmlInitParser and inih's line-buffer settings (a heap line
 * of up to ADI_KMS__FILE_MAX bytes, no inline comments, as Python's configparser reads the
 * file). Every entry point that needs one of them calls this first; it is idempotent.
 */
void adi_kms__global_init(void);

/** One set of AWS credentials. Zero-initialise; every filled set gets adi_kms__creds_dispose. */
typedef struct adi_kms__creds {
    char access_key_id[ADI_KMS__AKID_MAX + 1]; /* e.g. "AKIA...", NUL-terminated */
    adi_secret_t secret;                       /* the secret access key */
    adi_secret_t token;                        /* the session token; len 0 when there is none */
    int64_t expires_ms;                        /* wall-clock expiry (ms), 0 = does not expire */
} adi_kms__creds_t;

/** Wipes both secrets and zeroes `c` (safe on a zeroed set). */
void adi_kms__creds_dispose(adi_kms__creds_t *c);

/** Copies `src` into `dst` (which must be zeroed or disposed). */
void adi_kms__creds_copy(adi_kms__creds_t *dst, const adi_kms__creds_t *src);

/**
 * Fills `c` from borrowed pieces after checking them: an access key id of 1..128 characters
 * [A-Za-z0-9], a secret of 1..512 and a token of 0..8192 visible ASCII characters. Errors:
 * ADI_INVALID (`c` untouched; the message names no value).
 */
adi_err adi_kms__creds_set(adi_kms__creds_t *c, adi_str_t akid, adi_str_t secret, adi_str_t token,
                           int64_t expires_ms, adi_error_t *err);

/**
 * Parses an ISO 8601 UTC time as AWS writes expirations ("2026-11-27T21:00:00Z", optionally with
 * fractional seconds, "Z" or "+00:00") into milliseconds since the epoch. Errors: ADI_INVALID.
 */
adi_err adi_kms__parse_time(adi_str_t iso, int64_t *out_ms, adi_error_t *err);

/**
 * Finds `profile` in the text of a shared credentials file (INI: [profile] sections with
 * aws_access_key_id, aws_secret_access_key and optional aws_session_token) and fills `out`.
 * Errors: ADI_NOT_FOUND when the profile is absent or names no key pair; ADI_INVALID when the
 * file is not valid INI or the profile holds half a pair or malformed keys.
 */
adi_err adi_kms__parse_shared_credentials(const char *text, const char *profile,
                                          adi_kms__creds_t *out, adi_error_t *err);

/**
 * Parses an STS AssumeRoleWithWebIdentity response body. On success fills `out` with the
 * temporary credentials and their expiration. For an STS <ErrorResponse>, `code` (at least 64
 * bytes, may be NULL) receives its Error/Code (never the message) and ADI_UNAVAILABLE is
 * returned; anything else malformed is ADI_INVALID.
 */
adi_err adi_kms__parse_sts(const char *xml, size_t len, adi_kms__creds_t *out, char *code,
                           size_t code_cap, adi_error_t *err);

/**
 * Parses the IMDS security-credentials document (JSON with Code "Success", AccessKeyId,
 * SecretAccessKey, Token, Expiration) into `out`. Errors: ADI_INVALID.
 */
adi_err adi_kms__parse_imds(const char *json, size_t len, adi_kms__creds_t *out, adi_error_t *err);

/* ---- HTTP (curl) ------------------------------------------------------------------------ */

/** One reusable curl handle (its connections stay open between calls) and a response buffer. */
typedef struct adi_kms__conn {
    CURL *curl;                 /* the easy handle, reset before each request */
    char *body;                 /* ADI_KMS__BODY_MAX + 1 bytes, NUL-terminated after a request */
    size_t len;                 /* bytes of body received */
    bool overflow;              /* the response was larger than ADI_KMS__BODY_MAX */
    struct adi_kms__conn *next; /* next idle handle of the pool */
} adi_kms__conn_t;

/** A pool of idle handles: a calling thread takes one, uses it, gives it back. */
typedef struct adi_kms__http {
    pthread_mutex_t mu;    /* guards idle */
    adi_kms__conn_t *idle; /* stack of idle handles */
} adi_kms__http_t;

/** One HTTP request; everything borrowed for the call. */
typedef struct adi_kms__request {
    const char *method;               /* "GET", "PUT" or "POST" */
    const char *url;                  /* absolute http(s) URL */
    const struct curl_slist *headers; /* extra request headers (may be NULL) */
    const char *body;                 /* request body (may be NULL when body_len is 0) */
    size_t body_len;                  /* bytes of body */
    long timeout_ms;                  /* whole-attempt timeout */
    long connect_timeout_ms;          /* connection timeout (0 = timeout_ms) */
    bool no_proxy;                    /* bypass any proxy of the environment (IMDS) */
} adi_kms__request_t;

/** Initialises an empty pool (curl_global_init must have run). */
void adi_kms__http_init(adi_kms__http_t *h);

/** Frees every pooled handle (no handle may be out). */
void adi_kms__http_dispose(adi_kms__http_t *h);

/** An idle handle, or a new one. Aborts on OOM. */
adi_kms__conn_t *adi_kms__http_take(adi_kms__http_t *h);

/** Wipes the handle's response buffer and returns it to the pool. */
void adi_kms__http_give(adi_kms__http_t *h, adi_kms__conn_t *c);

/**
 * Sends `req` on `c`. ADI_OK when a response arrived (any status, in `*status`; the body in
 * c->body/c->len). Errors: ADI_UNAVAILABLE for a transport failure (connection, timeout, reset:
 * worth retrying; `*curl_code` says which); ADI_TOO_LARGE when the body exceeded
 * ADI_KMS__BODY_MAX.
 */
adi_err adi_kms__http_do(adi_kms__conn_t *c, const adi_kms__request_t *req, long *status,
                         int *curl_code);

/** Wipes and frees a header list that may hold secrets (Authorization, a token). */
void adi_kms__slist_free_wiped(struct curl_slist *l);

/* ---- the aws provider ------------------------------------------------------------------- */

/** The AWS provider's state (aws.c, aws_creds.c). */
typedef struct adi_kms__aws {
    char *key_id;          /* KMS_KEY_ID as configured */
    char *key_id_json;     /* the same as a JSON string literal (quotes included) */
    char *region;          /* AWS_REGION */
    char *kms_url;         /* "<scheme>://<authority>/" of the KMS endpoint */
    char *kms_host;        /* Host header for KMS (authority of kms_url) */
    char *sts_url;         /* "<scheme>://<authority>/" of the STS endpoint */
    char *imds_url;        /* "<scheme>://<authority>" of the metadata service (no slash) */
    bool imds_disabled;    /* AWS_EC2_METADATA_DISABLED */
    bool have_static;      /* an explicit key pair was configured */
    adi_kms__creds_t stat; /* that pair (+ session token) */
    char *profile;         /* AWS_PROFILE or "default" */
    char *shared_file;     /* the shared credentials file, NULL when there is no HOME */
    char *role_arn;        /* AWS_ROLE_ARN, NULL when unset */
    char *token_file;      /* AWS_WEB_IDENTITY_TOKEN_FILE, NULL when unset */
    char *session_name;    /* AWS_ROLE_SESSION_NAME or "adi-vault-<pid>" */
    int timeout_ms;        /* per HTTP attempt */
    int max_attempts;      /* attempts per KMS operation */
    int retry_base_ms;     /* first backoff ceiling */
    adi_kms__http_t http;  /* pooled curl handles for KMS, STS and IMDS */

    pthread_mutex_t mu;         /* guards cur, have, gen */
    pthread_mutex_t refresh_mu; /* held by the one thread fetching new credentials */
    adi_kms__creds_t cur;       /* the cached credentials */
    bool have;                  /* cur is filled */
    int64_t retry_refresh_ms;   /* after a failed refresh, the next one waits until then */
    uint64_t gen;               /* bumped each time cur is replaced */
} adi_kms__aws_t;

/** The aws provider behind `kms`, NULL for the local provider (for the unit tests). */
adi_kms__aws_t *adi_kms__aws_of(adi_kms_t *kms);

/** Validates `cfg` and builds the provider (no network). Errors: ADI_INVALID. */
adi_err adi_kms__aws_new(const adi_kms_config_t *cfg, adi_kms__aws_t **out, adi_error_t *err);

/** Wipes every credential and frees the provider. NULL is a no-op. */
void adi_kms__aws_free(adi_kms__aws_t *a);

/**
 * Credentials to sign with, copied into `out` (the caller disposes them), and their generation
 * in `*gen`. `expired_gen` != 0 says KMS answered ExpiredTokenException for credentials of that
 * generation: they are replaced unless another thread already did. Errors: ADI_UNAVAILABLE (no
 * source gave credentials; logged as kms.credentials).
 */
adi_err adi_kms__aws_creds(adi_kms__aws_t *a, uint64_t expired_gen, adi_kms__creds_t *out,
                           uint64_t *gen, adi_error_t *err);

/** GenerateDataKey (see adi_kms_generate). */
adi_err adi_kms__aws_generate(adi_kms__aws_t *a, adi_str_t context, adi_secret_t *dek,
                              unsigned char wrapped[ADI_KMS_WRAPPED_MAX], size_t *wrapped_len,
                              adi_error_t *err);

/** Decrypt (see adi_kms_unwrap). */
adi_err adi_kms__aws_unwrap(adi_kms__aws_t *a, adi_str_t context, adi_str_t wrapped,
                            adi_secret_t *dek, adi_error_t *err);

/** Encrypt (see adi_kms_wrap). */
adi_err adi_kms__aws_wrap(adi_kms__aws_t *a, adi_str_t context, const adi_secret_t *dek,
                          unsigned char wrapped[ADI_KMS_WRAPPED_MAX], size_t *wrapped_len,
                          adi_error_t *err);

/** ReEncrypt (see adi_kms_rewrap). */
adi_err adi_kms__aws_rewrap(adi_kms__aws_t *a, adi_str_t context, adi_str_t wrapped,
                            unsigned char out[ADI_KMS_WRAPPED_MAX], size_t *out_len,
                            adi_error_t *err);

/** The message every remote failure gets (no AWS detail, no secret). */
#define ADI_KMS__UNAVAILABLE_MSG "The key service is unavailable."
/** The message of a wrapped key that does not unwrap. */
#define ADI_KMS__DECRYPT_MSG "Decryption failed."

#endif
