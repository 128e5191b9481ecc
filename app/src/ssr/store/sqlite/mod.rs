//! The embedded store: SQLite in WAL mode, migrations (`migrations/*.sql`) compiled into the binary.
//!
//! Durable: a write is answered only once its commit is on disk (`synchronous=FULL`). One writer
//! thread owns the write connection and commits every write waiting at that moment together, with one
//! fsync (`writer.rs`, group commit); a bounded pool of readers serves reads from `spawn_blocking`, so
//! the async runtime never waits on disk. Every statement is fixed text with named, bound parameters.
//!
//! One file per aggregate, as in `mongo/`: `users`, `workspaces`, `products`, `videos`, `events`,
//! `reports`.

mod checkpoint;
mod events;
mod idempotency;
mod notifications;
mod products;
mod reports;
pub mod seed;
mod sessions;
mod users;
mod videos;
mod workspaces;
mod writer;

use super::{LiveFeed, PageSpec, Paged, Store, StoreError, StoreResult, LIVE_BUFFER};
use crate::model::{LiveChange, ObjectId, Timestamp};
use rusqlite::{Connection, Row, ToSql, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, Semaphore};
use writer::Writer;

/// Schema versions, applied in order; `PRAGMA user_version` remembers the last one applied.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/001_init.sql"),
    include_str!("migrations/002_videos_by_created.sql"),
    include_str!("migrations/003_callback_tokens.sql"),
    include_str!("migrations/004_webhook_deliveries.sql"),
    include_str!("migrations/005_revoked_sessions.sql"),
    include_str!("migrations/006_idempotency_keys.sql"),
    include_str!("migrations/007_store_probe.sql"),
    include_str!("migrations/008_rollups.sql"),
    include_str!("migrations/009_video_list_indexes.sql"),
    include_str!("migrations/010_processing_daily.sql"),
    include_str!("migrations/011_notifications.sql"),
    include_str!("migrations/012_finished_rollup.sql"),
    include_str!("migrations/013_workspaces_by_name.sql"),
];

/// At most this many reader connections exist, so a burst of reads waits instead of opening files
/// without bound.
const READERS: usize = 4;

pub struct SqliteStore {
    path: PathBuf,
    writer: Writer,
    _checkpointer: checkpoint::Checkpointer,
    readers: Arc<Mutex<Vec<Connection>>>,
    reader_permits: Arc<Semaphore>,
    /// The in-process live feed; changes are sent right after their commit.
    live: broadcast::Sender<crate::ssr::store::Live>,
}

/// How long the writer waits for the database lock (another process holding it) before its batch
/// fails as unavailable. A write that arrives while a batch is waiting runs in the next batch, so it
/// is answered within twice this: 2 s, under `STORE_DEADLINE` (a callback's batch fails before its
/// caller gives up, so no callback is answered 503 and then applied) and under the 3 s RCK and the
/// platform expect. (At 1.5 s a write could wait 3 s: a REST call, which has no deadline of its
/// own, answered late.)
const WRITER_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1000);

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // Every fixed statement stays prepared (the default keeps 16; the writer alone uses more).
    conn.set_prepared_statement_cache_capacity(256);
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is on disk when it returns, so an acknowledged write survives power loss. Group
    // commit keeps the throughput (one fsync per batch, not per write).
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // A batch that has to run again with a savepoint per write (one of its writes failed) keeps the
    // sub-journals in memory instead of a temporary file the writer would pwrite page by page.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(conn)
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

impl SqliteStore {
    /// Opens (creating if needed) `videos.db` in `data_dir` and brings its schema up to date.
    pub fn open(data_dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::setup(format!("creating {}", data_dir.display()), e))?;
        let path = data_dir.join("videos.db");
        let mut writer = connect(&path)
            .map_err(|e| StoreError::setup(format!("opening {}", path.display()), e))?;
        migrate(&mut writer).map_err(|e| StoreError::setup("migrating the schema", e))?;
        writer
            .busy_timeout(WRITER_BUSY_TIMEOUT)
            .and_then(|()| {
                writer.execute_batch(notifications::NOTIFY_POLICY)?;
                writer.pragma_update(None, "wal_autocheckpoint", checkpoint::BACKSTOP_PAGES)?;
                writer.pragma_update(None, "journal_size_limit", checkpoint::WAL_SIZE_LIMIT)
            })
            .map_err(|e| StoreError::setup("configuring the writer", e))?;
        let checkpointer = connect(&path)
            .map_err(|e| StoreError::setup(format!("opening {}", path.display()), e))
            .and_then(|c| {
                checkpoint::Checkpointer::start(c)
                    .map_err(|e| StoreError::setup("starting the checkpoint thread", e))
            })?;
        let live = broadcast::channel(LIVE_BUFFER).0;
        let writer = Writer::start(writer, live.clone())
            .map_err(|e| StoreError::setup("starting the writer thread", e))?;
        Ok(Self {
            path,
            writer,
            _checkpointer: checkpointer,
            readers: Arc::new(Mutex::new(Vec::new())),
            reader_permits: Arc::new(Semaphore::new(READERS)),
            live,
        })
    }

    /// Whether this server sends email (`SMTP_URL` is set). Off, a finished video is queued for
    /// notifications only if its workspace has a Slack, Discord or webhook URL; on (the default),
    /// every finished video is, as every batch may be emailed.
    pub async fn set_email_notifications(&self, on: bool) -> StoreResult<()> {
        self.write(move |t| {
            t.execute("UPDATE temp.notify_policy SET email = ?1", [on])?;
            Ok(())
        })
        .await
    }

    /// Runs `f` in the next group commit: inside an IMMEDIATE transaction (the write lock is held,
    /// so what it reads is what it updates), answered once that commit is durable. The live changes
    /// it returns are published after the commit.
    async fn write_tx<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Fn(&Transaction) -> StoreResult<(T, Vec<LiveChange>)> + Send + 'static,
    {
        timed("write", self.writer.write(f)).await
    }

    /// [`Self::write_tx`] for a write that changes nothing the live feed shows.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Fn(&Transaction) -> StoreResult<T> + Send + 'static,
    {
        timed("write", self.writer.write(move |t| Ok((f(t)?, Vec::new())))).await
    }

    /// Runs `f` on a pooled reader connection.
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let permit = self
            .reader_permits
            .clone()
            .acquire_owned()
            .await
            .expect("the reader semaphore is never closed");
        let readers = self.readers.clone();
        let path = self.path.clone();
        let read = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let pooled = readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let conn = match pooled {
                Some(c) => c,
                None => connect(&path)?,
            };
            let out = f(&conn);
            readers.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
            out
        });
        timed("read", async { read.await? }).await
    }

    /// The row of `sql` (a fixed statement taking the id as `:id`), if there is one.
    async fn find_by_id<T: Send + 'static>(
        &self,
        sql: &'static str,
        id: ObjectId,
        row: fn(&Row) -> rusqlite::Result<T>,
    ) -> StoreResult<Option<T>> {
        self.read(move |c| find_one(c, sql, id, row)).await
    }
}

/// `fut`, its time recorded as `racky_store_operation_duration_seconds{store="sqlite",operation}`
/// (a write includes its wait for the group commit and the fsync).
async fn timed<T>(operation: &'static str, fut: impl std::future::Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let out = fut.await;
    metrics::histogram!("racky_store_operation_duration_seconds", "store" => "sqlite", "operation" => operation)
        .record(started.elapsed().as_secs_f64());
    out
}

fn find_one<T>(
    c: &Connection,
    sql: &'static str,
    id: ObjectId,
    row: fn(&Row) -> rusqlite::Result<T>,
) -> StoreResult<Option<T>> {
    use rusqlite::OptionalExtension;
    Ok(c.prepare_cached(sql)?
        .query_row(&[(":id", &id.to_string() as &dyn ToSql)], row)
        .optional()?)
}

/// Every row of a fixed statement.
fn all<T>(
    c: &Connection,
    sql: &'static str,
    params: &[(&str, &dyn ToSql)],
    row: fn(&Row) -> rusqlite::Result<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = c.prepare_cached(sql)?;
    let rows = stmt
        .query_map(params, row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// The one paged-query helper every list uses: `count_sql` counts what `filter` selects, `page_sql`
/// returns one page of it; it takes the filter's parameters plus `:limit` and `:offset`.
fn paged<T>(
    c: &Connection,
    count_sql: &'static str,
    page_sql: &'static str,
    filter: &[(&str, &dyn ToSql)],
    page: PageSpec,
    row: fn(&Row) -> rusqlite::Result<T>,
) -> StoreResult<Paged<T>> {
    let total: u64 = c
        .prepare_cached(count_sql)?
        .query_row(filter, |r| r.get(0))?;
    if page.limit == 0 {
        return Ok(Paged {
            items: Vec::new(),
            total,
        });
    }
    let limit = i64::try_from(page.limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(page.offset()).unwrap_or(i64::MAX);
    let mut params = filter.to_vec();
    params.push((":limit", &limit));
    params.push((":offset", &offset));
    let items = all(c, page_sql, &params, row)?;
    Ok(Paged { items, total })
}

// --- the maintained counters (`migrations/008_rollups.sql`)

const BUMP_EVENTS: &str = "INSERT INTO event_rollup (hour, endpoint, accepted, n)
     VALUES (:hour, :endpoint, :accepted, :n)
     ON CONFLICT (hour, endpoint, accepted) DO UPDATE SET n = n + excluded.n";
const BUMP_STATUS: &str = "INSERT INTO video_counts (status, n) VALUES (:status, :n)
     ON CONFLICT (status) DO UPDATE SET n = n + excluded.n";
const BUMP_PROCESSING: &str = "INSERT INTO processing_rollup (hour, status, bucket, n, sum_ms)
     VALUES (:hour, :status, :bucket, :n, :sum_ms)
     ON CONFLICT (hour, status, bucket) DO UPDATE SET n = n + excluded.n, sum_ms = sum_ms + excluded.sum_ms";
const BUMP_PROCESSING_DAILY: &str = "INSERT INTO processing_daily (day, status, bucket, n, sum_ms)
     VALUES (:day, :status, :bucket, :n, :sum_ms)
     ON CONFLICT (day, status, bucket) DO UPDATE SET n = n + excluded.n, sum_ms = sum_ms + excluded.sum_ms";
const BUMP_FINISHED: &str = "INSERT INTO finished_rollup (hour, workspace_id, status, reason, n)
     VALUES (:at, :ws, :status, :reason, :n)
     ON CONFLICT (hour, status, reason, workspace_id) DO UPDATE SET n = n + excluded.n";
const BUMP_FINISHED_DAILY: &str =
    "INSERT INTO finished_daily (day, workspace_id, status, reason, n)
     VALUES (:at, :ws, :status, :reason, :n)
     ON CONFLICT (day, status, reason, workspace_id) DO UPDATE SET n = n + excluded.n";

/// Counts `n` more (or fewer) calls of the event's hour, endpoint and acceptance: added to the
/// running batch's tally when there is one (see [`writer`]), else written now.
fn bump_events(
    t: &Connection,
    created_at: Timestamp,
    endpoint: &str,
    status_code: u16,
    n: i64,
) -> rusqlite::Result<()> {
    let key = (
        super::hour_of(created_at),
        endpoint.to_string(),
        (200..300).contains(&status_code),
    );
    match writer::tally(key, |tally, key| *tally.events.entry(key).or_default() += n) {
        Some(key) => apply_events(t, &key, n),
        None => Ok(()),
    }
}

/// Applies a delta of the video counters: to the running batch's tally when there is one, else
/// now.
fn bump_videos(t: &Connection, d: super::CounterDelta) -> rusqlite::Result<()> {
    match writer::tally(d, |tally, d| tally.videos.extend(d)) {
        Some(d) => apply_videos(t, &d),
        None => Ok(()),
    }
}

/// Writes a batch's tally: each counter it moved, once.
fn apply_tally(t: &Connection, tally: writer::Tally) -> rusqlite::Result<()> {
    for (key, n) in &tally.events {
        if *n != 0 {
            apply_events(t, key, *n)?;
        }
    }
    apply_videos(t, &tally.videos.merged())
}

fn apply_events(t: &Connection, key: &writer::EventKey, n: i64) -> rusqlite::Result<()> {
    let (hour, endpoint, accepted) = key;
    t.prepare_cached(BUMP_EVENTS)?
        .execute(rusqlite::named_params! {
            ":hour": hour.to_string(),
            ":endpoint": endpoint,
            ":accepted": accepted,
            ":n": n,
        })?;
    Ok(())
}

fn apply_videos(t: &Connection, d: &super::CounterDelta) -> rusqlite::Result<()> {
    for (status, n) in &d.statuses {
        t.prepare_cached(BUMP_STATUS)?
            .execute(rusqlite::named_params! { ":status": status.as_str(), ":n": n })?;
    }
    for (hour, status, bucket, n, sum_ms) in &d.processing {
        t.prepare_cached(BUMP_PROCESSING)?
            .execute(rusqlite::named_params! {
                ":hour": hour.to_string(), ":status": status.as_str(), ":bucket": bucket,
                ":n": n, ":sum_ms": sum_ms,
            })?;
        t.prepare_cached(BUMP_PROCESSING_DAILY)?
            .execute(rusqlite::named_params! {
                ":day": super::day_of(*hour).to_string(), ":status": status.as_str(),
                ":bucket": bucket, ":n": n, ":sum_ms": sum_ms,
            })?;
    }
    for f in &d.finished {
        for (sql, at) in [
            (BUMP_FINISHED, f.hour),
            (BUMP_FINISHED_DAILY, super::day_of(f.hour)),
        ] {
            t.prepare_cached(sql)?.execute(rusqlite::named_params! {
                ":at": at.to_string(), ":ws": f.workspace.to_string(),
                ":status": f.status.as_str(), ":reason": f.reason, ":n": f.n,
            })?;
        }
    }
    Ok(())
}

// --- row mapping shared by the aggregates

fn corrupt(what: String) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnName(what)
}

fn ts(s: String) -> rusqlite::Result<Timestamp> {
    Timestamp::parse(&s).ok_or_else(|| corrupt(format!("timestamp {s}")))
}

fn oid(s: String) -> rusqlite::Result<ObjectId> {
    s.parse().map_err(|_| corrupt(format!("object id {s}")))
}

fn json<T: serde::de::DeserializeOwned>(s: String) -> rusqlite::Result<T> {
    serde_json::from_str(&s).map_err(|e| corrupt(e.to_string()))
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serialising plain data cannot fail")
}

/// A text column holding one of the model's enums (`status`, `role`).
fn parsed<T: std::str::FromStr>(s: String, what: &str) -> rusqlite::Result<T> {
    s.parse().map_err(|_| corrupt(format!("{what} {s}")))
}

impl LiveFeed for SqliteStore {
    fn subscribe(&self) -> broadcast::Receiver<crate::ssr::store::Live> {
        self.live.subscribe()
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> StoreResult<()> {
        self.write(|t| {
            t.execute(
                "INSERT OR REPLACE INTO store_probe (id, at) VALUES (1, :at)",
                rusqlite::named_params! { ":at": Timestamp::now().to_string() },
            )?;
            Ok(())
        })
        .await
    }
}
