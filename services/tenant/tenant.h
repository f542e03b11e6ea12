/* SPDX-License-Identifier: MIT */
/*
 * What the tenant service's files share: the service declaration (handler and consumer tables),
 * the client-facing messages, and the helpers the handlers under ops/ are written with: access
 * checks on the principal, moving the transaction's tenant scope, rendering database times,
 * publishing audit events on ev:audit and enqueuing tasks.
 *
 * Handlers run on libs/svc worker threads inside the request's transaction (or, for the audit
 * consumer, the event's); the helpers only use ctx->db, ctx->pool, adi_svc_publish and
 * adi_svc_call, never Redis directly. The service keeps no state of its own.
 */
#ifndef ADI_TENANT_H
#define ADI_TENANT_H

#include <stdbool.h>

#include "adi/svc.h"

/* Client-facing messages (DRF / API.md wording). */
#define TENANT_MSG_NOT_FOUND     "Not found."
#define TENANT_MSG_NOT_ADMIN     "You must be a tenant admin to perform this action."
#define TENANT_MSG_NO_TENANT     "You do not belong to a tenant."
#define TENANT_MSG_BLANK         "This field may not be blank."
#define TENANT_MSG_TOKEN_INVALID "Invalid invitation token."
#define TENANT_MSG_TOKEN_USED    "Invitation has already been accepted."
#define TENANT_MSG_TOKEN_EXPIRED "Invitation has expired."
#define TENANT_MSG_EMAIL_TAKEN   "A user with this email already exists in this tenant."
#define TENANT_MSG_ID_REUSED     "This request id was already used for another request."

/** The consumer group of the audit writer on ev:audit. */
#define TENANT_AUDIT_GROUP "tenant-audit"
/** The task queue invitation mails go to, and the task's name. */
#define TENANT_TASK_QUEUE       "tasks:default"
#define TENANT_TASK_INVITE_MAIL "send_invitation_email"

/** SQL for a timestamptz column as microseconds since the epoch (text), for tenant_iso. */
#define TENANT_US(col) "(extract(epoch FROM " col ") * 1000000)::bigint"

/** The service as main.c runs it and the integration tests build it (name "tenant"). */
extern const adi_svc_def_t tenant_def;

/* Handler rows (ops/tenants.c, ops/invitations.c, ops/audit.c) and the audit consumer. */
ADI_SVC_HANDLER_DECL(tenant_signup_row);
ADI_SVC_HANDLER_DECL(tenant_list_row);
ADI_SVC_HANDLER_DECL(tenant_get_row);
ADI_SVC_HANDLER_DECL(tenant_invite_row);
ADI_SVC_HANDLER_DECL(tenant_accept_invite_row);
ADI_SVC_HANDLER_DECL(tenant_audit_list_row);
ADI_SVC_HANDLER_DECL(tenant_invitation_mail_row); /* ops/invitation_mail.c */
ADI_SVC_CONSUMER_DECL(tenant_audit_consumer);

/** True when the principal may administer its tenant: role ADMIN, or a superuser. */
bool tenant_is_admin(const adi_principal *p);

/** True when the principal is a superuser. */
bool tenant_is_superuser(const adi_principal *p);

/**
 * Points the transaction's row-level security at `tenant_id` (set_config('app.tenant_id', ...,
 * true): until the transaction ends). Errors: as adi_db_exec.
 */
adi_err tenant_scope(adi_ctx_t *ctx, adi_str_t tenant_id, adi_error_t *err);

/**
 * Renders a TENANT_US(...) column value (microseconds since the epoch, as text) as ISO 8601 in
 * TIME_ZONE, in ctx->pool. A NULL value gives ADI_STR_NULL.
 */
adi_str_t tenant_iso(adi_pool_t *pool, adi_str_t us);

/** Renames field errors `from` to `to` in `err` (e.g. "email" to "admin_email"). */
void tenant_rename_field(adi_error_t *err, const char *from, const char *to);

/**
 * Queues an audit entry on ev:audit (sent after the commit, see adi_svc_publish) with a fresh
 * event id and the current time. `user_id` may be ADI_STR_NULL; `meta` may be NULL (no
 * metadata). Borrowed strings need only live until the call returns (the event is encoded here).
 */
void tenant_audit(adi_ctx_t *ctx, adi_str_t tenant_id, adi_str_t user_id, adi_str_t user_email,
                  const char *action, const char *resource_type, adi_str_t resource_id,
                  const tenant_audit_meta *meta);

/** Length of an invitation token: 32 random bytes as unpadded base64url. */
#define TENANT_TOKEN_LEN 43

/**
 * Writes 32 random bytes as unpadded base64url (TENANT_TOKEN_LEN characters plus NUL) into `out`:
 * an invitation token.
 */
void tenant_new_token(char out[TENANT_TOKEN_LEN + 1]);

/**
 * The id of the tenant a signup creates, derived from the request (its id and the client's
 * address, the scope libs/svc keys idempotency on): a redelivered or retried request names the
 * same tenant, so it meets the user that auth.user_provision already stored for it instead of
 * leaving it orphaned. Written in canonical UUID form (adi_uuid_derive) into `out`.
 */
void tenant_signup_id(const adi_ctx_t *ctx, char out[37]);

#endif
