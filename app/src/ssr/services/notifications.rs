//! Notifications: each workspace's settings, test sends, and the delivery log with redelivery.
//! Sending is `ssr::notify`'s.

use super::{parse_id, parse_paging};
use crate::model::filters::NotificationFilter;
use crate::model::notify::{
    ChannelResult, DeliveryStatus, Notification, NotificationPage, NotificationSettings,
};
use crate::model::{ObjectId, Pagination, Role, Timestamp};
use crate::ssr::auth::Caller;
use crate::ssr::error::{AppError, AppResult};
use crate::ssr::notify::{self, urls};
use crate::ssr::state::AppState;
use crate::ssr::store::NotificationQuery;

/// The workspace, if the caller may manage its notifications: a SUPERADMIN, or an ADMIN of it.
async fn managed(state: &AppState, caller: &Caller, id: &str) -> AppResult<ObjectId> {
    let ws = parse_id(id, "workspace id")?;
    let allowed =
        caller.is_superadmin() || (caller.role == Role::Admin && caller.workspace_id == Some(ws));
    if !allowed {
        return Err(AppError::Forbidden(
            "Forbidden: a SUPERADMIN or an ADMIN of this workspace is required".into(),
        ));
    }
    if state.store.find_workspace(ws).await?.is_none() {
        return Err(AppError::NotFound("Workspace not found".into()));
    }
    Ok(ws)
}

/// The settings, with the webhook secret made (and kept) the first time they are read.
async fn current(state: &AppState, ws: ObjectId) -> AppResult<NotificationSettings> {
    let mut s = notify::settings_of(state, ws).await?;
    if s.webhook_secret.is_none() {
        s.webhook_secret = Some(notify::new_secret());
        state.store.put_notification_settings(ws, &s).await?;
    }
    Ok(s)
}

#[tracing::instrument(skip(state, caller), fields(user = %caller.user_id))]
pub async fn get_settings(
    state: &AppState,
    caller: &Caller,
    workspace: &str,
) -> AppResult<NotificationSettings> {
    let ws = managed(state, caller, workspace).await?;
    current(state, ws).await
}

/// Replaces the settings (the secret is kept). Every URL is checked: https, and resolving to public
/// addresses only, unless `NOTIFY_ALLOW_PRIVATE_URLS`; a bad one is a 400 naming its field.
#[tracing::instrument(skip(state, caller, new), fields(user = %caller.user_id))]
pub async fn put_settings(
    state: &AppState,
    caller: &Caller,
    workspace: &str,
    new: NotificationSettings,
) -> AppResult<NotificationSettings> {
    let ws = managed(state, caller, workspace).await?;
    let allow = state.config.notify_allow_private_urls;
    let clean = |field: &str, v: Option<String>| -> Option<(String, String)> {
        v.map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .map(|u| (field.to_string(), u))
    };
    let urls_in = [
        clean("slackWebhookUrl", new.slack_webhook_url),
        clean("discordWebhookUrl", new.discord_webhook_url),
        clean("webhookUrl", new.webhook_url),
    ];
    for (field, url) in urls_in.iter().flatten() {
        if url.len() > 2048 {
            return Err(AppError::BadRequest(format!("{field} is too long")));
        }
        urls::check(field, url, allow)
            .await
            .map_err(AppError::BadRequest)?;
    }
    let [slack, discord, webhook] = urls_in.map(|o| o.map(|(_, u)| u));
    let mut s = current(state, ws).await?;
    s.email = new.email;
    s.slack_webhook_url = slack;
    s.discord_webhook_url = discord;
    s.webhook_url = webhook;
    state.store.put_notification_settings(ws, &s).await?;
    tracing::info!(target: "video_service", workspace = %ws, "notification settings changed");
    Ok(s)
}

#[tracing::instrument(skip(state, caller), fields(user = %caller.user_id))]
pub async fn rotate_secret(
    state: &AppState,
    caller: &Caller,
    workspace: &str,
) -> AppResult<NotificationSettings> {
    let ws = managed(state, caller, workspace).await?;
    let mut s = current(state, ws).await?;
    s.webhook_secret = Some(notify::new_secret());
    state.store.put_notification_settings(ws, &s).await?;
    tracing::info!(target: "video_service", workspace = %ws, "webhook secret rotated");
    Ok(s)
}

/// A test message to each configured channel now; each channel's result. The email goes to the
/// caller.
#[tracing::instrument(skip(state, caller), fields(user = %caller.user_id))]
pub async fn send_test(
    state: &AppState,
    caller: &Caller,
    workspace: &str,
) -> AppResult<Vec<ChannelResult>> {
    let ws = managed(state, caller, workspace).await?;
    let s = current(state, ws).await?;
    let me = state
        .store
        .find_user(caller.user_id)
        .await?
        .ok_or_else(|| AppError::Unauthorized("Unauthorized".into()))?;
    Ok(notify::send_tests(state, ws, &s, &me.email).await)
}

/// The delivery log (SUPERADMIN), newest first.
#[tracing::instrument(skip(state, caller), fields(user = %caller.user_id))]
pub async fn list(
    state: &AppState,
    caller: &Caller,
    f: &NotificationFilter,
) -> AppResult<NotificationPage> {
    caller.require_superadmin()?;
    let (page, limit) = parse_paging(f.page.as_deref(), f.limit.as_deref())?;
    let nonempty = |o: &Option<String>| o.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
    let workspace_id = nonempty(&f.workspace_id)
        .map(|w| parse_id(&w, "workspaceId"))
        .transpose()?;
    let status = nonempty(&f.status)
        .map(|s| {
            DeliveryStatus::parse(&s).ok_or_else(|| {
                AppError::BadRequest("status must be pending, delivered or failed".into())
            })
        })
        .transpose()?;
    let q = NotificationQuery {
        page,
        limit,
        workspace_id,
        status,
    };
    let (notifications, total) = tokio::try_join!(
        state.store.page_notifications(&q),
        state.store.count_notifications(&q)
    )?;
    Ok(NotificationPage {
        notifications,
        pagination: Pagination::new(page, limit, total),
    })
}

/// Sends a notification again (SUPERADMIN): back to `pending`, due now; the worker takes it.
#[tracing::instrument(skip(state, caller), fields(user = %caller.user_id))]
pub async fn redeliver(state: &AppState, caller: &Caller, id: &str) -> AppResult<Notification> {
    caller.require_superadmin()?;
    let id = parse_id(id, "notification id")?;
    // The store leaves fan-out rows as they are; to a caller they do not exist.
    let n = state
        .store
        .redeliver_notification(id, Timestamp::now())
        .await?
        .filter(|n| n.channel != crate::model::notify::Channel::Fanout)
        .ok_or_else(|| AppError::NotFound("Notification not found".into()))?;
    tracing::info!(target: "video_service", notification = %id, "notification queued for redelivery");
    Ok(n)
}
