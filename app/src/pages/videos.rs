use crate::components::data::page_data;
use crate::components::live::{throttled, use_live, LiveFeed, LiveKinds, Unseen};
use crate::components::{
    human_ms, Ago, DataTable, IdChip, Layout, Loaded, Pager, ProductName, StatusBadge,
};
use crate::model::dashboard::{BulkAction, BulkActionRequest, BulkActionResult, VideoDetail};
use crate::model::error::FnError;
use crate::model::filters::VideoFilter;
use crate::model::{AiVideo, LiveChange, ObjectId, VideoPage, VideoRow, VideoStatus, VideoSummary};
use crate::server_fns::{
    bulk_video_action, load_video_detail, load_videos, MarkVideoFailed, RetryVideo, VIDEOS_PER_PAGE,
};
use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::{use_params_map, use_query_map};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// Live changes (and the answers of actions) laid over the videos the server sent, one signal per
/// video: a change wakes the row that shows that video and nothing else. (With one map for the
/// page, every row re-checked it on every change, and a page gets changes by the thousand.) A
/// re-read clears them. A video's signal, once made, stays for the page's life (a row may hold it).
#[derive(Clone, Copy)]
struct Overlay(StoredValue<HashMap<ObjectId, ArcRwSignal<Option<AiVideo>>>>);

impl Overlay {
    fn new() -> Self {
        Self(StoredValue::new(HashMap::new()))
    }

    /// The signal of video `id`, made on first use.
    fn slot(self, id: ObjectId) -> ArcRwSignal<Option<AiVideo>> {
        if let Some(slot) = self.0.with_value(|m| m.get(&id).cloned()) {
            return slot;
        }
        let slot = ArcRwSignal::new(None);
        self.0.update_value(|m| {
            m.insert(id, slot.clone());
        });
        slot
    }

    /// The video as the last change left it, if one did (untracked).
    fn latest(self, id: ObjectId) -> Option<AiVideo> {
        self.0
            .with_value(|m| m.get(&id).and_then(|slot| slot.get_untracked()))
    }

    fn set(self, video: AiVideo) {
        self.slot(video.id).set(Some(video));
    }

    /// Forgets every change; only the rows that had one are woken.
    fn clear(self) {
        let slots: Vec<_> = self.0.with_value(|m| m.values().cloned().collect());
        for slot in slots {
            if slot.with_untracked(Option::is_some) {
                slot.set(None);
            }
        }
    }
}

/// The video as the server sent it, or as a newer live change (or action) left it: the newest
/// wins, and the record read from the server wins a tie (it carries every field).
fn live_video(live: Overlay, sent: AiVideo) -> Memo<AiVideo> {
    let slot = live.slot(sent.id);
    Memo::new(move |_| match slot.get() {
        Some(v) if v.updated_at > sent.updated_at => v,
        _ => sent.clone(),
    })
}

/// Lays a live summary over the video it tells of, if the page shows it (in the overlay already,
/// else as `loaded` finds it among what was read); whether it did.
fn overlay_summary(
    live: Overlay,
    summary: &VideoSummary,
    loaded: impl FnOnce() -> Option<AiVideo>,
) -> bool {
    let Some(shown) = live.latest(summary.id).or_else(loaded) else {
        return false;
    };
    live.set(summary.applied_to(&shown));
    true
}

/// The single actions (mark failed, retry) as server actions whose answers overlay the video, or
/// say why not.
#[derive(Clone, Copy)]
struct RowActions {
    mark_failed: ServerAction<MarkVideoFailed>,
    retry: ServerAction<RetryVideo>,
    error: RwSignal<Option<String>>,
}

impl RowActions {
    fn new(live: Overlay) -> Self {
        let this = Self {
            mark_failed: ServerAction::new(),
            retry: ServerAction::new(),
            error: RwSignal::new(None),
        };
        let show = move |r: Result<AiVideo, FnError>| match r {
            Ok(v) => live.set(v),
            Err(e) => this.error.set(Some(e.to_string())),
        };
        Effect::new(move |_| {
            if let Some(r) = this.mark_failed.value().get() {
                show(r);
            }
        });
        Effect::new(move |_| {
            if let Some(r) = this.retry.value().get() {
                show(r);
            }
        });
        this
    }

    fn run(self, id: ObjectId, fail: bool) {
        self.error.set(None);
        if fail {
            self.mark_failed
                .dispatch(MarkVideoFailed { id: id.to_string() });
        } else {
            self.retry.dispatch(RetryVideo { id: id.to_string() });
        }
    }

    fn pending(self) -> bool {
        self.mark_failed.pending().get() || self.retry.pending().get()
    }
}

/// The buttons of one video's actions, shown while they apply to its status.
#[component]
fn VideoActions(
    id: ObjectId,
    status: Memo<VideoStatus>,
    actions: RowActions,
    #[prop(optional)] big: bool,
) -> impl IntoView {
    let class = if big {
        "btn btn-primary"
    } else {
        "btn btn-secondary"
    };
    view! {
        <Show when=move || matches!(status.get(), VideoStatus::Generating | VideoStatus::Pending)>
            <button type="button" class=class on:click=move |_| actions.run(id, true) disabled=move || actions.pending() data-testid="mark-failed">"Mark failed"</button>
        </Show>
        <Show when=move || status.get() == VideoStatus::Failed>
            <button type="button" class=class on:click=move |_| actions.run(id, false) disabled=move || actions.pending() data-testid="retry">"Retry"</button>
        </Show>
    }
}

/// What the bulk bar is doing.
#[derive(Clone, Debug, PartialEq)]
enum Bulk {
    Idle,
    /// Asking the server how many videos the action takes.
    Counting(BulkAction),
    /// Waiting for the superadmin's confirmation of `n` videos.
    Confirm(BulkAction, u64),
    /// `done` of `of` handled so far.
    Running {
        action: BulkAction,
        handled: u64,
        of: u64,
    },
    Finished(BulkAction, BulkActionResult),
    Failed(String),
}

/// Recent videos with live status badges, filters, the single and the bulk actions.
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
            error: get("error"),
        }
    });
    let param = move |get: fn(&VideoFilter) -> &Option<String>| get(&filter.read()).clone();
    let data = page_data(move || filter.get(), load_videos);
    let live = Overlay::new();
    // Changes to videos this page does not show: counted, and the count redrawn once a second.
    let new_videos = Unseen::new();
    let show_new = throttled(Duration::from_secs(1), move || new_videos.flush());
    // The feed brings the changes of the rows shown (the others only as a count); while the page is
    // read again, the rows are the last ones read.
    let shown = Memo::new(move |last: Option<&Vec<ObjectId>>| {
        data.with(|r| match r {
            Some(Ok(p)) => p.videos.iter().map(|r| r.video.id).collect(),
            _ => last.cloned().unwrap_or_default(),
        })
    });
    use_live(
        move || LiveFeed::new(LiveKinds::Videos).videos(shown.get()),
        move |change| {
            if let LiveChange::Video { video: summary } = change {
                // A row on this page takes the summary's status, error and time; the rest of
                // the row does not change while a video moves on. Only the row's video is
                // copied, not the page (changes arrive by the thousand).
                let loaded = || {
                    data.with_untracked(|r| match r {
                        Some(Ok(p)) => p
                            .videos
                            .iter()
                            .find(|r| r.video.id == summary.id)
                            .map(|r| r.video.clone()),
                        _ => None,
                    })
                };
                if !overlay_summary(live, &summary, loaded) {
                    new_videos.add(1);
                    show_new();
                }
            }
        },
        move |unseen| {
            new_videos.add(unseen.videos);
            show_new();
        },
        move || {
            live.clear();
            new_videos.reset();
            data.refetch();
        },
    );
    let actions = RowActions::new(live);

    // Selection: ids of this page, or every video matching the filter.
    let selected = RwSignal::new(BTreeSet::<ObjectId>::new());
    let all_matching = RwSignal::new(false);
    let bulk = RwSignal::new(Bulk::Idle);
    Effect::new(move |_| {
        filter.track();
        selected.set(BTreeSet::new());
        all_matching.set(false);
    });
    let request = move |action: BulkAction, dry_run: bool| {
        let mut req = BulkActionRequest {
            action,
            video_ids: None,
            filter: None,
            cursor: None,
            dry_run,
        };
        if all_matching.get_untracked() {
            req.filter = Some(VideoFilter {
                page: None,
                cursor: None,
                limit: None,
                ..filter.get_untracked()
            });
        } else {
            req.video_ids = Some(
                selected
                    .get_untracked()
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            );
        }
        req
    };
    let ask = move |action: BulkAction| {
        bulk.set(Bulk::Counting(action));
        leptos::task::spawn_local(async move {
            bulk.set(match bulk_video_action(request(action, true)).await {
                Ok(r) => Bulk::Confirm(action, r.matched),
                Err(e) => Bulk::Failed(e.to_string()),
            });
        });
    };
    let confirm = move |action: BulkAction, of: u64| {
        bulk.set(Bulk::Running {
            action,
            handled: 0,
            of,
        });
        leptos::task::spawn_local(async move {
            let outcome = run_bulk(request(action, false), of, move |handled| {
                bulk.set(Bulk::Running {
                    action,
                    handled,
                    of,
                })
            })
            .await;
            bulk.set(match outcome {
                Ok(r) => Bulk::Finished(action, r),
                Err(e) => Bulk::Failed(e.to_string()),
            });
            selected.set(BTreeSet::new());
            all_matching.set(false);
            live.clear();
            data.refetch();
        });
    };

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
                    <span>"Video id " <kbd title="Press / to search">"/"</kbd></span>
                    <input name="videoId" type="search" size="26" value=move || param(|f| &f.video_id).unwrap_or_default() data-testid="video-search" data-search/>
                </label>
                <Show when=move || param(|f| &f.error).is_some()>
                    <label>
                        "Error starts with"
                        <input name="error" size="26" value=move || param(|f| &f.error).unwrap_or_default() data-testid="error-filter"/>
                    </label>
                </Show>
                <label class="checkbox">
                    <input type="checkbox" name="stuck" value="1" checked=move || param(|f| &f.stuck).is_some()/>
                    "Stuck only"
                </label>
                <button type="submit" class="btn btn-primary">"Apply"</button>
                <a href="/videos" class="btn btn-secondary">"Clear"</a>
            </Form>
            <div class="live-notice" aria-live="polite">
                <Show when=move || { new_videos.count() > 0 }>
                    <a href="/videos" data-testid="new-videos">
                        {move || format!("{} new video(s) — show", new_videos.count())}
                    </a>
                </Show>
            </div>
            <Show when=move || actions.error.get().is_some()>
                <p class="notice notice-error" role="alert">{move || actions.error.get().unwrap_or_default()}</p>
            </Show>
            <BulkBar selected all_matching bulk ask confirm total=Signal::derive(move || {
                data.get().and_then(|r| r.ok()).map(|p| p.pagination.total).unwrap_or(0)
            })/>
            <Loaded resource=data then=move |page: VideoPage| {
                match page {
                    page if page.videos.is_empty() => view! {
                        <p class="card muted" data-testid="no-videos">"No videos match."</p>
                    }.into_any(),
                    page => {
                        let p = page.pagination.clone();
                        let ids: Vec<ObjectId> = page.videos.iter().map(|r| r.video.id).collect();
                        let page_ids = ids.clone();
                        let whole_page = move || {
                            let s = selected.read();
                            !page_ids.is_empty() && page_ids.iter().all(|id| s.contains(id))
                        };
                        let whole_page2 = whole_page.clone();
                        let more = p.total > ids.len() as u64;
                        let total = p.total;
                        let rows = page
                            .videos
                            .into_iter()
                            .map(|row| view! { <VideoListRow row live actions selected all_matching/> })
                            .collect_view();
                        view! {
                            <div class="select-all">
                                <label class="checkbox">
                                    <input
                                        type="checkbox"
                                        data-testid="select-page"
                                        prop:checked=whole_page
                                        on:change=move |ev| {
                                            let on = event_target_checked(&ev);
                                            all_matching.set(false);
                                            selected.update(|s| {
                                                for id in &ids {
                                                    if on { s.insert(*id); } else { s.remove(id); }
                                                }
                                            });
                                        }
                                    />
                                    "Select this page"
                                </label>
                                <Show when=move || more && whole_page2() && !all_matching.get()>
                                    <button type="button" class="btn btn-link" data-testid="select-all-matching" on:click=move |_| all_matching.set(true)>
                                        {format!("Select all {total} matching the filter")}
                                    </button>
                                </Show>
                            </div>
                            <DataTable caption="Videos, newest first" testid="videos-table" columns=&["", "Product", "Status", "Workspace", "Updated", "Error", "Actions"]>
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

/// Runs a confirmed bulk action batch by batch (25 ids, or the server's batch of a filter),
/// reporting how many were handled after each, and adds the answers up.
async fn run_bulk(
    req: BulkActionRequest,
    of: u64,
    progress: impl Fn(u64) + 'static,
) -> Result<BulkActionResult, FnError> {
    let mut total = BulkActionResult::default();
    let mut add = |r: BulkActionResult| {
        total.matched += r.matched;
        total.done += r.done;
        total.skipped += r.skipped;
        total.errors.extend(r.errors);
        progress(total.matched.min(of.max(total.matched)));
    };
    if let Some(ids) = req.video_ids.clone() {
        for chunk in ids.chunks(25) {
            let r = bulk_video_action(BulkActionRequest {
                video_ids: Some(chunk.to_vec()),
                ..req.clone()
            })
            .await?;
            add(r);
        }
    } else {
        let mut cursor = None;
        // Bounded: a filter is taken 50 at a time, at most 200 batches (10,000 videos) per click.
        for _ in 0..200 {
            let r = bulk_video_action(BulkActionRequest {
                cursor: cursor.clone(),
                ..req.clone()
            })
            .await?;
            cursor = r.next_cursor.clone();
            add(r);
            if cursor.is_none() {
                break;
            }
        }
    }
    Ok(total)
}

/// The selection, the bulk actions, their confirmation, progress and result.
#[component]
fn BulkBar(
    selected: RwSignal<BTreeSet<ObjectId>>,
    all_matching: RwSignal<bool>,
    bulk: RwSignal<Bulk>,
    ask: impl Fn(BulkAction) + Copy + Send + Sync + 'static,
    confirm: impl Fn(BulkAction, u64) + Copy + Send + Sync + 'static,
    total: Signal<u64>,
) -> impl IntoView {
    let chosen = move || {
        if all_matching.get() {
            format!("All {} matching the filter", total.get())
        } else {
            format!("{} selected", selected.read().len())
        }
    };
    let active = move || all_matching.get() || !selected.read().is_empty();
    let busy = move || matches!(bulk.get(), Bulk::Counting(_) | Bulk::Running { .. });
    view! {
        <section class="bulk-bar" aria-label="Bulk actions" data-testid="bulk-bar" class:hidden=move || !active() && bulk.get() == Bulk::Idle>
            <Show when=active>
                <span data-testid="bulk-selected">{chosen}</span>
                <button type="button" class="btn btn-secondary" disabled=busy on:click=move |_| ask(BulkAction::Retry) data-testid="bulk-retry">"Retry failed"</button>
                <button type="button" class="btn btn-secondary" disabled=busy on:click=move |_| ask(BulkAction::MarkFailed) data-testid="bulk-mark-failed">"Mark stuck failed"</button>
                <button type="button" class="btn btn-link" disabled=busy on:click=move |_| { selected.set(BTreeSet::new()); all_matching.set(false); bulk.set(Bulk::Idle); }>"Clear selection"</button>
            </Show>
            <div aria-live="polite" data-testid="bulk-status">
                {move || match bulk.get() {
                    Bulk::Idle => ().into_any(),
                    Bulk::Counting(_) => view! { <span class="muted">"Counting…"</span> }.into_any(),
                    Bulk::Confirm(action, 0) => view! {
                        <span data-testid="bulk-nothing">{format!("Nothing to {}: no selected video is {}.", action.verb(), eligible(action))}</span>
                        <button type="button" class="btn btn-link" on:click=move |_| bulk.set(Bulk::Idle)>"OK"</button>
                    }.into_any(),
                    Bulk::Confirm(action, n) => view! {
                        <div class="confirm" role="alertdialog" aria-label="Confirm the bulk action" data-testid="bulk-confirm">
                            <p>{confirm_text(action, n)}</p>
                            <button type="button" class="btn btn-primary" on:click=move |_| confirm(action, n) data-testid="bulk-confirm-yes" autofocus>
                                {format!("Yes, {} {n}", action.verb())}
                            </button>
                            <button type="button" class="btn btn-secondary" on:click=move |_| bulk.set(Bulk::Idle)>"Cancel"</button>
                        </div>
                    }.into_any(),
                    Bulk::Running { action, handled, of } => view! {
                        <label class="progress-label">
                            {format!("Working: {} {handled} of {of}…", action.verb())}
                            <progress max=of.max(1) value=handled data-testid="bulk-progress"></progress>
                        </label>
                    }.into_any(),
                    Bulk::Finished(action, r) => {
                        let errors = r.errors.len();
                        view! {
                            <div class="bulk-result" data-testid="bulk-result">
                                <p>{format!("{}: {} done, {errors} refused, {} skipped.", capitalised(action.verb()), r.done, r.skipped)}</p>
                                <ul class="errors">
                                    {r.errors.into_iter().take(10).map(|e| view! {
                                        <li><a href=format!("/videos/{}", e.video_id)><code>{e.video_id.clone()}</code></a> ": " {e.message}</li>
                                    }).collect_view()}
                                </ul>
                                <button type="button" class="btn btn-link" on:click=move |_| bulk.set(Bulk::Idle)>"Dismiss"</button>
                            </div>
                        }.into_any()
                    }
                    Bulk::Failed(msg) => view! {
                        <p class="notice notice-error" role="alert">{msg}</p>
                        <button type="button" class="btn btn-link" on:click=move |_| bulk.set(Bulk::Idle)>"Dismiss"</button>
                    }.into_any(),
                }}
            </div>
        </section>
    }
}

fn eligible(action: BulkAction) -> &'static str {
    match action {
        BulkAction::Retry => "failed",
        BulkAction::MarkFailed => "pending or generating",
    }
}

fn confirm_text(action: BulkAction, n: u64) -> String {
    let s = if n == 1 { "" } else { "s" };
    match action {
        BulkAction::Retry => format!(
            "Retry {n} failed video{s}? Each goes back to RCK and counts against its workspace's quota."
        ),
        BulkAction::MarkFailed => format!(
            "Mark {n} video{s} failed? RCK may still call back; a late success would still complete them."
        ),
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// One row of the list: selection, product, live status, workspace, times, error, actions.
#[component]
fn VideoListRow(
    row: VideoRow,
    live: Overlay,
    actions: RowActions,
    selected: RwSignal<BTreeSet<ObjectId>>,
    all_matching: RwSignal<bool>,
) -> impl IntoView {
    let id = row.video.id;
    let stuck_at_load = row.stuck;
    let v = live_video(live, row.video.clone());
    let status = Memo::new(move |_| v.read().status);
    let updated = Memo::new(move |_| v.read().updated_at);
    let error = move || v.read().error.clone().unwrap_or_default();
    let title = row.product_title.clone();
    view! {
        <tr data-video-id=id.to_string() data-testid="video-row">
            <td class="select">
                <input
                    type="checkbox"
                    aria-label=format!("Select video {}", title.clone().unwrap_or_else(|| id.to_string()))
                    data-testid="select-video"
                    prop:checked=move || all_matching.get() || selected.read().contains(&id)
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        all_matching.set(false);
                        selected.update(|s| { if on { s.insert(id); } else { s.remove(&id); } });
                    }
                />
            </td>
            <td>
                <ProductName title=row.product_title.clone() image=row.product_image.clone() fallback_id=row.video.product_id.to_string() href=format!("/videos/{id}")/>
                <div class="sub"><span class="muted">{row.video.template.clone()}</span> " " <IdChip id=id.to_string()/></div>
            </td>
            // The cells a live change rewrites hold a box of fixed size (`.live-cell`): what changes
            // inside it is laid out alone, not the whole table.
            <td>
                <div class="live-cell live-status">
                    <StatusBadge status/>
                    <Show when=move || stuck_at_load && status.get() == VideoStatus::Generating>
                        <span class="badge badge-stuck" title="Generating for longer than VIDEO_TIMEOUT_MINUTES">"stuck"</span>
                    </Show>
                </div>
            </td>
            <td>
                <a href=format!("/videos?workspaceId={}", row.video.workspace_id)>
                    {row.workspace_name.clone().unwrap_or_else(|| row.video.workspace_id.to_string())}
                </a>
            </td>
            <td><div class="live-cell live-time"><Ago at=updated/></div></td>
            <td class="wrap error-text">{error}</td>
            <td class="actions">
                <div class="live-cell live-actions">
                    <a href=format!("/videos/{id}") class="btn btn-link">"Details"</a>
                    <VideoActions id status actions/>
                </div>
            </td>
        </tr>
    }
}

/// One video's page: its status and times, product and workspace, links, every webhook event for
/// it in order, and its actions; it follows live changes.
#[component]
pub fn VideoDetailPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let data = page_data(id, load_video_detail);
    let live = Overlay::new();
    use_live(
        move || LiveFeed::new(LiveKinds::Both).videos(id().parse().into_iter().collect()),
        move |change| {
            let mine = |v: &Option<String>| v.as_deref() == Some(id().as_str());
            match change {
                // The change is a summary: it shows at once, and the page is read again for the
                // whole video (its links, times and job); for an event, for the timeline.
                LiveChange::Video { video } if video.id.to_string() == id() => {
                    let loaded = || {
                        data.with_untracked(|r| match r {
                            Some(Ok(d)) => Some(d.row.video.clone()),
                            _ => None,
                        })
                    };
                    overlay_summary(live, &video, loaded);
                    data.refetch();
                }
                LiveChange::Event { event } if mine(&event.video_id) => data.refetch(),
                _ => {}
            }
        },
        |_| {},
        move || {
            live.clear();
            data.refetch();
        },
    );
    let actions = RowActions::new(live);
    view! {
        <Layout>
            <p><a href="/videos">"← All videos"</a></p>
            <Show when=move || actions.error.get().is_some()>
                <p class="notice notice-error" role="alert">{move || actions.error.get().unwrap_or_default()}</p>
            </Show>
            <Loaded resource=data then=move |d: VideoDetail| view! { <VideoDetailView d live actions/> }/>
        </Layout>
    }
}

#[component]
fn VideoDetailView(d: VideoDetail, live: Overlay, actions: RowActions) -> impl IntoView {
    let row = d.row.clone();
    let id = row.video.id;
    let v = live_video(live, row.video.clone());
    let status = Memo::new(move |_| v.read().status);
    let title = row
        .product_title
        .clone()
        .unwrap_or_else(|| format!("Video {id}"));
    let time_row = move |label: &'static str, t: Option<crate::model::Timestamp>| {
        t.map(|t| view! { <dt>{label}</dt><dd><Ago at=t/></dd> })
    };
    let events = d.events.clone();
    let more = d.more_events;
    view! {
        <div class="page-header">
            <h1 class="product-heading">
                <ProductName title=Some(title) image=row.product_image.clone() fallback_id=row.video.product_id.to_string()/>
            </h1>
            <div class="page-actions" data-testid="detail-actions">
                <VideoActions id status actions big=true/>
            </div>
        </div>
        <section class="card" data-testid="video-detail" data-video-id=id.to_string()>
            <dl class="details">
                <dt>"Status"</dt>
                <dd>
                    <StatusBadge status/>
                    {move || v.get().error.map(|e| view! { " " <span class="error-text" data-testid="detail-error">{e}</span> })}
                </dd>
                <dt>"Video id"</dt><dd><IdChip id=id.to_string()/></dd>
                <dt>"Template"</dt><dd>{row.video.template.clone()} " " <span class="muted">{row.video.metadata.template_id.clone()}</span></dd>
                <dt>"Product"</dt><dd><IdChip id=row.video.product_id.to_string()/></dd>
                <dt>"Workspace"</dt>
                <dd>
                    <a href=format!("/videos?workspaceId={}", row.video.workspace_id)>
                        {row.workspace_name.clone().unwrap_or_else(|| row.video.workspace_id.to_string())}
                    </a>
                </dd>
                <dt>"Requested"</dt><dd><Ago at=row.video.created_at/></dd>
                {move || time_row("Queued", v.get().metadata.queued_at)}
                <dt>"Sent to RCK"</dt>
                <dd data-testid="detail-job">
                    {move || match v.get().metadata.external_job_id {
                        Some(job) => view! { "job " <code>{job}</code> }.into_any(),
                        None => view! { <span class="muted">"no job id yet"</span> }.into_any(),
                    }}
                </dd>
                {move || time_row("Completed", v.get().metadata.completed_at)}
                {move || time_row("Failed", v.get().metadata.failed_at)}
                {move || {
                    let m = v.get().metadata;
                    m.queued_at
                        .zip(m.completed_at.or(m.failed_at))
                        .map(|(q, f)| view! { <dt>"Took"</dt><dd>{human_ms(Some((f.millis() - q.millis()).max(0) as u64))}</dd> })
                }}
                <dt>"Retries"</dt>
                <dd>{move || {
                    let done = v.get().metadata.retry_count.unwrap_or(0);
                    format!("{done} ({} left)", d.max_retries.saturating_sub(done))
                }}</dd>
                <dt>"Updated"</dt><dd><Ago at=Signal::derive(move || v.read().updated_at)/></dd>
            </dl>
            {move || {
                let m = v.get().metadata;
                let yt = m.youtube_video_id.clone();
                (m.video_url.is_some() || yt.is_some()).then(|| view! {
                    <div class="media" data-testid="detail-media">
                        {yt.clone().map(|y| view! {
                            <a href=format!("https://www.youtube.com/watch?v={y}") rel="noopener noreferrer" target="_blank">
                                <img class="video-thumb" src=format!("https://i.ytimg.com/vi/{y}/hqdefault.jpg") alt="YouTube thumbnail of the video" width="240" height="180" loading="lazy" referrerpolicy="no-referrer"/>
                            </a>
                        })}
                        <p>
                            {m.video_url.clone().map(|u| view! { <a href=u rel="noopener noreferrer" target="_blank" data-testid="video-link">"Video file"</a> " " })}
                            {yt.map(|y| view! { <a href=format!("https://www.youtube.com/watch?v={y}") rel="noopener noreferrer" target="_blank" data-testid="youtube-link">"On YouTube"</a> })}
                        </p>
                    </div>
                })
            }}
        </section>
        <section class="card">
            <h2>"Webhook events"</h2>
            {if events.is_empty() {
                view! { <p class="muted" data-testid="no-events">"RCK has not called back for this video yet."</p> }.into_any()
            } else {
                view! {
                    <ol class="timeline" data-testid="video-events">
                        {events.into_iter().map(|e| view! {
                            <li data-testid="video-event">
                                <Ago at=e.created_at/> " "
                                <code>{e.endpoint.clone()}</code> " "
                                <crate::components::CodePill code=e.status_code/> " "
                                <span>{e.outcome.clone()}</span> " "
                                <a href=format!("/events/{}", e.id)>"Payload"</a>
                            </li>
                        }).collect_view()}
                    </ol>
                }.into_any()
            }}
            {more.then(|| view! { <p><a href=format!("/events?videoId={id}")>"Older events on the events page"</a></p> })}
        </section>
    }
}
