-- API keys. Only the SHA-256 of each key is stored, never the key; the prefix
-- (its first 8 characters) lets people tell their keys apart in listings.
-- scopes and flows are JSON arrays; times are ISO 8601 in UTC.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE CHECK (length(key_hash) = 64),
    scopes       TEXT NOT NULL CHECK (json_array_length(scopes) > 0),
    flows        TEXT CHECK (flows IS NULL OR json_array_length(flows) > 0),
    expires_at   TEXT,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    total_uses   INTEGER NOT NULL DEFAULT 0,
    revoked_at   TEXT
);

CREATE INDEX api_keys_created_at_idx ON api_keys (created_at);
