use crate::components::live::use_live;
use crate::components::{DataTable, Layout, Loaded, Pager, StatusBadge};
use crate::model::error::FnError;
use crate::model::filters::VideoFilter;
use crate::model::{AiVideo, LiveChange, ObjectId, VideoPage, VideoStatus};
use crate::server_fns::{load_videos, MarkVideoFailed, RetryVideo, VIDEOS_PER_PAGE};
use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;
use std::collections::HashMap;

/// Recent videos with live status badges, filters, and the superadmin's actions.
#[component]
pub fn VideosPage() -> impl IntoView {
    let query = use_query_map();
    // The URL's query, read into the typed filter once; everything below uses the filter.
    let filter = Memo::new(move |_| {
        let q = query.read();
        let get = |k: &str| q.get(k).filter(|v| !v.is_empty());
        VideoFilter {
            page: get("page"),
            limit: Some(VIDEOS_PER_PAGE.into()),
            status: get("status"),
            workspace_id: get("workspaceId"),
            video_id: get("videoId"),
            stuck: get("stuck"),
            cursor: get("cursor"),
        }
    });
    let param = move |get: fn(&VideoFilter) -> &Option<String>| get(&filter.read()).clone();
    let data = Resource::new(move || filter.get(), load_videos);
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
    // The row actions: server actions, whose answers overlay the row (or say why not).
    let action_error = RwSignal::new(None::<String>);
    let mark_failed = ServerAction::<MarkVideoFailed>::new();
    let retry = ServerAction::<RetryVideo>::new();
    let show = move |r: Result<AiVideo, FnError>| match r {
        Ok(v) => live.update(|m| {
            m.insert(v.id, v);
        }),
        Err(e) => action_error.set(Some(e.to_string())),
    };
    Effect::new(move |_| {
        if let Some(r) = mark_failed.value().get() {
            show(r);
        }
    });
    Effect::new(move |_| {
        if let Some(r) = retry.value().get() {
            show(r);
        }
    });

    view! {
        <Layout>
            <div class="page-header">
                <h1>"Videos"</h1>
            </div>
            <Form method="GET" action="/videos" attr:class="filters" attr:aria-label="Filter videos">
                <label>
                    "Status"
                    <select name="status">
                        <option value="" selected=move || param(|f| &f.status).is_none()>"Any"</option>
                        {VideoStatus::ALL
                            .iter()
                            .map(|s| {
                                let s = s.as_str();
                                view! { <option value=s selected=move || param(|f| &f.status).as_deref() == Some(s)>{s}</option> }
                            })
                            .collect_view()}
                    </select>
                </label>
                <label>
                    "Workspace id"
                    <input name="workspaceId" inputmode="text" size="26" value=move || param(|f| &f.workspace_id).unwrap_or_default()/>
                </label>
                <label>
                    "Video id"
                    <input name="videoId" type="search" size="26" value=move || param(|f| &f.video_id).unwrap_or_default() data-testid="video-search"/>
                </label>
                <label class="checkbox">
                    <input type="checkbox" name="stuck" value="1" checked=move || param(|f| &f.stuck).is_some()/>
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
            <Loaded resource=data then=move |page: VideoPage| {
                    match page {
                        page if page.videos.is_empty() => view! {
                            <p class="card muted" data-testid="no-videos">"No videos match."</p>
                        }.into_any(),
                        page => {
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
                                        if fail {
                                            mark_failed.dispatch(MarkVideoFailed { id: id.to_string() });
                                        } else {
                                            retry.dispatch(RetryVideo { id: id.to_string() });
                                        }
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
                                <DataTable caption="Videos, newest first" testid="videos-table" columns=&["Video", "Status", "Template", "Product", "Workspace", "Updated", "Error", "Actions"]>
                                    {rows}
                                </DataTable>
                                <Pager path="/videos" filter=VideoFilter { limit: None, ..filter.get_untracked() } page=p.page total_pages=p.total_pages total=p.total/>
                            }
                            .into_any()
                        }
                    }
            }/>
        </Layout>
    }
}
