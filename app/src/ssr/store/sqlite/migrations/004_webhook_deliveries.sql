-- Signed deliveries seen in the last 24 hours, by their `webhook-id`: a redelivery is answered as
-- the first was and changes nothing.
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    status_code INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_by_time ON webhook_deliveries(created_at);
