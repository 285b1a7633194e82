-- +goose Up
-- System webhooks: URLs the admin subscribes to system events (event is
-- one event name or '*'). secret is the signing key in the Standard
-- Webhooks form whsec_<base64>; it is shown once, when created.
CREATE TABLE system_webhooks (
    id         TEXT PRIMARY KEY,
    event      TEXT NOT NULL,
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- One row per event sent to a subscription. The delivery itself is a job
-- in the jobs table (same id); each attempt updates its row here.
CREATE TABLE system_webhook_deliveries (
    id               TEXT PRIMARY KEY,
    subscription_id  TEXT NOT NULL REFERENCES system_webhooks (id) ON DELETE CASCADE,
    event            TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_status_code INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX system_webhook_deliveries_subscription ON system_webhook_deliveries (subscription_id, id);

-- +goose Down
DROP TABLE system_webhook_deliveries;
DROP TABLE system_webhooks;
