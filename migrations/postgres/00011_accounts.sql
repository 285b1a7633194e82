-- +goose Up
-- Accounts: a user's stored credentials for one external API (C5). secret
-- holds every secret value (token, password, API key value, the values of
-- the extra headers, OAuth2 tokens) as one JSON document sealed by the
-- vault with the account id as associated data; '' once revoked. Nothing
-- else in the row is secret; hint shows at most the last four characters
-- of the main secret. status is active, invalid (an OAuth2 refresh failed
-- for good) or revoked (deleted by its owner: the row stays so that later
-- uses fail with a clear reason and the audit log stays readable).
-- version grows by one on every change of secret: a refresh or an update
-- lands only on the version it read. refresh_lease_until (unix ms, 0 none)
-- is how long a node holds the right to refresh the OAuth2 tokens.
-- rate_limit is requests per second (0 no limit). Times are unix ms.
CREATE TABLE accounts (
    id                  TEXT PRIMARY KEY,
    owner_id            TEXT NOT NULL,
    name                TEXT NOT NULL,
    auth_type           TEXT NOT NULL,
    domain              TEXT NOT NULL,
    auth_prefix         TEXT NOT NULL DEFAULT '',
    username            TEXT NOT NULL DEFAULT '',
    api_key_in          TEXT NOT NULL DEFAULT '',
    api_key_name        TEXT NOT NULL DEFAULT '',
    connector           TEXT NOT NULL DEFAULT '',
    secret              TEXT NOT NULL DEFAULT '',
    hint                TEXT NOT NULL DEFAULT '',
    rate_limit          DOUBLE PRECISION NOT NULL DEFAULT 0,
    status              TEXT NOT NULL,
    status_reason       TEXT NOT NULL DEFAULT '',
    token_expires_at    BIGINT NOT NULL DEFAULT 0,
    refresh_lease_until BIGINT NOT NULL DEFAULT 0,
    version             BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    revoked_at          BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX accounts_owner ON accounts (owner_id, id);

-- One row per use of an account: who (user_id, source "api",
-- "flow:<flowId>/<componentId>" or "job"), when, method, host, path
-- (never query values) and the answer's status (0 when none came). ids are
-- time-ordered (UUIDv7), so id order is time order.
CREATE TABLE account_audit (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    source      TEXT NOT NULL,
    at          BIGINT NOT NULL,
    method      TEXT NOT NULL,
    host        TEXT NOT NULL,
    path        TEXT NOT NULL,
    status      INTEGER NOT NULL DEFAULT 0,
    error       TEXT NOT NULL DEFAULT '',
    duration_ms BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX account_audit_account ON account_audit (account_id, id);

-- Server-activity calls made with wait=false. The job that runs one is in
-- the jobs table (same id). request is the call as the caller gave it (no
-- credentials), result {"status","headers","body"} once done (NULL
-- before); both JSON.
CREATE TABLE account_requests (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    state      TEXT NOT NULL,
    request    TEXT,
    result     TEXT,
    error      TEXT NOT NULL DEFAULT '',
    attempts   INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Started OAuth2 authorizations, taken once when the provider redirects
-- back. verifier is the PKCE code verifier sealed with the state as
-- associated data; account_id, when set, is an account to reconnect.
-- expires_at is unix ms.
CREATE TABLE oauth_states (
    state        TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    connector    TEXT NOT NULL,
    name         TEXT NOT NULL DEFAULT '',
    verifier     TEXT NOT NULL DEFAULT '',
    redirect_uri TEXT NOT NULL DEFAULT '',
    account_id   TEXT NOT NULL DEFAULT '',
    expires_at   BIGINT NOT NULL
);

-- The OAuth2 client an admin registered for a connector; client_secret is
-- sealed with the connector name as associated data.
CREATE TABLE oauth_clients (
    connector     TEXT PRIMARY KEY,
    client_id     TEXT NOT NULL,
    client_secret TEXT NOT NULL DEFAULT '',
    updated_at    BIGINT NOT NULL
);

-- +goose Down
DROP TABLE oauth_clients;
DROP TABLE oauth_states;
DROP TABLE account_requests;
DROP TABLE account_audit;
DROP TABLE accounts;
