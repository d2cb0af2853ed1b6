-- Owner-initiated 2FA resets. Keep in step with postgres/0003_reset.sql.

-- A re-enrollment link. Only a keyed hash of the token is stored. A link
-- is single use (used_at), dies when a newer one is issued (superseded_at)
-- and expires.
CREATE TABLE reset_tokens (
    token_hash    BLOB PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    actor_id      TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    expires_at    TIMESTAMP NOT NULL,
    used_at       TIMESTAMP,
    superseded_at TIMESTAMP,
    mail_id       INTEGER
);
CREATE INDEX reset_tokens_user ON reset_tokens (user_id, created_at);
-- At most one live link per user.
CREATE UNIQUE INDEX reset_tokens_live ON reset_tokens (user_id) WHERE used_at IS NULL AND superseded_at IS NULL;
