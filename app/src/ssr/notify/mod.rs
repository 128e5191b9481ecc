//! The notifier: turns finished videos into notifications and delivers them, from the outbox.
//!
//! 1. A status change that makes a video `completed` or `failed` writes a `fanout` row in its own
//!    transaction (both stores): a crash never loses or invents one.
//! 2. [`run_once`] leases due rows (a lease expires, so a crashed instance's rows are taken over)
//!    and handles them concurrently, each bounded by `send::SEND_TIMEOUT`, so a slow endpoint holds
//!    one slot, never the callbacks or other workspaces.
//!    - a `fanout` row becomes one delivery per configured channel (Slack, Discord, the signed
//!      webhook; the email once every video of the batch is final), added in the transaction that
//!      closes the fan-out row (`dedupe_key`s keep it to one each);
//!    - a delivery is sent; a failure is retried after `NOTIFY_RETRY_BASE_SECONDS` × 2^attempts
//!      (±20 % jitter, at most 6 h) up to `NOTIFY_MAX_ATTEMPTS`, then marked `failed`.

pub mod messages;
pub mod send;
pub mod urls;

use crate::model::notify::{
    Attempted, Channel, ChannelResult, DeliveryStatus, Notification, NotificationSettings,
};
use crate::model::{AiVideo, ObjectId, Timestamp};
use crate::ssr::callback_auth::WebhookSecret;
use crate::ssr::state::AppState;
use crate::ssr::store::StoreResult;
use messages::Finished;
use std::time::Duration;

/// How long a claimed row is ours before another instance may take it (a send takes at most
/// `send::SEND_TIMEOUT`, so a live lease is never taken over).
pub const LEASE: Duration = Duration::from_secs(30);
/// Rows claimed per pass.
const CLAIM: u32 = 128;
/// Deliveries sent at once (per instance).
const SENDING: usize = 32;
/// The longest wait between two attempts.
const MAX_BACKOFF_SECS: f64 = 6.0 * 3600.0;

/// One pass: claims the due rows; sends the deliveries, and turns the fan-out rows into their
/// deliveries (all of them closed in one write); how many it claimed.
pub async fn run_once(state: &AppState) -> StoreResult<usize> {
    let lease = crate::ssr::auth::new_token_id();
    let rows = state
        .store
        .claim_notifications(Timestamp::now(), LEASE, &lease, CLAIM)
        .await?;
    let n = rows.len();
    let (fanouts, deliveries): (Vec<_>, Vec<_>) =
        rows.into_iter().partition(|r| r.channel == Channel::Fanout);
    // At most `SENDING` at once, each bounded by `send::SEND_TIMEOUT`.
    let slots = tokio::sync::Semaphore::new(SENDING);
    let slots = &slots;
    let sends = futures::future::join_all(deliveries.into_iter().map(|row| {
        let lease = &lease;
        async move {
            let _slot = slots.acquire().await;
            deliver_logged(state, lease, row).await
        }
    }));
    let expansions = async {
        // Each workspace's settings read once per pass; a workspace with nothing to send (no
        // channel, no SMTP) costs its rows no further read.
        let mut settings = std::collections::HashMap::new();
        for row in &fanouts {
            if let std::collections::hash_map::Entry::Vacant(e) = settings.entry(row.workspace_id) {
                e.insert(settings_of(state, row.workspace_id).await?);
            }
        }
        let settings = &settings;
        // At most `CLAIM` rows, each a few store reads: all at once.
        let built = futures::future::join_all(
            fanouts
                .iter()
                .map(|row| fan_out(state, row, &settings[&row.workspace_id])),
        )
        .await;
        let mut expanded: Vec<(ObjectId, Vec<Notification>)> = Vec::new();
        for (row, rows) in fanouts.iter().zip(built) {
            match rows {
                Ok(rows) => expanded.push((row.id, rows)),
                Err(e) => {
                    tracing::warn!(target: "video_service", notification = %row.id, "fan-out failed; will retry: {e}")
                }
            }
        }
        if !expanded.is_empty() {
            state
                .store
                .expand_notifications(&lease, &expanded, Timestamp::now())
                .await?;
        }
        StoreResult::Ok(())
    };
    let (_, expanded) = tokio::join!(sends, expansions);
    expanded?;
    Ok(n)
}

async fn deliver_logged(state: &AppState, lease: &str, row: Notification) {
    let id = row.id;
    if let Err(e) = deliver_one(state, lease, row).await {
        // The lease runs out and the row is tried again.
        tracing::warn!(target: "video_service", notification = %id, "notification not handled: {e}");
    }
}

async fn deliver_one(state: &AppState, lease: &str, row: Notification) -> StoreResult<()> {
    let outcome = match deliver(state, &row).await {
        Ok(()) => Attempted::Delivered,
        Err(error) => next_attempt(state, &row, error),
    };
    match &outcome {
        Attempted::Delivered => {
            tracing::info!(target: "video_service", notification = %row.id, channel = row.channel.as_str(), "notification delivered")
        }
        Attempted::Retry { at, error } => {
            tracing::warn!(target: "video_service", notification = %row.id, channel = row.channel.as_str(), retry_at = %at, "notification not delivered: {error}")
        }
        Attempted::Failed { error } => {
            tracing::warn!(target: "video_service", notification = %row.id, channel = row.channel.as_str(), attempts = row.attempts + 1, "notification failed for good: {error}")
        }
    }
    metrics::counter!("racky_notifications_total", "channel" => row.channel.as_str(), "outcome" => match outcome {
        Attempted::Delivered => "delivered",
        Attempted::Retry { .. } => "retry",
        Attempted::Failed { .. } => "failed",
    })
    .increment(1);
    state
        .store
        .finish_notification(row.id, lease, &outcome, Timestamp::now())
        .await?;
    Ok(())
}

/// After a failed attempt: when to try again, or failed for good.
fn next_attempt(state: &AppState, row: &Notification, error: String) -> Attempted {
    let done = row.attempts + 1;
    if done >= state.config.notify_max_attempts {
        return Attempted::Failed { error };
    }
    let base = state.config.notify_retry_base_secs * 2f64.powi(row.attempts as i32);
    let jitter = 0.8 + rand::random::<f64>() * 0.4;
    let secs = (base * jitter).min(MAX_BACKOFF_SECS);
    Attempted::Retry {
        at: Timestamp::from_millis(Timestamp::now().millis() + (secs * 1000.0) as i64),
        error,
    }
}

/// The workspace's settings (the defaults when never saved).
pub async fn settings_of(state: &AppState, ws: ObjectId) -> StoreResult<NotificationSettings> {
    Ok(state
        .store
        .notification_settings(ws)
        .await?
        .unwrap_or_default())
}

async fn finished(state: &AppState, video: AiVideo) -> StoreResult<Finished> {
    let product_title = state
        .store
        .find_product(video.product_id)
        .await?
        .map(|p| p.title)
        .unwrap_or_else(|| format!("product {}", video.product_id));
    Ok(Finished {
        video,
        product_title,
    })
}

/// A delivery of `source`'s video to `channel`.
fn delivery(
    source: &Notification,
    channel: Channel,
    key: String,
    body: serde_json::Value,
) -> Notification {
    let now = Timestamp::now();
    Notification {
        id: ObjectId::new(),
        workspace_id: source.workspace_id,
        channel,
        event_type: source.event_type.clone(),
        video_id: source.video_id,
        status: DeliveryStatus::Pending,
        attempts: 0,
        last_error: None,
        next_attempt_at: now,
        delivered_at: None,
        created_at: now,
        updated_at: now,
        body,
        dedupe_key: key,
    }
}

/// A finished video's deliveries, by the workspace's settings at this moment.
async fn fan_out(
    state: &AppState,
    row: &Notification,
    settings: &NotificationSettings,
) -> StoreResult<Vec<Notification>> {
    let wanted = settings.slack_webhook_url.is_some()
        || settings.discord_webhook_url.is_some()
        || settings.webhook_url.is_some()
        || state.config.smtp_url.is_some();
    let video = match row.video_id {
        Some(v) if wanted => state.store.find_video(v).await?,
        _ => None,
    };
    let mut rows = Vec::new();
    if let Some(video) = video {
        let f = finished(state, video).await?;
        if settings.slack_webhook_url.is_some() {
            rows.push(delivery(
                row,
                Channel::Slack,
                format!("slack:{}", row.id),
                messages::slack(&f),
            ));
        }
        if settings.discord_webhook_url.is_some() {
            rows.push(delivery(
                row,
                Channel::Discord,
                format!("discord:{}", row.id),
                messages::discord(&f),
            ));
        }
        if settings.webhook_url.is_some() {
            rows.push(delivery(
                row,
                Channel::Webhook,
                format!("webhook:{}", row.id),
                messages::webhook(&f, row.created_at),
            ));
        }
        if state.config.smtp_url.is_some() {
            if let Some(email) = batch_email(state, row, &f, settings).await? {
                rows.push(email);
            }
        }
    }
    Ok(rows)
}

/// The email of the video's batch, once every video of it is final (the last one to finish makes
/// it; the `dedupe_key` keeps it to one): to the user who asked, listing each video the user's
/// preferences ask about. `None` while some are still in flight, or when none is wanted.
async fn batch_email(
    state: &AppState,
    row: &Notification,
    f: &Finished,
    settings: &NotificationSettings,
) -> StoreResult<Option<Notification>> {
    let batch = f.video.callback_token_hash.clone();
    let videos = match &batch {
        Some(h) => state.store.videos_of_batch(h).await?,
        None => vec![f.video.clone()],
    };
    if videos.iter().any(|v| !v.status.is_final()) {
        return Ok(None);
    }
    let wanted = |v: &AiVideo| match v.status {
        crate::model::VideoStatus::Completed => settings.email.on_completed,
        _ => settings.email.on_failed,
    };
    let mut listed = Vec::new();
    for v in videos.into_iter().filter(wanted) {
        listed.push(finished(state, v).await?);
    }
    if listed.is_empty() {
        return Ok(None);
    }
    let Some(user) = state.store.find_user(f.video.user_id).await? else {
        return Ok(None);
    };
    let key = match batch {
        Some(h) => format!("email:{h}"),
        None => format!("email:{}", row.id),
    };
    let mut email = delivery(
        row,
        Channel::Email,
        key,
        messages::email(&user.email, &listed),
    );
    email.event_type = "batch.finished".into();
    Ok(Some(email))
}

/// Sends one delivery to where the workspace's settings point now (a URL fixed after a failure is
/// used by the next attempt; a channel turned off fails).
async fn deliver(state: &AppState, row: &Notification) -> Result<(), String> {
    let settings = settings_of(state, row.workspace_id)
        .await
        .map_err(|e| format!("reading the settings: {e}"))?;
    let off = || Err("the channel was turned off".to_string());
    match row.channel {
        Channel::Email => send::send_email(&state.config, &row.body).await,
        Channel::Slack => match &settings.slack_webhook_url {
            Some(url) => {
                send::post_json(&state.config, "slackWebhookUrl", url, &row.body, None).await
            }
            None => off(),
        },
        Channel::Discord => match &settings.discord_webhook_url {
            Some(url) => {
                send::post_json(&state.config, "discordWebhookUrl", url, &row.body, None).await
            }
            None => off(),
        },
        Channel::Webhook => match (&settings.webhook_url, secret_of(&settings)) {
            (Some(url), Some(secret)) => {
                let id = format!("msg_{}", row.id);
                send::post_json(
                    &state.config,
                    "webhookUrl",
                    url,
                    &row.body,
                    Some((&secret, &id)),
                )
                .await
            }
            (Some(_), None) => Err("the workspace has no webhook secret".into()),
            (None, _) => off(),
        },
        Channel::Fanout => Ok(()),
    }
}

fn secret_of(s: &NotificationSettings) -> Option<WebhookSecret> {
    s.webhook_secret.as_deref().and_then(|w| w.parse().ok())
}

/// `whsec_` and 24 random bytes in base64: a workspace's webhook signing secret.
pub fn new_secret() -> String {
    use base64::Engine;
    let bytes: [u8; 24] = rand::random();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// `POST /api/workspaces/{id}/notifications/test`: a test message to each configured channel, now
/// (not through the outbox), and each one's result. The email goes to `email_to`.
pub async fn send_tests(
    state: &AppState,
    ws: ObjectId,
    settings: &NotificationSettings,
    email_to: &str,
) -> Vec<ChannelResult> {
    let sample = sample_video(ws);
    let f = Finished {
        video: sample,
        product_title: "Test product".into(),
    };
    let host = |u: &str| {
        reqwest::Url::parse(u)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    let mut push = |channel, target: String, r: Result<(), String>| {
        out.push(ChannelResult {
            channel,
            ok: r.is_ok(),
            target,
            error: r.err(),
        })
    };
    if state.config.smtp_url.is_some() {
        let mut email = messages::email(email_to, std::slice::from_ref(&f));
        email["subject"] = serde_json::json!("Racky videos: a test notification");
        push(
            Channel::Email,
            email_to.to_string(),
            send::send_email(&state.config, &email).await,
        );
    }
    if let Some(url) = &settings.slack_webhook_url {
        let r = send::post_json(
            &state.config,
            "slackWebhookUrl",
            url,
            &messages::slack(&f),
            None,
        )
        .await;
        push(Channel::Slack, host(url), r);
    }
    if let Some(url) = &settings.discord_webhook_url {
        let r = send::post_json(
            &state.config,
            "discordWebhookUrl",
            url,
            &messages::discord(&f),
            None,
        )
        .await;
        push(Channel::Discord, host(url), r);
    }
    if let (Some(url), Some(secret)) = (&settings.webhook_url, secret_of(settings)) {
        let mut body = messages::webhook(&f, Timestamp::now());
        body["type"] = serde_json::json!("test");
        let id = format!("msg_test_{}", ObjectId::new());
        let r = send::post_json(
            &state.config,
            "webhookUrl",
            url,
            &body,
            Some((&secret, &id)),
        )
        .await;
        push(Channel::Webhook, host(url), r);
    }
    out
}

/// A made-up completed video for test messages.
fn sample_video(ws: ObjectId) -> AiVideo {
    let now = Timestamp::now();
    AiVideo {
        id: ObjectId::new(),
        user_id: ObjectId::new(),
        workspace_id: ws,
        product_id: ObjectId::new(),
        template: "Test".into(),
        status: crate::model::VideoStatus::Completed,
        error: None,
        metadata: crate::model::VideoMetadata {
            template_id: "test".into(),
            video_url: Some("https://cdn.example.com/test.mp4".into()),
            ..Default::default()
        },
        created_at: now,
        updated_at: now,
        callback_token_hash: None,
    }
}
