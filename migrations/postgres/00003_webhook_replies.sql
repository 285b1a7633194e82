-- +goose Up
-- Replies of core.Response steps to webhooks in wait mode, by the run's
-- correlation id. The first Response of a run wins; the node holding the
-- waiting request takes the row (another node may have run the step), and
-- rows nobody took are pruned.
CREATE TABLE webhook_replies (
    correlation_id TEXT PRIMARY KEY,
    status         INTEGER NOT NULL,
    headers        TEXT NOT NULL,
    body           BYTEA NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX webhook_replies_created ON webhook_replies (created_at);

-- +goose Down
DROP TABLE webhook_replies;
