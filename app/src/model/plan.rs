//! Planners: what a change does to the stored records, decided without touching a store.
//!
//! Every write that moves a video between statuses goes the same way on both stores: the adapter
//! loads the video and its `Product.videos` entry ([`Loaded`]), asks a planner here what to write, and
//! writes it conditionally ([`VideoWrite::expected`]: the status it was planned from). The state
//! rules live in [`super::webhook`]; which statuses an operation may change, what the product entry
//! starts as and which time a video finished at live here. So an adapter holds no business rule, and
//! a rule is unit-tested once for both stores.

use super::webhook::{apply_change, decide, requeue, response_line, Decision, VideoChange};
use super::webhook::{CallbackAuth, MSG_INVALID_CREDENTIALS, MSG_VIDEO_NOT_FOUND};
use super::{AiVideo, ObjectId, ProductVideo, Timestamp, VideoMetadata, VideoStatus, WebhookEvent};

/// A video and its product entry, as a store read them inside the transaction that will write.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    pub video: AiVideo,
    /// `None` when the product (or its entry) is gone; the video is still updated.
    pub entry: Option<ProductVideo>,
}

/// What to write for one video: the record and its entry as they must be stored, only if the stored
/// status is still `expected` (otherwise someone else changed it meanwhile: plan again).
#[derive(Clone, Debug, PartialEq)]
pub struct VideoWrite {
    pub video: AiVideo,
    pub entry: Option<ProductVideo>,
    pub expected: VideoStatus,
    /// The metadata as it was (with `expected`, what the maintained counters take away).
    pub before: VideoMetadata,
    /// The error as it was (a failure reason the counters take away).
    pub before_error: Option<String>,
    /// The time of the change (the product's `updatedAt`).
    pub at: Timestamp,
    /// The callback token was replaced (a requeue gives the video a new one); every other change
    /// leaves it as it was, so a store need not rewrite it (nor its index).
    pub token_changed: bool,
}

/// The audit record of a callback before its outcome is known.
#[derive(Clone, Debug, PartialEq)]
pub struct EventDraft {
    pub id: ObjectId,
    pub endpoint: String,
    pub payload: serde_json::Value,
    pub video_id: Option<String>,
    pub created_at: Timestamp,
    /// Appended to the outcome in parentheses (a replay says whose and of what).
    pub note: Option<String>,
}

/// The most of a refused call's body the audit log keeps.
pub const REFUSED_PAYLOAD_BYTES: usize = 4096;

/// A refused call's payload, cut to [`REFUSED_PAYLOAD_BYTES`] when larger: what is kept says it is
/// truncated and how large the whole was (so a flood of big refused calls cannot fill the store).
pub fn refused_payload(payload: serde_json::Value) -> serde_json::Value {
    let text = match &payload {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.len() <= REFUSED_PAYLOAD_BYTES {
        return payload;
    }
    let mut cut = REFUSED_PAYLOAD_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    serde_json::json!({
        "truncated": true,
        "bytes": text.len(),
        "head": &text[..cut],
    })
}

impl EventDraft {
    /// The same call with its payload as JSON text, for a store that cannot hold it as a document.
    pub fn with_payload_as_text(mut self) -> Self {
        if !self.payload.is_string() {
            self.payload = serde_json::Value::String(self.payload.to_string());
        }
        self
    }

    /// The event, answered with `status_code`; a refused call (4xx) keeps at most 4 KiB of its body.
    pub fn finish(self, status_code: u16, outcome: &str) -> WebhookEvent {
        let payload = if (400..500).contains(&status_code) {
            refused_payload(self.payload)
        } else {
            self.payload
        };
        WebhookEvent {
            id: self.id,
            endpoint: self.endpoint,
            payload,
            video_id: self.video_id,
            status_code,
            outcome: match self.note {
                Some(note) => format!("{outcome} ({note})"),
                None => outcome.to_string(),
            },
            created_at: self.created_at,
        }
    }
}

/// What applying a callback did.
// Returned once per call and never stored, so the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Applied {
    NotFound,
    /// A signed delivery whose `webhook-id` was seen before: answered as the first one was
    /// (`status_code`, `outcome`, and the video as it is now), nothing changed.
    Duplicate {
        status_code: u16,
        outcome: String,
        video: Option<AiVideo>,
    },
    /// The call did not carry the video's callback token (nor a valid signature): 401, and the
    /// video is unchanged.
    Unauthorized,
    Done {
        decision: Decision,
        /// The video as stored after the commit.
        video: AiVideo,
        /// Its status before the call.
        previous: VideoStatus,
    },
}

/// Everything one callback writes, in one commit: the video change (if the rules apply it) and the
/// event that records the call.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookPlan {
    pub write: Option<VideoWrite>,
    pub event: WebhookEvent,
    pub applied: Applied,
}

/// A callback for the video in `loaded` (`None`: no such video, a 404 that is still recorded),
/// which proved `auth`. The 400s were answered before (no video is read for them); an unknown video
/// is a 404 whatever the credentials, as the spec answers it; a video with a callback token refuses
/// a call without it (401).
pub fn plan_webhook(
    loaded: Option<Loaded>,
    change: &VideoChange,
    auth: &CallbackAuth,
    draft: EventDraft,
) -> WebhookPlan {
    let Some(Loaded {
        mut video,
        mut entry,
    }) = loaded
    else {
        return WebhookPlan {
            write: None,
            event: draft.finish(404, MSG_VIDEO_NOT_FOUND),
            applied: Applied::NotFound,
        };
    };
    if !auth.admits(video.callback_token_hash.as_deref()) {
        return WebhookPlan {
            write: None,
            event: draft.finish(401, MSG_INVALID_CREDENTIALS),
            applied: Applied::Unauthorized,
        };
    }
    let at = draft.created_at;
    let kind = change.kind();
    let previous = video.status;
    let decision = decide(kind, previous);
    let write = (decision == Decision::Apply).then(|| {
        let before = video.metadata.clone();
        let before_error = video.error.clone();
        apply_change(&mut video, entry.as_mut(), change, at);
        VideoWrite {
            video: video.clone(),
            entry,
            expected: previous,
            before,
            before_error,
            at,
            token_changed: false,
        }
    });
    let (status, message) = response_line(kind, decision);
    WebhookPlan {
        write,
        event: draft.finish(status, message),
        applied: Applied::Done {
            decision,
            video,
            previous,
        },
    }
}

/// How a signed delivery was first answered (kept 24 h by `webhook-id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub status_code: u16,
    pub outcome: String,
}

impl Delivery {
    /// The record of a delivery answered by `event`.
    pub fn answered(id: &str, event: &WebhookEvent) -> Self {
        Self {
            id: id.to_string(),
            status_code: event.status_code,
            outcome: event.outcome.clone(),
        }
    }
}

/// A signed delivery seen before: nothing is written but its event, which says so.
pub fn plan_duplicate(loaded: Option<Loaded>, first: Delivery, draft: EventDraft) -> WebhookPlan {
    let event = draft.finish(
        first.status_code,
        &format!(
            "{} (duplicate of delivery {}; nothing changed)",
            first.outcome, first.id
        ),
    );
    WebhookPlan {
        write: None,
        event,
        applied: Applied::Duplicate {
            status_code: first.status_code,
            outcome: first.outcome,
            video: loaded.map(|l| l.video),
        },
    }
}

/// Fails a video that will not be generated (RCK refused the batch, or a superadmin gave up on it).
/// `None` when it is already final: `completed` and `failed` are left alone.
pub fn plan_fail(loaded: Loaded, reason: &str, at: Timestamp) -> Option<VideoWrite> {
    let Loaded {
        mut video,
        mut entry,
    } = loaded;
    let expected = video.status;
    if expected.is_final() {
        return None;
    }
    let change = VideoChange::Fail {
        error: reason.to_string(),
    };
    let before = video.metadata.clone();
    let before_error = video.error.clone();
    apply_change(&mut video, entry.as_mut(), &change, at);
    Some(VideoWrite {
        video,
        entry,
        expected,
        before,
        before_error,
        at,
        token_changed: false,
    })
}

/// What a video that RCK never called back fails with.
pub const MSG_TIMED_OUT: &str = "Timed out waiting for the video generation service";

/// Fails a video still waiting for RCK since before `before` (the sweeper). `None` when it moved
/// meanwhile: a callback that landed wins.
pub fn plan_timeout(loaded: Loaded, before: Timestamp, at: Timestamp) -> Option<VideoWrite> {
    let waiting = matches!(
        loaded.video.status,
        VideoStatus::Pending | VideoStatus::Generating
    );
    if !waiting || loaded.video.updated_at >= before {
        return None;
    }
    plan_fail(loaded, MSG_TIMED_OUT, at)
}

/// Sends a failed video back to `generating` (a retry), with the callback token hash of the batch
/// that resends it (the old token stops working). `None` unless it is `failed`.
pub fn plan_requeue(
    loaded: Loaded,
    callback_token_hash: Option<String>,
    at: Timestamp,
) -> Option<VideoWrite> {
    let Loaded {
        mut video,
        mut entry,
    } = loaded;
    if video.status != VideoStatus::Failed {
        return None;
    }
    let before = video.metadata.clone();
    let before_error = video.error.clone();
    requeue(&mut video, entry.as_mut(), at);
    let token_changed = video.callback_token_hash != callback_token_hash;
    video.callback_token_hash = callback_token_hash;
    Some(VideoWrite {
        video,
        entry,
        expected: VideoStatus::Failed,
        before,
        before_error,
        at,
        token_changed,
    })
}

impl ProductVideo {
    /// The `Product.videos` entry a new video starts with.
    pub fn pending_for(video: &AiVideo) -> Self {
        ProductVideo {
            video_id: Some(video.id),
            template_id: video.metadata.template_id.clone(),
            template_name: video.template.clone(),
            status: video.status,
            video_url: None,
            youtube_url: None,
            img_s3_url: None,
            error: None,
            created_at: video.created_at,
            completed_at: None,
            failed_at: None,
        }
    }
}

impl VideoMetadata {
    /// When a video in `status` reached it: `completedAt` or `failedAt`; `None` for the others.
    pub fn finished_at(&self, status: VideoStatus) -> Option<Timestamp> {
        match status {
            VideoStatus::Completed => self.completed_at,
            VideoStatus::Failed => self.failed_at,
            VideoStatus::Pending | VideoStatus::Generating => None,
        }
    }
}

impl VideoStatus {
    /// `completed` and `failed`: only a callback may still move a video out of these (a late
    /// success completes a failed video).
    pub fn is_final(&self) -> bool {
        matches!(self, VideoStatus::Completed | VideoStatus::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::webhook::{SuccessFields, MSG_FAILURE, MSG_FAILURE_IGNORED, MSG_SUCCESS};

    fn t(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn video(status: VideoStatus) -> Loaded {
        let v = AiVideo {
            id: "507f1f77bcf86cd799439011".parse().unwrap(),
            user_id: "507f1f77bcf86cd799439012".parse().unwrap(),
            workspace_id: "507f1f77bcf86cd799439013".parse().unwrap(),
            product_id: "507f1f77bcf86cd799439014".parse().unwrap(),
            template: "Showcase".into(),
            status,
            error: None,
            metadata: VideoMetadata {
                template_id: "tpl".into(),
                queued_at: Some(t("2025-01-01T00:00:00Z")),
                ..Default::default()
            },
            created_at: t("2025-01-01T00:00:00Z"),
            updated_at: t("2025-01-01T00:00:00Z"),
            callback_token_hash: Some("h1".into()),
        };
        let mut entry = ProductVideo::pending_for(&v);
        entry.status = status;
        Loaded {
            video: v,
            entry: Some(entry),
        }
    }

    fn draft(endpoint: &str) -> EventDraft {
        EventDraft {
            id: "507f1f77bcf86cd799439020".parse().unwrap(),
            endpoint: endpoint.into(),
            payload: serde_json::json!({}),
            video_id: Some("507f1f77bcf86cd799439011".into()),
            created_at: t("2025-01-01T00:05:00Z"),
            note: None,
        }
    }

    fn ok() -> CallbackAuth {
        CallbackAuth::Token(Some("h1".into()))
    }

    fn success() -> VideoChange {
        VideoChange::Complete(SuccessFields {
            video_url: Some("https://cdn/v.mp4".into()),
            youtube_video_id: Some("yt1".into()),
            ..Default::default()
        })
    }

    #[test]
    fn unknown_video_is_a_recorded_404_that_writes_nothing() {
        let plan = plan_webhook(None, &success(), &ok(), draft("/videos/success"));
        assert_eq!(plan.applied, Applied::NotFound);
        assert!(plan.write.is_none());
        assert_eq!(plan.event.status_code, 404);
        assert_eq!(plan.event.outcome, MSG_VIDEO_NOT_FOUND);
    }

    #[test]
    fn success_writes_video_and_entry_conditionally_on_the_status_read() {
        let plan = plan_webhook(
            Some(video(VideoStatus::Generating)),
            &success(),
            &ok(),
            draft("/videos/success"),
        );
        let w = plan.write.expect("a write");
        assert_eq!(w.expected, VideoStatus::Generating);
        assert_eq!(w.video.status, VideoStatus::Completed);
        assert_eq!(w.video.metadata.completed_at, Some(w.at));
        let e = w.entry.expect("the entry follows");
        assert_eq!(e.status, VideoStatus::Completed);
        assert_eq!(
            e.youtube_url.as_deref(),
            Some("https://www.youtube.com/watch?v=yt1")
        );
        assert_eq!(
            (plan.event.status_code, plan.event.outcome.as_str()),
            (200, MSG_SUCCESS)
        );
    }

    #[test]
    fn repeats_and_ignored_failures_write_only_the_event() {
        let fail = VideoChange::Fail { error: "x".into() };
        let plan = plan_webhook(
            Some(video(VideoStatus::Completed)),
            &fail,
            &ok(),
            draft("/videos/failure"),
        );
        assert!(plan.write.is_none());
        assert_eq!(plan.event.outcome, MSG_FAILURE_IGNORED);
        let plan = plan_webhook(
            Some(video(VideoStatus::Failed)),
            &fail,
            &ok(),
            draft("/videos/failure"),
        );
        assert!(plan.write.is_none());
        assert_eq!(plan.event.outcome, MSG_FAILURE);
        let plan = plan_webhook(
            Some(video(VideoStatus::Completed)),
            &success(),
            &ok(),
            draft("/videos/success"),
        );
        assert!(plan.write.is_none());
    }

    #[test]
    fn a_video_with_a_token_refuses_calls_without_it() {
        for auth in [
            CallbackAuth::Token(None),
            CallbackAuth::Token(Some("h2".into())),
        ] {
            let plan = plan_webhook(
                Some(video(VideoStatus::Generating)),
                &success(),
                &auth,
                draft("/videos/success"),
            );
            assert_eq!(plan.applied, Applied::Unauthorized);
            assert!(plan.write.is_none());
            assert_eq!(
                (plan.event.status_code, plan.event.outcome.as_str()),
                (401, MSG_INVALID_CREDENTIALS)
            );
        }
        let signed = plan_webhook(
            Some(video(VideoStatus::Generating)),
            &success(),
            &CallbackAuth::Signed("msg_1".into()),
            draft("/videos/success"),
        );
        assert!(
            signed.write.is_some(),
            "a valid signature stands in for the token"
        );
        let mut legacy = video(VideoStatus::Generating);
        legacy.video.callback_token_hash = None;
        let plan = plan_webhook(
            Some(legacy),
            &success(),
            &CallbackAuth::Token(None),
            draft("/videos/success"),
        );
        assert!(
            plan.write.is_some(),
            "a video stored without a token is accepted as before"
        );
        let unknown = plan_webhook(
            None,
            &success(),
            &CallbackAuth::Token(None),
            draft("/videos/success"),
        );
        assert_eq!(
            unknown.applied,
            Applied::NotFound,
            "404 comes first, as the spec answers"
        );
    }

    #[test]
    fn a_duplicate_delivery_writes_only_its_event_and_answers_as_the_first() {
        let first = Delivery {
            id: "msg_1".into(),
            status_code: 200,
            outcome: MSG_SUCCESS.into(),
        };
        let plan = plan_duplicate(
            Some(video(VideoStatus::Completed)),
            first,
            draft("/videos/success"),
        );
        assert!(plan.write.is_none());
        assert_eq!(plan.event.status_code, 200);
        assert!(plan.event.outcome.contains("duplicate of delivery msg_1"));
        let Applied::Duplicate {
            status_code,
            outcome,
            video,
        } = plan.applied
        else {
            panic!("a duplicate");
        };
        assert_eq!((status_code, outcome.as_str()), (200, MSG_SUCCESS));
        assert_eq!(video.unwrap().status, VideoStatus::Completed);
    }

    #[test]
    fn refused_calls_keep_at_most_4_kib_of_their_body() {
        let big = serde_json::json!({ "videoId": "x", "blob": "é".repeat(5000) });
        let mut d = draft("/videos/success");
        d.payload = big.clone();
        let refused = d.clone().finish(400, "Invalid videoId format");
        assert_eq!(refused.payload["truncated"], true);
        assert_eq!(refused.payload["bytes"], big.to_string().len());
        let head = refused.payload["head"].as_str().unwrap();
        assert!(head.len() <= REFUSED_PAYLOAD_BYTES && big.to_string().starts_with(head));
        assert_eq!(
            d.clone().finish(200, MSG_SUCCESS).payload,
            big,
            "accepted calls keep it all"
        );
        d.payload = serde_json::json!({ "videoId": "small" });
        assert_eq!(
            d.clone().finish(404, "x").payload,
            d.payload,
            "small ones stay as they are"
        );
    }

    #[test]
    fn only_videos_still_waiting_since_before_the_cutoff_time_out() {
        let cutoff = t("2025-01-01T00:10:00Z");
        let at = t("2025-01-01T00:11:00Z");
        let w = plan_timeout(video(VideoStatus::Generating), cutoff, at).unwrap();
        assert_eq!(w.video.status, VideoStatus::Failed);
        assert_eq!(w.video.error.as_deref(), Some(MSG_TIMED_OUT));
        assert_eq!(w.entry.unwrap().status, VideoStatus::Failed);
        assert!(plan_timeout(video(VideoStatus::Completed), cutoff, at).is_none());
        let mut recent = video(VideoStatus::Generating);
        recent.video.updated_at = cutoff;
        assert!(
            plan_timeout(recent, cutoff, at).is_none(),
            "not waiting long enough"
        );
    }

    #[test]
    fn fail_leaves_final_videos_alone() {
        let at = t("2025-01-01T01:00:00Z");
        assert!(plan_fail(video(VideoStatus::Completed), "r", at).is_none());
        assert!(plan_fail(video(VideoStatus::Failed), "r", at).is_none());
        let w = plan_fail(video(VideoStatus::Pending), "r", at).unwrap();
        assert_eq!(w.expected, VideoStatus::Pending);
        assert_eq!(w.video.status, VideoStatus::Failed);
        assert_eq!(w.video.error.as_deref(), Some("r"));
        assert_eq!(w.entry.unwrap().failed_at, Some(at));
    }

    #[test]
    fn requeue_only_from_failed_and_counts_the_retry() {
        let at = t("2025-01-01T02:00:00Z");
        assert!(plan_requeue(video(VideoStatus::Generating), None, at).is_none());
        assert!(plan_requeue(video(VideoStatus::Completed), None, at).is_none());
        let failed = plan_fail(video(VideoStatus::Generating), "r", at).unwrap();
        let w = plan_requeue(
            Loaded {
                video: failed.video,
                entry: failed.entry,
            },
            Some("h2".into()),
            at,
        )
        .unwrap();
        assert_eq!(
            w.video.callback_token_hash.as_deref(),
            Some("h2"),
            "a new token"
        );
        assert_eq!(w.expected, VideoStatus::Failed);
        assert_eq!(w.video.status, VideoStatus::Generating);
        assert_eq!(w.video.metadata.retry_count, Some(1));
        assert_eq!(w.video.metadata.queued_at, Some(at));
        assert!(w.video.error.is_none());
    }

    #[test]
    fn finished_time_follows_the_status() {
        let m = VideoMetadata {
            completed_at: Some(t("2025-01-01T01:00:00Z")),
            failed_at: Some(t("2025-01-01T02:00:00Z")),
            ..Default::default()
        };
        assert_eq!(m.finished_at(VideoStatus::Completed), m.completed_at);
        assert_eq!(m.finished_at(VideoStatus::Failed), m.failed_at);
        assert_eq!(m.finished_at(VideoStatus::Generating), None);
    }
}
