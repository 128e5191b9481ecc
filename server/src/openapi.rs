//! The machine-readable API: OpenAPI 3.1 at `GET /api/openapi.json`, generated from the handlers'
//! `#[utoipa::path]` annotations and the types they take and answer; and `GET /api/docs`, a page
//! rendered here from the same document (no script, no CDN).
//!
//! A new route gets its `#[utoipa::path]` next to its handler and a line in [`ApiDoc`]'s `paths`;
//! `server/tests/http/openapi.rs` checks the document against a validator and against the router.

use axum::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use std::fmt::Write as _;
use std::sync::OnceLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::{Modify, OpenApi, ToSchema};

/// The envelope of every JSON answer of ours (the spec's): `{"success": true, "data": …}`, with a
/// `message` on some.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Envelope<T> {
    success: bool,
    /// Present on some answers (`Video status updated successfully`, `Signed out`, …).
    message: Option<String>,
    data: T,
}

/// Every refusal: `{"success": false, "message": "…"}`, with `data` for details where useful.
#[derive(ToSchema, Serialize)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// Always `false`.
    success: bool,
    /// What went wrong, in words a caller can show.
    #[schema(examples("Video not found"))]
    message: String,
    /// Details (for example the missing `productIds`), on some refusals.
    data: Option<serde_json::Value>,
}

/// The refusals every authenticated route may give.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum Errors {
    /// Bad input (malformed JSON, a bad id or filter): nothing changed.
    #[response(status = 400)]
    BadRequest(#[to_schema] ErrorBody),
    /// No, invalid, expired or revoked token.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The caller's role may not do this; or a cookie-authenticated write from another site.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// The store cannot be reached in time (`Retry-After: 5`), or the server is busy (`Retry-After: 1`).
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// What a callback may be answered besides 200; every one of them is recorded.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum CallbackErrors {
    /// `Request body must be a JSON object`, `videoId is required`, `videoId must be a string`
    /// (or another field), `Invalid videoId format`, `Malformed JSON in request body`.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// `Invalid callback credentials`: the batch's token (or a valid signature) was missing or wrong.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// `Video not found`.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// `Request body too large (max 1 MiB)`.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// `Content-Type must be application/json`.
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody),
    /// `Storage unavailable` (`Retry-After: 5`): nothing changed; the call is kept and recorded
    /// once the store is back. RCK should retry.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// `POST /internal/videos/success`: only `videoId` is required; other fields are kept in the record.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(examples(json!({"videoId": "65abc123def4567890120000", "youtubeVideoId": "dQw4w9WgXcQ",
    "localFilename": "/videos/product_123.mp4", "video_url": "https://cdn.example.com/video.mp4",
    "img_s3_url": "https://s3.amazonaws.com/thumbnail.jpg"})))]
pub struct SuccessCallback {
    #[schema(rename = "videoId")]
    video_id: String,
    #[schema(rename = "youtubeVideoId")]
    youtube_video_id: Option<String>,
    #[schema(rename = "localFilename")]
    local_filename: Option<String>,
    video_url: Option<String>,
    img_s3_url: Option<String>,
}

/// `POST /internal/videos/failure`: `error` defaults to `Video generation failed`.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(examples(json!({"videoId": "65abc123def4567890120000",
    "error": "Failed to process video: insufficient image quality"})))]
pub struct FailureCallback {
    #[schema(rename = "videoId")]
    video_id: String,
    error: Option<String>,
}

/// The `data` of an accepted success callback.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct SuccessData {
    video_id: app::model::ObjectId,
    youtube_video_id: Option<String>,
    local_filename: Option<String>,
    video_url: Option<String>,
    img_s3_url: Option<String>,
    product_id: app::model::ObjectId,
}

/// The `data` of an accepted failure callback.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct FailureData {
    video_id: app::model::ObjectId,
    product_id: app::model::ObjectId,
    error: String,
}

/// `/healthz` and `/readyz`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Probe {
    /// `ok` (healthz), `ready` or `unavailable` (readyz).
    status: String,
    /// `sqlite` or `mongodb` (readyz).
    store: Option<String>,
}

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut Document) {
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("A token from POST /api/auth/login (or `server token`): HS256 with sub, role, workspaceId"))
                    .build(),
            ),
        );
        c.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                app::ssr::auth::SESSION_COOKIE,
                "The dashboard's session (the same JWT); writes must come from our own origin",
            ))),
        );
        c.add_security_scheme(
            "callbackToken",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "The batch's capability token, in the callback URLs we give RCK (WEBHOOK_AUTH=token)",
            ))),
        );
        c.add_security_scheme(
            "webhookSignature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "webhook-signature",
                "Standard Webhooks: webhook-id, webhook-timestamp and webhook-signature, signed with RCK_WEBHOOK_SECRET",
            ))),
        );
        c.add_security_scheme(
            "metricsToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("METRICS_TOKEN, when set"))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Racky videos",
        description = "Product videos generated by the RCK Description server: bulk generation, RCK's callbacks, the webhook event log, statistics, the live feed and operations. Every JSON answer is an envelope: `{\"success\": true, \"data\": …}` or `{\"success\": false, \"message\": \"…\"}`. Ids are 24-hex ObjectIds; times are RFC 3339 UTC.",
        license(name = "MIT")
    ),
    paths(
        crate::rest::health,
        crate::rest::login,
        crate::rest::me,
        crate::rest::logout,
        crate::rest::create_workspace,
        crate::rest::list_workspaces,
        crate::rest::workspace_usage,
        crate::rest::update_workspace,
        crate::rest::create_user,
        crate::rest::create_product,
        crate::rest::list_products,
        crate::rest::get_product,
        crate::rest::bulk_generate,
        crate::rest::list_videos,
        crate::rest::bulk_video_action,
        crate::rest::get_video,
        crate::rest::mark_failed,
        crate::rest::retry_video,
        crate::rest::list_events,
        crate::rest::webhook_stats,
        crate::rest::export_events,
        crate::rest::get_event,
        crate::rest::replay_event,
        crate::rest::get_notification_settings,
        crate::rest::put_notification_settings,
        crate::rest::rotate_webhook_secret,
        crate::rest::test_notifications,
        crate::rest::list_notifications,
        crate::rest::redeliver_notification,
        crate::live::live,
        crate::internal::success,
        crate::internal::failure,
        crate::session::login,
        crate::session::logout,
        crate::observe::healthz,
        crate::observe::readyz,
        crate::observe::scrape,
        openapi_json,
        docs,
    ),
    modifiers(&Security),
    tags(
        (name = "auth", description = "Logging in and out (bearer tokens for the API, a cookie for the dashboard)"),
        (name = "workspaces", description = "Shops and their video quota"),
        (name = "users"),
        (name = "products"),
        (name = "videos", description = "Starting videos and following them"),
        (name = "callbacks", description = "RCK's calls back. Every call under /internal is recorded as a webhook event, valid or not (unknown paths: 404 `Route not found`, wrong methods: 405)."),
        (name = "webhook-events", description = "The audit log of callbacks, and its statistics"),
        (name = "notifications", description = "Email, Slack, Discord and signed webhooks when videos finish, from a durable outbox"),
        (name = "live", description = "Changes as they happen"),
        (name = "operations", description = "Probes, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// The document, built once.
pub fn document() -> &'static Document {
    static DOC: OnceLock<Document> = OnceLock::new();
    DOC.get_or_init(ApiDoc::openapi)
}

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(docs))
}

#[utoipa::path(get, path = "/api/openapi.json", tag = "operations", summary = "This document (OpenAPI 3.1)",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
async fn openapi_json() -> Response {
    axum::Json(document()).into_response()
}

#[utoipa::path(get, path = "/api/docs", tag = "operations", summary = "This document as a page to read",
    responses((status = 200, description = "HTML", content_type = "text/html")))]
async fn docs() -> Response {
    static PAGE: OnceLock<String> = OnceLock::new();
    let page = PAGE.get_or_init(|| render(document()));
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            // No script at all; the one inline stylesheet.
            (
                CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
                ),
            ),
        ],
        page.clone(),
    )
        .into_response()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `#/components/schemas/Name` → a link to the schema's section; inline schemas as JSON.
fn schema_ref<T: Serialize>(s: &RefOr<T>) -> String {
    match s {
        RefOr::Ref(r) => {
            let name = r.ref_location.rsplit('/').next().unwrap_or_default();
            format!("<a href=\"#schema-{0}\"><code>{0}</code></a>", esc(name))
        }
        RefOr::T(t) => format!(
            "<pre tabindex=\"0\">{}</pre>",
            esc(&serde_json::to_string_pretty(t).unwrap_or_default())
        ),
    }
}

/// The page: every operation grouped by tag (method, path, summary, description, parameters,
/// body, answers), then every schema.
fn render(doc: &Document) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} API</title><style>{CSS}</style></head><body><main><h1>{title} API <small>{version}</small></h1>\
         <p>{desc}</p><p>Machine-readable: <a href=\"/api/openapi.json\"><code>/api/openapi.json</code></a> (OpenAPI 3.1).</p>",
        title = esc(&doc.info.title),
        version = esc(&doc.info.version),
        desc = esc(doc.info.description.as_deref().unwrap_or_default()),
    );
    let tags: Vec<(String, String)> = doc
        .tags
        .iter()
        .flatten()
        .map(|t| (t.name.clone(), t.description.clone().unwrap_or_default()))
        .collect();
    h.push_str("<nav><ul>");
    for (t, _) in &tags {
        let _ = write!(h, "<li><a href=\"#tag-{0}\">{0}</a></li>", esc(t));
    }
    h.push_str("<li><a href=\"#schemas\">schemas</a></li></ul></nav>");
    for (tag, tag_desc) in &tags {
        let _ = write!(
            h,
            "<section id=\"tag-{0}\"><h2>{0}</h2><p>{1}</p>",
            esc(tag),
            esc(tag_desc)
        );
        for (path, item) in &doc.paths.paths {
            let ops = [
                ("GET", &item.get),
                ("POST", &item.post),
                ("PUT", &item.put),
                ("PATCH", &item.patch),
                ("DELETE", &item.delete),
            ];
            for (method, op) in ops {
                let Some(op) = op else { continue };
                if !op.tags.iter().flatten().any(|t| t == tag) {
                    continue;
                }
                let _ = write!(
                    h,
                    "<article><h3><span class=\"m\">{method}</span> <code>{}</code></h3><p><strong>{}</strong></p><p>{}</p>",
                    esc(path),
                    esc(op.summary.as_deref().unwrap_or_default()),
                    esc(op.description.as_deref().unwrap_or_default())
                );
                if let Some(sec) = &op.security {
                    let names: Vec<String> = sec
                        .iter()
                        .map(|r| {
                            let v = serde_json::to_value(r).unwrap_or_default();
                            let keys: Vec<String> = v
                                .as_object()
                                .map(|o| o.keys().cloned().collect())
                                .unwrap_or_default();
                            if keys.is_empty() {
                                "none".to_string()
                            } else {
                                keys.join(" + ")
                            }
                        })
                        .collect();
                    let _ = write!(h, "<p>Authentication: {}</p>", esc(&names.join(" or ")));
                }
                let params = op.parameters.iter().flatten().collect::<Vec<_>>();
                if !params.is_empty() {
                    h.push_str("<table><tr><th>parameter</th><th>in</th><th>description</th></tr>");
                    for p in params {
                        let loc = serde_json::to_value(&p.parameter_in).unwrap_or_default();
                        let _ = write!(
                            h,
                            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                            esc(&p.name),
                            esc(loc.as_str().unwrap_or_default()),
                            esc(p.description.as_deref().unwrap_or_default())
                        );
                    }
                    h.push_str("</table>");
                }
                if let Some(body) = &op.request_body {
                    for (ct, content) in &body.content {
                        let _ = write!(
                            h,
                            "<p>Body ({}): {}</p>",
                            esc(ct),
                            schema_ref(&content.schema.clone().unwrap_or_default())
                        );
                    }
                }
                h.push_str("<table><tr><th>answer</th><th>description</th><th>body</th></tr>");
                for (status, r) in &op.responses.responses {
                    let (desc, body) = match r {
                        RefOr::T(r) => (
                            r.description.clone(),
                            r.content
                                .values()
                                .filter_map(|c| c.schema.as_ref().map(schema_ref))
                                .collect::<Vec<_>>()
                                .join(" "),
                        ),
                        RefOr::Ref(r) => (r.ref_location.clone(), String::new()),
                    };
                    let _ = write!(
                        h,
                        "<tr><td>{}</td><td>{}</td><td>{body}</td></tr>",
                        esc(status),
                        esc(&desc)
                    );
                }
                h.push_str("</table></article>");
            }
        }
        h.push_str("</section>");
    }
    h.push_str("<section id=\"schemas\"><h2>Schemas</h2>");
    if let Some(c) = &doc.components {
        for (name, s) in &c.schemas {
            let _ = write!(
                h,
                "<article id=\"schema-{0}\"><h3><code>{0}</code></h3><pre tabindex=\"0\">{1}</pre></article>",
                esc(name),
                esc(&serde_json::to_string_pretty(s).unwrap_or_default())
            );
        }
    }
    h.push_str("</section></main></body></html>");
    h
}

const CSS: &str = "body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1f2937;background:#fff}\
main{max-width:60rem;margin:0 auto;padding:1rem}h1 small{font-size:.6em;color:#6b7280}\
nav ul{display:flex;flex-wrap:wrap;gap:.75rem;list-style:none;padding:0}\
article{border:1px solid #e5e7eb;border-radius:6px;padding:.25rem 1rem;margin:1rem 0}\
.m{font:600 .8em monospace;background:#eef2ff;color:#3730a3;padding:.1em .4em;border-radius:4px}\
table{border-collapse:collapse;width:100%;margin:.5rem 0}td,th{border-top:1px solid #e5e7eb;padding:.25rem .5rem;text-align:left;vertical-align:top}\
pre{background:#f9fafb;padding:.5rem;overflow:auto;max-height:24rem}a{color:#1d4ed8}\
@media (prefers-color-scheme: dark){body{background:#111827;color:#e5e7eb}article,td,th{border-color:#374151}pre{background:#1f2937}.m{background:#312e81;color:#e0e7ff}a{color:#93c5fd}}";
