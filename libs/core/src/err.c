/* SPDX-License-Identifier: MIT */
/*
 * Error codes and the error detail setter. The code tables are expanded from ADI_ERR_MAP so the
 * name and HTTP status of a code are defined in exactly one place.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "adi/err.h"

static const struct {
    const char *name; /* stable code name */
    int http;         /* HTTP status */
} codes[] = {{"ok", 200},
#define XX(n, h, s) {s, h},
             ADI_ERR_MAP(XX)
#undef XX
};

const char *adi_err_name(adi_err e)
{
    if ((unsigned)e >= ADI_ERR__COUNT)
        return "server_error";
    return codes[e].name;
}

int adi_err_http(adi_err e)
{
    if ((unsigned)e >= ADI_ERR__COUNT)
        return 500;
    return codes[e].http;
}

adi_err adi_err_from_http(int status)
{
    if (status >= 200 && status < 300)
        return ADI_OK;
    for (unsigned i = 1; i < ADI_ERR__COUNT; i++)
        if (codes[i].http == status)
            return (adi_err)i;
    return status >= 500 ? ADI_INTERNAL : ADI_INVALID;
}

void adi_error_clear(adi_error_t *e)
{
    if (e == NULL)
        return;
    e->code = ADI_OK;
    e->message[0] = '\0';
    e->nfields = 0;
}

adi_err adi_error_set(adi_error_t *e, adi_err code, const char *fmt, ...)
{
    if (e == NULL)
        return code;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return code;
}

adi_err adi_error_field(adi_error_t *e, const char *field, const char *fmt, ...)
{
    if (e == NULL)
        return ADI_INVALID;
    if (e->code != ADI_INVALID || e->message[0] == '\0') {
        e->code = ADI_INVALID;
        snprintf(e->message, sizeof(e->message), "Invalid input.");
    }
    if (e->nfields >= ADI_ERROR_MAX_FIELDS)
        return ADI_INVALID;
    adi_field_error_t *f = &e->fields[e->nfields++];
    snprintf(f->field, sizeof(f->field), "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->message, sizeof(f->message), fmt, ap);
    va_end(ap);
    return ADI_INVALID;
}
