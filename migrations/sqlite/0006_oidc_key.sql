-- OpenID Connect sessions (kind 'oidc') were keyed by a SHA-256 of their
-- authorization code; they are now keyed by the code's HMAC signature, as
-- the code and its PKCE record are, so the token endpoint reads the three
-- in one query and the code's invalidation deletes the other two (package
-- store, codes.go). Rows under the old key can never be read again: a code
-- issued before the upgrade and redeemed after it gets no ID token. They
-- live at most ten minutes, the longest code lifespan.
-- Keep in step with postgres/0006_oidc_key.sql.
DELETE FROM oauth2_sessions WHERE kind = 'oidc';
