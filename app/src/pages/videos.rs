use crate::components::live::use_live;
use crate::components::{CallError, Layout, Pager, StatusBadge};
use crate::model::{AiVideo, LiveChange, ObjectId, VideoStatus};
use crate::server_fns::{error_message, load_videos, mark_video_failed, retry_video};
use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;
use std::collections::HashMap;

/// Recent videos with live status badges, filters, and the superadmin's actions.
#[component]
pub fn VideosPage() -> impl IntoView {
    let query = use_query_map();
    let param = move |k: &str| query.read().get(k).filter(|v| !v.is_empty());
    let filters = move || {
        (
            param("page"),
            param("status"),
            param("workspaceId"),
            param("videoId"),
            param("stuck"),
        )
    };
    let data = Resource::new(filters, |(page, status, ws, vid, stuck)| {
        load_videos(page, status, ws, vid, stuck)
    });
    // Live updates overlay the rows the server sent; a re-read clears them.
    let live: RwSignal<HashMap<ObjectId, AiVideo>> = RwSignal::new(HashMap::new());
    let new_videos = RwSignal::new(0u32);
    use_live(
        move |change| {
            if let LiveChange::Video { video } = change {
                let known = live.with_untracked(|m| m.contains_key(&video.id))
                    || data
                        .get_untracked()
                        .and_then(|r| r.ok())
                        .is_some_and(|p| p.videos.iter().any(|r| r.video.id == video.id));
                if known {
                    live.update(|m| {
                        m.insert(video.id, video);
                    });
                } else {
                    new_videos.update(|n| *n += 1);
                }
            }
        },
        move || {
            live.update(|m| m.clear());
            new_videos.set(0);
            data.refetch();
        },
    );
    let action_error = RwSignal::new(None::<String>);

    view! {
        <Layout>
            <div class="page-header">
                <h1>"Videos"</h1>
            </div>
            <Form method="GET" action="/videos" attr:class="filters" attr:aria-label="Filter videos">
                <label>
                    "Status"
                    <select name="status">
                        <option value="" selected=move || param("status").is_none()>"Any"</option>
                        {VideoStatus::ALL
                            .iter()
                            .map(|s| {
                                let s = s.as_str();
                                view! { <option value=s selected=move || param("status").as_deref() == Some(s)>{s}</option> }
                            })
                            .collect_view()}
                    </select>
                </label>
                <label>
                    "Workspace id"
                    <input name="workspaceId" inputmode="text" size="26" value=move || param("workspaceId").unwrap_or_default()/>
                </label>
                <label>
                    "Video id"
                    <input name="videoId" type="search" size="26" value=move || param("videoId").unwrap_or_default() data-testid="video-search"/>
                </label>
                <label class="checkbox">
                    <input type="checkbox" name="stuck" value="1" checked=move || param("stuck").is_some()/>
                    "Stuck only"
                </label>
                <button type="submit" class="btn btn-primary">"Apply"</button>
                <a href="/videos" class="btn btn-secondary">"Clear"</a>
            </Form>
            <div class="live-notice" aria-live="polite">
                <Show when=move || { new_videos.get() > 0 }>
                    <a href="/videos" data-testid="new-videos">
                        {move || format!("{} new video(s) — show", new_videos.get())}
                    </a>
                </Show>
            </div>
            <Show when=move || action_error.get().is_some()>
                <p class="notice notice-error" role="alert">{move || action_error.get().unwrap_or_default()}</p>
            </Show>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <CallError error=e/> }.into_any(),
                        Ok(page) if page.videos.is_empty() => view! {
                            <p class="card muted" data-testid="no-videos">"No videos match."</p>
                        }.into_any(),
                        Ok(page) => {
                            let p = page.pagination.clone();
                            let rows = page
                                .videos
                                .into_iter()
                                .map(|row| {
                                    let id = row.video.id;
                                    let base = row.video.clone();
                                    let stuck_at_load = row.stuck;
                                    let current = move || live.with(|m| m.get(&id).cloned()).unwrap_or_else(|| base.clone());
                                    let current2 = current.clone();
                                    let current3 = current.clone();
                                    let current4 = current.clone();
                                    let status = Memo::new(move |_| current().status);
                                    let run = move |fail: bool| {
                                        action_error.set(None);
                                        leptos::task::spawn_local(async move {
                                            let r = if fail { mark_video_failed(id.to_string()).await } else { retry_video(id.to_string()).await };
                                            match r {
                                                Ok(v) => live.update(|m| { m.insert(v.id, v); }),
                                                Err(e) => action_error.set(Some(error_message(&e))),
                                            }
                                        });
                                    };
                                    view! {
                                        <tr data-video-id=id.to_string() data-testid="video-row">
                                            <td><code class="id">{id.to_string()}</code></td>
                                            <td>
                                                {move || view! { <StatusBadge status=status.get()/> }}
                                                <Show when=move || stuck_at_load && status.get() == VideoStatus::Generating>
                                                    <span class="badge badge-stuck" title="Generating for longer than VIDEO_TIMEOUT_MINUTES">"stuck"</span>
                                                </Show>
                                            </td>
                                            <td>{move || current2().template}</td>
                                            <td><code class="id">{row.video.product_id.to_string()}</code></td>
                                            <td><code class="id">{row.video.workspace_id.to_string()}</code></td>
                                            <td><time>{move || current3().updated_at.to_string()}</time></td>
                                            <td class="wrap">{move || current4().error.unwrap_or_default()}</td>
                                            <td class="actions">
                                                <a href=format!("/events?videoId={id}") class="btn btn-link">"Events"</a>
                                                <Show when=move || matches!(status.get(), VideoStatus::Generating | VideoStatus::Pending)>
                                                    <button type="button" class="btn btn-secondary" on:click=move |_| run(true) data-testid="mark-failed">"Mark failed"</button>
                                                </Show>
                                                <Show when=move || status.get() == VideoStatus::Failed>
                                                    <button type="button" class="btn btn-secondary" on:click=move |_| run(false) data-testid="retry">"Retry"</button>
                                                </Show>
                                            </td>
                                        </tr>
                                    }
                                })
                                .collect_view();
                            view! {
                                <div class="table-wrap">
                                    <table class="table" data-testid="videos-table">
                                        <caption class="sr-only">"Videos, newest first"</caption>
                                        <thead>
                                            <tr>
                                                <th scope="col">"Video"</th>
                                                <th scope="col">"Status"</th>
                                                <th scope="col">"Template"</th>
                                                <th scope="col">"Product"</th>
                                                <th scope="col">"Workspace"</th>
                                                <th scope="col">"Updated"</th>
                                                <th scope="col">"Error"</th>
                                                <th scope="col">"Actions"</th>
                                            </tr>
                                        </thead>
                                        <tbody>{rows}</tbody>
                                    </table>
                                </div>
                                <Pager
                                    path="/videos"
                                    page=p.page
                                    total_pages=p.total_pages
                                    total=p.total
                                    keep=vec![
                                        ("status", param("status")),
                                        ("workspaceId", param("workspaceId")),
                                        ("videoId", param("videoId")),
                                        ("stuck", param("stuck")),
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
