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
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with JSON of another shape.
    WrongShape,
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
        Some(Next::Garbage) => (StatusCode::OK, "<html>ok</html>").into_response(),
        Some(Next::WrongShape) => Json(json!({ "jobs": "later" })).into_response(),
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

/// `POST /api/videos/bulk-generate` of `products` (the usual body) as `user`.
async fn bulk(app: &TestApp, user: &str, products: &[String]) -> crate::support::Res {
    app.post("/api/videos/bulk-generate", Some(user), bulk_body(products))
        .await
}

async fn used(app: &TestApp, admin: &str, ws: &str) -> u64 {
    let r = app.get("/api/workspaces", admin).await.expect(200);
    r.data()["workspaces"]
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
    let r = bulk(&app, &user, &products).await.expect(202);
    let video_ids: Vec<String> = r.video_ids();
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
    let r = bulk(&app, &user, &products).await.expect(202);
    assert_eq!(r.msg(), "Video generation started");
    let ids: Vec<String> = r.video_ids();
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

    bulk(&app, &user, &products).await.expect(202);
    let r = bulk(&app, &user, &products).await.expect(403);
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
    let r = bulk(&app, &user, &products).await.expect(502);
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
async fn rck_answers_a_2xx_of_the_wrong_shape() {
    assert_refused(vec![Next::WrongShape], None, 1, "wrong answer").await;
}

/// Ambiguous outcomes: RCK got the batch and may be generating; the videos stay `generating` and
/// counted, the caller gets a 202 saying so, and a late callback completes them.
async fn assert_unconfirmed(rck: &str, fake: Option<&Fake>) {
    let (app, admin, ws, user, products) = shop(rck, 10, 2).await;
    let r = bulk(&app, &user, &products).await.expect(202);
    assert!(r.msg().contains("did not confirm"), "{}", r.msg());
    assert_eq!(r.data()["videos"][0]["externalJobId"], Value::Null);
    let ids: Vec<String> = r.video_ids();
    for id in &ids {
        let v = app
            .get(&format!("/api/videos/{id}"), &user)
            .await
            .expect(200);
        assert_eq!(v.data()["status"], "generating");
    }
    assert_eq!(used(&app, &admin, &ws).await, 2, "still charged");
    // RCK did take it: its callback completes the video, with no second charge.
    if let Some(fake) = fake {
        let url = fake.seen.lock().unwrap()[0].1["callback_url"]
            .as_str()
            .unwrap()
            .to_string();
        let path = url.strip_prefix(&app.url("")).unwrap();
        app.post(
            path,
            None,
            json!({ "videoId": ids[0], "videoUrl": "https://cdn.test/v.mp4" }),
        )
        .await
        .expect(200);
        let v = app
            .get(&format!("/api/videos/{}", ids[0]), &user)
            .await
            .expect(200);
        assert_eq!(v.data()["status"], "completed");
        assert_eq!(used(&app, &admin, &ws).await, 2);
    }
}

#[tokio::test]
async fn rck_slower_than_the_timeout_leaves_the_videos_generating() {
    let (rck, fake) = fake_rck(vec![Next::Sleep(Duration::from_secs(3))]).await;
    assert_unconfirmed(&rck, Some(&fake)).await;
    assert_eq!(
        fake.seen.lock().unwrap().len(),
        1,
        "a timeout is not retried"
    );
}

#[tokio::test]
async fn rck_answers_2xx_garbage_leaves_the_videos_generating() {
    let (rck, fake) = fake_rck(vec![Next::Garbage]).await;
    assert_unconfirmed(&rck, Some(&fake)).await;
}

#[tokio::test]
async fn rck_hanging_up_after_the_request_leaves_the_videos_generating() {
    // Reads the request, then closes the connection without a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        for _ in 0..10 {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 64 * 1024];
            let _ = tokio::time::timeout(Duration::from_millis(300), sock.read(&mut buf)).await;
            drop(sock);
        }
    });
    assert_unconfirmed(&format!("http://{addr}"), None).await;
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
    let r = bulk(&app, &user, &products).await.expect(202);
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

/// Posts a bulk request with an `Idempotency-Key`; the answer and whether it was a replay.
async fn post_keyed(app: &TestApp, user: &str, key: &str, body: &Value) -> (u16, Value, bool) {
    let resp = app
        .http
        .post(app.url("/api/videos/bulk-generate"))
        .bearer_auth(user)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let replayed = resp.headers().get("idempotency-replayed").is_some();
    (resp.status().as_u16(), resp.json().await.unwrap(), replayed)
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer_and_charges_once() {
    let (rck, fake) = fake_rck(vec![]).await;
    let (app, admin, ws, user, products) = shop(&rck, 10, 2).await;
    let body = bulk_body(&products);
    let (s1, first, replayed1) = post_keyed(&app, &user, "order-42", &body).await;
    assert_eq!((s1, replayed1), (202, false), "{first}");
    let (s2, again, replayed2) = post_keyed(&app, &user, "order-42", &body).await;
    assert_eq!((s2, replayed2), (202, true));
    assert_eq!(again["data"]["videoIds"], first["data"]["videoIds"]);
    assert_eq!(again, first, "the same answer");
    assert_eq!(used(&app, &admin, &ws).await, 2, "charged once");
    assert_eq!(fake.seen.lock().unwrap().len(), 1, "one batch");

    // The same key with another body.
    let other = bulk_body(&products[..1]);
    let (s, r, _) = post_keyed(&app, &user, "order-42", &other).await;
    assert_eq!(s, 422);
    assert_eq!(
        r,
        json!({ "success": false, "message": "Idempotency-Key reused with a different request" })
    );
    // Keys are per user: another user's same key is a new request.
    let (s, _, replayed) = post_keyed(&app, &user, "order-43", &other).await;
    assert_eq!((s, replayed), (202, false));
    assert_eq!(used(&app, &admin, &ws).await, 3);
    // A malformed key changes nothing.
    let (s, r, _) = post_keyed(&app, &user, "two words", &body).await;
    assert_eq!(s, 400, "{r}");
    assert_eq!(used(&app, &admin, &ws).await, 3);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_do_the_work_once() {
    let (rck, fake) = fake_rck(vec![Next::Sleep(Duration::from_millis(300))]).await;
    let (app, admin, ws, user, products) = shop(&rck, 10, 2).await;
    let body = bulk_body(&products);
    let answers =
        futures::future::join_all((0..8).map(|_| post_keyed(&app, &user, "double-click", &body)))
            .await;
    for (status, r, _) in &answers {
        assert_eq!(*status, 202, "{r}");
        assert_eq!(r["data"]["videoIds"], answers[0].1["data"]["videoIds"]);
    }
    assert_eq!(
        answers.iter().filter(|a| !a.2).count(),
        1,
        "one did the work"
    );
    assert_eq!(fake.seen.lock().unwrap().len(), 1);
    assert_eq!(used(&app, &admin, &ws).await, 2);
}

#[tokio::test]
async fn a_refused_batch_is_replayed_not_sent_again() {
    let (rck, fake) = fake_rck(vec![Next::Status(400)]).await;
    let (app, admin, ws, user, products) = shop(&rck, 10, 2).await;
    let body = bulk_body(&products);
    let (s1, first, _) = post_keyed(&app, &user, "k1", &body).await;
    assert_eq!(s1, 502);
    let (s2, again, replayed) = post_keyed(&app, &user, "k1", &body).await;
    assert_eq!((s2, replayed), (502, true));
    assert_eq!(again, first);
    assert_eq!(fake.seen.lock().unwrap().len(), 1);
    assert_eq!(used(&app, &admin, &ws).await, 0);
}

#[tokio::test]
async fn a_refusal_that_changed_nothing_frees_the_key() {
    let (rck, _fake) = fake_rck(vec![]).await;
    let (app, admin, ws, user, products) = shop(&rck, 1, 2).await;
    // Over the limit: 403, nothing charged, and the key is not spent.
    let (s, _, _) = post_keyed(&app, &user, "k2", &bulk_body(&products)).await;
    assert_eq!(s, 403);
    let (s, _, replayed) = post_keyed(&app, &user, "k2", &bulk_body(&products[..1])).await;
    assert_eq!((s, replayed), (202, false));
    assert_eq!(used(&app, &admin, &ws).await, 1);
}

#[tokio::test]
async fn a_caller_that_hangs_up_does_not_stop_the_work_half_way() {
    let (rck, fake) = fake_rck(vec![Next::Sleep(Duration::from_millis(500))]).await;
    let (app, admin, ws, user, products) = shop(&rck, 10, 2).await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let gone = impatient
        .post(app.url("/api/videos/bulk-generate"))
        .bearer_auth(&user)
        .json(&bulk_body(&products))
        .send()
        .await;
    assert!(gone.is_err(), "the caller gave up first");
    // The call to RCK still completes and its job ids are kept.
    let mut jobs = Vec::new();
    for _ in 0..50 {
        let list = app.get("/api/videos?limit=10", &admin).await.expect(200);
        jobs = list.data()["videos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["metadata"]["externalJobId"].clone())
            .collect();
        if jobs.len() == 2 && jobs.iter().all(Value::is_string) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(jobs.len(), 2, "both videos exist");
    assert!(jobs.iter().all(Value::is_string), "job ids kept: {jobs:?}");
    assert_eq!(fake.seen.lock().unwrap().len(), 1);
    assert_eq!(used(&app, &admin, &ws).await, 2);
}
