//! What the dashboard's server functions return.

use super::stats::{Bucket, WebhookStats};
use super::VideoStatus;
use serde::{Deserialize, Serialize};

/// How many videos are in each status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StatusCounts {
    pub pending: u64,
    pub generating: u64,
    pub completed: u64,
    pub failed: u64,
}

impl StatusCounts {
    pub fn from_pairs(pairs: &[(VideoStatus, u64)]) -> Self {
        let mut c = Self::default();
        for (s, n) in pairs {
            match s {
                VideoStatus::Pending => c.pending += n,
                VideoStatus::Generating => c.generating += n,
                VideoStatus::Completed => c.completed += n,
                VideoStatus::Failed => c.failed += n,
            }
        }
        c
    }
}

/// The overview page: counts now, and webhook statistics over the chosen range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    pub counts: StatusCounts,
    pub stats: WebhookStats,
    /// Why videos failed in the range, and each workspace's success rate.
    pub failures: FailureReport,
    /// `24h`, `7d` or `30d`.
    pub range: String,
}

/// The ranges of the overview (`?range=24h|7d|30d`), each charted by its own bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OverviewRange {
    #[default]
    Day,
    Week,
    Month,
}

impl OverviewRange {
    pub const ALL: [OverviewRange; 3] = [Self::Day, Self::Week, Self::Month];

    /// The URL form.
    pub fn key(self) -> &'static str {
        match self {
            Self::Day => "24h",
            Self::Week => "7d",
            Self::Month => "30d",
        }
    }

    /// From the URL form; anything else is the default (the last 24 hours).
    pub fn from_key(key: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|r| r.key() == key)
            .unwrap_or_default()
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Day => "Last 24 hours",
            Self::Week => "Last 7 days",
            Self::Month => "Last 30 days",
        }
    }

    pub fn hours(self) -> i64 {
        match self {
            Self::Day => 24,
            Self::Week => 24 * 7,
            Self::Month => 24 * 30,
        }
    }

    pub fn bucket(self) -> Bucket {
        match self {
            Self::Day => Bucket::Hour,
            Self::Week | Self::Month => Bucket::Day,
        }
    }
}

/// Who is signed in to the dashboard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub email: String,
    pub role: String,
}

/// One video's page: the row (with its names), every webhook event for it in the order received,
/// and how many retries it has left.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct VideoDetail {
    pub row: super::VideoRow,
    /// Oldest first; at most [`VideoDetail::MAX_EVENTS`] (the newest of them).
    pub events: Vec<super::WebhookEvent>,
    /// More events exist than are listed (the events page has them all).
    pub more_events: bool,
    /// `VIDEO_MAX_RETRIES` (what is left follows from the video's `retryCount`, live).
    pub max_retries: u32,
}

impl VideoDetail {
    pub const MAX_EVENTS: u64 = 100;
}

/// A workspace on the workspaces page: its quota, videos per status and last activity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceRow {
    #[serde(flatten)]
    pub workspace: super::Workspace,
    pub counts: StatusCounts,
    /// When its newest video was requested.
    pub last_activity: Option<super::Timestamp>,
}

/// A page of the workspaces page's rows, by name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WorkspaceRowPage {
    pub workspaces: Vec<WorkspaceRow>,
    pub pagination: super::Pagination,
}

/// A page of the workspaces, by name (`GET /api/workspaces`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WorkspacePage {
    pub workspaces: Vec<super::Workspace>,
    pub pagination: super::Pagination,
}

/// One failure reason of a range: the error text (trimmed, at most 200 characters), how many of
/// the range's failed videos have it, and their share of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct FailureReason {
    pub reason: String,
    pub count: u64,
    pub share: f64,
}

/// A workspace's finished videos in a range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceRate {
    pub workspace_id: super::ObjectId,
    pub workspace_name: Option<String>,
    pub completed: u64,
    pub failed: u64,
    /// `completed / (completed + failed)`; none without finished videos.
    pub success_rate: Option<f64>,
}

/// Why videos failed in a range, and how each workspace fared: read from a rollup kept in the
/// transaction of every change (videos that are `failed` or `completed` now, by the hour they
/// finished in), so it costs O(hours × reasons), never O(videos).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct FailureReport {
    /// Failed videos in the range.
    pub failed: u64,
    /// The most common reasons first (at most [`FailureReport::TOP`]).
    pub reasons: Vec<FailureReason>,
    /// The busiest workspaces first (at most [`FailureReport::TOP`]).
    pub workspaces: Vec<WorkspaceRate>,
}

impl FailureReport {
    pub const TOP: usize = 8;
}

/// What a failure reason is made of an error: trimmed of spaces, tabs and line breaks, at most 200
/// characters (the stores' rollups and their SQL fill use the same rule).
pub fn failure_reason(error: Option<&str>) -> String {
    error
        .unwrap_or_default()
        .trim_matches([' ', '\t', '\n', '\r'])
        .chars()
        .take(200)
        .collect()
}

/// The bulk actions of the videos page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum BulkAction {
    /// Send failed videos back to RCK (each as `POST /api/videos/{id}/retry`).
    Retry,
    /// Mark pending or generating videos failed (each as `POST /api/videos/{id}/fail`).
    MarkFailed,
}

impl BulkAction {
    pub fn verb(self) -> &'static str {
        match self {
            Self::Retry => "retry",
            Self::MarkFailed => "mark failed",
        }
    }
}

/// `POST /api/videos/bulk-action`: either `videoIds` (at most [`BulkActionRequest::MAX_IDS`]), or
/// `filter` (the list's filter; a retry takes its failed videos, mark-failed its stuck ones), one
/// bounded batch per call from `cursor`. With `dryRun` nothing changes and `matched` says how many
/// videos the action would take (for a filter: all of them, over every batch).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BulkActionRequest {
    pub action: BulkAction,
    #[serde(default)]
    pub video_ids: Option<Vec<String>>,
    #[serde(default)]
    pub filter: Option<super::filters::VideoFilter>,
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
}

impl BulkActionRequest {
    pub const MAX_IDS: usize = 100;
    /// Videos of a filter one call takes at most.
    pub const BATCH: u64 = 50;
}

/// One video a bulk action could not take, and why (the single action's message).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BulkItemError {
    pub video_id: String,
    pub message: String,
}

/// What one call of a bulk action did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BulkActionResult {
    /// Videos this call looked at (with `dryRun`: every video the action would take).
    pub matched: u64,
    /// Videos it changed.
    pub done: u64,
    /// Selected videos the action does not take (a retry of a video that is not failed, a
    /// mark-failed of a final one), left as they are.
    pub skipped: u64,
    pub errors: Vec<BulkItemError>,
    /// For a filter: pass it back as `cursor` for the next batch; none when this was the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The events page: a page of the log, and the videos it names (with their names).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventsView {
    pub page: super::EventPage,
    pub videos: Vec<super::VideoRow>,
}
