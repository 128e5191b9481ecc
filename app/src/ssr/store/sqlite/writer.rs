//! Group commit: one writer thread owns the write connection and applies every write waiting at that
//! moment in one transaction, with one fsync (`synchronous=FULL`), then answers each.
//!
//! A write is acknowledged only after the commit that holds it is durable, so "2xx only after
//! commit" now means "after it is on disk". The writes of a batch run one after the other in its
//! transaction. If one fails, the transaction is rolled back and the batch runs again with each
//! write in a SAVEPOINT of its own: the one that fails is undone alone and answered with its error,
//! the others commit. (Savepoints for every batch cost each write a copy of every page it touches;
//! a failing write is rare.) If the commit itself fails, every write of the batch gets that error
//! and none of them happened.
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
//!
//! Each committed batch is measured for `/metrics` ([`record_batch`]): how many writes it carried,
//! how long applying them took, and how long the commit took (writing the WAL frames, then the
//! fsync). With one writer, their sum over a second is how busy the writer was: near 100 %, it is
//! what bounds the write rate.

use crate::model::{LiveChange, Timestamp};
use crate::ssr::store::{CounterDelta, StoreError, StoreResult};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
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

/// A queued write, type-erased so writes of every result type share one queue.
///
/// A write may run twice: first with the rest of its batch, and again, in a savepoint of its own,
/// if some write of that batch failed and the batch was rolled back (see [`commit_batch`]). So it
/// is an `Fn`, and it keeps its outcome until the batch's fate is known.
trait Job: Send {
    /// Runs the write inside the batch's transaction and keeps its outcome. Returns the live changes
    /// to publish if the batch commits, or `None` if the write failed.
    fn run(&mut self, t: &Transaction) -> Option<Vec<LiveChange>>;
    /// Answers the caller: with the write's own error if it failed, else with the batch's fate.
    fn answer(self: Box<Self>, committed: Result<(), Arc<rusqlite::Error>>);
    /// Its caller stopped waiting (it timed out and answered 503): the write must not happen.
    fn abandoned(&self) -> bool;
}

struct Pending<T, F> {
    f: F,
    outcome: Option<StoreResult<T>>,
    answer: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send + 'static,
    F: Fn(&Transaction) -> StoreResult<(T, Vec<LiveChange>)> + Send + 'static,
{
    fn run(&mut self, t: &Transaction) -> Option<Vec<LiveChange>> {
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.f)(t)))
            .unwrap_or(Err(StoreError::WritePanicked));
        let (outcome, changes) = match out {
            Ok((out, changes)) => (Ok(out), Some(changes)),
            Err(e) => (Err(e), None),
        };
        self.outcome = Some(outcome);
        changes
    }

    fn answer(self: Box<Self>, committed: Result<(), Arc<rusqlite::Error>>) {
        let answer = match (self.outcome, committed) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(out)), Ok(())) => Ok(out),
            (_, Err(e)) => Err(StoreError::Commit(e)),
            // Never ran, yet its batch committed: cannot happen; refuse rather than claim success.
            (None, Ok(())) => Err(StoreError::WriterGone),
        };
        let _ = self.answer.send(answer);
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
    /// failed). The live changes `f` returns are published after the commit. `f` may run twice
    /// (see [`Job`]): it must not act outside the transaction.
    pub async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Fn(&Transaction) -> StoreResult<(T, Vec<LiveChange>)> + Send + 'static,
    {
        let (answer, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(Pending {
                f,
                outcome: None,
                answer,
            }))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
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
        commit_batch(&mut conn, &mut batch, &live);
    }
}

/// How the writes of a batch share its transaction.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// One after the other with nothing between them: the common case, and the cheap one.
    Together,
    /// Each in a SAVEPOINT of its own, so one that fails is undone alone and the rest commit.
    Apart,
}

/// What became of one attempt at a batch.
enum Attempt {
    /// Committed (or the commit failed): every write is answered.
    Done,
    /// A write failed while running together: the transaction was rolled back, nothing happened.
    Retry,
}

/// Applies the batch: first together; if one write fails, the whole transaction is rolled back and
/// the batch runs again apart. A savepoint costs every write a copy of each page it touches, so
/// only a batch that needs them pays for them.
fn commit_batch(
    conn: &mut Connection,
    jobs: &mut Vec<Box<dyn Job>>,
    live: &broadcast::Sender<crate::ssr::store::Live>,
) {
    if let Attempt::Retry = attempt(conn, jobs, live, Mode::Together) {
        attempt(conn, jobs, live, Mode::Apart);
    }
    debug_assert!(jobs.is_empty());
}

fn attempt(
    conn: &mut Connection,
    jobs: &mut Vec<Box<dyn Job>>,
    live: &broadcast::Sender<crate::ssr::store::Live>,
    mode: Mode,
) -> Attempt {
    // A write whose caller gave up is dropped unanswered (nobody is listening), never applied.
    jobs.retain(|job| !job.abandoned());
    let begun = Instant::now();
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            tracing::error!(target: "video_service", error = %e, "cannot begin a write transaction");
            return answer_all(jobs, Err(Arc::new(e)));
        }
    };
    TALLIES.set(Some(Tallies {
        batch: Tally::default(),
        write: Tally::default(),
    }));
    let mut changes = Vec::with_capacity(jobs.len());
    for job in jobs.iter_mut() {
        match run_one(job.as_mut(), &tx, mode) {
            Ok(Some(c)) => changes.extend(c),
            // Undone alone by its savepoint; it is answered with its own error.
            Ok(None) if mode == Mode::Apart => {}
            Ok(None) => {
                // Dropping the transaction rolls it back, and the tallies go with it.
                TALLIES.take();
                return Attempt::Retry;
            }
            Err(e) => {
                // The savepoint itself failed: the transaction cannot be trusted; refuse it all.
                TALLIES.take();
                drop(tx);
                return answer_all(jobs, Err(Arc::new(e)));
            }
        }
    }
    let tally = TALLIES.take().map(|t| t.batch).unwrap_or_default();
    let mut applied = begun;
    let committed = super::apply_tally(&tx, tally)
        .and_then(|()| {
            applied = Instant::now();
            tx.commit()
        })
        .map_err(Arc::new);
    match &committed {
        Ok(()) => {
            record_batch(jobs.len(), applied - begun, applied.elapsed());
            for change in changes {
                // Nobody listening is fine.
                let _ = live.send(crate::ssr::store::LiveMessage::new(change));
            }
        }
        Err(e) => {
            tracing::error!(target: "video_service", error = %e, writes = jobs.len(), "group commit failed; every write in it is refused");
        }
    }
    answer_all(jobs, committed)
}

/// A committed batch's figures: `racky_store_batch_writes_total` (writes committed),
/// `racky_store_batch_apply_seconds` (begin to the last write, counters included) and
/// `racky_store_batch_commit_seconds` (the commit: writing the WAL frames, then the fsync). Once
/// per batch, not per write.
fn record_batch(writes: usize, applying: Duration, committing: Duration) {
    metrics::counter!("racky_store_batch_writes_total").increment(writes as u64);
    metrics::histogram!("racky_store_batch_apply_seconds").record(applying.as_secs_f64());
    metrics::histogram!("racky_store_batch_commit_seconds").record(committing.as_secs_f64());
}

/// Answers every write of the batch with its fate (a write that failed, with its own error).
fn answer_all(jobs: &mut Vec<Box<dyn Job>>, fate: Result<(), Arc<rusqlite::Error>>) -> Attempt {
    jobs.drain(..).for_each(|job| job.answer(fate.clone()));
    Attempt::Done
}

/// Runs one write: in `Apart` mode inside a savepoint of its own, so its failure (or panic) undoes
/// only its own changes. Its counter increments join the batch's only if the write stays. `Err` only
/// if the savepoint itself failed.
fn run_one(
    job: &mut dyn Job,
    t: &Transaction,
    mode: Mode,
) -> rusqlite::Result<Option<Vec<LiveChange>>> {
    if mode == Mode::Apart {
        t.prepare_cached("SAVEPOINT job")?.execute([])?;
    }
    let changes = job.run(t);
    let write = TALLIES.with_borrow_mut(|t| t.as_mut().map(|t| std::mem::take(&mut t.write)));
    if mode == Mode::Apart {
        match changes {
            Some(_) => t.prepare_cached("RELEASE job")?.execute([]).map(drop)?,
            None => t.execute_batch("ROLLBACK TO job; RELEASE job")?,
        }
    }
    if let (Some(write), Some(_)) = (write, &changes) {
        TALLIES.with_borrow_mut(|t| t.as_mut().map(|t| t.batch.absorb(write)));
    }
    Ok(changes)
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

    #[tokio::test]
    async fn a_failed_or_panicking_write_is_undone_alone_and_the_rest_of_its_batch_commits() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        s.write(|t| Ok(t.execute_batch("CREATE TABLE scratch (n INTEGER NOT NULL)")?))
            .await
            .unwrap();
        // Many writes at once, so they share batches: every seventh fails and the 23rd panics,
        // each after inserting its row; the rest insert theirs and succeed.
        let writes = (0..60i64).map(|i| {
            s.write(move |t| {
                t.execute("INSERT INTO scratch (n) VALUES (?1)", [i])?;
                if i == 23 {
                    panic!("write {i} panics after writing");
                }
                if i % 7 == 6 {
                    return Err(StoreError::Conflict(format!("write {i} refused")));
                }
                Ok(i)
            })
        });
        let results = futures::future::join_all(writes).await;
        let kept: Vec<i64> = (0..60).filter(|i| *i != 23 && i % 7 != 6).collect();
        let answered: Vec<i64> = results
            .iter()
            .filter_map(|r| r.as_ref().ok().copied())
            .collect();
        assert_eq!(answered, kept);
        assert!(matches!(results[23], Err(StoreError::WritePanicked)));
        assert!(matches!(&results[6], Err(StoreError::Conflict(m)) if m == "write 6 refused"));
        let mut rows: Vec<i64> = s
            .read(|c| {
                let mut st = c.prepare("SELECT n FROM scratch")?;
                let rows = st.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
            .unwrap();
        rows.sort_unstable();
        assert_eq!(rows, kept);
    }
}
