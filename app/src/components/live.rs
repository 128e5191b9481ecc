//! The browser side of the live feed: an EventSource on `/api/live`, in batches.

use crate::model::webhook::WebhookKind;
use crate::model::{LiveChange, LiveUnseen, ObjectId};
use leptos::prelude::*;
use std::time::Duration;

/// The kinds of live change a page listens to (the feed leaves the others out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveKinds {
    Videos,
    Events,
    Both,
}

/// What a page follows on the live feed: built by the page from what it shows (the feed is opened
/// again when that changes).
#[derive(Clone, Debug, PartialEq)]
pub struct LiveFeed {
    kinds: LiveKinds,
    videos: Option<Vec<ObjectId>>,
    endpoint: Option<WebhookKind>,
}

impl LiveFeed {
    pub fn new(kinds: LiveKinds) -> Self {
        Self {
            kinds,
            videos: None,
            endpoint: None,
        }
    }

    /// Only these videos' changes (and the events naming them) come whole; the others of the kinds
    /// asked for are counted, at most once a second (none: only counts).
    pub fn videos(self, videos: Vec<ObjectId>) -> Self {
        Self {
            videos: Some(videos),
            ..self
        }
    }

    /// Only the events of this endpoint (`/videos/success` or `/videos/failure`, with or without
    /// `/internal`; anything else is ignored).
    pub fn endpoint(self, endpoint: Option<&str>) -> Self {
        Self {
            endpoint: endpoint.and_then(WebhookKind::from_endpoint),
            ..self
        }
    }

    /// The feed's address, in batches: at most one frame per 25 ms whatever the rate of changes,
    /// so a page handles (and redraws) forty times a second at most.
    #[cfg(feature = "hydrate")]
    fn url(&self) -> String {
        let mut url = String::from(match self.kinds {
            LiveKinds::Videos => "/api/live?batch=true&kinds=video",
            LiveKinds::Events => "/api/live?batch=true&kinds=event",
            LiveKinds::Both => "/api/live?batch=true",
        });
        if let Some(videos) = &self.videos {
            url.push_str("&videos=");
            for (i, id) in videos.iter().enumerate() {
                if i > 0 {
                    url.push(',');
                }
                url.push_str(&id.to_string());
            }
        }
        if let Some(kind) = self.endpoint {
            url.push_str("&endpoint=");
            url.push_str(kind.endpoint());
        }
        url
    }
}

/// Follows the live feed for a page: calls `on_change` for every live change the `feed` sends
/// whole, `on_unseen` with the counts of the others (see [`LiveFeed::videos`]), and `on_sync`
/// whenever the page should re-read what it shows (after the stream reconnects, which the browser
/// does by itself, or when the server says this subscriber fell behind). The changes of one frame
/// are handed over in one go, so what they update is redrawn once. `feed` is tracked: when what it
/// says changes (the rows shown, a filter), the feed is opened again. Does nothing on the server.
pub fn use_live(
    feed: impl Fn() -> LiveFeed + Send + Sync + 'static,
    on_change: impl Fn(LiveChange) + 'static,
    on_unseen: impl Fn(LiveUnseen) + 'static,
    on_sync: impl Fn() + 'static,
) {
    #[cfg(feature = "hydrate")]
    {
        use std::cell::Cell;
        use std::rc::Rc;
        use wasm_bindgen::closure::Closure;
        use wasm_bindgen::JsCast;

        let url = Memo::new(move |_| feed().url());
        let on_change = Rc::new(on_change);
        let on_unseen = Rc::new(on_unseen);
        let on_sync = Rc::new(on_sync);
        // Run again (the last source closed by its cleanup) whenever the address changes.
        Effect::new(move |_| {
            let Ok(source) = web_sys::EventSource::new(&url.get()) else {
                return;
            };
            let listen = |name: &str, f: Closure<dyn FnMut(web_sys::MessageEvent)>| {
                let _ = source.add_event_listener_with_callback(name, f.as_ref().unchecked_ref());
                f
            };
            let text = |ev: &web_sys::MessageEvent| ev.data().as_string().unwrap_or_default();
            let f = on_change.clone();
            let changes = listen(
                "changes",
                Closure::new(move |ev: web_sys::MessageEvent| {
                    if let Ok(changes) =
                        serde_json::from_slice::<Vec<LiveChange>>(text(&ev).as_bytes())
                    {
                        changes.into_iter().for_each(|c| f(c));
                    }
                }),
            );
            let f = on_unseen.clone();
            let unseen = listen(
                "unseen",
                Closure::new(move |ev: web_sys::MessageEvent| {
                    if let Ok(counts) = serde_json::from_slice::<LiveUnseen>(text(&ev).as_bytes()) {
                        f(counts);
                    }
                }),
            );
            // `ready` comes first on every connection of this source: the first one follows the
            // page's own read (or, after `videos` changed, the read that changed it).
            let connections = Cell::new(0u32);
            let sync = on_sync.clone();
            let ready = listen(
                "ready",
                Closure::new(move |_| {
                    connections.set(connections.get() + 1);
                    mark_live("connected");
                    if connections.get() > 1 {
                        sync();
                    }
                }),
            );
            let error = listen("error", Closure::new(move |_| mark_live("reconnecting")));
            let sync = on_sync.clone();
            let resync = listen("resync", Closure::new(move |_| sync()));
            let keep = send_wrapper::SendWrapper::new((
                source.clone(),
                [changes, unseen, ready, error, resync],
            ));
            on_cleanup(move || {
                keep.0.close();
                drop(keep);
            });
        });
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (feed, on_change, on_unseen, on_sync);
    }
}

/// Lets a person's tools (and the browser tests) see whether the feed is connected.
#[cfg(feature = "hydrate")]
fn mark_live(state: &str) {
    if let Some(root) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
    {
        let _ = root.set_attribute("data-live", state);
    }
}

/// `f`, run at most once per `every`: at once if it has not run within `every`, else once that
/// time is over (so the last call always has its effect). For what many live changes move at once
/// (a count, a re-read): a page under a thousand changes a second redraws once a second, not a
/// thousand times.
pub fn throttled(
    every: Duration,
    f: impl Fn() + Copy + Send + Sync + 'static,
) -> impl Fn() + Copy + 'static {
    let last = StoredValue::new(i64::MIN);
    let queued = StoredValue::new(false);
    let every_ms = i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
    move || {
        let now = crate::components::now_millis();
        let wait = every_ms.saturating_sub(now.saturating_sub(last.get_value()));
        if wait <= 0 {
            last.set_value(now);
            f();
        } else if !queued.get_value() {
            queued.set_value(true);
            set_timeout(
                move || {
                    // The page may have gone meanwhile (its values with it): then nothing to do.
                    if queued.try_set_value(false).is_some() {
                        return;
                    }
                    last.set_value(crate::components::now_millis());
                    f();
                },
                Duration::from_millis(wait.unsigned_abs()),
            );
        }
    }
}

/// A count of live changes a page does not show (new events, videos off the page): `add` notes them
/// at once, `flush` (throttled by the page) moves what was noted into the count that is drawn.
#[derive(Clone, Copy)]
pub struct Unseen {
    shown: RwSignal<u32>,
    noted: StoredValue<u32>,
}

impl Unseen {
    pub fn new() -> Self {
        Self {
            shown: RwSignal::new(0),
            noted: StoredValue::new(0),
        }
    }

    /// The count as drawn (tracked).
    pub fn count(self) -> u32 {
        self.shown.get()
    }

    pub fn add(self, n: u64) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.noted
            .update_value(|noted| *noted = noted.saturating_add(n));
    }

    pub fn flush(self) {
        let n = self.noted.get_value();
        if n > 0 {
            self.noted.set_value(0);
            self.shown.update(|s| *s = s.saturating_add(n));
        }
    }

    pub fn reset(self) {
        self.noted.set_value(0);
        self.shown.set(0);
    }
}

impl Default for Unseen {
    fn default() -> Self {
        Self::new()
    }
}
