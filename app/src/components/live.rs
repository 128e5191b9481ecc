//! The browser side of the live feed: an EventSource on `/api/live`, in batches.

use crate::model::LiveChange;
use leptos::prelude::*;
use std::time::Duration;

/// The kinds of live change a page listens to (the feed leaves the others out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveKinds {
    Videos,
    Events,
    Both,
}

impl LiveKinds {
    /// The feed's address for these kinds, in batches: at most one frame per 25 ms whatever the
    /// rate of changes, so a page handles (and redraws) forty times a second at most.
    pub fn url(self) -> &'static str {
        match self {
            LiveKinds::Videos => "/api/live?batch=true&kinds=video",
            LiveKinds::Events => "/api/live?batch=true&kinds=event",
            LiveKinds::Both => "/api/live?batch=true",
        }
    }
}

/// Calls `on_change` for every live change of `kinds` and `on_sync` whenever the page should re-read
/// what it shows: after the stream reconnects (the browser reconnects by itself) or when the server
/// says this subscriber fell behind. The changes of one frame are handed over in one go, so what
/// they update is redrawn once. Does nothing on the server.
pub fn use_live(
    kinds: LiveKinds,
    on_change: impl Fn(LiveChange) + 'static,
    on_sync: impl Fn() + 'static,
) {
    #[cfg(feature = "hydrate")]
    {
        use std::cell::{Cell, RefCell};
        use std::rc::Rc;
        use wasm_bindgen::closure::Closure;
        use wasm_bindgen::JsCast;

        let callbacks = RefCell::new(Some((on_change, on_sync)));
        Effect::new(move |_| {
            let Some((on_change, on_sync)) = callbacks.borrow_mut().take() else {
                return;
            };
            let Ok(source) = web_sys::EventSource::new(kinds.url()) else {
                return;
            };
            let on_change = Rc::new(on_change);
            let on_sync = Rc::new(on_sync);
            let mut closures: Vec<Closure<dyn FnMut(web_sys::MessageEvent)>> = Vec::new();
            let f = on_change.clone();
            let changes = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
                move |ev: web_sys::MessageEvent| {
                    if let Some(text) = ev.data().as_string() {
                        if let Ok(changes) = serde_json::from_str::<Vec<LiveChange>>(&text) {
                            changes.into_iter().for_each(|c| f(c));
                        }
                    }
                },
            );
            let _ = source
                .add_event_listener_with_callback("changes", changes.as_ref().unchecked_ref());
            closures.push(changes);
            // `ready` comes first on every connection: the first one is the page load itself.
            let connections = Cell::new(0u32);
            let sync = on_sync.clone();
            let ready = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_| {
                connections.set(connections.get() + 1);
                // Lets a person's tools (and the browser tests) see that the feed is connected.
                if let Some(root) = web_sys::window()
                    .and_then(|w| w.document())
                    .and_then(|d| d.document_element())
                {
                    let _ = root.set_attribute("data-live", "connected");
                }
                if connections.get() > 1 {
                    sync();
                }
            });
            let _ =
                source.add_event_listener_with_callback("ready", ready.as_ref().unchecked_ref());
            closures.push(ready);
            let resync = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_| on_sync());
            let error = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_| {
                if let Some(root) = web_sys::window()
                    .and_then(|w| w.document())
                    .and_then(|d| d.document_element())
                {
                    let _ = root.set_attribute("data-live", "reconnecting");
                }
            });
            let _ =
                source.add_event_listener_with_callback("error", error.as_ref().unchecked_ref());
            closures.push(error);
            let _ =
                source.add_event_listener_with_callback("resync", resync.as_ref().unchecked_ref());
            closures.push(resync);
            let keep = send_wrapper::SendWrapper::new((source, closures));
            on_cleanup(move || {
                keep.0.close();
                drop(keep);
            });
        });
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (kinds, on_change, on_sync);
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

/// A count of live changes a page does not show (new events, videos off the page): `add` notes one
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

    pub fn add(self) {
        self.noted.update_value(|n| *n = n.saturating_add(1));
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
