-- Second factors: TOTP and backup codes. Keep in step with postgres/0002_mfa.sql.

-- A confirmed TOTP credential. The secret is sealed (AES-GCM, bound to the
-- user); last_step is the last RFC 6238 time step accepted, never accepted
-- again.
CREATE TABLE totp_credentials (
    user_id       TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sealed_secret BLOB NOT NULL,
    last_step     INTEGER NOT NULL,
    created_at    TIMESTAMP NOT NULL
);

-- An enrollment started but not yet confirmed with a code.
CREATE TABLE totp_enrollments (
    user_id       TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sealed_secret BLOB NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    expires_at    TIMESTAMP NOT NULL
);

-- Backup codes as keyed hashes (HMAC under a key derived from the secret
-- key, salted with the user id); used_at is set once, by one conditional
-- UPDATE.
CREATE TABLE backup_codes (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP,
    PRIMARY KEY (user_id, code_hash)
);

-- Wrong second-factor codes entered in a login flow; the flow ends at 5.
ALTER TABLE login_flows ADD COLUMN mfa_failures INTEGER NOT NULL DEFAULT 0;
