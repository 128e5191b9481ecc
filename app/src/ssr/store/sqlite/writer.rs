//! Group commit: one writer thread owns the write connection and applies every write waiting at that
//! moment in one transaction, with one fsync (`synchronous=FULL`), then answers each.
//!
//! A write is acknowledged only after the commit that holds it is durable, so "2xx only after
//! commit" now means "after it is on disk". Each write runs inside its own SAVEPOINT: one that fails
//! is rolled back alone and answered with its error, the others commit. If the commit itself fails,
//! every write of the batch gets that error and none of them happened.
//!
//! Batches are bounded ([`MAX_BATCH`]) and never wait for company: when the writer is idle a lone
//! write is committed at once; under load, the writes that queued during one fsync share the next.
//!
//! The maintained counters (the rollups of `migrations/008_rollups.sql` and after) are the same few
//! rows for every write, so each write's increments are added up in a [`Tally`] instead, and the
//! batch writes every counter it moved once, just before its commit, in the same transaction. A
//! write that fails takes its increments with it, as its savepoint takes its rows.
//!
//! A write whose caller stopped waiting before its batch began (the caller timed out during a store
//! outage and answered 503) is dropped, never applied late.

use crate::model::{LiveChange, Timestamp};
use crate::ssr::store::{CounterDelta, StoreError, StoreResult};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc, oneshot};

/// The most writes one transaction carries.
const MAX_BATCH: usize = 512;
/// How many writes may queue before callers wait to enqueue (backpressure, not an error).
const QUEUE: usize = 4096;

/// An event counter's key: the hour, the endpoint, and whether the call was accepted (2xx).
pub(super) type EventKey = (Timestamp, String, bool);

/// Counter increments, added up.
#[derive(Default)]
pub(super) struct Tally {
    pub events: HashMap<EventKey, i64>,
    pub videos: CounterDelta,
}

impl Tally {
    fn absorb(&mut self, other: Tally) {
        for (key, n) in other.events {
            *self.events.entry(key).or_default() += n;
        }
        self.videos.extend(other.videos);
    }
}

/// The batch being written on this (the writer's) thread: its tally so far, and the running
/// write's. `None` anywhere else, where counters are written as they move.
struct Tallies {
    batch: Tally,
    write: Tally,
}

thread_local! {
    static TALLIES: RefCell<Option<Tallies>> = const { RefCell::new(None) };
}

/// Adds `value` to the running write's tally with `add` if a batch is being written on this
/// thread; otherwise hands it back, for the caller to write the counter itself.
pub(super) fn tally<T>(value: T, add: impl FnOnce(&mut Tally, T)) -> Option<T> {
    TALLIES.with_borrow_mut(|t| match t {
        Some(t) => {
            add(&mut t.write, value);
            None
        }
        None => Some(value),
    })
}

/// What a write left to do once its batch's fate is known: answer its caller.
type Reply = Box<dyn FnOnce(Result<(), Arc<rusqlite::Error>>) + Send>;

/// A queued write, type-erased so writes of every result type share one queue.
trait Job: Send {
    /// Runs inside the batch's transaction; returns the live changes (published only if the batch
    /// commits) and how to answer.
    fn run(self: Box<Self>, t: &Transaction) -> (Vec<LiveChange>, Reply);
    /// The batch could not even start: answer with that.
    fn refuse(self: Box<Self>, e: Arc<rusqlite::Error>);
    /// Its caller stopped waiting (it timed out and answered 503): the write must not happen.
    fn abandoned(&self) -> bool;
}

struct Pending<T, F> {
    f: F,
    answer: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Transaction) -> StoreResult<(T, Vec<LiveChange>)> + Send + 'static,
{
    fn run(self: Box<Self>, t: &Transaction) -> (Vec<LiveChange>, Reply) {
        let answer = self.answer;
        match in_savepoint(t, self.f) {
            Ok((out, changes)) => {
                let reply: Reply = Box::new(move |committed| {
                    let _ = answer.send(committed.map(|()| out).map_err(StoreError::Commit));
                });
                (changes, reply)
            }
            Err(e) => (Vec::new(), Box::new(move |_| drop(answer.send(Err(e))))),
        }
    }

    fn refuse(self: Box<Self>, e: Arc<rusqlite::Error>) {
        let _ = self.answer.send(Err(StoreError::Commit(e)));
    }

    fn abandoned(&self) -> bool {
        self.answer.is_closed()
    }
}

/// The handle the store keeps; dropping it ends the writer thread once the queue is drained.
pub(super) struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub fn start(
        conn: Connection,
        live: broadcast::Sender<crate::ssr::store::Live>,
    ) -> std::io::Result<Self> {
        let (jobs, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, rx, live))?;
        Ok(Self { jobs })
    }

    /// Runs `f` in the next group transaction; answers once that transaction is committed (or
    /// failed). The live changes `f` returns are published after the commit.
    pub async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction) -> StoreResult<(T, Vec<LiveChange>)> + Send + 'static,
    {
        let (answer, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(Pending { f, answer }))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }
}

/// Runs one write in a savepoint of its own, so its failure (or panic) undoes only its own changes.
fn in_savepoint<T>(
    t: &Transaction,
    f: impl FnOnce(&Transaction) -> StoreResult<T>,
) -> StoreResult<T> {
    t.prepare_cached("SAVEPOINT job")?.execute([])?;
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(t)))
        .unwrap_or(Err(StoreError::WritePanicked));
    // The write's counter increments join the batch's only if the write stays.
    let write = TALLIES.with_borrow_mut(|t| t.as_mut().map(|t| std::mem::take(&mut t.write)));
    match out {
        Ok(out) => {
            t.prepare_cached("RELEASE job")?.execute([])?;
            if let Some(write) = write {
                TALLIES.with_borrow_mut(|t| t.as_mut().map(|t| t.batch.absorb(write)));
            }
            Ok(out)
        }
        Err(e) => {
            t.execute_batch("ROLLBACK TO job; RELEASE job")?;
            Err(e)
        }
    }
}

fn run(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Box<dyn Job>>,
    live: broadcast::Sender<crate::ssr::store::Live>,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, batch.drain(..), &live);
    }
}

fn commit_batch(
    conn: &mut Connection,
    jobs: impl Iterator<Item = Box<dyn Job>>,
    live: &broadcast::Sender<crate::ssr::store::Live>,
) {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            tracing::error!(target: "video_service", error = %e, "cannot begin a write transaction");
            let e = Arc::new(e);
            jobs.for_each(|job| job.refuse(e.clone()));
            return;
        }
    };
    TALLIES.set(Some(Tallies {
        batch: Tally::default(),
        write: Tally::default(),
    }));
    let done: Vec<(Vec<LiveChange>, Reply)> = jobs
        .filter(|job| !job.abandoned())
        .map(|job| job.run(&tx))
        .collect();
    let tally = TALLIES.take().map(|t| t.batch).unwrap_or_default();
    match super::apply_tally(&tx, tally).and_then(|()| tx.commit()) {
        Ok(()) => {
            for (changes, reply) in done {
                for change in changes {
                    // Nobody listening is fine.
                    let _ = live.send(crate::ssr::store::LiveMessage::new(change));
                }
                reply(Ok(()));
            }
        }
        Err(e) => {
            tracing::error!(target: "video_service", error = %e, writes = done.len(), "group commit failed; every write in it is refused");
            let e = Arc::new(e);
            for (_, reply) in done {
                reply(Err(e.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{bump_videos, SqliteStore};
    use crate::model::VideoStatus::{Completed, Failed};
    use crate::model::{ObjectId, VideoStatus};
    use crate::ssr::store::{CounterDelta, Reports, StoreError};

    fn moved(status: VideoStatus, n: i64) -> CounterDelta {
        CounterDelta {
            statuses: vec![(status, n)],
            ..Default::default()
        }
    }

    async fn counts(s: &SqliteStore) -> Vec<(VideoStatus, u64)> {
        let mut c = s.video_status_counts().await.unwrap();
        c.retain(|(_, n)| *n > 0);
        c.sort_by_key(|(st, _)| st.as_str());
        c
    }

    #[tokio::test]
    async fn a_batch_writes_its_counters_once_and_a_failed_write_takes_its_own_away() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        // Many writes at once, so they share batches; every fifth fails after moving a counter.
        let writes = (0..50).map(|i| {
            s.write(move |t| {
                if i % 5 == 4 {
                    bump_videos(t, moved(Failed, 100))?;
                    return Err(StoreError::Conflict(format!("write {i} refused")));
                }
                bump_videos(t, moved(Completed, 2))?;
                bump_videos(t, moved(Completed, -1))?;
                Ok(ObjectId::new())
            })
        });
        let results = futures::future::join_all(writes).await;
        assert_eq!(results.iter().filter(|r| r.is_err()).count(), 10);
        assert_eq!(counts(&s).await, [(Completed, 40)]);
        // Reopened: what was counted is on disk.
        drop(s);
        let s = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(counts(&s).await, [(Completed, 40)]);
    }
}
