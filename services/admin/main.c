/* SPDX-License-Identifier: MIT */
/*
 * adi-admin, the operator's command line (Django's manage.py in the old stack): reads its settings
 * from the environment through config rows, then runs one subcommand looked up in a table of
 * name, usage, help and function. A new subcommand is one row here and one file.
 */
#include <stdio.h>
#include <string.h>

#include "adi/config.h"
#include "adi/log.h"

#include "admin.h"

static int cmd_help(const admin_cfg_t *cfg, int argc, char **argv);

/* One subcommand of the CLI. */
typedef struct admin_cmd {
    const char *name;  /* what the operator types */
    const char *args;  /* its arguments, for the usage text */
    const char *help;  /* one line for the usage text */
    admin_cmd_fn fn;   /* runs it */
    bool needs_config; /* false for commands that work without valid settings */
} admin_cmd_t;

static const admin_cmd_t commands[] = {
    {"migrate", "[--status]",
     "apply pending migrations (MIGRATIONS_DIR/<service>/migrations/NNN_name.sql), or list them",
     admin_migrate, true},
    {"create-user",
     "--tenant T --email E --password-env VAR [--role R] [--first-name F] [--last-name L] "
     "[--superuser]",
     "create a user of tenant T (password from $VAR); prints its id", admin_create_user, true},
    {"createsuperuser", "--email E --password-env VAR [--tenant T]",
     "create a superuser (without --tenant: of no tenant); prints its id", admin_createsuperuser,
     true},
    {"deactivate-user", "--email E [--tenant T]",
     "deactivate a user and revoke its tokens at once (ev:auth)", admin_deactivate_user, true},
    {"delete-user", "--email E [--tenant T]",
     "delete a user and revoke its tokens at once (ev:auth)", admin_delete_user, true},
    {"enable-rls", "[--dry-run]",
     "enable and force row-level security with the tenant policy on every tenant-scoped table",
     admin_enable_rls, true},
    {"rotate-keys", "[--tenant ID]",
     "give every tenant (or one) a new data key through the vault; old keys are deleted",
     admin_rotate_keys, true},
    {"rewrap-keys", "[--tenant ID]",
     "re-wrap every tenant's (or one's) data keys under the current KMS key through the vault",
     admin_rewrap_keys, true},
    {"enqueue",
     "<task> [--queue Q] [--tenant ID] [--args JSON] [--delay-ms N] [--unique] "
     "[--max-attempts N] [--time-limit-ms N]",
     "enqueue a background task (REDIS_URL); prints its id", admin_enqueue, true},
    {"task-status", "<id>", "print a task's state, result or error as JSON", admin_task_status,
     true},
    {"queues", "", "list the task queues with waiting, running, delayed and dead-letter counts",
     admin_queues, true},
    {"requeue-dead", "<queue> [--max N]",
     "put a queue's dead letters (oldest first, at most N, 1000) back on it with fresh attempts",
     admin_requeue_dead, true},
    {"help", "", "show this text", cmd_help, false},
};

static const adi_cfg_row_t rows[] = {
    ADI_CFG(admin_cfg_t, database_url, "DATABASE_URL", STR,
            "postgresql://postgres@127.0.0.1:5432/adinsights", ADI_CFG_SECRET, 0, 0,
            "PostgreSQL URL of an admin role (creates schemas and roles)"),
    ADI_CFG(admin_cfg_t, migrations_dir, "MIGRATIONS_DIR", STR, ADI_DEFAULT_MIGRATIONS_DIR, 0, 0, 0,
            "folder holding <service>/migrations/NNN_name.sql"),
    ADI_CFG(admin_cfg_t, log_level, "LOG_LEVEL", STR, "info", 0, 0, 0,
            "debug, info, warn or error"),
    ADI_CFG(admin_cfg_t, redis_url, "REDIS_URL", STR, "redis://127.0.0.1:6379", ADI_CFG_SECRET, 0,
            0, "Redis URL: ev:auth for deactivate-user, the vault for rotate-keys and rewrap-keys"),
    ADI_CFG(admin_cfg_t, password_iterations, "PASSWORD_ITERATIONS", INT, "720000", 0, 1, 10000000,
            "PBKDF2 iterations of the password hashes create-user and createsuperuser make"),
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))
#define NCMDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: adi-admin <command> [arguments]\n       adi-admin --config-table\n\n"
               "commands:\n");
    for (size_t i = 0; i < NCMDS; i++) {
        char head[192];
        int n = snprintf(head, sizeof(head), "%s %s", commands[i].name, commands[i].args);
        if (n > 22) /* long synopsis: the help goes on its own line */
            fprintf(f, "  %s\n  %-22s %s\n", head, "", commands[i].help);
        else
            fprintf(f, "  %-22s %s\n", head, commands[i].help);
    }
    fprintf(f, "\nenvironment:\n");
    for (size_t i = 0; i < NROWS; i++)
        fprintf(f, "  %-22s %s (default %s)\n", rows[i].env, rows[i].help,
                (rows[i].flags & ADI_CFG_SECRET) ? "[redacted]" : rows[i].def);
}

static int cmd_help(const admin_cfg_t *cfg, int argc, char **argv)
{
    (void)cfg, (void)argc, (void)argv;
    usage(stdout);
    return ADMIN_EXIT_OK;
}

adi_db_t *admin_connect(const admin_cfg_t *cfg)
{
    adi_db_t *db = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_db_connect(cfg->database_url, &db, &err) != ADI_OK) {
        fprintf(stderr, "adi-admin: cannot connect to DATABASE_URL: %s\n", err.message);
        return NULL;
    }
    return db;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--config-table") == 0) {
        adi_cfg_table(rows, NROWS, stdout);
        return ADMIN_EXIT_OK;
    }
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? ADMIN_EXIT_USAGE : ADMIN_EXIT_OK;
    }
    const admin_cmd_t *cmd = NULL;
    for (size_t i = 0; i < NCMDS && cmd == NULL; i++)
        if (strcmp(commands[i].name, argv[1]) == 0)
            cmd = &commands[i];
    if (cmd == NULL) {
        fprintf(stderr, "adi-admin: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return ADMIN_EXIT_USAGE;
    }
    admin_cfg_t cfg = {0};
    if (adi_cfg_load(rows, NROWS, &cfg, stderr) != 0 && cmd->needs_config)
        return ADMIN_EXIT_USAGE;
    int level = adi_log_level_parse(cfg.log_level != NULL ? cfg.log_level : "info");
    if (level < 0 && cmd->needs_config) {
        fprintf(stderr, "LOG_LEVEL: expected debug, info, warn or error\n");
        return ADMIN_EXIT_USAGE;
    }
    adi_log_init("admin", level < 0 ? ADI_LOG_INFO : (adi_log_level)level);
    return cmd->fn(&cfg, argc - 1, argv + 1);
}
