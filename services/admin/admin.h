/* SPDX-License-Identifier: MIT */
/*
 * What the subcommands of adi-admin share: the CLI's configuration and the signature of a
 * subcommand. main.c holds the table of subcommands; each one lives in a file of its own.
 */
#ifndef ADI_ADMIN_H
#define ADI_ADMIN_H

#include "adi/db.h"

/* Settings from the environment (rows in main.c). */
typedef struct admin_cfg {
    const char *database_url;   /* DATABASE_URL: an admin role (creates schemas and roles) */
    const char *migrations_dir; /* MIGRATIONS_DIR: holds <service>/migrations/NNN_name.sql */
    const char *log_level;      /* LOG_LEVEL */
} admin_cfg_t;

/* Exit codes of every subcommand. */
enum {
    ADMIN_EXIT_OK = 0,     /* done */
    ADMIN_EXIT_FAILED = 1, /* the work failed (database, files); details on stderr */
    ADMIN_EXIT_USAGE = 2,  /* bad arguments or configuration */
};

/**
 * A subcommand: `argv[0]` is its name, the rest its arguments. Returns an ADMIN_EXIT_* code and
 * writes progress to stdout, problems to stderr.
 */
typedef int (*admin_cmd_fn)(const admin_cfg_t *cfg, int argc, char **argv);

/**
 * Connects to cfg->database_url; on failure prints why to stderr (never the URL, which may hold
 * a password) and returns NULL.
 */
adi_db_t *admin_connect(const admin_cfg_t *cfg);

/**
 * `migrate [--status]`: applies every pending services/<svc>/migrations/NNN_name.sql in order,
 * each file in its own transaction recorded in public.adi_migrations, under an advisory lock so
 * that concurrent runs apply each file once; with --status lists applied and pending files.
 */
int admin_migrate(const admin_cfg_t *cfg, int argc, char **argv);

#endif
