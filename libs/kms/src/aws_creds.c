/* SPDX-License-Identifier: MIT */
/*
 * The aws provider's credentials: the chain of kms.h (explicit keys, web identity through STS
 * AssumeRoleWithWebIdentity, the shared credentials file and profile, IMDSv2), the parsers of
 * what each source returns (INI with inih, STS XML with libxml2, IMDS JSON with jansson) and the
 * cache in front of them.
 *
 * The cache holds one set of credentials. Temporary ones are replaced 5 minutes before they
 * expire: one thread fetches (refresh_mu) while the others keep signing with the cached set as
 * long as it is valid; a refresh that fails keeps the old set in service until it really expires
 * (trying again at most every 5 s). The explicit keys and a shared-file profile do not expire;
 * the file is read again only when KMS rejects its session token as expired. KMS answering
 * ExpiredTokenException marks a generation stale, which forces a fetch. Every replaced or returned
 * set is wiped. Log lines (event kms.credentials) name the source, the expiry and what failed (an
 * HTTP status, an STS error code), never a key, a token or a body.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ini.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/crypto.h>

#include "adi/log.h"
#include "kms_int.h"

/* Longest IMDS session token and role name accepted. */
#define IMDS_TOKEN_MAX 4096
#define IMDS_ROLE_MAX  128
/* IMDS is link-local: a host that has none should not wait long to learn it. */
#define IMDS_CONNECT_TIMEOUT_MS 1000

/* ---- process-wide initialisation --------------------------------------------------------- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    xmlInitParser();
    /*
     * Debian's inih exposes its compile-time options as globals. Session tokens make lines far
     * longer than the default 200-byte stack buffer, and configparser (which the AWS CLI uses)
     * has no inline comments. No other part of the suite uses inih.
     */
    ini_use_stack = false;
    ini_allow_realloc = true;
    ini_initial_alloc = 1024;
    ini_max_line = ADI_KMS__FILE_MAX;
    ini_allow_inline_comments = false;
}

void adi_kms__global_init(void)
{
    pthread_once(&global_once, global_init_once);
}

/* ---- credential sets ---------------------------------------------------------------------- */

void adi_kms__creds_dispose(adi_kms__creds_t *c)
{
    adi_secret_dispose(&c->secret);
    adi_secret_dispose(&c->token);
    OPENSSL_cleanse(c, sizeof(*c));
    memset(c, 0, sizeof(*c));
}

void adi_kms__creds_copy(adi_kms__creds_t *dst, const adi_kms__creds_t *src)
{
    memcpy(dst->access_key_id, src->access_key_id, sizeof(dst->access_key_id));
    adi_secret_init(&dst->secret, src->secret.ptr, src->secret.len);
    adi_secret_init(&dst->token, src->token.ptr, src->token.len);
    dst->expires_ms = src->expires_ms;
}

/* True when every byte of `s` is visible ASCII (no space, no control character). */
static bool visible(adi_str_t s)
{
    for (size_t i = 0; i < s.len; i++)
        if ((unsigned char)s.ptr[i] <= 0x20 || (unsigned char)s.ptr[i] >= 0x7f)
            return false;
    return true;
}

adi_err adi_kms__creds_set(adi_kms__creds_t *c, adi_str_t akid, adi_str_t secret, adi_str_t token,
                           int64_t expires_ms, adi_error_t *err)
{
    if (akid.ptr == NULL || akid.len == 0 || akid.len > ADI_KMS__AKID_MAX)
        return adi_error_set(err, ADI_INVALID, "The access key id is malformed.");
    for (size_t i = 0; i < akid.len; i++)
        if (!isalnum((unsigned char)akid.ptr[i]))
            return adi_error_set(err, ADI_INVALID, "The access key id is malformed.");
    if (secret.ptr == NULL || secret.len == 0 || secret.len > ADI_KMS__SECRET_MAX ||
        !visible(secret))
        return adi_error_set(err, ADI_INVALID, "The secret access key is malformed.");
    if (token.len > ADI_KMS__TOKEN_MAX || (token.len > 0 && !visible(token)))
        return adi_error_set(err, ADI_INVALID, "The session token is malformed.");
    memset(c, 0, sizeof(*c));
    memcpy(c->access_key_id, akid.ptr, akid.len);
    adi_secret_init(&c->secret, secret.ptr, secret.len);
    adi_secret_init(&c->token, token.ptr, token.len);
    c->expires_ms = expires_ms;
    return ADI_OK;
}

/* Wipes the text of a jansson string in place (jansson frees without wiping). */
static void json_wipe(json_t *v)
{
    if (json_is_string(v)) {
        char *p = (char *)(uintptr_t)json_string_value(v);
        OPENSSL_cleanse(p, json_string_length(v));
    }
}

/* ---- ISO 8601 times ----------------------------------------------------------------------- */

static bool digits(const char *p, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

adi_err adi_kms__parse_time(adi_str_t iso, int64_t *out_ms, adi_error_t *err)
{
    *out_ms = 0;
    const char *s = iso.ptr;
    size_t n = iso.len;
    int y, mo, d, h, mi, sec;
    if (s == NULL || n < 20 || n > 40 || !digits(s, 4, &y) || s[4] != '-' ||
        !digits(s + 5, 2, &mo) || s[7] != '-' || !digits(s + 8, 2, &d) ||
        (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) || s[13] != ':' ||
        !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return adi_error_set(err, ADI_INVALID, "The expiration time is malformed.");
    size_t i = 19;
    int ms = 0;
    if (s[i] == '.') {
        size_t start = ++i;
        int scale = 100;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            ms += (s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == start)
            return adi_error_set(err, ADI_INVALID, "The expiration time is malformed.");
    }
    bool utc = (n - i == 1 && (s[i] == 'Z' || s[i] == 'z')) ||
               (n - i == 6 && memcmp(s + i, "+00:00", 6) == 0);
    if (!utc || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return adi_error_set(err, ADI_INVALID, "The expiration time is malformed.");
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return adi_error_set(err, ADI_INVALID, "The expiration time is malformed.");
    *out_ms = (int64_t)t * 1000 + ms;
    return ADI_OK;
}

/* ---- the shared credentials file (INI) ---------------------------------------------------- */

/* What the INI handler collects for the wanted profile. */
typedef struct ini_ctx {
    const char *profile;                  /* the section wanted */
    bool found;                           /* the section appeared */
    bool too_long;                        /* a value exceeded its buffer */
    char akid[ADI_KMS__AKID_MAX + 1];     /* aws_access_key_id */
    char secret[ADI_KMS__SECRET_MAX + 1]; /* aws_secret_access_key */
    char token[ADI_KMS__TOKEN_MAX + 1];   /* aws_session_token */
} ini_ctx;

static void ini_copy(ini_ctx *x, char *dst, size_t cap, const char *value)
{
    size_t n = strlen(value);
    if (n >= cap) {
        x->too_long = true;
        return;
    }
    memcpy(dst, value, n + 1);
}

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    ini_ctx *x = user;
    if (strcmp(section, x->profile) != 0)
        return 1;
    x->found = true;
    if (strcmp(name, "aws_access_key_id") == 0)
        ini_copy(x, x->akid, sizeof(x->akid), value);
    else if (strcmp(name, "aws_secret_access_key") == 0)
        ini_copy(x, x->secret, sizeof(x->secret), value);
    else if (strcmp(name, "aws_session_token") == 0 ||
             (strcmp(name, "aws_security_token") == 0 && x->token[0] == '\0'))
        ini_copy(x, x->token, sizeof(x->token), value);
    return 1;
}

adi_err adi_kms__parse_shared_credentials(const char *text, const char *profile,
                                          adi_kms__creds_t *out, adi_error_t *err)
{
    memset(out, 0, sizeof(*out));
    adi_kms__global_init();
    ini_ctx *x = adi_xcalloc(1, sizeof(*x));
    x->profile = profile;
    adi_err rc = ADI_OK;
    int line = ini_parse_string(text, on_ini, x);
    if (line != 0) {
        rc = line > 0
                 ? adi_error_set(err, ADI_INVALID,
                                 "The shared credentials file is malformed (line %d).", line)
                 : adi_error_set(err, ADI_INVALID, "The shared credentials file is malformed.");
        goto out;
    }
    if (x->too_long) {
        rc = adi_error_set(err, ADI_INVALID, "The shared credentials file has an over-long key.");
        goto out;
    }
    if (!x->found || (x->akid[0] == '\0' && x->secret[0] == '\0')) {
        rc = adi_error_set(err, ADI_NOT_FOUND, "The profile has no credentials.");
        goto out;
    }
    if (x->akid[0] == '\0' || x->secret[0] == '\0') {
        rc = adi_error_set(err, ADI_INVALID, "The profile holds half an access key pair.");
        goto out;
    }
    rc = adi_kms__creds_set(out, adi_str_c(x->akid), adi_str_c(x->secret), adi_str_c(x->token), 0,
                            err);
out:
    OPENSSL_cleanse(x, sizeof(*x));
    free(x);
    return rc;
}

/* ---- STS (XML) ---------------------------------------------------------------------------- */

/* The first element child of `n` with local name `name`, or NULL. */
static xmlNodePtr xml_child(xmlNodePtr n, const char *name)
{
    for (xmlNodePtr c = n != NULL ? n->children : NULL; c != NULL; c = c->next)
        if (c->type == XML_ELEMENT_NODE && xmlStrcmp(c->name, (const xmlChar *)name) == 0)
            return c;
    return NULL;
}

/* Wipes the text nodes under `n` (the parsed copy of a secret) before the document is freed. */
static void xml_wipe(xmlDocPtr doc, xmlNodePtr n)
{
    for (xmlNodePtr c = n != NULL ? n->children : NULL; c != NULL; c = c->next)
        if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content != NULL &&
            (doc->dict == NULL || !xmlDictOwns(doc->dict, c->content)))
            OPENSSL_cleanse(c->content, (size_t)xmlStrlen(c->content));
}

/* The trimmed text of `n` as a heap copy (xmlFree after wiping), or NULL. */
static char *xml_text(xmlNodePtr n, adi_str_t *s)
{
    *s = ADI_STR_NULL;
    if (n == NULL)
        return NULL;
    char *t = (char *)xmlNodeGetContent(n);
    if (t == NULL)
        return NULL;
    const char *p = t;
    size_t len = strlen(t);
    while (len > 0 && isspace((unsigned char)*p)) {
        p++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)p[len - 1]))
        len--;
    *s = (adi_str_t){p, len};
    return t;
}

static void xml_text_free(char *t)
{
    if (t != NULL) {
        OPENSSL_cleanse(t, strlen(t));
        xmlFree(t);
    }
}

adi_err adi_kms__parse_sts(const char *xml, size_t len, adi_kms__creds_t *out, char *code,
                           size_t code_cap, adi_error_t *err)
{
    memset(out, 0, sizeof(*out));
    if (code != NULL && code_cap > 0)
        code[0] = '\0';
    adi_kms__global_init();
    if (xml == NULL || len == 0 || len > ADI_KMS__BODY_MAX)
        return adi_error_set(err, ADI_INVALID, "The STS response is malformed.");
    /* No network, no entity expansion, no DTD loading, errors not printed. */
    xmlDocPtr doc = xmlReadMemory(xml, (int)len, "sts.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (doc == NULL)
        return adi_error_set(err, ADI_INVALID, "The STS response is malformed.");
    adi_err rc = ADI_OK;
    char *t_akid = NULL, *t_secret = NULL, *t_token = NULL, *t_exp = NULL;
    /* STS never sends a DTD; refusing one rules out entity tricks when reading text. */
    if (doc->intSubset != NULL || doc->extSubset != NULL) {
        rc = adi_error_set(err, ADI_INVALID, "The STS response is malformed.");
        goto out;
    }
    xmlNodePtr root = xmlDocGetRootElement(doc);
    if (root != NULL && xmlStrcmp(root->name, (const xmlChar *)"ErrorResponse") == 0) {
        adi_str_t c;
        char *t = xml_text(xml_child(xml_child(root, "Error"), "Code"), &c);
        if (code != NULL && code_cap > 0)
            snprintf(code, code_cap, "%.*s", c.ptr != NULL && visible(c) ? (int)c.len : 0,
                     c.ptr != NULL ? c.ptr : "");
        xml_text_free(t);
        rc = adi_error_set(err, ADI_UNAVAILABLE, "STS refused the request.");
        goto out;
    }
    if (root == NULL ||
        xmlStrcmp(root->name, (const xmlChar *)"AssumeRoleWithWebIdentityResponse") != 0) {
        rc = adi_error_set(err, ADI_INVALID, "The STS response is malformed.");
        goto out;
    }
    xmlNodePtr creds = xml_child(xml_child(root, "AssumeRoleWithWebIdentityResult"), "Credentials");
    xmlNodePtr n_secret = xml_child(creds, "SecretAccessKey");
    xmlNodePtr n_token = xml_child(creds, "SessionToken");
    adi_str_t akid, secret, token, exp;
    t_akid = xml_text(xml_child(creds, "AccessKeyId"), &akid);
    t_secret = xml_text(n_secret, &secret);
    t_token = xml_text(n_token, &token);
    t_exp = xml_text(xml_child(creds, "Expiration"), &exp);
    xml_wipe(doc, n_secret);
    xml_wipe(doc, n_token);
    int64_t exp_ms = 0;
    if (t_akid == NULL || t_secret == NULL || t_token == NULL || token.len == 0 || t_exp == NULL ||
        adi_kms__parse_time(exp, &exp_ms, NULL) != ADI_OK) {
        rc = adi_error_set(err, ADI_INVALID, "The STS response is malformed.");
        goto out;
    }
    rc = adi_kms__creds_set(out, akid, secret, token, exp_ms, err);
out:
    xml_text_free(t_akid);
    xml_text_free(t_secret);
    xml_text_free(t_token);
    xml_text_free(t_exp);
    xmlFreeDoc(doc);
    return rc;
}

/* ---- IMDS (JSON) -------------------------------------------------------------------------- */

static adi_str_t json_str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        return ADI_STR_NULL;
    return (adi_str_t){json_string_value(v), json_string_length(v)};
}

adi_err adi_kms__parse_imds(const char *json, size_t len, adi_kms__creds_t *out, adi_error_t *err)
{
    memset(out, 0, sizeof(*out));
    if (json == NULL || len > ADI_KMS__BODY_MAX)
        return adi_error_set(err, ADI_INVALID, "The metadata credentials are malformed.");
    json_error_t jerr;
    json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return adi_error_set(err, ADI_INVALID, "The metadata credentials are malformed.");
    }
    adi_err rc;
    int64_t exp_ms = 0;
    adi_str_t token = json_str(doc, "Token");
    if (!adi_str_eq_c(json_str(doc, "Code"), "Success") || token.len == 0 ||
        adi_kms__parse_time(json_str(doc, "Expiration"), &exp_ms, NULL) != ADI_OK)
        rc = adi_error_set(err, ADI_INVALID, "The metadata credentials are malformed.");
    else
        rc = adi_kms__creds_set(out, json_str(doc, "AccessKeyId"), json_str(doc, "SecretAccessKey"),
                                token, exp_ms, err);
    json_wipe(json_object_get(doc, "SecretAccessKey"));
    json_wipe(json_object_get(doc, "Token"));
    json_decref(doc);
    return rc;
}

/* ---- sources ------------------------------------------------------------------------------ */

/*
 * Reads a whole file (at most `cap` bytes) into a NUL-terminated heap buffer the caller wipes
 * and frees. ADI_NOT_FOUND when it does not exist, ADI_INVALID when unreadable or too large.
 */
static adi_err read_file(const char *path, size_t cap, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return errno == ENOENT || errno == ENOTDIR ? ADI_NOT_FOUND : ADI_INVALID;
    char *buf = adi_xmalloc(cap + 1);
    size_t n = fread(buf, 1, cap, f);
    bool bad = ferror(f) != 0 || fgetc(f) != EOF;
    fclose(f);
    if (bad) {
        OPENSSL_cleanse(buf, cap + 1);
        free(buf);
        return ADI_INVALID;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return ADI_OK;
}

static void wipe_free(char *p, size_t n)
{
    if (p != NULL) {
        OPENSSL_cleanse(p, n);
        free(p);
    }
}

static void curl_free_wiped(char *p)
{
    if (p != NULL) {
        OPENSSL_cleanse(p, strlen(p));
        curl_free(p);
    }
}

/* Web identity: the token file's token exchanged at STS for temporary credentials. */
static adi_err from_web_identity(adi_kms__aws_t *a, adi_kms__creds_t *out)
{
    char *tok = NULL;
    size_t tok_len = 0;
    adi_err rc = read_file(a->token_file, ADI_KMS__FILE_MAX, &tok, &tok_len);
    if (rc != ADI_OK) {
        ADI_LOG(NULL, ADI_LOG_ERROR, "kms.credentials",
                "web identity: the token file cannot be read (AWS_WEB_IDENTITY_TOKEN_FILE)");
        return ADI_UNAVAILABLE;
    }
    size_t n = tok_len;
    while (n > 0 && isspace((unsigned char)tok[n - 1]))
        n--;
    if (n == 0) {
        wipe_free(tok, tok_len + 1);
        ADI_LOG(NULL, ADI_LOG_ERROR, "kms.credentials", "web identity: the token file is empty");
        return ADI_UNAVAILABLE;
    }

    adi_kms__conn_t *c = adi_kms__http_take(&a->http);
    char *e_role = curl_easy_escape(c->curl, a->role_arn, 0);
    char *e_name = curl_easy_escape(c->curl, a->session_name, 0);
    char *e_tok = curl_easy_escape(c->curl, tok, (int)n);
    wipe_free(tok, tok_len + 1);
    if (e_role == NULL || e_name == NULL || e_tok == NULL)
        adi__oom(n, __FILE__, __LINE__);
    static const char fmt[] = "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=%s"
                              "&RoleSessionName=%s&WebIdentityToken=%s";
    size_t body_cap = sizeof(fmt) + strlen(e_role) + strlen(e_name) + strlen(e_tok);
    char *body = adi_xmalloc(body_cap);
    int body_len = snprintf(body, body_cap, fmt, e_role, e_name, e_tok);
    curl_free(e_role);
    curl_free(e_name);
    curl_free_wiped(e_tok);

    struct curl_slist *hdrs =
        curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
    hdrs = curl_slist_append(hdrs, "Accept: text/xml");
    hdrs = curl_slist_append(hdrs, "Expect:");
    adi_kms__request_t req = {.method = "POST",
                              .url = a->sts_url,
                              .headers = hdrs,
                              .body = body,
                              .body_len = (size_t)body_len,
                              .timeout_ms = a->timeout_ms};
    long status = 0;
    int cc = 0;
    rc = adi_kms__http_do(c, &req, &status, &cc);
    wipe_free(body, body_cap);
    curl_slist_free_all(hdrs);
    if (rc == ADI_OK) {
        char code[64];
        rc = adi_kms__parse_sts(c->body, c->len, out, code, sizeof(code), NULL);
        if (rc != ADI_OK)
            ADI_LOG(NULL, ADI_LOG_ERROR, "kms.credentials",
                    "web identity: STS AssumeRoleWithWebIdentity failed: HTTP %ld%s%s", status,
                    code[0] != '\0' ? ", " : "", code);
        else if (status != 200)
            rc = ADI_UNAVAILABLE;
    } else {
        ADI_LOG(NULL, ADI_LOG_ERROR, "kms.credentials", "web identity: STS cannot be reached: %s",
                rc == ADI_TOO_LARGE ? "response too large" : curl_easy_strerror((CURLcode)cc));
    }
    adi_kms__http_give(&a->http, c);
    if (rc != ADI_OK) {
        adi_kms__creds_dispose(out);
        return ADI_UNAVAILABLE;
    }
    return ADI_OK;
}

/* The shared credentials file: ADI_NOT_FOUND when there is no file or no such profile. */
static adi_err from_shared_file(adi_kms__aws_t *a, adi_kms__creds_t *out)
{
    if (a->shared_file == NULL)
        return ADI_NOT_FOUND;
    char *text = NULL;
    size_t len = 0;
    adi_err rc = read_file(a->shared_file, ADI_KMS__FILE_MAX, &text, &len);
    if (rc == ADI_NOT_FOUND)
        return ADI_NOT_FOUND;
    if (rc != ADI_OK) {
        ADI_LOG(NULL, ADI_LOG_ERROR, "kms.credentials",
                "the shared credentials file cannot be read or is over %d bytes",
                ADI_KMS__FILE_MAX);
        return ADI_UNAVAILABLE;
    }
    adi_error_t e;
    adi_error_clear(&e);
    rc = adi_kms__parse_shared_credentials(text, a->profile, out, &e);
    wipe_free(text, len + 1);
    if (rc == ADI_NOT_FOUND) {
        ADI_LOG(NULL, ADI_LOG_INFO, "kms.credentials",
                "the shared credentials file has no keys for profile %s", a->profile);
        return ADI_NOT_FOUND;
    }
    if (rc != ADI_OK) {
        ADI_LOG(NULL, ADI_LOG_ERROR, "kms.credentials", "profile %s: %s", a->profile, e.message);
        return ADI_UNAVAILABLE;
    }
    return ADI_OK;
}

/* One IMDS request with an optional token header; the body stays in `c`. */
static adi_err imds_get(adi_kms__aws_t *a, adi_kms__conn_t *c, const char *method, const char *path,
                        const char *header, const char *what)
{
    char url[1024];
    snprintf(url, sizeof(url), "%s%s", a->imds_url, path);
    struct curl_slist *hdrs = curl_slist_append(NULL, header);
    hdrs = curl_slist_append(hdrs, "Expect:");
    adi_kms__request_t req = {.method = method,
                              .url = url,
                              .headers = hdrs,
                              .timeout_ms = a->timeout_ms,
                              .connect_timeout_ms = a->timeout_ms < IMDS_CONNECT_TIMEOUT_MS
                                                        ? a->timeout_ms
                                                        : IMDS_CONNECT_TIMEOUT_MS,
                              .no_proxy = true};
    long status = 0;
    int cc = 0;
    adi_err rc = adi_kms__http_do(c, &req, &status, &cc);
    adi_kms__slist_free_wiped(hdrs);
    if (rc != ADI_OK) {
        ADI_LOG(NULL, ADI_LOG_ERROR, "kms.credentials", "IMDS %s: %s", what,
                rc == ADI_TOO_LARGE ? "response too large" : curl_easy_strerror((CURLcode)cc));
        return ADI_UNAVAILABLE;
    }
    if (status != 200) {
        ADI_LOG(NULL, ADI_LOG_ERROR, "kms.credentials", "IMDS %s: HTTP %ld", what, status);
        return ADI_UNAVAILABLE;
    }
    return ADI_OK;
}

/* Trims `c`'s body to its first line; false when that is empty or longer than `max`. */
static bool first_line(adi_kms__conn_t *c, size_t max)
{
    size_t n = strcspn(c->body, "\r\n");
    while (n > 0 && isspace((unsigned char)c->body[n - 1]))
        n--;
    if (n == 0 || n > max)
        return false;
    c->body[n] = '\0';
    return true;
}

/* IMDSv2: a session token (PUT), the role's name, then the role's credentials. */
static adi_err from_imds(adi_kms__aws_t *a, adi_kms__creds_t *out)
{
    adi_kms__conn_t *c = adi_kms__http_take(&a->http);
    char header[IMDS_TOKEN_MAX + 64];
    char path[256];
    adi_err rc = imds_get(a, c, "PUT", "/latest/api/token",
                          "X-aws-ec2-metadata-token-ttl-seconds: 21600", "token");
    if (rc != ADI_OK)
        goto out;
    if (!first_line(c, IMDS_TOKEN_MAX) || !visible(adi_str_c(c->body))) {
        ADI_LOG(NULL, ADI_LOG_ERROR, "kms.credentials", "IMDS token: malformed");
        rc = ADI_UNAVAILABLE;
        goto out;
    }
    snprintf(header, sizeof(header), "X-aws-ec2-metadata-token: %s", c->body);
    rc = imds_get(a, c, "GET", "/latest/meta-data/iam/security-credentials/", header, "role");
    if (rc != ADI_OK)
        goto out;
    bool role_ok = first_line(c, IMDS_ROLE_MAX);
    for (const char *p = c->body; role_ok && *p != '\0'; p++)
        role_ok = isalnum((unsigned char)*p) || strchr("+=,.@_-", *p) != NULL;
    if (!role_ok) {
        ADI_LOG(NULL, ADI_LOG_ERROR, "kms.credentials", "IMDS role: no valid role name");
        rc = ADI_UNAVAILABLE;
        goto out;
    }
    snprintf(path, sizeof(path), "/latest/meta-data/iam/security-credentials/%s", c->body);
    rc = imds_get(a, c, "GET", path, header, "credentials");
    if (rc != ADI_OK)
        goto out;
    if (adi_kms__parse_imds(c->body, c->len, out, NULL) != ADI_OK) {
        ADI_LOG(NULL, ADI_LOG_ERROR, "kms.credentials", "IMDS credentials: malformed document");
        rc = ADI_UNAVAILABLE;
    }
out:
    OPENSSL_cleanse(header, sizeof(header));
    adi_kms__http_give(&a->http, c);
    return rc;
}

/* Walks the chain after the explicit keys; `*source` names the source that answered. */
static adi_err fetch(adi_kms__aws_t *a, adi_kms__creds_t *out, const char **source)
{
    if (a->role_arn != NULL) {
        *source = "web identity";
        return from_web_identity(a, out);
    }
    *source = "shared credentials file";
    adi_err rc = from_shared_file(a, out);
    if (rc != ADI_NOT_FOUND)
        return rc;
    if (a->imds_disabled) {
        ADI_LOG(NULL, ADI_LOG_ERROR, "kms.credentials",
                "no AWS credentials: no keys, no web identity, no shared credentials for "
                "profile %s, and the metadata service is disabled",
                a->profile);
        return ADI_UNAVAILABLE;
    }
    *source = "instance metadata";
    return from_imds(a, out);
}

/* ---- the cache ---------------------------------------------------------------------------- */

/* Usable: filled, not past its expiry, not reported expired by KMS. */
static bool usable(const adi_kms__aws_t *a, int64_t now, uint64_t expired_gen)
{
    return a->have && (a->cur.expires_ms == 0 || now < a->cur.expires_ms) &&
           (expired_gen == 0 || expired_gen != a->gen);
}

/* Usable and not due for a refresh (or a failed refresh is too recent to try again). */
static bool fresh(const adi_kms__aws_t *a, int64_t now, uint64_t expired_gen)
{
    return usable(a, now, expired_gen) &&
           (a->cur.expires_ms == 0 || now < a->cur.expires_ms - ADI_KMS__REFRESH_AHEAD_MS ||
            now < a->retry_refresh_ms);
}

adi_err adi_kms__aws_creds(adi_kms__aws_t *a, uint64_t expired_gen, adi_kms__creds_t *out,
                           uint64_t *gen, adi_error_t *err)
{
    memset(out, 0, sizeof(*out));
    *gen = 0;
    if (a->have_static) {
        if (expired_gen != 0) {
            ADI_LOG(NULL, ADI_LOG_ERROR, "kms.credentials",
                    "the configured session token (AWS_SESSION_TOKEN) has expired");
            return adi_error_set(err, ADI_UNAVAILABLE, ADI_KMS__UNAVAILABLE_MSG);
        }
        adi_kms__creds_copy(out, &a->stat);
        *gen = 1;
        return ADI_OK;
    }

    int64_t now = adi_now_ms();
    pthread_mutex_lock(&a->mu);
    bool ok = usable(a, now, expired_gen);
    if (fresh(a, now, expired_gen)) {
        adi_kms__creds_copy(out, &a->cur);
        *gen = a->gen;
        pthread_mutex_unlock(&a->mu);
        return ADI_OK;
    }
    pthread_mutex_unlock(&a->mu);

    /* Due for a refresh. While another thread fetches, valid credentials keep serving. */
    if (ok) {
        if (pthread_mutex_trylock(&a->refresh_mu) != 0) {
            pthread_mutex_lock(&a->mu);
            ok = usable(a, now, expired_gen);
            if (ok) {
                adi_kms__creds_copy(out, &a->cur);
                *gen = a->gen;
            }
            pthread_mutex_unlock(&a->mu);
            if (ok)
                return ADI_OK;
            pthread_mutex_lock(&a->refresh_mu);
        }
    } else {
        pthread_mutex_lock(&a->refresh_mu);
    }

    /* Another thread may have refreshed while this one waited. */
    now = adi_now_ms();
    pthread_mutex_lock(&a->mu);
    if (fresh(a, now, expired_gen)) {
        adi_kms__creds_copy(out, &a->cur);
        *gen = a->gen;
        pthread_mutex_unlock(&a->mu);
        pthread_mutex_unlock(&a->refresh_mu);
        return ADI_OK;
    }
    pthread_mutex_unlock(&a->mu);

    adi_kms__creds_t got;
    memset(&got, 0, sizeof(got));
    const char *source = "";
    adi_err rc = fetch(a, &got, &source);
    pthread_mutex_lock(&a->mu);
    if (rc == ADI_OK) {
        adi_kms__creds_dispose(&a->cur);
        a->cur = got;
        a->have = true;
        a->gen++;
        a->retry_refresh_ms = 0;
        adi_kms__creds_copy(out, &a->cur);
        *gen = a->gen;
        int64_t expires = got.expires_ms;
        pthread_mutex_unlock(&a->mu);
        if (expires > 0)
            ADI_LOG(NULL, ADI_LOG_INFO, "kms.credentials",
                    "AWS credentials from the %s (access key id %.4s...), expiring in %lld s",
                    source, out->access_key_id, (long long)(expires - adi_now_ms()) / 1000);
        else
            ADI_LOG(NULL, ADI_LOG_INFO, "kms.credentials",
                    "AWS credentials from the %s (access key id %.4s...), no expiry", source,
                    out->access_key_id);
    } else {
        now = adi_now_ms();
        ok = usable(a, now, expired_gen);
        if (ok) {
            adi_kms__creds_copy(out, &a->cur);
            *gen = a->gen;
            a->retry_refresh_ms = now + ADI_KMS__REFRESH_RETRY_MS;
        }
        long long left_s = ok ? (long long)(a->cur.expires_ms - now) / 1000 : 0;
        pthread_mutex_unlock(&a->mu);
        if (ok) {
            ADI_LOG(NULL, ADI_LOG_WARN, "kms.credentials",
                    "refreshing AWS credentials from the %s failed; the current ones stay in "
                    "use (%lld s left), next try in %d s",
                    source, left_s, ADI_KMS__REFRESH_RETRY_MS / 1000);
            rc = ADI_OK;
        } else {
            rc = adi_error_set(err, ADI_UNAVAILABLE, ADI_KMS__UNAVAILABLE_MSG);
        }
        adi_kms__creds_dispose(&got);
    }
    pthread_mutex_unlock(&a->refresh_mu);
    return rc;
}
