/* SPDX-License-Identifier: MIT */
/*
 * Configuration from environment variables only. Each service describes its settings in one table
 * of rows (as libpq's PQconninfoOptions); adi_cfg_load parses every row, reports every bad or
 * missing variable at once, and the README's table is printed from the same rows
 * (`<service> --config-table`). Nothing else in the tree calls getenv.
 */
#ifndef ADI_CONFIG_H
#define ADI_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum adi_cfg_type {
    ADI_CFG_STR,  /* const char * (points into the environment or the default) */
    ADI_CFG_INT,  /* int64_t, decimal, within [min, max] */
    ADI_CFG_BOOL, /* bool: 1/0, true/false, yes/no, on/off */
} adi_cfg_type;

enum {
    ADI_CFG_REQUIRED = 1u << 0, /* missing (and no default) is an error */
    ADI_CFG_SECRET = 1u << 1,   /* value is redacted when the effective config is logged */
};

/** One setting. `offset` is the offsetof() of the destination in the service's config struct. */
typedef struct adi_cfg_row {
    const char *env;   /* environment variable name */
    adi_cfg_type type; /* how to parse it */
    const char *def;   /* default as text, NULL for none */
    unsigned flags;    /* ADI_CFG_REQUIRED | ADI_CFG_SECRET */
    int64_t min, max;  /* bounds for ADI_CFG_INT */
    size_t offset;     /* where the parsed value goes */
    const char *help;  /* one line for the README table */
} adi_cfg_row_t;

/* ADI_CFG(struct, field, "ENV", TYPE, "default", flags, min, max, "help") */
#define ADI_CFG(st, field, env, type, def, flags, min, max, help)                                  \
    {                                                                                              \
        (env), ADI_CFG_##type, (def), (flags), (min), (max), offsetof(st, field), (help)           \
    }

/**
 * Parses every row into `out` (defaults first, then the environment). On error writes one line
 * per bad or missing variable to `errs` and returns the number of errors (0 on success).
 */
int adi_cfg_load(const adi_cfg_row_t *rows, size_t nrows, void *out, FILE *errs);

/** Writes the rows as a Markdown table (variable, default, help) to `f`. */
void adi_cfg_table(const adi_cfg_row_t *rows, size_t nrows, FILE *f);

/** Logs the effective configuration (event config.effective), secrets as "[redacted]". */
void adi_cfg_log(const adi_cfg_row_t *rows, size_t nrows, const void *cfg);

#endif
