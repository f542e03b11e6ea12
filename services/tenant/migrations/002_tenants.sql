-- SPDX-License-Identifier: MIT
--
-- Tenants, invitations and the audit log of the tenant service.
--
-- Every table has row-level security enabled AND forced (so the table owner is bound too) on the
-- setting app.tenant_id that libs/svc sets from the principal (or the audit event) for each
-- transaction: no tenant set => no rows, never an error. A tenant row is visible to its own
-- tenant only (policy on id), invitations and audit entries by their tenant_id. The policies are
-- named adi_tenant_isolation, the name `adi-admin enable-rls` uses, so that command finds them in
-- place.
--
-- Two things must happen before any tenant is known, through SECURITY DEFINER functions owned by
-- the migration role, with a pinned search_path:
--   tenant.claim_invitation(token)  accept-invite: claims the invitation atomically (the UPDATE
--                                   takes the row lock, so of concurrent claims exactly one wins;
--                                   the others wait and then see it accepted) and says why a
--                                   token cannot be claimed;
--   tenant.tenants_all()            the superuser's view of every tenant.
--
-- Safe to apply twice.

CREATE TABLE IF NOT EXISTS tenant.tenants (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenants_name_len CHECK (length(name) BETWEEN 1 AND 255)
);
CREATE INDEX IF NOT EXISTS tenants_created_at_idx ON tenant.tenants (created_at, id);

CREATE TABLE IF NOT EXISTS tenant.invitations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenant.tenants (id) ON DELETE CASCADE,
    email text NOT NULL,
    role text NULL,
    -- 32 random bytes, base64url without padding. Returned once to the inviting admin (API.md)
    -- and mailed by the task runner; never logged.
    token text NOT NULL,
    invited_by uuid NULL,          -- the inviting user (auth.users id), NULL when unknown
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL DEFAULT now() + interval '7 days',
    accepted_at timestamptz NULL,  -- set by the claim, in the accepting transaction
    accepted_user_id uuid NULL,    -- the user the acceptance created
    CONSTRAINT invitations_token_key UNIQUE (token),
    CONSTRAINT invitations_token_format CHECK (token ~ '^[A-Za-z0-9_-]{43}$'),
    CONSTRAINT invitations_email_len CHECK (length(email) BETWEEN 1 AND 254),
    CONSTRAINT invitations_role_check CHECK (role IN ('ADMIN', 'ANALYST', 'VIEWER'))
);
CREATE INDEX IF NOT EXISTS invitations_tenant_idx ON tenant.invitations (tenant_id, created_at);

-- One row per ev:audit event of any service; the event id makes the consumer's insert
-- idempotent. No foreign key to tenants: the log outlives what it describes.
CREATE TABLE IF NOT EXISTS tenant.audit_log (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    user_id uuid NULL,
    user_email text NOT NULL DEFAULT '',
    action text NOT NULL,
    resource_type text NOT NULL,
    resource_id text NOT NULL DEFAULT '',
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_log_metadata_object CHECK (jsonb_typeof(metadata) = 'object')
);
CREATE INDEX IF NOT EXISTS audit_log_tenant_created_idx
    ON tenant.audit_log (tenant_id, created_at DESC, id DESC);

-- ---- row-level security ------------------------------------------------------------------

ALTER TABLE tenant.tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant.tenants FORCE ROW LEVEL SECURITY;
ALTER TABLE tenant.invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant.invitations FORCE ROW LEVEL SECURITY;
ALTER TABLE tenant.audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant.audit_log FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS adi_tenant_isolation ON tenant.tenants;
CREATE POLICY adi_tenant_isolation ON tenant.tenants
    USING (id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (id = nullif(current_setting('app.tenant_id', true), '')::uuid);

DROP POLICY IF EXISTS adi_tenant_isolation ON tenant.invitations;
CREATE POLICY adi_tenant_isolation ON tenant.invitations
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

DROP POLICY IF EXISTS adi_tenant_isolation ON tenant.audit_log;
CREATE POLICY adi_tenant_isolation ON tenant.audit_log
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

-- The definer functions run as their owner, the migration role. A superuser (or BYPASSRLS role)
-- reads through row-level security anyway; any other owner is bound by the forced policies and
-- needs policies of its own: the claim reads and updates invitations, the listing reads tenants.
DO $$
BEGIN
    EXECUTE 'DROP POLICY IF EXISTS definer_claim ON tenant.invitations';
    EXECUTE 'DROP POLICY IF EXISTS definer_read ON tenant.tenants';
    IF NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('CREATE POLICY definer_claim ON tenant.invitations TO %I '
                       'USING (true) WITH CHECK (true)', current_user);
        EXECUTE format('CREATE POLICY definer_read ON tenant.tenants FOR SELECT TO %I '
                       'USING (true)', current_user);
    END IF;
END
$$;

-- ---- functions used before the tenant is known --------------------------------------------

-- Claims the invitation of `p_token` for the calling transaction: marks it accepted (the row
-- stays locked until that transaction ends, so a rollback releases the claim) and returns
-- claim_status 'claimed' with the invitation; otherwise one row with claim_status 'invalid'
-- (no such token), 'accepted' or 'expired' and NULLs.
CREATE OR REPLACE FUNCTION tenant.claim_invitation(p_token text)
RETURNS TABLE (claim_status text, invitation_id uuid, invitation_tenant uuid,
               invitation_email text, invitation_role text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    UPDATE tenant.invitations i
       SET accepted_at = now()
     WHERE i.token = p_token AND i.accepted_at IS NULL AND i.expires_at > now()
    RETURNING i.id, i.tenant_id, i.email, i.role INTO r;
    IF FOUND THEN
        RETURN QUERY SELECT 'claimed'::text, r.id, r.tenant_id, r.email, r.role;
        RETURN;
    END IF;
    SELECT i.accepted_at, i.expires_at INTO r FROM tenant.invitations i WHERE i.token = p_token;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'invalid'::text, NULL::uuid, NULL::uuid, NULL::text, NULL::text;
    ELSIF r.accepted_at IS NOT NULL THEN
        RETURN QUERY SELECT 'accepted'::text, NULL::uuid, NULL::uuid, NULL::text, NULL::text;
    ELSE
        RETURN QUERY SELECT 'expired'::text, NULL::uuid, NULL::uuid, NULL::text, NULL::text;
    END IF;
END
$$;

-- Every tenant, oldest first: only for superusers (the service checks the principal).
CREATE OR REPLACE FUNCTION tenant.tenants_all()
RETURNS TABLE (id uuid, name text, created_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.id, t.name, t.created_at FROM tenant.tenants t ORDER BY t.created_at, t.id
$$;

REVOKE ALL ON FUNCTION tenant.claim_invitation(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant.tenants_all() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant.claim_invitation(text) TO adi_tenant;
GRANT EXECUTE ON FUNCTION tenant.tenants_all() TO adi_tenant;

-- ---- grants: the service's role uses these tables, owns none ------------------------------

GRANT SELECT, INSERT, UPDATE, DELETE ON tenant.tenants, tenant.invitations TO adi_tenant;
-- The audit log is append-only for the service.
REVOKE UPDATE, DELETE, TRUNCATE ON tenant.audit_log FROM adi_tenant;
GRANT SELECT, INSERT ON tenant.audit_log TO adi_tenant;
