/* SPDX-License-Identifier: MIT */
/*
 * Core helpers every other library uses: fatal-on-OOM allocation, string slices, the per-message
 * arena (a msgpack_zone), clocks, random ids and assertions.
 */
#ifndef ADI_CORE_H
#define ADI_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "adi/err.h"

/* ---- assertions ------------------------------------------------------------------------- */

/** Aborts with file:line when an invariant is broken. Never used to check input. */
#define ADI_ASSERT(cond) ((cond) ? (void)0 : adi__assert_fail(#cond, __FILE__, __LINE__))
/* SQLite-style markers for defensive branches that should be unreachable. */
#define ADI_ALWAYS(cond) (cond)
#define ADI_NEVER(cond)  (cond)
void adi__assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));

/* ---- memory ----------------------------------------------------------------------------- */

/** malloc/calloc/realloc/strdup that abort with file:line on OOM (OOM is fatal). */
#define adi_xmalloc(n)     adi__xmalloc((n), __FILE__, __LINE__)
#define adi_xcalloc(n, s)  adi__xcalloc((n), (s), __FILE__, __LINE__)
#define adi_xrealloc(p, n) adi__xrealloc((p), (n), __FILE__, __LINE__)
#define adi_xstrdup(s)     adi__xstrdup((s), __FILE__, __LINE__)
void *adi__xmalloc(size_t n, const char *file, int line);
void *adi__xcalloc(size_t n, size_t s, const char *file, int line);
void *adi__xrealloc(void *p, size_t n, const char *file, int line);
char *adi__xstrdup(const char *s, const char *file, int line);
/** Reports an allocation failure of `n` bytes at file:line and aborts. */
void adi__oom(size_t n, const char *file, int line) __attribute__((noreturn));

/* ---- string slices ---------------------------------------------------------------------- */

/** A borrowed byte string; ptr == NULL means "absent". Not NUL-terminated in general. */
typedef struct adi_str {
    const char *ptr; /* first byte, or NULL when absent */
    size_t len;      /* number of bytes */
} adi_str_t;

#define ADI_STR(lit) ((adi_str_t){(lit), sizeof(lit) - 1})
#define ADI_STR_NULL ((adi_str_t){NULL, 0})

/** A slice of a NUL-terminated string (NULL gives ADI_STR_NULL). */
adi_str_t adi_str_c(const char *s);
/** True when both slices hold the same bytes (two absent slices are equal). */
bool adi_str_eq(adi_str_t a, adi_str_t b);
/** True when `a` equals the C string `s`. */
bool adi_str_eq_c(adi_str_t a, const char *s);

/* ---- arena ------------------------------------------------------------------------------ */

/**
 * A per-message arena wrapping msgpack_zone: everything of one request (decoded request, reply,
 * temporaries) lives in it and one adi_pool_dispose frees it all. Handlers never call free.
 * Every successful adi_pool_init gets exactly one adi_pool_dispose.
 */
typedef struct adi_pool {
    void *zone_; /* msgpack_zone *, private */
} adi_pool_t;

void adi_pool_init(adi_pool_t *pool);
void adi_pool_dispose(adi_pool_t *pool);
/** Allocates `n` bytes (aligned for any type, zeroed) that live until dispose. Aborts on OOM. */
void *adi_pool_alloc(adi_pool_t *pool, size_t n);
/** Copies `s` into the pool and NUL-terminates the copy (the slice's len excludes the NUL). */
adi_str_t adi_pool_strdup(adi_pool_t *pool, adi_str_t s);
/** printf into the pool. */
adi_str_t adi_pool_printf(adi_pool_t *pool, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/** Registers `fn(data)` to run at dispose (e.g. to free a jansson value). */
void adi_pool_defer(adi_pool_t *pool, void (*fn)(void *), void *data);

/* ---- growable byte buffer ---------------------------------------------------------------- */

/** A heap byte buffer. _init gives an empty buffer; every _init gets one _dispose. */
typedef struct adi_buf {
    char *data; /* bytes, NUL-terminated after every append (data[len] == 0) when cap > 0 */
    size_t len; /* bytes used */
    size_t cap; /* bytes allocated */
} adi_buf_t;

void adi_buf_init(adi_buf_t *b);
void adi_buf_dispose(adi_buf_t *b);
/** Empties the buffer, keeping its allocation. */
void adi_buf_reset(adi_buf_t *b);
void adi_buf_append(adi_buf_t *b, const void *p, size_t n);
void adi_buf_append_str(adi_buf_t *b, const char *s);
void adi_buf_printf(adi_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Appends `s` JSON-escaped (without quotes); invalid UTF-8 bytes become U+FFFD. */
void adi_buf_append_json_escaped(adi_buf_t *b, const char *s, size_t n);

/* ---- time ------------------------------------------------------------------------------- */

/** Wall clock in milliseconds since the epoch (deadlines travel between hosts in this unit). */
int64_t adi_now_ms(void);
/** Wall clock in microseconds since the epoch. */
int64_t adi_now_us(void);
/** Monotonic milliseconds, for durations. */
int64_t adi_mono_ms(void);
/**
 * Sets the process time zone (an IANA name such as "America/Jamaica", from TIME_ZONE) used by
 * adi_time_iso. Call once at startup, before threads start (it sets TZ and calls tzset).
 */
void adi_time_zone_set(const char *tz);
/**
 * Formats `us` (microseconds since the epoch) as ISO 8601 with microseconds and the UTC offset of
 * the process time zone, e.g. 2026-11-23T19:51:09.354026-05:00 (the Django rendering, Python's
 * isoformat(): a whole second has no fraction, 2026-11-23T19:51:09-05:00).
 * `out` must hold 40 bytes. Returns the length written. Thread-safe.
 */
size_t adi_time_iso(int64_t us, char out[40]);

/* ---- random ids ------------------------------------------------------------------------- */

/** Fills `buf` with `n` cryptographically random bytes (getrandom). Aborts if the kernel fails. */
void adi_random(void *buf, size_t n);
/** Writes a random (v4) UUID in canonical lower-case form plus NUL into `out` (37 bytes). */
void adi_uuid_v4(char out[37]);
/**
 * Writes the 16 bytes `b` as a UUID with the version 4 and RFC 9562 variant bits set, in
 * canonical lower-case form plus NUL, into `out` (37 bytes). For ids derived from a hash: they
 * look like any v4 id to a client's validator.
 */
void adi_uuid_format(const unsigned char b[16], char out[37]);
/** True when `s` is a canonical UUID (8-4-4-4-12 hex digits, either case). */
bool adi_uuid_valid(adi_str_t s);

#endif
