use crate::components::chart::SuccessFailureChart;
use crate::components::{human_ms, CallError, Layout};
use crate::model::dashboard::RANGES;
use crate::server_fns::load_overview;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// Counts per status, success rate, processing time, and the success-vs-failure chart.
#[component]
pub fn OverviewPage() -> impl IntoView {
    let query = use_query_map();
    let range = move || query.read().get("range").unwrap_or_else(|| "24h".into());
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
                    {RANGES
                        .iter()
                        .map(|(key, label, _, _)| {
                            let key = *key;
                            view! {
                                <a
                                    href=format!("/?range={key}")
                                    class:active=move || range() == key
                                    aria-current=move || (range() == key).then_some("page")
                                    data-testid=format!("range-{key}")
                                >
                                    {*label}
                                </a>
                            }
                        })
                        .collect_view()}
                </nav>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <CallError error=e/> }.into_any(),
                        Ok(o) => {
                            let s = &o.stats;
                            let rate = s
                                .success_rate
                                .map(|r| format!("{:.1} %", r * 100.0))
                                .unwrap_or_else(|| "–".into());
                            view! {
                                <section class="stats-grid" aria-label="Videos by status">
                                    <div class="stat"><span class="stat-label">"Pending"</span><span class="stat-value" data-testid="count-pending">{o.counts.pending}</span></div>
                                    <div class="stat"><span class="stat-label">"Generating"</span><span class="stat-value" data-testid="count-generating">{o.counts.generating}</span></div>
                                    <div class="stat"><span class="stat-label">"Completed"</span><span class="stat-value" data-testid="count-completed">{o.counts.completed}</span></div>
                                    <div class="stat"><span class="stat-label">"Failed"</span><span class="stat-value" data-testid="count-failed">{o.counts.failed}</span></div>
                                </section>
                                <section class="stats-grid" aria-label="Webhooks in the range">
                                    <div class="stat"><span class="stat-label">"Success rate"</span><span class="stat-value" data-testid="success-rate">{rate}</span></div>
                                    <div class="stat"><span class="stat-label">"Average processing"</span><span class="stat-value" data-testid="avg-processing">{human_ms(s.processing.average_ms)}</span></div>
                                    <div class="stat"><span class="stat-label">"p95 processing"</span><span class="stat-value">{human_ms(s.processing.p95_ms)}</span></div>
                                    <div class="stat"><span class="stat-label">"Rejected calls"</span><span class="stat-value">{s.totals.rejected}</span></div>
                                </section>
                                <section class="card" data-testid="chart-card" data-from=s.from.to_string() data-to=s.to.to_string() data-bucket=s.bucket.as_str()>
                                    <h2>"Success vs failure"</h2>
                                    <p class="muted">{format!("{} to {}, by {}", s.from, s.to, s.bucket.as_str())}</p>
                                    <SuccessFailureChart series=s.series.clone() bucket=s.bucket/>
                                </section>
                            }
                            .into_any()
                        }
                    }
                })}
            </Transition>
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
