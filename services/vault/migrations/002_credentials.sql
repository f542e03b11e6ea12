-- SPDX-License-Identifier: MIT
--
-- Per-tenant data keys and the platform credentials they encrypt.
--
-- tenant_keys holds each tenant's data-encryption keys (DEKs) only wrapped by the KMS (bound to
-- the tenant id as encryption context), one row per version; the highest version is the current
-- one. platform_credentials holds each token as one AES-256-GCM "sealed box" (nonce 12 bytes |
-- ciphertext | tag 16 bytes) under the DEK version named by dek_version, with associated data
-- tenant id + credential id + field name, so a box copied into another row or tenant does not
-- open. No plaintext token is ever stored.
--
-- Row-level security is enabled and forced on app.tenant_id like every tenant-scoped table (policy
-- adi_tenant_isolation). Safe to apply twice.

CREATE TABLE IF NOT EXISTS vault.tenant_keys (
    tenant_id uuid NOT NULL,
    version integer NOT NULL,
    wrapped_dek bytea NOT NULL,       -- the DEK wrapped by the KMS (context: tenant id)
    kms_key_id text NOT NULL,         -- the KMS key that wrapped it
    created_at timestamptz NOT NULL DEFAULT now(),
    rotated_at timestamptz NULL,      -- when a newer version replaced it
    PRIMARY KEY (tenant_id, version),
    CONSTRAINT tenant_keys_version_positive CHECK (version > 0)
);

CREATE TABLE IF NOT EXISTS vault.platform_credentials (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    provider text NOT NULL,
    account_id text NOT NULL,
    access_token bytea NOT NULL,      -- sealed box (nonce | ciphertext | tag)
    refresh_token bytea NULL,         -- sealed box, NULL when there is none
    expires_at timestamptz NULL,
    dek_version integer NOT NULL,     -- tenant_keys.version that sealed the tokens
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT platform_credentials_unique UNIQUE (tenant_id, provider, account_id),
    CONSTRAINT platform_credentials_provider_check
        CHECK (provider IN ('META', 'GOOGLE', 'LINKEDIN', 'TIKTOK')),
    CONSTRAINT platform_credentials_account_len CHECK (length(account_id) BETWEEN 1 AND 255),
    CONSTRAINT platform_credentials_box_len CHECK (length(access_token) >= 28),
    CONSTRAINT platform_credentials_dek FOREIGN KEY (tenant_id, dek_version)
        REFERENCES vault.tenant_keys (tenant_id, version)
);
CREATE INDEX IF NOT EXISTS platform_credentials_tenant_idx
    ON vault.platform_credentials (tenant_id, created_at, id);

ALTER TABLE vault.tenant_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE vault.tenant_keys FORCE ROW LEVEL SECURITY;
ALTER TABLE vault.platform_credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE vault.platform_credentials FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS adi_tenant_isolation ON vault.tenant_keys;
CREATE POLICY adi_tenant_isolation ON vault.tenant_keys
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

DROP POLICY IF EXISTS adi_tenant_isolation ON vault.platform_credentials;
CREATE POLICY adi_tenant_isolation ON vault.platform_credentials
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON vault.tenant_keys, vault.platform_credentials TO adi_vault;

-- Every tenant that has a data key, for rotation (run by the service with no tenant set, which
-- row-level security would otherwise show nothing): a SECURITY DEFINER function owned by the
-- migration role, with a pinned search_path. It reveals tenant ids only.
DO $$
BEGIN
    EXECUTE 'DROP POLICY IF EXISTS definer_read ON vault.tenant_keys';
    IF NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('CREATE POLICY definer_read ON vault.tenant_keys FOR SELECT TO %I '
                       'USING (true)', current_user);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION vault.key_tenants()
RETURNS TABLE (tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT DISTINCT k.tenant_id FROM vault.tenant_keys k ORDER BY k.tenant_id
$$;

REVOKE ALL ON FUNCTION vault.key_tenants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vault.key_tenants() TO adi_vault;
