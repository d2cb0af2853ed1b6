-- Owner-initiated 2FA resets. Keep in step with sqlite/0003_reset.sql.

-- A re-enrollment link. Only a keyed hash of the token is stored. A link
-- is single use (used_at), dies when a newer one is issued (superseded_at)
-- and expires.
CREATE TABLE reset_tokens (
    token_hash    BYTEA PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    actor_id      TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    used_at       TIMESTAMPTZ,
    superseded_at TIMESTAMPTZ,
    mail_id       BIGINT
);
CREATE INDEX reset_tokens_user ON reset_tokens (user_id, created_at);
-- At most one live link per user.
CREATE UNIQUE INDEX reset_tokens_live ON reset_tokens (user_id) WHERE used_at IS NULL AND superseded_at IS NULL;
