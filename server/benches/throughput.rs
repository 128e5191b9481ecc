//! `make bench`: figures for the embedded store over real HTTP on loopback. Prints, never asserts.
//!
//! 1. webhook callbacks per second (success calls on distinct videos), with latency percentiles;
//! 2. event-log queries (`GET /api/webhook-events`, filtered and not) once the log holds the events;
//! 3. a 100-product bulk generation through the RCK simulator until every callback has landed.

use app::ssr::config::Config;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const CALLBACKS: usize = 2_000;
const CONCURRENCY: usize = 16;
const QUERIES: usize = 300;

/// RCK's signing secret: the benchmark calls back as a signing RCK does (it does not see the
/// per-batch tokens, and token mode accepts a valid signature in their place).
const WEBHOOK_SECRET: &str = "whsec_YmVuY2gtd2ViaG9vay1zZWNyZXQtYmVuY2g=";

struct App {
    base: String,
    http: reqwest::Client,
    secret: app::ssr::callback_auth::WebhookSecret,
    deliveries: std::sync::atomic::AtomicU64,
    _dir: tempfile::TempDir,
}

async fn start(rck: Option<String>) -> App {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = Config::for_tests(dir.path().to_path_buf());
    config.site_addr = addr;
    config.server_url = format!("http://{addr}");
    config.superadmin_email = Some("bench@racky.test".into());
    config.superadmin_password = Some("bench-password".into());
    config.rck_url = rck;
    config.rck_webhook_secret = Some(WEBHOOK_SECRET.parse().unwrap());
    let state = server::build_state(config).await.unwrap();
    let router = server::router(state, server::leptos_options(addr));
    tokio::spawn(server::serve(
        listener,
        router,
        std::future::pending(),
        Duration::from_secs(1),
    ));
    App {
        base: format!("http://{addr}"),
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .unwrap(),
        secret: WEBHOOK_SECRET.parse().unwrap(),
        deliveries: Default::default(),
        _dir: dir,
    }
}

impl App {
    /// A callback as RCK sends it: signed (Standard Webhooks), one delivery id per call.
    async fn callback(&self, path: &str, body: Value) -> Value {
        let n = self
            .deliveries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("msg_bench_{n}");
        let ts = chrono::Utc::now().timestamp();
        let bytes = serde_json::to_vec(&body).unwrap();
        self.http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", self.secret.sign(&id, ts, &bytes))
            .body(bytes)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Value {
        let mut r = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.unwrap().json().await.unwrap()
    }
    async fn get(&self, path: &str, token: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// Logs in as the superadmin and creates a workspace with a user; returns (admin, user) tokens.
async fn shop(app: &App, name: &str, limit: u32) -> (String, String) {
    let admin = login(app, "bench@racky.test").await;
    let ws = app
        .post(
            "/api/workspaces",
            Some(&admin),
            json!({"name": name, "videoLimit": limit}),
        )
        .await["data"]["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let email = format!("shop-{ws}@bench.test");
    app.post(
        "/api/users",
        Some(&admin),
        json!({"email": email, "password": "bench-password", "role": "USER", "workspaceId": ws}),
    )
    .await;
    (admin, login(app, &email).await)
}

async fn login(app: &App, email: &str) -> String {
    app.post(
        "/api/auth/login",
        None,
        json!({"email": email, "password": "bench-password"}),
    )
    .await["data"]["token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `n` products of the user's workspace.
async fn make_products(app: &App, user: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let body = json!({"title": format!("P{i}"), "sku": format!("S{i}"), "imgUrls": ["https://img.test/a.jpg"]});
        let p = app.post("/api/products", Some(user), body).await;
        ids.push(p["data"]["_id"].as_str().unwrap().to_string());
    }
    ids
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn report(name: &str, n: usize, elapsed: Duration, mut lat: Vec<Duration>) {
    lat.sort();
    println!(
        "{name:<44} {n:>6} ops in {:>7.2} s = {:>8.0} ops/s   p50 {:>6.2} ms  p95 {:>6.2} ms  p99 {:>6.2} ms",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        pct(&lat, 0.50).as_secs_f64() * 1e3,
        pct(&lat, 0.95).as_secs_f64() * 1e3,
        pct(&lat, 0.99).as_secs_f64() * 1e3,
    );
}

/// Runs `n` requests made by `make(i)` with `CONCURRENCY` in flight; returns elapsed and latencies.
async fn drive<F, Fut>(n: usize, make: F) -> (Duration, Vec<Duration>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static + Clone,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let mut handles = Vec::new();
    for w in 0..CONCURRENCY {
        let make = make.clone();
        handles.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = w;
            while i < n {
                let t = Instant::now();
                make(i).await;
                lat.push(t.elapsed());
                i += CONCURRENCY;
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    (start.elapsed(), all)
}

#[tokio::main]
async fn main() {
    println!("racky-videos benchmarks (SQLite store, HTTP over loopback, {CONCURRENCY} concurrent clients)\n");
    // A simulator that never calls back, so the benchmark drives the callbacks itself.
    let idle_sim = server::rck_sim::spawn(
        "127.0.0.1:0".parse().unwrap(),
        server::rck_sim::SimConfig {
            min_delay: Duration::from_secs(3600),
            max_delay: Duration::from_secs(3600),
            failure_rate: 0.0,
            api_key: None,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let app = std::sync::Arc::new(start(Some(format!("http://{idle_sim}"))).await);
    let (admin, user) = shop(&app, "Bench", 1_000_000).await;
    let products = make_products(&app, &user, 100).await;

    // Videos to call back: CALLBACKS of them, in batches of 100.
    let t = Instant::now();
    let mut videos = Vec::new();
    while videos.len() < CALLBACKS {
        let r = app
            .post(
                "/api/videos/bulk-generate",
                Some(&user),
                json!({"productIds": products, "templateId": "t", "templateName": "Bench"}),
            )
            .await;
        videos.extend(
            r["data"]["videoIds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string()),
        );
    }
    let batches = CALLBACKS / 100;
    report(
        "bulk-generate (100 videos/request)",
        batches,
        t.elapsed(),
        vec![t.elapsed() / batches as u32],
    );

    let videos = std::sync::Arc::new(videos);
    let (a, v) = (app.clone(), videos.clone());
    let (elapsed, lat) = drive(CALLBACKS, move |i| {
        let (a, v) = (a.clone(), v.clone());
        async move {
            let r = a
                .callback(
                    "/internal/videos/success",
                    json!({"videoId": v[i], "video_url": "https://cdn/x.mp4"}),
                )
                .await;
            assert_eq!(r["success"], true);
        }
    })
    .await;
    report("POST /internal/videos/success", CALLBACKS, elapsed, lat);

    let (a, v) = (app.clone(), videos.clone());
    let (elapsed, lat) = drive(CALLBACKS, move |i| {
        let (a, v) = (a.clone(), v.clone());
        async move {
            a.callback("/internal/videos/failure", json!({"videoId": v[i]}))
                .await;
        }
    })
    .await;
    report(
        "POST /internal/videos/failure (ignored)",
        CALLBACKS,
        elapsed,
        lat,
    );

    for (name, path) in [
        (
            "GET /api/webhook-events (page 1)",
            "/api/webhook-events?limit=20".to_string(),
        ),
        (
            "GET /api/webhook-events (page 100)",
            "/api/webhook-events?limit=20&page=100".to_string(),
        ),
        (
            "GET /api/webhook-events?endpoint=",
            "/api/webhook-events?endpoint=/videos/failure&limit=100".to_string(),
        ),
        (
            "GET /api/webhook-events?videoId=",
            format!("/api/webhook-events?videoId={}", videos[7]),
        ),
        (
            "GET /api/webhook-events/stats (30 d by day)",
            "/api/webhook-events/stats?bucket=day".to_string(),
        ),
    ] {
        let (a, admin, path) = (app.clone(), admin.clone(), path.clone());
        let (elapsed, lat) = drive(QUERIES, move |_| {
            let (a, admin, path) = (a.clone(), admin.clone(), path.clone());
            async move {
                let r = a.get(&path, &admin).await;
                assert_eq!(r["success"], true);
            }
        })
        .await;
        report(name, QUERIES, elapsed, lat);
    }

    // End to end: 100 videos through the simulator (callbacks after 0-50 ms) until all are final.
    let sim = server::rck_sim::spawn(
        "127.0.0.1:0".parse().unwrap(),
        server::rck_sim::SimConfig {
            min_delay: Duration::from_millis(0),
            max_delay: Duration::from_millis(50),
            failure_rate: 0.1,
            api_key: None,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let live = start(Some(format!("http://{sim}"))).await;
    let (admin, user) = shop(&live, "E2E", 1000).await;
    let ids = make_products(&live, &user, 100).await;
    let t = Instant::now();
    let r = live
        .post(
            "/api/videos/bulk-generate",
            Some(&user),
            json!({"productIds": ids, "templateId": "t", "templateName": "E2E"}),
        )
        .await;
    let accepted = t.elapsed();
    assert_eq!(r["success"], true, "{r}");
    let mut done = 0;
    for _ in 0..600 {
        let s = live
            .get("/api/videos?status=generating&limit=1", &admin)
            .await;
        if s["data"]["pagination"]["total"] == 0 {
            done = 100;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "\nbulk-generate of 100 videos: 202 after {:.1} ms; all {done} final after {:.1} ms (simulator delay 0-50 ms)",
        accepted.as_secs_f64() * 1e3,
        t.elapsed().as_secs_f64() * 1e3
    );
}
