-- Vector collections (Langflow's knowledge bases) and their chunks, searched with pgvector.
-- Needs the pgvector extension installed on the server (Debian: postgresql-<major>-pgvector);
-- creating it needs a superuser or the database owner with the extension already trusted.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE vector_collections (
    id             uuid PRIMARY KEY,
    -- "" for the server's own; else the API key (or user) the collection belongs to.
    owner          text NOT NULL,
    name           text NOT NULL,
    model_provider text NOT NULL,
    model_name     text NOT NULL,
    -- Set by the first chunks stored; every chunk of the collection has it.
    dimension      integer CHECK (dimension BETWEEN 1 AND 16000),
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner, name)
);

-- The vector column has no fixed dimension (it varies per collection), so searches are
-- exact scans of one collection's rows, ordered by cosine distance.
CREATE TABLE vector_chunks (
    id            uuid PRIMARY KEY,
    collection_id uuid NOT NULL REFERENCES vector_collections (id) ON DELETE CASCADE,
    seq           bigint GENERATED ALWAYS AS IDENTITY,
    content_hash  text NOT NULL,
    text          text NOT NULL,
    metadata      jsonb NOT NULL DEFAULT '{}'::jsonb,
    embedding     vector NOT NULL
);

CREATE INDEX vector_chunks_collection_idx ON vector_chunks (collection_id, seq);
CREATE INDEX vector_chunks_hash_idx ON vector_chunks (collection_id, content_hash);
