//! The browser side of the live feed: an EventSource on `/api/live`.

use crate::model::LiveChange;

/// Calls `on_change` for every live change and `on_sync` whenever the page should re-read what it
/// shows: after the stream reconnects (the browser reconnects by itself) or when the server says this
/// subscriber fell behind. Does nothing on the server.
pub fn use_live(on_change: impl Fn(LiveChange) + 'static, on_sync: impl Fn() + 'static) {
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
            let Ok(source) = web_sys::EventSource::new("/api/live") else {
                return;
            };
            let on_change = Rc::new(on_change);
            let on_sync = Rc::new(on_sync);
            let mut closures: Vec<Closure<dyn FnMut(web_sys::MessageEvent)>> = Vec::new();
            for name in ["video", "event"] {
                let f = on_change.clone();
                let c = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
                    move |ev: web_sys::MessageEvent| {
                        if let Some(text) = ev.data().as_string() {
                            if let Ok(change) = serde_json::from_str::<LiveChange>(&text) {
                                f(change);
                            }
                        }
                    },
                );
                let _ = source.add_event_listener_with_callback(name, c.as_ref().unchecked_ref());
                closures.push(c);
            }
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
        let _ = (on_change, on_sync);
    }
}
