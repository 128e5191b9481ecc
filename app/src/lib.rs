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
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path, SsrMode,
};

/// The HTML document the server renders around the app. On the server it also sends the page's
/// Content-Security-Policy: scripts only from this origin plus the hydration script, which carries
/// this response's nonce.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(nonce) = leptos::nonce::use_nonce() {
        // `make watch` reloads the page over a websocket to cargo-leptos.
        let reload = if std::env::var_os("LEPTOS_WATCH").is_some() {
            " ws:"
        } else {
            ""
        };
        let csp = format!(
            "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
             style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; \
             connect-src 'self'{reload}; frame-ancestors 'none'; base-uri 'self'; \
             form-action 'self'; object-src 'none'"
        );
        if let (Some(response), Ok(value)) = (
            use_context::<leptos_axum::ResponseOptions>(),
            http::HeaderValue::from_str(&csp),
        ) {
            response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
        }
    }
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <AutoReload options=options.clone()/>
                <HashedStylesheet options=options.clone() id="leptos"/>
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
        <Title text="Racky videos"/>
        <Router>
            <Routes fallback=|| view! { <main id="main" class="content"><h1>"Page not found"</h1><p><a href="/">"Back to the overview"</a></p></main> }>
                <Route path=path!("/login") view=pages::login::LoginPage/>
                <Route path=path!("/") view=pages::overview::OverviewPage ssr=SsrMode::Async/>
                <Route path=path!("/videos") view=pages::videos::VideosPage ssr=SsrMode::Async/>
                <Route path=path!("/videos/:id") view=pages::videos::VideoDetailPage ssr=SsrMode::Async/>
                <Route path=path!("/workspaces") view=pages::workspaces::WorkspacesPage ssr=SsrMode::Async/>
                <Route path=path!("/events") view=pages::events::EventsPage ssr=SsrMode::Async/>
                <Route path=path!("/events/:id") view=pages::events::EventDetailPage ssr=SsrMode::Async/>
                <Route path=path!("/notifications") view=pages::notifications::NotificationsPage ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}
