/* SPDX-License-Identifier: MIT */
/*
 * Structured logging: one JSON object per line on stdout with ts, level, service, event,
 * request_id, tenant_id, op, duration_ms and msg. The level is tested before the arguments are
 * evaluated. Libraries return errors and do not log them; the boundary that handles an error logs.
 */
#ifndef ADI_LOG_H
#define ADI_LOG_H

#include <stdint.h>

typedef enum adi_log_level {
    ADI_LOG_DEBUG = 0,
    ADI_LOG_INFO = 1,
    ADI_LOG_WARN = 2,
    ADI_LOG_ERROR = 3,
} adi_log_level;

/**
 * The context of a log line. Every pointer is borrowed for the duration of the call; NULL members
 * are omitted from the line. `start_ms` (adi_mono_ms) > 0 adds duration_ms.
 */
typedef struct adi_logctx {
    const char *request_id; /* correlation id of the request being served */
    const char *tenant_id;  /* tenant of the principal, if any */
    const char *op;         /* operation name (auth.login, ...) */
    int64_t start_ms;       /* monotonic start of the request, 0 for none */
    const char *trace_id;   /* the client's X-Request-ID carried along every hop, if any */
} adi_logctx_t;

/** Sets the service name and minimum level for the process (call once at startup). */
void adi_log_init(const char *service, adi_log_level min_level);
/** Parses "debug"/"info"/"warn"/"error"; returns -1 for anything else. */
int adi_log_level_parse(const char *s);
/** Current minimum level. */
adi_log_level adi_log_min_level(void);

/**
 * Writes one line. `event` is a stable id (bus.reclaimed, db.reconnect) alerts can key on. The
 * message is JSON-escaped. Never pass secrets: callers use "[redacted]" instead.
 */
void adi_log_write(const adi_logctx_t *ctx, adi_log_level level, const char *event, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

#define ADI_LOG(ctx, level, event, ...)                                                            \
    do {                                                                                           \
        if ((level) >= adi_log_min_level())                                                        \
            adi_log_write((ctx), (level), (event), __VA_ARGS__);                                   \
    } while (0)

#endif
