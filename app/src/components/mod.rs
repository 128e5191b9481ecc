//! Reusable pieces of the dashboard.

pub mod chart;
pub mod data;
pub mod live;

use crate::components::data::SliceJson;
use crate::model::error::FnError;
use crate::model::filters::{query_string, WithPage};
use crate::model::VideoStatus;
use leptos::prelude::*;
use leptos_router::components::Redirect;
use serde::{de::DeserializeOwned, Serialize};

/// The clock relative times are read against: the server's in the HTML, then the browser's,
/// ticking every 30 s.
#[derive(Clone, Copy)]
pub struct Clock(pub RwSignal<i64>);

/// Milliseconds since the epoch, on either side.
pub fn now_millis() -> i64 {
    #[cfg(feature = "hydrate")]
    {
        web_sys::window()
            .and_then(|w| w.performance())
            .map(|p| (p.time_origin() + p.now()) as i64)
            .unwrap_or(0)
    }
    #[cfg(all(feature = "ssr", not(feature = "hydrate")))]
    {
        crate::model::Timestamp::now().millis()
    }
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    {
        0
    }
}

/// The frame of every signed-in page: skip link, navigation, sign-out, and the page itself. It
/// also holds the clock of relative times, and the `/` key that focuses the page's search field
/// (the element marked `data-search`).
#[component]
pub fn Layout(children: Children) -> impl IntoView {
    // "server" in the HTML, "browser" once the WASM has taken over (tests and people can tell).
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let clock = RwSignal::new(now_millis());
    provide_context(Clock(clock));
    Effect::new(move |_| {
        if let Ok(h) = set_interval_with_handle(
            move || clock.set(now_millis()),
            std::time::Duration::from_secs(30),
        ) {
            on_cleanup(move || h.clear());
        }
    });
    #[cfg(feature = "hydrate")]
    {
        let keys = window_event_listener(leptos::ev::keydown, focus_search_on_slash);
        on_cleanup(move || keys.remove());
    }
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
                    <li><a href="/workspaces">"Workspaces"</a></li>
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

/// `/` outside a text field focuses the page's search field.
#[cfg(feature = "hydrate")]
fn focus_search_on_slash(e: web_sys::KeyboardEvent) {
    use wasm_bindgen::JsCast;
    if e.key() != "/" || e.ctrl_key() || e.meta_key() || e.alt_key() {
        return;
    }
    let typing = e
        .target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .is_some_and(|el| {
            matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
                || el.has_attribute("contenteditable")
        });
    if typing {
        return;
    }
    let field = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.query_selector("[data-search]").ok().flatten())
        .and_then(|el| el.dyn_into::<web_sys::HtmlElement>().ok());
    if let Some(field) = field {
        e.prevent_default();
        let _ = field.focus();
    }
}

/// How long ago `then` was, for people: `just now`, `3 min ago`, `5 h ago`, `2 days ago`, then the
/// date.
pub fn relative(now: i64, then: i64) -> String {
    let secs = (now - then) / 1000;
    let (ahead, secs) = if secs < 0 {
        (true, -secs)
    } else {
        (false, secs)
    };
    let span = match secs {
        0..=44 => return "just now".into(),
        45..=3_599 => format!("{} min", (secs + 30) / 60),
        3_600..=86_399 => format!("{} h", secs / 3_600),
        86_400..=2_591_999 => match secs / 86_400 {
            1 => "1 day".into(),
            d => format!("{d} days"),
        },
        _ => {
            let mut day = crate::model::Timestamp::from_millis(then).to_string();
            day.truncate(10);
            return day;
        }
    };
    if ahead {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

/// The exact time people read: `2026-11-29 07:40:12 UTC` (cut from the RFC 3339 form, so the
/// browser bundle needs no date formatting of its own).
pub fn exact(t: crate::model::Timestamp) -> String {
    let s = t.to_string();
    match (s.get(..10), s.get(11..19)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => s,
    }
}

/// A time as "3 min ago", with the exact UTC time on hover (its title) and on keyboard focus (a
/// tooltip from `data-exact`); it stays current as the clock ticks, and as `at` changes: the same
/// element is updated in place, never built again (a live page changes times by the thousand).
#[component]
pub fn Ago(#[prop(into)] at: Signal<crate::model::Timestamp>) -> impl IntoView {
    let clock = use_context::<Clock>();
    let text = move || {
        let then = at.get().millis();
        relative(clock.map(|c| c.0.get()).unwrap_or(then), then)
    };
    let full = Memo::new(move |_| exact(at.get()));
    view! {
        <time class="ago" datetime=move || at.get().to_string() title=full data-exact=full tabindex="0">{text}</time>
    }
}

/// An id as a short chip (its last 6 characters; the whole id in its title) with a button that
/// copies the whole id.
#[component]
pub fn IdChip(#[prop(into)] id: String) -> impl IntoView {
    let short: String = {
        let n = id.chars().count();
        id.chars().skip(n.saturating_sub(6)).collect()
    };
    let copied = RwSignal::new(false);
    let whole = id.clone();
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        if let Some(w) = web_sys::window() {
            let _ = w.navigator().clipboard().write_text(&whole);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &whole;
        copied.set(true);
    };
    view! {
        <span class="chip">
            <code title=id.clone()>{format!("…{short}")}</code>
            <button type="button" class="chip-copy" aria-label=format!("Copy id {id}") title="Copy id" on:click=copy data-testid="copy-id">
                {move || if copied.get() {
                    view! { <svg aria-hidden="true" viewBox="0 0 16 16" width="12" height="12"><path d="M3 8.5l3 3 7-7" fill="none" stroke="currentColor" stroke-width="2"/></svg> }.into_any()
                } else {
                    view! { <svg aria-hidden="true" viewBox="0 0 16 16" width="12" height="12"><rect x="5" y="5" width="9" height="9" rx="1.5" fill="none" stroke="currentColor" stroke-width="1.5"/><path d="M11 3.5V3a1 1 0 0 0-1-1H3a1 1 0 0 0-1 1v7a1 1 0 0 0 1 1h.5" fill="none" stroke="currentColor" stroke-width="1.5"/></svg> }.into_any()
                }}
            </button>
        </span>
    }
}

/// A product as people know it: its first image (when it has one) and its title, linking where
/// given; the id when the product is gone.
#[component]
pub fn ProductName(
    title: Option<String>,
    image: Option<String>,
    #[prop(into)] fallback_id: String,
    #[prop(optional, into)] href: Option<String>,
) -> impl IntoView {
    let thumb = image.map(|src| {
        view! { <img class="thumb" src=src alt="" width="32" height="32" loading="lazy" referrerpolicy="no-referrer"/> }
    });
    let name = match title {
        Some(t) => view! { <span class="product-title">{t}</span> }.into_any(),
        None => view! { <span class="muted">"Product " <code>{fallback_id.clone()}</code></span> }
            .into_any(),
    };
    match href {
        Some(href) => view! { <a class="product" href=href>{thumb}{name}</a> }.into_any(),
        None => view! { <span class="product">{thumb}{name}</span> }.into_any(),
    }
}

/// A video status as a coloured badge (the colour is never the only signal: the word is there).
#[component]
pub fn StatusBadge(#[prop(into)] status: Signal<VideoStatus>) -> impl IntoView {
    // One element whose class, attribute and text follow the status, updated in place.
    let name = move || status.get().as_str();
    view! {
        <span class=move || format!("badge badge-{}", name()) data-status=name>{name}</span>
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
pub fn Loaded<T, V, F>(resource: Resource<Result<T, FnError>, SliceJson>, then: F) -> impl IntoView
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

#[cfg(test)]
mod tests {
    use super::{exact, relative};
    use crate::model::Timestamp;

    #[test]
    fn relative_times_read_like_people_say_them() {
        let now = Timestamp::parse("2026-11-29T12:00:00Z").unwrap().millis();
        let ago = |secs: i64| relative(now, now - secs * 1000);
        assert_eq!(ago(10), "just now");
        assert_eq!(ago(-10), "just now");
        assert_eq!(ago(50), "1 min ago");
        assert_eq!(ago(3 * 60 + 10), "3 min ago");
        assert_eq!(ago(2 * 3600 + 59), "2 h ago");
        assert_eq!(ago(86_400), "1 day ago");
        assert_eq!(ago(5 * 86_400), "5 days ago");
        assert_eq!(ago(40 * 86_400), "2026-10-20");
        assert_eq!(ago(-5 * 60), "in 5 min");
    }

    #[test]
    fn exact_times_are_utc_to_the_second() {
        let t = Timestamp::parse("2025-01-17T10:35:42.123Z").unwrap();
        assert_eq!(exact(t), "2025-01-17 10:35:42 UTC");
    }
}
