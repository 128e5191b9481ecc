//! The hardened web surface, from outside: cross-site writes refused, security headers and the page's
//! CSP, hostile `next=`, numbers that overflow.

use crate::support::{TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};
use serde_json::{json, Value};

/// A session cookie from the login form.
async fn session(app: &TestApp) -> String {
    let ok = no_redirects()
        .post(app.url("/login"))
        .header("origin", app.url(""))
        .form(&[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    ok.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

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
    let http = no_redirects();
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
    let cookie = session(&app).await;
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
    let cookie = session(&app).await;
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
    let http = no_redirects();
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
