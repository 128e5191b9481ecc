//! AIVideo records: reading them (and, in the bulk flow, creating them).

use super::parse_id;
use crate::model::webhook::{MSG_INVALID_VIDEO_ID, MSG_VIDEO_NOT_FOUND};
use crate::model::AiVideo;
use crate::ssr::auth::Caller;
use crate::ssr::error::{AppError, AppResult};
use crate::ssr::state::AppState;

/// A video of the caller's workspace (any, for a superadmin); another workspace's video is a 404.
pub async fn get_video(state: &AppState, caller: &Caller, id: &str) -> AppResult<AiVideo> {
    let id = parse_id(id, "videoId").map_err(|_| AppError::BadRequest(MSG_INVALID_VIDEO_ID.into()))?;
    match state.store.find_video(id).await? {
        Some(v) if caller.is_superadmin() || Some(v.workspace_id) == caller.workspace_id => Ok(v),
        _ => Err(AppError::NotFound(MSG_VIDEO_NOT_FOUND.into())),
    }
}
