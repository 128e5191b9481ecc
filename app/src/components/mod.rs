//! Reusable pieces of the dashboard.

pub mod chart;
pub mod live;

use crate::model::error::FnError;
use crate::model::filters::{query_string, WithPage};
use crate::model::VideoStatus;
use leptos::prelude::*;
use leptos_router::components::Redirect;
use serde::{de::DeserializeOwned, Serialize};

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
                    <li><a href="/notifications">"Notifications"</a></li>
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
pub fn CallError(error: FnError) -> impl IntoView {
    if error.is_unauthorized() {
        return view! { <Redirect path="/login"/> }.into_any();
    }
    if error.is_forbidden() {
        return view! {
            <section class="card notice notice-error" role="alert" data-testid="not-allowed">
                <h2>"Not allowed"</h2>
                <p>"This dashboard is for superadmins only. " {error.to_string()}</p>
            </section>
        }
        .into_any();
    }
    view! {
        <section class="card notice notice-error" role="alert">
            <p>{error.to_string()}</p>
        </section>
    }
    .into_any()
}

/// Loading and failure around what a resource shows, the same on every page: `<Transition>` keeps
/// the last view while it reloads, and one `ErrorBoundary` shows any error of the call through
/// [`CallError`] (so a signed-out session goes to the login page everywhere).
#[component]
pub fn Loaded<T, V, F>(resource: Resource<Result<T, FnError>>, then: F) -> impl IntoView
where
    T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    V: IntoView + 'static,
    F: Fn(T) -> V + Clone + Send + Sync + 'static,
{
    let fallback = |errors: ArcRwSignal<Errors>| {
        let first = errors.read().iter().next().map(|(_, e)| {
            e.downcast_ref::<FnError>()
                .cloned()
                .unwrap_or_else(|| FnError::Call(e.to_string()))
        });
        first.map(|error| view! { <CallError error/> })
    };
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback>
                {move || {
                    let then = then.clone();
                    Suspend::new(async move { resource.await.map(then) })
                }}
            </ErrorBoundary>
        </Transition>
    }
}

/// One figure with its label (the overview's counters).
#[component]
pub fn StatTile(
    label: &'static str,
    #[prop(into)] value: String,
    #[prop(optional)] testid: Option<&'static str>,
) -> impl IntoView {
    view! {
        <div class="stat">
            <span class="stat-label">{label}</span>
            <span class="stat-value" data-testid=testid>{value}</span>
        </div>
    }
}

/// An HTTP status as a pill: green for 2xx, red otherwise (the number is always there).
#[component]
pub fn CodePill(code: u16) -> impl IntoView {
    let class = if (200..300).contains(&code) {
        "code code-ok"
    } else {
        "code code-bad"
    };
    view! { <span class=class>{code}</span> }
}

/// The lists' table: a caption for screen readers, the column headings, and the rows.
#[component]
pub fn DataTable(
    caption: &'static str,
    testid: &'static str,
    columns: &'static [&'static str],
    children: Children,
) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="table" data-testid=testid>
                <caption class="sr-only">{caption}</caption>
                <thead>
                    <tr>{columns.iter().map(|c| view! { <th scope="col">{*c}</th> }).collect_view()}</tr>
                </thead>
                <tbody>{children()}</tbody>
            </table>
        </div>
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

/// Previous/next links that keep the other filters (plain links: they work before hydration).
#[component]
pub fn Pager<F: WithPage + 'static>(
    path: &'static str,
    /// The list's filter: every link keeps it and changes only the page.
    filter: F,
    page: u64,
    total_pages: u64,
    total: u64,
) -> impl IntoView {
    let link = move |p: u64| format!("{path}{}", query_string(&filter.with_page(p)));
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
