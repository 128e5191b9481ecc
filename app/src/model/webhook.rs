//! The webhook contract of the spec: payload validation, the state rules, and the messages.
//!
//! Everything here is pure so both stores apply exactly the same rules, and so it can be unit-tested.

use super::{AiVideo, ObjectId, ProductVideo, Timestamp, VideoStatus};
use serde::Serialize;
use serde_json::{Map, Value};

pub const MSG_VIDEO_ID_REQUIRED: &str = "videoId is required";
pub const MSG_INVALID_VIDEO_ID: &str = "Invalid videoId format";
pub const MSG_VIDEO_NOT_FOUND: &str = "Video not found";
pub const MSG_SUCCESS: &str = "Video status updated successfully";
pub const MSG_FAILURE: &str = "Video failure recorded successfully";
pub const MSG_FAILURE_IGNORED: &str =
    "Video already completed; failure notification ignored, nothing changed";
pub const MSG_INVALID_CREDENTIALS: &str = "Invalid callback credentials";
/// What a failed video says when RCK did not say why.
pub const DEFAULT_FAILURE_ERROR: &str = "Video generation failed";

/// Which of the two callbacks was called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookKind {
    Success,
    Failure,
}

impl WebhookKind {
    /// The endpoint as the spec stores it in `WebhookEvent.endpoint` (the path under `/internal`).
    pub fn endpoint(&self) -> &'static str {
        match self {
            WebhookKind::Success => "/videos/success",
            WebhookKind::Failure => "/videos/failure",
        }
    }

    /// The kind whose endpoint this is, as stored (`/videos/success`) or as called
    /// (`/internal/videos/success`).
    pub fn from_endpoint(raw: &str) -> Option<Self> {
        let path = raw.strip_prefix("/internal").unwrap_or(raw);
        [WebhookKind::Success, WebhookKind::Failure]
            .into_iter()
            .find(|k| k.endpoint() == path)
    }
}

/// A request the webhook refused before touching any video.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub message: String,
}

impl Rejection {
    fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: message.into(),
        }
    }
}

/// What a callback proved about itself before reaching the video (decided by the service from
/// `WEBHOOK_AUTH`, the query's `token` and the Standard Webhooks headers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallbackAuth {
    /// Authentication is off (`WEBHOOK_AUTH=off`): any video may be changed.
    Open,
    /// A valid Standard Webhooks signature, with its `webhook-id`: any video may be changed, and a
    /// delivery id seen before changes nothing again.
    Signed(String),
    /// Token mode without a valid signature: the SHA-256 (hex) of the `token` the call carried, if
    /// any. A video that has a token hash accepts only the same hash.
    Token(Option<String>),
}

impl CallbackAuth {
    /// The `webhook-id` of a signed delivery.
    pub fn delivery_id(&self) -> Option<&str> {
        match self {
            CallbackAuth::Signed(id) => Some(id),
            _ => None,
        }
    }

    /// Whether this call may change a video whose callback token hash is `required`.
    pub fn admits(&self, required: Option<&str>) -> bool {
        match (self, required) {
            (CallbackAuth::Open | CallbackAuth::Signed(_), _) | (_, None) => true,
            (CallbackAuth::Token(Some(presented)), Some(required)) => {
                constant_time_eq(presented.as_bytes(), required.as_bytes())
            }
            (CallbackAuth::Token(None), Some(_)) => false,
        }
    }
}

/// Compares two secrets (or their hashes) without an early exit, so the time taken does not tell
/// how much of a guess was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a valid callback asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VideoChange {
    Complete(SuccessFields),
    Fail { error: String },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SuccessFields {
    pub youtube_video_id: Option<String>,
    pub local_filename: Option<String>,
    pub video_url: Option<String>,
    pub img_s3_url: Option<String>,
}

impl VideoChange {
    pub fn kind(&self) -> WebhookKind {
        match self {
            VideoChange::Complete(_) => WebhookKind::Success,
            VideoChange::Fail { .. } => WebhookKind::Failure,
        }
    }
}

/// The `videoId` string of a payload, if it has one, for the audit log (even when malformed).
pub fn raw_video_id(payload: &Value) -> Option<String> {
    payload
        .get("videoId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(200).collect())
}

/// Validates a callback body, in the order the spec's Joi schema and handler do: shape and types
/// first ("videoId is required"), then the ObjectId format ("Invalid videoId format").
/// Unknown fields are allowed: RCK may add some, and refusing them would make it retry forever.
pub fn parse_payload(
    kind: WebhookKind,
    body: &Value,
) -> Result<(ObjectId, VideoChange), Rejection> {
    let Some(obj) = body.as_object() else {
        return Err(Rejection::bad_request("Request body must be a JSON object"));
    };
    let video_id = match obj.get("videoId") {
        None | Some(Value::Null) => return Err(Rejection::bad_request(MSG_VIDEO_ID_REQUIRED)),
        Some(Value::String(s)) if s.trim().is_empty() => {
            return Err(Rejection::bad_request(MSG_VIDEO_ID_REQUIRED))
        }
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(Rejection::bad_request("videoId must be a string")),
    };
    let change = match kind {
        WebhookKind::Success => VideoChange::Complete(SuccessFields {
            youtube_video_id: optional_string(obj, "youtubeVideoId")?,
            local_filename: optional_string(obj, "localFilename")?,
            video_url: optional_string(obj, "video_url")?,
            img_s3_url: optional_string(obj, "img_s3_url")?,
        }),
        WebhookKind::Failure => VideoChange::Fail {
            error: optional_string(obj, "error")?
                .filter(|e| !e.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_FAILURE_ERROR.to_string()),
        },
    };
    let id = video_id
        .parse::<ObjectId>()
        .map_err(|_| Rejection::bad_request(MSG_INVALID_VIDEO_ID))?;
    Ok((id, change))
}

fn optional_string(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, Rejection> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Rejection::bad_request(format!("{field} must be a string"))),
    }
}

/// What a callback does to a video in a given state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Move the video to the callback's final state.
    Apply,
    /// The video is already in that state: answer as before, change nothing.
    Repeat,
    /// A failure for a completed video: acknowledged so RCK does not retry, but ignored.
    Ignore,
}

/// The state rules. `completed` is final; a success for a `failed` video completes it, because a
/// video that exists is never hidden; a repeated call changes nothing.
pub fn decide(kind: WebhookKind, current: VideoStatus) -> Decision {
    match (kind, current) {
        (WebhookKind::Success, VideoStatus::Completed) => Decision::Repeat,
        (WebhookKind::Success, _) => Decision::Apply,
        (WebhookKind::Failure, VideoStatus::Completed) => Decision::Ignore,
        (WebhookKind::Failure, VideoStatus::Failed) => Decision::Repeat,
        (WebhookKind::Failure, _) => Decision::Apply,
    }
}

/// The status code and message a callback is answered with.
pub fn response_line(kind: WebhookKind, decision: Decision) -> (u16, &'static str) {
    match (kind, decision) {
        (WebhookKind::Success, _) => (200, MSG_SUCCESS),
        (WebhookKind::Failure, Decision::Ignore) => (200, MSG_FAILURE_IGNORED),
        (WebhookKind::Failure, _) => (200, MSG_FAILURE),
    }
}

/// Applies an accepted change to the video and its product entry (both are written in one commit).
pub fn apply_change(
    video: &mut AiVideo,
    entry: Option<&mut ProductVideo>,
    change: &VideoChange,
    at: Timestamp,
) {
    video.updated_at = at;
    match change {
        VideoChange::Complete(f) => {
            video.status = VideoStatus::Completed;
            video.error = None;
            let m = &mut video.metadata;
            m.youtube_video_id = f.youtube_video_id.clone();
            m.local_filename = f.local_filename.clone();
            m.video_url = f.video_url.clone();
            m.img_s3_url = f.img_s3_url.clone();
            m.completed_at = Some(at);
            if let Some(e) = entry {
                e.status = VideoStatus::Completed;
                e.video_url = f.video_url.clone();
                e.youtube_url = f.youtube_video_id.as_deref().map(youtube_url);
                e.img_s3_url = f.img_s3_url.clone();
                e.error = None;
                e.completed_at = Some(at);
            }
        }
        VideoChange::Fail { error } => {
            video.status = VideoStatus::Failed;
            video.error = Some(error.clone());
            video.metadata.failed_at = Some(at);
            if let Some(e) = entry {
                e.status = VideoStatus::Failed;
                e.error = Some(error.clone());
                e.failed_at = Some(at);
            }
        }
    }
}

/// Sends a failed video back to RCK (a retry): clears the error and result times, sets `queuedAt`,
/// drops the old job id and counts the retry; the product entry follows.
pub fn requeue(video: &mut AiVideo, entry: Option<&mut ProductVideo>, at: Timestamp) {
    video.status = VideoStatus::Generating;
    video.error = None;
    video.updated_at = at;
    let m = &mut video.metadata;
    m.failed_at = None;
    m.completed_at = None;
    m.external_job_id = None;
    m.queued_at = Some(at);
    m.retry_count = Some(m.retry_count.unwrap_or(0) + 1);
    if let Some(e) = entry {
        e.status = VideoStatus::Generating;
        e.error = None;
        e.failed_at = None;
        e.completed_at = None;
    }
}

pub fn youtube_url(id: &str) -> String {
    format!("https://www.youtube.com/watch?v={id}")
}

/// `data` of a success response, from the video as stored after the call.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SuccessData {
    pub video_id: ObjectId,
    pub youtube_video_id: Option<String>,
    pub local_filename: Option<String>,
    pub video_url: Option<String>,
    pub img_s3_url: Option<String>,
    pub product_id: ObjectId,
}

/// `data` of a failure response.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureData {
    pub video_id: ObjectId,
    pub product_id: ObjectId,
    pub error: String,
}

/// The JSON `data` for a processed callback.
pub fn response_data(video: &AiVideo, change: &VideoChange) -> Value {
    match change {
        VideoChange::Complete(_) => serde_json::to_value(SuccessData {
            video_id: video.id,
            youtube_video_id: video.metadata.youtube_video_id.clone(),
            local_filename: video.metadata.local_filename.clone(),
            video_url: video.metadata.video_url.clone(),
            img_s3_url: video.metadata.img_s3_url.clone(),
            product_id: video.product_id,
        }),
        VideoChange::Fail { error } => serde_json::to_value(FailureData {
            video_id: video.id,
            product_id: video.product_id,
            // A failure that was ignored reports what was sent; otherwise what is stored.
            error: video.error.clone().unwrap_or_else(|| error.clone()),
        }),
    }
    .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ID: &str = "507f1f77bcf86cd799439011";

    #[test]
    fn required_and_types_come_before_format() {
        let s = WebhookKind::Success;
        let err = |v: Value| parse_payload(s, &v).unwrap_err();
        assert_eq!(err(json!({})).message, MSG_VIDEO_ID_REQUIRED);
        assert_eq!(err(json!({"videoId": null})).message, MSG_VIDEO_ID_REQUIRED);
        assert_eq!(err(json!({"videoId": ""})).message, MSG_VIDEO_ID_REQUIRED);
        assert_eq!(
            err(json!({"videoId": 12})).message,
            "videoId must be a string"
        );
        assert_eq!(err(json!({"videoId": "abc"})).message, MSG_INVALID_VIDEO_ID);
        assert_eq!(
            err(json!({"videoId": "abc", "video_url": 3})).message,
            "video_url must be a string"
        );
        assert_eq!(
            err(json!([1, 2])).message,
            "Request body must be a JSON object"
        );
        assert!(err(json!({})).status == 400);
    }

    #[test]
    fn success_fields_are_read_and_unknown_fields_allowed() {
        let (id, change) = parse_payload(
            WebhookKind::Success,
            &json!({"videoId": ID, "youtubeVideoId": "yt", "video_url": "u", "img_s3_url": "i",
                    "localFilename": "/f.mp4", "extra": true}),
        )
        .unwrap();
        assert_eq!(id.to_string(), ID);
        assert_eq!(
            change,
            VideoChange::Complete(SuccessFields {
                youtube_video_id: Some("yt".into()),
                local_filename: Some("/f.mp4".into()),
                video_url: Some("u".into()),
                img_s3_url: Some("i".into()),
            })
        );
    }

    #[test]
    fn failure_without_error_gets_the_default() {
        let (_, change) = parse_payload(WebhookKind::Failure, &json!({"videoId": ID})).unwrap();
        assert_eq!(
            change,
            VideoChange::Fail {
                error: DEFAULT_FAILURE_ERROR.into()
            }
        );
        let err = parse_payload(WebhookKind::Failure, &json!({"videoId": ID, "error": {}}));
        assert_eq!(err.unwrap_err().message, "error must be a string");
    }

    #[test]
    fn state_rules() {
        use Decision::*;
        use VideoStatus::*;
        let s = WebhookKind::Success;
        let f = WebhookKind::Failure;
        assert_eq!(decide(s, Generating), Apply);
        assert_eq!(decide(s, Pending), Apply);
        assert_eq!(decide(s, Failed), Apply);
        assert_eq!(decide(s, Completed), Repeat);
        assert_eq!(decide(f, Generating), Apply);
        assert_eq!(decide(f, Pending), Apply);
        assert_eq!(decide(f, Failed), Repeat);
        assert_eq!(decide(f, Completed), Ignore);
        assert_eq!(response_line(f, Ignore), (200, MSG_FAILURE_IGNORED));
    }

    #[test]
    fn raw_video_id_keeps_malformed_strings_only() {
        assert_eq!(raw_video_id(&json!({"videoId": "x"})), Some("x".into()));
        assert_eq!(raw_video_id(&json!({"videoId": 5})), None);
        assert_eq!(raw_video_id(&json!("text")), None);
    }
}

/// What a replay of a recorded callback did (`POST /api/webhook-events/{id}/replay`, the event
/// page's Replay button, `server events replay`): the event it recorded and the answer the callback
/// got this time.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Replayed {
    pub event_id: crate::model::ObjectId,
    pub status_code: u16,
    pub outcome: String,
}
