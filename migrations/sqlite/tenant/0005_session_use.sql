-- The API a session was opened through (core::policy::Api::name): only sessions of the
-- team/vault API renew with an expired access token (GET /api/refresh). Sessions opened before
-- this migration are 'unknown' and never renew that way: their users sign in again.
ALTER TABLE sessions ADD COLUMN api TEXT NOT NULL DEFAULT 'unknown';

-- The session's last renewal of any kind (refresh-token rotation, team/vault renewal), for
-- the idle limit (TESSERA_SESSION_IDLE_SECS); until then its newest refresh token's creation.
ALTER TABLE sessions ADD COLUMN last_used_at INTEGER;
UPDATE sessions SET last_used_at = COALESCE(
    (SELECT MAX(r.created_at) FROM refresh_tokens r WHERE r.session_id = sessions.id),
    created_at);
