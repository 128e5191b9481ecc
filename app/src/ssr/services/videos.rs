//! AIVideo records: reading them, and the superadmin's manual actions (mark failed, retry).

use super::bulk::{dispatch, Dispatched};
use super::{parse_id, parse_paging};
use crate::model::filters::VideoFilter;
use crate::model::webhook::{MSG_INVALID_VIDEO_ID, MSG_VIDEO_NOT_FOUND};
use crate::model::{AiVideo, ObjectId, Pagination, Timestamp, VideoPage, VideoRow, VideoStatus};
use crate::ssr::auth::Caller;
use crate::ssr::callback_auth;
use crate::ssr::error::{AppError, AppResult};
use crate::ssr::rck::BatchRequest;
use crate::ssr::state::AppState;
use crate::ssr::store::{Quota, VideoQuery};
use serde_json::json;

pub const DEFAULT_MANUAL_FAILURE: &str = "Marked as failed by an administrator";

fn video_id(raw: &str) -> AppResult<ObjectId> {
    parse_id(raw, "videoId").map_err(|_| AppError::BadRequest(MSG_INVALID_VIDEO_ID.into()))
}

fn not_found() -> AppError {
    AppError::NotFound(MSG_VIDEO_NOT_FOUND.into())
}

/// A video of the caller's workspace (any, for a superadmin); another workspace's video is a 404.
#[tracing::instrument(skip(state, caller), fields(user = %caller.user_id))]
pub async fn get_video(state: &AppState, caller: &Caller, id: &str) -> AppResult<AiVideo> {
    let id = video_id(id)?;
    match state.store.find_video(id).await? {
        Some(v) if caller.is_superadmin() || Some(v.workspace_id) == caller.workspace_id => Ok(v),
        _ => Err(not_found()),
    }
}

fn stuck_cutoff(state: &AppState, now: Timestamp) -> Timestamp {
    Timestamp::from_millis(now.millis() - (state.config.video_timeout_minutes * 60_000.0) as i64)
}

/// Whether a video has been `generating` for longer than `VIDEO_TIMEOUT_MINUTES`.
pub fn is_stuck(video: &AiVideo, cutoff: Timestamp) -> bool {
    matches!(video.status, VideoStatus::Generating | VideoStatus::Pending)
        && video.updated_at < cutoff
}

/// All videos, newest first (superadmin).
#[tracing::instrument(skip(state, caller), fields(user = %caller.user_id))]
pub async fn list_videos(
    state: &AppState,
    caller: &Caller,
    p: &VideoFilter,
) -> AppResult<VideoPage> {
    caller.require_superadmin()?;
    let (page, limit) = parse_paging(p.page.as_deref(), p.limit.as_deref())?;
    let some = |o: &Option<String>| {
        o.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let status = some(&p.status)
        .map(|s| {
            s.parse::<VideoStatus>().map_err(|_| {
                AppError::BadRequest(
                    "status must be one of pending, generating, completed, failed".into(),
                )
            })
        })
        .transpose()?;
    let workspace_id = some(&p.workspace_id)
        .map(|w| parse_id(&w, "workspaceId"))
        .transpose()?;
    let video_id = some(&p.video_id).map(|v| video_id(&v)).transpose()?;
    let now = Timestamp::now();
    let cutoff = stuck_cutoff(state, now);
    let stuck_only = matches!(some(&p.stuck).as_deref(), Some("1" | "true" | "on"));
    let q = VideoQuery {
        page,
        limit,
        after: super::parse_cursor(p.cursor.as_deref())?,
        status,
        workspace_id,
        video_id,
        stuck_before: stuck_only.then_some(cutoff),
    };
    // The stuck filter moves with the clock: those totals are never kept.
    let total_key = format!(
        "videos|{status:?}|{workspace_id:?}|{video_id:?}|{}",
        if stuck_only {
            Timestamp::now().millis().to_string()
        } else {
            String::new()
        }
    );
    let (videos, total) = tokio::try_join!(
        state.store.page_videos(&q),
        state.totals.get(total_key, state.store.count_videos(&q))
    )?;
    let next = super::next_cursor(&videos, limit, |v| (v.created_at, v.id));
    Ok(VideoPage {
        videos: videos
            .into_iter()
            .map(|video| VideoRow {
                stuck: is_stuck(&video, cutoff),
                video,
            })
            .collect(),
        pagination: Pagination::new(page, limit, total).with_next_cursor(next),
    })
}

/// A superadmin marks a video that will never be called back as failed (the spec's "manually mark
/// as failed from the admin"). Final videos are left alone (409).
#[tracing::instrument(skip(state, caller, reason), fields(user = %caller.user_id))]
pub async fn mark_failed(
    state: &AppState,
    caller: &Caller,
    id: &str,
    reason: Option<String>,
) -> AppResult<AiVideo> {
    caller.require_superadmin()?;
    let id = video_id(id)?;
    let reason = reason
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| DEFAULT_MANUAL_FAILURE.into());
    if reason.chars().count() > 1000 {
        return Err(AppError::BadRequest(
            "error must be at most 1000 characters".into(),
        ));
    }
    // The status condition is part of the write: a callback that lands meanwhile wins, and this
    // answers 409 with what it did instead of a 200 carrying someone else's result.
    let failed = state
        .store
        .fail_videos(&[id], &reason, Timestamp::now())
        .await?;
    if let Some(video) = failed.into_iter().next() {
        tracing::info!(target: "video_service", video = %id, by = %caller.user_id, "video marked failed: {reason}");
        return Ok(video);
    }
    match state.store.find_video(id).await? {
        Some(video) => Err(AppError::Conflict(format!(
            "Video is already {}",
            video.status
        ))),
        None => Err(not_found()),
    }
}

/// Sends a failed video back to RCK (the spec's retry mechanism), at most `VIDEO_MAX_RETRIES` times.
/// A retry counts against the workspace's quota like a new video.
#[tracing::instrument(skip(state, caller), fields(user = %caller.user_id))]
pub async fn retry(state: &AppState, caller: &Caller, id: &str) -> AppResult<AiVideo> {
    caller.require_superadmin()?;
    let id = video_id(id)?;
    let video = state.store.find_video(id).await?.ok_or_else(not_found)?;
    let sent = resend(state, video).await?;
    tracing::info!(target: "video_service", video = %id, by = %caller.user_id, "video sent back to RCK");
    Ok(sent)
}

/// The retry itself, for a superadmin's request and for automatic retries: checks the video is
/// `failed` with retries left, counts one video of quota, sends it back to `generating` with a new
/// callback token (conditionally: one sender wins) and dispatches it to RCK.
async fn resend(state: &AppState, video: AiVideo) -> AppResult<AiVideo> {
    let id = video.id;
    if video.status != VideoStatus::Failed {
        return Err(AppError::Conflict(format!(
            "Only failed videos can be retried; this one is {}",
            video.status
        )));
    }
    let retries = video.metadata.retry_count.unwrap_or(0);
    if retries >= state.config.video_max_retries {
        return Err(AppError::Conflict(format!(
            "Video was already retried {retries} times (VIDEO_MAX_RETRIES = {})",
            state.config.video_max_retries
        )));
    }
    let Some(rck) = state.rck.as_ref() else {
        return Err(AppError::ServiceUnavailable(
            "Video generation is not configured (RCK_DESCRIPTION_SERVER_URL is not set)".into(),
        ));
    };
    let product = state
        .store
        .find_product(video.product_id)
        .await?
        .ok_or_else(|| AppError::NotFound("Product not found".into()))?;
    match state.store.reserve_quota(video.workspace_id, 1).await? {
        Quota::Reserved => {}
        Quota::Exceeded { limit, used } => {
            return Err(AppError::ForbiddenWith {
                message: super::bulk::MSG_LIMIT_EXCEEDED.into(),
                details: json!({ "limit": limit, "used": used, "requested": 1 }),
            })
        }
        Quota::NoWorkspace => return Err(AppError::NotFound("Workspace not found".into())),
    }
    // A new batch, so a new token: the old URLs stop working.
    let (token, token_hash) = callback_auth::new_token();
    let Some(requeued) = state
        .store
        .requeue_video(id, Some(token_hash), Timestamp::now())
        .await?
    else {
        // Someone else changed it meanwhile.
        let _ = state.store.release_quota(video.workspace_id, 1).await;
        return Err(AppError::Conflict("Video is no longer failed".into()));
    };
    let batch = BatchRequest::new(&state.config.server_url, &token, [(&requeued, &product)]);
    let key = format!("retry-{id}-{}", requeued.metadata.retry_count.unwrap_or(1));
    match dispatch(state, rck, video.workspace_id, &[id], &batch, &key).await {
        Dispatched::Accepted(_) | Dispatched::Unconfirmed => {
            state.store.find_video(id).await?.ok_or_else(not_found)
        }
        Dispatched::Refused(e) => Err(AppError::BadGateway {
            message: format!("Video generation service unavailable: {e}"),
            details: json!({ "videoIds": [id] }),
        }),
    }
}

/// Videos one automatic-retry run sends at most; the rest wait for the next run.
pub const AUTO_RETRY_BATCH: u64 = 100;

/// With `VIDEO_AUTO_RETRY`: sends failed videos (failed by RCK, refused by it, or timed out) back to
/// RCK by themselves, each when its backoff has passed since it failed
/// (`VIDEO_RETRY_BACKOFF_SECONDS`, doubling with each retry), up to `VIDEO_MAX_RETRIES` times. Each
/// retry counts one video of quota, like a superadmin's retry; a workspace over its limit leaves
/// the video failed. Several instances may run this at once: one of them wins each video. Returns
/// the ids sent.
#[tracing::instrument(skip_all)]
pub async fn auto_retry(state: &AppState) -> AppResult<Vec<ObjectId>> {
    let c = &state.config;
    if !c.video_auto_retry || state.rck.is_none() || c.video_max_retries == 0 {
        return Ok(Vec::new());
    }
    let base_ms = (c.video_retry_backoff_secs * 1000.0).round() as i64;
    let backoff = |retries: u32| base_ms.saturating_mul(1i64 << retries.min(30));
    let now = Timestamp::now().millis();
    // Failures older than twice the longest backoff (at least an hour) are not looked at again: a
    // video whose retry fell due while no server ran for that long stays failed.
    let window = backoff(c.video_max_retries)
        .saturating_mul(2)
        .max(3_600_000);
    let candidates = state
        .store
        .retryable_failed(
            Timestamp::from_millis(now.saturating_sub(window)),
            Timestamp::from_millis(now.saturating_sub(base_ms) + 1),
            c.video_max_retries,
            AUTO_RETRY_BATCH,
        )
        .await?;
    let mut sent = Vec::new();
    for video in candidates {
        let id = video.id;
        let due = video.updated_at.millis() + backoff(video.metadata.retry_count.unwrap_or(0));
        if due > now {
            continue;
        }
        match resend(state, video).await {
            Ok(_) => sent.push(id),
            // Another instance took it, or RCK refused it again (it is failed anew and waits for its
            // next backoff): not an error of this run.
            Err(AppError::Conflict(_) | AppError::BadGateway { .. }) => {}
            Err(e @ AppError::ForbiddenWith { .. }) => {
                tracing::info!(target: "video_service", video = %id, "automatic retry skipped: {e}");
            }
            Err(e) => return Err(e),
        }
    }
    if !sent.is_empty() {
        tracing::info!(target: "video_service", count = sent.len(), "failed videos sent back to RCK automatically");
    }
    Ok(sent)
}

/// Videos one sweep fails at most; the rest wait for the next sweep.
pub const SWEEP_BATCH: u64 = 500;

/// Fails the videos RCK never called back (waiting longer than `VIDEO_TIMEOUT_MINUTES`), with
/// "Timed out waiting for the video generation service"; their product entries follow. Safe with
/// several instances sweeping: each video is claimed by one conditional write. The quota stays
/// counted (RCK may have done the work; a late success still completes the video).
#[tracing::instrument(skip_all)]
pub async fn sweep_timed_out(state: &AppState) -> AppResult<Vec<AiVideo>> {
    let now = Timestamp::now();
    let failed = state
        .store
        .fail_timed_out(stuck_cutoff(state, now), now, SWEEP_BATCH)
        .await?;
    if !failed.is_empty() {
        tracing::warn!(target: "video_service", count = failed.len(), "videos timed out waiting for RCK; marked failed");
    }
    Ok(failed)
}
