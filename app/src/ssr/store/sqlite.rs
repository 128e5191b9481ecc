//! The embedded store: SQLite in WAL mode, migrations compiled into the binary.
//!
//! One writer connection (SQLite allows one writer at a time anyway) and a small pool of readers, all
//! used from `spawn_blocking` so the async runtime never waits on disk.

use super::{
    Applied, EventDraft, EventQuery, FinishedVideo, HourlyCount, Quota, Store, StoreError,
    StoreResult, UserRecord, VideoQuery, LIVE_BUFFER,
};
use crate::model::webhook::{
    apply_change, decide, requeue, response_line, VideoChange, MSG_VIDEO_NOT_FOUND,
};
use crate::model::{
    AiVideo, LiveChange, ObjectId, Product, ProductVideo, Role, Timestamp, User, VideoMetadata,
    VideoStatus, WebhookEvent, Workspace,
};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Schema versions, applied in order; `PRAGMA user_version` remembers the last one applied.
const MIGRATIONS: &[&str] = &[r#"
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
"#];

const READERS: usize = 4;

pub struct SqliteStore {
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    /// The in-process live feed; changes are sent right after their commit.
    live: broadcast::Sender<LiveChange>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) `videos.db` in `data_dir` and brings its schema up to date.
    pub fn open(data_dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| backend(format!("creating {}: {e}", data_dir.display())))?;
        let path = data_dir.join("videos.db");
        let mut writer = open(&path).map_err(backend)?;
        migrate(&mut writer).map_err(backend)?;
        Ok(Self {
            path,
            writer: Arc::new(Mutex::new(writer)),
            readers: Arc::new(Mutex::new(Vec::new())),
            live: broadcast::channel(LIVE_BUFFER).0,
        })
    }

    /// Publishes committed changes (nobody listening is fine).
    fn publish(
        live: &broadcast::Sender<LiveChange>,
        changes: impl IntoIterator<Item = LiveChange>,
    ) {
        for c in changes {
            let _ = live.send(c);
        }
    }

    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = writer.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(backend)?
    }

    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let conn = match pooled {
                Some(c) => c,
                None => open(&path).map_err(backend)?,
            };
            let out = f(&conn);
            let mut pool = readers.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < READERS {
                pool.push(conn);
            }
            out
        })
        .await
        .map_err(backend)?
    }
}

impl SqliteStore {
    /// The row of `sql` (which takes the id as `?1`), if there is one.
    async fn find_by_id<T: Send + 'static>(
        &self,
        sql: String,
        id: ObjectId,
        row: fn(&Row) -> rusqlite::Result<T>,
    ) -> StoreResult<Option<T>> {
        self.read(move |c| {
            c.query_row(&sql, [id.to_string()], row)
                .optional()
                .map_err(backend)
        })
        .await
    }
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

// --- row mapping

fn ts(s: String) -> rusqlite::Result<Timestamp> {
    Timestamp::parse(&s).ok_or_else(|| rusqlite::Error::InvalidColumnName(format!("timestamp {s}")))
}

fn oid(s: String) -> rusqlite::Result<ObjectId> {
    s.parse()
        .map_err(|_| rusqlite::Error::InvalidColumnName(format!("object id {s}")))
}

fn json<T: serde::de::DeserializeOwned>(s: String) -> rusqlite::Result<T> {
    serde_json::from_str(&s).map_err(|e| rusqlite::Error::InvalidColumnName(e.to_string()))
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serialising plain data cannot fail")
}

const USER_COLS: &str = "id, email, role, workspace_id, created_at, updated_at, password_hash";

fn user_row(r: &Row) -> rusqlite::Result<UserRecord> {
    let role: String = r.get(2)?;
    Ok(UserRecord {
        user: User {
            id: oid(r.get(0)?)?,
            email: r.get(1)?,
            role: role
                .parse()
                .map_err(|_| rusqlite::Error::InvalidColumnName(format!("role {role}")))?,
            workspace_id: r.get::<_, Option<String>>(3)?.map(oid).transpose()?,
            created_at: ts(r.get(4)?)?,
            updated_at: ts(r.get(5)?)?,
        },
        password_hash: r.get(6)?,
    })
}

const WS_COLS: &str = "id, name, video_limit, videos_used, created_at, updated_at";

fn ws_row(r: &Row) -> rusqlite::Result<Workspace> {
    Ok(Workspace {
        id: oid(r.get(0)?)?,
        name: r.get(1)?,
        video_limit: r.get(2)?,
        videos_used: r.get(3)?,
        created_at: ts(r.get(4)?)?,
        updated_at: ts(r.get(5)?)?,
    })
}

const PRODUCT_COLS: &str =
    "id, workspace_id, user_id, title, sku, img_urls, created_at, updated_at";

fn product_row(r: &Row) -> rusqlite::Result<Product> {
    Ok(Product {
        id: oid(r.get(0)?)?,
        workspace_id: oid(r.get(1)?)?,
        user_id: r.get::<_, Option<String>>(2)?.map(oid).transpose()?,
        title: r.get(3)?,
        sku: r.get(4)?,
        img_urls: json(r.get(5)?)?,
        videos: Vec::new(),
        created_at: ts(r.get(6)?)?,
        updated_at: ts(r.get(7)?)?,
    })
}

/// Fills each product's `videos` from `product_videos`, oldest first.
fn attach_videos(conn: &Connection, products: &mut [Product]) -> rusqlite::Result<()> {
    let mut stmt = conn
        .prepare_cached("SELECT entry FROM product_videos WHERE product_id = ?1 ORDER BY rowid")?;
    for p in products.iter_mut() {
        p.videos = stmt
            .query_map([p.id.to_string()], |r| json::<ProductVideo>(r.get(0)?))?
            .collect::<rusqlite::Result<_>>()?;
    }
    Ok(())
}

const VIDEO_COLS: &str =
    "id, user_id, workspace_id, product_id, template, status, error, metadata, created_at, updated_at";

fn video_row(r: &Row) -> rusqlite::Result<AiVideo> {
    let status: String = r.get(5)?;
    Ok(AiVideo {
        id: oid(r.get(0)?)?,
        user_id: oid(r.get(1)?)?,
        workspace_id: oid(r.get(2)?)?,
        product_id: oid(r.get(3)?)?,
        template: r.get(4)?,
        status: status
            .parse()
            .map_err(|_| rusqlite::Error::InvalidColumnName(format!("status {status}")))?,
        error: r.get(6)?,
        metadata: json::<VideoMetadata>(r.get(7)?)?,
        created_at: ts(r.get(8)?)?,
        updated_at: ts(r.get(9)?)?,
    })
}

fn find_video_in(conn: &Connection, id: ObjectId) -> rusqlite::Result<Option<AiVideo>> {
    conn.query_row(
        &format!("SELECT {VIDEO_COLS} FROM aivideos WHERE id = ?1"),
        [id.to_string()],
        video_row,
    )
    .optional()
}

fn save_video(tx: &Transaction, v: &AiVideo) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE aivideos SET status = ?2, error = ?3, metadata = ?4, updated_at = ?5 WHERE id = ?1",
        params![
            v.id.to_string(),
            v.status.as_str(),
            v.error,
            to_json(&v.metadata),
            v.updated_at.to_string()
        ],
    )?;
    Ok(())
}

fn find_entry(tx: &Transaction, video: ObjectId) -> rusqlite::Result<Option<ProductVideo>> {
    tx.query_row(
        "SELECT entry FROM product_videos WHERE video_id = ?1",
        [video.to_string()],
        |r| json::<ProductVideo>(r.get(0)?),
    )
    .optional()
}

fn save_entry(
    tx: &Transaction,
    product: ObjectId,
    e: &ProductVideo,
    at: Timestamp,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE product_videos SET entry = ?2 WHERE video_id = ?1",
        params![e.video_id.to_string(), to_json(e)],
    )?;
    tx.execute(
        "UPDATE products SET updated_at = ?2 WHERE id = ?1",
        params![product.to_string(), at.to_string()],
    )?;
    Ok(())
}

const EVENT_COLS: &str = "id, endpoint, payload, video_id, status_code, outcome, created_at";

fn event_row(r: &Row) -> rusqlite::Result<WebhookEvent> {
    Ok(WebhookEvent {
        id: oid(r.get(0)?)?,
        endpoint: r.get(1)?,
        payload: json(r.get(2)?)?,
        video_id: r.get(3)?,
        status_code: r.get(4)?,
        outcome: r.get(5)?,
        created_at: ts(r.get(6)?)?,
    })
}

fn insert_event_in(conn: &Connection, e: &WebhookEvent) -> rusqlite::Result<()> {
    conn.execute(
        &format!("INSERT INTO webhook_events ({EVENT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
        params![
            e.id.to_string(),
            e.endpoint,
            to_json(&e.payload),
            e.video_id,
            e.status_code,
            e.outcome,
            e.created_at.to_string()
        ],
    )?;
    Ok(())
}

/// Builds the WHERE clause of an event query; values are bound, never spliced.
fn event_filter(q: &EventQuery) -> (String, Vec<String>) {
    let mut clauses = Vec::new();
    let mut args = Vec::new();
    if let Some(e) = &q.endpoint {
        args.push(e.clone());
        clauses.push(format!("endpoint = ?{}", args.len()));
    }
    if let Some(v) = &q.video_id {
        args.push(v.clone());
        clauses.push(format!("video_id = ?{}", args.len()));
    }
    if let Some(f) = q.from {
        args.push(f.to_string());
        clauses.push(format!("created_at >= ?{}", args.len()));
    }
    if let Some(t) = q.to {
        args.push(t.to_string());
        clauses.push(format!("created_at < ?{}", args.len()));
    }
    let sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    (sql, args)
}

#[async_trait]
impl Store for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn subscribe(&self) -> broadcast::Receiver<LiveChange> {
        self.live.subscribe()
    }

    async fn insert_user(&self, rec: &UserRecord) -> StoreResult<()> {
        let rec = rec.clone();
        self.write(move |c| {
            let u = &rec.user;
            c.execute(
                &format!("INSERT INTO users ({USER_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                params![
                    u.id.to_string(),
                    u.email,
                    u.role.as_str(),
                    u.workspace_id.map(|w| w.to_string()),
                    u.created_at.to_string(),
                    u.updated_at.to_string(),
                    rec.password_hash
                ],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    StoreError::Conflict("Email already registered".into())
                }
                other => backend(other),
            })?;
            Ok(())
        })
        .await
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        let email = email.to_string();
        self.read(move |c| {
            c.query_row(
                &format!("SELECT {USER_COLS} FROM users WHERE email = ?1"),
                [email],
                user_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn find_user(&self, id: ObjectId) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE id = ?1");
        Ok(self.find_by_id(sql, id, user_row).await?.map(|r| r.user))
    }

    async fn count_users_with_role(&self, role: Role) -> StoreResult<u64> {
        self.read(move |c| {
            c.query_row(
                "SELECT COUNT(*) FROM users WHERE role = ?1",
                [role.as_str()],
                |r| r.get(0),
            )
            .map_err(backend)
        })
        .await
    }

    async fn insert_workspace(&self, ws: &Workspace) -> StoreResult<()> {
        let ws = ws.clone();
        self.write(move |c| {
            c.execute(
                &format!("INSERT INTO workspaces ({WS_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                params![
                    ws.id.to_string(),
                    ws.name,
                    ws.video_limit,
                    ws.videos_used,
                    ws.created_at.to_string(),
                    ws.updated_at.to_string()
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn find_workspace(&self, id: ObjectId) -> StoreResult<Option<Workspace>> {
        let sql = format!("SELECT {WS_COLS} FROM workspaces WHERE id = ?1");
        self.find_by_id(sql, id, ws_row).await
    }

    async fn list_workspaces(&self) -> StoreResult<Vec<Workspace>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {WS_COLS} FROM workspaces ORDER BY name, id"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map([], ws_row)
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)?;
            Ok(rows)
        })
        .await
    }

    async fn reserve_quota(&self, ws: ObjectId, n: u32) -> StoreResult<Quota> {
        self.write(move |c| {
            let now = Timestamp::now().to_string();
            // One conditional UPDATE: the check and the count cannot be separated by another request.
            let changed = c
                .execute(
                    "UPDATE workspaces SET videos_used = videos_used + ?2, updated_at = ?3
                     WHERE id = ?1 AND videos_used + ?2 <= video_limit",
                    params![ws.to_string(), n, now],
                )
                .map_err(backend)?;
            if changed == 1 {
                return Ok(Quota::Reserved);
            }
            let row = c
                .query_row(
                    "SELECT video_limit, videos_used FROM workspaces WHERE id = ?1",
                    [ws.to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(backend)?;
            Ok(match row {
                Some((limit, used)) => Quota::Exceeded { limit, used },
                None => Quota::NoWorkspace,
            })
        })
        .await
    }

    async fn release_quota(&self, ws: ObjectId, n: u32) -> StoreResult<()> {
        self.write(move |c| {
            c.execute(
                "UPDATE workspaces SET videos_used = MAX(videos_used - ?2, 0), updated_at = ?3
                 WHERE id = ?1",
                params![ws.to_string(), n, Timestamp::now().to_string()],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn insert_product(&self, p: &Product) -> StoreResult<()> {
        let p = p.clone();
        self.write(move |c| {
            c.execute(
                &format!(
                    "INSERT INTO products ({PRODUCT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ),
                params![
                    p.id.to_string(),
                    p.workspace_id.to_string(),
                    p.user_id.map(|u| u.to_string()),
                    p.title,
                    p.sku,
                    to_json(&p.img_urls),
                    p.created_at.to_string(),
                    p.updated_at.to_string()
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn find_product(&self, id: ObjectId) -> StoreResult<Option<Product>> {
        Ok(self.find_products(&[id]).await?.into_iter().next())
    }

    async fn find_products(&self, ids: &[ObjectId]) -> StoreResult<Vec<Product>> {
        let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {PRODUCT_COLS} FROM products WHERE id = ?1"
                ))
                .map_err(backend)?;
            let mut out = Vec::with_capacity(ids.len());
            for id in &ids {
                if let Some(p) = stmt
                    .query_row([id], product_row)
                    .optional()
                    .map_err(backend)?
                {
                    out.push(p);
                }
            }
            attach_videos(c, &mut out).map_err(backend)?;
            Ok(out)
        })
        .await
    }

    async fn list_products(
        &self,
        ws: ObjectId,
        page: u64,
        limit: u64,
    ) -> StoreResult<(Vec<Product>, u64)> {
        self.read(move |c| {
            let total: u64 = c
                .query_row(
                    "SELECT COUNT(*) FROM products WHERE workspace_id = ?1",
                    [ws.to_string()],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {PRODUCT_COLS} FROM products WHERE workspace_id = ?1
                     ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3"
                ))
                .map_err(backend)?;
            let mut rows = stmt
                .query_map(
                    params![ws.to_string(), limit, (page.saturating_sub(1)) * limit],
                    product_row,
                )
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)?;
            attach_videos(c, &mut rows).map_err(backend)?;
            Ok((rows, total))
        })
        .await
    }

    async fn insert_videos(&self, videos: &[AiVideo]) -> StoreResult<()> {
        let videos = videos.to_vec();
        let live = self.live.clone();
        self.write(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            for v in &videos {
                tx.execute(
                    &format!(
                        "INSERT INTO aivideos ({VIDEO_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                    ),
                    params![
                        v.id.to_string(),
                        v.user_id.to_string(),
                        v.workspace_id.to_string(),
                        v.product_id.to_string(),
                        v.template,
                        v.status.as_str(),
                        v.error,
                        to_json(&v.metadata),
                        v.created_at.to_string(),
                        v.updated_at.to_string()
                    ],
                )
                .map_err(backend)?;
                let entry = ProductVideo {
                    video_id: v.id,
                    template_id: v.metadata.template_id.clone(),
                    template_name: v.template.clone(),
                    status: v.status,
                    video_url: None,
                    youtube_url: None,
                    img_s3_url: None,
                    error: None,
                    created_at: v.created_at,
                    completed_at: None,
                    failed_at: None,
                };
                tx.execute(
                    "INSERT INTO product_videos (video_id, product_id, entry) VALUES (?1, ?2, ?3)",
                    params![v.id.to_string(), v.product_id.to_string(), to_json(&entry)],
                )
                .map_err(backend)?;
                tx.execute(
                    "UPDATE products SET updated_at = ?2 WHERE id = ?1",
                    params![v.product_id.to_string(), v.created_at.to_string()],
                )
                .map_err(backend)?;
            }
            tx.commit().map_err(backend)?;
            Self::publish(&live, videos.into_iter().map(|video| LiveChange::Video { video }));
            Ok(())
        })
        .await
    }

    async fn set_job_ids(&self, jobs: &[(ObjectId, String)]) -> StoreResult<()> {
        let jobs = jobs.to_vec();
        let live = self.live.clone();
        self.write(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let mut changed = Vec::new();
            for (id, job) in &jobs {
                if let Some(mut v) = find_video_in(&tx, *id).map_err(backend)? {
                    v.metadata.external_job_id = Some(job.clone());
                    save_video(&tx, &v).map_err(backend)?;
                    changed.push(LiveChange::Video { video: v });
                }
            }
            tx.commit().map_err(backend)?;
            Self::publish(&live, changed);
            Ok(())
        })
        .await
    }

    async fn fail_unsent(&self, ids: &[ObjectId], reason: &str, at: Timestamp) -> StoreResult<()> {
        let ids = ids.to_vec();
        let change = VideoChange::Fail {
            error: reason.to_string(),
        };
        let live = self.live.clone();
        self.write(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let mut changed = Vec::new();
            for id in ids {
                let Some(mut v) = find_video_in(&tx, id).map_err(backend)? else {
                    continue;
                };
                if matches!(v.status, VideoStatus::Completed | VideoStatus::Failed) {
                    continue;
                }
                let mut entry = find_entry(&tx, id).map_err(backend)?;
                apply_change(&mut v, entry.as_mut(), &change, at);
                save_video(&tx, &v).map_err(backend)?;
                if let Some(e) = &entry {
                    save_entry(&tx, v.product_id, e, at).map_err(backend)?;
                }
                changed.push(LiveChange::Video { video: v });
            }
            tx.commit().map_err(backend)?;
            Self::publish(&live, changed);
            Ok(())
        })
        .await
    }

    async fn find_video(&self, id: ObjectId) -> StoreResult<Option<AiVideo>> {
        self.read(move |c| find_video_in(c, id).map_err(backend))
            .await
    }

    async fn apply_webhook(
        &self,
        video_id: ObjectId,
        change: &VideoChange,
        event: EventDraft,
    ) -> StoreResult<Applied> {
        let change = change.clone();
        let live = self.live.clone();
        self.write(move |c| {
            // IMMEDIATE takes the write lock up front, so the status read below is the one we update.
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let at = event.created_at;
            let Some(mut video) = find_video_in(&tx, video_id).map_err(backend)? else {
                let event = event.finish(404, MSG_VIDEO_NOT_FOUND);
                insert_event_in(&tx, &event).map_err(backend)?;
                tx.commit().map_err(backend)?;
                Self::publish(&live, [LiveChange::Event { event }]);
                return Ok(Applied::NotFound);
            };
            let previous = video.status;
            let kind = change.kind();
            let decision = decide(kind, previous);
            if decision == crate::model::webhook::Decision::Apply {
                let mut entry = find_entry(&tx, video_id).map_err(backend)?;
                apply_change(&mut video, entry.as_mut(), &change, at);
                save_video(&tx, &video).map_err(backend)?;
                if let Some(e) = &entry {
                    save_entry(&tx, video.product_id, e, at).map_err(backend)?;
                }
            }
            let (status, message) = response_line(kind, decision);
            let event = event.finish(status, message);
            insert_event_in(&tx, &event).map_err(backend)?;
            tx.commit().map_err(backend)?;
            let mut changes = vec![LiveChange::Event { event }];
            if decision == crate::model::webhook::Decision::Apply {
                changes.insert(
                    0,
                    LiveChange::Video {
                        video: video.clone(),
                    },
                );
            }
            Self::publish(&live, changes);
            Ok(Applied::Done {
                decision,
                video,
                previous,
            })
        })
        .await
    }

    async fn insert_event(&self, event: &WebhookEvent) -> StoreResult<()> {
        let event = event.clone();
        let live = self.live.clone();
        self.write(move |c| {
            insert_event_in(c, &event).map_err(backend)?;
            Self::publish(&live, [LiveChange::Event { event }]);
            Ok(())
        })
        .await
    }

    async fn list_events(&self, q: &EventQuery) -> StoreResult<(Vec<WebhookEvent>, u64)> {
        let q = q.clone();
        self.read(move |c| {
            let (filter, mut args) = event_filter(&q);
            let total: u64 = c
                .query_row(
                    &format!("SELECT COUNT(*) FROM webhook_events {filter}"),
                    rusqlite::params_from_iter(args.iter()),
                    |r| r.get(0),
                )
                .map_err(backend)?;
            args.push(q.limit.to_string());
            args.push((q.page.saturating_sub(1) * q.limit).to_string());
            let n = args.len();
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {EVENT_COLS} FROM webhook_events {filter}
                     ORDER BY created_at DESC, id DESC LIMIT CAST(?{} AS INTEGER) OFFSET CAST(?{} AS INTEGER)",
                    n - 1,
                    n
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args.iter()), event_row)
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)?;
            Ok((rows, total))
        })
        .await
    }

    async fn find_event(&self, id: ObjectId) -> StoreResult<Option<WebhookEvent>> {
        let sql = format!("SELECT {EVENT_COLS} FROM webhook_events WHERE id = ?1");
        self.find_by_id(sql, id, event_row).await
    }

    async fn purge_events_before(&self, before: Timestamp, max: u64) -> StoreResult<u64> {
        self.write(move |c| {
            let n = c
                .execute(
                    "DELETE FROM webhook_events WHERE id IN (
                        SELECT id FROM webhook_events WHERE created_at < ?1
                        ORDER BY created_at LIMIT ?2)",
                    params![before.to_string(), max],
                )
                .map_err(backend)?;
            Ok(n as u64)
        })
        .await
    }

    async fn event_counts_by_hour(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<HourlyCount>> {
        self.read(move |c| {
            // Timestamps are stored as `YYYY-MM-DDTHH:MM:SS.mmmZ`: the first 13 characters are the hour.
            let mut stmt = c
                .prepare(
                    "SELECT substr(created_at, 1, 13) AS hour, endpoint,
                            status_code BETWEEN 200 AND 299 AS accepted, COUNT(*)
                     FROM webhook_events WHERE created_at >= ?1 AND created_at < ?2
                     GROUP BY hour, endpoint, accepted ORDER BY hour",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![from.to_string(), to.to_string()], |r| {
                    let hour: String = r.get(0)?;
                    Ok(HourlyCount {
                        hour: ts(format!("{hour}:00:00.000Z"))?,
                        endpoint: r.get(1)?,
                        accepted: r.get(2)?,
                        count: r.get(3)?,
                    })
                })
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)?;
            Ok(rows)
        })
        .await
    }

    async fn list_videos(&self, q: &VideoQuery) -> StoreResult<(Vec<AiVideo>, u64)> {
        let q = q.clone();
        self.read(move |c| {
            let mut clauses = Vec::new();
            let mut args: Vec<String> = Vec::new();
            let mut bind = |clause: &str, value: String, clauses: &mut Vec<String>| {
                args.push(value);
                clauses.push(clause.replace('?', &format!("?{}", args.len())));
            };
            if let Some(s) = q.status {
                bind("status = ?", s.as_str().into(), &mut clauses);
            }
            if let Some(w) = q.workspace_id {
                bind("workspace_id = ?", w.to_string(), &mut clauses);
            }
            if let Some(v) = q.video_id {
                bind("id = ?", v.to_string(), &mut clauses);
            }
            if let Some(t) = q.stuck_before {
                bind(
                    "status = 'generating' AND updated_at < ?",
                    t.to_string(),
                    &mut clauses,
                );
            }
            let filter = if clauses.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", clauses.join(" AND "))
            };
            let total: u64 = c
                .query_row(
                    &format!("SELECT COUNT(*) FROM aivideos {filter}"),
                    rusqlite::params_from_iter(args.iter()),
                    |r| r.get(0),
                )
                .map_err(backend)?;
            let sql = format!(
                "SELECT {VIDEO_COLS} FROM aivideos {filter} ORDER BY created_at DESC, id DESC
                 LIMIT {} OFFSET {}",
                q.limit,
                q.page.saturating_sub(1) * q.limit
            );
            let mut stmt = c.prepare(&sql).map_err(backend)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args.iter()), video_row)
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)?;
            Ok((rows, total))
        })
        .await
    }

    async fn video_status_counts(&self) -> StoreResult<Vec<(VideoStatus, u64)>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare("SELECT status, COUNT(*) FROM aivideos GROUP BY status")
                .map_err(backend)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)?;
            Ok(rows
                .into_iter()
                .filter_map(|(s, n)| s.parse().ok().map(|s| (s, n)))
                .collect())
        })
        .await
    }

    async fn finished_videos(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<FinishedVideo>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare(
                    "SELECT status, metadata FROM aivideos
                     WHERE status IN ('completed', 'failed') AND updated_at >= ?1 AND updated_at < ?2",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![from.to_string(), to.to_string()], |r| {
                    Ok((r.get::<_, String>(0)?, json::<VideoMetadata>(r.get(1)?)?))
                })
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)?;
            Ok(rows
                .into_iter()
                .filter_map(|(status, m)| {
                    let status: VideoStatus = status.parse().ok()?;
                    let finished_at = match status {
                        VideoStatus::Completed => m.completed_at,
                        _ => m.failed_at,
                    }?;
                    Some(FinishedVideo {
                        status,
                        queued_at: m.queued_at?,
                        finished_at,
                    })
                })
                .collect())
        })
        .await
    }

    async fn requeue_video(&self, id: ObjectId, at: Timestamp) -> StoreResult<Option<AiVideo>> {
        let live = self.live.clone();
        self.write(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let Some(mut v) = find_video_in(&tx, id).map_err(backend)? else {
                return Ok(None);
            };
            if v.status != VideoStatus::Failed {
                return Ok(None);
            }
            let mut entry = find_entry(&tx, id).map_err(backend)?;
            requeue(&mut v, entry.as_mut(), at);
            save_video(&tx, &v).map_err(backend)?;
            if let Some(e) = &entry {
                save_entry(&tx, v.product_id, e, at).map_err(backend)?;
            }
            tx.commit().map_err(backend)?;
            Self::publish(&live, [LiveChange::Video { video: v.clone() }]);
            Ok(Some(v))
        })
        .await
    }
}
