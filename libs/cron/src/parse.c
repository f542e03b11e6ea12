/* SPDX-License-Identifier: MIT */
/*
 * The cron expression parser: aliases, the five fields and their items (`*`, steps, ranges,
 * lists, month and weekday names), with one error message per problem naming the field, and the
 * check that the day-of-month field can ever match in the selected months. Pure: it reads only
 * its arguments and constant tables, allocates nothing and accepts any bytes, so a fuzzer can call
 * it directly.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "adi/cron.h"
#include "cron_int.h"

/* One field of the expression. */
typedef struct field_spec {
    const char *label;        /* name in messages ("day-of-month") */
    const char *key;          /* name in adi_error_t fields ("day_of_month") */
    int min;                  /* smallest value */
    int max;                  /* largest value (7 for day-of-week: Sunday again) */
    int star_max;             /* where '*' and "a/n" end (6 for day-of-week) */
    const char *const *names; /* three-letter names of min.., or NULL */
} field_spec_t;

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL",
                                          "AUG", "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const weekday_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

enum { F_MINUTE, F_HOUR, F_DOM, F_MONTH, F_DOW, F_COUNT };

static const field_spec_t fields[F_COUNT] = {
    {"minute", "minute", 0, 59, 59, NULL},
    {"hour", "hour", 0, 23, 23, NULL},
    {"day-of-month", "day_of_month", 1, 31, 31, NULL},
    {"month", "month", 1, 12, 12, month_names},
    {"day-of-week", "day_of_week", 0, 7, 6, weekday_names},
};

/* The aliases and what they stand for. */
static const struct {
    const char *name; /* "@daily" */
    const char *expr; /* its 5-field expansion */
} aliases[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static char upper(char c)
{
    return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

/* Copies `s` into `out` for a message: printable ASCII only, at most 20 characters. */
static void quote_token(adi_str_t s, char out[32])
{
    size_t n = 0;
    for (size_t i = 0; i < s.len && n < 20; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        out[n++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
    }
    if (s.len > 20) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* Sets the error for field `f` (or the whole expression when f is NULL). */
static adi_err fail(adi_error_t *err, const field_spec_t *f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static adi_err fail(adi_error_t *err, const field_spec_t *f, const char *fmt, ...)
{
    char msg[ADI_ERROR_MSG_LEN - 24];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (f != NULL) {
        adi_error_set(err, ADI_INVALID, "%s: %s", f->label, msg);
        adi_error_field(err, f->key, "%s: %s", f->label, msg);
    } else {
        adi_error_set(err, ADI_INVALID, "%s", msg);
        adi_error_field(err, "cron", "%s", msg);
    }
    return ADI_INVALID;
}

/* Parses a number or (where the field has them) a name into `*v`. */
static adi_err parse_value(const field_spec_t *f, adi_str_t s, int *v, adi_error_t *err)
{
    char q[32];
    quote_token(s, q);
    if (s.len == 0)
        return fail(err, f, "a value is missing.");
    if (s.ptr[0] >= '0' && s.ptr[0] <= '9') {
        long long n = 0;
        for (size_t i = 0; i < s.len; i++) {
            if (s.ptr[i] < '0' || s.ptr[i] > '9')
                return fail(err, f, "\"%s\" is not a number.", q);
            if (n < 1000000)
                n = n * 10 + (s.ptr[i] - '0');
        }
        if (n < f->min || n > f->max)
            return fail(err, f, "%s is out of range %d-%d.", q, f->min, f->max);
        *v = (int)n;
        return ADI_OK;
    }
    if (f->names != NULL && s.len == 3) {
        for (int i = 0; f->names[i] != NULL; i++) {
            if (upper(s.ptr[0]) == f->names[i][0] && upper(s.ptr[1]) == f->names[i][1] &&
                upper(s.ptr[2]) == f->names[i][2]) {
                *v = f->min + i;
                return ADI_OK;
            }
        }
    }
    if (f->names == month_names)
        return fail(err, f, "\"%s\" is not a month number or name (JAN-DEC).", q);
    if (f->names == weekday_names)
        return fail(err, f, "\"%s\" is not a weekday number or name (SUN-SAT).", q);
    return fail(err, f, "\"%s\" is not a number.", q);
}

/* Parses a step ("/n") into `*step`: 1 .. the field's size. */
static adi_err parse_step(const field_spec_t *f, adi_str_t s, int *step, adi_error_t *err)
{
    char q[32];
    quote_token(s, q);
    int span = f->star_max - f->min + 1;
    long long n = 0;
    if (s.len == 0)
        return fail(err, f, "a step is missing after '/'.");
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return fail(err, f, "step \"%s\" is not a number.", q);
        if (n < 1000000)
            n = n * 10 + (s.ptr[i] - '0');
    }
    if (n < 1 || n > span)
        return fail(err, f, "step %s is out of range 1-%d.", q, span);
    *step = (int)n;
    return ADI_OK;
}

/* Finds `c` in s; returns its index or s.len. */
static size_t find(adi_str_t s, char c)
{
    for (size_t i = 0; i < s.len; i++)
        if (s.ptr[i] == c)
            return i;
    return s.len;
}

/* Parses one list item into the bit set `*bits`. */
static adi_err parse_item(const field_spec_t *f, adi_str_t item, uint64_t *bits, adi_error_t *err)
{
    char q[32];
    quote_token(item, q);
    if (item.len == 0)
        return fail(err, f, "empty list item.");
    size_t slash = find(item, '/');
    adi_str_t range = {item.ptr, slash};
    int step = 1;
    if (slash < item.len) {
        adi_str_t st = {item.ptr + slash + 1, item.len - slash - 1};
        adi_err rc = parse_step(f, st, &step, err);
        if (rc != ADI_OK)
            return rc;
    }
    int lo;
    int hi;
    if (range.len == 1 && range.ptr[0] == '*') {
        lo = f->min;
        hi = f->star_max;
    } else if (range.len > 0 && range.ptr[0] == '*') {
        return fail(err, f, "\"%s\": '*' stands alone or takes a step (*/n).", q);
    } else {
        size_t dash = find(range, '-');
        adi_err rc = parse_value(f, (adi_str_t){range.ptr, dash}, &lo, err);
        if (rc != ADI_OK)
            return rc;
        if (dash < range.len) {
            adi_str_t b = {range.ptr + dash + 1, range.len - dash - 1};
            rc = parse_value(f, b, &hi, err);
            if (rc != ADI_OK)
                return rc;
            if (lo > hi)
                return fail(err, f, "range \"%s\" is backwards.", q);
        } else {
            /* "a/n" runs from a to the field's end; a lone "a" is just a. */
            hi = slash < item.len ? f->star_max : lo;
            if (hi < lo)
                hi = lo;
        }
    }
    for (int v = lo; v <= hi; v += step)
        *bits |= (uint64_t)1 << v;
    return ADI_OK;
}

/* Parses one field (a comma-separated list). */
static adi_err parse_field(const field_spec_t *f, adi_str_t s, uint64_t *bits, adi_error_t *err)
{
    *bits = 0;
    size_t start = 0;
    for (size_t i = 0; i <= s.len; i++) {
        if (i == s.len || s.ptr[i] == ',') {
            adi_err rc = parse_item(f, (adi_str_t){s.ptr + start, i - start}, bits, err);
            if (rc != ADI_OK)
                return rc;
            start = i + 1;
        }
    }
    return ADI_OK;
}

/* True when some selected day of month exists in some selected month (Feb counts 29 days). */
static bool some_day_exists(const adi_cron_t *c)
{
    for (int m = 1; m <= 12; m++) {
        if (!(c->months & (1u << m)))
            continue;
        int last = adi_cron__days_in_month(2000, m); /* a leap year: Feb 29 exists */
        for (int d = 1; d <= last; d++)
            if (c->days & (1u << d))
                return true;
    }
    return false;
}

/* Expands an alias ("@daily") into its fields' text, or fails. */
static adi_err expand_alias(adi_str_t s, adi_str_t *out, adi_error_t *err)
{
    char q[32];
    quote_token(s, q);
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++) {
        size_t n = strlen(aliases[i].name);
        if (s.len != n)
            continue;
        size_t j = 0;
        while (j < n && upper(s.ptr[j]) == upper(aliases[i].name[j]))
            j++;
        if (j == n) {
            *out = adi_str_c(aliases[i].expr);
            return ADI_OK;
        }
    }
    if (s.len == 7 && upper(s.ptr[1]) == 'R' && upper(s.ptr[2]) == 'E' && upper(s.ptr[3]) == 'B')
        return fail(err, NULL, "\"%s\" is not supported: schedules run on the clock only.", q);
    return fail(err, NULL,
                "unknown alias \"%s\" (use @hourly, @daily, @weekly, @monthly or @yearly).", q);
}

adi_err adi_cron_parse(adi_str_t expr, adi_cron_t *out, adi_error_t *err)
{
    memset(out, 0, sizeof(*out));
    if (expr.ptr == NULL)
        expr.len = 0;
    if (expr.len > ADI_CRON_MAX_LEN)
        return fail(err, NULL, "the expression is longer than %d characters.", ADI_CRON_MAX_LEN);
    while (expr.len > 0 && is_blank(expr.ptr[0])) {
        expr.ptr++;
        expr.len--;
    }
    while (expr.len > 0 && is_blank(expr.ptr[expr.len - 1]))
        expr.len--;
    if (expr.len == 0)
        return fail(err, NULL, "the expression is empty.");
    if (expr.ptr[0] == '@') {
        adi_err rc = expand_alias(expr, &expr, err);
        if (rc != ADI_OK)
            return rc;
    }

    adi_str_t parts[F_COUNT];
    size_t n = 0;
    size_t i = 0;
    while (i < expr.len) {
        while (i < expr.len && is_blank(expr.ptr[i]))
            i++;
        if (i == expr.len)
            break;
        size_t start = i;
        while (i < expr.len && !is_blank(expr.ptr[i]))
            i++;
        if (n < F_COUNT)
            parts[n] = (adi_str_t){expr.ptr + start, i - start};
        n++;
    }
    if (n != F_COUNT)
        return fail(err, NULL,
                    "expected 5 fields (minute hour day-of-month month day-of-week), got %zu.", n);

    uint64_t bits[F_COUNT];
    for (int f = 0; f < F_COUNT; f++) {
        adi_err rc = parse_field(&fields[f], parts[f], &bits[f], err);
        if (rc != ADI_OK) {
            memset(out, 0, sizeof(*out));
            return rc;
        }
    }
    adi_cron_t c;
    memset(&c, 0, sizeof(c));
    c.minutes = bits[F_MINUTE];
    c.hours = (uint32_t)bits[F_HOUR];
    c.days = (uint32_t)bits[F_DOM];
    c.months = (uint16_t)bits[F_MONTH];
    /* 7 is Sunday too. */
    c.weekdays = (uint8_t)((bits[F_DOW] & 0x7f) | ((bits[F_DOW] >> 7) & 1u));
    c.days_star = parts[F_DOM].ptr[0] == '*';
    c.weekdays_star = parts[F_DOW].ptr[0] == '*';
    /* When the weekday cannot widen the day (Vixie: either field is '*'), the day must exist. */
    if ((c.days_star || c.weekdays_star) && !some_day_exists(&c))
        return fail(err, &fields[F_DOM], "no selected day occurs in the selected months.");
    *out = c;
    return ADI_OK;
}
