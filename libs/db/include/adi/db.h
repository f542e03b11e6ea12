/* SPDX-License-Identifier: MIT */
/*
 * PostgreSQL access through libpq: one connection per worker thread, tenant-scoped transactions
 * (the tenant is set with set_config('app.tenant_id', ..., true) so row-level security sees it)
 * and parameterised statements whose results live in the caller's per-message arena.
 *
 * Parameters are adi_str_t slices sent with explicit lengths (no NUL terminator is needed) as
 * values of type text (or bytea, see adi_db_exec_typed); the SQL casts them where it needs another
 * type ($1::uuid, $2::int). Results are fetched in text format; bytea columns are decoded with
 * adi_db_get_bytea.
 *
 * A connection that breaks (Postgres restart, terminated backend, network loss) is re-established
 * by the next call, with one bounded attempt (connect_timeout), so a Postgres restart is survived
 * without restarting the process. An adi_db_t is used by one thread at a time.
 *
 * Error mapping (set once, here): SQLSTATE 23505 -> ADI_CONFLICT (message "conflict"; the caller
 * words the client message, adi_db_constraint names the violated constraint); a lost or refused
 * connection, class 08 (but 08P01), 57P01-57P03 and 53300 -> ADI_UNAVAILABLE; 57014 (statement
 * timeout or cancel) -> ADI_TIMEOUT; 40001/40P01 (serialization failure, deadlock) -> ADI_BUSY;
 * class 22 (data exception: a value that does not fit its cast, e.g. 'x'::uuid) -> ADI_INVALID
 * ("Invalid value."); anything else -> ADI_INTERNAL. Error messages never contain SQL parameter
 * values or the server's message text (which may quote them); adi_db_diag gives the operator a safe
 * description for the log.
 */
#ifndef ADI_DB_H
#define ADI_DB_H

#include <stdbool.h>
#include <stdint.h>

#include "adi/core.h"

/** One PGconn; reconnects on the next call after a failure. Not thread-safe: one per thread. */
typedef struct adi_db adi_db_t;

/** A statement's result rows. Lives in the pool passed to adi_db_exec (PQclear is deferred). */
typedef struct adi_db_res adi_db_res_t;

/** How a parameter of adi_db_exec_typed is sent. */
typedef enum adi_db_type {
    ADI_DB_TEXT = 0,  /* text (OID 25): the slice's bytes as they are; must be valid UTF-8 */
    ADI_DB_BYTEA = 1, /* bytea (OID 17): the slice's raw bytes, any value including NUL */
} adi_db_type;

/**
 * Connects to `url` (a libpq URL or key=value string, e.g. postgresql://user@host:5432/db) with
 * connect_timeout=5, TCP keepalives and application_name=adinsights unless the URL sets them.
 * On success `*out` owns the connection (free with adi_db_free).
 * Errors: ADI_INVALID when the URL cannot be parsed; ADI_UNAVAILABLE when the server cannot be
 * reached or refuses the login (the message carries libpq's reason, never the password).
 */
adi_err adi_db_connect(const char *url, adi_db_t **out, adi_error_t *err);

/** Closes the connection (rolling back an open transaction) and frees `db`. NULL is a no-op. */
void adi_db_free(adi_db_t *db);

/**
 * Round-trips "SELECT 1" (reconnecting first when the connection is bad, outside a transaction):
 * true when the server answered. Like every call, only from the thread that uses `db`.
 */
bool adi_db_ping(adi_db_t *db);

/**
 * BEGIN, then SELECT set_config('app.tenant_id', tenant_id, true) when tenant_id.ptr != NULL (so
 * the setting ends with the transaction). Reconnects first when the connection is bad.
 * Errors: ADI_UNAVAILABLE (no connection), ADI_INTERNAL (a transaction is already open, or the
 * server failed the statement). On error no transaction is open.
 */
adi_err adi_db_begin(adi_db_t *db, adi_str_t tenant_id, adi_error_t *err);

/**
 * COMMIT of the open transaction. After any return no transaction is open.
 * Errors: as adi_db_exec (e.g. ADI_CONFLICT from a deferred constraint, ADI_UNAVAILABLE when the
 * connection died; the transaction is then rolled back), ADI_INTERNAL when no transaction is open
 * or a statement of it had failed (Postgres rolls such a transaction back).
 */
adi_err adi_db_commit(adi_db_t *db, adi_error_t *err);

/** ROLLBACK of the open transaction, if any; never fails (a broken connection is dropped). */
void adi_db_rollback(adi_db_t *db);

/**
 * Runs one statement with `nparams` text parameters ($1..$n; params[i].ptr == NULL is SQL NULL).
 * When `res` is not NULL, `*res` receives the rows, allocated in `pool` (valid until the pool is
 * disposed); when `res` is NULL the rows are discarded and `pool` may be NULL.
 * Outside a transaction the statement autocommits, and a bad connection is re-established first;
 * inside one, a lost connection fails the statement (and ends the transaction).
 * Errors: ADI_CONFLICT (23505), ADI_UNAVAILABLE (connection), ADI_TIMEOUT (57014), ADI_BUSY
 * (40001, 40P01), ADI_INVALID (class 22, or nparams outside 0..65535), ADI_TOO_LARGE (a value
 * over 2 GiB), ADI_INTERNAL (anything
 * else, including a statement inside a transaction that an earlier failure aborted).
 */
adi_err adi_db_exec(adi_db_t *db, adi_pool_t *pool, const char *sql, int nparams,
                    const adi_str_t *params, adi_db_res_t **res, adi_error_t *err);

/**
 * adi_db_exec with a type per parameter (`types` NULL means all ADI_DB_TEXT), for bytea values
 * such as the idempotency table's reply column: `INSERT ... VALUES ($1, $2, $3)` with types
 * {TEXT, TEXT, BYTEA}. Same ownership and errors as adi_db_exec.
 */
adi_err adi_db_exec_typed(adi_db_t *db, adi_pool_t *pool, const char *sql, int nparams,
                          const adi_str_t *params, const adi_db_type *types, adi_db_res_t **res,
                          adi_error_t *err);

/**
 * Runs trusted SQL text that may hold several statements and no parameters (simple query
 * protocol): migration files, enable-rls. Do not build `sql` from input. Inside a transaction it
 * joins it; outside, a multi-statement text runs as one implicit transaction.
 * Errors: as adi_db_exec.
 */
adi_err adi_db_exec_script(adi_db_t *db, const char *sql, adi_error_t *err);

/** Number of rows of `res` (0 for NULL). */
int adi_db_nrows(const adi_db_res_t *res);

/** Number of columns of `res` (0 for NULL). */
int adi_db_ncols(const adi_db_res_t *res);

/** Rows affected by an INSERT/UPDATE/DELETE (PQcmdTuples), 0 when not applicable or NULL. */
int64_t adi_db_affected(const adi_db_res_t *res);

/**
 * The text value at (row, col), NUL-terminated, borrowed from `res` (valid until its pool is
 * disposed); ptr NULL for SQL NULL or out-of-range row/col.
 */
adi_str_t adi_db_get(const adi_db_res_t *res, int row, int col);

/**
 * The bytes of a bytea column at (row, col), decoded from the text (hex) form into the result's
 * pool; ptr NULL for SQL NULL or out-of-range row/col. Empty bytea gives a non-NULL ptr, len 0.
 */
adi_str_t adi_db_get_bytea(const adi_db_res_t *res, int row, int col);

/** True while a transaction opened by adi_db_begin is open. */
bool adi_db_in_tx(const adi_db_t *db);

/**
 * The constraint named by the last failed statement (e.g. "users_email_key" after an ADI_CONFLICT),
 * or "" when none. Valid until the next call on `db`.
 */
const char *adi_db_constraint(const adi_db_t *db);

/**
 * The SQLSTATE of the last failed statement ("23505", "XX000", ...), "" when the last call
 * succeeded or failed without one (a lost connection). Valid until the next call on `db`.
 */
const char *adi_db_sqlstate(const adi_db_t *db);

/**
 * An operator-facing description of the last failure for logs: libpq's connection message for
 * connection failures, "SQLSTATE xxxxx" (plus the constraint/table when known) for statement
 * failures, plus the server's message for adi_db_exec_script (which has no parameters); never
 * parameter values or passwords. "" when the last call succeeded. Valid until
 * the next call on `db`.
 */
const char *adi_db_diag(const adi_db_t *db);

#endif
