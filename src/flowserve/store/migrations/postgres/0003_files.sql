-- Uploaded files (/api/v2/files, /api/v1/files, the File and SaveToFile components)
-- when FLOWSERVE_FILES_BACKEND is "database": metadata in `files`, the bytes in
-- 1 MiB `file_chunks` rows, so neither an upload nor a download holds a whole
-- file in memory, and a file is written in one transaction (all of it or none).
CREATE TABLE files (
    id           uuid PRIMARY KEY,
    owner        text NOT NULL,
    name         text NOT NULL,
    -- What the API returns and the File component is given: made by the server.
    path         text NOT NULL UNIQUE,
    size         bigint NOT NULL DEFAULT 0 CHECK (size >= 0),
    content_type text NOT NULL,
    -- v1 uploads belong to a flow and go with it (deleted by the service layer,
    -- as the flow's messages are: no foreign key, the directory backend has none).
    flow_id      uuid,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX files_owner_idx ON files (owner, created_at);
CREATE INDEX files_flow_idx ON files (flow_id) WHERE flow_id IS NOT NULL;

CREATE TABLE file_chunks (
    file_id uuid NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    seq     integer NOT NULL CHECK (seq >= 0),
    data    bytea NOT NULL,
    PRIMARY KEY (file_id, seq)
);
