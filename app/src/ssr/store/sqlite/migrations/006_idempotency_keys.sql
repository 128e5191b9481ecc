-- `Idempotency-Key`s of bulk generation, per user: the request's fingerprint and, once answered,
-- the answer (status and JSON body). A row older than a day is replaced when its key comes again,
-- and removed a few at a time as new ones arrive.
CREATE TABLE idempotency_keys (
    user_id TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER,
    body TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys(created_at);
