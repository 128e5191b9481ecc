//! AIVideo records: reading them, and the superadmin's manual actions (mark failed, retry).

use super::bulk::{dispatch, Dispatched};
use super::{parse_id, parse_paging};
use crate::model::dashboard::{
    BulkAction, BulkActionRequest, BulkActionResult, BulkItemError, VideoDetail,
};
use crate::model::filters::VideoFilter;
use crate::model::webhook::{MSG_INVALID_VIDEO_ID, MSG_VIDEO_NOT_FOUND};
use crate::model::{AiVideo, ObjectId, Pagination, Timestamp, VideoPage, VideoRow, VideoStatus};
use crate::ssr::auth::Caller;
use crate::ssr::callback_auth;
use crate::ssr::error::{AppError, AppResult};
use crate::ssr::rck::BatchRequest;
use crate::ssr::state::AppState;
use crate::ssr::store::{EventQuery, Quota, VideoQuery};
use futures::StreamExt;
use serde_json::json;
use std::collections::HashMap;

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

/// The store query of a list filter, and the cutoff that makes a video stuck.
fn video_query(state: &AppState, p: &VideoFilter) -> AppResult<(VideoQuery, Timestamp)> {
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
    let error_prefix = some(&p.error);
    if error_prefix
        .as_ref()
        .is_some_and(|e| e.chars().count() > 1000)
    {
        return Err(AppError::BadRequest(
            "error must be at most 1000 characters".into(),
        ));
    }
    let cutoff = stuck_cutoff(state, Timestamp::now());
    let stuck_only = matches!(some(&p.stuck).as_deref(), Some("1" | "true" | "on"));
    let q = VideoQuery {
        page,
        limit,
        after: super::parse_cursor(p.cursor.as_deref())?,
        status,
        workspace_id,
        video_id,
        stuck_before: stuck_only.then_some(cutoff),
        error_prefix,
    };
    Ok((q, cutoff))
}

/// All videos, newest first (superadmin), with their product's and workspace's names.
#[tracing::instrument(skip(state, caller), fields(user = %caller.user_id))]
pub async fn list_videos(
    state: &AppState,
    caller: &Caller,
    p: &VideoFilter,
) -> AppResult<VideoPage> {
    caller.require_superadmin()?;
    let (q, cutoff) = video_query(state, p)?;
    // The stuck filter moves with the clock: those totals are never kept.
    let total_key = format!(
        "videos|{:?}|{:?}|{:?}|{:?}|{}",
        q.status,
        q.workspace_id,
        q.video_id,
        q.error_prefix,
        match q.stuck_before {
            Some(_) => Timestamp::now().millis().to_string(),
            None => String::new(),
        }
    );
    let (videos, total) = tokio::try_join!(
        state.store.page_videos(&q),
        state.totals.get(total_key, state.store.count_videos(&q))
    )?;
    let next = super::next_cursor(&videos, q.limit, |v| (v.created_at, v.id));
    Ok(VideoPage {
        videos: named_rows(state, videos, cutoff).await?,
        pagination: Pagination::new(q.page, q.limit, total).with_next_cursor(next),
    })
}

/// Rows of videos with their product's title and first image and their workspace's name (one
/// read of each product and workspace the videos name).
pub async fn named_rows(
    state: &AppState,
    videos: Vec<AiVideo>,
    cutoff: Timestamp,
) -> AppResult<Vec<VideoRow>> {
    let mut product_ids: Vec<ObjectId> = videos.iter().map(|v| v.product_id).collect();
    product_ids.sort_unstable();
    product_ids.dedup();
    let mut ws_ids: Vec<ObjectId> = videos.iter().map(|v| v.workspace_id).collect();
    ws_ids.sort_unstable();
    ws_ids.dedup();
    let (products, workspaces) = tokio::try_join!(
        state.store.find_product_cards(&product_ids),
        state.store.find_workspaces(&ws_ids)
    )?;
    let products: HashMap<ObjectId, (String, Option<String>)> = products
        .into_iter()
        .map(|p| {
            (
                p.id,
                (p.title, p.img_urls.into_iter().find(|u| is_image_url(u))),
            )
        })
        .collect();
    let workspaces: HashMap<ObjectId, String> =
        workspaces.into_iter().map(|w| (w.id, w.name)).collect();
    Ok(videos
        .into_iter()
        .map(|video| {
            let product = products.get(&video.product_id);
            let mut row = VideoRow::new(video, false);
            row.stuck = is_stuck(&row.video, cutoff);
            row.product_title = product.map(|p| p.0.clone());
            row.product_image = product.and_then(|p| p.1.clone());
            row.workspace_name = workspaces.get(&row.video.workspace_id).cloned();
            row
        })
        .collect())
}

/// Only http(s) images are shown (a product's URLs come from the platform, as they are).
fn is_image_url(u: &str) -> bool {
    (u.starts_with("https://") || u.starts_with("http://")) && u.len() <= 2048
}

/// One video's page (superadmin): the row with its names, its webhook events in the order
/// received (the newest [`VideoDetail::MAX_EVENTS`]), and how many retries a video may have.
#[tracing::instrument(skip(state, caller), fields(user = %caller.user_id))]
pub async fn video_detail(state: &AppState, caller: &Caller, id: &str) -> AppResult<VideoDetail> {
    caller.require_superadmin()?;
    let id = video_id(id)?;
    let video = state.store.find_video(id).await?.ok_or_else(not_found)?;
    let q = EventQuery {
        page: 1,
        limit: VideoDetail::MAX_EVENTS + 1,
        video_id: Some(id.to_string()),
        ..Default::default()
    };
    let mut events = state.store.page_events(&q).await?;
    let more_events = events.len() as u64 > VideoDetail::MAX_EVENTS;
    events.truncate(VideoDetail::MAX_EVENTS as usize);
    events.reverse();
    let cutoff = stuck_cutoff(state, Timestamp::now());
    let row = named_rows(state, vec![video], cutoff)
        .await?
        .pop()
        .ok_or_else(not_found)?;
    Ok(VideoDetail {
        row,
        events,
        more_events,
        max_retries: state.config.video_max_retries,
    })
}

/// A bulk action (superadmin): each video goes through the single action's service function
/// ([`retry`] or [`mark_failed`]), a few at a time, in one bounded batch per call.
#[tracing::instrument(skip(state, caller, req), fields(user = %caller.user_id, action = ?req.action))]
pub async fn bulk_action(
    state: &AppState,
    caller: &Caller,
    req: &BulkActionRequest,
) -> AppResult<BulkActionResult> {
    caller.require_superadmin()?;
    let mut skipped = 0;
    let mut missing = Vec::new();
    let (ids, next_cursor, matched) = match (&req.video_ids, &req.filter) {
        (Some(ids), None) => {
            if ids.is_empty() || ids.len() > BulkActionRequest::MAX_IDS {
                return Err(AppError::BadRequest(format!(
                    "videoIds must hold 1 to {} ids",
                    BulkActionRequest::MAX_IDS
                )));
            }
            let mut parsed = Vec::with_capacity(ids.len());
            for raw in ids {
                parsed.push(video_id(raw)?);
            }
            parsed.sort_unstable();
            parsed.dedup();
            let found = state.store.find_videos(&parsed).await?;
            let (take, leave): (Vec<&AiVideo>, Vec<&AiVideo>) =
                found.iter().partition(|v| takes(req.action, v));
            skipped = leave.len() as u64;
            for id in &parsed {
                if !found.iter().any(|v| v.id == *id) {
                    missing.push(BulkItemError {
                        video_id: id.to_string(),
                        message: MSG_VIDEO_NOT_FOUND.into(),
                    });
                }
            }
            if req.dry_run {
                return Ok(BulkActionResult {
                    matched: take.len() as u64,
                    ..Default::default()
                });
            }
            (
                take.iter().map(|v| v.id).collect::<Vec<_>>(),
                None,
                parsed.len() as u64,
            )
        }
        (None, Some(filter)) => {
            let (mut q, cutoff) = video_query(state, filter)?;
            // A retry takes the filter's failed videos; mark-failed its stuck ones.
            match req.action {
                BulkAction::Retry => {
                    if q.status.is_some_and(|s| s != VideoStatus::Failed) {
                        return Ok(BulkActionResult::default());
                    }
                    q.status = Some(VideoStatus::Failed);
                    q.stuck_before = None;
                }
                BulkAction::MarkFailed => q.stuck_before = Some(cutoff),
            }
            if req.dry_run {
                let n = state.store.count_videos(&q).await?;
                return Ok(BulkActionResult {
                    matched: n,
                    ..Default::default()
                });
            }
            q.page = 1;
            q.limit = BulkActionRequest::BATCH;
            q.after = super::parse_cursor(req.cursor.as_deref())?;
            let videos = state.store.page_videos(&q).await?;
            let next = super::next_cursor(&videos, q.limit, |v| (v.created_at, v.id));
            let n = videos.len() as u64;
            (videos.into_iter().map(|v| v.id).collect(), next, n)
        }
        _ => {
            return Err(AppError::BadRequest(
                "Give either videoIds or filter".into(),
            ))
        }
    };
    let outcomes: Vec<(ObjectId, AppResult<AiVideo>)> = futures::stream::iter(ids)
        .map(|id: ObjectId| async move {
            let raw = id.to_string();
            let r = match req.action {
                BulkAction::Retry => retry(state, caller, &raw).await,
                BulkAction::MarkFailed => mark_failed(state, caller, &raw, None).await,
            };
            (id, r)
        })
        .buffer_unordered(BULK_CONCURRENCY)
        .collect()
        .await;
    let mut result = BulkActionResult {
        matched,
        skipped,
        errors: missing,
        next_cursor,
        ..Default::default()
    };
    for (id, r) in outcomes {
        match r {
            Ok(_) => result.done += 1,
            // An outage stops the batch: the caller sees it rather than a list of 503s.
            Err(e @ (AppError::StorageUnavailable(_) | AppError::Internal { .. })) => {
                return Err(e)
            }
            Err(e) => result.errors.push(BulkItemError {
                video_id: id.to_string(),
                message: e.to_string(),
            }),
        }
    }
    result.errors.sort_by(|a, b| a.video_id.cmp(&b.video_id));
    tracing::info!(target: "video_service", by = %caller.user_id, action = req.action.verb(),
        done = result.done, skipped = result.skipped, refused = result.errors.len(), "bulk action");
    Ok(result)
}

/// Videos of one bulk call acted on at once (a retry calls RCK).
const BULK_CONCURRENCY: usize = 4;

/// Whether a bulk action would take this video.
fn takes(action: BulkAction, v: &AiVideo) -> bool {
    match action {
        BulkAction::Retry => v.status == VideoStatus::Failed,
        BulkAction::MarkFailed => {
            matches!(v.status, VideoStatus::Pending | VideoStatus::Generating)
        }
    }
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
