-- +goose Up
-- Published connector versions (the archive as uploaded, its manifest and
-- changelog) and the version installed of each connector.
CREATE TABLE connector_versions (
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    manifest     TEXT NOT NULL,
    changelog    TEXT NOT NULL,
    archive      BYTEA NOT NULL,
    digest       TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE installed_connectors (
    name         TEXT PRIMARY KEY,
    version      TEXT NOT NULL,
    installed_at BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

-- The component types each flow uses, written with the flow's document:
-- which flows use a connector or a component type is one index range.
CREATE TABLE flow_components (
    type         TEXT NOT NULL COLLATE "C",
    flow_id      TEXT NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    component_id TEXT NOT NULL,
    PRIMARY KEY (type, flow_id, component_id)
);
CREATE INDEX flow_components_flow ON flow_components (flow_id);

INSERT INTO flow_components (type, flow_id, component_id)
SELECT c.value->>'type', f.id, c.key
  FROM flows f,
       jsonb_each(CASE WHEN jsonb_typeof(f.document::jsonb->'components') = 'object'
                       THEN f.document::jsonb->'components' ELSE '{}'::jsonb END) c
 WHERE c.value->>'type' IS NOT NULL;

-- +goose Down
DROP TABLE flow_components;
DROP TABLE installed_connectors;
DROP TABLE connector_versions;
