//! Extractors whose rejections are the spec's JSON envelope, never axum's plain-text defaults.

use app::ssr::error::AppError;
use app::ssr::state::AppState;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

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

/// A query string read into a typed filter; a query that does not fit (a repeated key, say) is a
/// 400 in the JSON envelope, never axum's plain-text rejection.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, AppError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(q)| ApiQuery(q))
            .map_err(|e| AppError::BadRequest(e.body_text()))
    }
}

/// The address of the client that sent the request (the TCP peer; the server runs with connect
/// info). Unknown only when the router is driven without a socket: then `0.0.0.0`.
pub struct ClientAddr(pub std::net::IpAddr);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        let addr = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
        Ok(ClientAddr(addr))
    }
}
