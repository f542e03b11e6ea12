/* SPDX-License-Identifier: MIT */
/*
 * A small, bounded parser for one raw HTTP/1.1 request: the request.txt files of the SigV4 test
 * suite, and later the requests a KMS-compatible test server receives. It copies nothing: every
 * slice of the result points into the input. It never reads past `len`, never scans more than
 * ADI_SIGV4_MAX_HEAD bytes of head, keeps at most ADI_SIGV4_MAX_HEADERS headers, and refuses NUL
 * and control bytes, so binary or hostile input ends in a clear error rather than a crash.
 */
#include <string.h>

#include "adi/sigv4.h"

static bool is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool ieq(adi_str_t s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char a = (unsigned char)s.ptr[i];
        unsigned char b = (unsigned char)lit[i];
        if (a >= 'A' && a <= 'Z')
            a = (unsigned char)(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z')
            b = (unsigned char)(b - 'A' + 'a');
        if (a != b)
            return false;
    }
    return true;
}

static adi_str_t trim_ows(adi_str_t s)
{
    while (s.len > 0 && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t'))
        s.len--;
    return s;
}

/* One line of the head: its content (without the line ending) and where the next one starts. */
typedef struct line {
    adi_str_t text; /* line content, no CR or LF */
    size_t next;    /* offset just past the line ending */
} line_t;

/*
 * Reads the line starting at `pos`. Returns ADI_OK with the line, or an error for a control byte,
 * a stray CR, a head over the limit, or an unterminated line (allowed at the very end with
 * ADI_SIGV4_PARSE_EOF_ENDS_HEAD).
 */
static adi_err read_line(const char *p, size_t len, size_t pos, unsigned flags, line_t *ln,
                         adi_error_t *err)
{
    size_t limit = len < ADI_SIGV4_MAX_HEAD ? len : ADI_SIGV4_MAX_HEAD;
    size_t i = pos;
    while (i < limit) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\n')
            break;
        if (c == '\r') {
            if (i + 1 < len && p[i + 1] == '\n')
                break;
            if (i + 1 >= len)
                return adi_error_set(err, ADI_INVALID,
                                     "Malformed request: incomplete request head (no blank line).");
            return adi_error_set(err, ADI_INVALID, "Malformed request: stray CR in the head.");
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return adi_error_set(err, ADI_INVALID,
                                 "Malformed request: control or NUL byte 0x%02x in the head.", c);
        i++;
    }
    if (i >= limit) {
        if (len > ADI_SIGV4_MAX_HEAD)
            return adi_error_set(err, ADI_TOO_LARGE, "Request head exceeds %d bytes.",
                                 ADI_SIGV4_MAX_HEAD);
        if (!(flags & ADI_SIGV4_PARSE_EOF_ENDS_HEAD))
            return adi_error_set(err, ADI_INVALID,
                                 "Malformed request: incomplete request head (no blank line).");
        ln->text = (adi_str_t){p + pos, i - pos};
        ln->next = len;
        return ADI_OK;
    }
    ln->text = (adi_str_t){p + pos, i - pos};
    ln->next = i + (p[i] == '\r' ? 2 : 1);
    if (ln->next > ADI_SIGV4_MAX_HEAD)
        return adi_error_set(err, ADI_TOO_LARGE, "Request head exceeds %d bytes.",
                             ADI_SIGV4_MAX_HEAD);
    return ADI_OK;
}

static adi_err parse_request_line(adi_str_t l, adi_sigv4_request_t *req, adi_error_t *err)
{
    const char *sp1 = memchr(l.ptr, ' ', l.len);
    const char *sp2 = NULL;
    for (size_t i = l.len; i > 0; i--) {
        if (l.ptr[i - 1] == ' ') {
            sp2 = l.ptr + i - 1;
            break;
        }
    }
    if (sp1 == NULL || sp2 == sp1)
        return adi_error_set(err, ADI_INVALID,
                             "Malformed request: the request line is not METHOD TARGET VERSION.");
    adi_str_t method = {l.ptr, (size_t)(sp1 - l.ptr)};
    adi_str_t target = {sp1 + 1, (size_t)(sp2 - sp1 - 1)};
    adi_str_t version = {sp2 + 1, l.len - (size_t)(sp2 + 1 - l.ptr)};
    if (method.len == 0 || method.len > 32)
        return adi_error_set(err, ADI_INVALID, "Malformed request: bad method.");
    for (size_t i = 0; i < method.len; i++) {
        if (!is_tchar((unsigned char)method.ptr[i]))
            return adi_error_set(err, ADI_INVALID, "Malformed request: bad method.");
    }
    if (!adi_str_eq_c(version, "HTTP/1.1") && !adi_str_eq_c(version, "HTTP/1.0"))
        return adi_error_set(err, ADI_INVALID,
                             "Malformed request: unsupported HTTP version (HTTP/1.x only).");
    if (target.len == 0 || target.ptr[0] != '/')
        return adi_error_set(err, ADI_INVALID,
                             "Malformed request: the target must be a path starting with '/'.");
    req->method = method;
    req->target = target;
    req->version = version;
    const char *q = memchr(target.ptr, '?', target.len);
    if (q != NULL) {
        req->path = (adi_str_t){target.ptr, (size_t)(q - target.ptr)};
        req->query = (adi_str_t){q + 1, target.len - req->path.len - 1};
    } else {
        req->path = target;
        req->query = ADI_STR_NULL;
    }
    return ADI_OK;
}

static adi_err parse_header_line(adi_str_t l, adi_sigv4_request_t *req, adi_error_t *err)
{
    const char *colon = memchr(l.ptr, ':', l.len);
    if (colon == NULL)
        return adi_error_set(err, ADI_INVALID, "Malformed request: header line %zu has no colon.",
                             req->nheaders + 1);
    adi_str_t name = {l.ptr, (size_t)(colon - l.ptr)};
    if (name.len == 0 || name.len > ADI_SIGV4_MAX_NAME)
        return adi_error_set(err, ADI_INVALID, "Malformed request: header %zu has a bad name.",
                             req->nheaders + 1);
    for (size_t i = 0; i < name.len; i++) {
        if (!is_tchar((unsigned char)name.ptr[i]))
            return adi_error_set(err, ADI_INVALID, "Malformed request: header %zu has a bad name.",
                                 req->nheaders + 1);
    }
    if (req->nheaders >= ADI_SIGV4_MAX_HEADERS)
        return adi_error_set(err, ADI_TOO_LARGE, "Request has more than %d headers.",
                             ADI_SIGV4_MAX_HEADERS);
    adi_str_t value = {colon + 1, l.len - name.len - 1};
    req->headers[req->nheaders].name = name;
    req->headers[req->nheaders].value = trim_ows(value);
    req->nheaders++;
    return ADI_OK;
}

/* Extends the last header's value over a continuation line (obs-fold), newline included. */
static adi_err fold_header_line(adi_str_t l, adi_sigv4_request_t *req, adi_error_t *err)
{
    if (req->nheaders == 0)
        return adi_error_set(err, ADI_INVALID,
                             "Malformed request: continuation line before any header.");
    adi_sigv4_header_t *h = &req->headers[req->nheaders - 1];
    adi_str_t rest = trim_ows(l);
    if (rest.len == 0)
        return ADI_OK;
    if (h->value.len == 0) {
        h->value = rest;
        return ADI_OK;
    }
    h->value.len = (size_t)(rest.ptr + rest.len - h->value.ptr);
    return ADI_OK;
}

/* Reads Content-Length: absent (false), or one decimal value all copies agree on. */
static adi_err content_length(const adi_sigv4_request_t *req, bool *present, uint64_t *value,
                              adi_error_t *err)
{
    *present = false;
    *value = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        const adi_sigv4_header_t *h = &req->headers[i];
        if (!ieq(h->name, "content-length"))
            continue;
        uint64_t v = 0;
        if (h->value.len == 0 || h->value.len > 19)
            return adi_error_set(err, ADI_INVALID, "Malformed request: bad Content-Length.");
        for (size_t k = 0; k < h->value.len; k++) {
            char c = h->value.ptr[k];
            if (c < '0' || c > '9')
                return adi_error_set(err, ADI_INVALID, "Malformed request: bad Content-Length.");
            v = v * 10 + (uint64_t)(c - '0');
        }
        if (*present && v != *value)
            return adi_error_set(err, ADI_INVALID,
                                 "Malformed request: conflicting Content-Length headers.");
        *present = true;
        *value = v;
    }
    return ADI_OK;
}

adi_err adi_sigv4_request_parse(const void *data, size_t len, unsigned flags, size_t max_body,
                                adi_sigv4_request_t *req, adi_error_t *err)
{
    const char *p = data;
    adi_sigv4_request_t r;
    line_t ln;
    adi_err rc;
    memset(&r, 0, sizeof(r));
    if (max_body == 0)
        max_body = ADI_SIGV4_DEFAULT_MAX_BODY;
    if (p == NULL || len == 0)
        return adi_error_set(err, ADI_INVALID, "Malformed request: empty input.");

    rc = read_line(p, len, 0, flags, &ln, err);
    if (rc != ADI_OK)
        return rc;
    rc = parse_request_line(ln.text, &r, err);
    if (rc != ADI_OK)
        return rc;
    size_t pos = ln.next;
    for (;;) {
        if (pos >= len) {
            /* The input stopped at a line boundary before any blank line. */
            if (!(flags & ADI_SIGV4_PARSE_EOF_ENDS_HEAD))
                return adi_error_set(err, ADI_INVALID,
                                     "Malformed request: incomplete request head (no blank line).");
            break;
        }
        rc = read_line(p, len, pos, flags, &ln, err);
        if (rc != ADI_OK)
            return rc;
        pos = ln.next;
        if (ln.text.len == 0)
            break;
        if (ln.text.ptr[0] == ' ' || ln.text.ptr[0] == '\t')
            rc = fold_header_line(ln.text, &r, err);
        else
            rc = parse_header_line(ln.text, &r, err);
        if (rc != ADI_OK)
            return rc;
    }
    r.head_len = pos;

    for (size_t i = 0; i < r.nheaders; i++) {
        if (ieq(r.headers[i].name, "transfer-encoding"))
            return adi_error_set(err, ADI_INVALID,
                                 "Malformed request: Transfer-Encoding is not supported.");
    }
    bool has_cl;
    uint64_t cl;
    rc = content_length(&r, &has_cl, &cl, err);
    if (rc != ADI_OK)
        return rc;
    size_t avail = len - r.head_len;
    if (has_cl) {
        if (cl > max_body)
            return adi_error_set(err, ADI_TOO_LARGE, "Request body exceeds %zu bytes.", max_body);
        if (cl > avail)
            return adi_error_set(err, ADI_INVALID,
                                 "Malformed request: the body is shorter than Content-Length.");
        r.body = (adi_str_t){p + r.head_len, (size_t)cl};
    } else if ((flags & ADI_SIGV4_PARSE_EOF_ENDS_HEAD) && avail > 0) {
        if (avail > max_body)
            return adi_error_set(err, ADI_TOO_LARGE, "Request body exceeds %zu bytes.", max_body);
        r.body = (adi_str_t){p + r.head_len, avail};
    } else {
        r.body = (adi_str_t){p + r.head_len, 0};
    }
    r.consumed = r.head_len + r.body.len;
    *req = r;
    return ADI_OK;
}

const adi_sigv4_header_t *adi_sigv4_request_header(const adi_sigv4_request_t *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        if (ieq(req->headers[i].name, name))
            return &req->headers[i];
    }
    return NULL;
}
