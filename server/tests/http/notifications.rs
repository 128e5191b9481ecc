//! Notifications: settings (validated, authorised), and deliveries from the outbox to real local
//! receivers: an HTTP server standing in for Slack, Discord and a shop's webhook (signatures
//! verified), and a real SMTP server (Python's aiosmtpd, from the tests' venv) for email.

use crate::support::{Scene, TestApp};
use app::ssr::callback_auth::{SignedHeaders, WebhookSecret};
use app::ssr::config::Config;
use reqwest::Method;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request a receiver got.
#[derive(Clone, Debug)]
pub struct Got {
    pub path: String,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A local HTTP server that records every POST and answers 500 to the first `fail_first` ones.
#[derive(Clone)]
pub struct Receiver {
    pub got: Arc<Mutex<Vec<Got>>>,
    fail_first: Arc<Mutex<usize>>,
}

impl Receiver {
    pub async fn spawn(fail_first: usize) -> (Self, SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        (Self::serve(listener, fail_first), addr)
    }

    pub fn serve(listener: tokio::net::TcpListener, fail_first: usize) -> Self {
        let rec = Receiver {
            got: Arc::default(),
            fail_first: Arc::new(Mutex::new(fail_first)),
        };
        let r = rec.clone();
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let r = r.clone();
                async move {
                    r.got.lock().unwrap().push(Got {
                        path: uri.path().to_string(),
                        headers,
                        body: body.to_vec(),
                    });
                    let mut left = r.fail_first.lock().unwrap();
                    if *left > 0 {
                        *left -= 1;
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        axum::http::StatusCode::OK
                    }
                }
            },
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        rec
    }

    /// From now on every request succeeds, and what came before is forgotten.
    pub fn reset(&self) {
        *self.fail_first.lock().unwrap() = 0;
        self.got.lock().unwrap().clear();
    }

    pub fn at(&self, path: &str) -> Vec<Got> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|g| g.path == path)
            .cloned()
            .collect()
    }

    /// Waits (at most 20 s) until `path` got `n` requests.
    pub async fn wait_for(&self, path: &str, n: usize) -> Vec<Got> {
        for _ in 0..200 {
            let got = self.at(path);
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{path}: {} requests, expected {n}", self.at(path).len());
    }
}

fn private_urls(c: &mut Config) {
    c.notify_allow_private_urls = true;
    c.notify_retry_base_secs = 0.05;
}

async fn put(app: &TestApp, path: &str, token: &str, body: Value) -> crate::support::Res {
    app.call(Method::PUT, path, Some(token), Some(body)).await
}

/// Verifies a Standard Webhooks delivery with the workspace's secret.
fn verify(secret: &str, g: &Got) -> String {
    let secret: WebhookSecret = secret.parse().unwrap();
    let h = |k: &str| g.headers.get(k).map(|v| v.to_str().unwrap());
    let signed = SignedHeaders {
        id: h("webhook-id"),
        timestamp: h("webhook-timestamp"),
        signature: h("webhook-signature"),
    };
    secret
        .verify(&signed, &g.body, app::model::Timestamp::now())
        .expect("a valid signature")
        .to_string()
}

#[tokio::test]
async fn settings_are_checked_and_only_admins_of_the_workspace_manage_them() {
    let s = Scene::new().await;
    let path = format!("/api/workspaces/{}/notifications", s.workspace);
    // A shop user may not; an ADMIN of another workspace may not; an unknown workspace is a 404.
    s.app.get(&path, &s.user).await.expect(403);
    let other = s.app.workspace(&s.admin, 5).await;
    let other_admin = s.app.user_in(&s.admin, &other, "ADMIN").await;
    s.app.get(&path, &other_admin).await.expect(403);
    s.app
        .get(
            "/api/workspaces/507f1f77bcf86cd799439011/notifications",
            &s.admin,
        )
        .await
        .expect(404);
    // The defaults, with a secret made once.
    let admin = s.app.user_in(&s.admin, &s.workspace, "ADMIN").await;
    let first = s.app.get(&path, &admin).await.expect(200);
    let secret = first.data()["webhookSecret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(
        first.data()["email"],
        json!({ "onCompleted": true, "onFailed": true })
    );
    assert_eq!(first.data()["slackWebhookUrl"], Value::Null);
    assert_eq!(
        s.app.get(&path, &s.admin).await.data()["webhookSecret"],
        secret.as_str()
    );
    // URLs: https and public only (this server has the default rules).
    for (body, message) in [
        (
            json!({ "slackWebhookUrl": "http://hooks.slack.com/services/x" }),
            "slackWebhookUrl must be an https URL",
        ),
        (
            json!({ "webhookUrl": "https://127.0.0.1/hook" }),
            "webhookUrl must resolve to public addresses only",
        ),
        (
            json!({ "discordWebhookUrl": "https://169.254.169.254/latest" }),
            "discordWebhookUrl must resolve to public addresses only",
        ),
        (
            json!({ "webhookUrl": "https://[::1]/hook" }),
            "webhookUrl must resolve to public addresses only",
        ),
        (
            json!({ "webhookUrl": "nope" }),
            "webhookUrl is not a valid URL",
        ),
    ] {
        let r = put(&s.app, &path, &admin, body).await.expect(400);
        assert!(r.msg().starts_with(message), "{}", r.msg());
    }
    s.app.get(&path, &admin).await; // unchanged
                                    // A public address is taken; the secret stays; null turns a channel off.
    let r = put(
        &s.app,
        &path,
        &admin,
        json!({ "email": { "onCompleted": false, "onFailed": true }, "webhookUrl": "https://8.8.8.8/hook",
                "webhookSecret": "whsec_ignored" }),
    )
    .await
    .expect(200);
    assert_eq!(r.data()["webhookUrl"], "https://8.8.8.8/hook");
    assert_eq!(r.data()["webhookSecret"], secret.as_str());
    assert_eq!(r.data()["email"]["onCompleted"], false);
    let rotated = s
        .app
        .act(&format!("{path}/rotate-secret"), &admin)
        .await
        .expect(200);
    assert_ne!(rotated.data()["webhookSecret"], secret.as_str());
    let r = put(&s.app, &path, &admin, json!({ "webhookUrl": null }))
        .await
        .expect(200);
    assert_eq!(r.data()["webhookUrl"], Value::Null);
    assert_eq!(r.data()["webhookSecret"], rotated.data()["webhookSecret"]);
}

#[tokio::test]
async fn finished_videos_reach_slack_discord_and_the_signed_webhook_once_each() {
    let s = Scene::new_with(private_urls).await;
    let (rx, addr) = Receiver::spawn(0).await;
    let path = format!("/api/workspaces/{}/notifications", s.workspace);
    let settings = put(
        &s.app,
        &path,
        &s.admin,
        json!({ "slackWebhookUrl": format!("http://{addr}/slack"),
                "discordWebhookUrl": format!("http://{addr}/discord"),
                "webhookUrl": format!("http://{addr}/hook") }),
    )
    .await
    .expect(200);
    let secret = settings.data()["webhookSecret"]
        .as_str()
        .unwrap()
        .to_string();
    let ids = s.start_videos(&s.products[0], 2).await;
    s.callback(
        "/internal/videos/success",
        json!({ "videoId": ids[0], "youtubeVideoId": "dQw4w9WgXcQ", "video_url": "https://cdn.example.com/v.mp4",
                "img_s3_url": "https://s3.example.com/t.jpg" }),
    )
    .await
    .expect(200);
    s.callback(
        "/internal/videos/failure",
        json!({ "videoId": ids[1], "error": "bad images" }),
    )
    .await
    .expect(200);
    // A duplicate changes nothing and notifies nobody.
    s.callback("/internal/videos/success", json!({ "videoId": ids[0] }))
        .await
        .expect(200);

    let hooks = rx.wait_for("/hook", 2).await;
    let slack = rx.wait_for("/slack", 2).await;
    let discord = rx.wait_for("/discord", 2).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rx.at("/hook").len(), 2, "one delivery per video and event");
    assert_eq!(rx.at("/slack").len(), 2);
    assert_eq!(rx.at("/discord").len(), 2);

    let mut by_type = std::collections::HashMap::new();
    for g in &hooks {
        let id = verify(&secret, g);
        assert!(id.starts_with("msg_"), "{id}");
        let b = g.json();
        by_type.insert(b["type"].as_str().unwrap().to_string(), b);
    }
    let done = &by_type["video.completed"];
    assert_eq!(done["data"]["videoId"], ids[0].as_str());
    assert_eq!(done["data"]["workspaceId"], s.workspace.as_str());
    assert_eq!(done["data"]["status"], "completed");
    assert_eq!(done["data"]["videoUrl"], "https://cdn.example.com/v.mp4");
    assert_eq!(
        done["data"]["youtubeUrl"],
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    );
    assert_eq!(done["data"]["imgS3Url"], "https://s3.example.com/t.jpg");
    assert_eq!(done["data"]["error"], Value::Null);
    assert!(done["timestamp"].is_string());
    let failed = &by_type["video.failed"];
    assert_eq!(failed["data"]["error"], "bad images");
    assert_eq!(failed["data"]["videoUrl"], Value::Null);
    for g in &slack {
        let b = g.json();
        assert!(b["text"].as_str().unwrap().starts_with("Video "), "{b}");
        assert!(b["blocks"].is_array());
    }
    for g in &discord {
        let b = g.json();
        assert!(
            b["content"].is_string() && b["embeds"][0]["title"].is_string(),
            "{b}"
        );
    }
    // The delivery log (superadmin only) has them, delivered, first try.
    s.app.get("/api/notifications", &s.user).await.expect(403);
    let log = s
        .app
        .get(
            &format!(
                "/api/notifications?workspaceId={}&status=delivered",
                s.workspace
            ),
            &s.admin,
        )
        .await
        .expect(200);
    let rows = log.data()["notifications"].as_array().unwrap();
    assert_eq!(rows.len(), 6, "{}", log.body);
    assert!(rows
        .iter()
        .all(|r| r["attempts"] == 1 && r["status"] == "delivered"));
}

#[tokio::test]
async fn a_failing_receiver_is_retried_with_backoff_and_gets_one_success() {
    let s = Scene::new_with(private_urls).await;
    let (rx, addr) = Receiver::spawn(3).await;
    let path = format!("/api/workspaces/{}/notifications", s.workspace);
    let secret = put(
        &s.app,
        &path,
        &s.admin,
        json!({ "webhookUrl": format!("http://{addr}/hook") }),
    )
    .await
    .expect(200)
    .data()["webhookSecret"]
        .as_str()
        .unwrap()
        .to_string();
    let ids = s.start_videos(&s.products[0], 1).await;
    s.callback("/internal/videos/success", json!({ "videoId": ids[0] }))
        .await
        .expect(200);
    let got = rx.wait_for("/hook", 4).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        rx.at("/hook").len(),
        4,
        "3 refused, then one success, then nothing"
    );
    // The same webhook-id on every attempt.
    let ids_seen: std::collections::HashSet<String> =
        got.iter().map(|g| verify(&secret, g)).collect();
    assert_eq!(ids_seen.len(), 1, "{ids_seen:?}");
    let log = s.app.get("/api/notifications", &s.admin).await.expect(200);
    let row = &log.data()["notifications"][0];
    assert_eq!(row["status"], "delivered");
    assert_eq!(row["attempts"], 4);
}

#[tokio::test]
async fn after_the_last_attempt_it_is_failed_and_a_redelivery_sends_it_again() {
    let s = Scene::new_with(|c| {
        private_urls(c);
        c.notify_max_attempts = 2;
    })
    .await;
    let (rx, addr) = Receiver::spawn(2).await;
    let path = format!("/api/workspaces/{}/notifications", s.workspace);
    put(
        &s.app,
        &path,
        &s.admin,
        json!({ "slackWebhookUrl": format!("http://{addr}/slack") }),
    )
    .await
    .expect(200);
    let ids = s.start_videos(&s.products[0], 1).await;
    s.callback("/internal/videos/failure", json!({ "videoId": ids[0] }))
        .await
        .expect(200);
    rx.wait_for("/slack", 2).await;
    let failed = delivery_log_until(&s, "status=failed", |_| true, 1).await;
    let failed = failed.first().cloned().unwrap_or_default();
    assert_eq!(failed["attempts"], 2, "{failed}");
    assert_eq!(failed["lastError"], "answered HTTP 500");
    let id = failed["_id"].as_str().unwrap();
    s.app
        .act(&format!("/api/notifications/{id}/redeliver"), &s.user)
        .await
        .expect(403);
    let r = s
        .app
        .act(&format!("/api/notifications/{id}/redeliver"), &s.admin)
        .await
        .expect(200);
    assert_eq!(r.data()["status"], "pending");
    rx.wait_for("/slack", 3).await;
    s.app
        .act(
            "/api/notifications/507f1f77bcf86cd799439011/redeliver",
            &s.admin,
        )
        .await
        .expect(404);
}

#[tokio::test]
async fn send_test_answers_each_channels_result() {
    let s = Scene::new_with(private_urls).await;
    let (rx, addr) = Receiver::spawn(0).await;
    let path = format!("/api/workspaces/{}/notifications", s.workspace);
    put(
        &s.app,
        &path,
        &s.admin,
        json!({ "slackWebhookUrl": format!("http://{addr}/slack"),
                "webhookUrl": "http://127.0.0.1:9/nothing-listens-here" }),
    )
    .await
    .expect(200);
    let r = s
        .app
        .act(&format!("{path}/test"), &s.admin)
        .await
        .expect(200);
    let results = r.data().as_array().unwrap();
    assert_eq!(results.len(), 2, "{}", r.body);
    let slack = results.iter().find(|x| x["channel"] == "slack").unwrap();
    assert_eq!(slack["ok"], true);
    assert_eq!(slack["target"], "127.0.0.1");
    let hook = results.iter().find(|x| x["channel"] == "webhook").unwrap();
    assert_eq!(hook["ok"], false);
    assert_eq!(hook["error"], "could not connect");
    assert_eq!(rx.at("/slack").len(), 1);
}

/// A real SMTP server (aiosmtpd) on a free loopback port, writing what it receives to a Maildir;
/// stopped when dropped.
struct Smtp {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Smtp {
    async fn start() -> Option<Self> {
        let Some(python) = std::env::var_os("AIOSMTPD_PYTHON") else {
            if std::env::var("RACKY_SKIP_MONGO_TESTS").as_deref() == Ok("1") {
                return None;
            }
            panic!("AIOSMTPD_PYTHON is not set: run `make test` (scripts/with-mongo.sh installs aiosmtpd)");
        };
        let dir = tempfile::tempdir().unwrap();
        let port = crate::support::free_port();
        let mut child = std::process::Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("mail"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("aiosmtpd starts");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Some(Self { child, port, dir });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("aiosmtpd did not listen on {port}");
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.dir.path().join("mail/new")) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .collect()
    }

    async fn wait_for(&self, n: usize) -> Vec<String> {
        for _ in 0..200 {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{} messages, expected {n}", self.messages().len());
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn one_email_per_batch_once_every_video_is_final() {
    let Some(smtp) = Smtp::start().await else {
        return;
    };
    let url = smtp.url();
    let s = Scene::new_with(|c| {
        private_urls(c);
        c.smtp_url = Some(url);
    })
    .await;
    let me = s.app.get("/api/auth/me", &s.user).await.expect(200);
    let email = me.data()["email"].as_str().unwrap().to_string();
    // A batch of two products.
    let r = s
        .app
        .post(
            "/api/videos/bulk-generate",
            Some(&s.user),
            json!({ "productIds": [s.products[0], s.products[1]], "templateId": "tpl_1", "templateName": "Showcase" }),
        )
        .await
        .expect(202);
    let ids: Vec<String> = r.video_ids();
    s.callback(
        "/internal/videos/success",
        json!({ "videoId": ids[0], "video_url": "https://cdn.example.com/p0.mp4" }),
    )
    .await
    .expect(200);
    // One of two is final: no mail yet.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        smtp.messages().is_empty(),
        "mailed before the batch was done"
    );
    s.callback(
        "/internal/videos/failure",
        json!({ "videoId": ids[1], "error": "bad images" }),
    )
    .await
    .expect(200);
    let mail = smtp.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(smtp.messages().len(), 1, "one message for the batch");
    let m = &mail[0];
    assert!(m.contains(&format!("To: {email}")), "{m}");
    assert!(
        m.contains("Subject: Your 2 videos are done: 1 ready, 1 failed"),
        "{m}"
    );
    assert!(
        m.contains("P0: ready, https://cdn.example.com/p0.mp4"),
        "{m}"
    );
    assert!(m.contains("P1: failed (bad images)"), "{m}");
    assert!(
        m.contains("Content-Type: text/plain") && m.contains("Content-Type: text/html"),
        "{m}"
    );
    // A one-video batch: one message about that video.
    let one = s.start_videos(&s.products[0], 1).await;
    s.callback("/internal/videos/success", json!({ "videoId": one[0] }))
        .await
        .expect(200);
    let mail = smtp.wait_for(2).await;
    assert!(
        mail.iter()
            .any(|m| m.contains("Subject: Your video for P0 is ready")),
        "{mail:?}"
    );
    // The delivery log shows them as email, batch.finished (the mail server has a message a moment
    // before the notifier records it as delivered, so the log is read until it has both; bounded).
    let emails = delivery_log_until(&s, "status=delivered", |n| n["channel"] == "email", 2).await;
    assert_eq!(emails.len(), 2, "{emails:?}");
    assert!(emails.iter().all(|n| n["eventType"] == "batch.finished"));
}

/// The rows of the delivery log (`/api/notifications?{query}`) that `keep` keeps, read until there
/// are at least `enough` of them (at most 100 reads, 100 ms apart: the notifier records a delivery a
/// moment after the receiver has it). Fewer if they never came; the caller's assertion says so.
async fn delivery_log_until(
    s: &Scene,
    query: &str,
    keep: impl Fn(&Value) -> bool,
    enough: usize,
) -> Vec<Value> {
    let mut rows = Vec::new();
    for _ in 0..100 {
        let log = s
            .app
            .get(&format!("/api/notifications?{query}"), &s.admin)
            .await
            .expect(200);
        rows = log.data()["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| keep(n))
            .cloned()
            .collect();
        if rows.len() >= enough {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rows
}
