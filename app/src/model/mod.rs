//! Types both the server and the browser use. Field names follow the spec's JSON (camelCase, `_id`).

pub mod dashboard;
pub mod error;
pub mod filters;
mod id;
pub mod notify;
pub mod plan;
pub mod stats;
mod time;
pub mod webhook;

pub use id::{hex, InvalidObjectId, ObjectId};
pub use time::Timestamp;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a video is in its life: `pending -> generating -> completed | failed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum VideoStatus {
    Pending,
    Generating,
    Completed,
    Failed,
}

impl VideoStatus {
    pub const ALL: [VideoStatus; 4] = [
        VideoStatus::Pending,
        VideoStatus::Generating,
        VideoStatus::Completed,
        VideoStatus::Failed,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            VideoStatus::Pending => "pending",
            VideoStatus::Generating => "generating",
            VideoStatus::Completed => "completed",
            VideoStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for VideoStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VideoStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        VideoStatus::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or(())
    }
}

/// Who a user is to the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    User,
    Admin,
    Superadmin,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::User => "USER",
            Role::Admin => "ADMIN",
            Role::Superadmin => "SUPERADMIN",
        }
    }
}

impl FromStr for Role {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "USER" => Ok(Role::User),
            "ADMIN" => Ok(Role::Admin),
            "SUPERADMIN" => Ok(Role::Superadmin),
            _ => Err(()),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user as the API shows it (never with the password hash).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub email: String,
    pub role: Role,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub workspace_id: Option<ObjectId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A customer workspace and its video quota.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Workspace {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub name: String,
    /// How many videos the workspace may generate in all.
    pub video_limit: u32,
    /// How many it has asked for so far (given back when RCK refuses a batch).
    pub videos_used: u32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A product and, denormalised for fast product pages, the state of its videos.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Product {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub workspace_id: ObjectId,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user_id: Option<ObjectId>,
    pub title: String,
    pub sku: String,
    pub img_urls: Vec<String>,
    pub videos: Vec<ProductVideo>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One entry of `Product.videos`. Ours carry the `videoId`, so the right entry is updated even when a
/// product has several videos of one template. Entries written by the platform's original service
/// have none (`None`): a callback takes the first of the video's template that is still `pending` or
/// `generating`, as the original service did, and links it to the video from then on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ProductVideo {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub video_id: Option<ObjectId>,
    pub template_id: String,
    pub template_name: String,
    pub status: VideoStatus,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub video_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub youtube_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub img_s3_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub completed_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub failed_at: Option<Timestamp>,
}

/// The AIVideo record: one generated (or failed) video and its whole life.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AiVideo {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub user_id: ObjectId,
    pub workspace_id: ObjectId,
    pub product_id: ObjectId,
    /// The template's display name (the spec's `template`).
    pub template: String,
    pub status: VideoStatus,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    pub metadata: VideoMetadata,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// SHA-256 (hex) of the capability token in the callback URLs of the batch that last sent this
    /// video to RCK; `None` for videos created without one (before tokens, or by another service).
    /// Never serialised: it stays on the server.
    #[serde(skip)]
    pub callback_token_hash: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct VideoMetadata {
    pub template_id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub external_job_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub youtube_video_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub local_filename: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub video_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub img_s3_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub queued_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub completed_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub failed_at: Option<Timestamp>,
    #[serde(
        rename = "aspect_ratio",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub aspect_ratio: Option<String>,
    /// How many times a superadmin sent the video back to RCK after it failed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub retry_count: Option<u32>,
}

/// One call to `/internal/*`, as the audit log keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    /// `/videos/success` or `/videos/failure`, as the spec stores it (the path under `/internal`).
    pub endpoint: String,
    /// The body as received: JSON when it parsed, otherwise the raw text as a string.
    pub payload: serde_json::Value,
    /// The `videoId` string found in the payload, if any (even a malformed one, so it can be searched).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub video_id: Option<String>,
    /// The HTTP status the webhook answered with.
    pub status_code: u16,
    /// The message the webhook answered with.
    pub outcome: String,
    pub created_at: Timestamp,
}

/// The spec's pagination block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    pub page: u64,
    pub limit: u64,
    pub total: u64,
    pub total_pages: u64,
    /// Where the next page starts (pass it as `cursor=`): on every full page of a list that pages by
    /// keyset (after the last item, it leads to an empty page).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub next_cursor: Option<String>,
}

impl Pagination {
    pub fn new(page: u64, limit: u64, total: u64) -> Self {
        Self {
            page,
            limit,
            total,
            total_pages: total.div_ceil(limit.max(1)),
            next_cursor: None,
        }
    }

    pub fn with_next_cursor(mut self, cursor: Option<String>) -> Self {
        self.next_cursor = cursor;
        self
    }
}

/// Where a page of a newest-first list ends: the last item's `createdAt` and id. Its wire form is
/// opaque to clients (40 hex digits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keyset {
    pub at: Timestamp,
    pub id: ObjectId,
}

impl Keyset {
    pub fn encode(&self) -> String {
        format!("{:016x}{}", self.at.millis(), self.id)
    }

    pub fn decode(s: &str) -> Option<Self> {
        if s.len() != 40 || !s.is_ascii() {
            return None;
        }
        let millis = i64::from_str_radix(&s[..16], 16).ok()?;
        Some(Self {
            at: Timestamp::from_millis(millis),
            id: s[16..].parse().ok()?,
        })
    }
}

/// A page of webhook events, shaped as the spec's `data` of `GET /api/webhook-events`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EventPage {
    pub events: Vec<WebhookEvent>,
    pub pagination: Pagination,
}

/// A change the live feed carries to the dashboard (and to every server instance on MongoDB): a
/// summary, the same few fields whatever the record holds; the record is one request away.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum LiveChange {
    /// A video was created or changed.
    Video { video: VideoSummary },
    /// A webhook call was recorded.
    Event { event: EventSummary },
}

impl LiveChange {
    /// The live-feed form of a video as it is now.
    pub fn video(v: &AiVideo) -> Self {
        LiveChange::Video {
            video: VideoSummary {
                id: v.id,
                workspace_id: v.workspace_id,
                product_id: v.product_id,
                status: v.status,
                error: v.error.as_deref().map(|e| {
                    let cut = e
                        .char_indices()
                        .nth(VideoSummary::ERROR_CHARS)
                        .map_or(e.len(), |(i, _)| i);
                    e[..cut].to_string()
                }),
                updated_at: v.updated_at,
            },
        }
    }

    /// The live-feed form of a recorded event: no payload, no outcome text.
    pub fn event(e: &WebhookEvent) -> Self {
        LiveChange::Event {
            event: EventSummary {
                id: e.id,
                endpoint: e.endpoint.clone(),
                video_id: e.video_id.clone(),
                status_code: e.status_code,
                created_at: e.created_at,
            },
        }
    }
}

/// The live feed's `unseen` frame: how many changes of the kinds asked for were left out since the
/// last one because they are not of the videos asked for (`videos=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LiveUnseen {
    pub videos: u64,
    pub events: u64,
}

/// A video as the live feed tells of it: ids, status (with the error's first
/// [`VideoSummary::ERROR_CHARS`] characters) and when it changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct VideoSummary {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub workspace_id: ObjectId,
    pub product_id: ObjectId,
    pub status: VideoStatus,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    pub updated_at: Timestamp,
}

impl VideoSummary {
    /// The most of an error message a summary carries.
    pub const ERROR_CHARS: usize = 200;

    /// `video` as this summary says it is now (what the summary does not carry stays as it was).
    pub fn applied_to(&self, video: &AiVideo) -> AiVideo {
        let mut v = video.clone();
        v.status = self.status;
        v.error = self.error.clone();
        v.updated_at = self.updated_at;
        v
    }
}

/// A webhook event as the live feed tells of it: its ids, endpoint, answer and time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EventSummary {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub endpoint: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub video_id: Option<String>,
    pub status_code: u16,
    pub created_at: Timestamp,
}

/// A row of the dashboard's video list: the record, and whether it is stuck in `generating` for
/// longer than `VIDEO_TIMEOUT_MINUTES`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct VideoRow {
    #[serde(flatten)]
    pub video: AiVideo,
    pub stuck: bool,
    /// The product's title and first image, and the workspace's name, when they still exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_name: Option<String>,
}

impl VideoRow {
    /// A row without names (the caller adds them when it has them).
    pub fn new(video: AiVideo, stuck: bool) -> Self {
        Self {
            video,
            stuck,
            product_title: None,
            product_image: None,
            workspace_name: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct VideoPage {
    pub videos: Vec<VideoRow>,
    pub pagination: Pagination,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(error: Option<String>) -> AiVideo {
        let at = Timestamp::from_millis(1_700_000_000_000);
        AiVideo {
            id: ObjectId::new(),
            user_id: ObjectId::new(),
            workspace_id: ObjectId::new(),
            product_id: ObjectId::new(),
            template: "Intro".into(),
            status: VideoStatus::Failed,
            error,
            metadata: VideoMetadata {
                template_id: "t1".into(),
                video_url: Some("https://cdn.test/v.mp4".into()),
                ..Default::default()
            },
            created_at: at,
            updated_at: at,
            callback_token_hash: Some("secret-hash".into()),
        }
    }

    #[test]
    fn a_video_summary_carries_ids_status_and_time_and_at_most_200_characters_of_error() {
        let long: String = "é".repeat(300);
        let v = video(Some(long));
        let LiveChange::Video { video: s } = LiveChange::video(&v) else {
            panic!("a video change")
        };
        assert_eq!(
            (s.id, s.status, s.updated_at),
            (v.id, v.status, v.updated_at)
        );
        assert_eq!(s.error.as_deref().map(|e| e.chars().count()), Some(200));
        let json = serde_json::to_value(LiveChange::video(&v)).unwrap();
        assert_eq!(json["kind"], "video");
        assert!(json["video"].get("metadata").is_none(), "{json}");
        assert!(!json.to_string().contains("secret-hash"));
    }

    #[test]
    fn a_summary_applied_to_a_video_changes_only_what_it_carries() {
        let before = video(None);
        let mut after = before.clone();
        after.status = VideoStatus::Failed;
        after.error = Some("RCK gave up".into());
        after.updated_at = Timestamp::from_millis(before.updated_at.millis() + 5);
        let LiveChange::Video { video: s } = LiveChange::video(&after) else {
            panic!("a video change")
        };
        let shown = s.applied_to(&before);
        assert_eq!(shown.status, VideoStatus::Failed);
        assert_eq!(shown.error.as_deref(), Some("RCK gave up"));
        assert_eq!(shown.updated_at, after.updated_at);
        assert_eq!(shown.metadata, before.metadata);
        assert_eq!(shown.template, before.template);
    }
}
