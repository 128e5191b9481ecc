use crate::components::data::page_data;
use crate::components::live::{throttled, use_live, LiveFeed, LiveKinds, Unseen};
use crate::components::{Ago, CodePill, DataTable, IdChip, Layout, Loaded, Pager, ProductName};
use crate::model::dashboard::EventsView;
use crate::model::filters::{query_string, EventFilter};
use crate::model::{LiveChange, ObjectId, WebhookEvent};
use crate::server_fns::{load_event, load_events, ReplayEvent};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::{use_params_map, use_query_map};
use std::time::Duration;

/// The webhook event log: the filter and page in the URL, newest first, a notice for new events.
#[component]
pub fn EventsPage() -> impl IntoView {
    let query = use_query_map();
    // The URL's query, read into the typed filter once; everything below uses the filter.
    let filter = Memo::new(move |_| {
        let q = query.read();
        let get = |k: &str| q.get(k).filter(|v| !v.is_empty());
        EventFilter {
            page: get("page"),
            limit: get("limit"),
            endpoint: get("endpoint"),
            video_id: get("videoId"),
            from: get("from"),
            to: get("to"),
            cursor: get("cursor"),
        }
    });
    let data = page_data(move || filter.get(), load_events);
    // New events: counted, and the count redrawn once a second.
    let fresh = Unseen::new();
    let show_fresh = throttled(Duration::from_secs(1), move || fresh.flush());
    // A new page of results starts the count again.
    Effect::new(move |_| {
        filter.track();
        fresh.reset();
    });
    // Without a video filter the page shows no new event itself, so the feed sends only counts
    // (of the endpoint filtered to); with one, that video's events (and the page counts them).
    use_live(
        move || {
            let f = filter.get();
            let feed = LiveFeed::new(LiveKinds::Events).endpoint(f.endpoint.as_deref());
            match f.video_id.map(|v| v.parse::<ObjectId>()) {
                None => feed.videos(Vec::new()),
                Some(Ok(id)) => feed.videos(vec![id]),
                // Not an id the feed can narrow to: every event comes, filtered below.
                Some(Err(_)) => feed,
            }
        },
        move |change| {
            if let LiveChange::Event { event } = change {
                let f = filter.get_untracked();
                let endpoint_ok = f
                    .endpoint
                    .map(|e| e.trim_start_matches("/internal") == event.endpoint)
                    .unwrap_or(true);
                let video_ok = f
                    .video_id
                    .map(|v| event.video_id.as_deref() == Some(v.as_str()))
                    .unwrap_or(true);
                if endpoint_ok && video_ok && f.to.is_none() {
                    fresh.add(1);
                    show_fresh();
                }
            }
        },
        move |unseen| {
            let f = filter.get_untracked();
            if f.video_id.is_none() && f.to.is_none() {
                fresh.add(unseen.events);
                show_fresh();
            }
        },
        move || data.refetch(),
    );
    // The same filter from its first page, open-ended.
    let newest_link = move || {
        let f = EventFilter {
            page: None,
            to: None,
            ..filter.get()
        };
        format!("/events{}", query_string(&f))
    };
    let field = move |get: fn(&EventFilter) -> &Option<String>| {
        move || get(&filter.read()).clone().unwrap_or_default()
    };
    let endpoint_is = move |e: &'static str| move || filter.read().endpoint.as_deref() == Some(e);
    // The export of what the filter selects (every page of it), as a file.
    let export_link = move |format: &'static str| {
        move || {
            let f = EventFilter {
                page: None,
                limit: None,
                cursor: None,
                ..filter.get()
            };
            let q = query_string(&f);
            let sep = if q.is_empty() { '?' } else { '&' };
            format!("/api/webhook-events/export{q}{sep}format={format}")
        }
    };

    view! {
        <Layout>
            <div class="page-header">
                <h1>"Webhook events"</h1>
                <div class="page-actions">
                    <a class="btn btn-secondary" href=export_link("csv") download data-testid="export-csv">"Export CSV"</a>
                    <a class="btn btn-secondary" href=export_link("ndjson") download data-testid="export-ndjson">"Export NDJSON"</a>
                </div>
            </div>
            <Form method="GET" action="/events" attr:class="filters" attr:aria-label="Filter events">
                <label>
                    "Endpoint"
                    <select name="endpoint" data-testid="endpoint-filter">
                        <option value="" selected=move || filter.read().endpoint.is_none()>"Any"</option>
                        <option value="/videos/success" selected=endpoint_is("/videos/success")>"/videos/success"</option>
                        <option value="/videos/failure" selected=endpoint_is("/videos/failure")>"/videos/failure"</option>
                    </select>
                </label>
                <label>
                    <span>"Video id " <kbd title="Press / to search">"/"</kbd></span>
                    <input name="videoId" type="search" size="26" value=field(|f| &f.video_id) data-search/>
                </label>
                <label>
                    "From (UTC)"
                    <input name="from" placeholder="2025-01-17T00:00:00Z" size="22" value=field(|f| &f.from)/>
                </label>
                <label>
                    "To (UTC)"
                    <input name="to" placeholder="2025-01-18T00:00:00Z" size="22" value=field(|f| &f.to)/>
                </label>
                <label>
                    "Per page"
                    <select name="limit">
                        {["20", "50", "100"]
                            .into_iter()
                            .map(|l| view! { <option value=l selected=move || filter.read().limit.as_deref().unwrap_or("20") == l>{l}</option> })
                            .collect_view()}
                    </select>
                </label>
                <button type="submit" class="btn btn-primary">"Apply"</button>
                <a href="/events" class="btn btn-secondary">"Clear"</a>
            </Form>
            <div class="live-notice" aria-live="polite">
                <Show when=move || { fresh.count() > 0 }>
                    <a href=newest_link data-testid="new-events" on:click=move |_| fresh.reset()>
                        {move || {
                            let n = fresh.count();
                            format!("{n} new event{} — show the newest", if n == 1 { "" } else { "s" })
                        }}
                    </a>
                </Show>
            </div>
            <Loaded resource=data then=move |loaded: EventsView| {
                let page = loaded.page;
                let p = page.pagination.clone();
                let names: std::collections::HashMap<String, crate::model::VideoRow> = loaded
                    .videos
                    .into_iter()
                    .map(|r| (r.video.id.to_string(), r))
                    .collect();
                let rows = page
                    .events
                    .into_iter()
                    .map(|e| {
                        let video = match e.video_id.clone() {
                            Some(v) => match names.get(&v) {
                                Some(r) => view! {
                                    <ProductName title=r.product_title.clone() image=r.product_image.clone() fallback_id=r.video.product_id.to_string() href=format!("/videos/{v}")/>
                                    <div class="sub muted">{r.workspace_name.clone().unwrap_or_default()}</div>
                                }.into_any(),
                                None => view! { <IdChip id=v/> }.into_any(),
                            },
                            None => view! { <span class="muted">"none"</span> }.into_any(),
                        };
                        view! {
                            <tr data-testid="event-row" data-event-id=e.id.to_string()>
                                <td><a href=format!("/events/{}", e.id) data-testid="event-link">"Details"</a> " " <Ago at=e.created_at/></td>
                                <td><code>{e.endpoint.clone()}</code></td>
                                <td>{video}</td>
                                <td><CodePill code=e.status_code/></td>
                                <td class="wrap">{e.outcome.clone()}</td>
                            </tr>
                        }
                    })
                    .collect_view();
                view! {
                    <DataTable caption="Webhook events, newest first" testid="events-table" columns=&["Received", "Endpoint", "Video", "Status", "Outcome"]>
                        {rows}
                    </DataTable>
                    <Pager path="/events" filter=filter.get_untracked() page=p.page total_pages=p.total_pages total=p.total/>
                }
            }/>
        </Layout>
    }
}

/// One event: the payload pretty-printed, the outcome, and a link to its video.
#[component]
pub fn EventDetailPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let data = page_data(id, load_event);
    let replay = ServerAction::<ReplayEvent>::new();
    view! {
        <Layout>
            <p><a href="/events">"← All events"</a></p>
            <Loaded resource=data then=move |e: WebhookEvent| {
                let pretty = serde_json::to_string_pretty(&e.payload).unwrap_or_default();
                view! {
                    <h1>"Webhook event"</h1>
                    <section class="card" data-testid="event-detail">
                        <dl class="details">
                            <dt>"Id"</dt><dd><code>{e.id.to_string()}</code></dd>
                            <dt>"Endpoint"</dt><dd><code>{e.endpoint.clone()}</code></dd>
                            <dt>"Received"</dt><dd><Ago at=e.created_at/></dd>
                            <dt>"Answer"</dt>
                            <dd>
                                <CodePill code=e.status_code/>
                                " "
                                <span data-testid="event-outcome">{e.outcome.clone()}</span>
                            </dd>
                            <dt>"Video"</dt>
                            <dd>
                                {match e.video_id.clone() {
                                    Some(v) if v.parse::<crate::model::ObjectId>().is_ok() => view! {
                                        <a href=format!("/videos/{v}") data-testid="event-video-link"><code>{v.clone()}</code></a>
                                    }.into_any(),
                                    Some(v) => view! { <code>{v}</code> }.into_any(),
                                    None => view! { <span class="muted">"none in the payload"</span> }.into_any(),
                                }}
                            </dd>
                        </dl>
                        <h2>"Payload"</h2>
                        <pre class="payload" data-testid="event-payload" tabindex="0">{pretty}</pre>
                        <h2>"Replay"</h2>
                        <p class="muted">"Applies this call again through the normal path (the state rules apply) and records the replay as an event of its own."</p>
                        <ActionForm action=replay attr:class="inline-form">
                            <input type="hidden" name="id" value=e.id.to_string()/>
                            <button type="submit" class="btn btn-secondary" data-testid="replay" disabled=move || replay.pending().get()>"Replay"</button>
                        </ActionForm>
                        <div aria-live="polite" data-testid="replay-result">
                            {move || replay.value().get().map(|r| match r {
                                Ok(done) => view! {
                                    <p>
                                        "Replayed: " <CodePill code=done.status_code/> " " {done.outcome.clone()} " — "
                                        <a href=format!("/events/{}", done.event_id) data-testid="replay-event-link">"the replay's event"</a>
                                    </p>
                                }.into_any(),
                                Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                            })}
                        </div>
                    </section>
                }
            }/>
        </Layout>
    }
}
