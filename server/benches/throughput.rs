//! `make bench`: figures for the embedded store over real HTTP on loopback. Prints, never asserts.
//!
//! 1. webhook callbacks per second (success calls on distinct videos), with latency percentiles,
//!    beside a bare axum handler driven by the same client (the ceiling of this machine and client);
//! 2. event-log queries (`GET /api/webhook-events`, filtered and not) once the log holds the events;
//! 3. a 100-product bulk generation through the RCK simulator until every callback has landed;
//!    then callbacks at 2,000/s with 10 live feeds open: send to each subscriber's read;
//! 4. reads at scale: a store seeded with `SCALE_EVENTS` events and `SCALE_VIDEOS` finished videos
//!    over 30 days (as `server seed-bench` does), one request at a time;
//!
//! and one table of every figure beside its target.
//!
//! `RACKY_BENCH_INSTRUCTIONS=1` (`make bench-instructions`) measures one thing instead: the server's
//! instructions per success callback, counted by callgrind, for A/B comparisons of small changes.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const CALLBACKS: usize = 20_000;
/// Rounds of `CALLBACKS` success callbacks; the table quotes the median round.
const ROUNDS: usize = 3;
/// The offered rate of the paced round (callbacks/s): well below what this machine saturates at
/// (about the rate the store took before the group commit).
const PACED_RATE: f64 = 4_000.0;
/// Keep-alive connections of the load client.
const CONCURRENCY: usize = 64;
const QUERIES: usize = 300;
const SCALE_EVENTS: u64 = 1_000_000;
const SCALE_VIDEOS: u64 = 300_000;
/// Requests per read at scale (one at a time).
const SCALE_QUERIES: usize = 60;

/// RCK's signing secret: the benchmark calls back as a signing RCK does (it does not see the
/// per-batch tokens, and token mode accepts a valid signature in their place).
const WEBHOOK_SECRET: &str = "whsec_YmVuY2gtd2ViaG9vay1zZWNyZXQtYmVuY2g=";

struct App {
    base: String,
    http: reqwest::Client,
    secret: app::ssr::callback_auth::WebhookSecret,
    deliveries: std::sync::atomic::AtomicU64,
    /// The server: the release binary in a process of its own, so its CPU time and memory are its
    /// own (the load client stays in this process). Killed when the bench drops it.
    server: Process,
    dir: tempfile::TempDir,
}

/// A child process, killed on drop (a benchmark that panics leaves nothing running).
struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Process {
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

async fn start(rck: Option<String>) -> App {
    start_on(rck, tempfile::tempdir().unwrap()).await
}

/// A free loopback port (bound, read, released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (bounded) until `url` answers 200.
async fn ready(http: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(url).send().await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{url} did not answer within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts `server` (the binary, as an operator would) on the store in `dir`.
async fn start_on(rck: Option<String>, dir: tempfile::TempDir) -> App {
    let addr = format!("127.0.0.1:{}", free_port());
    // `RACKY_BENCH_SERVER`: another build of the server to measure (an A/B against this one).
    let bin = std::env::var("RACKY_BENCH_SERVER").unwrap_or(env!("CARGO_BIN_EXE_server").into());
    // `RACKY_BENCH_INSTRUCTIONS`: the server runs under callgrind, counting nothing until told.
    let mut cmd = if std::env::var_os(INSTRUCTIONS_VAR).is_some() {
        let mut cmd = std::process::Command::new("valgrind");
        cmd.arg("--tool=callgrind")
            .arg("--instr-atstart=no")
            .arg(format!(
                "--callgrind-out-file={}",
                dir.path().join("callgrind.out").display()
            ))
            .arg(bin);
        cmd
    } else {
        std::process::Command::new(bin)
    };
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", dir.path())
        .env("LEPTOS_SITE_ADDR", &addr)
        .env("SERVER_URL", format!("http://{addr}"))
        .env("JWT_SECRET", "bench-secret-bench-secret-bench-secret-0123")
        .env("SUPERADMIN_EMAIL", "bench@racky.test")
        .env("SUPERADMIN_PASSWORD", "bench-password")
        .env("RCK_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("LEPTOS_OUTPUT_NAME", "racky-videos")
        .env("LEPTOS_SITE_ROOT", "target/site")
        // Its log lines are written (and paid for) as in production, then dropped.
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(url) = rck {
        cmd.env("RCK_DESCRIPTION_SERVER_URL", url);
    }
    let server = Process(cmd.spawn().expect("start the server binary"));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let base = format!("http://{addr}");
    ready(&http, &format!("{base}/api/health")).await;
    App {
        base,
        http,
        secret: WEBHOOK_SECRET.parse().unwrap(),
        deliveries: Default::default(),
        server,
        dir,
    }
}

impl App {
    /// The server's address (`host:port`).
    fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// The headers RCK signs a delivery of `bytes` with (Standard Webhooks); one delivery id per
    /// call.
    fn signature(&self, bytes: &[u8]) -> [(&'static str, String); 3] {
        let n = self
            .deliveries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("msg_bench_{n}");
        let ts = chrono::Utc::now().timestamp();
        let signature = self.secret.sign(&id, ts, bytes);
        [
            ("webhook-id", id),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", signature),
        ]
    }

    /// A callback as RCK sends it, ready for [`blast`].
    fn signed(&self, path: &str, body: &Value) -> Prepared {
        let bytes = serde_json::to_vec(body).unwrap();
        let mut request = post(self.addr(), path);
        for (name, value) in self.signature(&bytes) {
            request = request.header(name, value);
        }
        request.body(Full::new(Bytes::from(bytes))).unwrap()
    }

    /// A callback as RCK sends it, sent now; its answer.
    async fn callback(&self, path: &str, body: Value) -> Value {
        let bytes = serde_json::to_vec(&body).unwrap();
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        for (name, value) in self.signature(&bytes) {
            request = request.header(name, value);
        }
        request
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
    /// A GET, or (for `POST <path> <form>`) a server function call with a form body.
    async fn read(&self, what: &str, token: &str) -> Value {
        match what.strip_prefix("POST ") {
            None => self.get(what, token).await,
            Some(rest) => {
                let (path, form) = rest.split_once(' ').unwrap_or((rest, ""));
                self.http
                    .post(format!("{}{path}", self.base))
                    .bearer_auth(token)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form.to_string())
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap()
            }
        }
    }

    /// `GET /metrics`, as text.
    async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// `racky_videos{status="completed"}` from `GET /metrics`.
    async fn completed_videos(&self) -> u64 {
        metric(&self.metrics().await, "racky_videos{status=\"completed\"}")
            .expect("racky_videos{status=\"completed\"} in /metrics") as u64
    }

    /// The group commit's running totals, from `GET /metrics`.
    async fn writer(&self) -> WriterTotals {
        let text = self.metrics().await;
        let get = |name: &str| metric(&text, name).unwrap_or(0.0);
        WriterTotals {
            writes: get("racky_store_batch_writes_total"),
            batches: get("racky_store_batch_commit_seconds_count"),
            applying: get("racky_store_batch_apply_seconds_sum"),
            committing: get("racky_store_batch_commit_seconds_sum"),
        }
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

/// The value of the unlabelled (or exactly labelled) sample `name` in a Prometheus text page.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|n| n.trim().parse().ok())
}

/// The SQLite writer's totals (`racky_store_batch_*`): writes and batches committed, seconds spent
/// applying and committing them.
#[derive(Clone, Copy, Default)]
struct WriterTotals {
    writes: f64,
    batches: f64,
    applying: f64,
    committing: f64,
}

/// What the one writer did during a round.
#[derive(Clone, Copy)]
struct WriterRound {
    /// Writes per group commit.
    per_batch: f64,
    /// Microseconds applying one write (its share of its batch's time before the commit).
    apply_us: f64,
    /// Microseconds per commit (writing the WAL frames and the fsync).
    commit_us: f64,
    /// Share of the round's time the writer was applying or committing.
    busy: f64,
}

impl WriterRound {
    /// Writes per second the writer could commit at this batch size if it were never idle.
    fn bound(&self) -> f64 {
        self.per_batch * 1e6 / (self.per_batch * self.apply_us + self.commit_us)
    }
}

impl WriterTotals {
    fn since(self, before: WriterTotals, elapsed: Duration) -> WriterRound {
        let writes = (self.writes - before.writes).max(1.0);
        let batches = (self.batches - before.batches).max(1.0);
        let (applying, committing) = (
            self.applying - before.applying,
            self.committing - before.committing,
        );
        WriterRound {
            per_batch: writes / batches,
            apply_us: applying * 1e6 / writes,
            commit_us: committing * 1e6 / batches,
            busy: (applying + committing) / elapsed.as_secs_f64(),
        }
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

/// Starts at least `n` videos of `products` (100 per request); their ids.
async fn start_videos(app: &App, user: &str, products: &[String], n: usize) -> Vec<String> {
    let mut videos = Vec::new();
    while videos.len() < n {
        let r = app
            .post(
                "/api/videos/bulk-generate",
                Some(user),
                json!({"productIds": products, "templateId": "t", "templateName": "Bench"}),
            )
            .await;
        assert_eq!(r["success"], true, "{r}");
        videos.extend(
            r["data"]["videoIds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string()),
        );
    }
    videos
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

/// Throughput and latency percentiles of one measurement, in ops/s and ms.
#[derive(Clone, Copy)]
struct Figures {
    rate: f64,
    p50: f64,
    p95: f64,
    p99: f64,
}

fn report(name: &str, n: usize, elapsed: Duration, mut lat: Vec<Duration>) -> Figures {
    lat.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let figures = Figures {
        rate: n as f64 / elapsed.as_secs_f64(),
        p50: ms(pct(&lat, 0.50)),
        p95: ms(pct(&lat, 0.95)),
        p99: ms(pct(&lat, 0.99)),
    };
    println!(
        "{name:<44} {n:>6} ops in {:>7.2} s = {:>8.0} ops/s   p50 {:>6.2} ms  p95 {:>6.2} ms  p99 {:>6.2} ms",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        pct(&lat, 0.50).as_secs_f64() * 1e3,
        pct(&lat, 0.95).as_secs_f64() * 1e3,
        pct(&lat, 0.99).as_secs_f64() * 1e3,
    );
    figures
}

/// CPU time process `pid` has used (user + system), from /proc (Linux).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Duration::from_secs_f64((ticks(11) + ticks(12)) as f64 / 100.0)
}

/// Peak resident memory of process `pid`, in MB.
fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Resets the peak resident memory of process `pid` to its current size (Linux: `5` into
/// `clear_refs`), so the next reading is the peak of what follows. Setting up the benchmark logs in
/// and creates a user, and each password hash (Argon2id, 19 MiB by design) would otherwise stand as
/// the peak of the callback load.
fn reset_peak_rss(pid: u32) {
    if let Err(e) = std::fs::write(format!("/proc/{pid}/clear_refs"), "5") {
        println!("(cannot reset the server's peak RSS: {e}; the figure includes the setup)");
    }
}

/// Set (to anything) to stop after the callback figures: a quick loop while working on ingest.
const CALLBACKS_ONLY_VAR: &str = "RACKY_BENCH_CALLBACKS_ONLY";

/// Set on the copy of this benchmark that serves the bare handler.
const BARE_ADDR_VAR: &str = "RACKY_BENCH_BARE_ADDR";

/// The bare server: a process of its own like the real one, on tokio's default runtime like
/// `server`; answers `{"success":true}` to any POST /ok.
fn serve_bare(addr: &str) {
    let addr: std::net::SocketAddr = addr.parse().expect("RACKY_BENCH_BARE_ADDR");
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            let app = axum::Router::new().route(
                "/ok",
                axum::routing::post(|| async { axum::Json(json!({ "success": true })) }),
            );
            let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
            axum::serve(listener, app).await.unwrap();
        });
}

/// A bare axum handler in a process of its own, driven by the same client: what this machine and
/// this client can do at most, for comparison.
async fn bare_ceiling() -> Figures {
    let addr = format!("127.0.0.1:{}", free_port());
    let _bare = Process(
        std::process::Command::new(std::env::current_exe().unwrap())
            .env(BARE_ADDR_VAR, &addr)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    // Up once it answers a POST.
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.post(format!("http://{addr}/ok")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the bare server did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let n = 20_000;
    let requests = (0..n)
        .map(|_| {
            post(&addr, "/ok")
                .body(Full::new(Bytes::from_static(br#"{"videoId":"x"}"#)))
                .unwrap()
        })
        .collect();
    let (elapsed, lat, failed) = blast(&addr, requests).await;
    assert_eq!(
        failed, 0,
        "the bare handler answered {failed} requests with an error"
    );
    report("bare axum handler (the ceiling)", n, elapsed, lat)
}

/// A request of the load client, made (and signed) before the clock starts.
type Prepared = http::Request<Full<Bytes>>;

/// A JSON POST to `path` on `addr` as the load client sends it (origin-form, with `Host`).
fn post(addr: &str, path: &str) -> http::request::Builder {
    http::Request::post(path)
        .header("host", addr)
        .header("content-type", "application/json")
}

/// The load client of the throughput figures: `CONCURRENCY` keep-alive HTTP/1.1 connections to
/// `addr` (hyper's client connection: no pool, no JSON on the way), each sending its share of
/// `requests` one after another. Every request is made and signed before the clock starts, so the
/// client costs little more than its sockets and leaves the server the rest of the machine (a
/// client doing its JSON and signing in the loop took about a third of a core at 6,000/s).
/// Returns the elapsed time, every latency, and how many answers were not 2xx.
async fn blast(addr: &str, requests: Vec<Prepared>) -> (Duration, Vec<Duration>, usize) {
    blast_at(addr, requests, None).await
}

/// [`blast`], or with `rate` (requests per second) an open-loop load: request `i` is due
/// `i / rate` seconds after the start. Its latency counts from its send, or from when it was due if
/// its connection was still busy then (so a slow answer also delays the ones behind it in the
/// figures: no coordinated omission).
async fn blast_at(
    addr: &str,
    requests: Vec<Prepared>,
    rate: Option<f64>,
) -> (Duration, Vec<Duration>, usize) {
    let n = requests.len();
    let mut shares: Vec<Vec<(usize, Prepared)>> = (0..CONCURRENCY).map(|_| Vec::new()).collect();
    for (i, r) in requests.into_iter().enumerate() {
        shares[i % CONCURRENCY].push((i, r));
    }
    let mut senders = Vec::new();
    for _ in 0..CONCURRENCY {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        senders.push(sender);
    }
    let start = Instant::now();
    let tasks: Vec<_> = senders
        .into_iter()
        .zip(shares)
        .map(|(mut sender, share)| {
            tokio::spawn(async move {
                let (mut lat, mut failed) = (Vec::with_capacity(share.len()), 0);
                for (i, req) in share {
                    let t = match rate {
                        Some(rate) => {
                            let due = start + Duration::from_secs_f64(i as f64 / rate);
                            if Instant::now() < due {
                                // On time: from the send (the timer's own lateness is the client's).
                                tokio::time::sleep_until(due.into()).await;
                                Instant::now()
                            } else {
                                // Behind, as the answer before came late: the wait counts.
                                due
                            }
                        }
                        None => Instant::now(),
                    };
                    sender.ready().await.unwrap();
                    let resp = sender.send_request(req).await.unwrap();
                    let ok = resp.status().is_success();
                    resp.into_body().collect().await.unwrap();
                    lat.push(t.elapsed());
                    failed += usize::from(!ok);
                }
                (lat, failed)
            })
        })
        .collect();
    let (mut all, mut failed) = (Vec::with_capacity(n), 0);
    for t in tasks {
        let (lat, f) = t.await.unwrap();
        all.extend(lat);
        failed += f;
    }
    (start.elapsed(), all, failed)
}

/// Runs `n` requests made by `make(i)` with `CONCURRENCY` in flight; returns elapsed and latencies.
async fn drive<F, Fut>(n: usize, make: F) -> (Duration, Vec<Duration>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static + Clone,
    Fut: std::future::Future<Output = ()> + Send,
{
    drive_with(CONCURRENCY, n, make).await
}

/// Runs `n` requests made by `make(i)`, `concurrency` in flight.
async fn drive_with<F, Fut>(concurrency: usize, n: usize, make: F) -> (Duration, Vec<Duration>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static + Clone,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let mut handles = Vec::new();
    for w in 0..concurrency {
        let make = make.clone();
        handles.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = w;
            while i < n {
                let t = Instant::now();
                make(i).await;
                lat.push(t.elapsed());
                i += concurrency;
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

/// One line of the final table.
struct Line {
    what: &'static str,
    measured: String,
    target: &'static str,
}

fn main() {
    if let Ok(addr) = std::env::var(BARE_ADDR_VAR) {
        return serve_bare(&addr);
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    if std::env::var_os(INSTRUCTIONS_VAR).is_some() {
        return runtime.block_on(instructions_per_callback());
    }
    runtime.block_on(bench());
}

/// An RCK simulator that never calls back, so the benchmark drives the callbacks itself.
async fn idle_simulator() -> std::net::SocketAddr {
    server::rck_sim::spawn(
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
    .unwrap()
}

/// A signed success callback for each of `videos`, ready for [`blast`].
fn success_requests(app: &App, videos: &[String]) -> Vec<Prepared> {
    videos
        .iter()
        .map(|v| {
            app.signed(
                "/internal/videos/success",
                &json!({"videoId": v, "video_url": "https://cdn/x.mp4"}),
            )
        })
        .collect()
}

/// Makes the server run under callgrind (`valgrind`), which counts the instructions it executes.
const INSTRUCTIONS_VAR: &str = "RACKY_BENCH_INSTRUCTIONS";
/// Callbacks counted by `instructions_per_callback`.
const COUNTED_CALLBACKS: usize = 2_000;

/// The server's work per success callback as a count of instructions, HTTP side and writer
/// together, read by callgrind while the lean client sends `COUNTED_CALLBACKS` of them. Unlike
/// seconds, the count barely moves with the machine's moment (its CPU, the other process, the
/// clock), so a change of a few percent can be told from noise in one run of each build, A and B
/// (`RACKY_BENCH_SERVER`). Callgrind runs the server's threads one at a time, about 50 times
/// slower, so the writer's batches are not those of a normal run: compare counts with counts only.
async fn instructions_per_callback() {
    let idle_sim = idle_simulator().await;
    let app = start(Some(format!("http://{idle_sim}"))).await;
    let (_, user) = shop(&app, "Counted", 1_000_000).await;
    let products = make_products(&app, &user, 100).await;
    let videos = start_videos(&app, &user, &products, COUNTED_CALLBACKS).await;
    let requests = success_requests(&app, &videos);
    let pid = app.server.pid().to_string();
    let control = |args: &[&str]| {
        let ok = std::process::Command::new("callgrind_control")
            .args(args)
            .arg(&pid)
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "callgrind_control {args:?} failed (is valgrind installed?)"
        );
    };
    control(&["--instr=on"]);
    let (_, _, failed) = blast(app.addr(), requests).await;
    control(&["--instr=off"]);
    assert_eq!(failed, 0, "{failed} callbacks were not acknowledged");
    control(&["--dump"]);
    // The dump is written by the server's process itself, as soon as it is scheduled: wait for it.
    let dir = app.dir.path().to_path_buf();
    let deadline = Instant::now() + Duration::from_secs(60);
    let total = loop {
        let total: u64 = callgrind_dumps(&dir)
            .iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .flat_map(|text| {
                text.lines()
                    .filter_map(|l| l.strip_prefix("totals: "))
                    .filter_map(|n| n.trim().parse::<u64>().ok())
                    .collect::<Vec<_>>()
            })
            .sum();
        if total > 0 || Instant::now() > deadline {
            break total;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(total > 0, "callgrind wrote no counts in {}", dir.display());
    // Kept for `callgrind_annotate`, which says where the instructions went.
    let kept = std::env::temp_dir().join("racky-bench-callgrind.out");
    let dumps = callgrind_dumps(&dir);
    if let Some(dump) = dumps
        .iter()
        .max_by_key(|p| p.metadata().map(|m| m.len()).unwrap_or(0))
    {
        let _ = std::fs::copy(dump, &kept);
    }
    println!(
        "server instructions per success callback: {:.0} ({COUNTED_CALLBACKS} callbacks, \
         {CONCURRENCY} connections; the profile: callgrind_annotate {})",
        total as f64 / COUNTED_CALLBACKS as f64,
        kept.display()
    );
}

/// The files callgrind wrote in `dir` (`callgrind.out` at start, one more per dump).
fn callgrind_dumps(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("callgrind.out"))
        .map(|e| e.path())
        .collect()
}

async fn bench() {
    println!("racky-videos benchmarks (SQLite store; the server binary in its own process; HTTP over loopback, {CONCURRENCY} keep-alive connections)\n");
    let mut table: Vec<Line> = Vec::new();
    let ceiling = bare_ceiling().await;

    let idle_sim = idle_simulator().await;
    let app = std::sync::Arc::new(start(Some(format!("http://{idle_sim}"))).await);
    let (admin, user) = shop(&app, "Bench", 1_000_000).await;
    let products = make_products(&app, &user, 100).await;

    // ROUNDS rounds of CALLBACKS success callbacks, each on videos of its own; the table quotes the
    // median round and the range (one round's figures vary with the machine's moment).
    let mut rounds = Vec::with_capacity(ROUNDS);
    let mut videos = Vec::new();
    for round in 1..=ROUNDS {
        videos = start_videos_timed(&app, &user, &products).await;
        rounds.push(success_round(&app, &videos).await);
        // Every acknowledged callback is there: the maintained counters, read through `/metrics`
        // (a list's total of this size may be a few seconds old).
        assert_eq!(app.completed_videos().await, (round * CALLBACKS) as u64);
    }
    let spread = |f: fn(&Round) -> f64, digits: usize| {
        let mut v: Vec<f64> = rounds.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        let median = v[v.len() / 2];
        let range = format!("{:.digits$}-{:.digits$}", v[0], v[v.len() - 1]);
        (median, range)
    };
    let (rate, rates) = spread(|r| r.figures.rate, 0);
    let (p99, p99s) = spread(|r| r.figures.p99, 1);
    let (cpu, cpus) = spread(|r| r.cpu_per_call, 3);
    let (client, _) = spread(|r| r.client_per_call, 3);
    table.push(Line {
        what: "acknowledged success callbacks/s (synchronous=FULL)",
        measured: format!("{rate:.0} (median of {ROUNDS}: {rates})"),
        target: ">= 20,000",
    });
    table.push(Line {
        what: "callback latency p99 at that load",
        measured: format!("{p99:.1} ms ({p99s})"),
        target: "<= 10 ms",
    });
    table.push(Line {
        what: "server CPU per callback",
        measured: format!("{cpu:.3} ms ({cpus}; load client {client:.3})"),
        target: "<= 0.10 ms",
    });
    // Why the rate is what it is: the one writer's time, in the median round by rate.
    let mut by_rate: Vec<&Round> = rounds.iter().collect();
    by_rate.sort_by(|a, b| a.figures.rate.total_cmp(&b.figures.rate));
    let w = by_rate[by_rate.len() / 2].writer;
    table.push(Line {
        what: "the one writer, median round: batch, commit, apply, busy",
        measured: format!(
            "{:.0} writes/commit; {:.0} us/commit; {:.1} us/write; {:.0} % busy",
            w.per_batch,
            w.commit_us,
            w.apply_us,
            100.0 * w.busy
        ),
        target: "(why the rate)",
    });
    table.push(Line {
        what: "the writer's bound at that batch size, never idle",
        measured: format!("{:.0}/s", w.bound()),
        target: "(why the rate)",
    });
    table.push(Line {
        what: "bare axum handler, same client (the ceiling)",
        measured: format!(
            "{:.0}/s (callbacks reach {:.1} % of it)",
            ceiling.rate,
            100.0 * rate / ceiling.rate
        ),
        target: "(ratio)",
    });

    // Below saturation: the same callbacks offered at a fixed rate, as RCK would send them.
    let videos_paced = start_videos_timed(&app, &user, &products).await;
    let (elapsed, lat, failed) = blast_at(
        app.addr(),
        success_requests(&app, &videos_paced),
        Some(PACED_RATE),
    )
    .await;
    assert_eq!(failed, 0, "{failed} paced callbacks were not acknowledged");
    assert_eq!(
        app.completed_videos().await,
        ((ROUNDS + 1) * CALLBACKS) as u64
    );
    let paced = report(
        "POST /internal/videos/success (paced)",
        CALLBACKS,
        elapsed,
        lat,
    );
    table.push(Line {
        what: "callback latency below saturation (open loop)",
        measured: format!(
            "p50 {:.1} ms, p99 {:.1} ms at {PACED_RATE:.0}/s offered",
            paced.p50, paced.p99
        ),
        target: "(p99 below saturation)",
    });

    let peak_rss = |what, mb: f64| Line {
        what,
        measured: format!("{mb:.0} MB"),
        target: "<= 64 MB",
    };
    if std::env::var_os(CALLBACKS_ONLY_VAR).is_some() {
        let mb = rounds.iter().map(|r| r.peak_rss_mb).fold(0.0, f64::max);
        table.push(peak_rss("server peak RSS during the success callbacks", mb));
        return print_table(&table);
    }

    let requests = videos
        .iter()
        .map(|v| app.signed("/internal/videos/failure", &json!({"videoId": v})))
        .collect();
    let (elapsed, lat, _) = blast(app.addr(), requests).await;
    report(
        "POST /internal/videos/failure (ignored)",
        CALLBACKS,
        elapsed,
        lat,
    );
    let mb = rounds
        .iter()
        .map(|r| r.peak_rss_mb)
        .fold(peak_rss_mb(app.server.pid()), f64::max);
    table.push(peak_rss("server peak RSS during the callback load", mb));

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

    live_latency(&app, &admin, &user, &products, &mut table).await;

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

    at_scale(&mut table).await;
    table.push(wasm_over_the_wire());

    print_table(&table);
}

/// One round of the success callbacks: its figures and the CPU time per callback of the server and
/// of the load client.
struct Round {
    figures: Figures,
    cpu_per_call: f64,
    client_per_call: f64,
    /// The server's peak resident memory during the round.
    peak_rss_mb: f64,
    writer: WriterRound,
}

/// `CALLBACKS` fresh videos, started 100 per bulk request (its time is printed).
async fn start_videos_timed(app: &App, user: &str, products: &[String]) -> Vec<String> {
    let t = Instant::now();
    let videos = start_videos(app, user, products, CALLBACKS).await;
    let batches = CALLBACKS / 100;
    report(
        "bulk-generate (100 videos/request)",
        batches,
        t.elapsed(),
        vec![t.elapsed() / batches as u32],
    );
    videos
}

/// A signed success callback for each video, sent by the lean client; every one must be
/// acknowledged.
async fn success_round(app: &App, videos: &[String]) -> Round {
    let requests = success_requests(app, videos);
    reset_peak_rss(app.server.pid());
    let writer = app.writer().await;
    let (cpu, client_cpu) = (cpu_time(app.server.pid()), cpu_time(std::process::id()));
    let (elapsed, lat, failed) = blast(app.addr(), requests).await;
    let peak_rss_mb = peak_rss_mb(app.server.pid());
    let writer = app.writer().await.since(writer, elapsed);
    assert_eq!(
        failed, 0,
        "{failed} success callbacks were not acknowledged"
    );
    let per_call = |d: Duration| d.as_secs_f64() * 1e3 / videos.len() as f64;
    let cpu_per_call = per_call(cpu_time(app.server.pid()) - cpu);
    let client_per_call = per_call(cpu_time(std::process::id()) - client_cpu);
    Round {
        figures: report("POST /internal/videos/success", videos.len(), elapsed, lat),
        cpu_per_call,
        client_per_call,
        peak_rss_mb,
        writer,
    }
}

/// The page's WASM as browsers get it: the brotli file `make release` writes next to it (the
/// benchmark's own build has no site). The newest one, if there are several.
fn wasm_over_the_wire() -> Line {
    let pkg = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/site/pkg");
    let newest = std::fs::read_dir(&pkg)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".wasm.br"))
        .filter_map(|e| e.metadata().ok())
        .filter_map(|m| Some((m.modified().ok()?, m.len())))
        .max_by_key(|(modified, _)| *modified);
    let measured = match newest {
        Some((_, bytes)) => format!("{bytes} B (from the last make release)"),
        None => "no release build: run make release first".into(),
    };
    Line {
        what: "WASM over the wire (release, brotli)",
        measured,
        target: "<= 300 KB",
    }
}

fn print_table(table: &[Line]) {
    println!("\n{:<58} {:<48} target", "what", "measured");
    for l in table {
        println!("{:<58} {:<48} {}", l.what, l.measured, l.target);
    }
}

/// Live dashboards: `LIVE_CLIENTS` SSE subscribers while callbacks arrive at `LIVE_RATE` per second;
/// the time from sending a callback to each subscriber reading its `video` change.
const LIVE_CLIENTS: usize = 10;
const LIVE_RATE: u64 = 2_000;
const LIVE_CALLBACKS: usize = 2_000;

async fn live_latency(
    app: &std::sync::Arc<App>,
    admin: &str,
    user: &str,
    products: &[String],
    table: &mut Vec<Line>,
) {
    use futures::StreamExt;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    let videos = start_videos(app, user, products, LIVE_CALLBACKS).await;
    // Each subscriber notes when it read each video's change to `completed`.
    let seen: Arc<Mutex<Vec<HashMap<String, Instant>>>> =
        Arc::new(Mutex::new(vec![HashMap::new(); LIVE_CLIENTS]));
    let mut readers = Vec::new();
    for c in 0..LIVE_CLIENTS {
        let resp = reqwest::Client::new()
            .get(format!("{}/api/live", app.base))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap();
        let seen = seen.clone();
        readers.push(tokio::spawn(async move {
            let mut stream = resp.bytes_stream();
            let mut buf = String::new();
            while let Some(Ok(chunk)) = stream.next().await {
                let now = Instant::now();
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let frame: String = buf.drain(..end + 2).collect();
                    let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data:")) else {
                        continue;
                    };
                    let Ok(v) = serde_json::from_str::<Value>(data.trim()) else {
                        continue;
                    };
                    if v["kind"] == "video" && v["video"]["status"] == "completed" {
                        if let Some(id) = v["video"]["_id"].as_str() {
                            seen.lock().unwrap()[c].insert(id.to_string(), now);
                        }
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Callbacks paced at LIVE_RATE per second.
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let start = Instant::now();
    let mut calls = Vec::new();
    for (i, v) in videos.iter().enumerate() {
        let due = start + Duration::from_micros(i as u64 * 1_000_000 / LIVE_RATE);
        tokio::time::sleep_until(due.into()).await;
        let (a, v, sent) = (app.clone(), v.clone(), sent.clone());
        calls.push(tokio::spawn(async move {
            sent.lock().unwrap().insert(v.clone(), Instant::now());
            a.callback(
                "/internal/videos/success",
                json!({"videoId": v, "video_url": "https://cdn/live.mp4"}),
            )
            .await;
        }));
    }
    for c in calls {
        c.await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for r in readers {
        r.abort();
    }
    let sent = sent.lock().unwrap();
    let seen = seen.lock().unwrap();
    let mut lat: Vec<Duration> = Vec::new();
    let mut missing = 0;
    for per_client in seen.iter() {
        for (v, t0) in sent.iter() {
            match per_client.get(v) {
                Some(t) => lat.push(t.saturating_duration_since(*t0)),
                None => missing += 1,
            }
        }
    }
    let n = lat.len();
    let f = report(
        "callback -> SSE subscriber (10 open, 2,000/s)",
        n,
        start.elapsed(),
        lat,
    );
    table.push(Line {
        what: "webhook -> live feed, 10 dashboards, 2,000 callbacks/s",
        measured: format!(
            "p50 {:.1} ms, p95 {:.1} ms ({missing} missed)",
            f.p50, f.p95
        ),
        target: "<= 150 ms to the DOM",
    });
}

/// Reads against a large store, one request at a time (latency as the client sees it on loopback).
async fn at_scale(table: &mut Vec<Line>) {
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let data = dir.path().to_path_buf();
    let seeded = tokio::task::spawn_blocking(move || {
        app::ssr::store::sqlite::seed::seed_bench(&data, SCALE_EVENTS, SCALE_VIDEOS, 30)
    })
    .await
    .unwrap()
    .unwrap();
    println!(
        "\nat scale: seeded {} events and {} finished videos over 30 days in {:.1} s",
        seeded.events,
        seeded.videos,
        t.elapsed().as_secs_f64()
    );
    table.push(Line {
        what: "seed-bench: 1,000,000 events + 300,000 videos",
        measured: format!("{:.1} s", t.elapsed().as_secs_f64()),
        target: "< 60 s",
    });
    let app = std::sync::Arc::new(start_on(None, dir).await);
    let admin = login(&app, "bench@racky.test").await;
    let deep = seeded
        .deep
        .map(|(at, id)| app::model::Keyset { at, id }.encode())
        .unwrap_or_default();
    let day_ago =
        app::model::Timestamp::from_millis(app::model::Timestamp::now().millis() - 86_400_000);
    let reads: [(&'static str, String, &'static str); 8] = [
        (
            "GET /api/webhook-events page 1",
            "/api/webhook-events?limit=20".into(),
            "<= 3 ms",
        ),
        (
            "GET /api/webhook-events page 40,000 (page=)",
            "/api/webhook-events?limit=20&page=40000".into(),
            "(page numbers keep working)",
        ),
        (
            "GET /api/webhook-events deep, by cursor",
            format!("/api/webhook-events?limit=20&cursor={deep}"),
            "<= 3 ms",
        ),
        (
            "GET /api/webhook-events?endpoint=/videos/failure page 1",
            "/api/webhook-events?limit=20&endpoint=/videos/failure".into(),
            "<= 3 ms",
        ),
        (
            "GET /api/videos?status=failed",
            "/api/videos?status=failed&limit=20".into(),
            "<= 5 ms",
        ),
        (
            "GET /api/webhook-events/stats 30 d by day",
            "/api/webhook-events/stats?bucket=day&from=".to_string()
                + &app::model::Timestamp::from_millis(
                    app::model::Timestamp::now().millis() - 30 * 86_400_000,
                )
                .to_string(),
            "<= 20 ms",
        ),
        (
            "GET /api/webhook-events/stats 24 h by hour",
            format!("/api/webhook-events/stats?bucket=hour&from={day_ago}"),
            "<= 10 ms",
        ),
        (
            "Overview data, 30 d (its server function)",
            "POST /api/fn/overview range=Month".into(),
            "<= 30 ms",
        ),
    ];
    for (name, path, target) in reads {
        let (a, admin, p) = (app.clone(), admin.clone(), path.clone());
        // Warm the page cache and the totals once, as a live server would be.
        let first = a.read(&p, &admin).await;
        assert!(first.is_object(), "{name}: {first}");
        let (elapsed, lat) = drive_with(1, SCALE_QUERIES, move |_| {
            let (a, admin, p) = (a.clone(), admin.clone(), p.clone());
            async move {
                let r = a.read(&p, &admin).await;
                assert!(r.get("success") != Some(&json!(false)), "{r}");
            }
        })
        .await;
        let f = report(name, SCALE_QUERIES, elapsed, lat);
        table.push(Line {
            what: name,
            measured: format!("p50 {:.1} ms, p95 {:.1} ms", f.p50, f.p95),
            target,
        });
    }
}
