//! The success-vs-failure chart: SVG drawn on the server, hover read-outs once hydrated.

use crate::model::stats::{Bucket, BucketCount};
use leptos::prelude::*;

const W: f64 = 720.0;
const H: f64 = 260.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 34.0;

/// A round upper bound for the y axis (1, 2, 5 × 10^n).
fn nice_max(v: u64) -> u64 {
    if v <= 4 {
        return 4;
    }
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            if m * step * 4 >= v {
                return m * step * 4;
            }
        }
        step *= 10;
    }
}

/// A bucket's label on the x axis.
pub fn bucket_label(bucket: Bucket, b: &BucketCount) -> String {
    let t = b.start.datetime();
    match bucket {
        Bucket::Hour => t.format("%H:00").to_string(),
        Bucket::Day | Bucket::Week => t.format("%b %d").to_string(),
        Bucket::Month => t.format("%b %Y").to_string(),
    }
}

fn long_label(bucket: Bucket, b: &BucketCount) -> String {
    let t = b.start.datetime();
    match bucket {
        Bucket::Hour => t.format("%Y-%m-%d %H:00 UTC").to_string(),
        Bucket::Day => t.format("%Y-%m-%d").to_string(),
        Bucket::Week => format!("week of {}", t.format("%Y-%m-%d")),
        Bucket::Month => t.format("%B %Y").to_string(),
    }
}

#[component]
pub fn SuccessFailureChart(series: Vec<BucketCount>, bucket: Bucket) -> impl IntoView {
    let n = series.len().max(1);
    let max = nice_max(
        series
            .iter()
            .map(|b| b.success.max(b.failure))
            .max()
            .unwrap_or(0),
    );
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let slot = plot_w / n as f64;
    let bar = (slot * 0.38).max(1.0);
    let y = move |v: u64| TOP + plot_h - (v as f64 / max as f64) * plot_h;
    let hovered = RwSignal::new(None::<usize>);
    let total_success: u64 = series.iter().map(|b| b.success).sum();
    let total_failure: u64 = series.iter().map(|b| b.failure).sum();
    // At most ~12 labels on the x axis.
    let every = n.div_ceil(12).max(1);

    let ticks = (0..=4)
        .map(|i| {
            let v = max * i / 4;
            let yy = y(v);
            view! {
                <g class="tick">
                    <line x1=LEFT x2=W - RIGHT y1=yy y2=yy class="grid"></line>
                    <text x=LEFT - 6.0 y=yy + 4.0 text-anchor="end">{v}</text>
                </g>
            }
        })
        .collect_view();

    let readouts: Vec<String> = series
        .iter()
        .map(|b| {
            format!(
                "{}: {} success, {} failure, {} rejected",
                long_label(bucket, b),
                b.success,
                b.failure,
                b.rejected
            )
        })
        .collect();
    let readouts_for_view = readouts.clone();

    let bars = series
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let x0 = LEFT + slot * i as f64 + (slot - 2.0 * bar) / 2.0;
            let label = (i % every == 0).then(|| bucket_label(bucket, b));
            let title = readouts[i].clone();
            let aria = title.clone();
            view! {
                <g
                    class="bucket"
                    class:hovered=move || hovered.get() == Some(i)
                    on:mouseenter=move |_| hovered.set(Some(i))
                    on:focus=move |_| hovered.set(Some(i))
                    tabindex="0"
                    role="img"
                    aria-label=aria
                    data-success=b.success
                    data-failure=b.failure
                >
                    <title>{title}</title>
                    <rect class="hit" x=LEFT + slot * i as f64 y=TOP width=slot height=plot_h></rect>
                    <rect class="bar bar-success" x=x0 y=y(b.success) width=bar height=TOP + plot_h - y(b.success)></rect>
                    <rect class="bar bar-failure" x=x0 + bar y=y(b.failure) width=bar height=TOP + plot_h - y(b.failure)></rect>
                    {label.map(|l| view! {
                        <text class="xlabel" x=LEFT + slot * (i as f64 + 0.5) y=H - 12.0 text-anchor="middle">{l}</text>
                    })}
                </g>
            }
        })
        .collect_view();

    view! {
        <figure class="chart" data-testid="chart">
            <ul class="legend" aria-label="Legend">
                <li><span class="swatch swatch-success"></span>"Success "<strong data-testid="chart-total-success">{total_success}</strong></li>
                <li><span class="swatch swatch-failure"></span>"Failure "<strong data-testid="chart-total-failure">{total_failure}</strong></li>
            </ul>
            <svg
                viewBox=format!("0 0 {W} {H}")
                role="group"
                aria-label="Webhook calls per period: success and failure"
                on:mouseleave=move |_| hovered.set(None)
            >
                {ticks}
                <line x1=LEFT x2=W - RIGHT y1=TOP + plot_h y2=TOP + plot_h class="axis"></line>
                {bars}
            </svg>
            <figcaption class="readout" aria-live="polite" data-testid="chart-readout">
                {move || match hovered.get() {
                    Some(i) => readouts_for_view.get(i).cloned().unwrap_or_default(),
                    None => "Hover or focus a bar to see its numbers.".to_string(),
                }}
            </figcaption>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::nice_max;

    #[test]
    fn y_axis_maxima_are_round() {
        assert_eq!(nice_max(0), 4);
        assert_eq!(nice_max(5), 8);
        assert_eq!(nice_max(9), 20);
        assert_eq!(nice_max(37), 40);
        assert_eq!(nice_max(41), 80);
        assert_eq!(nice_max(1234), 2000);
    }
}
