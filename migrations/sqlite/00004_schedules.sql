-- +goose Up
-- The core.Schedule triggers of every flow, written with the flow's
-- document like its webhooks. next_run_at is the next run to fire (unix
-- ms, on the database's clock), NULL until a node plans it: a new or
-- changed flow, and a flow being started, plan from that moment, so a
-- stopped flow never fires the runs it missed. A node fires a run in the
-- transaction that moves next_run_at on from the value it read, so each
-- run fires once across all nodes.
CREATE TABLE schedules (
    flow_id      TEXT NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    component_id TEXT NOT NULL,
    next_run_at  BIGINT,
    PRIMARY KEY (flow_id, component_id)
) WITHOUT ROWID;
CREATE INDEX schedules_next ON schedules (next_run_at);

-- +goose Down
DROP TABLE schedules;
