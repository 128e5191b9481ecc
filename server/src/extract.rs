//! Extractors whose rejections are the spec's JSON envelope, never axum's plain-text defaults.

use app::ssr::auth::{cookie, Caller, MSG_NO_TOKEN, SESSION_COOKIE};
use app::ssr::error::AppError;
use app::ssr::state::AppState;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// The authenticated caller: `Authorization: Bearer <jwt>`, or the dashboard's session cookie.
pub struct Auth(pub Caller);

fn bearer(parts: &Parts) -> Option<Result<&str, AppError>> {
    let value = parts.headers.get(AUTHORIZATION)?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    Some(token.ok_or_else(|| {
        AppError::Unauthorized("Authorization header must be `Bearer <token>`".into())
    }))
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token = match bearer(parts) {
            Some(t) => t?,
            None => cookie(&parts.headers, SESSION_COOKIE)
                .ok_or_else(|| AppError::Unauthorized(MSG_NO_TOKEN.into()))?,
        };
        state.jwt.verify(token).map(Auth)
    }
}

/// A JSON body: 415 without a JSON content type, 413 over the body limit, 400 when it does not parse
/// or does not have the expected shape (with serde's reason, minus the line/column noise).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, AppError> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(AppError::UnsupportedMediaType(
                "Content-Type must be application/json".into(),
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| AppError::PayloadTooLarge("Request body too large (max 1 MiB)".into()))?;
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| {
            let reason = e.to_string();
            let reason = reason
                .split(" at line ")
                .next()
                .unwrap_or(&reason)
                .to_string();
            AppError::BadRequest(if e.is_syntax() || e.is_eof() {
                "Malformed JSON in request body".into()
            } else {
                format!("Invalid request body: {reason}")
            })
        })
    }
}
