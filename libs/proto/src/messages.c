/* SPDX-License-Identifier: MIT */
/*
 * The descriptor tables of every message and operation, expanded from proto/<x>.def. The struct
 * layouts they describe come from adi/messages.h, so offsets and types cannot drift.
 */
#include <stddef.h>

#include "adi/messages.h"

#define ADI_ENUM(name, ...) const char *const adi_enum_##name[] = {__VA_ARGS__, NULL};
#include "enums.def"
#undef ADI_ENUM

#define ADI_FD_(m, f, type, fmt, flags, min, max, ilen, sub, enums)                                \
    {#f, type, fmt, (flags), (min), (max), (ilen), offsetof(struct m, f), sub, enums},

#define ADI_MSG_BEGIN(m) static const adi_field_desc_t m##__fields[] = {
#define ADI_MSG_END(m)                                                                             \
    {                                                                                              \
        NULL, ADI_FT_STR, ADI_FMT_NONE, 0, 0, 0, 0, 0, NULL, NULL                                  \
    }                                                                                              \
    }                                                                                              \
    ;                                                                                              \
    _Static_assert(m##__f__count <= 32, #m ": _has/_null hold 32 fields at most");                 \
    const adi_msg_desc_t m##__desc = {#m, sizeof(struct m), m##__f__count, m##__fields};
#define ADI_F_STR(m, f, minc, maxc, fmt, flags)                                                    \
    ADI_FD_(m, f, ADI_FT_STR, fmt, flags, minc, maxc, 0, NULL, NULL)
#define ADI_F_ENUM(m, f, enums, flags)                                                             \
    ADI_FD_(m, f, ADI_FT_STR, ADI_FMT_ENUM, flags, 1, 64, 0, NULL, enums)
#define ADI_F_INT(m, f, minv, maxv, flags)                                                         \
    ADI_FD_(m, f, ADI_FT_INT, ADI_FMT_NONE, flags, minv, maxv, 0, NULL, NULL)
#define ADI_F_BOOL(m, f, flags) ADI_FD_(m, f, ADI_FT_BOOL, ADI_FMT_NONE, flags, 0, 1, 0, NULL, NULL)
#define ADI_F_MSG(m, f, sub, flags)                                                                \
    ADI_FD_(m, f, ADI_FT_MSG, ADI_FMT_NONE, flags, 0, 0, 0, &sub##__desc, NULL)
#define ADI_F_LIST(m, f, sub, maxn, flags)                                                         \
    ADI_FD_(m, f, ADI_FT_LIST, ADI_FMT_NONE, flags, 0, maxn, 0, &sub##__desc, NULL)
#define ADI_F_STRLIST(m, f, maxn, maxc, flags)                                                     \
    ADI_FD_(m, f, ADI_FT_STRLIST, ADI_FMT_NONE, flags, 0, maxn, maxc, NULL, NULL)
#define ADI_F_RAW(m, f, maxb, flags)                                                               \
    ADI_FD_(m, f, ADI_FT_RAW, ADI_FMT_NONE, flags, 0, maxb, 0, NULL, NULL)
#include "messages.def"
#undef ADI_MSG_BEGIN
#undef ADI_MSG_END
#undef ADI_F_STR
#undef ADI_F_ENUM
#undef ADI_F_INT
#undef ADI_F_BOOL
#undef ADI_F_MSG
#undef ADI_F_LIST
#undef ADI_F_STRLIST
#undef ADI_F_RAW

#define ADI_OP(name, wire, svc, req, rep, flags)                                                   \
    const adi_op_desc_t adi_op_##name = {wire, svc, &req##__desc, &rep##__desc, flags};
#include "ops.def"
#undef ADI_OP

const adi_op_desc_t *const adi_ops_all[] = {
#define ADI_OP(name, wire, svc, req, rep, flags) &adi_op_##name,
#include "ops.def"
#undef ADI_OP
    NULL,
};
