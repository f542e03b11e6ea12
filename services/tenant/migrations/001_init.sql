-- SPDX-License-Identifier: MIT
--
-- The tenant service's schema "tenant" and its role adi_tenant. The role may log in (no
-- password: loopback trust in development; production sets one out of band) and gets rights on
-- its own schema only: it uses the tables the migrations create (run by an admin role through
-- `adi-admin migrate`) but owns none, so row-level security forced on them binds it too.
-- Safe to apply twice.

CREATE SCHEMA IF NOT EXISTS tenant;

-- Roles are cluster-wide: another database of the cluster (or a concurrent run) may have made it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'adi_tenant') THEN
        CREATE ROLE adi_tenant LOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

REVOKE ALL ON SCHEMA tenant FROM PUBLIC;
GRANT USAGE ON SCHEMA tenant TO adi_tenant;
ALTER ROLE adi_tenant SET search_path = tenant;

-- Tables and sequences that later migrations create here are the service's to use.
ALTER DEFAULT PRIVILEGES IN SCHEMA tenant
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO adi_tenant;
ALTER DEFAULT PRIVILEGES IN SCHEMA tenant
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO adi_tenant;

-- Replies of mutating operations by request id, so a redelivered request is answered with the
-- stored reply instead of running twice (libs/svc). Rows older than a day are deleted by the
-- service itself.
CREATE TABLE IF NOT EXISTS tenant.adi_idempotency (
    request_id text PRIMARY KEY,
    op text NOT NULL,
    reply bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS adi_idempotency_created_at_idx
    ON tenant.adi_idempotency (created_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA tenant TO adi_tenant;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA tenant TO adi_tenant;
