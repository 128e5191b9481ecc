//! The dashboard's server functions. Each one authenticates the session cookie and calls the same
//! service function the REST API uses. Errors carry the HTTP status as a prefix (`401: ...`).

use crate::model::dashboard::{Me, Overview};
use crate::model::{AiVideo, EventPage, VideoPage, WebhookEvent};
use leptos::prelude::*;

pub const UNAUTHORIZED: &str = "401";
pub const FORBIDDEN: &str = "403";

#[cfg(feature = "ssr")]
mod ctx {
    use crate::ssr::auth::{cookie, Caller, SESSION_COOKIE};
    use crate::ssr::error::AppError;
    use crate::ssr::state::AppState;
    use leptos::prelude::*;

    pub fn err(e: AppError) -> ServerFnError {
        ServerFnError::new(format!("{}: {}", e.status().as_u16(), e.public_message()))
    }

    /// The app state and the signed-in caller, from the session cookie.
    pub async fn caller() -> Result<(AppState, Caller), ServerFnError> {
        let state = use_context::<AppState>()
            .ok_or_else(|| ServerFnError::new("500: server state missing"))?;
        let parts: http::request::Parts = leptos_axum::extract().await?;
        let token = cookie(&parts.headers, SESSION_COOKIE)
            .ok_or_else(|| ServerFnError::new("401: Authentication required"))?;
        let caller = state
            .jwt
            .verify(token)
            .map_err(|_| ServerFnError::new("401: Invalid or expired token"))?;
        Ok((state, caller))
    }

    pub async fn superadmin() -> Result<(AppState, Caller), ServerFnError> {
        let (state, caller) = caller().await?;
        caller.require_superadmin().map_err(err)?;
        Ok((state, caller))
    }
}

/// The status code prefix of a server function error, if any.
pub fn error_status(e: &ServerFnError) -> Option<&str> {
    let text = match e {
        ServerFnError::ServerError(m) => m.as_str(),
        _ => return None,
    };
    text.split(':').next().filter(|c| c.len() == 3)
}

/// The message of a server function error, without the status prefix.
pub fn error_message(e: &ServerFnError) -> String {
    match e {
        ServerFnError::ServerError(m) => m
            .split_once(": ")
            .map(|(_, rest)| rest.to_string())
            .unwrap_or_else(|| m.clone()),
        other => other.to_string(),
    }
}

#[server(prefix = "/api/fn", endpoint = "me")]
pub async fn current_user() -> Result<Me, ServerFnError> {
    let (state, caller) = ctx::caller().await?;
    let user = state
        .store
        .find_user(caller.user_id)
        .await
        .map_err(|e| ctx::err(e.into()))?
        .ok_or_else(|| ServerFnError::new("401: User no longer exists"))?;
    Ok(Me {
        email: user.email,
        role: user.role.to_string(),
    })
}

#[server(prefix = "/api/fn", endpoint = "overview")]
pub async fn load_overview(range: String) -> Result<Overview, ServerFnError> {
    use crate::model::dashboard::{StatusCounts, RANGES};
    use crate::model::Timestamp;
    use crate::ssr::services::stats::{webhook_stats, StatsParams};
    let (state, caller) = ctx::superadmin().await?;
    let (key, _, hours, bucket) = RANGES
        .iter()
        .find(|r| r.0 == range)
        .copied()
        .unwrap_or(RANGES[0]);
    let now = Timestamp::now();
    let params = StatsParams {
        from: Some(Timestamp::from_millis(now.millis() - hours * 3_600_000).to_string()),
        to: Some(now.to_string()),
        bucket: Some(bucket.into()),
    };
    let stats = webhook_stats(&state, &caller, &params)
        .await
        .map_err(ctx::err)?;
    let counts = state
        .store
        .video_status_counts()
        .await
        .map_err(|e| ctx::err(e.into()))?;
    Ok(Overview {
        counts: StatusCounts::from_pairs(&counts),
        stats,
        range: key.to_string(),
    })
}

#[server(prefix = "/api/fn", endpoint = "videos")]
pub async fn load_videos(
    page: Option<String>,
    status: Option<String>,
    workspace_id: Option<String>,
    video_id: Option<String>,
    stuck: Option<String>,
) -> Result<VideoPage, ServerFnError> {
    use crate::ssr::services::videos::{list_videos, VideoParams};
    let (state, caller) = ctx::superadmin().await?;
    let params = VideoParams {
        page,
        limit: Some("25".into()),
        status,
        workspace_id,
        video_id,
        stuck,
    };
    list_videos(&state, &caller, &params)
        .await
        .map_err(ctx::err)
}

#[server(prefix = "/api/fn", endpoint = "mark_failed")]
pub async fn mark_video_failed(id: String) -> Result<AiVideo, ServerFnError> {
    let (state, caller) = ctx::superadmin().await?;
    crate::ssr::services::videos::mark_failed(&state, &caller, &id, None)
        .await
        .map_err(ctx::err)
}

#[server(prefix = "/api/fn", endpoint = "retry")]
pub async fn retry_video(id: String) -> Result<AiVideo, ServerFnError> {
    let (state, caller) = ctx::superadmin().await?;
    crate::ssr::services::videos::retry(&state, &caller, &id)
        .await
        .map_err(ctx::err)
}

#[server(prefix = "/api/fn", endpoint = "events")]
pub async fn load_events(
    page: Option<String>,
    limit: Option<String>,
    endpoint: Option<String>,
    video_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
) -> Result<EventPage, ServerFnError> {
    use crate::ssr::services::events::{list_events, EventParams};
    let (state, caller) = ctx::superadmin().await?;
    let params = EventParams {
        page,
        limit,
        endpoint,
        video_id,
        from,
        to,
    };
    list_events(&state, &caller, &params)
        .await
        .map_err(ctx::err)
}

#[server(prefix = "/api/fn", endpoint = "event")]
pub async fn load_event(id: String) -> Result<WebhookEvent, ServerFnError> {
    let (state, caller) = ctx::superadmin().await?;
    crate::ssr::services::events::get_event(&state, &caller, &id)
        .await
        .map_err(ctx::err)
}
