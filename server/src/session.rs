//! The dashboard's session: `POST /login` and `POST /logout` (plain HTML forms, so they work before
//! the WASM arrives) and the guard that sends signed-out visitors of a page to the login page.

use crate::extract::ClientAddr;
use app::ssr::auth::{cookie, session_cookie, SESSION_COOKIE};
use app::ssr::error::AppError;
use app::ssr::services::users;
use app::ssr::state::AppState;
use axum::extract::{Request, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Router};
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
}

/// The login form's fields (as documented).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct LoginFormDoc {
    email: String,
    password: String,
    /// Where to go after signing in: a local path.
    next: Option<String>,
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// Only local paths, so the login form cannot be used to send people elsewhere: one leading `/`,
/// no backslash and no control character (browsers drop tabs and newlines, so `/\t/evil.example`
/// would become `//evil.example`).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control)
                && n != "/login" =>
        {
            n
        }
        _ => "/",
    }
}

fn see_other(to: &str, cookie: Option<String>) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(LOCATION, v);
    }
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert(SET_COOKIE, c);
    }
    resp
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[utoipa::path(post, path = "/login", tag = "auth", operation_id = "form_login",
    request_body(content = LoginFormDoc, content_type = "application/x-www-form-urlencoded"),
    summary = "The dashboard's login form",
    responses((status = 303, description = "Signed in: the session cookie is set and the browser goes to `next` (a local path); else back to the login page with the error")))]
async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(f.next.as_deref()).to_string();
    match users::login(&state, client, &f.email, &f.password).await {
        Ok(r) => {
            let secure = state.config.secure_cookies();
            see_other(
                &next,
                Some(session_cookie(Some(&r.token), state.jwt.ttl_secs(), secure)),
            )
        }
        // Throttled: the 429 itself, with Retry-After.
        Err(e @ AppError::TooManyRequests { .. }) => e.into_response(),
        Err(e) => {
            tracing::info!(target: "video_service", "dashboard login refused: {}", e.public_message());
            see_other(&format!("/login?error=1&next={}", encode(&next)), None)
        }
    }
}

/// Signs out: the session is revoked on the server (its token stops working everywhere), then the
/// cookie is cleared.
#[utoipa::path(post, path = "/logout", tag = "auth", operation_id = "form_logout", security(("cookie" = [])),
    summary = "The dashboard's sign-out form: the session is revoked, the cookie cleared",
    responses((status = 303, description = "To the login page")))]
async fn logout(State(state): State<AppState>, req: Request) -> Response {
    if let Some(token) = cookie(req.headers(), SESSION_COOKIE) {
        if let Ok(caller) = state.jwt.verify(token) {
            if let Err(e) = state.sessions.revoke(&*state.store, &caller).await {
                return e.into_response();
            }
        }
    }
    let secure = state.config.secure_cookies();
    see_other("/login", Some(session_cookie(None, 0, secure)))
}

/// Pages other than the login page need a valid session; assets and APIs are not pages.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let is_page = !(path == "/login"
        || path.starts_with("/pkg/")
        || path.starts_with("/api/")
        || path.starts_with("/internal/")
        || path
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains('.')));
    if !is_page {
        return next.run(req).await;
    }
    let signed_in = match cookie(req.headers(), SESSION_COOKIE) {
        Some(t) => app::ssr::auth::authenticate(&state, t).await.is_ok(),
        None => false,
    };
    if signed_in {
        return next.run(req).await;
    }
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    see_other(&format!("/login?next={}", encode(target)), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_must_be_local() {
        assert_eq!(
            safe_next(Some("/videos?status=failed")),
            "/videos?status=failed"
        );
        for bad in [
            None,
            Some("https://evil.test"),
            Some("//evil.test"),
            Some("/\\evil"),
            Some("/login"),
            Some("/\t/evil.example"),
            Some("/\n/evil.example"),
        ] {
            assert_eq!(safe_next(bad), "/");
        }
    }
}
