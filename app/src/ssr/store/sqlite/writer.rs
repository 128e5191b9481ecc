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
//! A write whose caller stopped waiting before its batch began (the caller timed out during a store
//! outage and answered 503) is dropped, never applied late.

use crate::model::LiveChange;
use crate::ssr::store::{StoreError, StoreResult};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc, oneshot};

/// The most writes one transaction carries.
const MAX_BATCH: usize = 512;
/// How many writes may queue before callers wait to enqueue (backpressure, not an error).
const QUEUE: usize = 4096;

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
    match out {
        Ok(out) => {
            t.prepare_cached("RELEASE job")?.execute([])?;
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
    let done: Vec<(Vec<LiveChange>, Reply)> = jobs
        .filter(|job| !job.abandoned())
        .map(|job| job.run(&tx))
        .collect();
    match tx.commit() {
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
