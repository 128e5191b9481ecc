//! The hardened web surface, from outside: cross-site writes refused, security headers and the page's
//! CSP, hostile `next=`, numbers that overflow.

use crate::support::{TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};
use serde_json::{json, Value};

async fn refused(resp: reqwest::Response) {
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "success": false, "message": "Cross-site request refused" })
    );
}

#[tokio::test]
async fn cookie_authenticated_writes_from_other_sites_are_refused() {
    let app = TestApp::spawn().await;
    let http = TestApp::no_redirects();
    // The login form, posted from another site (or with no origin at all).
    for origin in [Some("https://evil.example"), None] {
        let mut req = http
            .post(app.url("/login"))
            .form(&[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)]);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        refused(req.send().await.unwrap()).await;
    }
    let cookie = app.form_login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    // A server function and the REST API called with the cookie from elsewhere.
    let r = http
        .post(app.url("/api/fn/mark_failed"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .form(&[("id", "507f1f77bcf86cd799439011")])
        .send()
        .await
        .unwrap();
    refused(r).await;
    let r = http
        .post(app.url("/api/workspaces"))
        .header("cookie", &cookie)
        .header("referer", "https://evil.example/page")
        .json(&json!({ "name": "x", "videoLimit": 1 }))
        .send()
        .await
        .unwrap();
    refused(r).await;
    let r = http
        .post(app.url("/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    refused(r).await;
    // The same requests from our own origin (Origin, or Referer without Origin) go through.
    let r = http
        .post(app.url("/api/workspaces"))
        .header("cookie", &cookie)
        .header("referer", app.url("/videos"))
        .json(&json!({ "name": "Ours", "videoLimit": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Bearer requests are not affected: no browser sends them on another site's behalf.
    let admin = app.admin().await;
    app.post(
        "/api/workspaces",
        Some(&admin),
        json!({ "name": "Bearer", "videoLimit": 1 }),
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn pages_carry_security_headers_and_a_csp_with_the_hydration_nonce() {
    let app = TestApp::spawn().await;
    let cookie = app.form_login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = app
        .http
        .get(app.url("/events"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let h = page.headers().clone();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "same-origin");
    assert_eq!(h["x-frame-options"], "DENY");
    let csp = h["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .expect("a nonce in script-src")
        .to_string();
    assert!(nonce.len() >= 16);
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "the hydration script carries the CSP's nonce"
    );
    // Each page gets its own.
    let again = app
        .http
        .get(app.url("/events"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(!again.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains(&nonce));
    // JSON answers carry the plain headers too.
    let api = app.http.get(app.url("/api/health")).send().await.unwrap();
    assert_eq!(api.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn next_only_leads_to_our_own_paths() {
    let app = TestApp::spawn().await;
    let http = TestApp::no_redirects();
    for hostile in [
        "/\t/evil.example",
        "//evil.example",
        "https://evil.example",
        "/\\evil",
    ] {
        let r = http
            .post(app.url("/login"))
            .header("origin", app.url(""))
            .form(&[
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
                ("next", hostile),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], "/", "next={hostile:?}");
    }
}

#[tokio::test]
async fn numbers_that_overflow_are_400_not_500() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    for q in [
        "/api/webhook-events?page=99999999999999999999",
        "/api/webhook-events?page=999999999999999999&limit=100",
        "/api/videos?page=99999999999999999999",
        "/api/products?page=999999999999999999&limit=100&workspaceId=507f1f77bcf86cd799439011",
    ] {
        let r = app.get(q, &admin).await.expect(400);
        assert_eq!(r.msg(), "page is too large", "{q}");
    }
    // A huge limit is capped, not refused.
    let r = app
        .get("/api/webhook-events?limit=99999999999999999999", &admin)
        .await
        .expect(200);
    assert_eq!(r.data()["pagination"]["limit"], 100);
}

/// An RCK that accepts connections and never answers; `accepted` fires on the first one.
async fn silent_rck() -> (String, std::sync::Arc<tokio::sync::Notify>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(tokio::sync::Notify::new());
    let notify = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
            notify.notify_one();
        }
    });
    (format!("http://{addr}"), accepted)
}

/// A shop user with one product, on an app whose RCK never answers.
async fn stuck_shop(
    tweak: impl FnOnce(&mut app::ssr::config::Config),
) -> (TestApp, String, String, std::sync::Arc<tokio::sync::Notify>) {
    let (rck, accepted) = silent_rck().await;
    let app = TestApp::spawn_with(|c| {
        c.rck_url = Some(rck);
        c.rck_timeout_ms = 60_000;
        c.rck_max_retries = 0;
        tweak(c);
    })
    .await;
    let admin = app.admin().await;
    let ws = app.workspace(&admin, 10).await;
    let user = app.user_in(&admin, &ws, "USER").await;
    let product = app.product(&user, "Slow").await;
    (app, user, product, accepted)
}

fn bulk(product: &str) -> Value {
    json!({ "productIds": [product], "templateId": "t", "templateName": "T", "aspect_ratio": "9:16" })
}

#[tokio::test]
async fn a_request_that_takes_too_long_is_cut_off_with_503() {
    let (app, user, product, _) = stuck_shop(|c| c.request_timeout_secs = 1).await;
    let r = app
        .post("/api/videos/bulk-generate", Some(&user), bulk(&product))
        .await
        .expect(503);
    assert_eq!(r.msg(), "Request timed out");
}

#[tokio::test]
async fn past_the_in_flight_limit_requests_are_told_to_come_back() {
    let (app, user, product, accepted) = stuck_shop(|c| c.max_in_flight = 1).await;
    let app = std::sync::Arc::new(app);
    let busy = {
        let app = app.clone();
        tokio::spawn(async move {
            app.post("/api/videos/bulk-generate", Some(&user), bulk(&product))
                .await
        })
    };
    // The one slot is taken once RCK has the call.
    accepted.notified().await;
    let r = app.http.get(app.url("/api/health")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    busy.abort();
}

#[tokio::test]
async fn refused_callbacks_keep_at_most_4_kib_of_their_body() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let huge = json!({ "videoId": "not-an-id", "blob": "x".repeat(50_000) });
    app.post("/internal/videos/success", None, huge.clone())
        .await
        .expect(400);
    let events = app.events_for(&admin, "not-an-id").await;
    assert_eq!(events.len(), 1);
    let kept = &events[0]["payload"];
    assert_eq!(kept["truncated"], true);
    assert_eq!(kept["bytes"], huge.to_string().len());
    assert!(kept["head"].as_str().unwrap().len() <= 4096);
}

#[tokio::test]
async fn pages_and_json_are_compressed_and_the_live_feed_is_not() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let get = |path: &str, encoding: &str| {
        app.http
            .get(app.url(path))
            .bearer_auth(&admin)
            .header("accept-encoding", encoding)
            .send()
    };
    let page = get("/login", "br").await.unwrap();
    assert_eq!(page.headers()["content-encoding"], "br");
    let json = get("/api/webhook-events", "gzip").await.unwrap();
    assert_eq!(json.headers()["content-encoding"], "gzip");
    // Nothing asked for, nothing compressed.
    let plain = get("/api/webhook-events", "identity").await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let body: Value = plain.json().await.unwrap();
    assert_eq!(body["success"], true);
    // Server-Sent Events flow as they come.
    let live = get("/api/live", "br, gzip").await.unwrap();
    assert_eq!(live.status(), 200);
    assert!(live.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert!(live.headers().get("content-encoding").is_none());
}
