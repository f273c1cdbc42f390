-- Vector collections (Langflow's knowledge bases) and their chunks. Embeddings are
-- float32 blobs; searches compute cosine similarity in the store's thread.
CREATE TABLE vector_collections (
    id             TEXT PRIMARY KEY,
    owner          TEXT NOT NULL,
    name           TEXT NOT NULL,
    model_provider TEXT NOT NULL,
    model_name     TEXT NOT NULL,
    dimension      INTEGER CHECK (dimension BETWEEN 1 AND 16000),
    created_at     TEXT NOT NULL,
    UNIQUE (owner, name)
);

CREATE TABLE vector_chunks (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    collection_id TEXT NOT NULL REFERENCES vector_collections (id) ON DELETE CASCADE,
    content_hash  TEXT NOT NULL,
    text          TEXT NOT NULL,
    metadata      TEXT NOT NULL DEFAULT '{}',
    embedding     BLOB NOT NULL,
    norm          REAL NOT NULL
);

CREATE INDEX vector_chunks_collection_idx ON vector_chunks (collection_id, seq);
CREATE INDEX vector_chunks_hash_idx ON vector_chunks (collection_id, content_hash);
