//! `POST /api/videos/bulk-generate`: validate, check ownership, count the quota, create the records,
//! then call RCK and keep its job ids (the spec's "Fase 1").

use crate::model::{AiVideo, ObjectId, Timestamp, VideoMetadata, VideoStatus};
use crate::ssr::auth::Caller;
use crate::ssr::callback_auth;
use crate::ssr::error::ApiResponse;
use crate::ssr::error::{AppError, AppResult};
use crate::ssr::rck::{BatchRequest, RckClient, RckError};
use crate::ssr::services::idempotency::{self, Reply};
use crate::ssr::state::AppState;
use crate::ssr::store::Quota;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;
use tracing::Instrument;

pub const MAX_PRODUCTS: usize = 100;
pub const ASPECT_RATIOS: [&str; 4] = ["9:16", "16:9", "1:1", "4:5"];
pub const MSG_LIMIT_EXCEEDED: &str = "Video limit exceeded";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[schema(examples(json!({"productIds": ["507f1f77bcf86cd799439011", "507f1f77bcf86cd799439012"],
    "templateId": "template_001", "templateName": "Product Showcase", "aspect_ratio": "9:16"})))]
#[serde(rename_all = "camelCase")]
pub struct BulkRequest {
    pub product_ids: Vec<String>,
    pub template_id: String,
    pub template_name: String,
    /// Optional; `9:16` (vertical, for reels and shorts) when absent.
    #[serde(rename = "aspect_ratio", default)]
    pub aspect_ratio: Option<String>,
}

/// One started video in the 202 answer.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct StartedVideo {
    pub video_id: ObjectId,
    pub product_id: ObjectId,
    /// RCK's job id; `null` when RCK did not confirm the batch (see `MSG_UNCONFIRMED`).
    pub external_job_id: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BulkStarted {
    pub video_ids: Vec<ObjectId>,
    pub videos: Vec<StartedVideo>,
}

struct Valid {
    product_ids: Vec<ObjectId>,
    template_id: String,
    template_name: String,
    aspect_ratio: String,
}

fn validate(req: BulkRequest) -> AppResult<Valid> {
    let bad = |m: &str| Err(AppError::BadRequest(m.into()));
    if req.product_ids.is_empty() {
        return bad("productIds must hold at least one product id");
    }
    if req.product_ids.len() > MAX_PRODUCTS {
        return bad("productIds may hold at most 100 product ids");
    }
    let malformed: Vec<&String> = req
        .product_ids
        .iter()
        .filter(|i| i.parse::<ObjectId>().is_err())
        .collect();
    if !malformed.is_empty() {
        return Err(AppError::BadRequest(format!(
            "Invalid product id format: {}",
            malformed
                .iter()
                .take(10)
                .map(|s| format!("{:?}", s.chars().take(40).collect::<String>()))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let product_ids: Vec<ObjectId> = req
        .product_ids
        .iter()
        .filter_map(|i| i.parse().ok())
        .collect();
    if product_ids.iter().collect::<HashSet<_>>().len() != product_ids.len() {
        return bad("productIds must not repeat a product");
    }
    let template_id = req.template_id.trim().to_string();
    let template_name = req.template_name.trim().to_string();
    if template_id.is_empty() || template_id.chars().count() > 200 {
        return bad("templateId is required (at most 200 characters)");
    }
    if template_name.is_empty() || template_name.chars().count() > 200 {
        return bad("templateName is required (at most 200 characters)");
    }
    let aspect_ratio = req.aspect_ratio.unwrap_or_else(|| "9:16".into());
    if !ASPECT_RATIOS.contains(&aspect_ratio.as_str()) {
        return bad("aspect_ratio must be one of 9:16, 16:9, 1:1, 4:5");
    }
    Ok(Valid {
        product_ids,
        template_id,
        template_name,
        aspect_ratio,
    })
}

/// Bulk generation, done once per `Idempotency-Key` when the caller sends one.
///
/// `Ok` is an answer after which videos exist: 202 (RCK took the batch, or it may have: see
/// [`dispatch`]) or 502 (RCK refused it; the videos are failed and the quota given back). `Err` means
/// nothing was created or charged. The work runs on its own task, so a caller that disconnects, or a
/// request that times out, never stops it half-way.
#[tracing::instrument(skip_all, fields(user = %caller.user_id, workspace = ?caller.workspace_id))]
pub async fn bulk_generate(
    state: &AppState,
    caller: &Caller,
    idempotency_key: Option<&str>,
    req: BulkRequest,
) -> AppResult<Reply> {
    let key = idempotency_key
        .map(idempotency::check_key)
        .transpose()?
        .map(str::to_string);
    let fingerprint = idempotency::fingerprint(&req);
    let v = validate(req)?;
    let workspace_id = caller.workspace()?;
    let Some(rck) = state.rck.clone() else {
        return Err(AppError::ServiceUnavailable(
            "Video generation is not configured (RCK_DESCRIPTION_SERVER_URL is not set)".into(),
        ));
    };
    let (state, caller) = (state.clone(), caller.clone());
    let wait = Duration::from_secs(state.config.request_timeout_secs.saturating_sub(2).max(1));
    let task = tokio::spawn(
        async move {
            let work = generate(&state, &caller, workspace_id, &rck, v);
            match key {
                None => work.await,
                Some(key) => {
                    idempotency::once(&state, caller.user_id, &key, &fingerprint, wait, work).await
                }
            }
        }
        .in_current_span(),
    );
    task.await
        .map_err(|e| AppError::internal("bulk generation task", e))?
}

async fn generate(
    state: &AppState,
    caller: &Caller,
    workspace_id: ObjectId,
    rck: &RckClient,
    v: Valid,
) -> AppResult<Reply> {
    // 1. Every product exists and is the caller's workspace's. Cards, without the `videos` entries:
    // those grow with each product's history, and a request needs none of them.
    let found = state.store.find_product_cards(&v.product_ids).await?;
    let missing: Vec<String> = v
        .product_ids
        .iter()
        .filter(|id| {
            !found
                .iter()
                .any(|p| p.id == **id && p.workspace_id == workspace_id)
        })
        .map(|id| id.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(AppError::NotFoundWith {
            message: "Products not found".into(),
            details: json!({ "productIds": missing }),
        });
    }
    // Keep the caller's order.
    let products: Vec<_> = v
        .product_ids
        .iter()
        .filter_map(|id| found.iter().find(|p| p.id == *id))
        .collect();

    // 2. Check and count the quota in one atomic step.
    let n = products.len() as u32;
    match state.store.reserve_quota(workspace_id, n).await? {
        Quota::Reserved => {}
        Quota::Exceeded { limit, used } => {
            tracing::info!(target: "bulk_video_generation", workspace = %workspace_id, limit, used, requested = n, "video limit exceeded");
            return Err(AppError::ForbiddenWith {
                message: MSG_LIMIT_EXCEEDED.into(),
                details: json!({ "limit": limit, "used": used, "requested": n }),
            });
        }
        Quota::NoWorkspace => return Err(AppError::NotFound("Workspace not found".into())),
    }

    // 3. Create the records before calling out, so a callback always finds its video. The batch's
    // capability token goes into the callback URLs; only its hash is stored.
    let (token, token_hash) = callback_auth::new_token();
    let now = Timestamp::now();
    let videos: Vec<AiVideo> = products
        .iter()
        .map(|p| AiVideo {
            id: ObjectId::new(),
            user_id: caller.user_id,
            workspace_id,
            product_id: p.id,
            template: v.template_name.clone(),
            status: VideoStatus::Generating,
            error: None,
            metadata: VideoMetadata {
                template_id: v.template_id.clone(),
                queued_at: Some(now),
                aspect_ratio: Some(v.aspect_ratio.clone()),
                ..Default::default()
            },
            created_at: now,
            updated_at: now,
            callback_token_hash: Some(token_hash.clone()),
        })
        .collect();
    if let Err(e) = state.store.insert_videos(&videos).await {
        give_back(state, workspace_id, n).await;
        return Err(e.into());
    }
    let video_ids: Vec<ObjectId> = videos.iter().map(|v| v.id).collect();
    tracing::info!(target: "bulk_video_generation", workspace = %workspace_id, count = n, template = %v.template_id, "videos created, calling RCK");

    // 4. Call RCK, keep the job ids (or settle the videos by what went wrong).
    let batch = BatchRequest::new(
        &state.config.server_url,
        &token,
        videos.iter().zip(products.iter().copied()),
    );
    // The first video's id names the batch: unique, and the same on every retry.
    let rck_key = format!("bulk-{}", video_ids[0]);
    let started = |job_ids: Vec<Option<String>>| BulkStarted {
        video_ids: video_ids.clone(),
        videos: video_ids
            .iter()
            .zip(&products)
            .zip(job_ids)
            .map(|((video_id, p), job)| StartedVideo {
                video_id: *video_id,
                product_id: p.id,
                external_job_id: job,
            })
            .collect(),
    };
    Ok(
        match dispatch(state, rck, workspace_id, &video_ids, &batch, &rck_key).await {
            Dispatched::Accepted(jobs) => Reply::of(
                ApiResponse::accepted(started(jobs.into_iter().map(Some).collect()))
                    .message(MSG_STARTED),
            ),
            Dispatched::Unconfirmed => Reply::of(
                ApiResponse::accepted(started(vec![None; video_ids.len()]))
                    .message(MSG_UNCONFIRMED),
            ),
            Dispatched::Refused(e) => Reply::of(
                AppError::BadGateway {
                    message: format!("Video generation service unavailable: {e}"),
                    details: json!({ "videoIds": video_ids }),
                }
                .response(),
            ),
        },
    )
}

pub const MSG_STARTED: &str = "Video generation started";
pub const MSG_UNCONFIRMED: &str = "Video generation requested, but the video generation service \
     did not confirm it: the videos stay generating until it calls back, or fail when they time out";

/// What became of a batch sent to RCK.
pub(crate) enum Dispatched {
    /// RCK took it: its job ids, one per video, in order (stored).
    Accepted(Vec<String>),
    /// RCK may have taken it (`RckError::is_definite` is false): the videos stay `generating` and
    /// counted, for its callbacks or the sweeper to settle.
    Unconfirmed,
    /// RCK did not take it: the videos are failed with the reason and their quota given back.
    Refused(RckError),
}

/// Sends a batch of videos already created (`generating`) and counted against `workspace_id`, and
/// settles them by the outcome. Used by bulk generation and by retries.
pub(crate) async fn dispatch(
    state: &AppState,
    rck: &RckClient,
    workspace_id: ObjectId,
    video_ids: &[ObjectId],
    batch: &BatchRequest,
    rck_key: &str,
) -> Dispatched {
    let n = video_ids.len() as u32;
    match rck.create_batch(batch, rck_key).await {
        Ok(job_ids) => {
            let jobs: Vec<(ObjectId, String)> =
                video_ids.iter().copied().zip(job_ids.clone()).collect();
            if let Err(e) = state.store.set_job_ids(&jobs).await {
                // The jobs run and will call back; only the job ids are missing from the records.
                tracing::error!(target: "bulk_video_generation", "could not store RCK job ids {jobs:?}: {e}");
            }
            tracing::info!(target: "bulk_video_generation", workspace = %workspace_id, count = n, "RCK accepted the batch");
            Dispatched::Accepted(job_ids)
        }
        Err(e) if e.is_definite() => {
            let reason = e.to_string();
            tracing::error!(target: "bulk_video_generation", workspace = %workspace_id, count = n, "RCK did not take the batch: {reason}");
            if let Err(se) = state
                .store
                .fail_videos(video_ids, &reason, Timestamp::now())
                .await
            {
                tracing::error!(target: "bulk_video_generation", "could not mark the videos failed: {se}");
            }
            give_back(state, workspace_id, n).await;
            Dispatched::Refused(e)
        }
        Err(e) => {
            tracing::warn!(target: "bulk_video_generation", workspace = %workspace_id, count = n,
                "RCK did not confirm the batch ({e}); the videos stay generating until it calls back or they time out");
            Dispatched::Unconfirmed
        }
    }
}

async fn give_back(state: &AppState, ws: ObjectId, n: u32) {
    if let Err(e) = state.store.release_quota(ws, n).await {
        tracing::error!(target: "bulk_video_generation", workspace = %ws, "could not give back {n} videos of quota: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ids: &[&str], ar: Option<&str>) -> BulkRequest {
        BulkRequest {
            product_ids: ids.iter().map(|s| s.to_string()).collect(),
            template_id: "t1".into(),
            template_name: "Showcase".into(),
            aspect_ratio: ar.map(str::to_string),
        }
    }

    const A: &str = "507f1f77bcf86cd799439011";
    const B: &str = "507f1f77bcf86cd799439012";

    #[test]
    fn bulk_validation() {
        assert!(validate(req(&[A, B], Some("16:9"))).is_ok());
        assert_eq!(validate(req(&[A], None)).unwrap().aspect_ratio, "9:16");
        assert!(validate(req(&[], None)).is_err());
        assert!(validate(req(&[A, A], None)).is_err());
        assert!(validate(req(&[A, "x"], None)).is_err());
        assert!(validate(req(&[A], Some("3:2"))).is_err());
        let many: Vec<String> = (0..101)
            .map(|i| format!("507f1f77bcf86cd7994{i:05}"))
            .collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(validate(req(&many, None)).is_err());
        let mut r = req(&[A], None);
        r.template_name = "  ".into();
        assert!(validate(r).is_err());
    }
}
