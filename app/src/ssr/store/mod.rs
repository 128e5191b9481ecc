//! The storage interface. Services talk to `dyn Store`; SQLite (embedded, default) and MongoDB
//! (`MONGODB_URI`) implement it. No SQL or BSON lives outside this module.

pub mod mongo;
pub mod sqlite;

use crate::model::webhook::{Decision, VideoChange};
use crate::model::{
    AiVideo, LiveChange, ObjectId, Product, Role, Timestamp, User, VideoStatus, WebhookEvent,
    Workspace,
};
use async_trait::async_trait;
use tokio::sync::broadcast;

/// How many live changes a slow subscriber may fall behind before it is told it lagged (it then
/// catches up by re-reading, see the SSE endpoint).
pub const LIVE_BUFFER: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (duplicate email, ...); the message is safe to show.
    #[error("{0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A user with the secret part, which never leaves the server.
#[derive(Clone, Debug)]
pub struct UserRecord {
    pub user: User,
    pub password_hash: String,
}

/// The audit record of a callback before its outcome is known.
#[derive(Clone, Debug)]
pub struct EventDraft {
    pub id: ObjectId,
    pub endpoint: String,
    pub payload: serde_json::Value,
    pub video_id: Option<String>,
    pub created_at: Timestamp,
}

impl EventDraft {
    pub fn finish(self, status_code: u16, outcome: &str) -> WebhookEvent {
        WebhookEvent {
            id: self.id,
            endpoint: self.endpoint,
            payload: self.payload,
            video_id: self.video_id,
            status_code,
            outcome: outcome.to_string(),
            created_at: self.created_at,
        }
    }
}

/// What applying a callback did.
// Returned once per call and never stored, so the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Applied {
    NotFound,
    Done {
        decision: Decision,
        /// The video as stored after the commit.
        video: AiVideo,
        /// Its status before the call.
        previous: VideoStatus,
    },
}

/// Filters of the webhook event log; `page` is 1-based.
#[derive(Clone, Debug, Default)]
pub struct EventQuery {
    pub page: u64,
    pub limit: u64,
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
    pub status: Option<VideoStatus>,
    pub workspace_id: Option<ObjectId>,
    pub video_id: Option<ObjectId>,
    /// Only videos `generating` whose `updatedAt` is before this (the stuck ones).
    pub stuck_before: Option<Timestamp>,
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

/// The result of asking for quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quota {
    Reserved,
    Exceeded { limit: u32, used: u32 },
    NoWorkspace,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A short name for logs ("sqlite", "mongodb").
    fn kind(&self) -> &'static str;

    /// The live feed: every video change and every recorded webhook event after it is committed. On
    /// SQLite an in-process broadcast; on MongoDB fed by change streams, so every instance sees the
    /// changes any instance made.
    fn subscribe(&self) -> broadcast::Receiver<LiveChange>;

    // --- users and workspaces
    /// Fails with `Conflict` when the email (case-insensitive) is taken.
    async fn insert_user(&self, user: &UserRecord) -> StoreResult<()>;
    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>>;
    async fn find_user(&self, id: ObjectId) -> StoreResult<Option<User>>;
    async fn count_users_with_role(&self, role: Role) -> StoreResult<u64>;
    async fn insert_workspace(&self, ws: &Workspace) -> StoreResult<()>;
    async fn find_workspace(&self, id: ObjectId) -> StoreResult<Option<Workspace>>;
    async fn list_workspaces(&self) -> StoreResult<Vec<Workspace>>;
    /// Atomically counts `n` more videos against the workspace, only if that stays within its limit.
    async fn reserve_quota(&self, ws: ObjectId, n: u32) -> StoreResult<Quota>;
    /// Gives back usage counted by `reserve_quota` for videos that were never generated.
    async fn release_quota(&self, ws: ObjectId, n: u32) -> StoreResult<()>;

    // --- products
    async fn insert_product(&self, product: &Product) -> StoreResult<()>;
    async fn find_product(&self, id: ObjectId) -> StoreResult<Option<Product>>;
    async fn find_products(&self, ids: &[ObjectId]) -> StoreResult<Vec<Product>>;
    /// Newest first; returns the page and the total.
    async fn list_products(
        &self,
        ws: ObjectId,
        page: u64,
        limit: u64,
    ) -> StoreResult<(Vec<Product>, u64)>;

    // --- videos
    /// Inserts the AIVideo records and their `Product.videos` entries in one commit.
    async fn insert_videos(&self, videos: &[AiVideo]) -> StoreResult<()>;
    /// Records RCK's job id of each video.
    async fn set_job_ids(&self, jobs: &[(ObjectId, String)]) -> StoreResult<()>;
    /// Marks videos that never reached RCK as failed (only those not already final).
    async fn fail_unsent(&self, ids: &[ObjectId], reason: &str, at: Timestamp) -> StoreResult<()>;
    async fn find_video(&self, id: ObjectId) -> StoreResult<Option<AiVideo>>;

    // --- webhooks
    /// Applies a callback under the state rules of `model::webhook::decide` and records its event, all
    /// in one commit. The event's status and message come from `model::webhook::response_line`, or
    /// 404 "Video not found" when there is no such video.
    async fn apply_webhook(
        &self,
        video_id: ObjectId,
        change: &VideoChange,
        event: EventDraft,
    ) -> StoreResult<Applied>;
    /// Records an event on its own (calls rejected before reaching a video).
    async fn insert_event(&self, event: &WebhookEvent) -> StoreResult<()>;
    /// Newest first; returns the page and the total.
    async fn list_events(&self, q: &EventQuery) -> StoreResult<(Vec<WebhookEvent>, u64)>;
    async fn find_event(&self, id: ObjectId) -> StoreResult<Option<WebhookEvent>>;
    /// Deletes up to `max` events created before `before`; returns how many went. (Retention. MongoDB
    /// relies on its TTL index and may delete nothing here.)
    async fn purge_events_before(&self, before: Timestamp, max: u64) -> StoreResult<u64>;
    /// Webhook calls in `[from, to)` counted per hour, endpoint and accepted-or-not.
    async fn event_counts_by_hour(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<HourlyCount>>;

    // --- the dashboard
    async fn list_videos(&self, q: &VideoQuery) -> StoreResult<(Vec<AiVideo>, u64)>;
    /// How many videos are in each status (statuses with none may be left out).
    async fn video_status_counts(&self) -> StoreResult<Vec<(VideoStatus, u64)>>;
    /// Videos that became `completed` or `failed` in `[from, to)` (by `updatedAt`), with their
    /// `queuedAt` and `completedAt`/`failedAt`.
    async fn finished_videos(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<FinishedVideo>>;
    /// Sends a `failed` video back to `generating` (a retry): clears its error and result times,
    /// sets `queuedAt` to `at`, drops the old job id, adds one to `retryCount`, and the product entry
    /// follows. `None` when the video does not exist or is not `failed`.
    async fn requeue_video(&self, id: ObjectId, at: Timestamp) -> StoreResult<Option<AiVideo>>;
}
