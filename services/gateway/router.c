/* SPDX-License-Identifier: MIT */
/*
 * Route compilation and matching. Each row's pattern is split into segments and inserted into a
 * trie whose nodes hold their literal children, at most one {param} child and, per method, the row
 * that ends there. Matching splits the request path the same way (ignoring one trailing slash) and
 * walks the trie depth-first, literals before the parameter child, so /api/users/invite/ beats
 * /api/users/{id}/. The first node that ends the path and has any route decides: the method's row,
 * or 405 with the node's methods. The walk is bounded by GW_MAX_SEGMENTS.
 */
#include <stdlib.h>
#include <string.h>

#include "gw_router.h"

/* One literal edge of the trie. */
typedef struct edge {
    adi_str_t seg; /* literal segment text (points into the route table's pattern) */
    size_t child;  /* index of the child node */
} edge_t;

/* One trie node: the routes ending here and the edges to deeper segments. */
typedef struct node {
    edge_t *lits;           /* literal children, in insertion order */
    size_t nlits;           /* used entries of lits */
    size_t param;           /* index of the {param} child, 0 when none (root is never one) */
    int route[GW_M__COUNT]; /* row index per method ending here, -1 for none */
    unsigned mask;          /* methods with a row here */
} node_t;

struct gw_router {
    node_t *nodes;          /* nodes[0] is the root */
    size_t nnodes;          /* used nodes */
    const gw_route_t *rows; /* the table (borrowed, static) */
    size_t nrows;           /* its length */
};

static const char *const method_names[GW_M__COUNT] = {
    [GW_M_GET] = "GET",         [GW_M_POST] = "POST",     [GW_M_PUT] = "PUT",
    [GW_M_PATCH] = "PATCH",     [GW_M_DELETE] = "DELETE", [GW_M_HEAD] = "HEAD",
    [GW_M_OPTIONS] = "OPTIONS",
};

gw_method_t gw_method_parse(adi_str_t s)
{
    for (int m = 0; m < GW_M__COUNT; m++)
        if (adi_str_eq_c(s, method_names[m]))
            return (gw_method_t)m;
    return GW_M_OTHER;
}

const char *gw_method_name(gw_method_t m)
{
    return (m >= 0 && m < GW_M__COUNT) ? method_names[m] : "OTHER";
}

size_t gw_allow_header(unsigned mask, char out[64])
{
    size_t len = 0;
    if (mask & (1u << GW_M_GET))
        mask |= 1u << GW_M_HEAD;
    mask |= 1u << GW_M_OPTIONS;
    out[0] = '\0';
    for (int m = 0; m < GW_M__COUNT; m++) {
        if (!(mask & (1u << m)))
            continue;
        size_t n = strlen(method_names[m]);
        if (len > 0) {
            memcpy(out + len, ", ", 2);
            len += 2;
        }
        memcpy(out + len, method_names[m], n);
        len += n;
        out[len] = '\0';
    }
    return len;
}

/*
 * Splits `path` into at most GW_MAX_SEGMENTS segments. The path must start with '/'; one trailing
 * slash is ignored ("/" itself has no segment). Returns the count, or -1 when the path is not
 * splittable (no leading slash, an empty segment, too many segments).
 */
static int split(adi_str_t path, adi_str_t segs[GW_MAX_SEGMENTS])
{
    if (path.ptr == NULL || path.len == 0 || path.ptr[0] != '/')
        return -1;
    const char *p = path.ptr + 1;
    const char *end = path.ptr + path.len;
    if (end > p && end[-1] == '/')
        end--;
    int n = 0;
    while (p < end) {
        const char *s = memchr(p, '/', (size_t)(end - p));
        const char *e = s ? s : end;
        if (e == p || n == GW_MAX_SEGMENTS)
            return -1;
        segs[n++] = (adi_str_t){p, (size_t)(e - p)};
        p = e + 1;
        if (s != NULL && p == end)
            return -1; /* "a//" after trimming one slash: an empty last segment */
    }
    return n;
}

static bool is_param(adi_str_t seg)
{
    return seg.len >= 2 && seg.ptr[0] == '{' && seg.ptr[seg.len - 1] == '}';
}

static bool param_name_valid(adi_str_t seg)
{
    if (seg.len < 3 || seg.len > 66)
        return false;
    for (size_t i = 1; i + 1 < seg.len; i++) {
        char c = seg.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    return true;
}

static size_t new_node(gw_router_t *r)
{
    r->nodes = adi_xrealloc(r->nodes, (r->nnodes + 1) * sizeof(node_t));
    node_t *n = &r->nodes[r->nnodes];
    memset(n, 0, sizeof(*n));
    for (int m = 0; m < GW_M__COUNT; m++)
        n->route[m] = -1;
    return r->nnodes++;
}

static size_t child_literal(gw_router_t *r, size_t at, adi_str_t seg)
{
    node_t *n = &r->nodes[at];
    for (size_t i = 0; i < n->nlits; i++)
        if (adi_str_eq(n->lits[i].seg, seg))
            return n->lits[i].child;
    size_t c = new_node(r); /* may move r->nodes */
    n = &r->nodes[at];
    n->lits = adi_xrealloc(n->lits, (n->nlits + 1) * sizeof(edge_t));
    n->lits[n->nlits++] = (edge_t){seg, c};
    return c;
}

static size_t child_param(gw_router_t *r, size_t at)
{
    if (r->nodes[at].param == 0) {
        size_t c = new_node(r);
        r->nodes[at].param = c;
    }
    return r->nodes[at].param;
}

void gw_router_free(gw_router_t *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nnodes; i++)
        free(r->nodes[i].lits);
    free(r->nodes);
    free(r);
}

adi_err gw_router_new(const gw_route_t *rows, size_t n, gw_router_t **out, adi_error_t *err)
{
    *out = NULL;
    gw_router_t *r = adi_xcalloc(1, sizeof(*r));
    r->rows = rows;
    r->nrows = n;
    new_node(r);
    for (size_t i = 0; i < n; i++) {
        const gw_route_t *row = &rows[i];
        adi_str_t segs[GW_MAX_SEGMENTS];
        int ns = split(adi_str_c(row->pattern), segs);
        if (ns < 0 || row->method < 0 || row->method >= GW_M_HEAD) {
            gw_router_free(r);
            return adi_error_set(err, ADI_INVALID, "route %zu (%s): bad pattern or method", i,
                                 row->pattern ? row->pattern : "NULL");
        }
        size_t at = 0;
        int nparams = 0;
        for (int s = 0; s < ns; s++) {
            if (is_param(segs[s])) {
                if (!param_name_valid(segs[s]) || ++nparams > GW_MAX_PATH_PARAM) {
                    gw_router_free(r);
                    return adi_error_set(err, ADI_INVALID, "route %zu (%s): bad {param}", i,
                                         row->pattern);
                }
                at = child_param(r, at);
            } else if (memchr(segs[s].ptr, '{', segs[s].len) ||
                       memchr(segs[s].ptr, '}', segs[s].len)) {
                gw_router_free(r);
                return adi_error_set(err, ADI_INVALID, "route %zu (%s): bad segment", i,
                                     row->pattern);
            } else {
                at = child_literal(r, at, segs[s]);
            }
        }
        node_t *end = &r->nodes[at];
        if (end->route[row->method] >= 0) {
            int first = end->route[row->method];
            gw_router_free(r);
            return adi_error_set(err, ADI_INVALID, "route %zu (%s %s) duplicates route %d", i,
                                 method_names[row->method], row->pattern, first);
        }
        end->route[row->method] = (int)i;
        end->mask |= 1u << row->method;
    }
    *out = r;
    return ADI_OK;
}

/* Depth-first walk; on success fills which[] (param positions) and returns the end node. */
static const node_t *walk(const gw_router_t *r, size_t at, const adi_str_t *segs, int ns, int i,
                          int *pidx, int *np)
{
    const node_t *n = &r->nodes[at];
    if (i == ns)
        return n->mask ? n : NULL;
    for (size_t k = 0; k < n->nlits; k++) {
        if (adi_str_eq(n->lits[k].seg, segs[i])) {
            const node_t *f = walk(r, n->lits[k].child, segs, ns, i + 1, pidx, np);
            if (f != NULL)
                return f;
            break;
        }
    }
    if (n->param != 0 && *np < GW_MAX_PATH_PARAM) {
        int saved = *np;
        pidx[(*np)++] = i;
        const node_t *f = walk(r, n->param, segs, ns, i + 1, pidx, np);
        if (f != NULL)
            return f;
        *np = saved;
    }
    return NULL;
}

gw_match_result_t gw_router_match(const gw_router_t *r, gw_method_t method, adi_str_t path,
                                  gw_match_t *out)
{
    memset(out, 0, sizeof(*out));
    adi_str_t segs[GW_MAX_SEGMENTS];
    int ns = split(path, segs);
    if (ns < 0)
        return GW_MATCH_NOT_FOUND;
    int pidx[GW_MAX_PATH_PARAM];
    int np = 0;
    const node_t *n = walk(r, 0, segs, ns, 0, pidx, &np);
    if (n == NULL)
        return GW_MATCH_NOT_FOUND;
    out->allowed = n->mask;
    if (n->mask & (1u << GW_M_GET))
        out->allowed |= 1u << GW_M_HEAD;
    gw_method_t m = method == GW_M_HEAD ? GW_M_GET : method;
    if (m >= GW_M_HEAD || n->route[m] < 0)
        return GW_MATCH_METHOD;
    out->index = (size_t)n->route[m];
    out->route = &r->rows[out->index];
    /* Name the captures from the route's own pattern: rows sharing a node may name them apart. */
    adi_str_t psegs[GW_MAX_SEGMENTS];
    int pn = split(adi_str_c(out->route->pattern), psegs);
    int k = 0;
    for (int s = 0; s < pn && k < np; s++) {
        if (!is_param(psegs[s]))
            continue;
        out->params[k].name = (adi_str_t){psegs[s].ptr + 1, psegs[s].len - 2};
        out->params[k].value = segs[pidx[k]];
        k++;
    }
    out->nparams = (size_t)k;
    return GW_MATCH_OK;
}
