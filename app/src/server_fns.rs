//! The dashboard's server functions. Each one takes the caller from the request (the one `Caller`
//! extractor the REST handlers use: Bearer or the session cookie) and calls the same service function the REST API uses,
//! which does its own authorisation. Lists take their typed filter as their one argument; errors
//! are typed (`FnError`), so pages tell "signed out" from "not allowed" without parsing text.

use crate::model::dashboard::{
    BulkActionRequest, BulkActionResult, EventsView, Me, Overview, OverviewRange, VideoDetail,
    WorkspaceRowPage,
};
use crate::model::error::FnError;
use crate::model::filters::{EventFilter, VideoFilter, WorkspaceFilter};
use crate::model::{AiVideo, VideoPage, WebhookEvent, Workspace};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
mod ctx {
    use crate::model::error::FnError;
    use crate::ssr::auth::Caller;
    use crate::ssr::state::AppState;
    use axum::extract::FromRequestParts;
    use leptos::prelude::*;

    /// The app state and the caller of this request (its rejection keeps its status: 401 or 403).
    pub async fn caller() -> Result<(AppState, Caller), FnError> {
        let missing = || FnError::Api {
            status: 500,
            message: "Internal server error".into(),
        };
        let state = use_context::<AppState>().ok_or_else(missing)?;
        let mut parts = use_context::<http::request::Parts>().ok_or_else(missing)?;
        let caller = Caller::from_request_parts(&mut parts, &state).await?;
        Ok((state, caller))
    }
}

#[server(prefix = "/api/fn", endpoint = "me")]
pub async fn current_user() -> Result<Me, FnError> {
    let (state, caller) = ctx::caller().await?;
    Ok(crate::ssr::services::dashboard::me(&state, &caller).await?)
}

#[server(prefix = "/api/fn", endpoint = "overview")]
pub async fn load_overview(range: OverviewRange) -> Result<Overview, FnError> {
    let (state, caller) = ctx::caller().await?;
    Ok(crate::ssr::services::dashboard::overview(&state, &caller, range).await?)
}

/// The dashboard lists 25 videos a page.
pub const VIDEOS_PER_PAGE: &str = "25";

#[server(prefix = "/api/fn", endpoint = "videos")]
pub async fn load_videos(filter: VideoFilter) -> Result<VideoPage, FnError> {
    let (state, caller) = ctx::caller().await?;
    Ok(crate::ssr::services::videos::list_videos(&state, &caller, &filter).await?)
}

#[server(prefix = "/api/fn", endpoint = "mark_failed")]
pub async fn mark_video_failed(id: String) -> Result<AiVideo, FnError> {
    let (state, caller) = ctx::caller().await?;
    Ok(crate::ssr::services::videos::mark_failed(&state, &caller, &id, None).await?)
}

#[server(prefix = "/api/fn", endpoint = "retry")]
pub async fn retry_video(id: String) -> Result<AiVideo, FnError> {
    let (state, caller) = ctx::caller().await?;
    Ok(crate::ssr::services::videos::retry(&state, &caller, &id).await?)
}

#[server(prefix = "/api/fn", endpoint = "video")]
pub async fn load_video_detail(id: String) -> Result<VideoDetail, FnError> {
    let (state, caller) = ctx::caller().await?;
    Ok(crate::ssr::services::videos::video_detail(&state, &caller, &id).await?)
}

/// One batch of a bulk action (the page calls it until the work is done, showing progress).
#[server(prefix = "/api/fn", endpoint = "bulk_action", input = leptos::server_fn::codec::Json)]
pub async fn bulk_video_action(req: BulkActionRequest) -> Result<BulkActionResult, FnError> {
    let (state, caller) = ctx::caller().await?;
    Ok(crate::ssr::services::videos::bulk_action(&state, &caller, &req).await?)
}

#[server(prefix = "/api/fn", endpoint = "events")]
pub async fn load_events(filter: EventFilter) -> Result<EventsView, FnError> {
    let (state, caller) = ctx::caller().await?;
    Ok(crate::ssr::services::dashboard::events_view(&state, &caller, &filter).await?)
}

#[server(prefix = "/api/fn", endpoint = "replay")]
pub async fn replay_event(id: String) -> Result<crate::model::webhook::Replayed, FnError> {
    let (state, caller) = ctx::caller().await?;
    Ok(crate::ssr::services::webhooks::replay(&state, &caller, &id).await?)
}

#[server(prefix = "/api/fn", endpoint = "event")]
pub async fn load_event(id: String) -> Result<WebhookEvent, FnError> {
    let (state, caller) = ctx::caller().await?;
    Ok(crate::ssr::services::events::get_event(&state, &caller, &id).await?)
}

// --- workspaces

/// The workspaces page's number of cards per page.
pub const WORKSPACES_PER_PAGE: &str = "24";

#[server(prefix = "/api/fn", endpoint = "workspace_rows")]
pub async fn load_workspace_rows(filter: WorkspaceFilter) -> Result<WorkspaceRowPage, FnError> {
    let (state, caller) = ctx::caller().await?;
    Ok(crate::ssr::services::workspaces::workspace_rows(&state, &caller, &filter).await?)
}

/// The limit form of the workspaces page (a plain form before hydration).
#[server(prefix = "/api/fn", endpoint = "set_video_limit")]
pub async fn set_video_limit(id: String, video_limit: String) -> Result<Workspace, FnError> {
    let (state, caller) = ctx::caller().await?;
    let limit = serde_json::Value::String(video_limit);
    Ok(
        crate::ssr::services::workspaces::set_video_limit(&state, &caller, &id, Some(&limit))
            .await?,
    )
}

// --- notifications

/// The first workspaces by name, for the notifications page's choice (at most 100: the others are
/// reached from their card on the workspaces page, by `workspaceId=`).
#[server(prefix = "/api/fn", endpoint = "workspaces")]
pub async fn load_workspaces() -> Result<crate::model::dashboard::WorkspacePage, FnError> {
    let (state, caller) = ctx::caller().await?;
    let first = WorkspaceFilter {
        page: None,
        limit: Some("100".into()),
    };
    Ok(crate::ssr::services::users::list_workspaces(&state, &caller, &first).await?)
}

#[server(prefix = "/api/fn", endpoint = "notification_settings")]
pub async fn load_notification_settings(
    workspace_id: String,
) -> Result<crate::model::notify::NotificationSettings, FnError> {
    let (state, caller) = ctx::caller().await?;
    Ok(crate::ssr::services::notifications::get_settings(&state, &caller, &workspace_id).await?)
}

/// The settings form: checkboxes are absent when unchecked, empty URLs turn a channel off.
#[server(prefix = "/api/fn", endpoint = "save_notification_settings")]
pub async fn save_notification_settings(
    workspace_id: String,
    on_completed: Option<String>,
    on_failed: Option<String>,
    slack_webhook_url: Option<String>,
    discord_webhook_url: Option<String>,
    webhook_url: Option<String>,
) -> Result<crate::model::notify::NotificationSettings, FnError> {
    use crate::model::notify::{EmailPrefs, NotificationSettings};
    let (state, caller) = ctx::caller().await?;
    let url = |u: Option<String>| u.filter(|u| !u.trim().is_empty());
    let new = NotificationSettings {
        email: EmailPrefs {
            on_completed: on_completed.is_some(),
            on_failed: on_failed.is_some(),
        },
        slack_webhook_url: url(slack_webhook_url),
        discord_webhook_url: url(discord_webhook_url),
        webhook_url: url(webhook_url),
        webhook_secret: None,
    };
    Ok(
        crate::ssr::services::notifications::put_settings(&state, &caller, &workspace_id, new)
            .await?,
    )
}

#[server(prefix = "/api/fn", endpoint = "rotate_notification_secret")]
pub async fn rotate_notification_secret(
    workspace_id: String,
) -> Result<crate::model::notify::NotificationSettings, FnError> {
    let (state, caller) = ctx::caller().await?;
    Ok(crate::ssr::services::notifications::rotate_secret(&state, &caller, &workspace_id).await?)
}

#[server(prefix = "/api/fn", endpoint = "test_notifications")]
pub async fn test_notifications(
    workspace_id: String,
) -> Result<Vec<crate::model::notify::ChannelResult>, FnError> {
    let (state, caller) = ctx::caller().await?;
    Ok(crate::ssr::services::notifications::send_test(&state, &caller, &workspace_id).await?)
}

#[server(prefix = "/api/fn", endpoint = "notifications")]
pub async fn load_notifications(
    filter: crate::model::filters::NotificationFilter,
) -> Result<crate::model::notify::NotificationPage, FnError> {
    let (state, caller) = ctx::caller().await?;
    Ok(crate::ssr::services::notifications::list(&state, &caller, &filter).await?)
}

#[server(prefix = "/api/fn", endpoint = "redeliver_notification")]
pub async fn redeliver_notification(
    id: String,
) -> Result<crate::model::notify::Notification, FnError> {
    let (state, caller) = ctx::caller().await?;
    Ok(crate::ssr::services::notifications::redeliver(&state, &caller, &id).await?)
}
