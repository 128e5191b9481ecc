use crate::components::chart::SuccessFailureChart;
use crate::components::data::page_data;
use crate::components::live::{throttled, use_live, LiveFeed, LiveKinds};
use crate::components::{exact, human_ms, Layout, Loaded, StatTile};
use crate::model::dashboard::{FailureReport, Overview, OverviewRange};
use crate::model::filters::{query_string, VideoFilter};
use crate::server_fns::load_overview;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use std::time::Duration;

/// Counts per status, success rate, processing time, and the success-vs-failure chart.
#[component]
pub fn OverviewPage() -> impl IntoView {
    let query = use_query_map();
    let range = move || OverviewRange::from_key(&query.read().get("range").unwrap_or_default());
    let data = page_data(range, load_overview);
    // Keep the numbers and the chart current: a live change re-reads the overview at once, or,
    // within a second of the last read, once that second is over (so the last change always shows).
    // The page shows no single video: the feed sends it counts of changes (`unseen`), not changes.
    let refresh = throttled(Duration::from_secs(1), move || data.refetch());
    use_live(
        || LiveFeed::new(LiveKinds::Both).videos(Vec::new()),
        |_| {},
        move |_| refresh(),
        move || data.refetch(),
    );
    view! {
        <Layout>
            <div class="page-header">
                <h1>"Overview"</h1>
                <nav class="segmented" aria-label="Range">
                    {OverviewRange::ALL
                        .into_iter()
                        .map(|r| {
                            view! {
                                <a
                                    href=format!("/?range={}", r.key())
                                    class:active=move || range() == r
                                    aria-current=move || (range() == r).then_some("page")
                                    data-testid=format!("range-{}", r.key())
                                >
                                    {r.label()}
                                </a>
                            }
                        })
                        .collect_view()}
                </nav>
            </div>
            <Loaded resource=data then=|o: Overview| {
                let s = &o.stats;
                let rate = s
                    .success_rate
                    .map(|r| format!("{:.1} %", r * 100.0))
                    .unwrap_or_else(|| "–".into());
                view! {
                    <section class="stats-grid" aria-label="Videos by status">
                        <StatTile label="Pending" value=o.counts.pending.to_string() testid="count-pending"/>
                        <StatTile label="Generating" value=o.counts.generating.to_string() testid="count-generating"/>
                        <StatTile label="Completed" value=o.counts.completed.to_string() testid="count-completed"/>
                        <StatTile label="Failed" value=o.counts.failed.to_string() testid="count-failed"/>
                    </section>
                    <section class="stats-grid" aria-label="Webhooks in the range">
                        <StatTile label="Success rate" value=rate testid="success-rate"/>
                        <StatTile label="Average processing" value=human_ms(s.processing.average_ms) testid="avg-processing"/>
                        <StatTile label="p95 processing" value=human_ms(s.processing.p95_ms)/>
                        <StatTile label="Rejected calls" value=s.totals.rejected.to_string()/>
                    </section>
                    <section class="card" data-testid="chart-card" data-from=s.from.to_string() data-to=s.to.to_string() data-bucket=s.bucket.as_str()>
                        <h2>"Success vs failure"</h2>
                        <p class="muted">{format!("{} to {}, by {}", exact(s.from), exact(s.to), s.bucket.as_str())}</p>
                        <SuccessFailureChart series=s.series.clone() bucket=s.bucket/>
                    </section>
                    <div class="two-col">
                        <FailureReasons report=o.failures.clone()/>
                        <WorkspaceRates report=o.failures.clone()/>
                    </div>
                }
            }/>
        </Layout>
    }
}

/// The most common failure reasons of the range, each linking to its failed videos.
#[component]
fn FailureReasons(report: FailureReport) -> impl IntoView {
    let body = if report.reasons.is_empty() {
        view! { <p class="muted" data-testid="no-failures">"No video failed in this range."</p> }
            .into_any()
    } else {
        view! {
            <div class="table-wrap">
            <table class="table compact" data-testid="failure-reasons">
                <caption class="sr-only">"Failure reasons, most common first"</caption>
                <thead><tr><th scope="col">"Reason"</th><th scope="col" class="num">"Videos"</th><th scope="col" class="num">"Share"</th></tr></thead>
                <tbody>
                    {report.reasons.into_iter().map(|r| {
                        let text = if r.reason.is_empty() { "(no error text)".to_string() } else { r.reason.clone() };
                        let href = format!("/videos{}", query_string(&VideoFilter {
                            status: Some("failed".into()),
                            error: (!r.reason.is_empty()).then(|| r.reason.clone()),
                            ..Default::default()
                        }));
                        view! {
                            <tr data-testid="failure-reason">
                                <td class="wrap"><a href=href>{text}</a></td>
                                <td class="num">{r.count}</td>
                                <td class="num">{format!("{:.0} %", r.share * 100.0)}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            </div>
        }.into_any()
    };
    view! {
        <section class="card">
            <h2>"Why videos fail"</h2>
            <p class="muted">{format!("{} failed in the range", report.failed)}</p>
            {body}
        </section>
    }
}

/// Success rate per workspace in the range, the busiest first.
#[component]
fn WorkspaceRates(report: FailureReport) -> impl IntoView {
    let body = if report.workspaces.is_empty() {
        view! { <p class="muted">"No finished videos in this range."</p> }.into_any()
    } else {
        view! {
            <div class="table-wrap">
            <table class="table compact" data-testid="workspace-rates">
                <caption class="sr-only">"Success rate per workspace"</caption>
                <thead><tr><th scope="col">"Workspace"</th><th scope="col" class="num">"Completed"</th><th scope="col" class="num">"Failed"</th><th scope="col" class="num">"Success"</th></tr></thead>
                <tbody>
                    {report.workspaces.into_iter().map(|w| view! {
                        <tr data-testid="workspace-rate">
                            <td><a href=format!("/videos?workspaceId={}", w.workspace_id)>{w.workspace_name.clone().unwrap_or_else(|| w.workspace_id.to_string())}</a></td>
                            <td class="num">{w.completed}</td>
                            <td class="num">{w.failed}</td>
                            <td class="num">{w.success_rate.map(|r| format!("{:.1} %", r * 100.0)).unwrap_or_else(|| "–".into())}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            </div>
        }.into_any()
    };
    view! {
        <section class="card">
            <h2>"Success by workspace"</h2>
            {body}
        </section>
    }
}
