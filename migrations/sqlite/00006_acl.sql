-- +goose Up
-- Who may use which connector. A rule names a role or a user (the other
-- column is ''), a resource (a connector name or '*') and an action ('use'
-- or '*'). position keeps the order in which the admin wrote the rules.
-- The default rule lets every user use every connector; removing it
-- revokes that.
CREATE TABLE acl_rules (
    position BIGINT NOT NULL PRIMARY KEY,
    role     TEXT NOT NULL DEFAULT '',
    user_id  TEXT NOT NULL DEFAULT '',
    resource TEXT NOT NULL,
    action   TEXT NOT NULL,
    UNIQUE (role, user_id, resource, action)
);
INSERT INTO acl_rules (position, role, user_id, resource, action) VALUES (1, 'user', '', '*', '*');

-- +goose Down
DROP TABLE acl_rules;
