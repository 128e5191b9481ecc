//! `GET /api/live`: the live feed as Server-Sent Events (superadmin).
//!
//! Each message is `event: video` or `event: event` with the `LiveChange` JSON as data: a summary
//! (ids, status, times), the same few fields whatever the record holds; the dashboard reads the
//! record when it needs more. `?kinds=video` (or `event`) leaves out the other kind, and
//! `?batch=true` sends the changes as `event: changes` frames, each a JSON array: at most one frame
//! per 25 ms (unless full frames are draining a backlog), so under load a page handles forty frames
//! a second, and a change after a quiet spell still goes out at once. A subscriber
//! that falls too far behind gets `event: resync` and should re-read what it shows; a browser's
//! EventSource reconnects by itself, and the dashboard re-reads on every (re)connect, so nothing
//! missed while disconnected stays missing.

use crate::extract::ApiQuery;
use app::model::LiveChange;
use app::ssr::auth::Caller;
use app::ssr::error::AppError;
use app::ssr::state::AppState;
use app::ssr::store::{Live, LiveMessage};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures::stream::{self, Stream};
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

pub fn router() -> Router<AppState> {
    Router::new().route("/live", get(live))
}

/// At most this many changes in one `changes` frame; more that are ready go in the next frame.
const MAX_BATCH: usize = 256;
/// At most one `changes` frame per this long to one subscriber (a lone change is not held back).
const FRAME_EVERY: Duration = Duration::from_millis(25);

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct LiveQuery {
    /// `video`, `event`, or both comma-separated (the default): the kinds of change to send.
    kinds: Option<String>,
    /// `true`: the changes ready together come as one `changes` frame holding a JSON array of
    /// LiveChange. Default `false`: one `video` or `event` frame per change.
    batch: Option<bool>,
}

/// Which kinds of change a subscriber asked for.
#[derive(Clone, Copy)]
struct Kinds {
    video: bool,
    event: bool,
}

impl Kinds {
    fn parse(raw: Option<&str>) -> Result<Self, AppError> {
        let Some(raw) = raw else {
            return Ok(Self {
                video: true,
                event: true,
            });
        };
        let mut kinds = Self {
            video: false,
            event: false,
        };
        for kind in raw.split(',').map(str::trim) {
            match kind {
                "video" => kinds.video = true,
                "event" => kinds.event = true,
                _ => {
                    return Err(AppError::BadRequest(
                        "Invalid kinds: expected video, event or both, comma-separated".into(),
                    ))
                }
            }
        }
        Ok(kinds)
    }

    fn wants(self, msg: &LiveMessage) -> bool {
        match msg.change {
            LiveChange::Video { .. } => self.video,
            LiveChange::Event { .. } => self.event,
        }
    }
}

/// The SSE frame of a change, from its JSON made once for every subscriber.
fn to_event(msg: &LiveMessage) -> Event {
    let name = match msg.change {
        LiveChange::Video { .. } => "video",
        LiveChange::Event { .. } => "event",
    };
    match msg.json() {
        "" => resync(),
        json => Event::default().event(name).data(json),
    }
}

fn resync() -> Event {
    Event::default().event("resync").data("{}")
}

/// The next change this subscriber wants, waiting for it; or, instead, the frame that ends the
/// wait: `Some(resync)` when the subscriber fell behind, `None` when the feed closed.
async fn recv_wanted(
    rx: &mut tokio::sync::broadcast::Receiver<Live>,
    kinds: Kinds,
) -> Result<Live, Option<Event>> {
    loop {
        match rx.recv().await {
            Ok(change) if kinds.wants(&change) => return Ok(change),
            Ok(_) => {}
            Err(RecvError::Lagged(n)) => return Err(Some(lagged(n))),
            Err(RecvError::Closed) => return Err(None),
        }
    }
}

/// The next frame of a subscriber that takes one change per frame (`None`: the feed closed).
async fn next_single(
    rx: &mut tokio::sync::broadcast::Receiver<Live>,
    kinds: Kinds,
) -> Option<Event> {
    recv_wanted(rx, kinds)
        .await
        .map_or_else(|end| end, |change| Some(to_event(&change)))
}

/// A `changes` frame being filled, kept between polls: the wait for the pace below may be cut short
/// by the session check, and what was taken meanwhile must not be lost.
#[derive(Default)]
struct Batch {
    json: String,
    count: usize,
    /// When the last frame went out, if it was not full: the next one waits for the pace. After a
    /// full frame there is a backlog, and the next frame goes at once (else a feed paced at
    /// `MAX_BATCH` per `FRAME_EVERY` would fall behind any faster writer and only ever resync).
    paced_from: Option<tokio::time::Instant>,
}

impl Batch {
    fn push(&mut self, msg: &LiveMessage) {
        match msg.json() {
            "" => {}
            one => {
                self.json.push(if self.count == 0 { '[' } else { ',' });
                self.json.push_str(one);
                self.count += 1;
            }
        }
    }

    fn take(&mut self) -> Event {
        self.json.push(']');
        self.paced_from = (self.count < MAX_BATCH).then(tokio::time::Instant::now);
        self.count = 0;
        Event::default()
            .event("changes")
            .data(std::mem::take(&mut self.json))
    }

    fn lagged(&mut self, skipped: u64) -> Option<Event> {
        self.json.clear();
        self.count = 0;
        Some(lagged(skipped))
    }
}

/// The next changes this subscriber wants, as one `changes` frame: waits for the first; then, if
/// the last frame went out less than `FRAME_EVERY` ago, until then (not after a full frame); then
/// takes whatever else is ready (up to `MAX_BATCH`). A lone change goes out at once; under load a
/// subscriber gets one frame per `FRAME_EVERY`, which is what a browser tab can take (each frame
/// crosses its processes), not one per write.
async fn next_batch(
    rx: &mut tokio::sync::broadcast::Receiver<Live>,
    kinds: Kinds,
    batch: &mut Batch,
) -> Option<Event> {
    while batch.count == 0 {
        match recv_wanted(rx, kinds).await {
            Ok(change) => batch.push(&change),
            Err(end) => return end,
        }
    }
    if let Some(last) = batch.paced_from {
        tokio::time::sleep_until(last + FRAME_EVERY).await;
    }
    while batch.count < MAX_BATCH {
        match rx.try_recv() {
            Ok(change) if kinds.wants(&change) => batch.push(&change),
            Ok(_) => {}
            Err(TryRecvError::Lagged(n)) => return batch.lagged(n),
            Err(TryRecvError::Empty | TryRecvError::Closed) => break,
        }
    }
    Some(batch.take())
}

/// The `resync` frame of a subscriber that fell `skipped` changes behind.
fn lagged(skipped: u64) -> Event {
    tracing::warn!(target: "video_service", skipped, "live subscriber lagged");
    resync()
}

#[utoipa::path(get, path = "/api/live", tag = "live", security(("bearer" = []), ("cookie" = [])),
    params(LiveQuery),
    summary = "The live feed: Server-Sent Events (SUPERADMIN)",
    description = "`ready` on connect; then `video` (`{kind: \"video\", video}`, a VideoSummary: ids, status, the error's first 200 characters, updatedAt) and `event` (`{kind: \"event\", event}`, an EventSummary: ids, endpoint, statusCode, createdAt); `resync` when the subscriber fell behind. `kinds=video` or `kinds=event` sends only that kind. With `batch=true`, the changes that are ready together come as one `changes` frame whose data is a JSON array of LiveChange (at most 256; one frame per 25 ms at most, unless full frames are draining a backlog; a change after a quiet spell goes out at once). The stream ends when its session ends. The records are one request away (`GET /api/videos?videoId=`, `GET /api/webhook-events/{id}`).",
    responses((status = 200, description = "An event stream; each `data` is a LiveChange (an array of them in `changes` frames)", content_type = "text/event-stream", body = app::model::LiveChange),
              crate::openapi::Errors))]
async fn live(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<LiveQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    caller.require_superadmin()?;
    let kinds = Kinds::parse(query.kinds.as_deref())?;
    let batch = query.batch.unwrap_or(false);
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
        (rx, recheck, state, caller, open, Batch::default()),
        move |(mut rx, mut recheck, state, caller, open, mut pending)| async move {
            loop {
                let next = async {
                    if batch {
                        next_batch(&mut rx, kinds, &mut pending).await
                    } else {
                        next_single(&mut rx, kinds).await
                    }
                };
                tokio::select! {
                    next = next => {
                        return next.map(|event| (Ok(event), (rx, recheck, state, caller, open, pending)));
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
