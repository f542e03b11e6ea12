-- SPDX-License-Identifier: MIT
--
-- The transactional outbox of libs/svc: events a request publishes (audit entries, token
-- revocations, tasks) are written here in the request's own transaction, published to their
-- stream once it has committed and then deleted; worker 0 publishes rows a process that died
-- between COMMIT and XADD left behind (older than 10 s). Consumers are idempotent by event id,
-- so the rare second copy is harmless; a lost event is not possible any more.

CREATE TABLE IF NOT EXISTS vault.adi_outbox (
    id bigserial PRIMARY KEY,
    stream text NOT NULL,
    msg bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
