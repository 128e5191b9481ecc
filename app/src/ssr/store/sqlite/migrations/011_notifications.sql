-- Notification settings per workspace (JSON: email prefs, channel URLs, the webhook secret), and the
-- outbox: one row per delivery to one channel (and `fanout` rows, written in the transaction that
-- finished a video, that the notifier turns into deliveries). `lease`/`lease_until`: the instance
-- sending it; an expired lease is free to take.
CREATE TABLE notification_settings (
    workspace_id TEXT PRIMARY KEY,
    settings TEXT NOT NULL
);
CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    event_type TEXT NOT NULL,
    video_id TEXT,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at TEXT NOT NULL,
    lease TEXT,
    lease_until TEXT,
    delivered_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    body TEXT NOT NULL,
    dedupe_key TEXT NOT NULL UNIQUE
);
CREATE INDEX notifications_due ON notifications(status, next_attempt_at);
CREATE INDEX notifications_by_created ON notifications(created_at DESC, id DESC);
CREATE INDEX notifications_by_workspace ON notifications(workspace_id, created_at DESC, id DESC);
-- The videos of one batch (the email goes once all of them are final).
CREATE INDEX aivideos_by_token ON aivideos(callback_token_hash) WHERE callback_token_hash IS NOT NULL;
