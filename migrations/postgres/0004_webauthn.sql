-- Security keys and passkeys (WebAuthn). Keep in step with sqlite/0004_webauthn.sql.

-- A registered credential. data is go-webauthn's credential record as JSON
-- (public key, flags, transports, AAGUID, sign count); sign_count mirrors
-- it so a counter that goes backwards can be refused in SQL too.
CREATE TABLE webauthn_credentials (
    id           BYTEA PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    data         TEXT NOT NULL,
    sign_count   BIGINT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id);

-- A registration or sign-in ceremony in progress: its challenge lives here,
-- never trusted from the browser, bound to the login flow or the session
-- that began it, used once.
CREATE TABLE webauthn_ceremonies (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    binding    TEXT NOT NULL,
    data       TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX webauthn_ceremonies_expires ON webauthn_ceremonies (expires_at);
