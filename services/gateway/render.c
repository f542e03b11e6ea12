/* SPDX-License-Identifier: MIT */
/*
 * JSON bodies written by the gateway itself. Every text that came from outside (paths, methods,
 * messages of services) goes through adi_buf_append_json_escaped, so a body is always valid JSON.
 */
#include <string.h>

#include "gw_render.h"

/* Reason phrases (RFC 9110), sorted by status for a binary search. */
static const struct {
    int status;
    const char *reason;
} reasons[] = {
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {304, "Not Modified"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {415, "Unsupported Media Type"},
    {417, "Expectation Failed"},
    {422, "Unprocessable Content"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
};

const char *gw_reason(int status)
{
    size_t lo = 0;
    size_t hi = sizeof(reasons) / sizeof(reasons[0]);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (reasons[mid].status == status)
            return reasons[mid].reason;
        if (reasons[mid].status < status)
            lo = mid + 1;
        else
            hi = mid;
    }
    return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
}

static void str(adi_buf_t *out, const char *s, size_t n)
{
    adi_buf_append(out, "\"", 1);
    adi_buf_append_json_escaped(out, s, n);
    adi_buf_append(out, "\"", 1);
}

void gw_render_detail(adi_buf_t *out, const char *msg, size_t len)
{
    adi_buf_append_str(out, "{\"detail\": ");
    str(out, msg, len);
    adi_buf_append_str(out, "}");
}

void gw_render_error_obj(adi_buf_t *out, const char *code, const char *msg)
{
    adi_buf_append_str(out, "{\"error\": {\"code\": ");
    str(out, code, strlen(code));
    adi_buf_append_str(out, ", \"message\": ");
    str(out, msg, strlen(msg));
    adi_buf_append_str(out, "}}");
}

void gw_render_not_found(adi_buf_t *out, adi_str_t path)
{
    adi_buf_append_str(out, "{\"error\": {\"code\": \"not_found\", \"message\": ");
    str(out, GW_MSG_NOT_FOUND, sizeof(GW_MSG_NOT_FOUND) - 1);
    adi_buf_append_str(out, ", \"path\": ");
    str(out, path.ptr ? path.ptr : "", path.len);
    adi_buf_append_str(out, "}}");
}

void gw_render_method_not_allowed(adi_buf_t *out, adi_str_t method)
{
    adi_buf_append_str(out, "{\"detail\": \"Method \\\"");
    adi_buf_append_json_escaped(out, method.ptr ? method.ptr : "", method.len);
    adi_buf_append_str(out, "\\\" not allowed.\"}");
}

void gw_render_non_field(adi_buf_t *out, const char *msg, size_t len)
{
    adi_buf_append_str(out, "{\"non_field_errors\": [");
    str(out, msg, len);
    adi_buf_append_str(out, "]}");
}

/* 400: {"field": ["m1", "m2"], ...} in order of each field's first message. */
static void render_validation(const adi_reply_error *e, adi_buf_t *out)
{
    size_t n = e ? e->fields.n : 0;
    if (n == 0) {
        const char *m = "Invalid input.";
        size_t ml = strlen(m);
        if (e != NULL && e->message.ptr != NULL && e->message.len > 0) {
            m = e->message.ptr;
            ml = e->message.len;
        }
        gw_render_non_field(out, m, ml);
        return;
    }
    adi_buf_append_str(out, "{");
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        adi_str_t f = e->fields.items[i].field;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = adi_str_eq(e->fields.items[j].field, f);
        if (seen)
            continue;
        if (!first)
            adi_buf_append_str(out, ", ");
        first = false;
        str(out, f.ptr ? f.ptr : "", f.len);
        adi_buf_append_str(out, ": [");
        bool firstm = true;
        for (size_t j = i; j < n; j++) {
            if (!adi_str_eq(e->fields.items[j].field, f))
                continue;
            if (!firstm)
                adi_buf_append_str(out, ", ");
            firstm = false;
            adi_str_t m = e->fields.items[j].message;
            str(out, m.ptr ? m.ptr : "", m.len);
        }
        adi_buf_append_str(out, "]");
    }
    adi_buf_append_str(out, "}");
}

/* True when `code` is one of the project's generic error names (adi_err_name). */
static bool generic_code(adi_str_t code)
{
    for (int i = 1; i < (int)ADI_ERR__COUNT; i++)
        if (adi_str_eq_c(code, adi_err_name((adi_err)i)))
            return true;
    return false;
}

/* True when the service gave its 401/403 a specific code ([a-z0-9_], 1..32 bytes, not generic). */
static bool specific_code(const adi_reply_error *e)
{
    if (e == NULL || e->code.ptr == NULL || e->code.len == 0 || e->code.len > 32 ||
        generic_code(e->code))
        return false;
    for (size_t i = 0; i < e->code.len; i++) {
        char c = e->code.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

int gw_render_reply_error(int status, const adi_reply_error *e, adi_buf_t *out)
{
    return gw_render_reply_error_code(status, e, NULL, out);
}

int gw_render_reply_error_code(int status, const adi_reply_error *e, const char *code_401,
                               adi_buf_t *out)
{
    if (status < 400 || status > 599)
        status = 500;
    bool has_msg = e != NULL && e->message.ptr != NULL && e->message.len > 0;
    if (status == 400) {
        render_validation(e, out);
    } else if (status == 503 || status == 504) {
        const char *def = status == 503 ? GW_MSG_UNAVAILABLE : GW_MSG_TIMEOUT;
        adi_buf_append_str(out, "{\"error\": {\"code\": ");
        adi_buf_append_str(out, status == 503 ? "\"unavailable\"" : "\"timeout\"");
        adi_buf_append_str(out, ", \"message\": ");
        if (has_msg)
            str(out, e->message.ptr, e->message.len);
        else
            str(out, def, strlen(def));
        adi_buf_append_str(out, "}}");
    } else if (status >= 500) {
        gw_render_error_obj(out, "server_error", GW_MSG_SERVER_ERROR);
    } else {
        const char *m = gw_reason(status);
        size_t ml = strlen(m);
        if (has_msg) {
            m = e->message.ptr;
            ml = e->message.len;
        }
        bool own = (status == 401 || status == 403) && specific_code(e);
        if (own || (status == 401 && code_401 != NULL)) {
            /* simplejwt's shape: {"detail": ..., "code": ...} */
            adi_buf_append_str(out, "{\"detail\": ");
            str(out, m, ml);
            adi_buf_append_str(out, ", \"code\": ");
            if (own)
                str(out, e->code.ptr, e->code.len);
            else
                str(out, code_401, strlen(code_401));
            adi_buf_append_str(out, "}");
        } else {
            gw_render_detail(out, m, ml);
        }
    }
    return status;
}

bool gw_render_health(const gw_health_entry_t *e, size_t n, adi_buf_t *out)
{
    bool all = true;
    for (size_t i = 0; i < n; i++)
        all = all && e[i].answered && e[i].ok;
    adi_buf_append_str(out, all ? "{\"status\": \"ok\", \"services\": {"
                                : "{\"status\": \"degraded\", \"services\": {");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            adi_buf_append_str(out, ", ");
        str(out, e[i].service, strlen(e[i].service));
        if (!e[i].answered) {
            adi_buf_append_str(out, ": {\"status\": \"unavailable\"}");
            continue;
        }
        adi_buf_append_str(out, e[i].ok ? ": {\"status\": \"ok\", \"version\": "
                                        : ": {\"status\": \"degraded\", \"version\": ");
        str(out, e[i].version, strlen(e[i].version));
        adi_buf_append_str(out, e[i].database ? ", \"database\": true}" : ", \"database\": false}");
    }
    adi_buf_append_str(out, "}}");
    return all;
}
