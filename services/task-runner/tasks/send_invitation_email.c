/* SPDX-License-Identifier: MIT */
/*
 * The task "send_invitation_email" (enqueued by the tenant service when an admin invites someone,
 * args {"invitation_id": ...}, tenant_id = the invitation's tenant): renders the invitation mail
 * and sends it over SMTP with curl.
 *
 *   tenant.invitation_mail {invitation_id} as the task runner acting for the task's tenant ->
 *   {email, token, tenant_name, role, expires_at, invited_by_email} -> a plain-text RFC 5322
 *   message (Date, From, To, Subject "You're invited to <tenant> on ADinsights", Message-ID,
 *   MIME headers; the body has the accept link <APP_BASE_URL>/accept-invite?token=<token>, the
 *   role and the expiry) -> MAIL FROM (SMTP_FROM's address), RCPT TO (the invitee), DATA to
 *   SMTP_URL (smtp:// with STARTTLS when offered, or smtps://; user:password in the URL are
 *   curl's to use and never logged), bounded by SMTP_TIMEOUT_MS and the task's deadline.
 * With SMTP_URL empty nothing is sent: the line "mail.skipped" names the invitation and the
 * recipient's domain only.
 *
 * Outcomes: an unknown, accepted or expired invitation is permanent (404/409 from the tenant
 * service), as are header values holding line breaks or control characters (no header injection
 * through a tenant name or an address), an unusable SMTP_URL / SMTP_FROM, and a 5xx refusal of
 * the mail server; a 4xx deferral, a connection failure or a timeout is retried. Message-ID
 * derives from the task id, so a mail sent again after a lost acknowledgement carries the same
 * id. The token exists only in the tenant's reply and the rendered message, both wiped before
 * the task returns; log lines carry the invitation id and the recipient's domain, never the
 * token, the address or the URL.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "tasks_int.h"

/* Longest body line (bytes, without CRLF) sent as 7bit; longer lines go quoted-printable. */
#define LINE_MAX_7BIT 998

/* The facts of one mail, all borrowed (the tenant's reply, the settings). */
typedef struct mail {
    adi_str_t from_name;   /* SMTP_FROM's display name, may be empty */
    adi_str_t from_addr;   /* SMTP_FROM's address */
    adi_str_t to;          /* the invitee's address */
    adi_str_t tenant_name; /* the tenant's name */
    adi_str_t role;        /* ADMIN / ANALYST / VIEWER, ptr NULL for none */
    adi_str_t expires_at;  /* ISO 8601 */
    adi_str_t inviter;     /* inviting user's e-mail, may be empty */
    adi_str_t token;       /* invitation token (secret) */
    const char *base_url;  /* APP_BASE_URL */
    char message_id[128];  /* "<task id@domain>" */
} mail_t;

/* ---- checks ----------------------------------------------------------------------------- */

/* True when `s` holds no control character (CR, LF, NUL, ... and DEL; TAB is allowed). */
static bool header_safe(adi_str_t s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

/* True for an envelope address: local@domain, no space, control, angle bracket or quote. */
static bool address_ok(adi_str_t a)
{
    if (a.len < 3 || a.len > 254 || !header_safe(a))
        return false;
    const char *at = memchr(a.ptr, '@', a.len);
    if (at == NULL || at == a.ptr || at == a.ptr + a.len - 1)
        return false;
    if (memchr(at + 1, '@', (size_t)(a.ptr + a.len - at - 1)) != NULL)
        return false;
    for (size_t i = 0; i < a.len; i++)
        if (strchr(" \t<>()[],;:\"\\", a.ptr[i]) != NULL)
            return false;
    return true;
}

static bool is_ascii(adi_str_t s)
{
    for (size_t i = 0; i < s.len; i++)
        if ((unsigned char)s.ptr[i] >= 0x80)
            return false;
    return true;
}

static adi_str_t trim(adi_str_t s)
{
    while (s.len > 0 && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t'))
        s.len--;
    return s;
}

/* Splits SMTP_FROM ("Name <addr>", "\"Name\" <addr>" or "addr"). Errors: ADI_INVALID. */
static adi_err parse_from(const char *from, mail_t *m, adi_error_t *err)
{
    adi_str_t s = trim(adi_str_c(from));
    const char *lt = s.len > 0 ? memchr(s.ptr, '<', s.len) : NULL;
    if (lt != NULL && s.ptr[s.len - 1] == '>') {
        m->from_addr = (adi_str_t){lt + 1, (size_t)(s.ptr + s.len - 1 - (lt + 1))};
        m->from_name = trim((adi_str_t){s.ptr, (size_t)(lt - s.ptr)});
        if (m->from_name.len >= 2 && m->from_name.ptr[0] == '"' &&
            m->from_name.ptr[m->from_name.len - 1] == '"')
            m->from_name = (adi_str_t){m->from_name.ptr + 1, m->from_name.len - 2};
    } else {
        m->from_addr = s;
        m->from_name = ADI_STR("");
    }
    if (!address_ok(m->from_addr) || !header_safe(m->from_name) ||
        memchr(m->from_name.ptr ? m->from_name.ptr : "", '"', m->from_name.len) != NULL)
        return adi_error_set(err, ADI_INVALID, "SMTP_FROM is not a valid sender address.");
    return ADI_OK;
}

/* The part after '@' when it is plain ASCII (for Message-ID), else a neutral domain. */
static adi_str_t domain_of(adi_str_t addr)
{
    const char *at = memchr(addr.ptr, '@', addr.len);
    adi_str_t d = at ? (adi_str_t){at + 1, (size_t)(addr.ptr + addr.len - at - 1)} : ADI_STR("");
    if (d.len == 0 || d.len > 100 || !is_ascii(d))
        return ADI_STR("adinsights.invalid");
    return d;
}

/* ---- rendering -------------------------------------------------------------------------- */

/* Appends `s` as RFC 2047 encoded-words (UTF-8, base64), folded between words. */
static void append_encoded_words(adi_buf_t *b, adi_str_t s)
{
    size_t i = 0;
    bool first = true;
    while (i < s.len) {
        size_t n = s.len - i < 45 ? s.len - i : 45; /* 45 bytes -> 60 base64 chars: word <= 75 */
        while (n > 0 && i + n < s.len && ((unsigned char)s.ptr[i + n] & 0xc0) == 0x80)
            n--; /* never split a UTF-8 sequence between two words */
        if (n == 0)
            n = s.len - i < 45 ? s.len - i : 45;
        unsigned char out[64];
        int len = EVP_EncodeBlock(out, (const unsigned char *)s.ptr + i, (int)n);
        adi_buf_append_str(b, first ? "=?UTF-8?B?" : "\r\n =?UTF-8?B?");
        adi_buf_append(b, out, (size_t)len);
        adi_buf_append_str(b, "?=");
        first = false;
        i += n;
    }
}

/* Appends a header whose value is free text: as is when ASCII, else encoded-words. */
static void append_text_header(adi_buf_t *b, const char *name, adi_str_t value)
{
    adi_buf_printf(b, "%s: ", name);
    if (is_ascii(value))
        adi_buf_append(b, value.ptr, value.len);
    else
        append_encoded_words(b, value);
    adi_buf_append_str(b, "\r\n");
}

/* Appends the From header: the display name as a quoted string or encoded-words. */
static void append_from(adi_buf_t *b, const mail_t *m)
{
    adi_buf_append_str(b, "From: ");
    if (m->from_name.len > 0) {
        if (is_ascii(m->from_name)) {
            adi_buf_append_str(b, "\"");
            for (size_t i = 0; i < m->from_name.len; i++) {
                if (m->from_name.ptr[i] == '\\')
                    adi_buf_append_str(b, "\\");
                adi_buf_append(b, &m->from_name.ptr[i], 1);
            }
            adi_buf_append_str(b, "\"");
        } else {
            append_encoded_words(b, m->from_name);
        }
        adi_buf_append_str(b, " ");
    }
    adi_buf_printf(b, "<%.*s>\r\n", (int)m->from_addr.len, m->from_addr.ptr);
}

/* RFC 5322 date of now in the process time zone (English names, whatever the locale). */
static void append_date(adi_buf_t *b)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    adi_buf_printf(b, "Date: %s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld\r\n",
                   days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900,
                   tm.tm_hour, tm.tm_min, tm.tm_sec, sign, off / 60, off % 60);
}

/* Appends `s` percent-encoded except for RFC 3986 unreserved characters. */
static void append_url_escaped(adi_buf_t *b, adi_str_t s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            adi_buf_append(b, &s.ptr[i], 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            adi_buf_append(b, e, 3);
        }
    }
}

/* "2026-11-30T19:51:09.354026-05:00" -> "2026-11-30 19:51 (UTC-05:00)"; else as given. */
static void append_expiry(adi_buf_t *b, adi_str_t iso)
{
    if (iso.len >= 22 && iso.ptr[10] == 'T' &&
        (iso.ptr[iso.len - 6] == '+' || iso.ptr[iso.len - 6] == '-')) {
        adi_buf_printf(b, "%.10s %.5s (UTC%.6s)", iso.ptr, iso.ptr + 11, iso.ptr + iso.len - 6);
        return;
    }
    adi_buf_append(b, iso.ptr, iso.len);
}

/* The plain-text body, lines ending in CRLF. */
static void render_body(adi_buf_t *b, const mail_t *m)
{
    adi_buf_append_str(b, "Hello,\r\n\r\n");
    if (m->inviter.len > 0 && header_safe(m->inviter))
        adi_buf_printf(b, "%.*s has invited you to join\r\n", (int)m->inviter.len, m->inviter.ptr);
    else
        adi_buf_append_str(b, "You have been invited to join\r\n");
    adi_buf_append(b, m->tenant_name.ptr, m->tenant_name.len);
    adi_buf_append_str(b, "\r\non ADinsights.\r\n\r\n");
    if (m->role.ptr != NULL && m->role.len > 0)
        adi_buf_printf(b, "Role: %.*s\r\n", (int)m->role.len, m->role.ptr);
    else
        adi_buf_append_str(b, "Role: none yet (an admin of the tenant may grant one)\r\n");
    adi_buf_append_str(b, "This invitation expires on ");
    append_expiry(b, m->expires_at);
    adi_buf_append_str(b,
                       ".\r\n\r\nTo accept it and choose your password, open this link:\r\n\r\n");
    adi_str_t base = adi_str_c(m->base_url);
    while (base.len > 0 && base.ptr[base.len - 1] == '/')
        base.len--;
    adi_buf_append(b, base.ptr, base.len);
    adi_buf_append_str(b, "/accept-invite?token=");
    append_url_escaped(b, m->token);
    adi_buf_append_str(b, "\r\n\r\nIf you did not expect this invitation, you can ignore this "
                          "mail.\r\n\r\n-- \r\nADinsights\r\n");
}

/* True when every line of `s` is at most LINE_MAX_7BIT bytes and every byte is ASCII. */
static bool fits_7bit(adi_str_t s)
{
    size_t line = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c >= 0x80)
            return false;
        line = c == '\n' ? 0 : line + 1;
        if (line > LINE_MAX_7BIT)
            return false;
    }
    return true;
}

/* Appends `s` (CRLF lines) quoted-printable (RFC 2045), soft line breaks at 76 characters. */
static void append_qp(adi_buf_t *b, adi_str_t s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '\r' && i + 1 < s.len && s.ptr[i + 1] == '\n') {
            adi_buf_append_str(b, "\r\n");
            i++;
            col = 0;
            continue;
        }
        bool at_eol = i + 1 >= s.len || s.ptr[i + 1] == '\r';
        bool plain = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_eol);
        size_t w = plain ? 1 : 3;
        if (col + w > 75) {
            adi_buf_append_str(b, "=\r\n");
            col = 0;
        }
        if (plain) {
            adi_buf_append(b, &s.ptr[i], 1);
        } else {
            char e[3] = {'=', hex[c >> 4], hex[c & 15]};
            adi_buf_append(b, e, 3);
        }
        col += w;
    }
}

/* The whole RFC 5322 message into `out`. */
static void render(adi_buf_t *out, const mail_t *m)
{
    adi_buf_t body;
    adi_buf_init(&body);
    render_body(&body, m);
    adi_str_t bs = {body.data, body.len};
    bool plain = fits_7bit(bs);

    append_date(out);
    append_from(out, m);
    adi_buf_printf(out, "To: <%.*s>\r\n", (int)m->to.len, m->to.ptr);
    adi_buf_t subject;
    adi_buf_init(&subject);
    adi_buf_append_str(&subject, "You're invited to ");
    adi_buf_append(&subject, m->tenant_name.ptr, m->tenant_name.len);
    adi_buf_append_str(&subject, " on ADinsights");
    append_text_header(out, "Subject", (adi_str_t){subject.data, subject.len});
    adi_buf_dispose(&subject);
    adi_buf_printf(out, "Message-ID: %s\r\n", m->message_id);
    adi_buf_append_str(out, "MIME-Version: 1.0\r\n"
                            "Content-Type: text/plain; charset=UTF-8\r\n");
    adi_buf_printf(out, "Content-Transfer-Encoding: %s\r\n", plain ? "7bit" : "quoted-printable");
    adi_buf_append_str(out, "Auto-Submitted: auto-generated\r\n\r\n");
    if (plain)
        adi_buf_append(out, body.data, body.len);
    else
        append_qp(out, bs);
    OPENSSL_cleanse(body.data, body.cap); /* it holds the token */
    adi_buf_dispose(&body);
}

/* ---- sending ---------------------------------------------------------------------------- */

/* Upload source for curl: the rendered message. */
typedef struct upload {
    const char *data; /* message bytes */
    size_t len;       /* message length */
    size_t off;       /* bytes handed to curl so far */
} upload_t;

static size_t read_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
    upload_t *u = userdata;
    size_t room = size * nitems, n = u->len - u->off;
    if (n > room)
        n = room;
    memcpy(buf, u->data + u->off, n);
    u->off += n;
    return n;
}

/* The task outcome of a failed delivery (messages name neither URL nor address). */
static adi_err delivery_error(CURLcode cc, long smtp_code, adi_error_t *err)
{
    switch (cc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return adi_error_set(err, ADI_INVALID, "SMTP_URL is not a usable smtp:// URL.");
    case CURLE_OPERATION_TIMEDOUT:
        return adi_error_set(err, ADI_TIMEOUT, "The mail server did not answer in time.");
    case CURLE_LOGIN_DENIED:
        return adi_error_set(err, ADI_UNAVAILABLE, "The mail server refused the login.");
    default:
        break;
    }
    if (smtp_code >= 500 && smtp_code < 600)
        return adi_error_set(err, ADI_INVALID, "The mail server refused the mail (%ld).",
                             smtp_code);
    if (smtp_code >= 400 && smtp_code < 500)
        return adi_error_set(err, ADI_UNAVAILABLE, "The mail server deferred the mail (%ld).",
                             smtp_code);
    return adi_error_set(err, ADI_UNAVAILABLE, "Sending the mail failed: %s.",
                         curl_easy_strerror(cc));
}

/* Delivers `msg` from m->from_addr to m->to through `url` within `timeout_ms`. */
static adi_err deliver(const char *url, const mail_t *m, adi_str_t msg, int64_t timeout_ms,
                       adi_error_t *err)
{
    CURL *h = curl_easy_init();
    if (h == NULL)
        return adi_error_set(err, ADI_INTERNAL, "curl could not start.");
    char from[300], rcpt[300];
    snprintf(from, sizeof(from), "<%.*s>", (int)m->from_addr.len, m->from_addr.ptr);
    snprintf(rcpt, sizeof(rcpt), "<%.*s>", (int)m->to.len, m->to.ptr);
    struct curl_slist *rcpts = curl_slist_append(NULL, rcpt);
    if (rcpts == NULL) {
        curl_easy_cleanup(h);
        return adi_error_set(err, ADI_INTERNAL, "curl could not start.");
    }
    upload_t up = {msg.ptr, msg.len, 0};
    bool smtps = strncasecmp(url, "smtps://", 8) == 0;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpts);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(h, CURLOPT_READDATA, &up);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)msg.len);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    if (!smtps)
        curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY); /* STARTTLS when offered */
    CURLcode cc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(rcpts);
    curl_easy_cleanup(h);
    if (cc != CURLE_OK)
        return delivery_error(cc, code, err);
    return ADI_OK;
}

/* The recipient's domain for log lines (never the whole address). */
static adi_str_t log_domain(adi_str_t addr)
{
    const char *at = addr.ptr ? memchr(addr.ptr, '@', addr.len) : NULL;
    if (at == NULL)
        return ADI_STR("?");
    return (adi_str_t){at + 1, (size_t)(addr.ptr + addr.len - at - 1)};
}

static adi_err send_invitation_email(tr_task_ctx_t *ctx, const task_send_invitation_args *args,
                                     adi_error_t *err)
{
    adi_str_t tenant = ctx->task->tenant_id;
    if (tenant.len == 0 || !adi_uuid_valid(tenant))
        return adi_error_set(err, ADI_INVALID, "The task names no valid tenant.");
    tr_mail_settings_t cfg;
    tr_mail_settings(ctx->app, &cfg);
    const char *inv = tr_cstr(ctx->pool, args->invitation_id);

    tenant_invitation_mail_req req = {.invitation_id = args->invitation_id};
    tenant_invitation_mail_rep rep;
    adi_str_t raw = ADI_STR_NULL;
    adi_buf_t msg;
    adi_buf_init(&msg);
    adi_err rc = tr_call(ctx, &adi_op_tenant_invitation_mail, tenant, &req, &rep, &raw, err);
    if (rc != ADI_OK)
        goto out;
    adi_str_t dom = adi_pool_strdup(ctx->pool, log_domain(rep.email));

    mail_t m;
    memset(&m, 0, sizeof(m));
    m.to = rep.email;
    m.tenant_name = rep.tenant_name;
    m.role = rep.role;
    m.expires_at = rep.expires_at;
    m.inviter = rep.invited_by_email;
    m.token = rep.token;
    m.base_url = cfg.app_base_url;
    if (!address_ok(m.to)) {
        rc = adi_error_set(err, ADI_INVALID, "The invitee's address cannot be mailed.");
        goto out;
    }
    if (!header_safe(m.tenant_name)) {
        rc = adi_error_set(err, ADI_INVALID,
                           "The tenant's name holds a line break or control character.");
        goto out;
    }
    if (cfg.smtp_url[0] == '\0') {
        ADI_LOG(ctx->log, ADI_LOG_INFO, "mail.skipped",
                "SMTP_URL is not set: the mail of invitation %s to a recipient at %s is not sent",
                inv, dom.ptr);
        adi_buf_printf(ctx->result, "{\"sent\":false,\"invitation_id\":\"%s\"}", inv);
        rc = ADI_OK;
        goto out;
    }
    if (strncasecmp(cfg.smtp_url, "smtp://", 7) != 0 &&
        strncasecmp(cfg.smtp_url, "smtps://", 8) != 0) {
        rc = adi_error_set(err, ADI_INVALID, "SMTP_URL is not a usable smtp:// URL.");
        goto out;
    }
    rc = parse_from(cfg.smtp_from, &m, err);
    if (rc != ADI_OK)
        goto out;
    adi_str_t md = domain_of(m.from_addr);
    snprintf(m.message_id, sizeof(m.message_id), "<%.*s@%.*s>", (int)ctx->task->id.len,
             ctx->task->id.ptr, (int)md.len, md.ptr);

    int64_t left = ctx->deadline_ms - adi_now_ms();
    int64_t timeout = cfg.smtp_timeout_ms < left ? cfg.smtp_timeout_ms : left;
    if (timeout <= 0) {
        rc = adi_error_set(err, ADI_TIMEOUT, "Time limit exceeded.");
        goto out;
    }
    render(&msg, &m);
    rc = deliver(cfg.smtp_url, &m, (adi_str_t){msg.data, msg.len}, timeout, err);
    if (rc != ADI_OK) {
        ADI_LOG(ctx->log, ADI_LOG_WARN, "mail.failed", "invitation %s to a recipient at %s: %s",
                inv, dom.ptr, err->message);
        goto out;
    }
    ADI_LOG(ctx->log, ADI_LOG_INFO, "mail.sent", "invitation %s to a recipient at %s, %s", inv,
            dom.ptr, m.message_id);
    adi_buf_printf(ctx->result, "{\"sent\":true,\"invitation_id\":\"%s\",\"message_id\":", inv);
    tr_json_str(ctx->result, adi_str_c(m.message_id));
    adi_buf_append_str(ctx->result, "}");
out:
    if (msg.data != NULL)
        OPENSSL_cleanse(msg.data, msg.cap);
    adi_buf_dispose(&msg);
    tr_wipe(raw); /* the token */
    return rc;
}

/* Five attempts of two minutes each; a mail server that defers is tried again with backoff. */
TR_TASK(tr_task_send_invitation_email, "send_invitation_email", task_send_invitation_args,
        send_invitation_email, 5, 120000);
