-- +goose Up
-- The polling triggers (component.Poller) of every flow, written with the
-- flow's document: the API names which components poll. state is what the
-- poller keeps between polls (a cursor, ids seen; JSON, NULL before the
-- first poll); it survives updates of the flow, restarts and stops, so an
-- item is never emitted twice. next_poll_at is the next poll (unix ms, on
-- the database's clock), NULL to poll at once (a new component, a flow
-- being started). A node starts the runs of a poll's items in the
-- transaction that moves next_poll_at on from the value it read (and
-- checks the state it read), so each poll counts once across all nodes.
-- last_error is the error of the last poll, '' after a good one.
CREATE TABLE polls (
    flow_id      TEXT NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    component_id TEXT NOT NULL,
    state        TEXT,
    next_poll_at BIGINT,
    last_error   TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (flow_id, component_id)
);
CREATE INDEX polls_next ON polls (next_poll_at);

-- +goose Down
DROP TABLE polls;
