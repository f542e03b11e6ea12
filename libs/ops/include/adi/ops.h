/* SPDX-License-Identifier: MIT */
/*
 * The ops port every process serves (/healthz, /readyz, /metrics) and the metrics registry behind
 * /metrics (Prometheus text format). The ops server runs on its own thread with its own libuv loop,
 * so a stuck worker never hides the process from its probes.
 */
#ifndef ADI_OPS_H
#define ADI_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "adi/core.h"

/* ---- metrics ---------------------------------------------------------------------------- */

/** A process's metrics. Thread-safe: any thread may record, the ops thread renders. */
typedef struct adi_metrics adi_metrics_t;

adi_metrics_t *adi_metrics_new(const char *service);
void adi_metrics_free(adi_metrics_t *m);

/**
 * Records one finished request of operation `op` (or route) with HTTP-like `status` that took
 * `seconds`: adi_requests_total{op,status}, adi_errors_total{op} for status >= 500, and the
 * latency histogram adi_request_duration_seconds{op}. `op` is copied on first use.
 */
void adi_metrics_observe(adi_metrics_t *m, const char *op, int status, double seconds);

/** Adds `v` to counter `name` with the label set `labels` (e.g. `stream="svc:{auth}:req"`). */
void adi_metrics_count(adi_metrics_t *m, const char *name, const char *labels, double v);

/** Sets gauge `name{labels}` to `v` (backlog, pending counts). */
void adi_metrics_gauge(adi_metrics_t *m, const char *name, const char *labels, double v);

/** Appends the Prometheus text exposition of every metric to `out`. */
void adi_metrics_render(adi_metrics_t *m, adi_buf_t *out);

/* ---- ops server ------------------------------------------------------------------------- */

/**
 * Readiness check run on the ops thread for /readyz: returns true when ready, else false with a
 * short reason in `why` (at most 128 bytes, no secrets). Must not block for long (use timeouts).
 */
typedef bool (*adi_ops_ready_fn)(void *arg, char why[128]);

typedef struct adi_ops adi_ops_t;

/**
 * Starts the ops server on host:port (port 0 picks a free one, see adi_ops_port) in its own thread.
 * /healthz answers 200 while the process runs; /readyz asks `ready`; /metrics renders `m`.
 * Errors: ADI_UNAVAILABLE when the port cannot be bound.
 */
adi_err adi_ops_start(const char *host, int port, adi_metrics_t *m, adi_ops_ready_fn ready,
                      void *arg, adi_ops_t **out, adi_error_t *err);
/** The bound port. */
int adi_ops_port(const adi_ops_t *ops);
/** Stops the thread and frees the server. */
void adi_ops_stop(adi_ops_t *ops);

#endif
