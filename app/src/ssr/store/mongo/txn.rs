//! Multi-document transactions: run an attempt, commit, and run it all again on transient errors and
//! on conditional updates that found the record changed, bounded.

use crate::ssr::store::StoreError;
use mongodb::error::{
    Error as MongoError, ErrorKind, WriteFailure, UNKNOWN_TRANSACTION_COMMIT_RESULT,
};
use mongodb::ClientSession;
use std::time::Duration;

/// How many times a transaction is tried before giving up. Conflicts resolve quickly (each round
/// one writer wins and the others then see its result), so this is only hit when something is wrong.
pub(super) const MAX_TXN_ATTEMPTS: u32 = 60;
/// No new attempt starts after this long: an outage (transient errors that keep coming) is
/// reported, for the caller to answer 503, instead of being waited out.
pub(super) const TXN_PATIENCE: Duration = Duration::from_millis(2000);
/// How many times a commit whose outcome is unknown is sent again.
const MAX_COMMIT_RETRIES: u32 = 5;

/// Whether the server answered with error `code`, however the driver reports it (a command error,
/// a write error, or one of an `insertMany`'s write errors).
fn has_code(e: &MongoError, code: i32) -> bool {
    match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == code,
        ErrorKind::Command(c) => c.code == code,
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .is_some_and(|es| es.iter().any(|w| w.code == code)),
        _ => false,
    }
}

/// A duplicate key (E11000).
pub(super) fn is_duplicate(e: &MongoError) -> bool {
    has_code(e, 11000)
}

/// The server (or the driver) would not take a document as written, for its field names or depth
/// (`$`-prefixed or dotted names on servers before 5.0, empty names, nesting past the limit).
pub(super) fn payload_refused(e: &MongoError) -> bool {
    /// BadValue, Overflow, DollarPrefixedFieldName, EmptyFieldName, DottedFieldName,
    /// BSONObjectTooLarge, and the "invalid field name" / "nested too deep" assertions.
    const CODES: &[i32] = &[2, 15, 52, 56, 57, 10334, 16755, 17419, 17280];
    let code = match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .and_then(|es| es.first())
            .map(|w| w.code),
        _ => None,
    };
    code.is_some_and(|c| CODES.contains(&c)) || matches!(&*e.kind, ErrorKind::BsonSerialization(_))
}

/// A write conflict (112): a concurrent transaction changed the same document first. The server
/// labels it transient, but it is contention, not an outage: it is retried by count, like
/// `Step::Retry`, however long the round of writers takes (a caller's deadline still bounds it).
pub(super) fn is_write_conflict(e: &MongoError) -> bool {
    has_code(e, 112)
}

// --- transactions

/// What one attempt of a transaction concluded.
pub(super) enum Step<T> {
    /// Commit and return this.
    Commit(T),
    /// Nothing to write: abort and return this.
    Abort(T),
    /// A conditional update found the document changed since it was read: run it all again.
    Retry,
}

/// An attempt's failure: the driver's (maybe transient), or a final one of ours.
pub(super) enum TxnError {
    Mongo(MongoError),
    Store(StoreError),
}

impl From<MongoError> for TxnError {
    fn from(e: MongoError) -> Self {
        TxnError::Mongo(e)
    }
}

impl From<StoreError> for TxnError {
    fn from(e: StoreError) -> Self {
        TxnError::Store(e)
    }
}

pub(super) type Attempt<T> = Result<Step<T>, TxnError>;

/// Sends the commit again while its outcome is unknown (it is idempotent).
pub(super) async fn commit(s: &mut ClientSession) -> mongodb::error::Result<()> {
    let mut tries = 0;
    loop {
        match s.commit_transaction().await {
            Err(e)
                if e.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT)
                    && tries < MAX_COMMIT_RETRIES =>
            {
                tries += 1;
            }
            other => return other,
        }
    }
}

/// A short random pause, growing with the attempt, so conflicting writers spread out.
pub(super) async fn pause(attempt: u32) {
    use rand::Rng;
    let cap = (5u64 << attempt.min(6)).min(250);
    let ms = rand::thread_rng().gen_range(1..=cap);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Runs `$attempt` (an expression using the session `$s` and evaluating to a future of
/// `Attempt<T>`) in a transaction with a durable write concern (majority, journaled), from the start again on transient
/// errors and write conflicts, bounded.
macro_rules! transaction {
    ($store:expr, |$s:ident| $attempt:expr) => {{
        use mongodb::error::TRANSIENT_TRANSACTION_ERROR;
        use $crate::ssr::store::mongo::txn::TXN_PATIENCE;
        use $crate::ssr::store::mongo::txn::{
            commit, is_write_conflict, pause, Step, TxnError, MAX_TXN_ATTEMPTS,
        };
        use $crate::ssr::store::StoreError;
        let started = std::time::Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut session = $store.client.start_session().await?;
            session
                .start_transaction()
                .write_concern($crate::ssr::store::mongo::durable())
                .await?;
            let outcome = {
                let $s: &mut mongodb::ClientSession = &mut session;
                $attempt.await
            };
            let retry = attempt < MAX_TXN_ATTEMPTS;
            // Write conflicts are retried by count; other transient errors (an outage) also by time.
            let retry_transient = retry && started.elapsed() < TXN_PATIENCE;
            let again = |e: &mongodb::error::Error| {
                (retry && is_write_conflict(e))
                    || (retry_transient && e.contains_label(TRANSIENT_TRANSACTION_ERROR))
            };
            match outcome {
                Ok(Step::Commit(v)) => match commit(&mut session).await {
                    Ok(()) => break Ok(v),
                    Err(e) if again(&e) => {}
                    Err(e) => break Err(StoreError::from(e)),
                },
                Ok(Step::Abort(v)) => {
                    let _ = session.abort_transaction().await;
                    break Ok(v);
                }
                Ok(Step::Retry) if retry => {
                    let _ = session.abort_transaction().await;
                }
                Ok(Step::Retry) => {
                    let _ = session.abort_transaction().await;
                    break Err(StoreError::Contended(attempt));
                }
                Err(TxnError::Mongo(e)) if again(&e) => {
                    let _ = session.abort_transaction().await;
                }
                Err(TxnError::Mongo(e)) => {
                    let _ = session.abort_transaction().await;
                    break Err(StoreError::from(e));
                }
                Err(TxnError::Store(e)) => {
                    let _ = session.abort_transaction().await;
                    break Err(e);
                }
            }
            pause(attempt).await;
        }
    }};
}
