//! Breaking things for real, against the server binary: `kill -9` under callback load, and the
//! SQLite database locked by another process under load. What was acknowledged is there afterwards,
//! with its event; what was refused was refused with 503 in time and is recorded too.

use crate::support::{RecordingRck, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};
use futures::StreamExt;
use reqwest::Client;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The server binary on `data_dir` (and MongoDB when `mongo` is given); killed when dropped.
struct Process {
    child: Child,
    addr: SocketAddr,
}

impl Process {
    async fn start(data_dir: &Path, rck: SocketAddr, mongo: Option<(&str, &str)>) -> Self {
        let port = crate::support::free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("server.log"))
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_server"));
        cmd.env_clear()
            .current_dir(data_dir)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            // Notifications to the tests' local receivers, retried quickly.
            .env("NOTIFY_ALLOW_PRIVATE_URLS", "1")
            .env("NOTIFY_RETRY_BASE_SECONDS", "0.2")
            .env("DATA_DIR", data_dir.join("data"))
            .env("JWT_SECRET", "breakage-secret-breakage-secret-0123")
            .env("LEPTOS_SITE_ADDR", addr.to_string())
            .env("SERVER_URL", format!("http://{addr}"))
            .env("SUPERADMIN_EMAIL", ADMIN_EMAIL)
            .env("SUPERADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("RCK_DESCRIPTION_SERVER_URL", format!("http://{rck}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Some((uri, db)) = mongo {
            cmd.env("MONGODB_URI", uri).env("MONGODB_DB", db);
        }
        let mut child = cmd.spawn().expect("starting the server binary");
        let http = Client::new();
        for _ in 0..300 {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the server exited at start-up ({status})");
            }
            if let Ok(r) = http.get(format!("http://{addr}/api/health")).send().await {
                if r.status() == 200 {
                    return Self { child, addr };
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("the server was not ready within 60 s");
    }

    /// A client of this process with the test helpers (its `data_dir` is unused).
    fn app(&self) -> TestApp {
        TestApp {
            addr: self.addr,
            http: Client::new(),
            data_dir: tempfile::tempdir().unwrap(),
        }
    }

    /// SIGKILL: no shutdown, no flush, nothing.
    fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// A workspace with `n` videos started against `rck`; their ids.
async fn videos(app: &TestApp, n: usize) -> (String, Vec<String>) {
    let admin = app.admin().await;
    let ws = app.workspace(&admin, 10_000).await;
    let user = app.user_in(&admin, &ws, "USER").await;
    let mut products = Vec::new();
    for i in 0..50.min(n) {
        products.push(app.product(&user, &format!("P{i}")).await);
    }
    let mut ids = Vec::new();
    while ids.len() < n {
        let take = (n - ids.len()).min(products.len());
        let r = app
            .post(
                "/api/videos/bulk-generate",
                Some(&user),
                json!({ "productIds": &products[..take], "templateId": "t", "templateName": "T" }),
            )
            .await
            .expect(202);
        for v in r.data()["videoIds"].as_array().unwrap() {
            ids.push(v.as_str().unwrap().to_string());
        }
    }
    (admin, ids)
}

/// A success callback for `video`, as RCK sends it (with the token it was given), to `base`.
async fn success(
    http: &Client,
    base: SocketAddr,
    rck: &RecordingRck,
    video: &str,
) -> reqwest::Result<reqwest::Response> {
    let query = rck.query_for(video).expect("RCK was given the video");
    http.post(format!("http://{base}/internal/videos/success{query}"))
        .json(&json!({ "videoId": video, "videoUrl": format!("https://cdn.test/{video}.mp4") }))
        .send()
        .await
}

async fn events_of(app: &TestApp, admin: &str, video: &str) -> Vec<Value> {
    app.events_for(admin, video).await
}

/// A client that gives up after 3 s: an answer slower than the outage bound fails the test.
fn bounded() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap()
}

/// During an outage: every callback is answered 503 `Storage unavailable` with `Retry-After`, in time.
async fn assert_refused_in_time(app: &TestApp, rck: &RecordingRck, ids: &[String]) {
    let http = bounded();
    let during =
        futures::future::join_all(ids.iter().map(|id| success(&http, app.addr, rck, id))).await;
    for r in during {
        let r = r.expect("answered within 3 s");
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "5");
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body,
            json!({ "success": false, "message": "Storage unavailable" })
        );
    }
}

/// Waits (at most `tries` × 200 ms) until `/api/health` says the store takes writes again and the
/// spool is written.
async fn wait_recovered(app: &TestApp, tries: usize) -> bool {
    let http = bounded();
    for _ in 0..tries {
        if let Ok(r) = http.get(app.url("/api/health")).send().await {
            if r.status() == 200 && r.json::<Value>().await.unwrap()["data"]["spooled"] == false {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// RCK calls again for each video answered 503 during the outage: now accepted, and both calls are
/// in the log, once each.
async fn assert_retries_accepted_and_every_call_recorded(
    app: &TestApp,
    admin: &str,
    rck: &RecordingRck,
    ids: &[String],
) {
    let http = Client::new();
    for id in ids {
        let r = success(&http, app.addr, rck, id).await.unwrap();
        assert_eq!(r.status(), 200);
        let events = events_of(app, admin, id).await;
        let mut codes: Vec<u64> = events
            .iter()
            .map(|e| e["statusCode"].as_u64().unwrap())
            .collect();
        codes.sort();
        assert_eq!(
            codes,
            [200, 503],
            "both calls recorded, once each: {events:?}"
        );
    }
}

/// Every acknowledged callback survived the crash: the video is completed and its event is there.
async fn assert_kept(app: &TestApp, admin: &str, acked: &HashSet<String>) {
    for id in acked {
        let v = app
            .get(&format!("/api/videos/{id}"), admin)
            .await
            .expect(200);
        assert_eq!(v.data()["status"], "completed", "acknowledged video {id}");
        let events = events_of(app, admin, id).await;
        assert!(
            events.iter().any(|e| e["statusCode"] == 200),
            "the acknowledged call's event for {id}: {events:?}"
        );
    }
}

async fn kill_9_under_load(mongo: Option<(&str, &str)>) {
    let dir = tempfile::tempdir().unwrap();
    let (rck, rck_addr) = RecordingRck::spawn().await;
    let mut server = Process::start(dir.path(), rck_addr, mongo).await;
    let app = server.app();
    let (_, ids) = videos(&app, 300).await;
    let base = server.addr;
    let pid = server.child.id();

    let acks = Arc::new(AtomicUsize::new(0));
    let http = Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    // The load: every video's success callback, 16 at a time; SIGKILL once 40 are acknowledged.
    let killer = {
        let acks = acks.clone();
        tokio::spawn(async move {
            for _ in 0..3000 {
                if acks.load(Ordering::SeqCst) >= 40 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        })
    };
    let results: Vec<(String, bool)> = futures::stream::iter(ids.clone())
        .map(|id| {
            let (http, rck, acks) = (http.clone(), &rck, acks.clone());
            async move {
                let ok = matches!(success(&http, base, rck, &id).await, Ok(r) if r.status().is_success());
                if ok {
                    acks.fetch_add(1, Ordering::SeqCst);
                }
                (id, ok)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    killer.await.unwrap();
    server.kill_9();
    let acked: HashSet<String> = results.into_iter().filter(|r| r.1).map(|r| r.0).collect();
    assert!(acked.len() >= 40, "the load ran before the kill");
    assert!(acked.len() < ids.len(), "the kill came during the load");

    // Restart on the same data: everything acknowledged is there.
    let server = Process::start(dir.path(), rck_addr, mongo).await;
    let app = server.app();
    let admin = app.admin().await;
    assert_kept(&app, &admin, &acked).await;
}

#[tokio::test]
async fn kill_9_under_callback_load_loses_nothing_acknowledged_sqlite() {
    kill_9_under_load(None).await;
}

#[tokio::test]
async fn kill_9_under_callback_load_loses_nothing_acknowledged_mongodb() {
    let Some(uri) = crate::support::mongo_uri() else {
        return;
    };
    let db = format!("breakage_{}", crate::support::rand_suffix());
    kill_9_under_load(Some((&uri, &db))).await;
}

/// Another process holds SQLite's write lock (a backup, an operator's shell) for a few seconds.
fn lock_sqlite(db: &Path, secs: f64) -> Child {
    let script = format!(
        "import sqlite3, sys, time\n\
         c = sqlite3.connect({db:?}, isolation_level=None)\n\
         c.execute('BEGIN EXCLUSIVE')\n\
         print('locked', flush=True)\n\
         time.sleep({secs})\n\
         c.execute('ROLLBACK')\n",
        db = db.display().to_string()
    );
    let mut child = Command::new("python3")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    child
}

#[tokio::test]
async fn sqlite_locked_under_load_answers_503_in_time_and_loses_no_call() {
    let dir = tempfile::tempdir().unwrap();
    let (rck, rck_addr) = RecordingRck::spawn().await;
    let server = Process::start(dir.path(), rck_addr, None).await;
    let app = server.app();
    let (admin, ids) = videos(&app, 12).await;
    let bounded = bounded();
    let mut lock = lock_sqlite(&dir.path().join("data/videos.db"), 12.0);
    for probe in ["/api/health", "/readyz"] {
        let r = bounded.get(app.url(probe)).send().await.unwrap();
        assert_eq!(r.status(), 503, "{probe}");
    }
    let live = bounded.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(live.status(), 200, "the process still answers");
    assert_refused_in_time(&app, &rck, &ids[..8]).await;
    // REST writes and the health check say the same.
    let r = bounded
        .post(app.url("/api/workspaces"))
        .bearer_auth(&admin)
        .json(&json!({ "name": "During", "videoLimit": 5 }))
        .send()
        .await
        .expect("answered within 3 s");
    assert_eq!(r.status(), 503, "{:?}", r.text().await);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({ "success": false, "message": "Storage unavailable" })
    );
    let _ = lock.wait();

    // Back without a restart: healthy, the spool written, RCK's retries accepted.
    assert!(
        wait_recovered(&app, 50).await,
        "healthy again within 10 s of the lock's end"
    );
    assert_retries_accepted_and_every_call_recorded(&app, &admin, &rck, &ids[..8]).await;
    // The others never noticed.
    let r = success(&bounded, server.addr, &rck, &ids[9]).await.unwrap();
    assert_eq!(r.status(), 200);
}

/// A SecantusDB server of this test's own (never the shared one), on a fixed port and data dir so it
/// can be stopped and started again.
struct OwnMongo {
    bin: String,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl OwnMongo {
    async fn start() -> Option<Self> {
        let bin = match std::env::var("SECANTUSD_BIN") {
            Ok(b) if !b.is_empty() => b,
            _ => {
                crate::support::mongo_uri()?;
                panic!("SECANTUSD_BIN is not set: run through scripts/with-mongo.sh (make test)");
            }
        };
        let port = crate::support::free_port();
        let mut m = Self {
            bin,
            port,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        m.up().await;
        Some(m)
    }

    fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }

    async fn up(&mut self) {
        let child = Command::new(&self.bin)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .arg("--storage-path")
            .arg(self.dir.path())
            .args(["--log-level", "WARNING"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting SecantusDB");
        self.child = Some(child);
        for _ in 0..300 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("SecantusDB did not listen within 30 s");
    }

    /// Stops it as an operator would (SIGTERM), or kills it if it does not stop within 10 s.
    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            for _ in 0..100 {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnMongo {
    fn drop(&mut self) {
        self.down();
    }
}

#[tokio::test]
async fn mongodb_stopped_under_load_answers_503_in_time_and_loses_no_call() {
    let Some(mut mongo) = OwnMongo::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (rck, rck_addr) = RecordingRck::spawn().await;
    let uri = mongo.uri();
    let server = Process::start(dir.path(), rck_addr, Some((&uri, "outage"))).await;
    let app = server.app();
    let (admin, ids) = videos(&app, 10).await;
    let bounded = bounded();
    mongo.down();
    assert_refused_in_time(&app, &rck, &ids[..6]).await;
    for probe in ["/api/health", "/readyz"] {
        let r = bounded
            .get(app.url(probe))
            .send()
            .await
            .expect("answered within 3 s");
        assert_eq!(r.status(), 503, "{probe}");
    }

    // MongoDB comes back; the server recovers by itself.
    mongo.up().await;
    assert!(
        wait_recovered(&app, 300).await,
        "healthy again within 60 s of MongoDB's return"
    );
    assert_retries_accepted_and_every_call_recorded(&app, &admin, &rck, &ids[..6]).await;
}

/// kill -9 after the callbacks were acknowledged, before their notifications could be delivered
/// (the receiver refuses them): after a restart each goes out, once.
async fn kill_9_between_the_change_and_the_notification(mongo: Option<(&str, &str)>) {
    let dir = tempfile::tempdir().unwrap();
    let (rck, rck_addr) = RecordingRck::spawn().await;
    let mut server = Process::start(dir.path(), rck_addr, mongo).await;
    let app = server.app();
    let (admin, ids) = videos(&app, 3).await;
    // The receiver is down for now (it answers 503, and keeps its port from other tests' servers).
    let (rx, receiver) = crate::notifications::Receiver::spawn(usize::MAX).await;
    let workspaces = app.get("/api/workspaces", &admin).await.expect(200);
    let ws = workspaces.data()["workspaces"][0]["_id"]
        .as_str()
        .unwrap()
        .to_string();
    app.call(
        reqwest::Method::PUT,
        &format!("/api/workspaces/{ws}/notifications"),
        Some(&admin),
        Some(json!({ "webhookUrl": format!("http://{receiver}/hook") })),
    )
    .await
    .expect(200);
    let http = Client::new();
    for id in &ids {
        let r = success(&http, server.addr, &rck, id).await.unwrap();
        assert_eq!(r.status(), 200);
    }
    // Killed once each notification has been tried (and refused): no transaction of the notifier
    // is left open by the kill, which a MongoDB server may keep holding its documents for.
    // The videos the receiver was told about.
    let told = |rx: &crate::notifications::Receiver| -> HashSet<String> {
        rx.at("/hook")
            .iter()
            .map(|g| {
                let b: Value = serde_json::from_slice(&g.body).unwrap();
                b["data"]["videoId"].as_str().unwrap().to_string()
            })
            .collect()
    };
    for _ in 0..200 {
        if told(&rx).len() == ids.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.kill_9();

    // The receiver is back; what the dead process tried before is not counted.
    rx.reset();
    let _server = Process::start(dir.path(), rck_addr, mongo).await;
    // A row claimed when the process died waits for its lease (30 s), and a pass that fails on a
    // loaded test server leaves its rows leased for another: bounded at 120 s.
    for _ in 0..1200 {
        if rx.at("/hook").len() >= ids.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = rx.at("/hook");
    let videos = told(&rx);
    let log = || {
        let text = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("notif") || l.contains("WARN"))
            .collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    };
    assert_eq!(
        videos,
        ids.iter().cloned().collect::<HashSet<_>>(),
        "{}",
        log()
    );
    assert_eq!(got.len(), ids.len(), "each notification once\n{}", log());
}

#[tokio::test]
async fn kill_9_between_the_change_and_the_notification_sqlite() {
    kill_9_between_the_change_and_the_notification(None).await;
}

#[tokio::test]
async fn kill_9_between_the_change_and_the_notification_mongodb() {
    let Some(uri) = crate::support::mongo_uri() else {
        return;
    };
    let db = format!("breakage_notify_{}", crate::support::rand_suffix());
    kill_9_between_the_change_and_the_notification(Some((&uri, &db))).await;
}
