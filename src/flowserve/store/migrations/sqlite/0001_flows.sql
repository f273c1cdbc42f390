-- Projects (Langflow's folders) and flows. Timestamps are ISO 8601 UTC text.
CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    parent_id   TEXT REFERENCES projects (id) ON DELETE SET NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

INSERT INTO projects (id, name, description, created_at, updated_at)
VALUES ('00000000-0000-4000-8000-000000000001', 'Starter Project', 'Flows saved without a project',
        strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));

CREATE TABLE flows (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    endpoint_name TEXT UNIQUE,
    data          TEXT NOT NULL,
    access_type   TEXT NOT NULL DEFAULT 'PRIVATE' CHECK (access_type IN ('PRIVATE', 'PUBLIC')),
    webhook       INTEGER NOT NULL DEFAULT 0,
    mcp_enabled   INTEGER NOT NULL DEFAULT 0,
    session_ttl   INTEGER CHECK (session_ttl > 0),
    folder_id     TEXT REFERENCES projects (id) ON DELETE CASCADE,
    version       INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE INDEX flows_folder_id_idx ON flows (folder_id);
CREATE INDEX flows_name_idx ON flows (name);
