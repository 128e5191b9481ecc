use crate::components::live::use_live;
use crate::components::{query_string, CallError, Layout, Pager};
use crate::model::LiveChange;
use crate::server_fns::{load_event, load_events};
use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::{use_params_map, use_query_map};

/// The webhook event log: filters and page in the URL, newest first, a notice for new events.
#[component]
pub fn EventsPage() -> impl IntoView {
    let query = use_query_map();
    let param = move |k: &str| query.read().get(k).filter(|v| !v.is_empty());
    let filters = move || {
        (
            param("page"),
            param("limit"),
            param("endpoint"),
            param("videoId"),
            param("from"),
            param("to"),
        )
    };
    let data = Resource::new(filters, |(page, limit, endpoint, video_id, from, to)| {
        load_events(page, limit, endpoint, video_id, from, to)
    });
    let fresh = RwSignal::new(0u32);
    // A new page of results starts the count again.
    Effect::new(move |_| {
        filters();
        fresh.set(0);
    });
    use_live(
        move |change| {
            if let LiveChange::Event { event } = change {
                let endpoint_ok = param("endpoint")
                    .map(|e| e.trim_start_matches("/internal") == event.endpoint)
                    .unwrap_or(true);
                let video_ok = param("videoId")
                    .map(|v| event.video_id.as_deref() == Some(v.as_str()))
                    .unwrap_or(true);
                let open_ended = param("to").is_none();
                if endpoint_ok && video_ok && open_ended {
                    fresh.update(|n| *n += 1);
                }
            }
        },
        move || data.refetch(),
    );
    let newest_link = move || {
        format!(
            "/events{}",
            query_string(&[
                ("limit", param("limit")),
                ("endpoint", param("endpoint")),
                ("videoId", param("videoId")),
                ("from", param("from")),
            ])
        )
    };

    view! {
        <Layout>
            <div class="page-header">
                <h1>"Webhook events"</h1>
            </div>
            <Form method="GET" action="/events" attr:class="filters" attr:aria-label="Filter events">
                <label>
                    "Endpoint"
                    <select name="endpoint" data-testid="endpoint-filter">
                        <option value="" selected=move || param("endpoint").is_none()>"Any"</option>
                        <option value="/videos/success" selected=move || param("endpoint").as_deref() == Some("/videos/success")>"/videos/success"</option>
                        <option value="/videos/failure" selected=move || param("endpoint").as_deref() == Some("/videos/failure")>"/videos/failure"</option>
                    </select>
                </label>
                <label>
                    "Video id"
                    <input name="videoId" type="search" size="26" value=move || param("videoId").unwrap_or_default()/>
                </label>
                <label>
                    "From (UTC)"
                    <input name="from" placeholder="2025-01-17T00:00:00Z" size="22" value=move || param("from").unwrap_or_default()/>
                </label>
                <label>
                    "To (UTC)"
                    <input name="to" placeholder="2025-01-18T00:00:00Z" size="22" value=move || param("to").unwrap_or_default()/>
                </label>
                <label>
                    "Per page"
                    <select name="limit">
                        {["20", "50", "100"]
                            .into_iter()
                            .map(|l| view! { <option value=l selected=move || param("limit").as_deref().unwrap_or("20") == l>{l}</option> })
                            .collect_view()}
                    </select>
                </label>
                <button type="submit" class="btn btn-primary">"Apply"</button>
                <a href="/events" class="btn btn-secondary">"Clear"</a>
            </Form>
            <div class="live-notice" aria-live="polite">
                <Show when=move || { fresh.get() > 0 }>
                    <a href=newest_link data-testid="new-events" on:click=move |_| fresh.set(0)>
                        {move || {
                            let n = fresh.get();
                            format!("{n} new event{} — show the newest", if n == 1 { "" } else { "s" })
                        }}
                    </a>
                </Show>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <CallError error=e/> }.into_any(),
                        Ok(page) => {
                            let p = page.pagination.clone();
                            let rows = page
                                .events
                                .into_iter()
                                .map(|e| {
                                    let ok = (200..300).contains(&e.status_code);
                                    view! {
                                        <tr data-testid="event-row" data-event-id=e.id.to_string()>
                                            <td><a href=format!("/events/{}", e.id) data-testid="event-link"><time>{e.created_at.to_string()}</time></a></td>
                                            <td><code>{e.endpoint.clone()}</code></td>
                                            <td><code class="id">{e.video_id.clone().unwrap_or_default()}</code></td>
                                            <td><span class=if ok { "code code-ok" } else { "code code-bad" }>{e.status_code}</span></td>
                                            <td class="wrap">{e.outcome.clone()}</td>
                                        </tr>
                                    }
                                })
                                .collect_view();
                            view! {
                                <div class="table-wrap">
                                    <table class="table" data-testid="events-table">
                                        <caption class="sr-only">"Webhook events, newest first"</caption>
                                        <thead>
                                            <tr>
                                                <th scope="col">"Received"</th>
                                                <th scope="col">"Endpoint"</th>
                                                <th scope="col">"Video"</th>
                                                <th scope="col">"Status"</th>
                                                <th scope="col">"Outcome"</th>
                                            </tr>
                                        </thead>
                                        <tbody>{rows}</tbody>
                                    </table>
                                </div>
                                <Pager
                                    path="/events"
                                    page=p.page
                                    total_pages=p.total_pages
                                    total=p.total
                                    keep=vec![
                                        ("limit", param("limit")),
                                        ("endpoint", param("endpoint")),
                                        ("videoId", param("videoId")),
                                        ("from", param("from")),
                                        ("to", param("to")),
                                    ]
                                />
                            }
                            .into_any()
                        }
                    }
                })}
            </Transition>
        </Layout>
    }
}

/// One event: the payload pretty-printed, the outcome, and a link to its video.
#[component]
pub fn EventDetailPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let data = Resource::new(id, load_event);
    view! {
        <Layout>
            <p><a href="/events">"← All events"</a></p>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <CallError error=e/> }.into_any(),
                        Ok(e) => {
                            let pretty = serde_json::to_string_pretty(&e.payload).unwrap_or_default();
                            let ok = (200..300).contains(&e.status_code);
                            view! {
                                <h1>"Webhook event"</h1>
                                <section class="card" data-testid="event-detail">
                                    <dl class="details">
                                        <dt>"Id"</dt><dd><code>{e.id.to_string()}</code></dd>
                                        <dt>"Endpoint"</dt><dd><code>{e.endpoint.clone()}</code></dd>
                                        <dt>"Received"</dt><dd><time>{e.created_at.to_string()}</time></dd>
                                        <dt>"Answer"</dt>
                                        <dd>
                                            <span class=if ok { "code code-ok" } else { "code code-bad" }>{e.status_code}</span>
                                            " "
                                            <span data-testid="event-outcome">{e.outcome.clone()}</span>
                                        </dd>
                                        <dt>"Video"</dt>
                                        <dd>
                                            {match e.video_id.clone() {
                                                Some(v) => view! {
                                                    <a href=format!("/videos?videoId={v}") data-testid="event-video-link"><code>{v.clone()}</code></a>
                                                }.into_any(),
                                                None => view! { <span class="muted">"none in the payload"</span> }.into_any(),
                                            }}
                                        </dd>
                                    </dl>
                                    <h2>"Payload"</h2>
                                    <pre class="payload" data-testid="event-payload" tabindex="0">{pretty}</pre>
                                </section>
                            }
                            .into_any()
                        }
                    }
                })}
            </Suspense>
        </Layout>
    }
}
