-- API keys. Only the SHA-256 of each key is stored, never the key; the prefix
-- (its first 8 characters) lets people tell their keys apart in listings.
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    name         text NOT NULL,
    prefix       text NOT NULL,
    key_hash     text NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    scopes       text[] NOT NULL CHECK (
        cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'execute', 'write', 'admin']
    ),
    -- NULL: every flow; otherwise the flow ids / endpoint names the key may touch.
    flows        text[] CHECK (flows IS NULL OR cardinality(flows) > 0),
    expires_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    total_uses   bigint NOT NULL DEFAULT 0,
    revoked_at   timestamptz
);

CREATE INDEX api_keys_created_at_idx ON api_keys (created_at);
