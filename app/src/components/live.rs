//! The browser side of the live feed: an EventSource on `/api/live`, in batches.

use crate::model::LiveChange;

/// The kinds of live change a page listens to (the feed leaves the others out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveKinds {
    Videos,
    Events,
    Both,
}

impl LiveKinds {
    /// The feed's address for these kinds, in batches: the changes that are ready together come as
    /// one frame, so a page handles (and redraws) once per frame, not once per change.
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
        use leptos::prelude::*;
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
