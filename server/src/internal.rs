//! `/internal/...`: RCK's callbacks, authenticated by the batch's capability token (`?token=`) or a
//! Standard Webhooks signature (see `app::ssr::services::webhooks`); every call is recorded.

use crate::openapi::{CallbackErrors, Envelope};
use app::model::webhook::WebhookKind;
use app::model::{ObjectId, Timestamp};
use app::ssr::callback_auth::SignedHeaders;
use app::ssr::error::{ApiResponse, STORAGE_RETRY_AFTER_SECS};
use app::ssr::services::webhooks::{self, Credentials, Incoming, MAX_BODY_BYTES};
use app::ssr::state::AppState;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::Router;
use serde_json::json;

/// Mounted at the root, not nested under `/internal`: a nested router costs every call a prefix
/// strip and a service clone, and these two routes take all of RCK's load.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/internal/videos/success",
            post(success).fallback(wrong_method),
        )
        .route(
            "/internal/videos/failure",
            post(failure).fallback(wrong_method),
        )
        // Anything else under `/internal`, the bare prefix and its trailing slash included.
        .route("/internal", any(unknown))
        .route("/internal/", any(unknown))
        .route("/internal/{*rest}", any(unknown))
}

#[utoipa::path(post, path = "/internal/videos/success", tag = "callbacks",
    params(("token" = Option<String>, Query, description = "The batch's capability token, as in the callback URL we gave RCK")),
    security((), ("callbackToken" = []), ("webhookSignature" = [])),
    request_body = crate::openapi::SuccessCallback,
    summary = "RCK: a video is ready",
    description = "Recorded as a webhook event whatever happens. State rules: a success completes a pending, generating or failed video; a repeat changes nothing and is answered the same.",
    responses((status = 200, description = "`message`: Video status updated successfully", body = Envelope<crate::openapi::SuccessData>),
              CallbackErrors))]
async fn success(State(state): State<AppState>, req: Request) -> Response {
    callback(state, WebhookKind::Success, req).await
}

#[utoipa::path(post, path = "/internal/videos/failure", tag = "callbacks",
    params(("token" = Option<String>, Query, description = "The batch's capability token, as in the callback URL we gave RCK")),
    security((), ("callbackToken" = []), ("webhookSignature" = [])),
    request_body = crate::openapi::FailureCallback,
    summary = "RCK: a video failed",
    description = "Recorded as a webhook event whatever happens. A failure for a completed video is acknowledged and ignored.",
    responses((status = 200, description = "`message`: Video failure recorded successfully (or: Video already completed; failure notification ignored, nothing changed)", body = Envelope<crate::openapi::FailureData>),
              CallbackErrors))]
async fn failure(State(state): State<AppState>, req: Request) -> Response {
    callback(state, WebhookKind::Failure, req).await
}

/// The `token` query parameter (the batch's capability token; URL-safe, so never percent-encoded).
fn token(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .filter(|t| !t.is_empty())
}

async fn callback(state: AppState, kind: WebhookKind, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES).await;
    let incoming = match &body {
        Ok(bytes) => Incoming::Body {
            content_type,
            bytes,
        },
        Err(_) => Incoming::TooLarge,
    };
    let creds = Credentials {
        token: token(parts.uri.query()),
        signed: SignedHeaders::from_headers(&parts.headers),
    };
    let started = std::time::Instant::now();
    let reply = webhooks::handle(&state, kind, incoming, creds).await;
    let mut resp = reply.into_response();
    count(kind.endpoint(), resp.status(), started);
    if resp.status() == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(STORAGE_RETRY_AFTER_SECS));
    }
    resp
}

/// Records calls to anything else under `/internal` too (the audit log sees every call).
pub async fn unknown(State(state): State<AppState>, req: Request) -> Response {
    reject_and_record(state, req, StatusCode::NOT_FOUND, "Route not found").await
}

async fn wrong_method(State(state): State<AppState>, req: Request) -> Response {
    reject_and_record(
        state,
        req,
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
    )
    .await
}

async fn reject_and_record(
    state: AppState,
    req: Request,
    status: StatusCode,
    message: &str,
) -> Response {
    // Recorded as the callbacks are, relative to `/internal` (`/internal/x` is `/x`); the bare
    // prefix as it came.
    let path = req.uri().path();
    let endpoint = match path.strip_prefix("/internal") {
        Some(rest) if rest.len() > 1 => rest,
        _ => path,
    }
    .to_string();
    let method = req.method().to_string();
    let body = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES).await;
    let payload = match &body {
        Ok(b) => webhooks::payload_of(b, serde_json::from_slice(b).ok().as_ref()),
        Err(_) => json!(format!(
            "<body larger than {MAX_BODY_BYTES} bytes; not stored>"
        )),
    };
    let event = app::model::plan::EventDraft {
        id: ObjectId::new(),
        endpoint,
        payload,
        video_id: None,
        created_at: Timestamp::now(),
        note: None,
    }
    .finish(status.as_u16(), &format!("{message} ({method})"));
    let started = std::time::Instant::now();
    webhooks::record_alone(&state, event).await;
    count("other", status, started);
    ApiResponse::refused(status, message.to_string()).into_response()
}

/// `racky_webhooks_total{endpoint,status}` and `racky_webhook_duration_seconds{endpoint}`; calls to
/// anything but the two callbacks count as `other` (their paths are the caller's to choose).
fn count(endpoint: &'static str, status: StatusCode, started: std::time::Instant) {
    metrics::counter!("racky_webhooks_total", "endpoint" => endpoint, "status" => status.as_u16().to_string())
        .increment(1);
    metrics::histogram!("racky_webhook_duration_seconds", "endpoint" => endpoint)
        .record(started.elapsed().as_secs_f64());
}
