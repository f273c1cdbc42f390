-- Projects (Langflow's folders) and flows.
CREATE TABLE projects (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    description text NOT NULL DEFAULT '',
    parent_id   uuid REFERENCES projects (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The default project: flows saved without a folder_id land here.
INSERT INTO projects (id, name, description)
VALUES ('00000000-0000-4000-8000-000000000001', 'Starter Project', 'Flows saved without a project');

CREATE TABLE flows (
    id            uuid PRIMARY KEY,
    name          text NOT NULL,
    description   text NOT NULL DEFAULT '',
    endpoint_name text UNIQUE CHECK (endpoint_name ~ '^[A-Za-z0-9_-]{1,200}$'),
    data          jsonb NOT NULL,
    access_type   text NOT NULL DEFAULT 'PRIVATE' CHECK (access_type IN ('PRIVATE', 'PUBLIC')),
    webhook       boolean NOT NULL DEFAULT false,
    mcp_enabled   boolean NOT NULL DEFAULT false,
    session_ttl   integer CHECK (session_ttl > 0),
    folder_id     uuid REFERENCES projects (id) ON DELETE CASCADE,
    version       bigint NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX flows_folder_id_idx ON flows (folder_id);
CREATE INDEX flows_name_idx ON flows (name);
