//! Sessions that end: logout revokes on the server, a changed or deleted user's token stops working,
//! the live feed closes with its session, and JWT_ISSUER/JWT_AUDIENCE are required when set.

use crate::support::{TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};
use futures::StreamExt;
use serde_json::json;
use std::time::Duration;

async fn status_with_cookie(app: &TestApp, path: &str, cookie: &str) -> u16 {
    TestApp::no_redirects()
        .get(app.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn logout_revokes_the_session_on_the_server() {
    let app = TestApp::spawn().await;
    let cookie = app.form_login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        status_with_cookie(&app, "/api/webhook-events", &cookie).await,
        200
    );
    assert_eq!(status_with_cookie(&app, "/events", &cookie).await, 200);
    let out = TestApp::no_redirects()
        .post(app.url("/logout"))
        .header("origin", app.url(""))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    // The old cookie, kept by someone, no longer works anywhere.
    assert_eq!(
        status_with_cookie(&app, "/api/webhook-events", &cookie).await,
        401
    );
    assert_eq!(status_with_cookie(&app, "/events", &cookie).await, 303);

    // The REST logout revokes a Bearer token the same way.
    let token = app.admin().await;
    app.get("/api/auth/me", &token).await.expect(200);
    let r = app
        .post("/api/auth/logout", Some(&token), json!({}))
        .await
        .expect(200);
    assert_eq!(r.msg(), "Signed out");
    let r = app.get("/api/auth/me", &token).await.expect(401);
    assert_eq!(r.msg(), "Session has ended; sign in again");
}

#[tokio::test]
async fn a_token_stops_working_when_its_user_changes() {
    let app = TestApp::spawn_with(|c| c.session_recheck_secs = 0).await;
    let admin = app.admin().await;
    let ws = app.workspace(&admin, 5).await;
    let email = format!("demoted{}@shop.test", crate::support::rand_suffix());
    app.post(
        "/api/users",
        Some(&admin),
        json!({ "email": email, "password": "password-123", "role": "ADMIN", "workspaceId": ws }),
    )
    .await
    .expect(201);
    let token = app.login(&email, "password-123").await;
    app.get("/api/auth/me", &token).await.expect(200);
    // The platform demotes the user (straight in the shared database).
    let db = rusqlite::Connection::open(app.data_dir.path().join("videos.db")).unwrap();
    db.execute(
        "UPDATE users SET role = 'USER' WHERE email = ?1",
        [email.as_str()],
    )
    .unwrap();
    app.get("/api/auth/me", &token).await.expect(401);
    // And a deleted user's token is refused too.
    let token = app.admin().await;
    db.execute("DELETE FROM users WHERE role = 'SUPERADMIN'", [])
        .unwrap();
    app.get("/api/webhook-events", &token).await.expect(401);
}

#[tokio::test]
async fn the_live_feed_closes_when_its_session_is_revoked() {
    let app = TestApp::spawn_with(|c| c.session_recheck_secs = 1).await;
    let cookie = app.form_login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let resp = app
        .http
        .get(app.url("/api/live"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: ready"));
    TestApp::no_redirects()
        .post(app.url("/logout"))
        .header("origin", app.url(""))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    // The stream ends (bounded wait: keep-alives may come first).
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(chunk) = stream.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the live feed stayed open after logout");
    assert_eq!(status_with_cookie(&app, "/api/live", &cookie).await, 401);
}

#[tokio::test]
async fn issuer_and_audience_are_required_when_configured() {
    let app = TestApp::spawn_with(|c| {
        c.jwt_issuer = Some("racky-platform".into());
        c.jwt_audience = Some("racky-videos".into());
    })
    .await;
    let token = app.admin().await;
    app.get("/api/auth/me", &token).await.expect(200);
    // A token made with the shared secret but without iss/aud is refused.
    let claims = json!({
        "sub": "507f1f77bcf86cd799439011", "role": "SUPERADMIN",
        "iat": chrono::Utc::now().timestamp(), "exp": chrono::Utc::now().timestamp() + 600
    });
    let foreign = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"test-secret-test-secret-test-secret-0123"),
    )
    .unwrap();
    app.get("/api/auth/me", &foreign).await.expect(401);
}
