//! The spool: callbacks that arrived while the store could not record them.
//!
//! "Every call is recorded" has to hold through a store outage. A callback the store could not take
//! is answered 503 (RCK retries it later), and its event (status 503, `Storage unavailable`) is
//! appended to `DATA_DIR/spool/webhook-events.jsonl`, one JSON line, fsync'd before the answer goes
//! out. A worker writes the spooled events to the store when it is back, with their own ids and
//! original `createdAt`. Inserting an event is idempotent by id, so a crash half-way through a drain
//! (or an event the store took after all) never records a call twice.
//!
//! Draining first renames the file (appends go on into a new one), then inserts its lines in order
//! and deletes it only once every line is stored. A line torn by a crash mid-append is skipped and
//! logged: its call was never acknowledged.

use crate::model::WebhookEvent;
use crate::ssr::store::{Store, StoreError};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const FILE: &str = "webhook-events.jsonl";
const DRAINING: &str = "webhook-events.draining.jsonl";

pub struct Spool {
    dir: PathBuf,
    /// Serialises appends and the rename that starts a drain.
    append: Mutex<()>,
    /// One drain at a time.
    drain: tokio::sync::Mutex<()>,
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool file: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("spool task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl Spool {
    /// The spool under `data_dir/spool` (created if missing).
    pub fn open(data_dir: &Path) -> std::io::Result<Self> {
        let dir = data_dir.join("spool");
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            dir,
            append: Mutex::new(()),
            drain: tokio::sync::Mutex::new(()),
        })
    }

    /// Appends the event and syncs it to disk before returning.
    pub async fn append(
        self: &std::sync::Arc<Self>,
        event: &WebhookEvent,
    ) -> Result<(), SpoolError> {
        let mut line = serde_json::to_vec(event).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let spool = self.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let _guard = spool.append.lock().unwrap_or_else(|p| p.into_inner());
            let path = spool.dir.join(FILE);
            let created = !path.exists();
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            f.write_all(&line)?;
            f.sync_data()?;
            if created {
                sync_dir(&spool.dir)?;
            }
            Ok(())
        })
        .await??;
        Ok(())
    }

    /// Whether events wait to be written to the store.
    pub fn pending(&self) -> bool {
        let has = |name| {
            std::fs::metadata(self.dir.join(name))
                .map(|m| m.len() > 0)
                .unwrap_or(false)
        };
        has(DRAINING) || has(FILE)
    }

    /// How many calls wait to be written to the store (lines of the spool files; they are empty
    /// but during and just after an outage).
    pub fn depth(&self) -> u64 {
        [DRAINING, FILE]
            .iter()
            .filter_map(|name| std::fs::read(self.dir.join(name)).ok())
            .map(|b| b.iter().filter(|c| **c == b'\n').count() as u64)
            .sum()
    }

    /// Writes every spooled event to the store; how many lines it went through. On a store error
    /// the rest stays spooled for the next drain.
    pub async fn drain(&self, store: &dyn Store) -> Result<usize, SpoolError> {
        let _one = self.drain.lock().await;
        let draining = self.dir.join(DRAINING);
        // A drain that stopped half-way is finished first; then the live file is taken.
        if !draining.exists() {
            let _guard = self.append.lock().unwrap_or_else(|p| p.into_inner());
            let live = self.dir.join(FILE);
            if !live.exists() {
                return Ok(0);
            }
            std::fs::rename(&live, &draining)?;
            sync_dir(&self.dir)?;
        }
        let path = draining.clone();
        let events = tokio::task::spawn_blocking(move || read_lines(&path)).await??;
        let n = events.len();
        for event in &events {
            store.insert_event(event).await?;
        }
        std::fs::remove_file(&draining)?;
        sync_dir(&self.dir)?;
        if n > 0 {
            tracing::info!(target: "webhook_logger", events = n, "spooled webhook events written to the store");
        }
        Ok(n)
    }
}

fn read_lines(path: &Path) -> std::io::Result<Vec<WebhookEvent>> {
    let f = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut out = Vec::new();
    for (i, line) in f.split(b'\n').enumerate() {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice(&line) {
            Ok(e) => out.push(e),
            Err(e) => {
                tracing::warn!(target: "webhook_logger", line = i + 1, "skipping a torn spool line: {e}")
            }
        }
    }
    Ok(out)
}

/// Makes a file's creation, rename or removal durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ObjectId, Timestamp};
    use crate::ssr::store::sqlite::SqliteStore;
    use crate::ssr::store::{EventQuery, EventStore};
    use std::sync::Arc;

    fn event(n: i64) -> WebhookEvent {
        WebhookEvent {
            id: ObjectId::new(),
            endpoint: "/videos/success".into(),
            payload: serde_json::json!({ "videoId": format!("v{n}") }),
            video_id: Some(format!("v{n}")),
            status_code: 503,
            outcome: "Storage unavailable".into(),
            created_at: Timestamp::from_millis(1_700_000_000_000 + n),
        }
    }

    #[tokio::test]
    async fn spooled_calls_survive_a_restart_and_reach_the_store_once() {
        let dir = tempfile::tempdir().unwrap();
        let events: Vec<WebhookEvent> = (0..5).map(event).collect();
        {
            let spool = Arc::new(Spool::open(dir.path()).unwrap());
            for e in &events {
                spool.append(e).await.unwrap();
            }
            assert!(spool.pending());
        }
        // A crash mid-append leaves a torn last line: skipped, the rest kept.
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("spool").join(FILE))
            .and_then(|mut f| f.write_all(b"{\"_id\":\"6b0b"))
            .unwrap();
        // The next start.
        let spool = Spool::open(dir.path()).unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).unwrap();
        assert_eq!(spool.drain(&store).await.unwrap(), 5);
        assert!(!spool.pending());
        // An event the store already holds (a drain that crashed before removing its file) is
        // not recorded twice.
        let again = Arc::new(Spool::open(dir.path()).unwrap());
        again.append(&events[0]).await.unwrap();
        again.drain(&store).await.unwrap();
        let q = EventQuery {
            page: 1,
            limit: 100,
            ..Default::default()
        };
        let stored = store.list_events(&q).await.unwrap();
        assert_eq!(stored.total, 5);
        for e in &events {
            assert!(stored.items.contains(e), "{} kept as it was", e.id);
        }
    }
}
