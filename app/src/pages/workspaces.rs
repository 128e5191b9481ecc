use crate::components::data::page_data;
use crate::components::{Ago, IdChip, Layout, Loaded, Pager};
use crate::model::dashboard::{WorkspaceRow, WorkspaceRowPage};
use crate::model::filters::WorkspaceFilter;
use crate::server_fns::{load_workspace_rows, SetVideoLimit, WORKSPACES_PER_PAGE};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// The workspaces by name, a page at a time: each one's quota as a bar, videos per status, last
/// activity, and the limit form.
#[component]
pub fn WorkspacesPage() -> impl IntoView {
    let query = use_query_map();
    let filter = Memo::new(move |_| WorkspaceFilter {
        page: query.read().get("page").filter(|p| !p.is_empty()),
        limit: Some(WORKSPACES_PER_PAGE.into()),
    });
    let set_limit = ServerAction::<SetVideoLimit>::new();
    // A saved limit re-reads the page (the bar and the numbers follow).
    let data = page_data(
        move || (filter.get(), set_limit.version().get()),
        |(filter, _)| load_workspace_rows(filter),
    );
    view! {
        <Layout>
            <div class="page-header">
                <h1>"Workspaces"</h1>
            </div>
            <div aria-live="polite" data-testid="limit-result">
                {move || set_limit.value().get().map(|r| match r {
                    Ok(w) => view! { <p class="notice" role="status">{format!("{}: the limit is now {} videos.", w.name, w.video_limit)}</p> }.into_any(),
                    Err(e) => view! { <p class="notice notice-error" role="alert" data-testid="limit-error">{e.to_string()}</p> }.into_any(),
                })}
            </div>
            <Loaded resource=data then=move |page| workspace_list(page, set_limit)/>
        </Layout>
    }
}

fn workspace_list(page: WorkspaceRowPage, set_limit: ServerAction<SetVideoLimit>) -> AnyView {
    let p = page.pagination;
    if page.workspaces.is_empty() && p.total == 0 {
        return view! { <p class="card muted">"No workspaces yet."</p> }.into_any();
    }
    view! {
        <div class="cards" data-testid="workspaces">
            {page.workspaces.into_iter().map(|r| view! { <WorkspaceCard row=r set_limit/> }).collect_view()}
        </div>
        <Pager path="/workspaces" filter=WorkspaceFilter::default() page=p.page total_pages=p.total_pages total=p.total/>
    }
    .into_any()
}

#[component]
fn WorkspaceCard(row: WorkspaceRow, set_limit: ServerAction<SetVideoLimit>) -> impl IntoView {
    let w = row.workspace;
    let c = row.counts;
    let used = w.videos_used;
    let limit = w.video_limit;
    let pct = if limit == 0 {
        100.0
    } else {
        (used as f64 / limit as f64 * 100.0).min(100.0)
    };
    let level = if pct >= 90.0 {
        "quota-high"
    } else if pct >= 70.0 {
        "quota-mid"
    } else {
        "quota-ok"
    };
    let (low, high) = (limit as f64 * 0.7, limit as f64 * 0.9);
    let input_id = format!("limit-{}", w.id);
    let videos = format!("/videos?workspaceId={}", w.id);
    let status_link =
        |status: &'static str| format!("/videos?workspaceId={}&status={status}", w.id);
    let notifications = format!("/notifications?workspaceId={}", w.id);
    view! {
        <section class="card workspace" data-testid="workspace" data-workspace-id=w.id.to_string()>
            <h2><a href=videos.clone()>{w.name.clone()}</a> " " <IdChip id=w.id.to_string()/></h2>
            <div class="quota">
                <span data-testid="quota-text">{format!("{used} of {limit} videos used")}</span>
                <meter class=level min="0" max=limit.max(1) low=low high=high optimum="0" value=used aria-label=format!("Quota of {}: {used} of {limit} videos used", w.name)></meter>
            </div>
            <dl class="counts">
                <div><dt>"Pending"</dt><dd><a href=status_link("pending")>{c.pending}</a></dd></div>
                <div><dt>"Generating"</dt><dd><a href=status_link("generating")>{c.generating}</a></dd></div>
                <div><dt>"Completed"</dt><dd><a href=status_link("completed")>{c.completed}</a></dd></div>
                <div><dt>"Failed"</dt><dd><a href=status_link("failed") data-testid="failed-count">{c.failed}</a></dd></div>
            </dl>
            <p class="muted">
                "Last activity: "
                {match row.last_activity {
                    Some(t) => view! { <Ago at=t/> }.into_any(),
                    None => view! { "no videos yet" }.into_any(),
                }}
            </p>
            <p><a href=notifications data-testid="workspace-notifications">"Notification settings"</a></p>
            <ActionForm action=set_limit attr:class="inline-form">
                <input type="hidden" name="id" value=w.id.to_string()/>
                <label for=input_id.clone()>"Video limit"</label>
                <input id=input_id type="number" name="video_limit" min="0" max="10000000" step="1" required value=limit data-testid="limit-input"/>
                <button type="submit" class="btn btn-secondary" disabled=move || set_limit.pending().get() data-testid="limit-save">"Save limit"</button>
            </ActionForm>
        </section>
    }
}
