-- twofold schema, SQLite dialect. Keep in step with postgres/0001_init.sql.

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    email_verified INTEGER NOT NULL DEFAULT 0,
    name           TEXT NOT NULL DEFAULT '',
    password_hash  TEXT NOT NULL,
    mfa_state      TEXT NOT NULL DEFAULT 'none',
    created_at     TIMESTAMP NOT NULL,
    last_login_at  TIMESTAMP
);

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    require_2fa INTEGER NOT NULL DEFAULT 0,
    created_at  TIMESTAMP NOT NULL
);

CREATE TABLE memberships (
    org_id     TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'member')),
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE oauth2_clients (
    id                        TEXT PRIMARY KEY,
    secret_hash               BLOB,
    name                      TEXT NOT NULL,
    redirect_uris             TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    grant_types               TEXT NOT NULL,
    scopes                    TEXT NOT NULL,
    public                    INTEGER NOT NULL,
    skip_consent              INTEGER NOT NULL,
    require_pkce              INTEGER NOT NULL,
    require_2fa               INTEGER NOT NULL,
    created_at                TIMESTAMP NOT NULL
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
    requested_at TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    active       INTEGER NOT NULL,
    data         TEXT NOT NULL,
    PRIMARY KEY (kind, signature)
);
CREATE INDEX oauth2_sessions_request ON oauth2_sessions (request_id);
CREATE INDEX oauth2_sessions_subject ON oauth2_sessions (subject);
CREATE INDEX oauth2_sessions_expires ON oauth2_sessions (expires_at);

CREATE TABLE login_flows (
    id             TEXT PRIMARY KEY,
    binding_hash   BLOB NOT NULL,
    -- NULL for a sign-in to twofold itself (settings pages), not for a client.
    client_id      TEXT REFERENCES oauth2_clients (id) ON DELETE CASCADE,
    query          TEXT NOT NULL,
    requested_at   TIMESTAMP NOT NULL,
    expires_at     TIMESTAMP NOT NULL,
    user_id        TEXT REFERENCES users (id) ON DELETE CASCADE,
    amr            TEXT NOT NULL DEFAULT '[]',
    auth_time      TIMESTAMP,
    granted_scopes TEXT,
    denied         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX login_flows_expires ON login_flows (expires_at);

CREATE TABLE browser_sessions (
    id_hash      BLOB PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    amr          TEXT NOT NULL,
    auth_time    TIMESTAMP NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL
);
CREATE INDEX browser_sessions_user ON browser_sessions (user_id);

CREATE TABLE consent_grants (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES oauth2_clients (id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL,
    granted_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE TABLE signing_keys (
    kid        TEXT PRIMARY KEY,
    alg        TEXT NOT NULL,
    sealed_key BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL,
    retired_at TIMESTAMP
);
-- At most one active (unretired) key per algorithm.
CREATE UNIQUE INDEX signing_keys_active ON signing_keys (alg) WHERE retired_at IS NULL;

CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TIMESTAMP NOT NULL,
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
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    text_body       TEXT NOT NULL,
    html_body       TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    -- When the message is next due; while a worker holds it, the end of
    -- that worker's lease. attempts counts claims and fences each lease.
    next_attempt_at TIMESTAMP NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    sent_at         TIMESTAMP,
    -- Set when delivery was given up; last_error says why.
    failed_at       TIMESTAMP,
    last_error      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX mail_outbox_pending ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;

CREATE TABLE rate_limits (
    key             TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL,
    last_failure_at TIMESTAMP NOT NULL,
    blocked_until   TIMESTAMP NOT NULL
);
