//! `GET /api/openapi.json`: valid OpenAPI 3.1 (checked by `openapi-spec-validator`, installed by
//! `make test` next to the MongoDB test server), and the same routes as the router: every route in
//! the sources is documented, every documented operation is served. `GET /api/docs` shows them all.

use crate::support::TestApp;
use reqwest::{Client, Method};
use serde_json::Value;
use std::collections::BTreeSet;

/// Each router source with the prefix its routes are served under.
const SOURCES: &[(&str, &str)] = &[
    ("/api", include_str!("../../src/rest.rs")),
    ("/api", include_str!("../../src/live.rs")),
    ("/api", include_str!("../../src/openapi.rs")),
    ("", include_str!("../../src/internal.rs")),
    ("", include_str!("../../src/session.rs")),
    ("", include_str!("../../src/observe.rs")),
];

/// `METHOD /path` of every `.route("/path", get(..).post(..))` in the sources (the methods named
/// up to the next `.route(`, or the end of the router's function).
fn routes_in_sources() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (prefix, src) in SOURCES {
        // rustfmt may put the path and the handlers on lines of their own.
        for part in src.split(".route(").skip(1) {
            let Some(part) = part.trim_start().strip_prefix('"') else {
                continue;
            };
            let (path, rest) = part.split_once('"').unwrap();
            let call = rest.split("\n}").next().unwrap();
            for method in ["get", "post", "put", "patch", "delete"] {
                let plain = format!(" {method}(");
                let chained = format!(".{method}(");
                if call.contains(&plain) || call.contains(&chained) {
                    found.insert(format!("{} {prefix}{path}", method.to_uppercase()));
                }
            }
        }
    }
    found
}

fn documented(doc: &Value) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            found.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    found
}

async fn document(app: &TestApp) -> Value {
    let r = Client::new()
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1() {
    let Some(validator) = std::env::var_os("OPENAPI_SPEC_VALIDATOR") else {
        if std::env::var("RACKY_SKIP_MONGO_TESTS").as_deref() == Ok("1") {
            return;
        }
        panic!(
            "OPENAPI_SPEC_VALIDATOR is not set: run `make test` (scripts/with-mongo.sh installs \
             openapi-spec-validator and sets it)"
        );
    };
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let file = app.data_dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let out = std::process::Command::new(validator)
        .arg(&file)
        .output()
        .expect("openapi-spec-validator runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // What an integrator needs besides the shapes.
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    for s in [
        "bearer",
        "cookie",
        "callbackToken",
        "webhookSignature",
        "metricsToken",
    ] {
        assert!(schemes.contains_key(s), "security scheme {s}");
    }
    let bulk = &doc["paths"]["/api/videos/bulk-generate"]["post"];
    for status in [
        "202", "400", "401", "403", "404", "409", "422", "502", "503",
    ] {
        assert!(
            bulk["responses"].get(status).is_some(),
            "bulk-generate {status}"
        );
    }
    let schemas = &doc["components"]["schemas"];
    assert!(schemas["ErrorBody"]["properties"]["message"].is_object());
    assert!(schemas["SuccessCallback"]["examples"].is_array());
    assert!(schemas["BulkRequest"]["properties"]["aspect_ratio"].is_object());
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_route_is_served() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let served = routes_in_sources();
    let described = documented(&doc);
    assert!(served.len() >= 25, "the route scan found {served:?}");
    let missing: Vec<_> = served.difference(&described).collect();
    assert!(
        missing.is_empty(),
        "routes without documentation: {missing:?}"
    );
    let invented: Vec<_> = described.difference(&served).collect();
    assert!(
        invented.is_empty(),
        "documented but not routed: {invented:?}"
    );
    // And the server answers each one (any status but "no such route").
    let http = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for op in &described {
        let (method, path) = op.split_once(' ').unwrap();
        let path = path.replace("{id}", "507f1f77bcf86cd799439011");
        let r = http
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                app.url(&path),
            )
            .header("origin", app.url(""))
            .send()
            .await
            .unwrap();
        if r.status() == 404 || r.status() == 405 {
            let body = r.text().await.unwrap_or_default();
            assert!(
                !body.contains("Route not found") && !body.contains("Method not allowed"),
                "{op}: {body}"
            );
        }
    }
}

#[tokio::test]
async fn the_docs_page_lists_every_operation_without_scripts() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let r = Client::new()
        .get(app.url("/api/docs"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let page = r.text().await.unwrap();
    assert!(!page.contains("<script"));
    for path in doc["paths"].as_object().unwrap().keys() {
        assert!(page.contains(&format!("<code>{path}</code>")), "{path}");
    }
    assert!(page.contains("id=\"schema-AiVideo\""));
}
