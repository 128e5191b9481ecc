//! The web surface's defences that are not any one handler's business: cross-site request refusal
//! for cookie-authenticated writes, and the security headers every response carries (the page's
//! Content-Security-Policy, with its nonce, is set by `app::shell`).

use app::ssr::auth::{cookie, SESSION_COOKIE};
use app::ssr::error::{ApiResponse, AppError};
use app::ssr::state::AppState;
use axum::extract::{Request, State};
use axum::http::header::RETRY_AFTER;
use axum::http::header::{AUTHORIZATION, HOST, ORIGIN, REFERER};
use axum::http::StatusCode;
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

pub const MSG_CROSS_SITE: &str = "Cross-site request refused";

/// Whether a request changes something on the strength of the browser's session: the login and
/// logout forms, server functions, and REST calls that carry the session cookie instead of a Bearer
/// token. Bearer requests cannot be forged by another site, so they are not affected.
fn cookie_authenticated_write(req: &Request) -> bool {
    if matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) {
        return false;
    }
    let path = req.uri().path();
    if path == "/login" || path == "/logout" {
        return true;
    }
    path.starts_with("/api/")
        && !req.headers().contains_key(AUTHORIZATION)
        && (path.starts_with("/api/fn/") || cookie(req.headers(), SESSION_COOKIE).is_some())
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find('/').unwrap_or(rest.len());
    Some(&url[..scheme.len() + 3 + end])
}

/// Whether the request says it comes from our own origin: `Origin`, or `Referer` when there is no
/// `Origin`, matching `SERVER_URL` or the host the request was sent to.
fn from_our_origin(req: &Request, server_url: &str) -> bool {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let claimed = match header(ORIGIN) {
        Some(o) => Some(o),
        None => header(REFERER).and_then(origin_of),
    };
    let Some(claimed) = claimed else {
        return false;
    };
    if Some(claimed) == origin_of(server_url) {
        return true;
    }
    header(HOST).is_some_and(|host| {
        claimed == format!("http://{host}") || claimed == format!("https://{host}")
    })
}

/// Refuses cookie-authenticated writes from other sites: 403 `Cross-site request refused`.
pub async fn same_origin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if cookie_authenticated_write(&req) && !from_our_origin(&req, &state.config.server_url) {
        tracing::warn!(target: "video_service", path = %req.uri().path(), "cross-site request refused");
        return AppError::Forbidden(MSG_CROSS_SITE.into()).into_response();
    }
    next.run(req).await
}

/// At most `MAX_IN_FLIGHT_REQUESTS` requests are served at once; the next one is told to come back
/// (503 with `Retry-After`) instead of waiting in an unbounded queue.
pub async fn in_flight_limit(
    State(limit): State<Arc<Semaphore>>,
    req: Request,
    next: Next,
) -> Response {
    let Ok(_slot) = limit.try_acquire() else {
        tracing::warn!(target: "video_service", "too many requests in flight; answering 503");
        return busy("Server busy, try again shortly");
    };
    next.run(req).await
}

/// No request takes longer than `REQUEST_TIMEOUT_SECONDS` (a slow client's body included), except
/// the live feed, which is meant to stay open.
pub async fn request_timeout(State(secs): State<u64>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/api/live" {
        return next.run(req).await;
    }
    match tokio::time::timeout(Duration::from_secs(secs), next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => busy("Request timed out"),
    }
}

fn busy(message: &'static str) -> Response {
    let mut resp = ApiResponse::refused(StatusCode::SERVICE_UNAVAILABLE, message).into_response();
    resp.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// Headers every response carries.
pub async fn headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
    ] {
        h.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_of_urls() {
        assert_eq!(
            origin_of("https://videos.racky.app/a/b?c"),
            Some("https://videos.racky.app")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:3000"),
            Some("http://127.0.0.1:3000")
        );
        assert_eq!(origin_of("nonsense"), None);
    }
}
