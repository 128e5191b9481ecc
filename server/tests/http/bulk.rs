//! Bulk generation against the RCK simulator and against a scripted, recording RCK.

use crate::support::{Scene, TestApp};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the fake RCK does with the next request.
#[derive(Clone, Debug)]
enum Next {
    Status(u16),
    Sleep(Duration),
    JobIds(usize),
}

#[derive(Clone, Default)]
struct Fake {
    script: Arc<Mutex<VecDeque<Next>>>,
    seen: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
}

async fn fake_batch(
    State(f): State<Fake>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    f.seen.lock().unwrap().push((headers, body.clone()));
    let n = body["products"].as_array().map(Vec::len).unwrap_or(0);
    let next = f.script.lock().unwrap().pop_front();
    match next {
        Some(Next::Status(s)) => (StatusCode::from_u16(s).unwrap(), "nope").into_response(),
        Some(Next::Sleep(d)) => {
            tokio::time::sleep(d).await;
            Json(json!({ "job_ids": (0..n).map(|i| format!("slow_{i}")).collect::<Vec<_>>() }))
                .into_response()
        }
        Some(Next::JobIds(k)) => {
            Json(json!({ "job_ids": (0..k).map(|i| format!("j{i}")).collect::<Vec<_>>() }))
                .into_response()
        }
        None => Json(json!({ "job_ids": (0..n).map(|i| format!("job_{i}")).collect::<Vec<_>>() }))
            .into_response(),
    }
}

async fn fake_rck(script: Vec<Next>) -> (String, Fake) {
    let fake = Fake::default();
    fake.script.lock().unwrap().extend(script);
    let app = Router::new()
        .route("/api/v1/create-images-batch", post(fake_batch))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), fake)
}

/// An app talking to `rck`, with a workspace of `limit` videos, a user and `n` products.
async fn shop(rck: &str, limit: u32, n: usize) -> (TestApp, String, String, String, Vec<String>) {
    let rck = rck.to_string();
    let app = TestApp::spawn_with(|c| {
        c.rck_url = Some(rck);
        c.rck_api_key = Some("rck-key-123".into());
        c.rck_timeout_ms = 800;
        c.rck_max_retries = 2;
    })
    .await;
    let admin = app.admin().await;
    let ws = app.workspace(&admin, limit).await;
    let user = app.user_in(&admin, &ws, "USER").await;
    let mut products = Vec::new();
    for i in 0..n {
        products.push(app.product(&user, &format!("Item{i}")).await);
    }
    (app, admin, ws, user, products)
}

fn bulk_body(ids: &[String]) -> Value {
    json!({ "productIds": ids, "templateId": "template_001", "templateName": "Product Showcase", "aspect_ratio": "16:9" })
}

async fn used(app: &TestApp, admin: &str, ws: &str) -> u64 {
    let r = app.get("/api/workspaces", admin).await.expect(200);
    r.data()
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["_id"] == ws)
        .unwrap()["videosUsed"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn the_outbound_request_has_the_contract_shape() {
    let (rck, fake) = fake_rck(vec![]).await;
    let (app, _admin, _ws, user, products) = shop(&rck, 10, 2).await;
    let r = app
        .post(
            "/api/videos/bulk-generate",
            Some(&user),
            bulk_body(&products),
        )
        .await
        .expect(202);
    let video_ids: Vec<String> = r.data()["videoIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(r.data()["videos"][1]["externalJobId"], "job_1");
    assert_eq!(r.data()["videos"][1]["productId"], products[1]);

    let seen = fake.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (headers, body) = &seen[0];
    assert_eq!(headers["authorization"], "Bearer rck-key-123");
    assert_eq!(
        headers["idempotency-key"].to_str().unwrap(),
        format!("bulk-{}", video_ids[0])
    );
    // The capability token of the batch: 128 random bits, URL-safe, the same in both URLs.
    let success = body["callback_url"].as_str().unwrap();
    let token = success
        .strip_prefix(&app.url("/internal/videos/success?token="))
        .unwrap_or_else(|| panic!("callback_url {success}"));
    assert_eq!(token.len(), 22);
    assert!(token
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    assert_eq!(
        body["failure_callback_url"],
        app.url(&format!("/internal/videos/failure?token={token}"))
    );
    let sent = body["products"].as_array().unwrap();
    assert_eq!(sent.len(), 2);
    for (i, p) in sent.iter().enumerate() {
        let keys: Vec<&str> = {
            let mut k: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
            k.sort();
            k
        };
        assert_eq!(
            keys,
            [
                "aspect_ratio",
                "id_product",
                "img_urls",
                "sku",
                "template_name",
                "title",
                "user_id",
                "videoId"
            ]
        );
        assert_eq!(p["videoId"], video_ids[i]);
        assert_eq!(p["title"], format!("Item{i}"));
        assert_eq!(p["sku"], format!("SKU-Item{i}"));
        assert_eq!(p["img_urls"], json!(["https://img.test/a.jpg"]));
        assert_eq!(p["template_name"], "Product Showcase");
        assert_eq!(p["aspect_ratio"], "16:9");
        let n = p["id_product"].as_i64().unwrap();
        assert!((0..=i32::MAX as i64).contains(&n));
    }
    // Job ids are stored on the videos.
    let v = app
        .get(&format!("/api/videos/{}", video_ids[0]), &user)
        .await
        .expect(200);
    assert_eq!(v.data()["metadata"]["externalJobId"], "job_0");
    assert_eq!(v.data()["status"], "generating");
    assert!(v.data()["metadata"]["queuedAt"].is_string());
}

#[tokio::test]
async fn full_flow_against_the_simulator() {
    let sim = server::rck_sim::spawn(
        "127.0.0.1:0".parse().unwrap(),
        server::rck_sim::SimConfig {
            min_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(300),
            failure_rate: 0.5,
            api_key: Some("rck-key-123".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let (app, admin, ws, user, products) = shop(&format!("http://{sim}"), 50, 6).await;
    let r = app
        .post(
            "/api/videos/bulk-generate",
            Some(&user),
            bulk_body(&products),
        )
        .await
        .expect(202);
    assert_eq!(r.msg(), "Video generation started");
    let ids: Vec<String> = r.data()["videoIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 6);
    assert_eq!(used(&app, &admin, &ws).await, 6);

    // Wait (bounded) for every video to reach a final state through the simulator's callbacks.
    let mut finals = Vec::new();
    for _ in 0..100 {
        finals.clear();
        for v in &ids {
            let s = app
                .get(&format!("/api/videos/{v}"), &user)
                .await
                .expect(200)
                .data()["status"]
                .as_str()
                .unwrap()
                .to_string();
            finals.push(s);
        }
        if finals.iter().all(|s| s == "completed" || s == "failed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        finals.iter().all(|s| s == "completed" || s == "failed"),
        "{finals:?}"
    );
    for (v, p) in ids.iter().zip(&products) {
        let video = app
            .get(&format!("/api/videos/{v}"), &user)
            .await
            .expect(200)
            .data()
            .clone();
        let product = app
            .get(&format!("/api/products/{p}"), &user)
            .await
            .expect(200)
            .data()
            .clone();
        let entry = &product["videos"][0];
        assert_eq!(entry["videoId"], v.as_str());
        assert_eq!(
            entry["status"], video["status"],
            "AIVideo and Product.videos agree"
        );
        if video["status"] == "completed" {
            assert!(video["metadata"]["youtubeVideoId"].is_string());
            assert!(entry["videoUrl"].as_str().unwrap().starts_with("https://"));
        } else {
            assert!(video["error"].is_string());
        }
        let events = app.events_for(&admin, v).await;
        assert_eq!(events.len(), 1, "one callback per video: {events:?}");
        assert_eq!(events[0]["statusCode"], 200);
    }
}

#[tokio::test]
async fn validation_ownership_and_quota() {
    let (rck, fake) = fake_rck(vec![]).await;
    let (app, admin, ws, user, products) = shop(&rck, 3, 2).await;
    let other_ws = app.workspace(&admin, 10).await;
    let stranger = app.user_in(&admin, &other_ws, "USER").await;
    let foreign = app.product(&stranger, "Foreign").await;

    for (body, msg) in [
        (
            json!({ "productIds": [], "templateId": "t", "templateName": "n" }),
            "productIds must hold at least one product id",
        ),
        (
            json!({ "productIds": ["zz"], "templateId": "t", "templateName": "n" }),
            "Invalid product id format: \"zz\"",
        ),
        (
            json!({ "productIds": [products[0], products[0]], "templateId": "t", "templateName": "n" }),
            "productIds must not repeat a product",
        ),
        (
            json!({ "productIds": [products[0]], "templateId": " ", "templateName": "n" }),
            "templateId is required (at most 200 characters)",
        ),
        (
            json!({ "productIds": [products[0]], "templateId": "t", "templateName": "n", "aspect_ratio": "2:1" }),
            "aspect_ratio must be one of 9:16, 16:9, 1:1, 4:5",
        ),
    ] {
        let r = app
            .post("/api/videos/bulk-generate", Some(&user), body)
            .await
            .expect(400);
        assert_eq!(r.msg(), msg);
    }
    app.post(
        "/api/videos/bulk-generate",
        Some(&user),
        json!({ "templateId": "t", "templateName": "n" }),
    )
    .await
    .expect(400);

    let missing = "507f1f77bcf86cd799439011";
    let r = app
        .post(
            "/api/videos/bulk-generate",
            Some(&user),
            bulk_body(&[products[0].clone(), foreign.clone(), missing.into()]),
        )
        .await
        .expect(404);
    assert_eq!(r.msg(), "Products not found");
    assert_eq!(r.data()["productIds"], json!([foreign, missing]));

    app.post(
        "/api/videos/bulk-generate",
        Some(&user),
        bulk_body(&products),
    )
    .await
    .expect(202);
    let r = app
        .post(
            "/api/videos/bulk-generate",
            Some(&user),
            bulk_body(&products),
        )
        .await
        .expect(403);
    assert_eq!(
        r.body,
        json!({ "success": false, "message": "Video limit exceeded", "data": { "limit": 3, "used": 2, "requested": 2 } })
    );
    assert_eq!(used(&app, &admin, &ws).await, 2);
    assert_eq!(
        fake.seen.lock().unwrap().len(),
        1,
        "refused requests never reach RCK"
    );
    // Nothing was created for the refused requests.
    let p = app
        .get(&format!("/api/products/{}", products[0]), &user)
        .await
        .expect(200);
    assert_eq!(p.data()["videos"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_requests_never_push_usage_past_the_limit() {
    let (rck, fake) = fake_rck(vec![]).await;
    let (app, admin, ws, user, products) = shop(&rck, 7, 2).await;
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let http = app.http.clone();
        let url = app.url("/api/videos/bulk-generate");
        let (user, body) = (user.clone(), bulk_body(&products));
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .bearer_auth(user)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let accepted = statuses.iter().filter(|s| **s == 202).count();
    assert_eq!(accepted, 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 403).count(), 9);
    assert_eq!(used(&app, &admin, &ws).await, 6);
    assert_eq!(fake.seen.lock().unwrap().len(), 3);
}

/// RCK failures: the videos fail with the reason, the usage is given back, the caller gets a 502.
async fn assert_refused(
    script: Vec<Next>,
    rck_override: Option<&str>,
    expect_calls: usize,
    reason: &str,
) {
    let (rck, fake) = fake_rck(script).await;
    let (app, admin, ws, user, products) = shop(rck_override.unwrap_or(&rck), 10, 2).await;
    let r = app
        .post(
            "/api/videos/bulk-generate",
            Some(&user),
            bulk_body(&products),
        )
        .await
        .expect(502);
    assert!(
        r.msg().starts_with("Video generation service unavailable"),
        "{}",
        r.msg()
    );
    assert!(
        r.msg().contains(reason),
        "{} should mention {reason}",
        r.msg()
    );
    assert!(
        !r.msg().contains("nope"),
        "RCK's own answer goes to the log only: {}",
        r.msg()
    );
    let ids = r.data()["videoIds"].as_array().unwrap().clone();
    assert_eq!(ids.len(), 2);
    for (v, p) in ids.iter().zip(&products) {
        let video = app
            .get(&format!("/api/videos/{}", v.as_str().unwrap()), &user)
            .await
            .expect(200);
        assert_eq!(video.data()["status"], "failed");
        assert!(video.data()["error"].as_str().unwrap().contains(reason));
        let product = app
            .get(&format!("/api/products/{p}"), &user)
            .await
            .expect(200);
        assert_eq!(product.data()["videos"][0]["status"], "failed");
    }
    assert_eq!(used(&app, &admin, &ws).await, 0, "usage given back");
    assert_eq!(fake.seen.lock().unwrap().len(), expect_calls);
}

#[tokio::test]
async fn rck_down() {
    // A port nobody listens on: bind, note it, drop it.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    assert_refused(vec![], Some(&dead), 0, "unreachable").await;
}

#[tokio::test]
async fn rck_slower_than_the_timeout() {
    assert_refused(
        vec![Next::Sleep(Duration::from_secs(3))],
        None,
        1,
        "did not answer within 800 ms",
    )
    .await;
}

#[tokio::test]
async fn rck_keeps_failing() {
    // 1 try + 2 retries, all 503.
    assert_refused(
        vec![Next::Status(503), Next::Status(503), Next::Status(503)],
        None,
        3,
        "HTTP 503",
    )
    .await;
}

#[tokio::test]
async fn rck_refuses_for_good() {
    // 4xx other than 429 is not retried.
    assert_refused(vec![Next::Status(400)], None, 1, "HTTP 400").await;
}

#[tokio::test]
async fn rck_answers_the_wrong_number_of_job_ids() {
    assert_refused(vec![Next::JobIds(1)], None, 1, "1 job ids for 2 videos").await;
}

#[tokio::test]
async fn a_500_then_success_makes_exactly_one_batch() {
    let (rck, fake) = fake_rck(vec![Next::Status(500), Next::Status(429)]).await;
    let (app, admin, ws, user, products) = shop(&rck, 10, 2).await;
    let r = app
        .post(
            "/api/videos/bulk-generate",
            Some(&user),
            bulk_body(&products),
        )
        .await
        .expect(202);
    let seen = fake.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "two refused attempts, then the accepted one");
    let keys: Vec<_> = seen
        .iter()
        .map(|(h, _)| h["idempotency-key"].clone())
        .collect();
    assert!(
        keys.iter().all(|k| *k == keys[0]),
        "every attempt carries the same Idempotency-Key"
    );
    assert!(
        seen.iter().all(|(_, b)| *b == seen[0].1),
        "every attempt is the same batch"
    );
    assert_eq!(r.data()["videos"][0]["externalJobId"], "job_0");
    assert_eq!(used(&app, &admin, &ws).await, 2);
}

#[tokio::test]
async fn without_an_rck_server_bulk_generation_is_503() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let ws = app.workspace(&admin, 10).await;
    let user = app.user_in(&admin, &ws, "USER").await;
    let p = app.product(&user, "X").await;
    let r = app
        .post("/api/videos/bulk-generate", Some(&user), bulk_body(&[p]))
        .await
        .expect(503);
    assert_eq!(r.body["success"], false);
    assert_eq!(used(&app, &admin, &ws).await, 0);
}

#[tokio::test]
async fn scene_videos_start_generating() {
    let s = Scene::new().await;
    let ids = s.start_videos(&s.products[1], 2).await;
    assert_ne!(ids[0], ids[1]);
    assert_eq!(s.video(&ids[0]).await["status"], "generating");
}
