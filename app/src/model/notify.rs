//! Notifications: what a workspace wants to hear about its videos, and the delivery log.
//!
//! A video that becomes `completed` or `failed` leaves a row in the outbox in the same transaction
//! (`Channel::Fanout`); the notifier turns it into one delivery per configured channel and sends
//! them with retries (`ssr::notify`).

use super::{ObjectId, Timestamp};
use serde::{Deserialize, Serialize};

/// Which videos are emailed about (to the user who asked for them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EmailPrefs {
    pub on_completed: bool,
    pub on_failed: bool,
}

impl Default for EmailPrefs {
    fn default() -> Self {
        Self {
            on_completed: true,
            on_failed: true,
        }
    }
}

/// `GET`/`PUT /api/workspaces/{id}/notifications`. Any URL may be `null` (that channel is off).
/// `webhookSecret` is only ever answered (generated once, rotated on request); a `PUT` ignores it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NotificationSettings {
    #[serde(default)]
    pub email: EmailPrefs,
    #[serde(default)]
    pub slack_webhook_url: Option<String>,
    #[serde(default)]
    pub discord_webhook_url: Option<String>,
    #[serde(default)]
    pub webhook_url: Option<String>,
    #[serde(default)]
    pub webhook_secret: Option<String>,
}

/// Where a notification goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Slack,
    Discord,
    Webhook,
    /// Internal: a finished video not yet turned into deliveries.
    Fanout,
}

impl Channel {
    pub fn as_str(&self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Slack => "slack",
            Channel::Discord => "discord",
            Channel::Webhook => "webhook",
            Channel::Fanout => "fanout",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Channel::Email,
            Channel::Slack,
            Channel::Discord,
            Channel::Webhook,
            Channel::Fanout,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Delivered,
            DeliveryStatus::Failed,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// One notification: a delivery to one channel, with its attempts (the delivery log's row).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub workspace_id: ObjectId,
    pub channel: Channel,
    /// `video.completed`, `video.failed` or `batch.finished` (email).
    pub event_type: String,
    #[serde(default)]
    pub video_id: Option<ObjectId>,
    pub status: DeliveryStatus,
    pub attempts: u32,
    #[serde(default)]
    pub last_error: Option<String>,
    pub next_attempt_at: Timestamp,
    #[serde(default)]
    pub delivered_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// What is sent (the webhook's body, the email's videos, …): fixed when the row is made, so a
    /// retry sends the same thing.
    #[serde(default)]
    pub body: serde_json::Value,
    /// Server-side bookkeeping: videos of one batch share it (the email goes once per batch);
    /// never shown.
    #[serde(skip)]
    pub dedupe_key: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NotificationPage {
    pub notifications: Vec<Notification>,
    pub pagination: super::Pagination,
}

/// The answer of `POST /api/workspaces/{id}/notifications/test`: each configured channel's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ChannelResult {
    pub channel: Channel,
    pub ok: bool,
    /// Where it went (an email address, or the URL's host).
    pub target: String,
    #[serde(default)]
    pub error: Option<String>,
}

#[cfg(feature = "ssr")]
impl Notification {
    /// The outbox row a status change leaves when it makes a video `completed` or `failed` (from
    /// any other status); `None` for any other change. Written in the change's transaction.
    pub fn fanout_of(
        video: &super::AiVideo,
        previous: super::VideoStatus,
        at: Timestamp,
    ) -> Option<Self> {
        use super::VideoStatus::{Completed, Failed};
        let event_type = match video.status {
            Completed => "video.completed",
            Failed => "video.failed",
            _ => return None,
        };
        if previous == video.status {
            return None;
        }
        let id = ObjectId::new();
        Some(Self {
            id,
            workspace_id: video.workspace_id,
            channel: Channel::Fanout,
            event_type: event_type.into(),
            video_id: Some(video.id),
            status: DeliveryStatus::Pending,
            attempts: 0,
            last_error: None,
            next_attempt_at: at,
            delivered_at: None,
            created_at: at,
            updated_at: at,
            body: serde_json::json!({ "batch": video.callback_token_hash }),
            dedupe_key: format!("fanout:{id}"),
        })
    }
}

/// What one attempt at a delivery came to.
#[derive(Clone, Debug, PartialEq)]
pub enum Attempted {
    Delivered,
    /// Try again at this time.
    Retry {
        at: Timestamp,
        error: String,
    },
    /// No more attempts.
    Failed {
        error: String,
    },
}
