/* SPDX-License-Identifier: MIT */
/*
 * Limits of the metrics registry shared by the ops library's files and its tests. Not for use
 * outside libs/ops (and tests/unit/ops, which checks the bounds).
 */
#ifndef ADI_OPS_INT_H
#define ADI_OPS_INT_H

/* Distinct operations with a latency histogram; later ones are dropped. */
#define ADI_OPS__MAX_OPS 256
/*
 * Distinct series of every kind together: one per operation histogram, one per (op, status)
 * request counter and one per (name, labels) counter or gauge. Past it, new series are dropped
 * and counted in adi_metrics_dropped_total.
 */
#define ADI_OPS__MAX_SERIES 2048
/* Longest accepted metric name, label set and operation name. */
#define ADI_OPS__MAX_NAME   128
#define ADI_OPS__MAX_LABELS 512
#define ADI_OPS__MAX_OP     128

#endif
