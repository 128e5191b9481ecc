//! The Leptos app (pages, components, server functions) and, behind the `ssr` feature, everything the
//! server needs to run the product: configuration, stores, services, auth and the RCK client.
#![forbid(unsafe_code)]

pub mod components;
pub mod model;
pub mod pages;
pub mod server_fns;

#[cfg(feature = "ssr")]
pub mod ssr;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path, SsrMode,
};

/// The HTML document the server renders around the app.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/racky-videos.css"/>
        <Title text="Racky videos"/>
        <Router>
            <Routes fallback=|| view! { <main id="main" class="content"><h1>"Page not found"</h1><p><a href="/">"Back to the overview"</a></p></main> }>
                <Route path=path!("/login") view=pages::login::LoginPage/>
                <Route path=path!("/") view=pages::overview::OverviewPage ssr=SsrMode::Async/>
                <Route path=path!("/videos") view=pages::videos::VideosPage ssr=SsrMode::Async/>
                <Route path=path!("/events") view=pages::events::EventsPage ssr=SsrMode::Async/>
                <Route path=path!("/events/:id") view=pages::events::EventDetailPage ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}
