-- A client may register how its ID tokens are signed
-- (id_token_signed_response_alg): RS256, the OpenID Connect default, or
-- ES256, which a P-256 key signs about twenty times faster.
-- Keep in step with sqlite/0007_client_id_token_alg.sql.
ALTER TABLE oauth2_clients ADD COLUMN id_token_alg TEXT NOT NULL DEFAULT 'RS256';
