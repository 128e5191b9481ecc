//! What an operator watches: probes, request ids, `/metrics`, JSON logs.

use crate::support::{Scene, TestApp};
use reqwest::Client;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test]
async fn probes_answer_without_credentials() {
    let app = TestApp::spawn().await;
    let http = Client::new();
    let r = http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ok");
    let r = http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["store"], "sqlite");
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn().await;
    let http = Client::new();
    // Kept when it looks like an id.
    let r = http
        .get(app.url("/api/videos"))
        .header("x-request-id", "platform-req:42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-request-id"], "platform-req:42");
    // Made when absent or unfit for a log line.
    for given in [None, Some("has spaces and\ttabs"), Some(&*"x".repeat(65))] {
        let mut req = http.get(app.url("/nope/anything"));
        if let Some(g) = given {
            req = req.header("x-request-id", g);
        }
        let r = req.send().await.unwrap();
        let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
    }
    // Callbacks too, whatever their answer.
    let r = http
        .post(app.url("/internal/videos/success"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().contains_key("x-request-id"));
}

/// The value of the sample `name{labels}` (labels in the order the exporter prints them).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_webhooks_requests_rck_and_the_store() {
    let s = Scene::new().await;
    let ids = s.start_videos(&s.products[0], 2).await;
    s.callback("/internal/videos/success", json!({ "videoId": ids[0] }))
        .await
        .expect(200);
    s.callback(
        "/internal/videos/failure",
        json!({ "videoId": ids[1], "error": "bad" }),
    )
    .await
    .expect(200);
    s.app
        .get(&format!("/api/videos/{}", ids[0]), &s.admin)
        .await
        .expect(200);
    // A live feed open while scraping.
    let http = Client::new();
    let live = http
        .get(s.app.url("/api/live"))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let r = http.get(s.app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = r.text().await.unwrap();
    // Counters are of the process (tests share it): at least what this test did.
    let at_least = |series: &str, n: f64| {
        let v = sample(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
        assert!(v >= n, "{series} = {v}");
    };
    at_least(
        r#"racky_webhooks_total{endpoint="/videos/success",status="200"}"#,
        1.0,
    );
    at_least(
        r#"racky_webhooks_total{endpoint="/videos/failure",status="200"}"#,
        1.0,
    );
    at_least(
        r#"racky_webhook_duration_seconds_count{endpoint="/videos/success"}"#,
        1.0,
    );
    at_least(
        r#"racky_http_requests_total{route="/api/videos/{id}",method="GET",status="200"}"#,
        1.0,
    );
    at_least(
        r#"racky_http_request_duration_seconds_count{route="/api/videos/bulk-generate",method="POST"}"#,
        2.0,
    );
    at_least(r#"racky_rck_requests_total{outcome="accepted"}"#, 2.0);
    at_least(
        r#"racky_rck_request_duration_seconds_count{outcome="accepted"}"#,
        2.0,
    );
    at_least(
        r#"racky_store_operation_duration_seconds_count{store="sqlite",operation="write"}"#,
        4.0,
    );
    // The group commit: the writes it committed, and a time for each batch's apply and commit, in
    // buckets fine enough for an fsync (the smallest is 50 µs).
    at_least("racky_store_batch_writes_total", 4.0);
    at_least("racky_store_batch_apply_seconds_count", 1.0);
    at_least("racky_store_batch_commit_seconds_count", 1.0);
    assert!(
        sample(
            &text,
            r#"racky_store_batch_commit_seconds_bucket{le="0.00005"}"#
        )
        .is_some(),
        "the group commit's histograms have their own buckets:\n{text}"
    );
    at_least(r#"racky_live_clients"#, 1.0);
    assert!(sample(&text, r#"racky_videos{status="completed"}"#).is_some());
    assert!(sample(&text, "racky_spool_depth").is_some());
    // Route templates only: no id of ours ever becomes a label.
    assert!(!text.contains(&ids[0]), "a raw path leaked into the labels");
    drop(live);
}

#[tokio::test]
async fn metrics_token_when_set() {
    let app = TestApp::spawn_with(|c| c.metrics_token = Some("scrape-token-1".into())).await;
    let http = Client::new();
    let r = http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(app.url("/metrics"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(app.url("/metrics"))
        .bearer_auth("scrape-token-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("racky_http_requests_total"));
}

/// `LOG_FORMAT=json` on the real binary: every line is one JSON object, and the lines of a
/// request name its id, route, status and latency.
#[tokio::test]
async fn json_logs_name_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::support::free_port();
    let log = dir.path().join("server.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LOG_FORMAT", "json")
        .env("DATA_DIR", dir.path().join("data"))
        .env("JWT_SECRET", "json-logs-secret-json-logs-secret-0123")
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = Client::new();
    let mut ready = false;
    for _ in 0..300 {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            ready = r.status() == 200;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = http
        .post(format!(
            "{base}/internal/videos/success?token=secret-in-the-query"
        ))
        .header("x-request-id", "trace-me-42")
        .json(&json!({ "videoId": "507f1f77bcf86cd799439011" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready, "the server did not start");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let ours: Vec<&Value> = lines
        .iter()
        .filter(|l| l["spans"][0]["request_id"] == "trace-me-42")
        .collect();
    assert!(
        ours.len() >= 2,
        "the callback's own line and the access line: {text}"
    );
    let access = ours
        .iter()
        .find(|l| l["target"] == "http")
        .expect("an access line");
    assert_eq!(access["status"], 404);
    assert_eq!(access["spans"][0]["route"], "/internal/videos/success");
    assert!(access["latency_ms"].as_f64().is_some());
    assert!(access["timestamp"].is_string() && access["level"] == "INFO");
    assert!(ours.iter().any(|l| l["target"] == "internal_webhook"));
    // The probes stay out of the info log; the token never appears.
    assert!(!text.contains("/readyz"), "{text}");
    assert!(!text.contains("secret-in-the-query"), "{text}");
}
