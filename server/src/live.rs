//! `GET /api/live`: the live feed as Server-Sent Events (superadmin).
//!
//! Each message is `event: video` or `event: event` with the `LiveChange` JSON as data: a summary
//! (ids, status, times), the same few fields whatever the record holds; the dashboard reads the
//! record when it needs more. `?kinds=video` (or `event`) leaves out the other kind (and
//! `?endpoint=/videos/failure` the events of the other endpoint), and `?batch=true` sends the
//! changes as `event: changes` frames, each a JSON array: at most one frame per 25 ms (unless full
//! frames are draining a backlog), so under load a page handles forty frames a second, and a change
//! after a quiet spell still goes out at once. `?videos=ID,ID` sends the current state of the
//! videos a page shows, then only their changes (a video's own, and the events naming it), and
//! counts the others in `unseen` frames, at most one a second: a tab showing 25 rows handles 25
//! rows' changes, whatever the write rate. A subscriber that falls too far behind gets
//! `event: resync` and should re-read what it shows; a browser's EventSource reconnects by itself,
//! and the dashboard re-reads on every reconnect, so nothing missed while disconnected stays
//! missing.

use crate::extract::ApiQuery;
use app::model::{LiveChange, LiveUnseen, ObjectId};
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
/// At most this many videos in `videos=` (a page of the dashboard shows 25).
const MAX_VIDEOS: usize = 200;
/// At most one `unseen` frame per this long to one subscriber (the first after a quiet spell goes
/// at once): a count a page redraws, not a change it must show at once.
const UNSEEN_EVERY: Duration = Duration::from_secs(1);

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct LiveQuery {
    /// `video`, `event`, or both comma-separated (the default): the kinds of change to send.
    kinds: Option<String>,
    /// `true`: the changes ready together come as one `changes` frame holding a JSON array of
    /// LiveChange. Default `false`: one `video` or `event` frame per change.
    batch: Option<bool>,
    /// Video ids, comma-separated (at most 200; empty for none): first the current state of these
    /// videos, then only their changes (a video's own, and the events naming it). The other
    /// changes of the kinds asked for are counted in `unseen` frames instead. Default: every
    /// change.
    videos: Option<String>,
    /// `/videos/success` or `/videos/failure` (with or without `/internal`): only the events of this
    /// endpoint are asked for; the others are left out, not counted.
    endpoint: Option<String>,
}

/// What a subscriber asked for: kinds of change, and perhaps only some videos' changes.
struct Filter {
    video: bool,
    event: bool,
    /// `Some`: only the events of this endpoint (as stored: `/videos/success`).
    endpoint: Option<String>,
    /// `Some`: only the changes of these videos are shown; the others are counted.
    videos: Option<Vec<ObjectId>>,
}

/// What a subscriber gets of one change.
enum Fate {
    /// The change itself.
    Shown,
    /// A count of it, in the next `unseen` frame.
    Counted,
    /// Nothing: a kind it did not ask for.
    Skipped,
}

impl Filter {
    fn parse(query: &LiveQuery) -> Result<Self, AppError> {
        let (mut video, mut event) = (query.kinds.is_none(), query.kinds.is_none());
        for kind in query.kinds.iter().flat_map(|k| k.split(',')).map(str::trim) {
            match kind {
                "video" => video = true,
                "event" => event = true,
                _ => {
                    return Err(AppError::BadRequest(
                        "Invalid kinds: expected video, event or both, comma-separated".into(),
                    ))
                }
            }
        }
        let videos = match query.videos.as_deref().map(str::trim) {
            None => None,
            Some("") => Some(Vec::new()),
            Some(list) => {
                let ids = list
                    .split(',')
                    .map(|id| id.trim().parse::<ObjectId>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| {
                        AppError::BadRequest(
                            "Invalid videos: expected video ids, comma-separated".into(),
                        )
                    })?;
                if ids.len() > MAX_VIDEOS {
                    return Err(AppError::BadRequest(format!(
                        "Too many videos: at most {MAX_VIDEOS}"
                    )));
                }
                Some(ids)
            }
        };
        let endpoint = query
            .endpoint
            .as_deref()
            .map(app::ssr::services::events::parse_endpoint)
            .transpose()?;
        Ok(Self {
            video,
            event,
            endpoint,
            videos,
        })
    }

    fn fate(&self, change: &LiveChange) -> Fate {
        let asked = match change {
            LiveChange::Video { .. } => self.video,
            LiveChange::Event { event } => {
                self.event && self.endpoint.as_ref().is_none_or(|e| *e == event.endpoint)
            }
        };
        if !asked {
            return Fate::Skipped;
        }
        // Which video the change is of, only when it matters (an event's id is text to parse).
        let Some(videos) = &self.videos else {
            return Fate::Shown;
        };
        let of = match change {
            LiveChange::Video { video } => Some(video.id),
            LiveChange::Event { event } => event.video_id.as_deref().and_then(|v| v.parse().ok()),
        };
        if of.is_some_and(|id| videos.contains(&id)) {
            Fate::Shown
        } else {
            Fate::Counted
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
}

/// The changes left out by `videos=` since the last `unseen` frame.
#[derive(Default)]
struct Unseen {
    counts: LiveUnseen,
    last: Option<tokio::time::Instant>,
}

impl Unseen {
    fn note(&mut self, change: &LiveChange) {
        match change {
            LiveChange::Video { .. } => self.counts.videos += 1,
            LiveChange::Event { .. } => self.counts.events += 1,
        }
    }

    /// When the next `unseen` frame may go, if there is anything to count.
    fn due(&self) -> Option<tokio::time::Instant> {
        let any = self.counts.videos > 0 || self.counts.events > 0;
        any.then(|| {
            self.last
                .map_or_else(tokio::time::Instant::now, |last| last + UNSEEN_EVERY)
        })
    }

    fn take(&mut self) -> Event {
        self.last = Some(tokio::time::Instant::now());
        let counts = std::mem::take(&mut self.counts);
        Event::default()
            .event("unseen")
            .json_data(counts)
            .unwrap_or_else(|_| resync())
    }
}

/// One subscriber's side of the feed: the channel, what it asked for, and what it holds between
/// polls (the session check may cut any wait short; nothing taken from the channel is lost).
struct Feed {
    rx: tokio::sync::broadcast::Receiver<Live>,
    filter: Filter,
    batched: bool,
    batch: Batch,
    unseen: Unseen,
}

impl Feed {
    /// The next frame (`None`: the feed closed).
    async fn next(&mut self) -> Option<Event> {
        if self.batched {
            self.next_batch().await
        } else {
            self.shown()
                .await
                .map_or_else(|end| end, |c| Some(to_event(&c)))
        }
    }

    /// The next change to show, waiting for it; or, instead, the frame that comes first: `unseen`
    /// once it is due, `resync` when this subscriber fell behind, `None` when the feed closed.
    async fn shown(&mut self) -> Result<Live, Option<Event>> {
        loop {
            let received = match self.unseen.due() {
                Some(due) => {
                    tokio::select! {
                        biased;
                        _ = tokio::time::sleep_until(due) => None,
                        received = self.rx.recv() => Some(received),
                    }
                }
                None => Some(self.rx.recv().await),
            };
            match received {
                None => return Err(Some(self.unseen.take())),
                Some(Ok(change)) => {
                    if let Some(change) = self.sort(change) {
                        return Ok(change);
                    }
                }
                Some(Err(RecvError::Lagged(n))) => return Err(Some(self.lagged(n))),
                Some(Err(RecvError::Closed)) => return Err(None),
            }
        }
    }

    /// `change` if this subscriber is shown it; a change it is only told the count of is counted.
    fn sort(&mut self, change: Live) -> Option<Live> {
        match self.filter.fate(&change.change) {
            Fate::Shown => Some(change),
            Fate::Counted => {
                self.unseen.note(&change.change);
                None
            }
            Fate::Skipped => None,
        }
    }

    /// The next changes to show, as one `changes` frame: waits for the first; then, if the last
    /// frame went out less than `FRAME_EVERY` ago, until then (not after a full frame); then takes
    /// whatever else is ready (up to `MAX_BATCH`). A lone change goes out at once; under load a
    /// subscriber gets one frame per `FRAME_EVERY`, which is what a browser tab can take (each
    /// frame crosses its processes), not one per write.
    async fn next_batch(&mut self) -> Option<Event> {
        while self.batch.count == 0 {
            match self.shown().await {
                Ok(change) => self.batch.push(&change),
                Err(end) => return end,
            }
        }
        if let Some(last) = self.batch.paced_from {
            tokio::time::sleep_until(last + FRAME_EVERY).await;
        }
        while self.batch.count < MAX_BATCH {
            match self.rx.try_recv() {
                Ok(change) => {
                    if let Some(change) = self.sort(change) {
                        self.batch.push(&change);
                    }
                }
                Err(TryRecvError::Lagged(n)) => return Some(self.lagged(n)),
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        Some(self.batch.take())
    }

    /// The current state of the videos asked for (when video changes were asked for), as the frames
    /// their changes come in. Read after subscribing: a change made meanwhile is in what is read,
    /// in the feed, or both (the newer wins on the page), so a page that opens the feed after reading
    /// its rows misses none of their changes.
    async fn current(&self, state: &AppState) -> Result<Vec<Event>, AppError> {
        let videos = match &self.filter.videos {
            Some(videos) if self.filter.video && !videos.is_empty() => videos,
            _ => return Ok(Vec::new()),
        };
        let now: Vec<Live> = state
            .store
            .find_videos(videos)
            .await?
            .iter()
            .map(|v| LiveMessage::new(LiveChange::video(v)))
            .collect();
        if !self.batched {
            return Ok(now.iter().map(|change| to_event(change)).collect());
        }
        let mut batch = Batch::default();
        now.iter().for_each(|change| batch.push(change));
        Ok(if batch.count > 0 {
            vec![batch.take()]
        } else {
            Vec::new()
        })
    }

    /// The `resync` frame of a subscriber that fell `skipped` changes behind: it re-reads what it
    /// shows, so what was held for it goes.
    fn lagged(&mut self, skipped: u64) -> Event {
        tracing::warn!(target: "video_service", skipped, "live subscriber lagged");
        self.batch.json.clear();
        self.batch.count = 0;
        self.unseen.counts = LiveUnseen::default();
        resync()
    }
}

#[utoipa::path(get, path = "/api/live", tag = "live", security(("bearer" = []), ("cookie" = [])),
    params(LiveQuery),
    summary = "The live feed: Server-Sent Events (SUPERADMIN)",
    description = "`ready` on connect; then `video` (`{kind: \"video\", video}`, a VideoSummary: ids, status, the error's first 200 characters, updatedAt) and `event` (`{kind: \"event\", event}`, an EventSummary: ids, endpoint, statusCode, createdAt); `resync` when the subscriber fell behind. `kinds=video` or `kinds=event` sends only that kind; `endpoint=/videos/success` (or `/videos/failure`) only the events of that endpoint. With `batch=true`, the changes that are ready together come as one `changes` frame whose data is a JSON array of LiveChange (at most 256; one frame per 25 ms at most, unless full frames are draining a backlog; a change after a quiet spell goes out at once). `videos=ID,ID` (at most 200, or empty for none) sends, after `ready`, the current state of those videos (as their changes come), then only their changes (a video's own, and events naming it); the other changes of the kinds asked for are counted in `unseen` frames (`{\"videos\": n, \"events\": m}`, a LiveUnseen: what was left out since the last one; at most one a second, the first at once). The stream ends when its session ends. The records are one request away (`GET /api/videos?videoId=`, `GET /api/webhook-events/{id}`).",
    responses((status = 200, description = "An event stream; each `data` is a LiveChange (an array of them in `changes` frames)", content_type = "text/event-stream", body = app::model::LiveChange),
              crate::openapi::Errors))]
async fn live(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<LiveQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    caller.require_superadmin()?;
    let feed = Feed {
        rx: state.store.subscribe(),
        filter: Filter::parse(&query)?,
        batched: query.batch.unwrap_or(false),
        batch: Batch::default(),
        unseen: Unseen::default(),
    };
    let current = feed.current(&state).await?;
    let hello = stream::iter(
        std::iter::once(Event::default().event("ready").data("{}"))
            .chain(current)
            .map(Ok),
    );
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
        (feed, recheck, state, caller, open),
        |(mut feed, mut recheck, state, caller, open)| async move {
            loop {
                tokio::select! {
                    next = feed.next() => {
                        return next.map(|event| (Ok(event), (feed, recheck, state, caller, open)));
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
