//! Starting the app, and small HTTP helpers.

use app::ssr::config::Config;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tempfile::TempDir;

pub const ADMIN_EMAIL: &str = "root@racky.test";
pub const ADMIN_PASSWORD: &str = "root-password-123";

pub struct TestApp {
    pub addr: SocketAddr,
    pub http: Client,
    pub data_dir: TempDir,
}

pub struct Res {
    pub status: StatusCode,
    pub body: Value,
}

impl Res {
    pub fn msg(&self) -> &str {
        self.body["message"].as_str().unwrap_or("")
    }
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected answer: {}",
            self.body
        );
        self
    }
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// The `videoIds` of a bulk generation's answer.
    pub fn video_ids(&self) -> Vec<String> {
        self.data()["videoIds"]
            .as_array()
            .expect("videoIds")
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the app; `tweak` may change the configuration (RCK URL, timeouts, ...).
    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = Config::for_tests(data_dir.path().to_path_buf());
        config.site_addr = addr;
        config.server_url = format!("http://{addr}");
        config.superadmin_email = Some(ADMIN_EMAIL.into());
        config.superadmin_password = Some(ADMIN_PASSWORD.into());
        tweak(&mut config);
        let state = server::build_state(config).await.expect("state");
        let _workers = server::workers::Workers::start(&state);
        let router = server::router(state, server::leptos_options(addr));
        tokio::spawn(server::serve(
            listener,
            router,
            std::future::pending(),
            std::time::Duration::from_secs(1),
        ));
        Self {
            addr,
            http: Client::new(),
            data_dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Res {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let body =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text:?}"));
        Res { status, body }
    }

    pub async fn get(&self, path: &str, token: &str) -> Res {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// An action: a POST without a body of its own (`{}`), as `token`.
    pub async fn act(&self, path: &str, token: &str) -> Res {
        self.post(path, Some(token), json!({})).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Res {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Sends raw bytes with a given content type (for webhook edge cases).
    pub async fn post_raw(&self, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Res {
        let mut req = self.http.post(self.url(path)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        Res {
            status,
            body: serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}")),
        }
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let r = self
            .post(
                "/api/auth/login",
                None,
                json!({ "email": email, "password": password }),
            )
            .await
            .expect(200);
        r.data()["token"].as_str().unwrap().to_string()
    }

    /// A client that does not follow redirects (to see the 303s of the dashboard's forms).
    pub fn no_redirects() -> Client {
        Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// Signs in through the dashboard's login form, from our own origin; returns the session cookie
    /// (`name=value`).
    pub async fn form_login(&self, email: &str, password: &str) -> String {
        let ok = Self::no_redirects()
            .post(self.url("/login"))
            .header("origin", self.url(""))
            .form(&[("email", email), ("password", password)])
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

    pub async fn admin(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    pub async fn workspace(&self, admin: &str, limit: u32) -> String {
        let r = self
            .post(
                "/api/workspaces",
                Some(admin),
                json!({ "name": "Shop", "videoLimit": limit }),
            )
            .await
            .expect(201);
        r.data()["_id"].as_str().unwrap().to_string()
    }

    /// A new user of the workspace, logged in; returns its token.
    pub async fn user_in(&self, admin: &str, workspace: &str, role: &str) -> String {
        let email = format!("u{}@shop.test", rand_suffix());
        self.post(
            "/api/users",
            Some(admin),
            json!({ "email": email, "password": "password-123", "role": role, "workspaceId": workspace }),
        )
        .await
        .expect(201);
        self.login(&email, "password-123").await
    }

    pub async fn product(&self, token: &str, title: &str) -> String {
        let r = self
            .post(
                "/api/products",
                Some(token),
                json!({ "title": title, "sku": format!("SKU-{title}"), "imgUrls": ["https://img.test/a.jpg"] }),
            )
            .await
            .expect(201);
        r.data()["_id"].as_str().unwrap().to_string()
    }

    /// Events of the log, newest first, filtered by videoId.
    pub async fn events_for(&self, admin: &str, video_id: &str) -> Vec<Value> {
        let r = self
            .get(
                &format!("/api/webhook-events?limit=100&videoId={video_id}"),
                admin,
            )
            .await
            .expect(200);
        r.data()["events"].as_array().unwrap().clone()
    }
}

/// A loopback port nothing listens on right now (for a process the test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

pub fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed) * 1_000_003 + std::process::id() as u64
}

/// A stand-in for RCK that accepts every batch and never calls back, remembering the callback URL
/// it was given for each video, so tests call back exactly as RCK would (token included).
#[derive(Clone, Default)]
pub struct RecordingRck {
    /// videoId -> the success callback URL of the last batch that carried it.
    urls: Arc<Mutex<HashMap<String, String>>>,
}

impl RecordingRck {
    pub async fn spawn() -> (Self, SocketAddr) {
        use axum::extract::State;
        use axum::Json;
        let rec = RecordingRck::default();
        let app = axum::Router::new()
            .route(
                "/api/v1/create-images-batch",
                axum::routing::post(
                    |State(rec): State<RecordingRck>, Json(b): Json<Value>| async move {
                        let url = b["callback_url"].as_str().unwrap_or_default().to_string();
                        let products = b["products"].as_array().cloned().unwrap_or_default();
                        let mut urls = rec.urls.lock().unwrap();
                        let jobs: Vec<String> = products
                            .iter()
                            .map(|p| {
                                let v = p["videoId"].as_str().unwrap_or_default().to_string();
                                urls.insert(v.clone(), url.clone());
                                format!("job_{v}")
                            })
                            .collect();
                        Json(json!({ "job_ids": jobs }))
                    },
                ),
            )
            .with_state(rec.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (rec, addr)
    }

    /// The query (`?token=...`) of the callback URLs RCK was given for `video`, if it was sent.
    pub fn query_for(&self, video: &str) -> Option<String> {
        let urls = self.urls.lock().unwrap();
        let url = urls.get(video)?;
        url.find('?').map(|i| url[i..].to_string())
    }
}

/// A workspace with a user and products whose videos were started against an RCK that never
/// calls back, so tests drive the callbacks themselves.
pub struct Scene {
    pub app: TestApp,
    pub admin: String,
    pub user: String,
    pub workspace: String,
    pub products: Vec<String>,
    pub rck: RecordingRck,
}

impl Scene {
    pub async fn new() -> Self {
        Self::new_with(|_| {}).await
    }

    pub async fn new_with(tweak: impl FnOnce(&mut Config)) -> Self {
        // Videos stay `generating` until the test calls back.
        let (rck, rck_addr) = RecordingRck::spawn().await;
        let app = TestApp::spawn_with(|c| {
            c.rck_url = Some(format!("http://{rck_addr}"));
            tweak(c);
        })
        .await;
        let admin = app.admin().await;
        let workspace = app.workspace(&admin, 100).await;
        let user = app.user_in(&admin, &workspace, "USER").await;
        let mut products = Vec::new();
        for i in 0..2 {
            products.push(app.product(&user, &format!("P{i}")).await);
        }
        Self {
            app,
            admin,
            user,
            workspace,
            products,
            rck,
        }
    }

    /// Calls back as RCK would: to `path` with the query of the URLs RCK was given for the body's
    /// `videoId` (its capability token), or without one for a video RCK never saw.
    pub async fn callback(&self, path: &str, body: Value) -> Res {
        let query = body["videoId"]
            .as_str()
            .and_then(|v| self.rck.query_for(v))
            .unwrap_or_default();
        self.app.post(&format!("{path}{query}"), None, body).await
    }

    /// Starts `n` videos of one product (same template) and returns their ids.
    pub async fn start_videos(&self, product: &str, n: usize) -> Vec<String> {
        let mut ids = Vec::new();
        for _ in 0..n {
            let r = self
                .app
                .post(
                    "/api/videos/bulk-generate",
                    Some(&self.user),
                    json!({ "productIds": [product], "templateId": "tpl_1", "templateName": "Showcase", "aspect_ratio": "9:16" }),
                )
                .await
                .expect(202);
            ids.push(r.data()["videoIds"][0].as_str().unwrap().to_string());
        }
        ids
    }

    pub async fn video(&self, id: &str) -> Value {
        self.app
            .get(&format!("/api/videos/{id}"), &self.user)
            .await
            .expect(200)
            .data()
            .clone()
    }

    pub async fn product_entry(&self, product: &str, video: &str) -> Value {
        let p = self
            .app
            .get(&format!("/api/products/{product}"), &self.user)
            .await
            .expect(200);
        p.data()["videos"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["videoId"] == video)
            .cloned()
            .unwrap_or_else(|| panic!("no entry for {video} in {}", p.body))
    }
}

/// The MongoDB of the tests (`make test` starts one, see scripts/with-mongo.sh); `None` only when
/// RACKY_SKIP_MONGO_TESTS=1.
pub fn mongo_uri() -> Option<String> {
    match std::env::var("MONGODB_TEST_URI") {
        Ok(uri) if !uri.trim().is_empty() => Some(uri),
        _ if std::env::var("RACKY_SKIP_MONGO_TESTS").as_deref() == Ok("1") => None,
        _ => panic!(
            "MONGODB_TEST_URI is not set: run `make test`, or scripts/with-mongo.sh cargo test; \
             RACKY_SKIP_MONGO_TESTS=1 skips the MongoDB cases"
        ),
    }
}
