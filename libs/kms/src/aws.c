/* SPDX-License-Identifier: MIT */
/*
 * The aws provider: AWS KMS's JSON API (TrentService.GenerateDataKey, Decrypt, Encrypt,
 * ReEncrypt) over HTTP(S) with curl, each request signed with SigV4 (adi/sigv4.h) by the
 * credentials of aws_creds.c, the tenant id as encryption context {"tenant_id": <context>}.
 *
 * An operation makes up to max_attempts attempts. Throttling (ThrottlingException, HTTP 429),
 * 5xx answers and transport failures are retried after a random delay between 0 and
 * retry_base_ms * 2^(attempt-1) (full jitter, capped at 10 s); ExpiredTokenException replaces the
 * credentials once and retries at once. InvalidCiphertextException and IncorrectKeyException of
 * Decrypt / ReEncrypt are ADI_INVALID "Decryption failed."; every other failure is
 * ADI_UNAVAILABLE "The key service is unavailable.", the AWS error type and HTTP status going
 * to the log (kms.retry, kms.error) and never the body. Answers are bounded (64 KiB body, blobs
 * within ADI_KMS_WRAPPED_MAX, a Plaintext of exactly 32 bytes), and the buffers and JSON values
 * that held a data key are wiped.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "adi/log.h"
#include "adi/sigv4.h"
#include "kms_int.h"

/* Room for any request body: key id (escaped), two contexts (escaped) and a blob in base64. */
#define BODY_CAP 16384
/* Longest endpoint URL accepted. */
#define URL_MAX 1024
/* Most attempts KMS_MAX_ATTEMPTS may ask for. */
#define ATTEMPTS_MAX 20

static bool is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* ---- configuration ---------------------------------------------------------------------- */

/*
 * Checks that `url` is an http(s) URL with a host and nothing after it but an optional "/",
 * and stores "<scheme>://<host>[:<port>]" (plus "/" when `slash`) in *base and the authority
 * (the Host header) in *authority.
 */
static adi_err parse_endpoint(const char *var, const char *url, bool slash, char **base,
                              char **authority, adi_error_t *err)
{
    CURLU *u = curl_url();
    if (u == NULL)
        adi__oom(sizeof(void *), __FILE__, __LINE__);
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL, *frag = NULL,
         *user = NULL;
    adi_err rc = ADI_OK;
    if (strlen(url) > URL_MAX || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0' ||
        curl_url_get(u, CURLUPART_USER, &user, 0) != CURLUE_NO_USER ||
        curl_url_get(u, CURLUPART_QUERY, &query, 0) != CURLUE_NO_QUERY ||
        curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) != CURLUE_NO_FRAGMENT ||
        curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK || strcmp(path, "/") != 0) {
        rc = adi_error_set(err, ADI_INVALID, "%s must be an http(s) URL with no path.", var);
        goto out;
    }
    CURLUcode pc = curl_url_get(u, CURLUPART_PORT, &port, 0);
    if (pc != CURLUE_OK && pc != CURLUE_NO_PORT) {
        rc = adi_error_set(err, ADI_INVALID, "%s must be an http(s) URL with no path.", var);
        goto out;
    }
    adi_buf_t b;
    adi_buf_init(&b);
    adi_buf_printf(&b, "%s%s%s", host, port != NULL ? ":" : "", port != NULL ? port : "");
    *authority = adi_xstrdup(b.data);
    adi_buf_reset(&b);
    adi_buf_printf(&b, "%s://%s%s", scheme, *authority, slash ? "/" : "");
    *base = adi_xstrdup(b.data);
    adi_buf_dispose(&b);
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_free(frag);
    curl_free(user);
    curl_url_cleanup(u);
    return rc;
}

/* A JSON string literal (quotes included) of `s`, or NULL when `s` is not valid UTF-8. */
static char *json_quote(adi_str_t s)
{
    json_t *j = json_stringn(s.ptr != NULL ? s.ptr : "", s.len);
    if (j == NULL)
        return NULL;
    char *q = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(j);
    return q;
}

static bool printable(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

static bool valid_region(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
            return false;
    return true;
}

static bool valid_session_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 2 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && strchr("_+=,.@-", s[i]) == NULL)
            return false;
    return true;
}

/* The explicit key pair, the web identity settings and the shared file location. */
static adi_err credential_settings(const adi_kms_config_t *cfg, adi_kms__aws_t *a, adi_error_t *err)
{
    bool akid = is_set(cfg->access_key_id), secret = is_set(cfg->secret_access_key);
    if (akid != secret)
        return adi_error_set(err, ADI_INVALID,
                             "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together.");
    if (is_set(cfg->session_token) && !akid)
        return adi_error_set(
            err, ADI_INVALID,
            "AWS_SESSION_TOKEN needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.");
    if (akid) {
        if (adi_kms__creds_set(&a->stat, adi_str_c(cfg->access_key_id),
                               adi_str_c(cfg->secret_access_key), adi_str_c(cfg->session_token), 0,
                               NULL) != ADI_OK)
            return adi_error_set(err, ADI_INVALID,
                                 "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_SESSION_TOKEN "
                                 "is malformed.");
        a->have_static = true;
    }
    if (is_set(cfg->role_arn) != is_set(cfg->web_identity_token_file))
        return adi_error_set(err, ADI_INVALID,
                             "AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE must be set together.");
    if (is_set(cfg->role_arn)) {
        if (!printable(cfg->role_arn, 2048))
            return adi_error_set(err, ADI_INVALID, "AWS_ROLE_ARN is malformed.");
        a->role_arn = adi_xstrdup(cfg->role_arn);
        a->token_file = adi_xstrdup(cfg->web_identity_token_file);
    }
    if (is_set(cfg->role_session_name)) {
        if (!valid_session_name(cfg->role_session_name))
            return adi_error_set(err, ADI_INVALID,
                                 "AWS_ROLE_SESSION_NAME must be 2 to 64 characters of "
                                 "[A-Za-z0-9_+=,.@-].");
        a->session_name = adi_xstrdup(cfg->role_session_name);
    } else {
        char name[64];
        snprintf(name, sizeof(name), "adi-vault-%ld", (long)getpid());
        a->session_name = adi_xstrdup(name);
    }
    const char *profile = is_set(cfg->profile) ? cfg->profile : "default";
    if (!printable(profile, 128) || strchr(profile, ']') != NULL)
        return adi_error_set(err, ADI_INVALID, "AWS_PROFILE is malformed.");
    a->profile = adi_xstrdup(profile);
    if (is_set(cfg->shared_credentials_file)) {
        a->shared_file = adi_xstrdup(cfg->shared_credentials_file);
    } else {
        /* The documented default; the vault's configuration has no row for HOME. */
        const char *home = getenv("HOME");
        if (is_set(home)) {
            adi_buf_t b;
            adi_buf_init(&b);
            adi_buf_printf(&b, "%s/.aws/credentials", home);
            a->shared_file = adi_xstrdup(b.data);
            adi_buf_dispose(&b);
        }
    }
    return ADI_OK;
}

static adi_err aws_configure(const adi_kms_config_t *cfg, adi_kms__aws_t *a, adi_error_t *err)
{
    if (!is_set(cfg->key_id))
        return adi_error_set(err, ADI_INVALID, "KMS_KEY_ID must be set for the aws provider.");
    if (!printable(cfg->key_id, ADI_KMS__KEY_ID_MAX))
        return adi_error_set(err, ADI_INVALID, "KMS_KEY_ID is not a valid key id.");
    if (!is_set(cfg->region))
        return adi_error_set(err, ADI_INVALID, "AWS_REGION must be set for the aws provider.");
    if (!valid_region(cfg->region))
        return adi_error_set(err, ADI_INVALID, "AWS_REGION is not a valid region name.");
    if (cfg->timeout_ms < 0 || cfg->max_attempts < 0 || cfg->max_attempts > ATTEMPTS_MAX ||
        cfg->retry_base_ms < 0)
        return adi_error_set(err, ADI_INVALID,
                             "KMS_TIMEOUT_MS, KMS_MAX_ATTEMPTS (at most %d) or KMS_RETRY_BASE_MS "
                             "is out of range.",
                             ATTEMPTS_MAX);
    a->key_id = adi_xstrdup(cfg->key_id);
    a->key_id_json = json_quote(adi_str_c(cfg->key_id));
    ADI_ASSERT(a->key_id_json != NULL);
    a->region = adi_xstrdup(cfg->region);
    a->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 5000;
    a->max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : 4;
    a->retry_base_ms = cfg->retry_base_ms > 0 ? cfg->retry_base_ms : 50;
    a->imds_disabled = cfg->imds_disabled;

    char def[256];
    char *unused = NULL;
    snprintf(def, sizeof(def), "https://kms.%s.amazonaws.com", a->region);
    adi_err rc = parse_endpoint("KMS_ENDPOINT", is_set(cfg->endpoint) ? cfg->endpoint : def, true,
                                &a->kms_url, &a->kms_host, err);
    if (rc != ADI_OK)
        return rc;
    snprintf(def, sizeof(def), "https://sts.%s.amazonaws.com", a->region);
    rc = parse_endpoint("AWS_STS_ENDPOINT", is_set(cfg->sts_endpoint) ? cfg->sts_endpoint : def,
                        true, &a->sts_url, &unused, err);
    free(unused);
    unused = NULL;
    if (rc != ADI_OK)
        return rc;
    rc = parse_endpoint("AWS_EC2_METADATA_SERVICE_ENDPOINT",
                        is_set(cfg->imds_endpoint) ? cfg->imds_endpoint : "http://169.254.169.254",
                        false, &a->imds_url, &unused, err);
    free(unused);
    if (rc != ADI_OK)
        return rc;
    return credential_settings(cfg, a, err);
}

adi_err adi_kms__aws_new(const adi_kms_config_t *cfg, adi_kms__aws_t **out, adi_error_t *err)
{
    *out = NULL;
    adi_kms__global_init();
    adi_kms__aws_t *a = adi_xcalloc(1, sizeof(*a));
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->refresh_mu, NULL);
    adi_kms__http_init(&a->http);
    adi_err rc = aws_configure(cfg, a, err);
    if (rc != ADI_OK) {
        adi_kms__aws_free(a);
        return rc;
    }
    *out = a;
    return ADI_OK;
}

void adi_kms__aws_free(adi_kms__aws_t *a)
{
    if (a == NULL)
        return;
    adi_kms__http_dispose(&a->http);
    adi_kms__creds_dispose(&a->stat);
    adi_kms__creds_dispose(&a->cur);
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->refresh_mu);
    free(a->key_id);
    free(a->key_id_json);
    free(a->region);
    free(a->kms_url);
    free(a->kms_host);
    free(a->sts_url);
    free(a->imds_url);
    free(a->profile);
    free(a->shared_file);
    free(a->role_arn);
    free(a->token_file);
    free(a->session_name);
    free(a);
}

/* ---- one KMS request -------------------------------------------------------------------- */

/* What one attempt came to. */
typedef enum outcome {
    SENT_OK,        /* HTTP 200 with a JSON object */
    SENT_TRANSPORT, /* no answer (connection, timeout, reset) */
    SENT_TOO_LARGE, /* the answer exceeded ADI_KMS__BODY_MAX */
    SENT_ERROR,     /* an HTTP error status, its AWS error type in `type` */
    SENT_MALFORMED, /* HTTP 200 that is not a JSON object */
    SENT_UNSIGNED,  /* the request could not be signed (credentials the signer refused) */
} outcome;

/* The AWS error type of an error body: "__type" without any "namespace#" prefix, sanitised. */
static void error_type(json_t *doc, char *type, size_t cap)
{
    type[0] = '\0';
    json_t *v = json_object_get(doc, "__type");
    if (!json_is_string(v))
        return;
    const char *s = json_string_value(v);
    const char *hash = strrchr(s, '#');
    if (hash != NULL)
        s = hash + 1;
    size_t n = 0;
    while (s[n] != '\0' && n + 1 < cap &&
           (isalnum((unsigned char)s[n]) || s[n] == '_' || s[n] == '.'))
        n++;
    memcpy(type, s, n);
    type[n] = '\0';
}

/* Appends "Name: value" to a header list. */
static struct curl_slist *add_header(struct curl_slist *l, adi_str_t name, adi_str_t value)
{
    char *line = adi_xmalloc(name.len + value.len + 3);
    memcpy(line, name.ptr, name.len);
    memcpy(line + name.len, ": ", 2);
    memcpy(line + name.len + 2, value.ptr, value.len);
    line[name.len + value.len + 2] = '\0';
    struct curl_slist *n = curl_slist_append(l, line);
    OPENSSL_cleanse(line, name.len + value.len + 3);
    free(line);
    if (n == NULL)
        adi__oom(name.len + value.len, __FILE__, __LINE__);
    return n;
}

static outcome send_once(adi_kms__aws_t *a, const char *target, const char *body, size_t body_len,
                         const adi_kms__creds_t *cr, long *status, int *cc, char *type,
                         size_t type_cap, json_t **doc)
{
    *doc = NULL;
    char amz_date[17];
    if (adi_sigv4_amz_date(adi_now_ms() / 1000, amz_date, NULL) != ADI_OK)
        return SENT_UNSIGNED;
    const adi_sigv4_header_t hs[] = {
        {ADI_STR("Host"), adi_str_c(a->kms_host)},
        {ADI_STR("Content-Type"), ADI_STR("application/x-amz-json-1.1")},
        {ADI_STR("X-Amz-Target"), adi_str_c(target)},
    };
    const adi_sigv4_credentials_t sc = {
        .access_key_id = adi_str_c(cr->access_key_id),
        .secret_access_key = {(const char *)cr->secret.ptr, cr->secret.len},
        .session_token = {(const char *)cr->token.ptr, cr->token.len},
    };
    const adi_sigv4_params_t p = {
        .method = ADI_STR("POST"),
        .path = ADI_STR("/"),
        .query = ADI_STR(""),
        .headers = hs,
        .nheaders = sizeof(hs) / sizeof(hs[0]),
        .body = {body, body_len},
        .normalize_path = true,
        .credentials = &sc,
        .region = adi_str_c(a->region),
        .service = ADI_STR("kms"),
        .amz_date = adi_str_c(amz_date),
    };
    adi_sigv4_result_t r;
    if (adi_sigv4_sign(&p, &r, NULL) != ADI_OK)
        return SENT_UNSIGNED;
    struct curl_slist *l = NULL;
    for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
        l = add_header(l, hs[i].name, hs[i].value);
    adi_sigv4_header_t added[ADI_SIGV4_MAX_ADDED];
    size_t nadded = adi_sigv4_result_headers(&r, added);
    for (size_t i = 0; i < nadded; i++)
        l = add_header(l, added[i].name, added[i].value);
    l = add_header(l, ADI_STR("Expect"), ADI_STR(""));
    adi_sigv4_result_dispose(&r);

    adi_kms__conn_t *c = adi_kms__http_take(&a->http);
    adi_kms__request_t req = {.method = "POST",
                              .url = a->kms_url,
                              .headers = l,
                              .body = body,
                              .body_len = body_len,
                              .timeout_ms = a->timeout_ms};
    adi_err rc = adi_kms__http_do(c, &req, status, cc);
    adi_kms__slist_free_wiped(l);
    if (rc != ADI_OK) {
        adi_kms__http_give(&a->http, c);
        return rc == ADI_TOO_LARGE ? SENT_TOO_LARGE : SENT_TRANSPORT;
    }
    json_error_t jerr;
    json_t *j = json_loadb(c->body, c->len, JSON_REJECT_DUPLICATES, &jerr);
    adi_kms__http_give(&a->http, c);
    if (*status == 200) {
        if (json_is_object(j)) {
            *doc = j;
            return SENT_OK;
        }
        json_decref(j);
        return SENT_MALFORMED;
    }
    error_type(j, type, type_cap);
    json_decref(j);
    return SENT_ERROR;
}

/* A random delay in [0, min(cap, base * 2^(attempt-1))] ms: exponential backoff, full jitter. */
static int backoff_ms(const adi_kms__aws_t *a, int attempt)
{
    long long ceiling = a->retry_base_ms;
    for (int i = 1; i < attempt && ceiling < ADI_KMS__BACKOFF_CAP_MS; i++)
        ceiling *= 2;
    if (ceiling > ADI_KMS__BACKOFF_CAP_MS)
        ceiling = ADI_KMS__BACKOFF_CAP_MS;
    uint32_t r;
    adi_crypto_random(&r, sizeof(r));
    return (int)(r % (uint32_t)(ceiling + 1));
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/*
 * Runs one KMS operation with the retry rules above. On ADI_OK `*doc` is the answer (the caller
 * decrefs it after wiping any Plaintext).
 */
static adi_err kms_call(adi_kms__aws_t *a, const char *op, const char *body, size_t body_len,
                        bool decrypting, json_t **doc, adi_error_t *err)
{
    *doc = NULL;
    char target[64];
    snprintf(target, sizeof(target), "TrentService.%s", op);
    uint64_t expired_gen = 0;
    bool refreshed = false;
    char reason[160];
    for (int attempt = 1;; attempt++) {
        adi_kms__creds_t cr;
        uint64_t gen = 0;
        if (adi_kms__aws_creds(a, expired_gen, &cr, &gen, err) != ADI_OK) {
            ADI_LOG(NULL, ADI_LOG_ERROR, "kms.error", "%s: no usable AWS credentials", op);
            return ADI_UNAVAILABLE;
        }
        expired_gen = 0;
        long status = 0;
        int cc = 0;
        char type[64] = "";
        outcome o =
            send_once(a, target, body, body_len, &cr, &status, &cc, type, sizeof(type), doc);
        adi_kms__creds_dispose(&cr);
        if (o == SENT_OK)
            return ADI_OK;

        bool retry = false;
        switch (o) {
        case SENT_TRANSPORT:
            retry = true;
            snprintf(reason, sizeof(reason), "transport: %s", curl_easy_strerror((CURLcode)cc));
            break;
        case SENT_ERROR:
            if (strcmp(type, "ExpiredTokenException") == 0 && !refreshed) {
                refreshed = true;
                expired_gen = gen;
                attempt--;
                ADI_LOG(NULL, ADI_LOG_WARN, "kms.retry",
                        "%s: ExpiredTokenException; refreshing the credentials", op);
                continue;
            }
            if (decrypting && (strcmp(type, "InvalidCiphertextException") == 0 ||
                               strcmp(type, "IncorrectKeyException") == 0))
                return adi_error_set(err, ADI_INVALID, ADI_KMS__DECRYPT_MSG);
            retry = status == 429 || status >= 500 || strcmp(type, "ThrottlingException") == 0;
            snprintf(reason, sizeof(reason), "HTTP %ld %s", status,
                     type[0] != '\0' ? type : "(no error type)");
            break;
        case SENT_TOO_LARGE:
            snprintf(reason, sizeof(reason), "response over %d bytes", ADI_KMS__BODY_MAX);
            break;
        case SENT_MALFORMED:
            snprintf(reason, sizeof(reason), "HTTP 200 without a JSON object");
            break;
        default:
            snprintf(reason, sizeof(reason), "the request could not be signed");
            break;
        }
        if (retry && attempt < a->max_attempts) {
            int delay = backoff_ms(a, attempt);
            ADI_LOG(NULL, ADI_LOG_WARN, "kms.retry",
                    "%s attempt %d of %d failed (%s); retry in %d ms", op, attempt, a->max_attempts,
                    reason, delay);
            sleep_ms(delay);
            continue;
        }
        ADI_LOG(NULL, ADI_LOG_ERROR, "kms.error", "%s failed after %d attempt(s): %s", op, attempt,
                reason);
        return adi_error_set(err, ADI_UNAVAILABLE, ADI_KMS__UNAVAILABLE_MSG);
    }
}

/* ---- the operations --------------------------------------------------------------------- */

/* The context as a JSON string literal (free()), or ADI_INVALID. */
static adi_err quote_context(adi_str_t context, char **quoted, adi_error_t *err)
{
    *quoted = NULL;
    if (context.len <= ADI_KMS__CONTEXT_MAX)
        *quoted = json_quote(context);
    if (*quoted == NULL)
        return adi_error_set(err, ADI_INVALID, "The encryption context is invalid.");
    return ADI_OK;
}

/* Decodes the base64 member `key` of `doc` into `out`; false when absent, malformed or too big. */
static bool get_blob(json_t *doc, const char *key, unsigned char *out, size_t cap, size_t *len)
{
    *len = 0;
    json_t *v = json_object_get(doc, key);
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        json_string_length(v) > ADI_B64_LEN(cap))
        return false;
    adi_str_t s = {json_string_value(v), json_string_length(v)};
    if (adi_b64_decode(s, out, cap, len, NULL) != ADI_OK) {
        *len = 0;
        return false;
    }
    return *len > 0;
}

/* Wipes a JSON string member that held a data key. */
static void wipe_member(json_t *doc, const char *key)
{
    json_t *v = json_object_get(doc, key);
    if (json_is_string(v)) {
        char *p = (char *)(uintptr_t)json_string_value(v);
        OPENSSL_cleanse(p, json_string_length(v));
    }
}

/* The base64 of a wrapped DEK given by the caller, or ADI_INVALID when it cannot be one. */
static adi_err encode_wrapped(adi_str_t wrapped, char out[ADI_B64_LEN(ADI_KMS_WRAPPED_MAX) + 1],
                              adi_error_t *err)
{
    if (wrapped.ptr == NULL || wrapped.len == 0 || wrapped.len > ADI_KMS_WRAPPED_MAX)
        return adi_error_set(err, ADI_INVALID, ADI_KMS__DECRYPT_MSG);
    return adi_b64_encode(wrapped.ptr, wrapped.len, out, ADI_B64_LEN(ADI_KMS_WRAPPED_MAX) + 1, NULL,
                          err);
}

static adi_err bad_answer(const char *op, const char *what, adi_error_t *err)
{
    ADI_LOG(NULL, ADI_LOG_ERROR, "kms.error", "%s: the answer has %s", op, what);
    return adi_error_set(err, ADI_UNAVAILABLE, ADI_KMS__UNAVAILABLE_MSG);
}

adi_err adi_kms__aws_generate(adi_kms__aws_t *a, adi_str_t context, adi_secret_t *dek,
                              unsigned char wrapped[ADI_KMS_WRAPPED_MAX], size_t *wrapped_len,
                              adi_error_t *err)
{
    char *ctx = NULL;
    adi_err rc = quote_context(context, &ctx, err);
    if (rc != ADI_OK)
        return rc;
    char body[BODY_CAP];
    int n =
        snprintf(body, sizeof(body),
                 "{\"KeyId\":%s,\"KeySpec\":\"AES_256\",\"EncryptionContext\":{\"tenant_id\":%s}}",
                 a->key_id_json, ctx);
    free(ctx);
    ADI_ASSERT(n > 0 && (size_t)n < sizeof(body));
    json_t *doc = NULL;
    rc = kms_call(a, "GenerateDataKey", body, (size_t)n, false, &doc, err);
    if (rc != ADI_OK)
        return rc;
    unsigned char raw[48];
    size_t raw_len = 0;
    bool blob_ok = get_blob(doc, "CiphertextBlob", wrapped, ADI_KMS_WRAPPED_MAX, wrapped_len);
    bool key_ok =
        get_blob(doc, "Plaintext", raw, sizeof(raw), &raw_len) && raw_len == ADI_AEAD_KEY_LEN;
    wipe_member(doc, "Plaintext");
    json_decref(doc);
    if (blob_ok && key_ok)
        adi_secret_init(dek, raw, ADI_AEAD_KEY_LEN);
    OPENSSL_cleanse(raw, sizeof(raw));
    if (!blob_ok || !key_ok) {
        *wrapped_len = 0;
        return bad_answer("GenerateDataKey",
                          blob_ok ? "no 32-byte Plaintext" : "no CiphertextBlob that fits", err);
    }
    return ADI_OK;
}

adi_err adi_kms__aws_unwrap(adi_kms__aws_t *a, adi_str_t context, adi_str_t wrapped,
                            adi_secret_t *dek, adi_error_t *err)
{
    char blob[ADI_B64_LEN(ADI_KMS_WRAPPED_MAX) + 1];
    adi_err rc = encode_wrapped(wrapped, blob, err);
    if (rc != ADI_OK)
        return rc;
    char *ctx = NULL;
    rc = quote_context(context, &ctx, err);
    if (rc != ADI_OK)
        return rc;
    char body[BODY_CAP];
    int n =
        snprintf(body, sizeof(body),
                 "{\"CiphertextBlob\":\"%s\",\"EncryptionContext\":{\"tenant_id\":%s}}", blob, ctx);
    free(ctx);
    ADI_ASSERT(n > 0 && (size_t)n < sizeof(body));
    json_t *doc = NULL;
    rc = kms_call(a, "Decrypt", body, (size_t)n, true, &doc, err);
    if (rc != ADI_OK)
        return rc;
    unsigned char raw[48];
    size_t raw_len = 0;
    bool key_ok =
        get_blob(doc, "Plaintext", raw, sizeof(raw), &raw_len) && raw_len == ADI_AEAD_KEY_LEN;
    wipe_member(doc, "Plaintext");
    json_decref(doc);
    if (key_ok)
        adi_secret_init(dek, raw, ADI_AEAD_KEY_LEN);
    OPENSSL_cleanse(raw, sizeof(raw));
    if (!key_ok)
        return bad_answer("Decrypt", "no 32-byte Plaintext", err);
    return ADI_OK;
}

adi_err adi_kms__aws_wrap(adi_kms__aws_t *a, adi_str_t context, const adi_secret_t *dek,
                          unsigned char wrapped[ADI_KMS_WRAPPED_MAX], size_t *wrapped_len,
                          adi_error_t *err)
{
    char *ctx = NULL;
    adi_err rc = quote_context(context, &ctx, err);
    if (rc != ADI_OK)
        return rc;
    char key[ADI_B64_LEN(ADI_AEAD_KEY_LEN) + 1];
    rc = adi_b64_encode(dek->ptr, dek->len, key, sizeof(key), NULL, err);
    if (rc != ADI_OK) {
        free(ctx);
        return rc;
    }
    char body[BODY_CAP];
    int n = snprintf(body, sizeof(body),
                     "{\"KeyId\":%s,\"Plaintext\":\"%s\",\"EncryptionContext\":{\"tenant_id\":%s}}",
                     a->key_id_json, key, ctx);
    OPENSSL_cleanse(key, sizeof(key));
    free(ctx);
    ADI_ASSERT(n > 0 && (size_t)n < sizeof(body));
    json_t *doc = NULL;
    rc = kms_call(a, "Encrypt", body, (size_t)n, false, &doc, err);
    OPENSSL_cleanse(body, sizeof(body));
    if (rc != ADI_OK)
        return rc;
    bool blob_ok = get_blob(doc, "CiphertextBlob", wrapped, ADI_KMS_WRAPPED_MAX, wrapped_len);
    json_decref(doc);
    if (!blob_ok)
        return bad_answer("Encrypt", "no CiphertextBlob that fits", err);
    return ADI_OK;
}

adi_err adi_kms__aws_rewrap(adi_kms__aws_t *a, adi_str_t context, adi_str_t wrapped,
                            unsigned char out[ADI_KMS_WRAPPED_MAX], size_t *out_len,
                            adi_error_t *err)
{
    char blob[ADI_B64_LEN(ADI_KMS_WRAPPED_MAX) + 1];
    adi_err rc = encode_wrapped(wrapped, blob, err);
    if (rc != ADI_OK)
        return rc;
    char *ctx = NULL;
    rc = quote_context(context, &ctx, err);
    if (rc != ADI_OK)
        return rc;
    char body[BODY_CAP];
    int n = snprintf(body, sizeof(body),
                     "{\"CiphertextBlob\":\"%s\",\"SourceEncryptionContext\":{\"tenant_id\":%s},"
                     "\"DestinationKeyId\":%s,\"DestinationEncryptionContext\":{\"tenant_id\":%s}}",
                     blob, ctx, a->key_id_json, ctx);
    free(ctx);
    ADI_ASSERT(n > 0 && (size_t)n < sizeof(body));
    json_t *doc = NULL;
    rc = kms_call(a, "ReEncrypt", body, (size_t)n, true, &doc, err);
    if (rc != ADI_OK)
        return rc;
    bool blob_ok = get_blob(doc, "CiphertextBlob", out, ADI_KMS_WRAPPED_MAX, out_len);
    json_decref(doc);
    if (!blob_ok)
        return bad_answer("ReEncrypt", "no CiphertextBlob that fits", err);
    return ADI_OK;
}
