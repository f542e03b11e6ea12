/* SPDX-License-Identifier: MIT */
/*
 * What the subcommands of adi-admin share: the CLI's configuration and the signature of a
 * subcommand. main.c holds the table of subcommands; each one lives in a file of its own.
 */
#ifndef ADI_ADMIN_H
#define ADI_ADMIN_H

#include <stdint.h>

#include "adi/db.h"

/* Settings from the environment (rows in main.c). */
typedef struct admin_cfg {
    const char *database_url;    /* DATABASE_URL: an admin role (creates schemas and roles) */
    const char *migrations_dir;  /* MIGRATIONS_DIR: holds <service>/migrations/NNN_name.sql */
    const char *log_level;       /* LOG_LEVEL */
    const char *redis_url;       /* REDIS_URL: ev:auth (deactivate-user), the vault (keys) */
    int64_t password_iterations; /* PASSWORD_ITERATIONS: PBKDF2 cost of the hashes it makes */
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

/**
 * `create-user --tenant T --email E --password-env VAR [--role R] [--first-name F]
 * [--last-name L] [--superuser]`: creates a user of tenant T (password read from $VAR, hashed with
 * PASSWORD_ITERATIONS) with an optional role, and prints its id. Exit 2 for bad input, 1 when the
 * e-mail exists in the tenant or the database fails.
 */
int admin_create_user(const admin_cfg_t *cfg, int argc, char **argv);

/**
 * `createsuperuser --email E --password-env VAR [--tenant T]`: Django's createsuperuser; without
 * --tenant the superuser belongs to no tenant. Prints the id; exit codes as create-user.
 */
int admin_createsuperuser(const admin_cfg_t *cfg, int argc, char **argv);

/**
 * `deactivate-user --email E [--tenant T]`: marks the user inactive, bumps its token version,
 * revokes its refresh tokens (one transaction), then publishes the new version on ev:auth so the
 * gateway refuses its access tokens at once. Without --tenant the e-mail must name one account.
 * Exit 1 when no (or more than one) user matches, the database fails or the publication fails.
 */
int admin_deactivate_user(const admin_cfg_t *cfg, int argc, char **argv);

/**
 * `delete-user --email E [--tenant T]`: deletes the user (its roles and refresh tokens cascade)
 * and publishes ev:auth kind "deleted" with its last token version + 1, so the gateway refuses
 * its access tokens at once (a row deleted by hand leaves them valid until they expire).
 * Exit codes as deactivate-user.
 */
int admin_delete_user(const admin_cfg_t *cfg, int argc, char **argv);

/**
 * `enable-rls [--dry-run]` (rls.c): enables and forces row-level security with the tenant policy
 * on every tenant-scoped table of every schema (a tenant_id column; `tenants` by id), printing
 * each statement it applies; idempotent (a second run applies nothing), one transaction. With
 * --dry-run prints what it would apply and changes nothing.
 */
int admin_enable_rls(const admin_cfg_t *cfg, int argc, char **argv);

/**
 * `rotate-keys [--tenant ID]` (keys.c): through the vault over the bus (REDIS_URL, as the
 * service "admin"): lists the tenants with a data key (vault.key_tenants), then rotates each one
 * (vault.rotate: a new data key, every credential re-encrypted, old versions deleted), printing
 * "[i/n] <tenant>: rotated, N credentials" or "[i/n] <tenant>: FAILED (kept its old key)" and a
 * summary. Exit 0 when every tenant rotated, 1 when any failed or the vault did not answer, 2 for
 * usage errors.
 */
int admin_rotate_keys(const admin_cfg_t *cfg, int argc, char **argv);

/**
 * `rewrap-keys [--tenant ID]` (keys.c): as rotate-keys, with vault.rewrap: every wrapped data key
 * re-wrapped under the current KMS key ("[i/n] <tenant>: rewrapped, N keys"), credentials
 * untouched. Exit codes as rotate-keys.
 */
int admin_rewrap_keys(const admin_cfg_t *cfg, int argc, char **argv);

/**
 * `enqueue <task> [--queue Q] [--tenant ID] [--args JSON] [--delay-ms N] [--unique]
 * [--max-attempts N] [--time-limit-ms N]` (tasks.c): enqueues a task on tasks:<Q> (default
 * "default") with libs/tasks and prints its id. --args is a JSON object. Exit 2 for bad input, 1
 * when Redis fails or (--unique) a copy is already queued or running (its id on stderr).
 */
int admin_enqueue(const admin_cfg_t *cfg, int argc, char **argv);

/**
 * `task-status <id>` (tasks.c): prints the task's state as one JSON object (state, name, queue,
 * tenant_id, attempt, max_attempts, result, error, worker, times, expires_in_s). Exit 1 when the
 * task is unknown or its state expired.
 */
int admin_task_status(const admin_cfg_t *cfg, int argc, char **argv);

/** `queues` (tasks.c): every task queue with its waiting, running, delayed and dead counts. */
int admin_queues(const admin_cfg_t *cfg, int argc, char **argv);

/**
 * `requeue-dead <queue> [--max N]` (tasks.c): moves up to N (default 1000) dead letters back onto
 * the queue with their attempts reset, printing how many; undecodable ones are left.
 */
int admin_requeue_dead(const admin_cfg_t *cfg, int argc, char **argv);

#endif
