-- Sessions ended before their token expired (logout), by the token's id (`jti`). A row is useless
-- once the token has expired anyway, and is removed then.
CREATE TABLE revoked_sessions (
    jti TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL
);
CREATE INDEX revoked_sessions_by_expiry ON revoked_sessions(expires_at);
