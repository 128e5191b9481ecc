//! `GET /api/live`: the live feed as Server-Sent Events (superadmin).
//!
//! Each message is `event: video` or `event: event` with the `LiveChange` JSON as data: a summary
//! (ids, status, times), the same few fields whatever the record holds; the dashboard reads the
//! record when it needs more. A subscriber
//! that falls too far behind gets `event: resync` and should re-read what it shows; a browser's
//! EventSource reconnects by itself, and the dashboard re-reads on every (re)connect, so nothing
//! missed while disconnected stays missing.

use app::model::LiveChange;
use app::ssr::auth::Caller;
use app::ssr::error::AppError;
use app::ssr::state::AppState;
use app::ssr::store::LiveMessage;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures::stream::{self, Stream};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

pub fn router() -> Router<AppState> {
    Router::new().route("/live", get(live))
}

/// The SSE frame of a change, from its JSON made once for every subscriber.
fn to_event(msg: &LiveMessage) -> Event {
    let name = match msg.change {
        LiveChange::Video { .. } => "video",
        LiveChange::Event { .. } => "event",
    };
    match msg.json() {
        "" => Event::default().event("resync").data("{}"),
        json => Event::default().event(name).data(json),
    }
}

#[utoipa::path(get, path = "/api/live", tag = "live", security(("bearer" = []), ("cookie" = [])),
    summary = "The live feed: Server-Sent Events (SUPERADMIN)",
    description = "`ready` on connect; then `video` (`{kind: \"video\", video}`, a VideoSummary: ids, status, the error's first 200 characters, updatedAt) and `event` (`{kind: \"event\", event}`, an EventSummary: ids, endpoint, statusCode, createdAt); `resync` when the subscriber fell behind. The stream ends when its session ends. The records are one request away (`GET /api/videos?videoId=`, `GET /api/webhook-events/{id}`).",
    responses((status = 200, description = "An event stream; each `data` is a LiveChange", content_type = "text/event-stream", body = app::model::LiveChange),
              crate::openapi::Errors))]
async fn live(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    caller.require_superadmin()?;
    let rx = state.store.subscribe();
    let hello = stream::once(async { Ok(Event::default().event("ready").data("{}")) });
    // The session is checked again while the stream is open: revoked, expired or its user changed,
    // the stream ends (a browser's EventSource then reconnects and is refused).
    let mut recheck = tokio::time::interval(
        state
            .sessions
            .recheck_interval()
            .max(Duration::from_secs(1)),
    );
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let open = crate::observe::LiveClient::open();
    let changes = stream::unfold(
        (rx, recheck, state, caller, open),
        |(mut rx, mut recheck, state, caller, open)| async move {
            loop {
                tokio::select! {
                    next = rx.recv() => {
                        let event = match next {
                            Ok(change) => to_event(&change),
                            Err(RecvError::Lagged(n)) => {
                                tracing::warn!(target: "video_service", skipped = n, "live subscriber lagged");
                                Event::default().event("resync").data("{}")
                            }
                            Err(RecvError::Closed) => return None,
                        };
                        return Some((Ok(event), (rx, recheck, state, caller, open)));
                    }
                    _ = recheck.tick() => {
                        if state.sessions.check(&*state.store, &caller).await.is_err() {
                            tracing::info!(target: "video_service", user = %caller.user_id, "live feed closed: the session ended");
                            return None;
                        }
                    }
                }
            }
        },
    );
    Ok(Sse::new(futures::StreamExt::chain(hello, changes))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
