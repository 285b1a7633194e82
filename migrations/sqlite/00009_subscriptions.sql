-- +goose Up
-- The webhook-subscription triggers (component.Subscriber) of every flow,
-- written with the flow's document: the API names which components
-- subscribe. A row outlives its flow (no foreign key): a deleted flow's
-- subscription must still be removed at the provider, so the row is
-- dropped only once it is.
--
-- state is what the provider answered the subscribe request (JSON with the
-- subscription's id), NULL while not subscribed. The node that subscribed
-- keeps here what unsubscribing needs even when the flow is gone: the
-- component type, its resolved properties and the inbound URL it gave.
-- gone is 1 when the component left the flow's document or the flow was
-- deleted. due_at (unix ms, database clock) is when a node should next
-- compare what is (state) with what should be (the flow running, the
-- component still there), NULL when the two agree. A node claims a row
-- before it calls the provider by setting lease_until, compared with the
-- due time and state it read; it records the outcome only while it holds
-- the lease. A start or stop meanwhile moves due_at, and the outcome then
-- leaves the row due at once. attempts and last_error describe failed
-- tries since the last success.
CREATE TABLE subscriptions (
    flow_id      TEXT NOT NULL,
    component_id TEXT NOT NULL,
    owner_id     TEXT NOT NULL,
    gone         INTEGER NOT NULL DEFAULT 0,
    type         TEXT NOT NULL DEFAULT '',
    properties   TEXT,
    webhook_url  TEXT NOT NULL DEFAULT '',
    state        TEXT,
    due_at       BIGINT,
    lease_until  BIGINT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (flow_id, component_id)
) WITHOUT ROWID;
CREATE INDEX subscriptions_due ON subscriptions (due_at);

-- +goose Down
DROP TABLE subscriptions;
