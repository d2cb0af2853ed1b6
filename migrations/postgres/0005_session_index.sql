-- Revoking a grant's tokens by kind (every refresh rotates, revoking the
-- access tokens of its request) read every row of the request, rotated
-- refresh tokens included, through the request_id index: the cost grew
-- with the length of the refresh chain. Index (request_id, kind) instead.
-- Keep in step with sqlite/0005_session_index.sql.
DROP INDEX oauth2_sessions_request;
CREATE INDEX oauth2_sessions_request_kind ON oauth2_sessions (request_id, kind);
