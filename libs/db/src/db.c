/* SPDX-License-Identifier: MIT */
/*
 * libpq glue: one connection per worker thread, reconnection after failures, tenant-scoped
 * transactions and parameterised statements whose results are owned by a per-message arena.
 *
 * Parameters travel in the binary format with the type OID of text (25) or bytea (17): for these
 * two types the binary form is the bytes themselves, so libpq sends exactly `len` bytes and the
 * caller's slices need no NUL terminator. Results come back in text format.
 *
 * Before a statement that starts outside a transaction, a cheap non-blocking check reads whatever
 * the server sent while the connection was idle: a backend that was terminated or a server that
 * restarted has sent an error and closed the socket, which libpq then reports as CONNECTION_BAD,
 * and the connection is reset before the statement is sent. A statement inside a transaction is
 * never retried: its transaction died with the connection.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "adi/db.h"

#define OID_BYTEA       17
#define OID_TEXT        25
#define MAX_PARAMS      65535
#define STACK_PARAMS    16
#define DIAG_LEN        256
#define CONSTRAINT_LEN  64
#define CONNECT_TIMEOUT "3"

struct adi_db {
    PGconn *conn;                    /* the connection; status may be CONNECTION_BAD */
    bool in_tx;                      /* a transaction opened by adi_db_begin is open */
    bool doomed;                     /* the server sent FATAL while idle: reset before use */
    char diag[DIAG_LEN];             /* operator-facing description of the last failure */
    char constraint[CONSTRAINT_LEN]; /* constraint named by the last failed statement */
    char sqlstate[6];                /* SQLSTATE of the last failed statement, "" for none */
};

struct adi_db_res {
    PGresult *pg;     /* the rows; cleared by the pool's finalizer */
    adi_pool_t *pool; /* where adi_db_get_bytea decodes into */
};

/* Copies the first line of libpq's connection message into db->diag (it never holds passwords). */
static void set_conn_diag(char *diag, const char *msg)
{
    size_t n = strcspn(msg, "\n");
    if (n >= DIAG_LEN)
        n = DIAG_LEN - 1;
    memcpy(diag, msg, n);
    diag[n] = '\0';
}

static void clear_diag(adi_db_t *db)
{
    db->diag[0] = '\0';
    db->constraint[0] = '\0';
    db->sqlstate[0] = '\0';
}

static adi_err conn_lost(adi_db_t *db, adi_error_t *err)
{
    set_conn_diag(db->diag, PQerrorMessage(db->conn));
    if (db->diag[0] == '\0')
        snprintf(db->diag, sizeof(db->diag), "connection lost");
    return adi_error_set(err, ADI_UNAVAILABLE, "Database unavailable.");
}

/*
 * Translates a failed result into a code, once, here. Only the SQLSTATE and the names of the
 * constraint and table reach the diagnostics, because the server's message text may quote
 * parameter values; `with_text` adds it for trusted parameterless scripts (migrations), where an
 * operator needs to see the syntax error.
 */
static adi_err result_error(adi_db_t *db, const PGresult *r, bool with_text, adi_error_t *err)
{
    if (PQstatus(db->conn) == CONNECTION_BAD)
        return conn_lost(db, err);
    const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state == NULL)
        return conn_lost(db, err);
    const char *cons = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
    const char *table = PQresultErrorField(r, PG_DIAG_TABLE_NAME);
    snprintf(db->constraint, sizeof(db->constraint), "%s", cons != NULL ? cons : "");
    snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", state);
    const char *text = with_text ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *pos = with_text ? PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION) : NULL;
    snprintf(db->diag, sizeof(db->diag), "SQLSTATE %s%s%s%s%s%s%s%s%s", state,
             table ? " table " : "", table ? table : "", cons ? " constraint " : "",
             cons ? cons : "", text ? ": " : "", text ? text : "", pos ? " at character " : "",
             pos ? pos : "");
    if (strcmp(state, "23505") == 0)
        return adi_error_set(err, ADI_CONFLICT, "conflict");
    if (strcmp(state, "57014") == 0)
        return adi_error_set(err, ADI_TIMEOUT, "Database statement timed out.");
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
        return adi_error_set(err, ADI_BUSY, "Database busy, try again.");
    /* 08P01 (protocol violation, e.g. a wrong parameter count) is a bug, not an outage. */
    if ((strncmp(state, "08", 2) == 0 && strcmp(state, "08P01") != 0) ||
        strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0 ||
        strcmp(state, "53300") == 0)
        return adi_error_set(err, ADI_UNAVAILABLE, "Database unavailable.");
    if (strncmp(state, "22", 2) == 0)
        return adi_error_set(err, ADI_INVALID, "Invalid value.");
    return adi_error_set(err, ADI_INTERNAL, "Database error.");
}

/*
 * Reads what the server sent while we were idle, without blocking. A terminated backend sends a
 * FATAL error (which on_notice records) and closes the socket (which libpq reports as
 * CONNECTION_BAD). Bounded, so that a stream of notifications cannot keep us here.
 */
static void probe_idle(adi_db_t *db)
{
    for (int i = 0; i < 4 && PQstatus(db->conn) == CONNECTION_OK && !db->doomed; i++) {
        int fd = PQsocket(db->conn);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (fd < 0 || poll(&p, 1, 0) <= 0)
            break;
        if (!PQconsumeInput(db->conn))
            break;
        /* Parses what arrived: errors go to on_notice while no statement runs. */
        (void)PQisBusy(db->conn);
        PGnotify *n;
        while ((n = PQnotifies(db->conn)) != NULL)
            PQfreemem(n);
    }
}

/* True when the connection can take a statement. */
static bool conn_usable(adi_db_t *db)
{
    probe_idle(db);
    return PQstatus(db->conn) == CONNECTION_OK && !db->doomed;
}

/* Makes sure a connection exists before a statement that starts outside a transaction. */
static adi_err ensure_conn(adi_db_t *db, adi_error_t *err)
{
    if (conn_usable(db))
        return ADI_OK;
    /* One bounded attempt (connect_timeout); the next call tries again. */
    db->doomed = false;
    PQreset(db->conn);
    if (PQstatus(db->conn) != CONNECTION_OK)
        return conn_lost(db, err);
    return ADI_OK;
}

/*
 * Receives server notices and errors that arrive while no statement runs. Notices ("relation
 * already exists, skipping") are dropped: libraries do not log. A FATAL error is the server saying
 * why it is about to close the connection (a terminated backend, a shutdown): the connection is
 * marked doomed so that it is reset before the next statement.
 */
static void on_notice(void *arg, const PGresult *r)
{
    adi_db_t *db = arg;
    const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (sev != NULL && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0))
        db->doomed = true;
}

adi_err adi_db_connect(const char *url, adi_db_t **out, adi_error_t *err)
{
    *out = NULL;
    if (url == NULL)
        return adi_error_set(err, ADI_INVALID, "Missing database URL.");
    /* Parse first: libpq's parse errors may quote pieces of the URL (and so of a password). */
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    if (opts == NULL) {
        if (perr != NULL)
            PQfreemem(perr);
        return adi_error_set(err, ADI_INVALID, "Invalid database URL.");
    }
    PQconninfoFree(opts);

    /* Keywords before dbname are defaults that the URL (expanded from dbname) overrides. */
    const char *const keys[] = {"connect_timeout",     "keepalives",       "keepalives_idle",
                                "keepalives_interval", "keepalives_count", "application_name",
                                "client_encoding",     "dbname",           NULL};
    const char *const vals[] = {CONNECT_TIMEOUT, "1",    "30", "10", "3",
                                "adinsights",    "UTF8", url,  NULL};
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (conn == NULL)
        adi__oom(0, __FILE__, __LINE__);
    if (PQstatus(conn) != CONNECTION_OK) {
        char why[DIAG_LEN];
        set_conn_diag(why, PQerrorMessage(conn));
        PQfinish(conn);
        return adi_error_set(err, ADI_UNAVAILABLE, "Database unavailable: %s", why);
    }
    adi_db_t *db = adi_xcalloc(1, sizeof(*db));
    db->conn = conn;
    /* The receiver belongs to the PGconn and survives PQreset. */
    PQsetNoticeReceiver(conn, on_notice, db);
    *out = db;
    return ADI_OK;
}

void adi_db_free(adi_db_t *db)
{
    if (db == NULL)
        return;
    PQfinish(db->conn);
    free(db);
}

static void clear_result(void *r)
{
    PQclear(r);
}

static adi_err run(adi_db_t *db, adi_pool_t *pool, const char *sql, int nparams,
                   const adi_str_t *params, const adi_db_type *types, adi_db_res_t **res,
                   adi_error_t *err)
{
    const char *vals_s[STACK_PARAMS];
    int lens_s[STACK_PARAMS], fmts_s[STACK_PARAMS];
    Oid oids_s[STACK_PARAMS];
    const char **vals = vals_s;
    int *lens = lens_s, *fmts = fmts_s;
    Oid *oids = oids_s;
    PGresult *r = NULL;
    adi_err rc = ADI_OK;

    if (nparams > STACK_PARAMS) {
        vals = adi_xmalloc(sizeof(*vals) * (size_t)nparams);
        lens = adi_xmalloc(sizeof(*lens) * (size_t)nparams);
        fmts = adi_xmalloc(sizeof(*fmts) * (size_t)nparams);
        oids = adi_xmalloc(sizeof(*oids) * (size_t)nparams);
    }
    for (int i = 0; i < nparams; i++) {
        if (params[i].len > (size_t)INT32_MAX) {
            rc = adi_error_set(err, ADI_TOO_LARGE, "Value too large.");
            goto out;
        }
        vals[i] = params[i].ptr;
        lens[i] = (int)params[i].len;
        fmts[i] = 1;
        oids[i] = (types != NULL && types[i] == ADI_DB_BYTEA) ? OID_BYTEA : OID_TEXT;
    }
    r = PQexecParams(db->conn, sql, nparams, oids, vals, lens, fmts, 0);
    ExecStatusType st = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        rc = result_error(db, r, false, err);
        PQclear(r);
        goto out;
    }
    if (res == NULL) {
        PQclear(r);
        goto out;
    }
    adi_db_res_t *out_res = adi_pool_alloc(pool, sizeof(*out_res));
    out_res->pg = r;
    out_res->pool = pool;
    adi_pool_defer(pool, clear_result, r);
    *res = out_res;
out:
    if (vals != vals_s) {
        free(vals);
        free(lens);
        free(fmts);
        free(oids);
    }
    return rc;
}

/* After a failure inside a transaction, a dead connection also ends the transaction. */
static void note_tx_failure(adi_db_t *db)
{
    if (db->in_tx && PQstatus(db->conn) == CONNECTION_BAD)
        db->in_tx = false;
}

adi_err adi_db_exec_typed(adi_db_t *db, adi_pool_t *pool, const char *sql, int nparams,
                          const adi_str_t *params, const adi_db_type *types, adi_db_res_t **res,
                          adi_error_t *err)
{
    if (res != NULL)
        *res = NULL;
    clear_diag(db);
    if (nparams < 0 || nparams > MAX_PARAMS || (nparams > 0 && params == NULL))
        return adi_error_set(err, ADI_INVALID, "Too many statement parameters.");
    ADI_ASSERT(res == NULL || pool != NULL);
    if (!db->in_tx) {
        adi_err rc = ensure_conn(db, err);
        if (rc != ADI_OK)
            return rc;
    } else if (!conn_usable(db)) {
        /* The transaction died with its connection; the next begin reconnects. */
        db->in_tx = false;
        return conn_lost(db, err);
    }
    adi_err rc = run(db, pool, sql, nparams, params, types, res, err);
    if (rc != ADI_OK)
        note_tx_failure(db);
    return rc;
}

adi_err adi_db_exec(adi_db_t *db, adi_pool_t *pool, const char *sql, int nparams,
                    const adi_str_t *params, adi_db_res_t **res, adi_error_t *err)
{
    return adi_db_exec_typed(db, pool, sql, nparams, params, NULL, res, err);
}

adi_err adi_db_exec_script(adi_db_t *db, const char *sql, adi_error_t *err)
{
    clear_diag(db);
    if (!db->in_tx) {
        adi_err rc = ensure_conn(db, err);
        if (rc != ADI_OK)
            return rc;
    } else if (!conn_usable(db)) {
        db->in_tx = false;
        return conn_lost(db, err);
    }
    /* PQexec returns the last result; any failure stops the text there and is the last one. */
    PGresult *r = PQexec(db->conn, sql);
    ExecStatusType st = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    adi_err rc = ADI_OK;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        rc = result_error(db, r, true, err);
        note_tx_failure(db);
    }
    PQclear(r);
    return rc;
}

bool adi_db_ping(adi_db_t *db)
{
    adi_err rc = adi_db_exec(db, NULL, "SELECT 1", 0, NULL, NULL, NULL);
    return rc == ADI_OK;
}

adi_err adi_db_begin(adi_db_t *db, adi_str_t tenant_id, adi_error_t *err)
{
    clear_diag(db);
    if (db->in_tx)
        return adi_error_set(err, ADI_INTERNAL, "Database error.");
    adi_err rc = adi_db_exec(db, NULL, "BEGIN", 0, NULL, NULL, err);
    if (rc != ADI_OK)
        return rc;
    db->in_tx = true;
    if (tenant_id.ptr == NULL)
        return ADI_OK;
    rc = adi_db_exec(db, NULL, "SELECT set_config('app.tenant_id', $1, true)", 1, &tenant_id, NULL,
                     err);
    if (rc != ADI_OK)
        adi_db_rollback(db);
    return rc;
}

adi_err adi_db_commit(adi_db_t *db, adi_error_t *err)
{
    clear_diag(db);
    if (!db->in_tx)
        return adi_error_set(err, ADI_INTERNAL, "Database error.");
    if (PQtransactionStatus(db->conn) == PQTRANS_INERROR) {
        /* COMMIT would silently roll back; say so instead. */
        adi_db_rollback(db);
        snprintf(db->diag, sizeof(db->diag), "commit of an aborted transaction");
        return adi_error_set(err, ADI_INTERNAL, "Database error.");
    }
    adi_err rc = adi_db_exec(db, NULL, "COMMIT", 0, NULL, NULL, err);
    db->in_tx = false;
    if (rc != ADI_OK && PQstatus(db->conn) == CONNECTION_OK &&
        PQtransactionStatus(db->conn) != PQTRANS_IDLE) {
        PGresult *r = PQexec(db->conn, "ROLLBACK");
        PQclear(r);
    }
    return rc;
}

void adi_db_rollback(adi_db_t *db)
{
    if (!db->in_tx)
        return;
    db->in_tx = false;
    /* A dead or dying connection took its transaction with it. */
    if (PQstatus(db->conn) != CONNECTION_OK || db->doomed)
        return;
    PGresult *r = PQexec(db->conn, "ROLLBACK");
    PQclear(r);
}

bool adi_db_in_tx(const adi_db_t *db)
{
    return db->in_tx;
}

int adi_db_nrows(const adi_db_res_t *res)
{
    return res != NULL ? PQntuples(res->pg) : 0;
}

int adi_db_ncols(const adi_db_res_t *res)
{
    return res != NULL ? PQnfields(res->pg) : 0;
}

int64_t adi_db_affected(const adi_db_res_t *res)
{
    if (res == NULL)
        return 0;
    const char *n = PQcmdTuples(res->pg);
    return n[0] != '\0' ? strtoll(n, NULL, 10) : 0;
}

static bool in_range(const adi_db_res_t *res, int row, int col)
{
    return res != NULL && row >= 0 && col >= 0 && row < PQntuples(res->pg) &&
           col < PQnfields(res->pg);
}

adi_str_t adi_db_get(const adi_db_res_t *res, int row, int col)
{
    if (!in_range(res, row, col) || PQgetisnull(res->pg, row, col))
        return ADI_STR_NULL;
    return (adi_str_t){PQgetvalue(res->pg, row, col), (size_t)PQgetlength(res->pg, row, col)};
}

adi_str_t adi_db_get_bytea(const adi_db_res_t *res, int row, int col)
{
    if (!in_range(res, row, col) || PQgetisnull(res->pg, row, col))
        return ADI_STR_NULL;
    size_t n = 0;
    const unsigned char *text = (const unsigned char *)PQgetvalue(res->pg, row, col);
    unsigned char *raw = PQunescapeBytea(text, &n);
    if (raw == NULL)
        adi__oom(0, __FILE__, __LINE__);
    char *copy = adi_pool_alloc(res->pool, n + 1);
    memcpy(copy, raw, n);
    PQfreemem(raw);
    return (adi_str_t){copy, n};
}

const char *adi_db_constraint(const adi_db_t *db)
{
    return db->constraint;
}

const char *adi_db_sqlstate(const adi_db_t *db)
{
    return db->sqlstate;
}

const char *adi_db_diag(const adi_db_t *db)
{
    return db->diag;
}
