use crate::components::chart::SuccessFailureChart;
use crate::components::{human_ms, Layout, Loaded, StatTile};
use crate::model::dashboard::{Overview, OverviewRange};
use crate::server_fns::load_overview;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// Counts per status, success rate, processing time, and the success-vs-failure chart.
#[component]
pub fn OverviewPage() -> impl IntoView {
    let query = use_query_map();
    let range = move || OverviewRange::from_key(&query.read().get("range").unwrap_or_default());
    let data = Resource::new(range, load_overview);
    // Keep the numbers current: live changes re-read the overview (at most once per second).
    let last = StoredValue::new(0.0f64);
    crate::components::live::use_live(
        move |_| {
            let now = js_now();
            if now - last.get_value() > 1000.0 {
                last.set_value(now);
                data.refetch();
            }
        },
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
                        <p class="muted">{format!("{} to {}, by {}", s.from, s.to, s.bucket.as_str())}</p>
                        <SuccessFailureChart series=s.series.clone() bucket=s.bucket/>
                    </section>
                }
            }/>
        </Layout>
    }
}

fn js_now() -> f64 {
    #[cfg(feature = "hydrate")]
    {
        js_sys_now()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        0.0
    }
}

#[cfg(feature = "hydrate")]
fn js_sys_now() -> f64 {
    // Date.now() without pulling js-sys in directly: performance is not needed here.
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or(0.0)
}
