//! Storage. Services talk to `dyn Store`, the sum of one small trait per aggregate; SQLite (embedded,
//! the default) and MongoDB (`MONGODB_URI`) implement each of them, in `sqlite/` and `mongo/`, one
//! file per aggregate with the same name on both sides (`users.rs`, `videos.rs`, ...): a reader finds
//! a query by name.
//!
//! Adapters translate; they hold no business rule. A status change is loaded, planned by
//! `model::plan` and written conditionally on the status it was planned from. No SQL or BSON lives
//! outside this module.

pub mod mongo;
pub mod sqlite;

pub use crate::model::plan::{Applied, EventDraft};

use crate::model::webhook::{CallbackAuth, VideoChange};
pub use crate::model::Keyset;
use crate::model::{
    AiVideo, LiveChange, ObjectId, Product, Role, Timestamp, User, VideoStatus, WebhookEvent,
    Workspace,
};
use async_trait::async_trait;
use tokio::sync::broadcast;

/// How long a signed delivery's `webhook-id` is remembered.
pub const DELIVERY_MEMORY_MS: i64 = 24 * 3_600_000;

/// How long an `Idempotency-Key` and its answer are remembered.
pub const IDEMPOTENCY_MEMORY_MS: i64 = 24 * 3_600_000;

/// How many live changes a slow subscriber may fall behind before it is told it lagged (it then
/// catches up by re-reading, see the SSE endpoint).
pub const LIVE_BUFFER: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (duplicate email, ...); the message is safe to show.
    #[error("{0}")]
    Conflict(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("mongodb: {0}")]
    Mongo(#[from] mongodb::error::Error),
    /// A stored record the model cannot represent (written by hand or by another program).
    #[error("stored data: {0}")]
    Corrupt(String),
    /// The store could not be opened or prepared (with what was being done).
    #[error("{context}: {source}")]
    Setup {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A conditional write kept finding the record changed; something is wrong.
    #[error("gave up after {0} attempts: the record kept changing")]
    Contended(u32),
    /// The blocking task running a SQLite read died (it panicked).
    #[error("store task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The group commit holding a write failed: none of its writes happened.
    #[error("sqlite commit: {0}")]
    Commit(#[source] std::sync::Arc<rusqlite::Error>),
    /// A write panicked; it was rolled back alone.
    #[error("a store write panicked")]
    WritePanicked,
    /// The writer thread is gone (the store is shutting down).
    #[error("the store's writer has stopped")]
    WriterGone,
    /// The store did not answer within the time a caller may wait.
    #[error("the store did not answer within {0:?}")]
    TimedOut(std::time::Duration),
}

impl StoreError {
    pub fn setup(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        StoreError::Setup {
            context: context.into(),
            source: source.into(),
        }
    }
}

impl StoreError {
    /// The store cannot be written (or reached) right now, through no fault of the request: an I/O
    /// error, a full disk, a read-only or locked file; MongoDB unreachable, without a primary, or
    /// shutting down; no answer in time. Retrying later may well work: callers answer 503.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Sqlite(e) => sqlite_unavailable(e),
            StoreError::Commit(e) => sqlite_unavailable(e),
            StoreError::Mongo(e) => mongo_unavailable(e),
            StoreError::WriterGone | StoreError::TimedOut(_) => true,
            _ => false,
        }
    }
}

fn sqlite_unavailable(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::*;
    matches!(
        e.sqlite_error_code(),
        Some(
            SystemIoFailure
                | DiskFull
                | ReadOnly
                | CannotOpen
                | DatabaseBusy
                | DatabaseLocked
                | FileLockingProtocolFailed
                | PermissionDenied
                | OutOfMemory
        )
    )
}

fn mongo_unavailable(e: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    /// Not primary, shutting down, stepping down, unreachable, write concern not met in time.
    const CODES: &[i32] = &[
        6, 7, 64, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436,
    ];
    let labelled = [
        "TransientTransactionError",
        "RetryableWriteError",
        "UnknownTransactionCommitResult",
        "SystemOverloadedError",
    ]
    .iter()
    .any(|l| e.contains_label(l));
    let code = match &*e.kind {
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => Some(w.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        _ => None,
    };
    labelled
        || code.is_some_and(|c| CODES.contains(&c))
        || matches!(
            &*e.kind,
            ErrorKind::ServerSelection { .. }
                | ErrorKind::Io(_)
                | ErrorKind::ConnectionPoolCleared { .. }
        )
}

/// How long one store operation on a request's path may take before the caller is answered 503
/// (the bound of a store outage; under the 3 s RCK and the platform expect).
pub const STORE_DEADLINE: std::time::Duration = std::time::Duration::from_millis(2500);

/// `fut`, or `StoreError::TimedOut` after `STORE_DEADLINE`.
pub async fn within<T>(fut: impl std::future::Future<Output = StoreResult<T>>) -> StoreResult<T> {
    tokio::time::timeout(STORE_DEADLINE, fut)
        .await
        .unwrap_or(Err(StoreError::TimedOut(STORE_DEADLINE)))
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A user with the secret part, which never leaves the server.
#[derive(Clone, Debug)]
pub struct UserRecord {
    pub user: User,
    pub password_hash: String,
}

/// Filters of the webhook event log; `page` is 1-based.
#[derive(Clone, Debug, Default)]
pub struct EventQuery {
    pub page: u64,
    pub limit: u64,
    /// Start after this item (keyset paging; `page` is then ignored).
    pub after: Option<Keyset>,
    pub endpoint: Option<String>,
    pub video_id: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

/// Filters of the video list; `page` is 1-based. Newest first.
#[derive(Clone, Debug, Default)]
pub struct VideoQuery {
    pub page: u64,
    pub limit: u64,
    /// Start after this item (keyset paging; `page` is then ignored).
    pub after: Option<Keyset>,
    pub status: Option<VideoStatus>,
    pub workspace_id: Option<ObjectId>,
    pub video_id: Option<ObjectId>,
    /// Only videos `generating` whose `updatedAt` is before this (the stuck ones).
    pub stuck_before: Option<Timestamp>,
    /// Only videos whose error starts with this text.
    pub error_prefix: Option<String>,
}

impl EventQuery {
    /// The rows to skip: none after a keyset.
    pub fn page_spec(&self) -> PageSpec {
        PageSpec {
            page: if self.after.is_some() { 1 } else { self.page },
            limit: self.limit,
        }
    }
}

impl VideoQuery {
    /// The rows to skip: none after a keyset.
    pub fn page_spec(&self) -> PageSpec {
        PageSpec {
            page: if self.after.is_some() { 1 } else { self.page },
            limit: self.limit,
        }
    }
}

/// Status counts as the stores read them (the status as stored); a status this version does not
/// know is left out, not an error.
fn known_statuses(rows: Vec<(Option<String>, u64)>) -> Vec<(VideoStatus, u64)> {
    rows.into_iter()
        .filter_map(|(s, n)| s?.parse().ok().map(|s| (s, n)))
        .collect()
}

/// One page of a list, newest first, and how many match in all.
#[derive(Clone, Debug, PartialEq)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// Which page of a list: 1-based `page` of `limit` items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageSpec {
    pub page: u64,
    pub limit: u64,
}

impl PageSpec {
    /// How many items come before the page (saturating: a page past the end is empty, not an error).
    pub fn offset(&self) -> u64 {
        self.page.saturating_sub(1).saturating_mul(self.limit)
    }
}

/// Webhook calls of one hour (UTC), one endpoint, accepted (2xx) or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HourlyCount {
    /// The start of the hour.
    pub hour: Timestamp,
    pub endpoint: String,
    pub accepted: bool,
    pub count: u64,
}

/// A video that reached a final state, for processing-time statistics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinishedVideo {
    pub status: VideoStatus,
    pub queued_at: Timestamp,
    pub finished_at: Timestamp,
}

impl FinishedVideo {
    /// A final video's times, if its metadata has both.
    pub fn of(status: VideoStatus, m: &crate::model::VideoMetadata) -> Option<Self> {
        Some(Self {
            status,
            queued_at: m.queued_at?,
            finished_at: m.finished_at(status)?,
        })
    }
}

impl FinishedVideo {
    pub fn ms(&self) -> u64 {
        (self.finished_at.millis() - self.queued_at.millis()).max(0) as u64
    }
}

/// The start of the hour (UTC) holding `t`: the key of the rollups.
pub fn hour_of(t: Timestamp) -> Timestamp {
    Timestamp::from_millis(t.millis() - t.millis().rem_euclid(3_600_000))
}

/// The start of the day (UTC) holding `t`: the key of the daily rollup.
pub fn day_of(t: Timestamp) -> Timestamp {
    Timestamp::from_millis(t.millis() - t.millis().rem_euclid(86_400_000))
}

/// The hours `[from's, to)` of the processing rollup as spans to read: whole days from the daily
/// rollup, the hours before the first and after the last whole day from the hourly one. `(daily,
/// start, end)`.
pub fn processing_spans(from: Timestamp, to: Timestamp) -> Vec<(bool, Timestamp, Timestamp)> {
    let start = hour_of(from);
    let first_day = day_of(Timestamp::from_millis(start.millis() + 86_399_999));
    let last_day = day_of(to);
    if first_day >= last_day {
        return vec![(false, start, to)];
    }
    let mut spans = Vec::new();
    if start < first_day {
        spans.push((false, start, first_day));
    }
    spans.push((true, first_day, last_day));
    if last_day < to {
        spans.push((false, last_day, to));
    }
    spans
}

/// The whole hours of `[from, to)` the event rollup answers for: from the first hour starting at or
/// after `from`, to the last one ending at or before `to`, except that a range ending within the
/// last minute (as "until now" does) takes its last hour whole, since nothing is recorded after now
/// but that minute. The part-hours outside are counted from the events.
pub fn whole_hours(from: Timestamp, to: Timestamp) -> (Timestamp, Timestamp) {
    let first = hour_of(Timestamp::from_millis(from.millis() + 3_599_999));
    let until_now = to.millis() + 60_000 >= Timestamp::now().millis();
    let last = if until_now {
        hour_of(Timestamp::from_millis(to.millis() + 3_599_999))
    } else {
        hour_of(to)
    };
    (first, last)
}

/// Finished videos of a range (by the hour they finished in) of one status, in one processing-time
/// bucket (`model::stats::processing_bucket`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessingCount {
    pub status: VideoStatus,
    pub bucket: u32,
    pub count: u64,
    pub sum_ms: u64,
}

/// How writes move the maintained counters: videos per status, and the processing rollup. Both
/// adapters apply it in the transaction of the change it comes from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CounterDelta {
    pub statuses: Vec<(VideoStatus, i64)>,
    /// `(hour, status, bucket, count, sum_ms)` to add (negative: to take away).
    pub processing: Vec<(Timestamp, VideoStatus, u32, i64, i64)>,
    /// Final videos by the hour they finished in, workspace, status and failure reason
    /// (`model::dashboard::failure_reason`; empty for `completed`): `(hour, workspace, status,
    /// reason, count)` to add.
    pub finished: Vec<FinishedDelta>,
}

/// One line of [`CounterDelta::finished`].
#[derive(Clone, Debug, PartialEq)]
pub struct FinishedDelta {
    pub hour: Timestamp,
    pub workspace: ObjectId,
    pub status: VideoStatus,
    pub reason: String,
    pub n: i64,
}

impl FinishedDelta {
    /// A final video's line (none for a video that is not final, or has no finish time).
    pub fn of(
        status: VideoStatus,
        m: &crate::model::VideoMetadata,
        workspace: ObjectId,
        error: Option<&str>,
        n: i64,
    ) -> Option<Self> {
        let reason = match status {
            VideoStatus::Failed => crate::model::dashboard::failure_reason(error),
            VideoStatus::Completed => String::new(),
            _ => return None,
        };
        Some(Self {
            hour: hour_of(m.finished_at(status)?),
            workspace,
            status,
            reason,
            n,
        })
    }
}

impl CounterDelta {
    /// New videos.
    pub fn of_insert(videos: &[AiVideo]) -> Self {
        let mut d = Self::default();
        for v in videos {
            d.add_video(v.status, &v.metadata, 1);
            d.finished.extend(FinishedDelta::of(
                v.status,
                &v.metadata,
                v.workspace_id,
                v.error.as_deref(),
                1,
            ));
        }
        d
    }

    /// A planned change: the video as it was (`expected`, `before`) leaves, as it is now enters.
    pub fn of_write(w: &crate::model::plan::VideoWrite) -> Self {
        let mut d = Self::default();
        d.add_video(w.expected, &w.before, -1);
        d.add_video(w.video.status, &w.video.metadata, 1);
        let ws = w.video.workspace_id;
        let gone = FinishedDelta::of(w.expected, &w.before, ws, w.before_error.as_deref(), -1);
        let new = FinishedDelta::of(
            w.video.status,
            &w.video.metadata,
            ws,
            w.video.error.as_deref(),
            1,
        );
        // A repeat that changes neither the hour nor the reason moves nothing.
        if gone.as_ref().map(|g| (g.hour, &g.reason, g.status))
            != new.as_ref().map(|n| (n.hour, &n.reason, n.status))
        {
            d.finished.extend(gone);
            d.finished.extend(new);
        }
        d
    }

    /// Adds `other`'s lines to these.
    pub fn extend(&mut self, other: CounterDelta) {
        self.statuses.extend(other.statuses);
        self.processing.extend(other.processing);
        self.finished.extend(other.finished);
    }

    /// The same movement with one line per key, counts and sums added up, and without the lines
    /// that add up to nothing: what a batch of writes applies at once.
    pub fn merged(self) -> Self {
        use std::collections::HashMap;
        let mut statuses: HashMap<VideoStatus, i64> = HashMap::new();
        for (status, n) in self.statuses {
            *statuses.entry(status).or_default() += n;
        }
        let mut processing: HashMap<(Timestamp, VideoStatus, u32), (i64, i64)> = HashMap::new();
        for (hour, status, bucket, n, sum_ms) in self.processing {
            let e = processing.entry((hour, status, bucket)).or_default();
            e.0 += n;
            e.1 += sum_ms;
        }
        let mut finished: HashMap<(Timestamp, ObjectId, VideoStatus, String), i64> = HashMap::new();
        for f in self.finished {
            *finished
                .entry((f.hour, f.workspace, f.status, f.reason))
                .or_default() += f.n;
        }
        Self {
            statuses: statuses.into_iter().filter(|(_, n)| *n != 0).collect(),
            processing: processing
                .into_iter()
                .filter(|(_, (n, sum))| (*n, *sum) != (0, 0))
                .map(|((hour, status, bucket), (n, sum))| (hour, status, bucket, n, sum))
                .collect(),
            finished: finished
                .into_iter()
                .filter(|(_, n)| *n != 0)
                .map(|((hour, workspace, status, reason), n)| FinishedDelta {
                    hour,
                    workspace,
                    status,
                    reason,
                    n,
                })
                .collect(),
        }
    }

    fn add_video(&mut self, status: VideoStatus, m: &crate::model::VideoMetadata, sign: i64) {
        self.statuses.push((status, sign));
        if let Some(f) = FinishedVideo::of(status, m) {
            let ms = f.ms();
            self.processing.push((
                hour_of(f.finished_at),
                status,
                crate::model::stats::processing_bucket(ms),
                sign,
                sign * ms as i64,
            ));
        }
    }
}

/// The most common reasons first (ties by text), at most `limit`, and the count of them all.
pub fn top_reasons(
    summed: impl IntoIterator<Item = (String, i64)>,
    limit: u64,
) -> (Vec<(String, u64)>, u64) {
    let mut rows: Vec<(String, u64)> = summed
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| (r, n as u64))
        .collect();
    let total = rows.iter().map(|(_, n)| n).sum();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    (rows, total)
}

/// `(workspace, completed, failed)` from `(workspace, status, count)`, the busiest first (ties by
/// id), at most `limit`.
pub fn busiest_workspaces(
    pairs: impl IntoIterator<Item = (ObjectId, VideoStatus, i64)>,
    limit: u64,
) -> Vec<(ObjectId, u64, u64)> {
    let mut per: std::collections::BTreeMap<ObjectId, (u64, u64)> = Default::default();
    for (ws, status, n) in pairs {
        let slot = per.entry(ws).or_default();
        let n = n.max(0) as u64;
        match status {
            VideoStatus::Completed => slot.0 += n,
            VideoStatus::Failed => slot.1 += n,
            _ => {}
        }
    }
    let mut rows: Vec<(ObjectId, u64, u64)> = per
        .into_iter()
        .filter(|(_, (c, f))| c + f > 0)
        .map(|(ws, (c, f))| (ws, c, f))
        .collect();
    rows.sort_by(|a, b| (b.1 + b.2).cmp(&(a.1 + a.2)).then_with(|| a.0.cmp(&b.0)));
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    rows
}

/// The result of asking for quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quota {
    Reserved,
    Exceeded { limit: u32, used: u32 },
    NoWorkspace,
}

#[async_trait]
pub trait UserStore {
    /// Fails with `Conflict` when the email (case-insensitive) is taken.
    async fn insert_user(&self, user: &UserRecord) -> StoreResult<()>;
    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>>;
    async fn find_user(&self, id: ObjectId) -> StoreResult<Option<User>>;
    async fn count_users_with_role(&self, role: Role) -> StoreResult<u64>;
    /// Replaces the user's password hash (a bcrypt one moved to argon2 at login).
    async fn set_password_hash(&self, id: ObjectId, hash: &str) -> StoreResult<()>;
}

#[async_trait]
pub trait WorkspaceStore {
    async fn insert_workspace(&self, ws: &Workspace) -> StoreResult<()>;
    async fn find_workspace(&self, id: ObjectId) -> StoreResult<Option<Workspace>>;
    /// One page of the workspaces by name (then id), and how many there are.
    async fn list_workspaces(&self, page: PageSpec) -> StoreResult<Paged<Workspace>>;
    /// The workspaces of these ids that exist (in no particular order).
    async fn find_workspaces(&self, ids: &[ObjectId]) -> StoreResult<Vec<Workspace>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(self.find_workspace(*id).await?);
        }
        Ok(out)
    }
    /// Sets a workspace's video limit; the workspace as it is now, none if it does not exist.
    async fn set_video_limit(&self, id: ObjectId, limit: u32) -> StoreResult<Option<Workspace>>;
    /// A workspace's videos per status, and when its newest video was created (index reads: the
    /// status counts walk the workspace's index range).
    async fn workspace_activity(
        &self,
        id: ObjectId,
    ) -> StoreResult<(Vec<(VideoStatus, u64)>, Option<Timestamp>)>;
    /// Atomically counts `n` more videos against the workspace, only if that stays within its limit.
    async fn reserve_quota(&self, ws: ObjectId, n: u32) -> StoreResult<Quota>;
    /// Gives back usage counted by `reserve_quota` for videos that were never generated.
    async fn release_quota(&self, ws: ObjectId, n: u32) -> StoreResult<()>;
}

#[async_trait]
pub trait ProductStore {
    async fn insert_product(&self, product: &Product) -> StoreResult<()>;
    async fn find_product(&self, id: ObjectId) -> StoreResult<Option<Product>>;
    /// The products found, in the order asked for.
    async fn find_products(&self, ids: &[ObjectId]) -> StoreResult<Vec<Product>>;
    /// The products found (in no particular order) without their `videos` entries, which grow
    /// with the product's history: titles and images for lists.
    async fn find_product_cards(&self, ids: &[ObjectId]) -> StoreResult<Vec<Product>>;
    /// The workspace's products, newest first.
    async fn list_products(&self, ws: ObjectId, page: PageSpec) -> StoreResult<Paged<Product>>;
}

#[async_trait]
pub trait VideoStore {
    /// Inserts the AIVideo records and their `Product.videos` entries
    /// (`ProductVideo::pending_for`) in one commit.
    async fn insert_videos(&self, videos: &[AiVideo]) -> StoreResult<()>;
    /// Records RCK's job id of each video.
    async fn set_job_ids(&self, jobs: &[(ObjectId, String)]) -> StoreResult<()>;
    /// Fails the videos that are not final yet (`model::plan::plan_fail`), in one commit; returns
    /// the ones it changed, as stored.
    async fn fail_videos(
        &self,
        ids: &[ObjectId],
        reason: &str,
        at: Timestamp,
    ) -> StoreResult<Vec<AiVideo>>;
    /// Sends a `failed` video back to `generating` (`model::plan::plan_requeue`) with the callback
    /// token hash of the batch that resends it. `None` when the video does not exist or is not
    /// `failed`.
    async fn requeue_video(
        &self,
        id: ObjectId,
        callback_token_hash: Option<String>,
        at: Timestamp,
    ) -> StoreResult<Option<AiVideo>>;
    async fn find_video(&self, id: ObjectId) -> StoreResult<Option<AiVideo>>;
    /// The videos of these ids that exist (in no particular order).
    async fn find_videos(&self, ids: &[ObjectId]) -> StoreResult<Vec<AiVideo>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(self.find_video(*id).await?);
        }
        Ok(out)
    }
    /// Fails up to `max` videos still waiting for RCK since before `before`
    /// (`model::plan::plan_timeout`), each conditionally, so several instances sweeping at once
    /// change each video once; returns the ones it changed.
    async fn fail_timed_out(
        &self,
        before: Timestamp,
        at: Timestamp,
        max: u64,
    ) -> StoreResult<Vec<AiVideo>>;
    /// One page of the videos `q` selects, newest first (`createdAt`, then id).
    async fn page_videos(&self, q: &VideoQuery) -> StoreResult<Vec<AiVideo>>;
    /// How many videos `q` selects (its page and keyset aside).
    async fn count_videos(&self, q: &VideoQuery) -> StoreResult<u64>;
    async fn list_videos(&self, q: &VideoQuery) -> StoreResult<Paged<AiVideo>> {
        Ok(Paged {
            items: self.page_videos(q).await?,
            total: self.count_videos(q).await?,
        })
    }
    /// Up to `max` `failed` videos that failed in `[since, before)` (by `updatedAt`) and were
    /// retried fewer than `max_retries` times, oldest first: the candidates of an automatic retry.
    async fn retryable_failed(
        &self,
        since: Timestamp,
        before: Timestamp,
        max_retries: u32,
        max: u64,
    ) -> StoreResult<Vec<AiVideo>>;
}

#[async_trait]
pub trait EventStore {
    /// Applies a callback that proved `auth` as `model::plan::plan_webhook` says and records its
    /// event, all in one commit.
    async fn apply_webhook(
        &self,
        video_id: ObjectId,
        change: &VideoChange,
        auth: &CallbackAuth,
        event: EventDraft,
    ) -> StoreResult<Applied>;
    /// Records an event on its own (calls rejected before reaching a video, calls replayed from the
    /// spool). Idempotent: an event whose id is already stored is left as it is.
    async fn insert_event(&self, event: &WebhookEvent) -> StoreResult<()>;
    /// One page of the events `q` selects, newest first (`createdAt`, then id).
    async fn page_events(&self, q: &EventQuery) -> StoreResult<Vec<WebhookEvent>>;
    /// How many events `q` selects (its page and keyset aside).
    async fn count_events(&self, q: &EventQuery) -> StoreResult<u64>;
    async fn list_events(&self, q: &EventQuery) -> StoreResult<Paged<WebhookEvent>> {
        Ok(Paged {
            items: self.page_events(q).await?,
            total: self.count_events(q).await?,
        })
    }
    async fn find_event(&self, id: ObjectId) -> StoreResult<Option<WebhookEvent>>;
    /// Deletes up to `max` events created before `before`; returns how many went. (Retention. MongoDB
    /// relies on its TTL index and may delete nothing here.)
    async fn purge_events_before(&self, before: Timestamp, max: u64) -> StoreResult<u64>;
}

/// Sessions ended before their token expired (logout).
#[async_trait]
pub trait SessionStore {
    /// Remembers that the token `jti` no longer works (until `expires_at`, when it would not anyway).
    async fn revoke_session(&self, jti: &str, expires_at: Timestamp) -> StoreResult<()>;
    async fn is_session_revoked(&self, jti: &str) -> StoreResult<bool>;
}

/// An answer kept for an `Idempotency-Key`: its status and its JSON body, as sent.
#[derive(Clone, Debug, PartialEq)]
pub struct KeptAnswer {
    pub status: u16,
    pub body: String,
}

/// What claiming an `Idempotency-Key` found.
#[derive(Clone, Debug, PartialEq)]
pub enum Claim {
    /// The key was free (never used, released, or its record expired): the claimer does the work.
    Claimed,
    /// Another request holds the key and has not answered yet.
    InProgress { fingerprint: String },
    /// The key's request was answered; this is its answer.
    Answered {
        fingerprint: String,
        answer: KeptAnswer,
    },
}

/// `Idempotency-Key`s of one user and what they were answered, remembered for a while.
#[async_trait]
pub trait IdempotencyStore {
    /// Takes `key` for `user`, for a request whose body has `fingerprint`, unless a record made at
    /// or after `expired_before` holds it (an older one is replaced).
    async fn claim_key(
        &self,
        user: ObjectId,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
        expired_before: Timestamp,
    ) -> StoreResult<Claim>;
    /// Keeps the answer of a claimed key.
    async fn answer_key(&self, user: ObjectId, key: &str, answer: &KeptAnswer) -> StoreResult<()>;
    /// Frees a claimed key whose request changed nothing, so it may be tried again.
    async fn release_key(&self, user: ObjectId, key: &str) -> StoreResult<()>;
}

/// Read-only aggregates for the stats API and the dashboard.
#[async_trait]
pub trait Reports {
    /// Webhook calls in `[from, to)` counted per hour, endpoint and accepted-or-not: the whole hours
    /// from the rollup kept with every event, the part-hours at the ends from the events.
    async fn event_counts_by_hour(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<HourlyCount>>;
    /// How many videos are in each status (statuses with none may be left out). Read from
    /// counters maintained with every write: O(statuses).
    async fn video_status_counts(&self) -> StoreResult<Vec<(VideoStatus, u64)>>;
    /// The processing rollup of the hours from `from`'s to `to`'s (videos by the hour they became
    /// `completed` or `failed`, `queuedAt` to `completedAt`/`failedAt`), summed per status and
    /// bucket: reads O(hours × buckets), answers O(buckets).
    async fn processing_counts(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<ProcessingCount>>;
    /// Failed videos of the hours from `from`'s to `to`'s, per failure reason, the most first, at
    /// most `limit` reasons; and the number of them all. Reads the finished rollup.
    async fn failure_reasons(
        &self,
        from: Timestamp,
        to: Timestamp,
        limit: u64,
    ) -> StoreResult<(Vec<(String, u64)>, u64)>;
    /// Completed and failed videos of the hours from `from`'s to `to`'s per workspace:
    /// `(workspace, completed, failed)`, the busiest first, at most `limit`.
    async fn finished_by_workspace(
        &self,
        from: Timestamp,
        to: Timestamp,
        limit: u64,
    ) -> StoreResult<Vec<(ObjectId, u64, u64)>>;
}

pub trait LiveFeed {
    /// Every video change and every recorded webhook event, after it is committed. On SQLite an
    /// in-process broadcast; on MongoDB fed by a change stream, so every instance sees the changes
    /// any instance made.
    fn subscribe(&self) -> broadcast::Receiver<Live>;
}

/// A committed change as the live feed carries it: one allocation shared by every subscriber
/// (receiving is a reference count, not a copy of the change), and its JSON made once, by the
/// first subscriber that sends it.
#[derive(Debug)]
pub struct LiveMessage {
    pub change: LiveChange,
    json: std::sync::OnceLock<String>,
}

/// What the live feed's channel holds.
pub type Live = std::sync::Arc<LiveMessage>;

impl LiveMessage {
    pub fn new(change: LiveChange) -> Live {
        std::sync::Arc::new(Self {
            change,
            json: std::sync::OnceLock::new(),
        })
    }

    /// The change as JSON (empty if it could not be written, which a `LiveChange` never is).
    pub fn json(&self) -> &str {
        self.json
            .get_or_init(|| serde_json::to_string(&self.change).unwrap_or_default())
    }
}

/// Filters of the notification delivery log (fan-out rows are never listed).
#[derive(Clone, Debug, Default)]
pub struct NotificationQuery {
    pub page: u64,
    pub limit: u64,
    pub workspace_id: Option<ObjectId>,
    pub status: Option<crate::model::notify::DeliveryStatus>,
}

/// Notification settings per workspace, and the outbox of deliveries (`ssr::notify` sends them).
/// Status changes that finish a video add their fan-out row in their own transaction.
#[async_trait]
pub trait NotificationStore {
    /// The workspace's settings (with its webhook secret); `None` before the first `put`.
    async fn notification_settings(
        &self,
        ws: ObjectId,
    ) -> StoreResult<Option<crate::model::notify::NotificationSettings>>;
    async fn put_notification_settings(
        &self,
        ws: ObjectId,
        s: &crate::model::notify::NotificationSettings,
    ) -> StoreResult<()>;
    /// Adds rows; one whose `dedupe_key` is already there is skipped. How many were new.
    async fn insert_notifications(
        &self,
        rows: &[crate::model::notify::Notification],
    ) -> StoreResult<u64>;
    /// Leases up to `limit` pending rows due at `now` (free, or whose lease expired) to `lease`
    /// until `now + lease_for`, soonest due first.
    async fn claim_notifications(
        &self,
        now: Timestamp,
        lease_for: std::time::Duration,
        lease: &str,
        limit: u32,
    ) -> StoreResult<Vec<crate::model::notify::Notification>>;
    /// Records an attempt (one more in `attempts`), only while the row is still leased by `lease`.
    async fn finish_notification(
        &self,
        id: ObjectId,
        lease: &str,
        outcome: &crate::model::notify::Attempted,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Fan-out rows done: each one still leased by `lease` is marked delivered and its deliveries
    /// are added (skipping known `dedupe_key`s), all in one transaction. How many were closed.
    async fn expand_notifications(
        &self,
        lease: &str,
        expanded: &[(ObjectId, Vec<crate::model::notify::Notification>)],
        now: Timestamp,
    ) -> StoreResult<u64>;
    /// The delivery log, newest first.
    async fn page_notifications(
        &self,
        q: &NotificationQuery,
    ) -> StoreResult<Vec<crate::model::notify::Notification>>;
    async fn count_notifications(&self, q: &NotificationQuery) -> StoreResult<u64>;
    async fn find_notification(
        &self,
        id: ObjectId,
    ) -> StoreResult<Option<crate::model::notify::Notification>>;
    /// Back to `pending`, due `now`, lease freed (its attempts are kept). `None` if unknown.
    async fn redeliver_notification(
        &self,
        id: ObjectId,
        now: Timestamp,
    ) -> StoreResult<Option<crate::model::notify::Notification>>;
    /// The videos sent in one batch (sharing its callback token's hash).
    async fn videos_of_batch(&self, token_hash: &str) -> StoreResult<Vec<AiVideo>>;
    /// Rows still to send (fan-out included): the outbox's depth.
    async fn pending_notifications(&self) -> StoreResult<u64>;
}

/// The whole store, as services see it.
#[async_trait]
pub trait Store:
    UserStore
    + NotificationStore
    + WorkspaceStore
    + ProductStore
    + VideoStore
    + EventStore
    + SessionStore
    + IdempotencyStore
    + Reports
    + LiveFeed
    + Send
    + Sync
    + 'static
{
    /// A short name for logs ("sqlite", "mongodb").
    fn kind(&self) -> &'static str;
    /// Proves the store can take a write now (SQLite: a one-row write through the writer; MongoDB:
    /// a `ping` to the primary).
    async fn ping(&self) -> StoreResult<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_deltas_have_one_line_per_key_and_none_that_add_up_to_nothing() {
        use VideoStatus::{Completed, Generating};
        let h = Timestamp::parse("2025-01-01T10:00:00Z").unwrap();
        let ws = ObjectId::new();
        let line = |status, reason: &str, n| FinishedDelta {
            hour: h,
            workspace: ws,
            status,
            reason: reason.into(),
            n,
        };
        let mut d = CounterDelta {
            statuses: vec![(Generating, -1), (Completed, 1)],
            processing: vec![(h, Completed, 3, 1, 900)],
            finished: vec![line(Completed, "", 1)],
        };
        d.extend(CounterDelta {
            statuses: vec![(Generating, 1), (Completed, 1)],
            processing: vec![(h, Completed, 3, 1, 1100), (h, Completed, 4, 1, 5000)],
            finished: vec![line(Completed, "", 1), line(VideoStatus::Failed, "x", 0)],
        });
        let mut m = d.merged();
        m.processing.sort_by_key(|p| p.2);
        assert_eq!(m.statuses, [(Completed, 2)]);
        assert_eq!(
            m.processing,
            [(h, Completed, 3, 2, 2000), (h, Completed, 4, 1, 5000)]
        );
        assert_eq!(m.finished, [line(Completed, "", 2)]);
    }

    #[test]
    fn processing_spans_split_whole_days_from_hours() {
        let t = |s: &str| Timestamp::parse(s).unwrap();
        assert_eq!(
            processing_spans(t("2025-01-01T10:30:00Z"), t("2025-01-03T05:00:00Z")),
            [
                (false, t("2025-01-01T10:00:00Z"), t("2025-01-02T00:00:00Z")),
                (true, t("2025-01-02T00:00:00Z"), t("2025-01-03T00:00:00Z")),
                (false, t("2025-01-03T00:00:00Z"), t("2025-01-03T05:00:00Z")),
            ]
        );
        assert_eq!(
            processing_spans(t("2025-01-01T10:30:00Z"), t("2025-01-01T12:00:00Z")),
            [(false, t("2025-01-01T10:00:00Z"), t("2025-01-01T12:00:00Z"))]
        );
        assert_eq!(
            processing_spans(t("2025-01-01T00:00:00Z"), t("2025-01-03T00:00:00Z")),
            [(true, t("2025-01-01T00:00:00Z"), t("2025-01-03T00:00:00Z"))]
        );
    }
}
