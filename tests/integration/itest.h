/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the bus and svc integration tests: the harness environment (REDIS_URL,
 * DATABASE_URL from tests/harness/with-env.sh), unique names so tests run in parallel, raw Redis
 * and Postgres access for setup and cleanup, and building envelopes through the proto codec.
 * Every helper fails the current cmocka test on error.
 */
#ifndef ADI_ITEST_H
#define ADI_ITEST_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "adi/bus.h"
#include "adi/db.h"
#include "adi/messages.h"

/** A harness variable; fails the test when it is not set. */
const char *itest_env(const char *name);

/** Writes "<prefix><pid>x<random hex>" (lower case, usable as a SQL identifier) into out. */
void itest_unique(char *out, size_t n, const char *prefix);

/** A client bus on REDIS_URL whose reply stream is `reply_stream` (may be NULL). */
adi_bus_t *itest_bus(const char *reply_stream);

/** Runs a raw Redis command (argv form) on REDIS_URL's db `db`; returns the integer reply or -1. */
long long itest_redis_int(int db, int argc, const char **argv);

/** Kills every client connection whose selected database is `db`; returns how many. */
long long itest_redis_kill_db(int db);

/** Deletes every key of Redis database `db` whose name contains `needle`. */
void itest_redis_cleanup(int db, const char *needle);

/** An admin connection to DATABASE_URL. */
adi_db_t *itest_db(void);

/** Runs trusted SQL (several statements allowed) and fails the test on error. */
void itest_sql(adi_db_t *db, const char *sql);

/** The integer in the first column of the first row of `sql` (one text parameter, or NULL). */
long long itest_sql_int(adi_db_t *db, const char *sql, const char *param);

/** Fills an envelope for `op` of `id` with reply_to, deadline and optional principal/body. */
void itest_envelope(adi_envelope *env, const char *id, const char *op, const char *reply_to,
                    int64_t deadline_ms, adi_principal *principal, adi_str_t body);

/** Encodes `env` and XADDs it to `stream`. */
void itest_send(adi_bus_t *bus, const char *stream, const adi_envelope *env);

/** Waits (up to 60 s) for the reply to `id` on `reply_stream`, reading after `after`. */
adi_reply *itest_wait(adi_bus_t *bus, const char *reply_stream, const char *id,
                      char after[ADI_BUS_ID_MAX], adi_pool_t *pool);

/** Waits for child `pid` (retrying on EINTR): its exit status, 128 when a signal ended it. */
int itest_wait_child(pid_t pid);

/** Runs `admin_bin migrate` with MIGRATIONS_DIR=`mig_dir` on `admin_url`; fails unless it exits 0.
 */
void itest_migrate(const char *admin_bin, const char *mig_dir, const char *admin_url);

/**
 * A database `name` of the test's own on the harness cluster with the migrations of `services`
 * (NULL-terminated folder names under `services_dir`) applied by `admin_bin` through a
 * MIGRATIONS_DIR of links made in `mig_dir` (set to $ADI_TEST_DIR/<name>-migrations; `n` bytes).
 * *root is an admin connection to the harness database, *db one to the new database.
 */
void itest_scratch_db(const char *name, const char *admin_bin, const char *services_dir,
                      const char *const *services, char *mig_dir, size_t n, adi_db_t **root,
                      adi_db_t **db);

/** Undoes itest_scratch_db: closes `db`, drops the database, closes `root`, removes the links. */
void itest_scratch_db_drop(const char *name, const char *mig_dir, const char *const *services,
                           adi_db_t *root, adi_db_t *db);

/**
 * Starts the adi-auth binary `auth_bin` as a child of an in-process service test and returns its
 * pid: consumer name `name` (its log in $ADI_TEST_DIR/logs/<name>.log), REDIS_URL `redis_url`,
 * DATABASE_URL as the role adi_auth on database `dbname` of the harness cluster, `workers`
 * workers, a fresh random JWT_SIGNING_KEY, PASSWORD_ITERATIONS=1000, an ops port picked by
 * itself, plus the KEY=VALUE settings of the NULL-terminated `extra` (may be NULL).
 */
pid_t itest_spawn_auth(const char *auth_bin, const char *name, const char *redis_url,
                       const char *dbname, int workers, const char *const *extra);

#endif
