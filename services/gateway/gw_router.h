/* SPDX-License-Identifier: MIT */
/*
 * The route table and its matcher. Routes are the rows of routes.def; gw_router_new compiles them
 * into a trie of path segments (a literal child per distinct segment, one parameter child per
 * node), so matching walks the request path once, segment by segment, with no string-compare chain
 * over the rows. A path matches with or without its trailing slash. Pure: no I/O, no h2o.
 */
#ifndef GW_ROUTER_H
#define GW_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adi/core.h"
#include "adi/proto.h"

/** HTTP methods the router knows; bit (1 << m) in method masks. */
typedef enum gw_method {
    GW_M_GET = 0,
    GW_M_POST,
    GW_M_PUT,
    GW_M_PATCH,
    GW_M_DELETE,
    GW_M_HEAD,
    GW_M_OPTIONS,
    GW_M__COUNT,
    GW_M_OTHER = GW_M__COUNT, /* any other method: never routed, answered 405 on known paths */
} gw_method_t;

/** Route-level access requirement (the column exists now; token checks come later). */
typedef enum gw_auth {
    ADI_PUBLIC = 0, /* anyone */
    ADI_AUTH,       /* a valid access token */
    ADI_ADMIN,      /* a valid access token with the ADMIN role */
} gw_auth_t;

/** Routes served inside the gateway instead of being proxied to a service. */
typedef enum gw_local {
    GW_LOCAL_NONE = 0, /* proxied route */
    GW_LOCAL_HEALTH,   /* GET /api/health/: fan-out of sys.health */
    GW_LOCAL_VERSION,  /* GET /api/health/version/ */
    GW_LOCAL_TIMEZONE, /* GET /api/timezone/ */
    GW_LOCAL_ME,       /* GET /api/me/: auth.me and tenant.get, aggregated */
    GW_LOCAL__COUNT,
} gw_local_t;

/** One row of routes.def. */
typedef struct gw_route {
    gw_method_t method;      /* GW_M_GET ... GW_M_DELETE */
    const char *pattern;     /* "/api/users/{id}/": literal segments and {param} captures */
    const adi_op_desc_t *op; /* proxied operation, NULL for a local route */
    const char *service;     /* stream owner for ops answered by every service ("*"), else NULL */
    gw_local_t local;        /* local handler, GW_LOCAL_NONE for a proxied route */
    gw_auth_t auth;          /* who may call it */
    int64_t deadline_ms;     /* 0 = the default REQUEST_TIMEOUT_MS */
} gw_route_t;

/* Helpers for the target column of routes.def. */
#define GW_TARGET_OP(name)         &adi_op_##name, NULL, GW_LOCAL_NONE
#define GW_TARGET_OP_TO(name, svc) &adi_op_##name, (svc), GW_LOCAL_NONE
#define GW_TARGET_LOCAL(name)      NULL, NULL, GW_LOCAL_##name

/** The routes of routes.def, in file order. */
extern const gw_route_t gw_routes[];
extern const size_t gw_routes_count;

#define GW_MAX_SEGMENTS   16 /* path segments a route or request path may have */
#define GW_MAX_PATH_PARAM 8  /* {param} captures per route */

/** A compiled table. */
typedef struct gw_router gw_router_t;

/** The outcome of matching a request line. */
typedef enum gw_match_result {
    GW_MATCH_OK = 0,    /* route found */
    GW_MATCH_NOT_FOUND, /* no route has this path: 404 */
    GW_MATCH_METHOD,    /* the path exists but not for this method: 405 (see allowed) */
} gw_match_result_t;

/** One captured path parameter, still percent-encoded, pointing into the matched path. */
typedef struct gw_path_param {
    adi_str_t name;  /* from the pattern */
    adi_str_t value; /* raw segment of the request path */
} gw_path_param_t;

/** Everything a match reports; slices point into the path and the route table. */
typedef struct gw_match {
    const gw_route_t *route;                   /* the route (GW_MATCH_OK only) */
    size_t index;                              /* its row index in the table */
    unsigned allowed;                          /* mask of methods the path has (HEAD with GET) */
    size_t nparams;                            /* captured parameters */
    gw_path_param_t params[GW_MAX_PATH_PARAM]; /* in pattern order */
} gw_match_t;

/**
 * Compiles `n` rows. Errors (ADI_INVALID, message names the row): a pattern not starting with '/',
 * an empty or malformed segment or {param}, too many segments or params, two rows with the same
 * method and equivalent path. On success `*out` is a new router to free with gw_router_free.
 */
adi_err gw_router_new(const gw_route_t *rows, size_t n, gw_router_t **out, adi_error_t *err);

void gw_router_free(gw_router_t *r);

/**
 * Matches `path` (no query string) for `method`. Literal segments win over {param}s, with
 * backtracking; the first path (literal-first) that names any route decides between OK and 405.
 * HEAD matches GET routes. Never fails on any input: unknown paths are GW_MATCH_NOT_FOUND.
 */
gw_match_result_t gw_router_match(const gw_router_t *r, gw_method_t method, adi_str_t path,
                                  gw_match_t *out);

/** Parses a method token ("GET"); unknown ones give GW_M_OTHER. */
gw_method_t gw_method_parse(adi_str_t s);

/** The canonical name of `m` ("GET"); "OTHER" for GW_M_OTHER. */
const char *gw_method_name(gw_method_t m);

/**
 * Writes the Allow header value for `mask` into `out` (DRF order: GET, POST, PUT, PATCH, DELETE,
 * HEAD, OPTIONS; HEAD follows GET and OPTIONS is always listed). Returns the length.
 */
size_t gw_allow_header(unsigned mask, char out[64]);

#endif
