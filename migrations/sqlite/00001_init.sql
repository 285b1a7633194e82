-- +goose Up
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL DEFAULT '',
    role          TEXT NOT NULL,
    virtual       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL
);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_hash BLOB NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX tokens_user ON tokens (user_id);

CREATE TABLE flows (
    id         TEXT PRIMARY KEY,
    owner_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    stage      TEXT NOT NULL,
    document   TEXT NOT NULL,
    version    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX flows_owner ON flows (owner_id, id);

CREATE TABLE webhooks (
    token        TEXT PRIMARY KEY,
    flow_id      TEXT NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    component_id TEXT NOT NULL,
    UNIQUE (flow_id, component_id)
);

-- One B-tree, clustered by flow. An id is "<correlation id>/<entry id>",
-- both UUIDv7: a flow's logs list run by run in time order, one run is a
-- key range, ids sort by time for retention, and the entry id holds its
-- creation time.
CREATE TABLE invocation_logs (
    flow_id      TEXT NOT NULL,
    id           TEXT NOT NULL,
    component_id TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    attempt      INTEGER NOT NULL,
    status       TEXT NOT NULL,
    duration_us  BIGINT NOT NULL,
    input        TEXT,
    output       TEXT,
    error        TEXT,
    PRIMARY KEY (flow_id, id)
) WITHOUT ROWID;

CREATE TABLE unprocessed_messages (
    id           TEXT PRIMARY KEY,
    flow_id      TEXT NOT NULL,
    owner_id     TEXT NOT NULL,
    component_id TEXT NOT NULL,
    attempts     INTEGER NOT NULL,
    error        TEXT NOT NULL,
    message      TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX unprocessed_messages_owner ON unprocessed_messages (owner_id, id);

-- The durable job queue: one row per step waiting or running. A finished
-- step's row is deleted in the transaction that records its result.
CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    state        TEXT NOT NULL,
    attempt      INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at       BIGINT NOT NULL,
    locked_by    TEXT,
    locked_until BIGINT,
    args         TEXT NOT NULL,
    last_error   TEXT,
    created_at   BIGINT NOT NULL
) WITHOUT ROWID;
CREATE INDEX jobs_due ON jobs (run_at) WHERE state = 'available';

-- +goose Down
DROP TABLE jobs;
DROP TABLE unprocessed_messages;
DROP TABLE invocation_logs;
DROP TABLE webhooks;
DROP TABLE flows;
DROP TABLE tokens;
DROP TABLE users;
