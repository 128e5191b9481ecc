//! WAL checkpoints on a thread of their own, so the writer spends its time on writes.
//!
//! By default SQLite checkpoints inside the commit that fills the WAL past 1,000 pages: the writer
//! (and every write waiting on it) pays for copying the WAL back into the database and its fsync.
//! Here a separate connection runs a PASSIVE checkpoint every [`EVERY`]; it never blocks the writer
//! or a reader. The writer keeps an automatic checkpoint as a backstop at a much larger WAL
//! ([`BACKSTOP_PAGES`]), reached only if this thread falls far behind. Durability is unchanged: a
//! commit is durable once its WAL frames are synced, checkpointed or not.
//!
//! Small and often beats large and rare: a checkpoint ends with an fsync of the database file, and
//! the writer's own fsync of the WAL waits behind that write-back. Under the bench's callback load,
//! checkpoints every 100 ms held every call in flight for a few milliseconds each time (p99
//! 14.3-19.4 ms over 6 runs); every 25 ms, 10.9-14.4 ms, interleaved; with no checkpoints at all,
//! 10.2-11.6 ms. A checkpoint with nothing to copy costs a read of the WAL index.

use rusqlite::Connection;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the checkpointer runs (see above for why this often).
const EVERY: Duration = Duration::from_millis(25);
/// The writer's own automatic checkpoint, in WAL pages (64 MiB of 4 KiB pages).
pub(super) const BACKSTOP_PAGES: u32 = 16_384;
/// The WAL file is truncated back to at most this size after a checkpoint resets it.
pub(super) const WAL_SIZE_LIMIT: i64 = 64 << 20;

/// The running checkpointer; dropping it stops the thread (after at most one more pass).
pub(super) struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: std::thread::Thread,
}

impl Checkpointer {
    /// Starts checkpointing the database `conn` is open on.
    pub fn start(conn: Connection) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    // A failure (the disk is full, the file was taken away) is the writer's to
                    // report: its own commits fail the same way. Try again next time.
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::debug!(target: "video_service", error = %e, "WAL checkpoint failed");
                    }
                    std::thread::park_timeout(EVERY);
                }
            })?;
        Ok(Self {
            stop,
            thread: handle.thread().clone(),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.unpark();
    }
}
