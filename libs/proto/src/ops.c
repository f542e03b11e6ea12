/* SPDX-License-Identifier: MIT */
/*
 * Operation lookup by wire name: an open-addressing hash table over adi_ops_all (proto/ops.def),
 * built once on first use (pthread_once, so any thread may look up first) and read-only after.
 * Dispatch is one hash and usually one comparison, never a chain of strcmp over names.
 */
#include <pthread.h>
#include <string.h>

#include "adi/messages.h"

/* The number of operations, counted from ops.def at compile time. */
enum {
    NOPS = 0
#define ADI_OP(name, wire, svc, req, rep, flags) +1
#include "ops.def"
#undef ADI_OP
};

/* Twice the operations plus one slot, so that probes stay short and a free slot always exists. */
#define NSLOTS (2 * NOPS + 1)

static const adi_op_desc_t *table[NSLOTS]; /* slot -> operation, NULL when free */
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

/* FNV-1a over the name's bytes. */
static size_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return (size_t)(h % NSLOTS);
}

static void build(void)
{
    for (size_t i = 0; adi_ops_all[i] != NULL; i++) {
        const adi_op_desc_t *op = adi_ops_all[i];
        size_t n = strlen(op->name);
        size_t slot = hash(op->name, n);
        while (table[slot] != NULL) {
            /* Two ops with one wire name is a mistake in ops.def, not something to run with. */
            ADI_ASSERT(strcmp(table[slot]->name, op->name) != 0);
            slot = (slot + 1) % NSLOTS;
        }
        table[slot] = op;
    }
}

const adi_op_desc_t *adi_op_find(adi_str_t name)
{
    if (name.ptr == NULL)
        return NULL;
    pthread_once(&table_once, build);
    for (size_t slot = hash(name.ptr, name.len);; slot = (slot + 1) % NSLOTS) {
        const adi_op_desc_t *op = table[slot];
        if (op == NULL)
            return NULL;
        if (strlen(op->name) == name.len && memcmp(op->name, name.ptr, name.len) == 0)
            return op;
    }
}
