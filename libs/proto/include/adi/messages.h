/* SPDX-License-Identifier: MIT */
/*
 * The generated message types. Includes proto/messages.def (the list of every message) several
 * times with different definitions of the ADI_MSG_BEGIN / ADI_F_* / ADI_MSG_END macros:
 *   pass 1: forward typedefs, so messages can nest in any order;
 *   pass 2: the field index constants <msg>__f_<field> used by ADI_HAS / ADI_IS_NULL;
 *   pass 3: the structs;
 *   pass 4: the descriptor declarations <msg>__desc (defined in libs/proto/src/messages.c).
 * Then proto/ops.def gives one `adi_op_<name>` descriptor per operation.
 */
#ifndef ADI_MESSAGES_H
#define ADI_MESSAGES_H

#include "adi/proto.h"

/* Enumerations used by ADI_F_ENUM: ADI_ENUM(name, "A", "B") -> adi_enum_<name>[] = {"A","B",NULL}.
 */
#define ADI_ENUM(name, ...) extern const char *const adi_enum_##name[];
#include "enums.def"
#undef ADI_ENUM

#define ADI_F_NONE_(...)

/* pass 1 */
#define ADI_MSG_BEGIN(m) typedef struct m m;
#define ADI_MSG_END(m)
#define ADI_F_STR     ADI_F_NONE_
#define ADI_F_ENUM    ADI_F_NONE_
#define ADI_F_INT     ADI_F_NONE_
#define ADI_F_BOOL    ADI_F_NONE_
#define ADI_F_MSG     ADI_F_NONE_
#define ADI_F_LIST    ADI_F_NONE_
#define ADI_F_STRLIST ADI_F_NONE_
#define ADI_F_RAW     ADI_F_NONE_
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

/* pass 2 */
#define ADI_MSG_BEGIN(m) enum {
#define ADI_MSG_END(m)                                                                             \
    m##__f__count                                                                                  \
    }                                                                                              \
    ;
#define ADI_F_STR(m, f, ...)     m##__f_##f,
#define ADI_F_ENUM(m, f, ...)    m##__f_##f,
#define ADI_F_INT(m, f, ...)     m##__f_##f,
#define ADI_F_BOOL(m, f, ...)    m##__f_##f,
#define ADI_F_MSG(m, f, ...)     m##__f_##f,
#define ADI_F_LIST(m, f, ...)    m##__f_##f,
#define ADI_F_STRLIST(m, f, ...) m##__f_##f,
#define ADI_F_RAW(m, f, ...)     m##__f_##f,
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

/* pass 3 */
#define ADI_MSG_BEGIN(m)                                                                           \
    struct m {                                                                                     \
        ADI_MSG_HEADER_
#define ADI_MSG_END(m)                                                                             \
    }                                                                                              \
    ;
#define ADI_F_STR(m, f, ...)      adi_str_t f;
#define ADI_F_ENUM(m, f, ...)     adi_str_t f;
#define ADI_F_INT(m, f, ...)      int64_t f;
#define ADI_F_BOOL(m, f, ...)     bool f;
#define ADI_F_MSG(m, f, sub, ...) struct sub *f;
#define ADI_F_LIST(m, f, sub, ...)                                                                 \
    struct {                                                                                       \
        size_t n;                                                                                  \
        struct sub *items;                                                                         \
    } f;
#define ADI_F_STRLIST(m, f, ...) adi_strlist_t f;
#define ADI_F_RAW(m, f, ...)     adi_str_t f;
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

/* pass 4 */
#define ADI_MSG_BEGIN(m) extern const adi_msg_desc_t m##__desc;
#define ADI_MSG_END(m)
#define ADI_F_STR     ADI_F_NONE_
#define ADI_F_ENUM    ADI_F_NONE_
#define ADI_F_INT     ADI_F_NONE_
#define ADI_F_BOOL    ADI_F_NONE_
#define ADI_F_MSG     ADI_F_NONE_
#define ADI_F_LIST    ADI_F_NONE_
#define ADI_F_STRLIST ADI_F_NONE_
#define ADI_F_RAW     ADI_F_NONE_
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

/* operations: extern const adi_op_desc_t adi_op_<name>; */
#define ADI_OP(name, wire, svc, req, rep, flags) extern const adi_op_desc_t adi_op_##name;
#include "ops.def"
#undef ADI_OP

/** Every operation of proto/ops.def, NULL-terminated. */
extern const adi_op_desc_t *const adi_ops_all[];

#endif
