-- twofold schema, PostgreSQL dialect. Keep in step with sqlite/0001_init.sql.

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    name           TEXT NOT NULL DEFAULT '',
    password_hash  TEXT NOT NULL,
    mfa_state      TEXT NOT NULL DEFAULT 'none',
    created_at     TIMESTAMPTZ NOT NULL,
    last_login_at  TIMESTAMPTZ
);

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    require_2fa BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE memberships (
    org_id     TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'member')),
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE oauth2_clients (
    id                        TEXT PRIMARY KEY,
    secret_hash               BYTEA,
    name                      TEXT NOT NULL,
    redirect_uris             TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    grant_types               TEXT NOT NULL,
    scopes                    TEXT NOT NULL,
    public                    BOOLEAN NOT NULL,
    skip_consent              BOOLEAN NOT NULL,
    require_pkce              BOOLEAN NOT NULL,
    require_2fa               BOOLEAN NOT NULL,
    created_at                TIMESTAMPTZ NOT NULL
);

-- One row per fosite request record: authorization codes, access and refresh
-- tokens, PKCE and OpenID Connect sessions. signature is the HMAC signature
-- fosite derives from the token (or a SHA-256 of the code for OIDC sessions),
-- never the token itself.
CREATE TABLE oauth2_sessions (
    kind         TEXT NOT NULL,
    signature    TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    client_id    TEXT NOT NULL REFERENCES oauth2_clients (id) ON DELETE CASCADE,
    subject      TEXT NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    active       BOOLEAN NOT NULL,
    data         TEXT NOT NULL,
    PRIMARY KEY (kind, signature)
);
CREATE INDEX oauth2_sessions_request ON oauth2_sessions (request_id);
CREATE INDEX oauth2_sessions_subject ON oauth2_sessions (subject);
CREATE INDEX oauth2_sessions_expires ON oauth2_sessions (expires_at);

CREATE TABLE login_flows (
    id             TEXT PRIMARY KEY,
    binding_hash   BYTEA NOT NULL,
    -- NULL for a sign-in to twofold itself (settings pages), not for a client.
    client_id      TEXT REFERENCES oauth2_clients (id) ON DELETE CASCADE,
    query          TEXT NOT NULL,
    requested_at   TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    user_id        TEXT REFERENCES users (id) ON DELETE CASCADE,
    amr            TEXT NOT NULL DEFAULT '[]',
    auth_time      TIMESTAMPTZ,
    granted_scopes TEXT,
    denied         BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX login_flows_expires ON login_flows (expires_at);

CREATE TABLE browser_sessions (
    id_hash      BYTEA PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    amr          TEXT NOT NULL,
    auth_time    TIMESTAMPTZ NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX browser_sessions_user ON browser_sessions (user_id);

CREATE TABLE consent_grants (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES oauth2_clients (id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL,
    granted_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE TABLE signing_keys (
    kid        TEXT PRIMARY KEY,
    alg        TEXT NOT NULL,
    sealed_key BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    retired_at TIMESTAMPTZ
);
-- At most one active (unretired) key per algorithm.
CREATE UNIQUE INDEX signing_keys_active ON signing_keys (alg) WHERE retired_at IS NULL;

CREATE TABLE audit_events (
    id          BIGSERIAL PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL,
    kind        TEXT NOT NULL,
    actor_id    TEXT NOT NULL DEFAULT '',
    target_id   TEXT NOT NULL DEFAULT '',
    org_id      TEXT NOT NULL DEFAULT '',
    client_addr TEXT NOT NULL DEFAULT '',
    details     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_target ON audit_events (target_id, at);
CREATE INDEX audit_events_org ON audit_events (org_id, at);

CREATE TABLE mail_outbox (
    id              BIGSERIAL PRIMARY KEY,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    text_body       TEXT NOT NULL,
    html_body       TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    -- When the message is next due; while a worker holds it, the end of
    -- that worker's lease. attempts counts claims and fences each lease.
    next_attempt_at TIMESTAMPTZ NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    sent_at         TIMESTAMPTZ,
    -- Set when delivery was given up; last_error says why.
    failed_at       TIMESTAMPTZ,
    last_error      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX mail_outbox_pending ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;

CREATE TABLE rate_limits (
    key             TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL,
    last_failure_at TIMESTAMPTZ NOT NULL,
    blocked_until   TIMESTAMPTZ NOT NULL
);
