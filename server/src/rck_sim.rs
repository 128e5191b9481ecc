//! `server rck-sim`: a stand-in for the RCK Description server that speaks the same contract.
//!
//! It accepts batches on `POST /api/v1/create-images-batch`, answers `{job_ids}` in product order,
//! and after a random delay calls the batch's `callback_url` (with a realistic success payload) or
//! `failure_callback_url`, exactly as given (the capability token in their query included), signed
//! per Standard Webhooks when it has a secret (`RCK_WEBHOOK_SECRET`). Batches are idempotent on the
//! `Idempotency-Key` header, like the real thing must be. The tests, the demo of `make run` and the
//! benchmarks use it.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::Rng;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Each video is finished after a delay drawn uniformly from this range.
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Share of videos that fail (0.0 ..= 1.0).
    pub failure_rate: f64,
    /// When set, batches must carry `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// When set, every callback is signed with it (`webhook-id`, `webhook-timestamp`,
    /// `webhook-signature`).
    pub webhook_secret: Option<app::ssr::callback_auth::WebhookSecret>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(1_000),
            max_delay: Duration::from_millis(4_000),
            failure_rate: 0.2,
            api_key: None,
            webhook_secret: None,
        }
    }
}

#[derive(Clone)]
struct Sim {
    config: SimConfig,
    http: reqwest::Client,
    /// Idempotency-Key -> the job ids it was answered with.
    seen: Arc<Mutex<HashMap<String, Vec<String>>>>,
    next_job: Arc<AtomicU64>,
}

#[derive(Deserialize)]
struct Batch {
    products: Vec<Product>,
    callback_url: String,
    failure_callback_url: String,
}

#[derive(Deserialize)]
struct Product {
    id_product: i64,
    #[serde(rename = "videoId")]
    video_id: String,
    #[allow(dead_code)]
    title: String,
    #[allow(dead_code)]
    sku: String,
    #[allow(dead_code)]
    template_name: String,
    #[allow(dead_code)]
    aspect_ratio: String,
    #[allow(dead_code)]
    img_urls: Vec<String>,
    #[allow(dead_code)]
    user_id: String,
}

pub fn router(config: SimConfig) -> Router {
    let sim = Sim {
        config,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("a client with a timeout always builds"),
        seen: Arc::default(),
        next_job: Arc::new(AtomicU64::new(1)),
    };
    Router::new()
        .route("/api/v1/create-images-batch", post(create_batch))
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        .with_state(sim)
}

fn refuse(status: StatusCode, detail: &str) -> Response {
    (status, Json(json!({ "detail": detail }))).into_response()
}

async fn create_batch(
    State(sim): State<Sim>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(key) = &sim.config.api_key {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if auth != format!("Bearer {key}") {
            return refuse(StatusCode::UNAUTHORIZED, "invalid API key");
        }
    }
    let batch: Batch = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return refuse(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
    };
    if batch.products.is_empty() {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "products must not be empty",
        );
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // A batch seen before gets the same job ids and schedules nothing new.
    if let Some(k) = &key {
        if let Some(ids) = sim.seen.lock().unwrap_or_else(|p| p.into_inner()).get(k) {
            return Json(json!({ "job_ids": ids })).into_response();
        }
    }
    let job_ids: Vec<String> = batch
        .products
        .iter()
        .map(|_| format!("job_{:06}", sim.next_job.fetch_add(1, Ordering::Relaxed)))
        .collect();
    if let Some(k) = key {
        sim.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(k, job_ids.clone());
    }
    for (p, job) in batch.products.into_iter().zip(&job_ids) {
        let sim = sim.clone();
        let (ok_url, fail_url) = (
            batch.callback_url.clone(),
            batch.failure_callback_url.clone(),
        );
        let job = job.clone();
        tokio::spawn(async move { finish(sim, p, job, ok_url, fail_url).await });
    }
    Json(json!({ "job_ids": job_ids })).into_response()
}

/// Waits, decides the video's fate and calls back, retrying a few times if the callback fails.
async fn finish(sim: Sim, p: Product, job: String, ok_url: String, fail_url: String) {
    let (delay, fails, yt) = {
        let mut rng = rand::thread_rng();
        let (lo, hi) = (
            sim.config.min_delay,
            sim.config.max_delay.max(sim.config.min_delay),
        );
        let delay = if hi > lo { rng.gen_range(lo..=hi) } else { lo };
        let yt: String = (0..11)
            .map(|_| {
                let c = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
                c[rng.gen_range(0..c.len())] as char
            })
            .collect();
        (
            delay,
            rng.gen_bool(sim.config.failure_rate.clamp(0.0, 1.0)),
            yt,
        )
    };
    tokio::time::sleep(delay).await;
    let (url, body) = if fails {
        let reasons = [
            "Failed to process video: insufficient image quality",
            "Processing timeout",
            "Template rendering failed",
        ];
        let reason = reasons[(p.id_product as usize) % reasons.len()];
        (fail_url, json!({ "videoId": p.video_id, "error": reason }))
    } else {
        (
            ok_url,
            json!({
                "videoId": p.video_id,
                "youtubeVideoId": yt,
                "localFilename": format!("/videos/product_{}_{}.mp4", p.id_product, job),
                "video_url": format!("https://cdn.rck.example/videos/{job}.mp4"),
                "img_s3_url": format!("https://rck-thumbnails.s3.amazonaws.com/{job}.jpg"),
            }),
        )
    };
    // Logs name the path only: the query holds the batch's token.
    let shown = url.split('?').next().unwrap_or_default().to_string();
    let bytes = serde_json::to_vec(&body).expect("JSON values always serialise");
    // One delivery id for every attempt, so the receiver can tell a retry from a new call.
    let delivery = format!("msg_{job}_{}", p.video_id);
    for attempt in 0..5u32 {
        let mut req = sim
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(bytes.clone());
        if let Some(secret) = &sim.config.webhook_secret {
            let ts = chrono::Utc::now().timestamp();
            req = req
                .header("webhook-id", &delivery)
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", secret.sign(&delivery, ts, &bytes));
        }
        match req.send().await {
            Ok(r) if r.status().is_success() || r.status().is_client_error() => return,
            Ok(r) => {
                tracing::warn!(target: "rck_sim", url = %shown, status = %r.status(), attempt, "callback not accepted")
            }
            Err(e) => {
                tracing::warn!(target: "rck_sim", url = %shown, attempt, "callback failed: {}", e.without_url())
            }
        }
        tokio::time::sleep(Duration::from_millis(500 * 2u64.pow(attempt))).await;
    }
    tracing::error!(target: "rck_sim", video = %p.video_id, "gave up calling back");
}

/// Binds and serves the simulator until the process ends; returns the address it listens on.
pub async fn spawn(
    addr: std::net::SocketAddr,
    config: SimConfig,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(config)).await {
            tracing::error!(target: "rck_sim", "simulator stopped: {e}");
        }
    });
    Ok(local)
}
