//! What an operator watches: the request id and access log of every request, Prometheus metrics
//! (`GET /metrics`) and the probes (`GET /healthz`, `GET /readyz`).
//!
//! Metrics go through the `metrics` facade (the app crate records its own: webhooks, RCK calls,
//! store operations); this module installs the Prometheus recorder once per process and renders it.
//! Gauges that describe the store (videos per status, the spool) are read at scrape time.

use app::model::VideoStatus;
use app::ssr::state::AppState;
use app::ssr::store::within;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use std::sync::OnceLock;
use std::time::Instant;
use tracing::Instrument;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Latency buckets (seconds) of every histogram: 1 ms to 10 s.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The group commit's histograms (`racky_store_batch_*`): 50 µs to 1 s, as applying a batch and
/// committing it each take about a millisecond under load, and much less when idle.
const BATCH_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0,
];

/// The process's Prometheus recorder, installed on first use (tests start several apps in one
/// process; they share it, as they share the process).
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Prefix("racky_store_batch_".into()),
                    BATCH_BUCKETS,
                )
            })
            .expect("the buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
        }
        describe();
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "racky_http_requests_total",
        "HTTP requests answered, by route template, method and status"
    );
    describe_histogram!(
        "racky_http_request_duration_seconds",
        Unit::Seconds,
        "Time to the response head, by route template and method"
    );
    describe_counter!(
        "racky_webhooks_total",
        "RCK callbacks answered, by endpoint and status"
    );
    describe_histogram!(
        "racky_webhook_duration_seconds",
        Unit::Seconds,
        "Callback handling time, by endpoint"
    );
    describe_counter!(
        "racky_rck_requests_total",
        "Batch requests sent to RCK, by outcome"
    );
    describe_histogram!(
        "racky_rck_request_duration_seconds",
        Unit::Seconds,
        "RCK batch request time, by outcome"
    );
    describe_histogram!(
        "racky_store_operation_duration_seconds",
        Unit::Seconds,
        "Store operation time, by store and operation"
    );
    describe_counter!(
        "racky_store_batch_writes_total",
        "SQLite: writes committed by the group commit (divided by the batches, the writes per commit)"
    );
    describe_histogram!(
        "racky_store_batch_apply_seconds",
        Unit::Seconds,
        "SQLite: time applying one group commit's writes, before its commit (one per batch)"
    );
    describe_histogram!(
        "racky_store_batch_commit_seconds",
        Unit::Seconds,
        "SQLite: time of one group commit's commit, the fsync included (one per batch)"
    );
    describe_gauge!(
        "racky_videos",
        "Videos per status (from the maintained counters)"
    );
    describe_gauge!("racky_live_clients", "Open live feeds (/api/live)");
    describe_gauge!(
        "racky_outbox_depth",
        "Notifications not yet delivered (pending, fan-out included)"
    );
    describe_counter!(
        "racky_notifications_total",
        "Notification attempts, by channel and outcome"
    );
    describe_gauge!(
        "racky_spool_depth",
        "Callbacks spooled during a store outage, not yet in the store"
    );
}

/// The caller's `x-request-id` when it is a plausible id (1 to 64 of `A-Za-z0-9._:-`), else a fresh
/// random one: a header never puts arbitrary text into our logs.
fn request_id(headers: &HeaderMap) -> HeaderValue {
    let given = headers.get(&REQUEST_ID).filter(|v| {
        let b = v.as_bytes();
        (1..=64).contains(&b.len())
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"._:-".contains(c))
    });
    match given {
        Some(v) => v.clone(),
        None => {
            let id: u128 = rand::random();
            HeaderValue::from_str(&format!("{id:032x}")).expect("hex is a valid header value")
        }
    }
}

/// The route template (never the raw path, so labels stay few): the matched route, the hashed site
/// files as one, anything else as `unmatched`.
fn route_of(req: &Request) -> String {
    if let Some(m) = req.extensions().get::<MatchedPath>() {
        return m.as_str().to_string();
    }
    if req.uri().path().starts_with("/pkg/") {
        return "/pkg/{file}".into();
    }
    "unmatched".into()
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Routes logged at debug only: probes, scrapes and static files would drown the log.
fn quiet(route: &str) -> bool {
    matches!(route, "/healthz" | "/readyz" | "/metrics") || route.starts_with("/pkg/")
}

/// Every request: an id (kept from the caller or made), a span naming it and the route (so every
/// log line of the request carries both), the access log line, the HTTP metrics, and
/// `x-request-id` on the response.
pub async fn observe(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(req.headers());
    let route = route_of(&req);
    let method = method_label(req.method());
    let span = tracing::info_span!(
        "request",
        request_id = id.to_str().unwrap_or_default(),
        method,
        route = %route,
    );
    req.headers_mut().insert(REQUEST_ID, id.clone());
    let mut resp = next.run(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = resp.status().as_u16();
    metrics::counter!("racky_http_requests_total", "route" => route.clone(), "method" => method, "status" => status.to_string())
        .increment(1);
    metrics::histogram!("racky_http_request_duration_seconds", "route" => route.clone(), "method" => method)
        .record(elapsed.as_secs_f64());
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if quiet(&route) {
            tracing::debug!(target: "http", status, latency_ms, "served");
        } else {
            tracing::info!(target: "http", status, latency_ms, "served");
        }
    });
    resp.headers_mut().insert(REQUEST_ID, id);
    resp
}

/// `/healthz`, `/readyz` and `/metrics`: outside `/api`, unauthenticated (but `/metrics` takes
/// `METRICS_TOKEN` when it is set).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(scrape))
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", summary = "Liveness: the process answers",
    responses((status = 200, description = "`{\"status\":\"ok\"}`", body = crate::openapi::Probe)))]
async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

/// The store answers (a real write probe, bounded by the store deadline): 200, else 503.
#[utoipa::path(get, path = "/readyz", tag = "operations", summary = "Readiness: the store takes a write (bounded)",
    responses((status = 200, description = "`{\"status\":\"ready\",\"store\":\"sqlite\"}`", body = crate::openapi::Probe),
              (status = 503, description = "`{\"status\":\"unavailable\"}`", body = crate::openapi::Probe)))]
async fn readyz(State(state): State<AppState>) -> Response {
    match within(state.store.ping()).await {
        Ok(()) => {
            axum::Json(json!({ "status": "ready", "store": state.store.kind() })).into_response()
        }
        Err(e) => {
            tracing::warn!(target: "video_service", "not ready: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({ "status": "unavailable", "store": state.store.kind() })),
            )
                .into_response()
        }
    }
}

#[utoipa::path(get, path = "/metrics", tag = "operations", security((), ("metricsToken" = [])),
    summary = "Prometheus metrics (text exposition format)",
    description = "Open unless METRICS_TOKEN is set; then that bearer token is required.",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
              (status = 401, description = "Invalid metrics token", body = crate::openapi::ErrorBody)))]
async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(expected) = state.config.metrics_token.as_deref() {
        let given = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !app::model::webhook::constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            return (
                StatusCode::UNAUTHORIZED,
                [("www-authenticate", "Bearer")],
                axum::Json(json!({ "success": false, "message": "Invalid metrics token" })),
            )
                .into_response();
        }
    }
    // Gauges of the store, read now (cheap: the maintained counters, and the spool files).
    match within(state.store.video_status_counts()).await {
        Ok(counts) => {
            for s in VideoStatus::ALL {
                let n: u64 = counts.iter().filter(|(c, _)| *c == s).map(|(_, n)| n).sum();
                metrics::gauge!("racky_videos", "status" => s.as_str()).set(n as f64);
            }
        }
        Err(e) => tracing::warn!(target: "video_service", "metrics: video counts unavailable: {e}"),
    }
    metrics::gauge!("racky_spool_depth").set(state.spool.depth() as f64);
    match within(state.store.pending_notifications()).await {
        Ok(n) => metrics::gauge!("racky_outbox_depth").set(n as f64),
        Err(e) => tracing::warn!(target: "video_service", "metrics: outbox depth unavailable: {e}"),
    }
    let handle = prometheus();
    handle.run_upkeep();
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        handle.render(),
    )
        .into_response()
}

/// Counts an open live feed while it lives.
pub struct LiveClient(());

impl LiveClient {
    pub fn open() -> Self {
        metrics::gauge!("racky_live_clients").increment(1.0);
        Self(())
    }
}

impl Drop for LiveClient {
    fn drop(&mut self) {
        metrics::gauge!("racky_live_clients").decrement(1.0);
    }
}
