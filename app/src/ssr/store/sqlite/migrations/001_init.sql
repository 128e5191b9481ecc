-- The first schema: the spec's five collections as tables. Nested documents (a video's metadata,
-- a product's `videos` entries) are JSON text; `product_videos` keeps one row per entry so an entry
-- is updated by its video id.
CREATE TABLE workspaces (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    video_limit INTEGER NOT NULL,
    videos_used INTEGER NOT NULL DEFAULT 0 CHECK (videos_used >= 0),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL COLLATE NOCASE UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    workspace_id TEXT REFERENCES workspaces(id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE products (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    user_id TEXT,
    title TEXT NOT NULL,
    sku TEXT NOT NULL,
    img_urls TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX products_by_workspace ON products(workspace_id, created_at DESC, id DESC);
CREATE TABLE aivideos (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    product_id TEXT NOT NULL REFERENCES products(id),
    template TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    metadata TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX aivideos_by_status ON aivideos(status, updated_at);
CREATE INDEX aivideos_by_workspace ON aivideos(workspace_id, created_at DESC);
CREATE TABLE product_videos (
    video_id TEXT PRIMARY KEY REFERENCES aivideos(id),
    product_id TEXT NOT NULL REFERENCES products(id),
    entry TEXT NOT NULL
);
CREATE INDEX product_videos_by_product ON product_videos(product_id);
CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    payload TEXT NOT NULL,
    video_id TEXT,
    status_code INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX webhook_events_by_time ON webhook_events(created_at DESC, id DESC);
CREATE INDEX webhook_events_by_endpoint ON webhook_events(endpoint, created_at DESC, id DESC);
CREATE INDEX webhook_events_by_video ON webhook_events(video_id, created_at DESC, id DESC);
