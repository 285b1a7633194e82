-- +goose Up
-- The vault's own state. The row named 'check' holds a known value sealed
-- with the secret key (PLUGBOARD_SECRET_KEY or the key file): the first
-- node to start writes it, and every node opens it at start-up, so that a
-- node with another key refuses to start instead of failing on each
-- secret it reads. Sealed values have the form v1:<key id>:<base64>, where
-- the key id is derived from the key (never the key itself). updated_at is
-- unix ms.
--
-- From this migration on, system_webhooks.secret holds the signing secret
-- sealed with the webhook's id as associated data. Rows written before it
-- hold the secret in clear (whsec_...); they are sealed at start-up, before
-- the server serves.
CREATE TABLE vault (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE vault;
