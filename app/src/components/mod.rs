//! Reusable pieces of the dashboard.

pub mod chart;
pub mod live;

use crate::model::VideoStatus;
use crate::server_fns::{error_message, error_status, FORBIDDEN, UNAUTHORIZED};
use leptos::prelude::*;
use leptos_router::components::Redirect;

/// The frame of every signed-in page: skip link, navigation, sign-out, and the page itself.
#[component]
pub fn Layout(children: Children) -> impl IntoView {
    // "server" in the HTML, "browser" once the WASM has taken over (tests and people can tell).
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! {
        <span class="sr-only" data-testid="hydrated" data-state=move || if hydrated.get() { "browser" } else { "server" }></span>
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="topbar">
            <a class="brand" href="/">"Racky videos"</a>
            <nav aria-label="Main">
                <ul class="nav">
                    <li><a href="/">"Overview"</a></li>
                    <li><a href="/videos">"Videos"</a></li>
                    <li><a href="/events">"Webhook events"</a></li>
                </ul>
            </nav>
            <form method="post" action="/logout" class="logout">
                <button type="submit" class="btn btn-secondary" data-testid="logout">"Sign out"</button>
            </form>
        </header>
        <main id="main" class="content">{children()}</main>
    }
}

/// A video status as a coloured badge (the colour is never the only signal: the word is there).
#[component]
pub fn StatusBadge(status: VideoStatus) -> impl IntoView {
    view! {
        <span class=format!("badge badge-{}", status.as_str()) data-status=status.as_str()>
            {status.as_str()}
        </span>
    }
}

/// How a failed server call shows: signed out goes to the login page, not allowed says so.
#[component]
pub fn CallError(error: ServerFnError) -> impl IntoView {
    match error_status(&error) {
        Some(UNAUTHORIZED) => view! { <Redirect path="/login"/> }.into_any(),
        Some(FORBIDDEN) => view! {
            <section class="card notice notice-error" role="alert" data-testid="not-allowed">
                <h2>"Not allowed"</h2>
                <p>"This dashboard is for superadmins only. " {error_message(&error)}</p>
            </section>
        }
        .into_any(),
        _ => view! {
            <section class="card notice notice-error" role="alert">
                <p>{error_message(&error)}</p>
            </section>
        }
        .into_any(),
    }
}

/// Formats milliseconds for people: `850 ms`, `12.4 s`, `3.2 min`.
pub fn human_ms(ms: Option<u64>) -> String {
    match ms {
        None => "–".into(),
        Some(ms) if ms < 1_000 => format!("{ms} ms"),
        Some(ms) if ms < 60_000 => format!("{:.1} s", ms as f64 / 1_000.0),
        Some(ms) if ms < 3_600_000 => format!("{:.1} min", ms as f64 / 60_000.0),
        Some(ms) => format!("{:.1} h", ms as f64 / 3_600_000.0),
    }
}

/// A query string from pairs, leaving out empty values.
pub fn query_string(pairs: &[(&str, Option<String>)]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z'
                | b'a'..=b'z'
                | b'0'..=b'9'
                | b'-'
                | b'_'
                | b'.'
                | b'~'
                | b'/'
                | b':' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| {
            v.as_deref()
                .filter(|v| !v.is_empty())
                .map(|v| format!("{k}={}", enc(v)))
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// Previous/next links that keep the other filters (plain links: they work before hydration).
#[component]
pub fn Pager(
    path: &'static str,
    page: u64,
    total_pages: u64,
    total: u64,
    /// The other query parameters to keep.
    keep: Vec<(&'static str, Option<String>)>,
) -> impl IntoView {
    let link = move |p: u64| {
        let mut pairs = keep.clone();
        pairs.push(("page", Some(p.to_string())));
        format!("{path}{}", query_string(&pairs))
    };
    let prev = (page > 1).then(|| link(page - 1));
    let next = (page < total_pages).then(|| link(page + 1));
    view! {
        <nav class="pager" aria-label="Pagination">
            {match prev {
                Some(href) => view! { <a class="btn btn-secondary" rel="prev" href=href data-testid="prev-page">"← Previous"</a> }.into_any(),
                None => view! { <span class="btn btn-secondary disabled" aria-disabled="true">"← Previous"</span> }.into_any(),
            }}
            <span class="pager-status" data-testid="page-status">
                {format!("Page {page} of {} · {total} in all", total_pages.max(1))}
            </span>
            {match next {
                Some(href) => view! { <a class="btn btn-secondary" rel="next" href=href data-testid="next-page">"Next →"</a> }.into_any(),
                None => view! { <span class="btn btn-secondary disabled" aria-disabled="true">"Next →"</span> }.into_any(),
            }}
        </nav>
    }
}
