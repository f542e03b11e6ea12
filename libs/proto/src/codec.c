/* SPDX-License-Identifier: MIT */
/*
 * The generic message codec: one decoder, one required-field check and one encoder, all driven by
 * the descriptor tables that adi/messages.h expands from proto/<x>.def.
 *
 * Decoding validates the whole input first (structure, lengths, trailing bytes) with the reader
 * of proto_int.h, then walks it once, filling the struct: strings and RAW values are slices of the
 * input (zero-copy), nested messages and lists come from the caller's pool. Validation follows
 * Django REST framework field by field (CharField, EmailField, UUIDField, ChoiceField,
 * DateTimeField, IntegerField, BooleanField, ListField and nested serializers), with its exact
 * messages, so the gateway can render them as the Django version did. Every field error is
 * collected, not just the first; nested fields are named by their dotted path ("principal.
 * user_id", "fields.1.field", and "<path>.non_field_errors" for an object-level error), which
 * re-nests at the dots into DRF's own shape.
 *
 * Encoding writes a map keyed by field names with msgpack-c's packer appending to an adi_buf_t.
 */
#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "adi/proto.h"
#include "proto_int.h"

/* The common head of every generated struct. */
typedef struct msg_head {
    ADI_MSG_HEADER_
} msg_head_t;

/* A dotted field path, built while descending. */
typedef struct path {
    char s[2 * ADI_ERROR_FIELD_LEN]; /* NUL-terminated path, "" at the top */
    size_t len;                      /* strlen(s) */
} path_t;

/* State of one decode call. */
typedef struct dec {
    adi_pool_t *pool; /* where nested structs, lists and converted strings go */
    adi_error_t *err; /* collects the field errors */
    bool failed;      /* at least one error was recorded */
    bool trim;        /* client input: strip plain and e-mail strings (adi_proto_decode_input) */
} dec_t;

#define MSG_TOO_DEEP "Nesting too deep."
#define MSG_NOT_LIST "Expected a list of items but got type \"%s\"."
#define MSG_NOT_DICT "Invalid data. Expected a dictionary, but got %s."
#define MSG_TIME                                                                                   \
    "Datetime has wrong format. Use one of these formats instead: "                                \
    "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."

/* ---- paths and errors ------------------------------------------------------------------- */

/* Appends ".name" (or "name" at the top) and returns the previous length for path_pop. */
static size_t path_push(path_t *p, const char *name)
{
    size_t old = p->len;
    int n = snprintf(p->s + p->len, sizeof(p->s) - p->len, "%s%s", p->len > 0 ? "." : "", name);
    if (n > 0)
        p->len += (size_t)n < sizeof(p->s) - p->len ? (size_t)n : sizeof(p->s) - 1 - p->len;
    return old;
}

static size_t path_push_index(path_t *p, size_t i)
{
    char idx[24];
    snprintf(idx, sizeof(idx), "%zu", i);
    return path_push(p, idx);
}

static void path_pop(path_t *p, size_t old)
{
    p->len = old;
    p->s[old] = '\0';
}

static void fail(dec_t *c, const path_t *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records a message for the field at `p` ("non_field_errors" for the top-level value). */
static void fail(dec_t *c, const path_t *p, const char *fmt, ...)
{
    char msg[ADI_ERROR_MSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    adi_error_field(c->err, p->len > 0 ? p->s : "non_field_errors", "%s", msg);
    c->failed = true;
}

static void fail_obj(dec_t *c, path_t *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records an object-level message for the message at `p` ("<p>.non_field_errors"). */
static void fail_obj(dec_t *c, path_t *p, const char *fmt, ...)
{
    char msg[ADI_ERROR_MSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t old = p->len > 0 ? path_push(p, "non_field_errors") : p->len;
    fail(c, p, "%s", msg);
    path_pop(p, old);
}

/* ---- text checks ------------------------------------------------------------------------ */

/* Counts the code points of `s`; false when it is not valid UTF-8 (overlongs, surrogates...). */
static bool utf8_count(const char *s, size_t n, size_t *chars)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t count = 0;
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            count++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len > n - i)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            return false;
        i += len;
        count++;
    }
    *chars = count;
    return true;
}

/* The length of the longest prefix of `s` (at most `max` bytes) made of whole, valid UTF-8
 * characters: what an error message may echo of text that was not validated. */
static size_t utf8_prefix(const char *s, size_t n, size_t max)
{
    size_t end = 0;
    size_t chars;
    while (end < n && end < max) {
        unsigned char c = (unsigned char)s[end];
        size_t len = c < 0xc0 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        if (len > n - end || len > max - end || !utf8_count(s + end, len, &chars))
            break;
        end += len;
    }
    return end;
}

static bool is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 5322 atext, as in Django's dot-atom user_regex. */
static bool is_atext(unsigned char c)
{
    return is_alnum(c) || (c != 0 && strchr("!#$%&'*+/=?^_`{|}~-", c) != NULL);
}

/* Django's user_regex: a dot-atom or a quoted string. */
static bool email_local_ok(const unsigned char *s, size_t n)
{
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        for (size_t i = 1; i < n - 1; i++) {
            unsigned char c = s[i];
            if (c == '\\') {
                if (++i >= n - 1)
                    return false;
                c = s[i];
                if (c == 0 || c == '\n' || c == '\r' || c > 0x7f)
                    return false;
            } else if (c == 0 || c == '\t' || c == '\n' || c == '\r' || c == ' ' || c == '"' ||
                       c > 0x7f) {
                return false;
            }
        }
        return true;
    }
    bool prev_dot = true; /* no leading dot */
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (prev_dot)
                return false;
            prev_dot = true;
        } else if (is_atext(s[i])) {
            prev_dot = false;
        } else {
            return false;
        }
    }
    return !prev_dot && n > 0;
}

/*
 * Django's domain_regex: labels of 1..63 letters, digits and inner hyphens, then a top-level
 * label of 2..63 that does not end with a hyphen. Non-ASCII bytes count as letters, standing in
 * for Django's retry of the IDNA (punycode) form of an internationalised domain.
 */
static bool email_domain_ok(const unsigned char *s, size_t n)
{
    if (n == 9 && memcmp(s, "localhost", 9) == 0)
        return true;
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        char ip[64];
        unsigned char buf[16];
        if (n - 2 >= sizeof(ip))
            return false;
        memcpy(ip, s + 1, n - 2);
        ip[n - 2] = '\0';
        return inet_pton(AF_INET, ip, buf) == 1 || inet_pton(AF_INET6, ip, buf) == 1;
    }
    size_t labels = 0;
    size_t i = 0;
    for (;;) {
        size_t start = i;
        while (i < n && s[i] != '.') {
            if (!is_alnum(s[i]) && s[i] != '-' && s[i] < 0x80)
                return false;
            i++;
        }
        size_t len = i - start;
        bool last = i >= n;
        if (len == 0 || len > 63 || s[i - 1] == '-')
            return false;
        if (!last && s[start] == '-')
            return false;
        labels++;
        if (last)
            return labels >= 2 && len >= 2;
        i++; /* the dot */
    }
}

/* Django's EmailValidator, with the 254-character limit of RFC 5321 paths. */
static bool email_ok(adi_str_t s)
{
    if (s.len == 0 || s.len > 254)
        return false;
    const unsigned char *p = (const unsigned char *)s.ptr;
    const unsigned char *at = NULL;
    for (size_t i = s.len; i > 0; i--) {
        if (p[i - 1] == '@') {
            at = p + i - 1;
            break;
        }
    }
    if (at == NULL)
        return false;
    size_t ln = (size_t)(at - p);
    return email_local_ok(p, ln) && email_domain_ok(at + 1, s.len - ln - 1);
}

/* Reads between `mind` and `maxd` ASCII digits at s[*i]. */
static bool num(const char *s, size_t n, size_t *i, size_t mind, size_t maxd, int *v)
{
    size_t k = 0;
    int acc = 0;
    while (*i < n && k < maxd && s[*i] >= '0' && s[*i] <= '9') {
        acc = acc * 10 + (s[*i] - '0');
        (*i)++;
        k++;
    }
    *v = acc;
    return k >= mind;
}

static bool lit(const char *s, size_t n, size_t *i, char c)
{
    if (*i < n && s[*i] == c) {
        (*i)++;
        return true;
    }
    return false;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/*
 * Django's parse_datetime (datetime_re), which DRF's DateTimeField applies to ISO 8601 input:
 * YYYY-MM-DD[T ]hh:mm[:ss[.ffffff]][Z|+hh[[:]mm]|-hh[[:]mm]], with real calendar ranges.
 */
static bool time_ok(adi_str_t str)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *s = str.ptr;
    size_t n = str.len;
    size_t i = 0;
    int y, mo, d, h, mi, sec = 0, frac, th, tm = 0;
    if (!num(s, n, &i, 4, 4, &y) || !lit(s, n, &i, '-') || !num(s, n, &i, 1, 2, &mo) ||
        !lit(s, n, &i, '-') || !num(s, n, &i, 1, 2, &d))
        return false;
    if (!lit(s, n, &i, 'T') && !lit(s, n, &i, ' '))
        return false;
    if (!num(s, n, &i, 1, 2, &h) || !lit(s, n, &i, ':') || !num(s, n, &i, 1, 2, &mi))
        return false;
    if (lit(s, n, &i, ':')) {
        if (!num(s, n, &i, 1, 2, &sec))
            return false;
        if (lit(s, n, &i, '.') || lit(s, n, &i, ',')) {
            if (!num(s, n, &i, 1, 6, &frac))
                return false;
            int extra;
            num(s, n, &i, 0, 6, &extra);
        }
    }
    while (i < n && is_space(s[i]))
        i++;
    if (lit(s, n, &i, 'Z')) {
        /* UTC */
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        i++;
        if (!num(s, n, &i, 2, 2, &th))
            return false;
        size_t save = i;
        lit(s, n, &i, ':');
        if (!num(s, n, &i, 2, 2, &tm))
            i = save;
        if (th * 60 + tm >= 24 * 60)
            return false;
    }
    if (i != n)
        return false;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59)
        return false;
    int dim = mdays[mo - 1];
    if (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        dim = 29;
    return d <= dim;
}

/* ---- field decoders --------------------------------------------------------------------- */

/* Python's int() of a string as DRF's IntegerField applies it (after stripping "\.0*\s*$"). */
static bool py_int(const char *s, size_t n, int64_t *v, int *over)
{
    size_t j = n;
    while (j > 0 && is_space(s[j - 1]))
        j--;
    size_t k = j;
    while (k > 0 && s[k - 1] == '0')
        k--;
    if (k > 0 && s[k - 1] == '.')
        n = k - 1;
    size_t i = 0;
    while (i < n && is_space(s[i]))
        i++;
    while (n > i && is_space(s[n - 1]))
        n--;
    bool neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    uint64_t acc = 0;
    size_t digits = 0;
    bool big = false;
    for (; i < n; i++) {
        char c = s[i];
        if (c == '_' && digits > 0 && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9')
            continue;
        if (c < '0' || c > '9')
            return false;
        digits++;
        unsigned d = (unsigned)(c - '0');
        if (acc > (UINT64_MAX - d) / 10)
            big = true;
        else
            acc = acc * 10 + d;
    }
    if (digits == 0)
        return false;
    *over = 0;
    if (neg) {
        if (big || acc > (uint64_t)INT64_MAX + 1)
            *over = -1;
        else
            *v = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
    } else {
        if (big || acc > (uint64_t)INT64_MAX)
            *over = 1;
        else
            *v = (int64_t)acc;
    }
    return true;
}

static bool dec_int(dec_t *c, const adi_field_desc_t *f, const adi_mp_item_t *it, path_t *p,
                    int64_t *out)
{
    static const char invalid[] = "A valid integer is required.";
    int64_t v = 0;
    int over = 0;
    switch (it->type) {
    case ADI_MP_UINT:
        if (it->u > (uint64_t)INT64_MAX)
            over = 1;
        else
            v = (int64_t)it->u;
        break;
    case ADI_MP_INT:
        v = it->i;
        break;
    case ADI_MP_FLOAT:
        /* Python's str() of an integral float below 1e16 is "N.0", which DRF accepts. */
        if (!isfinite(it->f) || it->f != trunc(it->f) || fabs(it->f) >= 1e16) {
            fail(c, p, "%s", invalid);
            return false;
        }
        v = (int64_t)it->f;
        break;
    case ADI_MP_STR:
        if (it->n > 1000) {
            fail(c, p, "String value too large.");
            return false;
        }
        if (!py_int(it->ptr, it->n, &v, &over)) {
            fail(c, p, "%s", invalid);
            return false;
        }
        break;
    default:
        fail(c, p, "%s", invalid);
        return false;
    }
    if (over > 0 || v > f->max) {
        fail(c, p, "Ensure this value is less than or equal to %lld.", (long long)f->max);
        return false;
    }
    if (over < 0 || v < f->min) {
        fail(c, p, "Ensure this value is greater than or equal to %lld.", (long long)f->min);
        return false;
    }
    *out = v;
    return true;
}

static bool str_in(const adi_mp_item_t *it, const char *const *set)
{
    for (; *set != NULL; set++)
        if (strlen(*set) == it->n && memcmp(*set, it->ptr, it->n) == 0)
            return true;
    return false;
}

/* DRF BooleanField.NULL_VALUES minus None: strings a nullable boolean reads as null. */
static bool bool_null_str(const adi_mp_item_t *it)
{
    static const char *const nulls[] = {"null", "Null", "NULL", "", NULL};
    return it->type == ADI_MP_STR && str_in(it, nulls);
}

static bool dec_bool(dec_t *c, const adi_mp_item_t *it, path_t *p, bool *out)
{
    static const char *const yes[] = {"t",    "T",    "y",  "Y",  "yes", "Yes", "YES", "true",
                                      "True", "TRUE", "on", "On", "ON",  "1",   NULL};
    static const char *const no[] = {"f",     "F",     "n",   "N",   "no",  "No", "NO", "false",
                                     "False", "FALSE", "off", "Off", "OFF", "0",  NULL};
    switch (it->type) {
    case ADI_MP_BOOL:
        *out = it->b;
        return true;
    case ADI_MP_UINT:
        if (it->u <= 1) {
            *out = it->u == 1;
            return true;
        }
        break;
    case ADI_MP_FLOAT:
        if (it->f == 0 || it->f == 1) {
            *out = it->f == 1;
            return true;
        }
        break;
    case ADI_MP_STR:
        if (str_in(it, yes)) {
            *out = true;
            return true;
        }
        if (str_in(it, no)) {
            *out = false;
            return true;
        }
        break;
    default:
        break;
    }
    fail(c, p, "Must be a valid boolean.");
    return false;
}

/*
 * A string field. CharField and EmailField accept numbers as their text (DRF does str(data)) and
 * check blank, length, NUL characters and the e-mail format, reporting every failed check;
 * UUIDField, ChoiceField and DateTimeField report only their format message.
 */
static bool dec_str(dec_t *c, const adi_field_desc_t *f, const adi_mp_item_t *it, path_t *p,
                    adi_str_t *out)
{
    const char *bad_type = "Not a valid string.";
    if (f->fmt == ADI_FMT_UUID)
        bad_type = "Must be a valid UUID.";
    else if (f->fmt == ADI_FMT_TIME)
        bad_type = MSG_TIME;

    adi_str_t s;
    char num_text[32];
    switch (it->type) {
    case ADI_MP_STR:
        s = (adi_str_t){it->ptr, it->n};
        break;
    case ADI_MP_UINT:
    case ADI_MP_INT:
    case ADI_MP_FLOAT:
        if (f->fmt == ADI_FMT_UUID || f->fmt == ADI_FMT_TIME) {
            fail(c, p, "%s", bad_type);
            return false;
        }
        if (it->type == ADI_MP_UINT)
            snprintf(num_text, sizeof(num_text), "%llu", (unsigned long long)it->u);
        else if (it->type == ADI_MP_INT)
            snprintf(num_text, sizeof(num_text), "%lld", (long long)it->i);
        else
            adi_proto__fmt_double(it->f, num_text);
        s = adi_pool_strdup(c->pool, adi_str_c(num_text));
        break;
    case ADI_MP_BOOL:
        /* A choice compares str(True) == "True"; the other string fields reject booleans. */
        if (f->fmt == ADI_FMT_ENUM) {
            s = it->b ? ADI_STR("True") : ADI_STR("False");
            break;
        }
        fail(c, p, "%s", bad_type);
        return false;
    default:
        fail(c, p, "%s", bad_type);
        return false;
    }

    size_t chars = 0;
    if (s.len > ADI_PROTO__MAX_STR_BYTES) {
        if (f->fmt == ADI_FMT_NONE || f->fmt == ADI_FMT_EMAIL) {
            long long max = f->max > 0 ? (long long)f->max : ADI_PROTO__MAX_STR_BYTES;
            fail(c, p, "Ensure this field has no more than %lld characters.", max);
        } else if (f->fmt == ADI_FMT_ENUM) {
            /* Not yet checked as UTF-8: echo only whole, valid characters (the message travels
             * in a reply the gateway validates). */
            fail(c, p, "\"%.*s...\" is not a valid choice.", (int)utf8_prefix(s.ptr, s.len, 32),
                 s.ptr);
        } else {
            fail(c, p, "%s", bad_type);
        }
        return false;
    }
    if (c->trim && (f->fmt == ADI_FMT_NONE || f->fmt == ADI_FMT_EMAIL)) {
        while (s.len > 0 && is_space(s.ptr[0])) {
            s.ptr++;
            s.len--;
        }
        while (s.len > 0 && is_space(s.ptr[s.len - 1]))
            s.len--;
    }
    if (!utf8_count(s.ptr, s.len, &chars)) {
        fail(c, p, "Not a valid string.");
        return false;
    }
    if (s.len == 0 && (f->flags & ADI_BLANK)) {
        *out = s;
        return true;
    }

    bool ok = true;
    switch (f->fmt) {
    case ADI_FMT_NONE:
    case ADI_FMT_EMAIL:
        if (s.len == 0) {
            fail(c, p, "This field may not be blank.");
            return false;
        }
        if (f->max > 0 && chars > (uint64_t)f->max) {
            fail(c, p, "Ensure this field has no more than %lld characters.", (long long)f->max);
            ok = false;
        }
        if (f->min > 0 && chars < (uint64_t)f->min) {
            fail(c, p, "Ensure this field has at least %lld characters.", (long long)f->min);
            ok = false;
        }
        if (memchr(s.ptr, '\0', s.len) != NULL) {
            fail(c, p, "Null characters are not allowed.");
            ok = false;
        }
        if (f->fmt == ADI_FMT_EMAIL && !email_ok(s)) {
            fail(c, p, "Enter a valid email address.");
            ok = false;
        }
        break;
    case ADI_FMT_UUID:
        ok = adi_uuid_valid(s);
        if (!ok)
            fail(c, p, "Must be a valid UUID.");
        break;
    case ADI_FMT_ENUM:
        ok = false;
        for (const char *const *e = f->enums; e != NULL && *e != NULL; e++)
            if (adi_str_eq_c(s, *e))
                ok = true;
        if (!ok) {
            /* Echo the input as DRF does, cut on a character boundary so the message fits. */
            size_t cut = s.len;
            if (cut > 120) {
                cut = 120;
                while (cut > 0 && ((unsigned char)s.ptr[cut] & 0xc0) == 0x80)
                    cut--;
            }
            fail(c, p, "\"%.*s%s\" is not a valid choice.", (int)cut, s.ptr,
                 cut < s.len ? "..." : "");
        }
        break;
    case ADI_FMT_TIME:
        ok = time_ok(s);
        if (!ok)
            fail(c, p, "%s", MSG_TIME);
        break;
    }
    if (ok)
        *out = s;
    return ok;
}

/* ---- message walk ----------------------------------------------------------------------- */

static void dec_msg(dec_t *c, const adi_msg_desc_t *d, adi_mp_reader_t *r, void *out, path_t *p,
                    int depth);

static bool is_root(const adi_msg_desc_t *d)
{
    return d->nfields == 1 && (d->fields[0].flags & ADI_ROOT);
}

/* Resets a field to its zero value (for nil). */
static void clear_slot(const adi_field_desc_t *f, char *slot)
{
    switch (f->type) {
    case ADI_FT_STR:
    case ADI_FT_RAW:
        *(adi_str_t *)slot = ADI_STR_NULL;
        break;
    case ADI_FT_INT:
        *(int64_t *)slot = 0;
        break;
    case ADI_FT_BOOL:
        *(bool *)slot = false;
        break;
    case ADI_FT_MSG:
        *(void **)slot = NULL;
        break;
    case ADI_FT_LIST:
        *(adi_list_t *)slot = (adi_list_t){0, NULL};
        break;
    case ADI_FT_STRLIST:
        *(adi_strlist_t *)slot = (adi_strlist_t){0, NULL};
        break;
    }
}

/* Skips the `n` items of a container whose header was just read. */
static void skip_items(adi_mp_reader_t *r, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        if (ADI_NEVER(!adi_proto__mp_skip(r)))
            return;
}

/*
 * Checks the item count of a list field of a map at `depth` (the list is at depth + 1, its
 * items at depth + 2); true when the items should be decoded.
 */
static bool list_head_ok(dec_t *c, const adi_field_desc_t *f, const adi_mp_item_t *it, path_t *p,
                         adi_mp_reader_t *r, int depth)
{
    if (f->max > 0 && it->n > (uint64_t)f->max) {
        fail(c, p, "Ensure this field has no more than %lld elements.", (long long)f->max);
        skip_items(r, it->n);
        return false;
    }
    if (depth + 1 > ADI_PROTO__MAX_DEPTH) {
        fail(c, p, "%s", MSG_TOO_DEEP);
        skip_items(r, it->n);
        return false;
    }
    return true;
}

static void dec_strlist(dec_t *c, const adi_field_desc_t *f, const adi_mp_item_t *it,
                        adi_mp_reader_t *r, adi_strlist_t *out, path_t *p, int depth)
{
    if (!list_head_ok(c, f, it, p, r, depth))
        return;
    /* Each item is a DRF CharField(max_length=ilen): not blank, not null. */
    const adi_field_desc_t child = {f->name, ADI_FT_STR, ADI_FMT_NONE, 0,   0, f->ilen,
                                    0,       0,          NULL,         NULL};
    adi_str_t *items = adi_pool_alloc(c->pool, (size_t)it->n * sizeof(adi_str_t));
    for (uint32_t i = 0; i < it->n; i++) {
        size_t old = path_push_index(p, i);
        const unsigned char *start = r->p;
        adi_mp_item_t e;
        if (ADI_NEVER(!adi_proto__mp_next(r, &e))) {
            path_pop(p, old);
            return;
        }
        if (e.type == ADI_MP_ARRAY || e.type == ADI_MP_MAP) {
            r->p = start;
            adi_proto__mp_skip(r);
        }
        if (e.type == ADI_MP_NIL)
            fail(c, p, "This field may not be null.");
        else
            dec_str(c, &child, &e, p, &items[i]);
        path_pop(p, old);
    }
    out->n = it->n;
    out->items = items;
}

static void dec_list(dec_t *c, const adi_field_desc_t *f, const adi_mp_item_t *it,
                     adi_mp_reader_t *r, adi_list_t *out, path_t *p, int depth)
{
    if (!list_head_ok(c, f, it, p, r, depth))
        return;
    char *items = adi_pool_alloc(c->pool, (size_t)it->n * f->sub->size);
    for (uint32_t i = 0; i < it->n; i++) {
        size_t old = path_push_index(p, i);
        dec_msg(c, f->sub, r, items + (size_t)i * f->sub->size, p, depth + 2);
        path_pop(p, old);
    }
    out->n = it->n;
    out->items = items;
}

/* Decodes the value at r->p into field `idx` of the struct at `base`, a map at `depth`. */
static void dec_field(dec_t *c, const adi_msg_desc_t *d, size_t idx, adi_mp_reader_t *r, void *base,
                      path_t *p, int depth)
{
    const adi_field_desc_t *f = &d->fields[idx];
    msg_head_t *h = base;
    uint32_t bit = 1u << idx;
    char *slot = (char *)base + f->offset;
    const unsigned char *start = r->p;
    adi_mp_item_t it;

    h->_has |= bit;
    h->_null &= ~bit;
    if (ADI_NEVER(!adi_proto__mp_next(r, &it)))
        return;
    bool container = it.type == ADI_MP_ARRAY || it.type == ADI_MP_MAP;
    if (it.type == ADI_MP_NIL ||
        (f->type == ADI_FT_BOOL && (f->flags & ADI_NULLABLE) && bool_null_str(&it))) {
        h->_null |= bit;
        clear_slot(f, slot);
        if (!(f->flags & ADI_NULLABLE))
            fail(c, p, "This field may not be null.");
        return;
    }

    switch (f->type) {
    case ADI_FT_MSG: {
        void *sub = adi_pool_alloc(c->pool, f->sub->size);
        void **ref = (void **)slot;
        if (*ref != NULL)
            memcpy(sub, *ref, f->sub->size); /* merge over what an earlier source decoded */
        *ref = sub;
        r->p = start;
        dec_msg(c, f->sub, r, sub, p, depth + 1);
        return;
    }
    case ADI_FT_RAW:
        r->p = start;
        if (ADI_NEVER(!adi_proto__mp_skip(r)))
            return;
        if (f->max > 0 && r->p - start > f->max) {
            fail(c, p, "Ensure this field has no more than %lld bytes.", (long long)f->max);
            return;
        }
        *(adi_str_t *)slot = (adi_str_t){(const char *)start, (size_t)(r->p - start)};
        return;
    case ADI_FT_LIST:
    case ADI_FT_STRLIST:
        if (it.type != ADI_MP_ARRAY) {
            if (container) {
                r->p = start;
                adi_proto__mp_skip(r);
            }
            fail(c, p, MSG_NOT_LIST, adi_proto__py_type(it.type));
            return;
        }
        if (f->type == ADI_FT_LIST)
            dec_list(c, f, &it, r, (adi_list_t *)slot, p, depth);
        else
            dec_strlist(c, f, &it, r, (adi_strlist_t *)slot, p, depth);
        return;
    case ADI_FT_STR:
    case ADI_FT_INT:
    case ADI_FT_BOOL:
        break;
    }

    if (container) {
        r->p = start;
        adi_proto__mp_skip(r);
    }
    if (f->type == ADI_FT_STR)
        dec_str(c, f, &it, p, (adi_str_t *)slot);
    else if (f->type == ADI_FT_INT)
        dec_int(c, f, &it, p, (int64_t *)slot);
    else
        dec_bool(c, &it, p, (bool *)slot);
}

static int find_field(const adi_msg_desc_t *d, const char *name, size_t len)
{
    for (size_t i = 0; i < d->nfields; i++) {
        const char *fn = d->fields[i].name;
        if (strlen(fn) == len && memcmp(fn, name, len) == 0)
            return (int)i;
    }
    return -1;
}

/* Decodes the message value at r->p (a map, or the root field's value) into `out`. */
static void dec_msg(dec_t *c, const adi_msg_desc_t *d, adi_mp_reader_t *r, void *out, path_t *p,
                    int depth)
{
    if (is_root(d)) {
        /* The value stands where the map would: its field sits one level up. */
        dec_field(c, d, 0, r, out, p, depth - 1);
        return;
    }
    const unsigned char *start = r->p;
    adi_mp_item_t it;
    if (ADI_NEVER(!adi_proto__mp_next(r, &it)))
        return;
    if (it.type != ADI_MP_MAP) {
        if (it.type == ADI_MP_ARRAY) {
            r->p = start;
            adi_proto__mp_skip(r);
        }
        fail_obj(c, p, MSG_NOT_DICT, adi_proto__py_type(it.type));
        return;
    }
    if (depth > ADI_PROTO__MAX_DEPTH) {
        skip_items(r, 2 * (uint64_t)it.n);
        fail_obj(c, p, "%s", MSG_TOO_DEEP);
        return;
    }
    for (uint32_t k = 0; k < it.n; k++) {
        const unsigned char *key_start = r->p;
        adi_mp_item_t key;
        if (ADI_NEVER(!adi_proto__mp_next(r, &key)))
            return;
        int idx = key.type == ADI_MP_STR ? find_field(d, key.ptr, key.n) : -1;
        if (idx < 0) {
            /* Unknown keys (and keys that are not strings) are ignored, values unread. */
            r->p = key_start;
            adi_proto__mp_skip(r);
            adi_proto__mp_skip(r);
            continue;
        }
        size_t old = path_push(p, d->fields[idx].name);
        dec_field(c, d, (size_t)idx, r, out, p, depth);
        path_pop(p, old);
    }
}

/* ---- public decode API ------------------------------------------------------------------ */

static adi_err malformed(adi_error_t *err)
{
    adi_error_set(err, ADI_INVALID, "Malformed message.");
    return adi_error_field(err, "non_field_errors", "Malformed message.");
}

static adi_err decode(const adi_msg_desc_t *d, const char *buf, size_t len, adi_pool_t *pool,
                      void *out, adi_error_t *err, bool trim)
{
    adi_mp_reader_t r;
    /* Validate the whole structure first, so a malformed message fills nothing. */
    adi_proto__mp_init(&r, buf, len);
    if (len == 0 || !adi_proto__mp_skip(&r) || r.p != r.end)
        return malformed(err);

    dec_t c = {pool, err, false, trim};
    path_t p = {{0}, 0};
    adi_proto__mp_init(&r, buf, len);
    dec_msg(&c, d, &r, out, &p, 1);
    return c.failed ? ADI_INVALID : ADI_OK;
}

adi_err adi_proto_decode(const adi_msg_desc_t *d, const char *buf, size_t len, adi_pool_t *pool,
                         void *out, adi_error_t *err)
{
    return decode(d, buf, len, pool, out, err, false);
}

adi_err adi_proto_decode_input(const adi_msg_desc_t *d, const char *buf, size_t len,
                               adi_pool_t *pool, void *out, adi_error_t *err)
{
    return decode(d, buf, len, pool, out, err, true);
}

static int buf_write(void *data, const char *buf, size_t len)
{
    adi_buf_append(data, buf, len);
    return 0;
}

adi_err adi_proto_decode_obj(const adi_msg_desc_t *d, const struct msgpack_object *obj,
                             adi_pool_t *pool, void *out, adi_error_t *err)
{
    /* Re-encode into the pool, then take the one validated path; strings then live in the pool. */
    adi_buf_t b;
    msgpack_packer pk;
    adi_buf_init(&b);
    msgpack_packer_init(&pk, &b, buf_write);
    msgpack_pack_object(&pk, *obj);
    adi_str_t copy = adi_pool_strdup(pool, (adi_str_t){b.data != NULL ? b.data : "", b.len});
    adi_buf_dispose(&b);
    return adi_proto_decode(d, copy.ptr, copy.len, pool, out, err);
}

static void check_msg(const adi_msg_desc_t *d, const void *msg, path_t *p, dec_t *c, int depth)
{
    const msg_head_t *h = msg;
    if (ADI_NEVER(depth > 2 * ADI_PROTO__MAX_DEPTH))
        return;
    for (size_t i = 0; i < d->nfields; i++) {
        const adi_field_desc_t *f = &d->fields[i];
        const char *slot = (const char *)msg + f->offset;
        size_t old = is_root(d) ? p->len : path_push(p, f->name);
        if ((f->flags & ADI_REQ) && !((h->_has >> i) & 1u))
            fail(c, p, "This field is required.");
        if (f->type == ADI_FT_MSG && *(void *const *)slot != NULL) {
            check_msg(f->sub, *(void *const *)slot, p, c, depth + 1);
        } else if (f->type == ADI_FT_LIST) {
            const adi_list_t *l = (const adi_list_t *)slot;
            for (size_t k = 0; k < l->n; k++) {
                size_t o2 = path_push_index(p, k);
                check_msg(f->sub, (const char *)l->items + k * f->sub->size, p, c, depth + 1);
                path_pop(p, o2);
            }
        }
        path_pop(p, old);
    }
}

adi_err adi_proto_check_required(const adi_msg_desc_t *d, const void *msg, adi_error_t *err)
{
    dec_t c = {NULL, err, false, false};
    path_t p = {{0}, 0};
    check_msg(d, msg, &p, &c, 1);
    return c.failed ? ADI_INVALID : ADI_OK;
}

/* ---- encoding --------------------------------------------------------------------------- */

/* Whether a field goes on the wire (possibly as nil), per the rules in proto.h. */
static bool enc_written(const adi_field_desc_t *f, const char *slot)
{
    switch (f->type) {
    case ADI_FT_STR:
    case ADI_FT_RAW:
        return ((const adi_str_t *)slot)->ptr != NULL || (f->flags & ADI_NULLABLE);
    case ADI_FT_MSG:
        return *(void *const *)slot != NULL || (f->flags & ADI_NULLABLE);
    default:
        return true;
    }
}

static void enc_msg(msgpack_packer *pk, adi_buf_t *out, const adi_msg_desc_t *d, const void *msg,
                    int depth);

static void enc_str(msgpack_packer *pk, adi_str_t s)
{
    msgpack_pack_str(pk, s.len);
    msgpack_pack_str_body(pk, s.ptr != NULL ? s.ptr : "", s.len);
}

static void enc_value(msgpack_packer *pk, adi_buf_t *out, const adi_field_desc_t *f,
                      const char *slot, int depth)
{
    switch (f->type) {
    case ADI_FT_STR: {
        const adi_str_t *s = (const adi_str_t *)slot;
        if (s->ptr == NULL)
            msgpack_pack_nil(pk);
        else
            enc_str(pk, *s);
        break;
    }
    case ADI_FT_RAW: {
        const adi_str_t *s = (const adi_str_t *)slot;
        if (s->ptr == NULL || ADI_NEVER(s->len == 0))
            msgpack_pack_nil(pk);
        else
            adi_buf_append(out, s->ptr, s->len); /* already msgpack: copied verbatim */
        break;
    }
    case ADI_FT_INT:
        msgpack_pack_int64(pk, *(const int64_t *)slot);
        break;
    case ADI_FT_BOOL:
        if (*(const bool *)slot)
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
        break;
    case ADI_FT_MSG: {
        const void *sub = *(void *const *)slot;
        if (sub == NULL)
            msgpack_pack_nil(pk);
        else
            enc_msg(pk, out, f->sub, sub, depth + 1);
        break;
    }
    case ADI_FT_LIST: {
        const adi_list_t *l = (const adi_list_t *)slot;
        msgpack_pack_array(pk, l->n);
        for (size_t i = 0; i < l->n; i++)
            enc_msg(pk, out, f->sub, (const char *)l->items + i * f->sub->size, depth + 1);
        break;
    }
    case ADI_FT_STRLIST: {
        const adi_strlist_t *l = (const adi_strlist_t *)slot;
        msgpack_pack_array(pk, l->n);
        for (size_t i = 0; i < l->n; i++)
            enc_str(pk, l->items[i]);
        break;
    }
    }
}

static void enc_msg(msgpack_packer *pk, adi_buf_t *out, const adi_msg_desc_t *d, const void *msg,
                    int depth)
{
    /* Descriptors are acyclic in practice; a cyclic struct is a caller bug, not input. */
    ADI_ASSERT(depth <= 4 * ADI_PROTO__MAX_DEPTH);
    if (is_root(d)) {
        enc_value(pk, out, &d->fields[0], (const char *)msg + d->fields[0].offset, depth);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < d->nfields; i++)
        if (enc_written(&d->fields[i], (const char *)msg + d->fields[i].offset))
            n++;
    msgpack_pack_map(pk, n);
    for (size_t i = 0; i < d->nfields; i++) {
        const adi_field_desc_t *f = &d->fields[i];
        const char *slot = (const char *)msg + f->offset;
        if (!enc_written(f, slot))
            continue;
        enc_str(pk, adi_str_c(f->name));
        enc_value(pk, out, f, slot, depth);
    }
}

void adi_proto_encode(const adi_msg_desc_t *d, const void *msg, adi_buf_t *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, buf_write);
    enc_msg(&pk, out, d, msg, 1);
}

adi_str_t adi_proto_encode_pool(const adi_msg_desc_t *d, const void *msg, adi_pool_t *pool)
{
    adi_buf_t b;
    adi_buf_init(&b);
    adi_proto_encode(d, msg, &b);
    adi_str_t s = adi_pool_strdup(pool, (adi_str_t){b.data, b.len});
    adi_buf_dispose(&b);
    return s;
}
