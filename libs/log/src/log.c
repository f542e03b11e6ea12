/* SPDX-License-Identifier: MIT */
/*
 * JSON log lines on stdout. Each line is built in a stack buffer and written with one write(2),
 * so lines from concurrent threads never interleave. The service name and level are set once at
 * startup; everything request-specific comes from the caller's adi_logctx_t.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adi/core.h"
#include "adi/log.h"

static char service_name[64] = "adi";
static adi_log_level min_level = ADI_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void adi_log_init(const char *service, adi_log_level level)
{
    snprintf(service_name, sizeof(service_name), "%s", service);
    min_level = level;
}

int adi_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

adi_log_level adi_log_min_level(void)
{
    return min_level;
}

static void field(adi_buf_t *b, const char *key, const char *val)
{
    if (val == NULL)
        return;
    adi_buf_printf(b, ",\"%s\":\"", key);
    adi_buf_append_json_escaped(b, val, strlen(val));
    adi_buf_append(b, "\"", 1);
}

void adi_log_write(const adi_logctx_t *ctx, adi_log_level level, const char *event, const char *fmt,
                   ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        msg[0] = '\0';

    char ts[40];
    adi_time_iso(adi_now_us(), ts);

    adi_buf_t b;
    adi_buf_init(&b);
    adi_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\"", ts,
                   level_names[(unsigned)level < 4 ? level : 3]);
    field(&b, "service", service_name);
    field(&b, "event", event);
    if (ctx != NULL) {
        field(&b, "request_id", ctx->request_id);
        field(&b, "trace_id", ctx->trace_id);
        field(&b, "tenant_id", ctx->tenant_id);
        field(&b, "op", ctx->op);
        if (ctx->start_ms > 0)
            adi_buf_printf(&b, ",\"duration_ms\":%lld", (long long)(adi_mono_ms() - ctx->start_ms));
    }
    field(&b, "msg", msg);
    adi_buf_append(&b, "}\n", 2);

    size_t off = 0;
    while (off < b.len) {
        ssize_t w = write(STDOUT_FILENO, b.data + off, b.len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    adi_buf_dispose(&b);
}
