/* SPDX-License-Identifier: MIT */
/*
 * Environment configuration driven by a table of rows. Defaults are applied first, then every
 * variable that is set is parsed; all problems are reported together so an operator fixes a
 * deployment in one round. This is the only file of the tree that calls getenv.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adi/config.h"
#include "adi/core.h"
#include "adi/log.h"

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static int apply(const adi_cfg_row_t *r, const char *val, void *out, FILE *errs)
{
    char *dst = (char *)out + r->offset;
    switch (r->type) {
    case ADI_CFG_STR:
        memcpy(dst, &val, sizeof(val));
        return 0;
    case ADI_CFG_INT: {
        errno = 0;
        char *end = NULL;
        long long v = strtoll(val, &end, 10);
        if (errno != 0 || end == val || *end != '\0' || v < r->min || v > r->max) {
            fprintf(errs, "%s: expected an integer from %" PRId64 " to %" PRId64 "\n", r->env,
                    r->min, r->max);
            return 1;
        }
        int64_t v64 = v;
        memcpy(dst, &v64, sizeof(v64));
        return 0;
    }
    case ADI_CFG_BOOL: {
        bool b;
        if (!parse_bool(val, &b)) {
            fprintf(errs, "%s: expected true or false\n", r->env);
            return 1;
        }
        memcpy(dst, &b, sizeof(b));
        return 0;
    }
    }
    return 1;
}

int adi_cfg_load(const adi_cfg_row_t *rows, size_t nrows, void *out, FILE *errs)
{
    int bad = 0;
    for (size_t i = 0; i < nrows; i++) {
        const adi_cfg_row_t *r = &rows[i];
        const char *val = getenv(r->env);
        if (val == NULL || (val[0] == '\0' && r->type != ADI_CFG_STR))
            val = r->def;
        if (val == NULL) {
            if (r->flags & ADI_CFG_REQUIRED) {
                fprintf(errs, "%s: required but not set\n", r->env);
                bad++;
            } else if (r->type == ADI_CFG_STR) {
                const char *empty = "";
                memcpy((char *)out + r->offset, &empty, sizeof(empty));
            }
            continue;
        }
        bad += apply(r, val, out, errs);
    }
    return bad;
}

void adi_cfg_table(const adi_cfg_row_t *rows, size_t nrows, FILE *f)
{
    fprintf(f, "| variable | default | description |\n|---|---|---|\n");
    for (size_t i = 0; i < nrows; i++) {
        const adi_cfg_row_t *r = &rows[i];
        const char *def = r->def ? r->def : "";
        fprintf(f, "| `%s` | %s%s%s | %s%s |\n", r->env, def[0] ? "`" : "", def[0] ? def : "—",
                def[0] ? "`" : "", r->help, (r->flags & ADI_CFG_REQUIRED) ? " (required)" : "");
    }
}

void adi_cfg_log(const adi_cfg_row_t *rows, size_t nrows, const void *cfg)
{
    adi_buf_t b;
    adi_buf_init(&b);
    for (size_t i = 0; i < nrows; i++) {
        const adi_cfg_row_t *r = &rows[i];
        const char *src = (const char *)cfg + r->offset;
        adi_buf_printf(&b, "%s%s=", i ? " " : "", r->env);
        if (r->flags & ADI_CFG_SECRET) {
            adi_buf_append_str(&b, "[redacted]");
            continue;
        }
        switch (r->type) {
        case ADI_CFG_STR: {
            const char *s;
            memcpy(&s, src, sizeof(s));
            adi_buf_append_str(&b, s ? s : "");
            break;
        }
        case ADI_CFG_INT: {
            int64_t v;
            memcpy(&v, src, sizeof(v));
            adi_buf_printf(&b, "%" PRId64, v);
            break;
        }
        case ADI_CFG_BOOL: {
            bool v;
            memcpy(&v, src, sizeof(v));
            adi_buf_append_str(&b, v ? "true" : "false");
            break;
        }
        }
    }
    ADI_LOG(NULL, ADI_LOG_INFO, "config.effective", "%s", b.data ? b.data : "");
    adi_buf_dispose(&b);
}
