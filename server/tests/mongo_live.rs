//! Two server processes on one MongoDB database: a webhook sent to one appears on the other's live
//! feed (`GET /api/live`), because the feed is read from MongoDB's change stream, not from local
//! writes. Needs `MONGODB_TEST_URI` (a replica set; `make test` starts a SecantusDB through
//! scripts/with-mongo.sh); fails without it unless RACKY_SKIP_MONGO_TESTS=1.

use reqwest::{Client, Response};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;
use tokio::time::{timeout_at, Instant};

const JWT_SECRET: &str = "mongo-live-test-secret-0123456789abcdef";
const ADMIN_EMAIL: &str = "root@racky.test";
const ADMIN_PASSWORD: &str = "root-password-123";

fn mongo_uri() -> Option<String> {
    match std::env::var("MONGODB_TEST_URI") {
        Ok(uri) if !uri.trim().is_empty() => Some(uri),
        _ if std::env::var("RACKY_SKIP_MONGO_TESTS").as_deref() == Ok("1") => {
            eprintln!("skipped: RACKY_SKIP_MONGO_TESTS=1");
            None
        }
        _ => panic!(
            "MONGODB_TEST_URI is not set: run `make test` (it starts a local SecantusDB), or \
             `scripts/with-mongo.sh cargo test -p server --test mongo_live`, or set MONGODB_TEST_URI \
             to a MongoDB replica set; RACKY_SKIP_MONGO_TESTS=1 skips this test"
        ),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

const WEBHOOK_SECRET: &str = "whsec_c2lnbmluZy1zZWNyZXQtZm9yLXRoZS1saXZlLXRlc3Q=";

/// A running `server` process; killed when dropped (also when the test panics), and its log shown
/// if the test failed.
struct Server {
    name: &'static str,
    child: Child,
    base: String,
    log: PathBuf,
    _dir: TempDir,
}

impl Server {
    fn start(name: &'static str, uri: &str, db: &str, rck: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let log = dir.path().join("server.log");
        let out = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_server"));
        cmd.env_clear()
            .current_dir(dir.path()) // no developer `.env` is picked up
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "info,tower_http=warn")
            .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
            .env("SERVER_URL", &base)
            .env("DATA_DIR", dir.path().join("data"))
            .env("JWT_SECRET", JWT_SECRET)
            .env("SUPERADMIN_EMAIL", ADMIN_EMAIL)
            .env("SUPERADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("MONGODB_URI", uri)
            .env("MONGODB_DB", db)
            // Token mode (the default) also accepts a valid signature: the test signs its callback.
            .env("RCK_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out);
        if let Some(rck) = rck {
            cmd.env("RCK_DESCRIPTION_SERVER_URL", rck);
        }
        let child = cmd.spawn().expect("starting the server binary");
        Self {
            name,
            child,
            base,
            log,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Waits (bounded) until `/api/health` answers and says it runs on MongoDB.
    async fn wait_ready(&mut self, http: &Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("server {} exited at start-up ({status})", self.name);
            }
            if let Ok(r) = http.get(self.url("/api/health")).send().await {
                if r.status().is_success() {
                    let body: Value = r.json().await.expect("health JSON");
                    assert_eq!(
                        body["data"]["store"], "mongodb",
                        "{} uses MongoDB",
                        self.name
                    );
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "server {} not ready within 60 s",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- last lines of server {} ---", self.name);
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

async fn call(
    http: &Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http.request(method, url.as_str());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{url}: not JSON ({status}): {text}")),
    )
}

async fn post(http: &Client, url: String, token: Option<&str>, body: Value, want: u16) -> Value {
    let (status, body) = call(http, reqwest::Method::POST, url.clone(), token, Some(body)).await;
    assert_eq!(status, want, "POST {url}: {body}");
    body
}

async fn login(http: &Client, s: &Server, email: &str, password: &str) -> String {
    let r = post(
        http,
        s.url("/api/auth/login"),
        None,
        json!({ "email": email, "password": password }),
        200,
    )
    .await;
    r["data"]["token"].as_str().expect("token").to_string()
}

/// Reads Server-Sent Events from a response: `(event name, data)`.
struct Sse {
    resp: Response,
    buf: String,
}

impl Sse {
    async fn open(http: &Client, s: &Server, token: &str) -> Self {
        let resp = http
            .get(s.url("/api/live"))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET /api/live");
        assert_eq!(resp.status().as_u16(), 200, "GET /api/live on {}", s.name);
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(ct.starts_with("text/event-stream"), "content type {ct}");
        Self {
            resp,
            buf: String::new(),
        }
    }

    /// The next message, or `None` at `deadline`.
    async fn next(&mut self, deadline: Instant) -> Option<(String, String)> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut event = String::from("message");
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some((event, data.join("\n")));
            }
            match timeout_at(deadline, self.resp.chunk()).await {
                Err(_) => return None,
                Ok(Ok(Some(bytes))) => self
                    .buf
                    .push_str(&String::from_utf8_lossy(&bytes).replace("\r\n", "\n")),
                Ok(Ok(None)) => panic!("the live feed ended"),
                Ok(Err(e)) => panic!("reading the live feed: {e}"),
            }
        }
    }

    /// Waits (bounded) for the stream's first message, sent once the subscription is in place.
    async fn ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let first = self
            .next(deadline)
            .await
            .expect("the feed says it is ready");
        assert_eq!(first.0, "ready", "first message: {first:?}");
    }

    /// Waits (bounded) until both the completed video and the recorded event of `video_id` came.
    async fn expect_webhook(&mut self, who: &str, video_id: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut video = None;
        let mut event = None;
        while video.is_none() || event.is_none() {
            let Some((_, data)) = self.next(deadline).await else {
                panic!(
                    "{who}'s feed within 20 s: video change {}, event {}",
                    if video.is_some() { "seen" } else { "missing" },
                    if event.is_some() { "seen" } else { "missing" }
                );
            };
            let change: Value = serde_json::from_str(&data).expect("LiveChange JSON");
            match change["kind"].as_str() {
                Some("video")
                    if change["video"]["_id"] == video_id
                        && change["video"]["status"] == "completed" =>
                {
                    video = Some(change["video"].clone())
                }
                Some("event") if change["event"]["videoId"] == video_id => {
                    event = Some(change["event"].clone())
                }
                _ => {}
            }
        }
        // Summaries: the status and when it changed; the record is one request away.
        let video = video.unwrap();
        assert!(video["updatedAt"].is_string(), "{video}");
        assert!(video.get("metadata").is_none(), "{video}");
        let event = event.unwrap();
        assert_eq!(event["endpoint"], "/videos/success");
        assert_eq!(event["statusCode"], 200);
        assert_eq!(event["videoId"], video["_id"]);
        assert!(
            event["payload"].is_null(),
            "the feed carries summaries, not bodies"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_sent_to_one_instance_reaches_the_other_instances_feed() {
    let Some(uri) = mongo_uri() else { return };
    let db = format!(
        "live_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    );
    // An RCK that accepts batches and never calls back: the test sends the callback itself.
    let rck = server::rck_sim::spawn(
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
    .expect("RCK simulator");
    let http = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let streaming = Client::new();

    // One after the other: the first creates the superadmin, the second finds it.
    let mut a = Server::start("A", &uri, &db, Some(&format!("http://{rck}")));
    a.wait_ready(&http).await;
    let mut b = Server::start("B", &uri, &db, None);
    b.wait_ready(&http).await;

    let admin = login(&http, &a, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let mut feed_b = Sse::open(&streaming, &b, &admin).await;
    let mut feed_a = Sse::open(&streaming, &a, &admin).await;
    feed_b.ready().await;
    feed_a.ready().await;

    // Everything through A's REST API.
    let ws = post(
        &http,
        a.url("/api/workspaces"),
        Some(&admin),
        json!({ "name": "Shop", "videoLimit": 10 }),
        201,
    )
    .await["data"]["_id"]
        .as_str()
        .unwrap()
        .to_string();
    post(
        &http,
        a.url("/api/users"),
        Some(&admin),
        json!({ "email": "seller@shop.test", "password": "password-123", "role": "USER", "workspaceId": ws }),
        201,
    )
    .await;
    let user = login(&http, &a, "seller@shop.test", "password-123").await;
    let product = post(
        &http,
        a.url("/api/products"),
        Some(&user),
        json!({ "title": "Mug", "sku": "SKU-1", "imgUrls": ["https://img.test/a.jpg"] }),
        201,
    )
    .await["data"]["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let started = post(
        &http,
        a.url("/api/videos/bulk-generate"),
        Some(&user),
        json!({ "productIds": [product], "templateId": "tpl_1", "templateName": "Showcase" }),
        202,
    )
    .await;
    let video = started["data"]["videoIds"][0]
        .as_str()
        .expect("a video id")
        .to_string();

    // RCK's callback arrives at A, signed.
    let body = serde_json::to_vec(
        &json!({ "videoId": video, "youtubeVideoId": "yt_live", "video_url": "https://cdn.test/v.mp4" }),
    )
    .unwrap();
    let secret: app::ssr::callback_auth::WebhookSecret = WEBHOOK_SECRET.parse().unwrap();
    let ts = chrono::Utc::now().timestamp();
    let id = format!("msg_live_{video}");
    let resp = http
        .post(a.url("/internal/videos/success"))
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", secret.sign(&id, ts, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let reply: Value = resp.json().await.unwrap();
    assert_eq!(reply["success"], true);

    // B never saw the request, yet its feed carries both changes.
    feed_b.expect_webhook("B", &video).await;
    feed_a.expect_webhook("A", &video).await;

    // And B reads the same state.
    let (status, body) = call(
        &http,
        reqwest::Method::GET,
        b.url(&format!("/api/videos/{video}")),
        Some(&user),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "completed");

    drop(feed_a);
    drop(feed_b);
    drop(a);
    drop(b);
    // The database (`live_<pid>_<millis>`) is left to the throwaway server of scripts/with-mongo.sh.
}
