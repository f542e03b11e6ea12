-- SPDX-License-Identifier: MIT
--
-- Users, their roles per tenant and the refresh-token families of the auth service.
--
-- Every table is tenant-scoped with row-level security enabled AND forced (so the table owner is
-- bound too), on the setting app.tenant_id that libs/svc sets from the principal for each
-- transaction: no tenant set => no rows, never an error. A superuser may have no tenant at all
-- (tenant_id NULL); such rows are visible only when the transaction explicitly selects the
-- "no tenant" scope, the nil UUID 00000000-0000-0000-0000-000000000000, which no real row uses.
--
-- Login and refresh have to find a user or a token before any tenant is known: the SECURITY
-- DEFINER functions auth.login_lookup(email) and auth.refresh_lookup(jti), owned by the migration
-- role, return just what is needed to pick the tenant; the service then sets it and works under
-- row-level security for the rest of the transaction.
--
-- Safe to apply twice.

CREATE TABLE IF NOT EXISTS auth.users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NULL,
    email text NOT NULL,
    password text NOT NULL,
    first_name text NOT NULL DEFAULT '',
    last_name text NOT NULL DEFAULT '',
    timezone text NOT NULL DEFAULT 'America/Jamaica',
    is_active boolean NOT NULL DEFAULT true,
    is_superuser boolean NOT NULL DEFAULT false,
    token_version bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_len CHECK (length(email) BETWEEN 1 AND 254),
    CONSTRAINT users_names_len CHECK (length(first_name) <= 150 AND length(last_name) <= 150),
    CONSTRAINT users_timezone_len CHECK (length(timezone) BETWEEN 1 AND 64),
    -- Only a superuser may live outside every tenant; the nil UUID is the "no tenant" scope.
    CONSTRAINT users_tenant_required CHECK (tenant_id IS NOT NULL OR is_superuser),
    CONSTRAINT users_tenant_not_nil CHECK (tenant_id <> '00000000-0000-0000-0000-000000000000'),
    CONSTRAINT users_token_version_nonneg CHECK (token_version >= 0),
    -- Target of user_roles' composite key, so a role can only name its user's own tenant.
    CONSTRAINT users_id_tenant_key UNIQUE (id, tenant_id)
);

-- E-mail unique within a tenant, case-insensitively; tenant-less superusers form one more "tenant".
CREATE UNIQUE INDEX IF NOT EXISTS users_tenant_email_key
    ON auth.users (tenant_id, lower(email)) NULLS NOT DISTINCT;
-- Login looks an e-mail up across tenants.
CREATE INDEX IF NOT EXISTS users_email_idx ON auth.users (lower(email));

CREATE TABLE IF NOT EXISTS auth.user_roles (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    role text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_roles_role_check CHECK (role IN ('ADMIN', 'ANALYST', 'VIEWER')),
    CONSTRAINT user_roles_user_tenant_role_key UNIQUE (user_id, tenant_id, role),
    CONSTRAINT user_roles_user_fk FOREIGN KEY (user_id, tenant_id)
        REFERENCES auth.users (id, tenant_id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS user_roles_tenant_idx ON auth.user_roles (tenant_id, created_at);

-- One row per refresh token ever issued. A family is the chain of rotations of one login.
CREATE TABLE IF NOT EXISTS auth.refresh_tokens (
    jti text PRIMARY KEY,
    family uuid NOT NULL,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    tenant_id uuid NULL,
    issued_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    rotated_at timestamptz NULL,  -- when it was exchanged for its successor
    replaced_by text NULL,        -- the successor's jti
    revoked_at timestamptz NULL,  -- set for the whole family when a rotated token is reused
    CONSTRAINT refresh_tokens_jti_format CHECK (jti ~ '^[0-9a-f]{32}$')
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family_idx ON auth.refresh_tokens (family);
CREATE INDEX IF NOT EXISTS refresh_tokens_user_idx ON auth.refresh_tokens (user_id, expires_at);

-- ---- row-level security ------------------------------------------------------------------

ALTER TABLE auth.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.users FORCE ROW LEVEL SECURITY;
ALTER TABLE auth.user_roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.user_roles FORCE ROW LEVEL SECURITY;
ALTER TABLE auth.refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.refresh_tokens FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS users_tenant ON auth.users;
CREATE POLICY users_tenant ON auth.users
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
DROP POLICY IF EXISTS users_no_tenant ON auth.users;
CREATE POLICY users_no_tenant ON auth.users
    USING (tenant_id IS NULL
           AND current_setting('app.tenant_id', true) = '00000000-0000-0000-0000-000000000000')
    WITH CHECK (tenant_id IS NULL
                AND current_setting('app.tenant_id', true) = '00000000-0000-0000-0000-000000000000');

DROP POLICY IF EXISTS user_roles_tenant ON auth.user_roles;
CREATE POLICY user_roles_tenant ON auth.user_roles
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

DROP POLICY IF EXISTS refresh_tokens_tenant ON auth.refresh_tokens;
CREATE POLICY refresh_tokens_tenant ON auth.refresh_tokens
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
DROP POLICY IF EXISTS refresh_tokens_no_tenant ON auth.refresh_tokens;
CREATE POLICY refresh_tokens_no_tenant ON auth.refresh_tokens
    USING (tenant_id IS NULL
           AND current_setting('app.tenant_id', true) = '00000000-0000-0000-0000-000000000000')
    WITH CHECK (tenant_id IS NULL
                AND current_setting('app.tenant_id', true) = '00000000-0000-0000-0000-000000000000');

-- The lookup functions run as their owner, the migration role. A superuser (or BYPASSRLS role)
-- reads through row-level security anyway; any other owner is bound by the forced policies and
-- needs a read-only policy of its own for the two lookups to see anything.
DO $$
BEGIN
    EXECUTE format('DROP POLICY IF EXISTS users_definer_read ON auth.users');
    EXECUTE format('DROP POLICY IF EXISTS refresh_tokens_definer_read ON auth.refresh_tokens');
    IF NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('CREATE POLICY users_definer_read ON auth.users FOR SELECT TO %I '
                       'USING (true)', current_user);
        EXECUTE format('CREATE POLICY refresh_tokens_definer_read ON auth.refresh_tokens '
                       'FOR SELECT TO %I USING (true)', current_user);
    END IF;
END
$$;

-- ---- lookups before the tenant is known ---------------------------------------------------

-- The accounts an e-mail may log in to (one per tenant at most), oldest first.
CREATE OR REPLACE FUNCTION auth.login_lookup(p_email text)
RETURNS TABLE (id uuid, tenant_id uuid, email text, password text, first_name text,
               last_name text, timezone text, is_active boolean, is_superuser boolean,
               token_version bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.id, u.tenant_id, u.email, u.password, u.first_name, u.last_name, u.timezone,
           u.is_active, u.is_superuser, u.token_version
      FROM auth.users u
     WHERE lower(u.email) = lower(p_email)
     ORDER BY u.created_at, u.id
     LIMIT 8
$$;

-- The tenant and user of a refresh token, so the service can scope the rest of the refresh.
CREATE OR REPLACE FUNCTION auth.refresh_lookup(p_jti text)
RETURNS TABLE (tenant_id uuid, user_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.tenant_id, t.user_id FROM auth.refresh_tokens t WHERE t.jti = p_jti
$$;

REVOKE ALL ON FUNCTION auth.login_lookup(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.refresh_lookup(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.login_lookup(text) TO adi_auth;
GRANT EXECUTE ON FUNCTION auth.refresh_lookup(text) TO adi_auth;

-- ---- grants: the service's role uses these tables, owns none ------------------------------

GRANT SELECT, INSERT, UPDATE, DELETE ON auth.users, auth.user_roles, auth.refresh_tokens
    TO adi_auth;
