-- SPDX-License-Identifier: MIT
--
-- The vault service's schema "vault" and its role adi_vault. The role may log in (no
-- password: loopback trust in development; production sets one out of band) and gets rights on
-- its own schema only: it uses the tables the migrations create (run by an admin role through
-- `adi-admin migrate`) but owns none, so row-level security forced on them binds it too.
-- Safe to apply twice.

CREATE SCHEMA IF NOT EXISTS vault;

-- Roles are cluster-wide: another database of the cluster (or a concurrent run) may have made it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'adi_vault') THEN
        CREATE ROLE adi_vault LOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

REVOKE ALL ON SCHEMA vault FROM PUBLIC;
GRANT USAGE ON SCHEMA vault TO adi_vault;
ALTER ROLE adi_vault SET search_path = vault;

-- Tables and sequences that later migrations create here are the service's to use.
ALTER DEFAULT PRIVILEGES IN SCHEMA vault
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO adi_vault;
ALTER DEFAULT PRIVILEGES IN SCHEMA vault
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO adi_vault;

-- Replies of mutating operations by request id, so a redelivered request is answered with the
-- stored reply instead of running twice (libs/svc). Rows older than a day are deleted by the
-- service itself.
CREATE TABLE IF NOT EXISTS vault.adi_idempotency (
    request_id text PRIMARY KEY,
    op text NOT NULL,
    reply bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS adi_idempotency_created_at_idx
    ON vault.adi_idempotency (created_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA vault TO adi_vault;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA vault TO adi_vault;
