//! Login, tokens, roles, and superadmin-managed accounts.

use crate::support::{TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};
use jsonwebtoken::{encode, EncodingKey, Header};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn login_returns_a_token_and_the_user_without_secrets() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/api/auth/login",
            None,
            json!({ "email": ADMIN_EMAIL.to_uppercase(), "password": ADMIN_PASSWORD }),
        )
        .await
        .expect(200);
    assert_eq!(r.body["success"], true);
    let user = &r.data()["user"];
    assert_eq!(user["email"], ADMIN_EMAIL);
    assert_eq!(user["role"], "SUPERADMIN");
    assert!(user.get("passwordHash").is_none() && user.get("password").is_none());
    let token = r.data()["token"].as_str().unwrap();
    let me = app.get("/api/auth/me", token).await.expect(200);
    assert_eq!(me.data()["_id"], user["_id"]);
}

#[tokio::test]
async fn bad_logins_are_401_and_say_nothing_about_which_part_was_wrong() {
    let app = TestApp::spawn().await;
    let wrong = app
        .post(
            "/api/auth/login",
            None,
            json!({ "email": ADMIN_EMAIL, "password": "nope-nope" }),
        )
        .await
        .expect(401);
    let unknown = app
        .post(
            "/api/auth/login",
            None,
            json!({ "email": "who@x.y", "password": "nope-nope" }),
        )
        .await
        .expect(401);
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(
        wrong.body,
        json!({ "success": false, "message": "Invalid email or password" })
    );
    let r = app
        .post("/api/auth/login", None, json!({ "email": ADMIN_EMAIL }))
        .await
        .expect(400);
    assert!(r.msg().contains("password"), "{}", r.msg());
}

#[tokio::test]
async fn missing_invalid_and_expired_tokens_are_401() {
    let app = TestApp::spawn().await;
    let r = app
        .call(Method::GET, "/api/products", None, None)
        .await
        .expect(401);
    assert_eq!(
        r.body,
        json!({ "success": false, "message": "Authentication required" })
    );
    app.get("/api/products", "garbage").await.expect(401);
    let secret = app_config_secret();
    let now = chrono::Utc::now().timestamp();
    let claims = json!({ "sub": "507f1f77bcf86cd799439011", "role": "SUPERADMIN", "iat": now - 7200, "exp": now - 3600 });
    let expired = encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    let r = app.get("/api/webhook-events", &expired).await.expect(401);
    assert_eq!(r.msg(), "Invalid or expired token");
    let forged = encode(&Header::default(), &json!({ "sub": "507f1f77bcf86cd799439011", "role": "SUPERADMIN", "iat": now, "exp": now + 60 }), &EncodingKey::from_secret(b"some-other-secret-of-32-characters!")).unwrap();
    app.get("/api/webhook-events", &forged).await.expect(401);
    // A raw header that is not Bearer.
    let resp = app
        .http
        .get(app.url("/api/products"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

fn app_config_secret() -> String {
    app::ssr::config::Config::for_tests(".".into()).jwt_secret
}

#[tokio::test]
async fn superadmins_create_workspaces_and_users() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let ws = app.workspace(&admin, 5).await;
    let w = app
        .post(
            "/api/workspaces",
            Some(&admin),
            json!({ "name": "  ", "videoLimit": 5 }),
        )
        .await
        .expect(400);
    assert_eq!(w.body["success"], false);
    app.post(
        "/api/workspaces",
        Some(&admin),
        json!({ "name": "X", "videoLimit": -1 }),
    )
    .await
    .expect(400);
    app.post("/api/workspaces", Some(&admin), json!({ "name": "X" }))
        .await
        .expect(400);

    let created = app
        .post("/api/users", Some(&admin), json!({ "email": "New@Shop.test", "password": "password-123", "role": "ADMIN", "workspaceId": ws }))
        .await
        .expect(201);
    assert_eq!(created.data()["email"], "new@shop.test");
    assert_eq!(created.data()["workspaceId"], ws);
    let dup = app
        .post("/api/users", Some(&admin), json!({ "email": "new@shop.test", "password": "password-123", "role": "USER", "workspaceId": ws }))
        .await
        .expect(409);
    assert_eq!(dup.msg(), "Email already registered");
    for (body, status) in [
        (
            json!({ "email": "bad", "password": "password-123", "role": "USER", "workspaceId": ws }),
            400,
        ),
        (
            json!({ "email": "a@b.co", "password": "short", "role": "USER", "workspaceId": ws }),
            400,
        ),
        (
            json!({ "email": "a@b.co", "password": "password-123", "role": "KING", "workspaceId": ws }),
            400,
        ),
        (
            json!({ "email": "a@b.co", "password": "password-123", "role": "USER" }),
            400,
        ),
        (
            json!({ "email": "a@b.co", "password": "password-123", "role": "USER", "workspaceId": "xyz" }),
            400,
        ),
        (
            json!({ "email": "a@b.co", "password": "password-123", "role": "USER", "workspaceId": "507f1f77bcf86cd799439011" }),
            404,
        ),
    ] {
        let r = app.post("/api/users", Some(&admin), body.clone()).await;
        assert_eq!(r.status.as_u16(), status, "{body} -> {}", r.body);
        assert_eq!(r.body["success"], false);
    }
    // The new admin can log in, and is not a superadmin.
    let token = app.login("new@shop.test", "password-123").await;
    let r = app
        .post(
            "/api/workspaces",
            Some(&token),
            json!({ "name": "Mine", "videoLimit": 1 }),
        )
        .await
        .expect(403);
    assert_eq!(r.body["success"], false);
    app.post(
        "/api/users",
        Some(&token),
        json!({ "email": "x@y.zz", "password": "password-123", "role": "SUPERADMIN" }),
    )
    .await
    .expect(403);
}

#[tokio::test]
async fn json_bodies_must_be_json() {
    let app = TestApp::spawn().await;
    let r = app
        .post_raw("/api/auth/login", Some("text/plain"), b"{}".to_vec())
        .await
        .expect(415);
    assert_eq!(r.body["success"], false);
    let r = app
        .post_raw("/api/auth/login", Some("application/json"), b"{".to_vec())
        .await
        .expect(400);
    assert_eq!(r.msg(), "Malformed JSON in request body");
    let r = app
        .post_raw(
            "/api/auth/login",
            Some("application/json"),
            vec![b' '; 2 * 1024 * 1024],
        )
        .await
        .expect(413);
    assert_eq!(r.body["success"], false);
    let r = app
        .call(Method::GET, "/api/nothing-here", None, None)
        .await
        .expect(404);
    assert_eq!(r.body["success"], false);
}

#[tokio::test]
async fn the_first_superadmin_is_created_once() {
    let app = TestApp::spawn().await;
    // The start-up created it; logging in proves it.
    app.admin().await;
    // Starting again on the same data dir must not fail or duplicate it.
    let mut config = app::ssr::config::Config::for_tests(app.data_dir.path().to_path_buf());
    config.superadmin_email = Some("second@racky.test".into());
    config.superadmin_password = Some("another-password".into());
    server::build_state(config).await.unwrap();
    let r = app
        .post(
            "/api/auth/login",
            None,
            json!({ "email": "second@racky.test", "password": "another-password" }),
        )
        .await;
    assert_eq!(
        r.status, 401,
        "a superadmin already existed, so none was created"
    );
}

#[test]
fn the_server_refuses_to_start_without_a_jwt_secret_outside_dev_mode() {
    let dir = tempfile::tempdir().unwrap();
    let run = |envs: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_server"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATA_DIR", dir.path())
            .current_dir(dir.path())
            .args(["workspace", "add", "--name", "Probe", "--video-limit", "1"]);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = run(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("JWT_SECRET is not set"), "{err}");
    let out = run(&[("JWT_SECRET", "too-short")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 32 characters"));
    // Dev mode runs without one (and keeps a generated one in DATA_DIR).
    let out = run(&[("DEV_MODE", "1")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"videoLimit\": 1"));
    assert!(dir.path().join("dev-jwt-secret").exists());
}

#[tokio::test]
async fn password_guessing_is_throttled_per_address_and_account() {
    let app = TestApp::spawn().await;
    let bad = |email: &'static str| json!({ "email": email, "password": "guess-guess" });
    for _ in 0..5 {
        app.post("/api/auth/login", None, bad(ADMIN_EMAIL))
            .await
            .expect(401);
    }
    // The sixth try for this account from this address is refused, right password or not.
    let resp = app
        .http
        .post(app.url("/api/auth/login"))
        .json(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&wait), "Retry-After {wait}");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "success": false, "message": "Too many login attempts, try again later" })
    );
    // The dashboard's form is throttled the same way.
    let form = app
        .http
        .post(app.url("/login"))
        .header("origin", app.url(""))
        .form(&[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 429);
    assert!(form.headers().contains_key("retry-after"));

    // Other accounts from this address still get their answer.
    app.post("/api/auth/login", None, bad("someone@else.test"))
        .await
        .expect(401);
}

#[tokio::test]
async fn a_successful_login_starts_the_count_again() {
    let app = TestApp::spawn().await;
    for _ in 0..2 {
        for _ in 0..4 {
            app.post(
                "/api/auth/login",
                None,
                json!({ "email": ADMIN_EMAIL, "password": "guess-guess" }),
            )
            .await
            .expect(401);
        }
        app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    }
}
