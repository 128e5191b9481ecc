//! The workspaces page: each workspace's quota, videos per status and last activity, and the
//! superadmin's change of a workspace's video limit.

use super::parse_id;
use crate::model::dashboard::{StatusCounts, WorkspacePage, WorkspaceRow, WorkspaceRowPage};
use crate::model::filters::WorkspaceFilter;
use crate::model::Workspace;
use crate::ssr::auth::Caller;
use crate::ssr::error::{AppError, AppResult};
use crate::ssr::state::AppState;
use futures::{StreamExt, TryStreamExt};

/// The largest video limit a workspace may be given.
pub const MAX_VIDEO_LIMIT: u64 = 10_000_000;

/// A page of the workspaces (`users::list_workspaces`: superadmin, by name) with each one's videos
/// per status and last activity. The counts walk each workspace's status index; a few workspaces
/// are read at once.
#[tracing::instrument(skip(state, caller), fields(user = %caller.user_id))]
pub async fn workspace_rows(
    state: &AppState,
    caller: &Caller,
    filter: &WorkspaceFilter,
) -> AppResult<WorkspaceRowPage> {
    let WorkspacePage {
        workspaces,
        pagination,
    } = super::users::list_workspaces(state, caller, filter).await?;
    let workspaces = futures::stream::iter(workspaces)
        .map(|workspace| async move {
            let (counts, last_activity) = state.store.workspace_activity(workspace.id).await?;
            Ok::<_, AppError>(WorkspaceRow {
                workspace,
                counts: StatusCounts::from_pairs(&counts),
                last_activity,
            })
        })
        .buffered(4)
        .try_collect()
        .await?;
    Ok(WorkspaceRowPage {
        workspaces,
        pagination,
    })
}

/// Sets a workspace's video limit (superadmin): a whole number from 0 to [`MAX_VIDEO_LIMIT`]. A
/// limit below what is used already only stops new requests. Written to the audit log.
#[tracing::instrument(skip(state, caller), fields(user = %caller.user_id))]
pub async fn set_video_limit(
    state: &AppState,
    caller: &Caller,
    id: &str,
    limit: Option<&serde_json::Value>,
) -> AppResult<Workspace> {
    caller.require_superadmin()?;
    let id = parse_id(id, "workspace id")?;
    let limit = limit
        .and_then(|v| match v {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        })
        .filter(|n| *n <= MAX_VIDEO_LIMIT)
        .ok_or_else(|| {
            AppError::BadRequest(format!(
                "videoLimit must be a whole number from 0 to {MAX_VIDEO_LIMIT}"
            ))
        })? as u32;
    let before = state
        .store
        .find_workspace(id)
        .await?
        .ok_or_else(|| AppError::NotFound("Workspace not found".into()))?;
    let after = state
        .store
        .set_video_limit(id, limit)
        .await?
        .ok_or_else(|| AppError::NotFound("Workspace not found".into()))?;
    tracing::info!(target: "audit", by = %caller.user_id, workspace = %id,
        from = before.video_limit, to = after.video_limit, "workspace video limit changed");
    Ok(after)
}
