-- +goose Up
-- The core.OnAppEvent triggers of every flow: which flows a named app event
-- of a user starts. Rows are written with the flow's document, in the same
-- transaction, whenever a flow is created or updated (as webhooks are), and
-- go with the flow when it is deleted. The primary key is the lookup index:
-- an event reads one key range of (owner_id, event).
--
-- No backfill: core.OnAppEvent did not exist before this migration, so no
-- stored flow can hold one.
CREATE TABLE app_event_triggers (
    owner_id     TEXT NOT NULL,
    event        TEXT NOT NULL,
    flow_id      TEXT NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    component_id TEXT NOT NULL,
    PRIMARY KEY (owner_id, event, flow_id, component_id)
);
-- Replacing a flow's triggers, and deleting a flow, find its rows here.
CREATE INDEX app_event_triggers_flow ON app_event_triggers (flow_id);

-- +goose Down
DROP TABLE app_event_triggers;
