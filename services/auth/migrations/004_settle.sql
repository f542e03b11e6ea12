-- SPDX-License-Identifier: MIT
--
-- Users made by auth.user_provision on behalf of another service's request (the first ADMIN of a
-- signup, the user of an accept-invite) are provisional until that request is known to have
-- committed: settle_caller names the calling service and settle_key the request's idempotency key
-- there. Auth's settle chore asks the caller `sys.settled {key}` once the user is SETTLE_AFTER_S
-- old, then clears both columns (committed) or deletes the user (it did not), so a signup that
-- failed after its user was made leaves no user behind.
--
-- Safe to apply twice.

ALTER TABLE auth.users ADD COLUMN IF NOT EXISTS settle_caller text NULL;
ALTER TABLE auth.users ADD COLUMN IF NOT EXISTS settle_key text NULL;
DO $$
BEGIN
    ALTER TABLE auth.users ADD CONSTRAINT users_settle_pair
        CHECK ((settle_caller IS NULL) = (settle_key IS NULL));
EXCEPTION WHEN duplicate_object THEN NULL;
END
$$;
CREATE INDEX IF NOT EXISTS users_unsettled_idx ON auth.users (created_at)
    WHERE settle_key IS NOT NULL;

-- The provisional users due for settling, of every tenant (the chore then works under each
-- user's tenant), oldest first.
CREATE OR REPLACE FUNCTION auth.users_unsettled(p_age_s integer, p_limit integer)
RETURNS TABLE (id uuid, tenant_id uuid, settle_caller text, settle_key text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.id, u.tenant_id, u.settle_caller, u.settle_key
      FROM auth.users u
     WHERE u.settle_key IS NOT NULL
       AND u.created_at < now() - make_interval(secs => p_age_s)
     ORDER BY u.created_at, u.id
     LIMIT p_limit
$$;
REVOKE ALL ON FUNCTION auth.users_unsettled(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.users_unsettled(integer, integer) TO adi_auth;
