//! One error type for the whole server. Each variant knows its HTTP status; internal causes are
//! logged where they happen and never sent to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// 403 with details (the quota error carries limit, used and requested).
    #[error("{message}")]
    ForbiddenWith { message: String, details: Value },
    #[error("{0}")]
    NotFound(String),
    /// 404 with details (the ids that were not found).
    #[error("{message}")]
    NotFoundWith { message: String, details: Value },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The RCK server could not be reached or refused; details name the videos.
    #[error("{message}")]
    BadGateway { message: String, details: Value },
    #[error("{0}")]
    ServiceUnavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!(target: "video_service", "{context}: {err}");
        AppError::Internal(format!("{context}: {err}"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) | AppError::ForbiddenWith { .. } => StatusCode::FORBIDDEN,
            AppError::NotFound(_) | AppError::NotFoundWith { .. } => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::BadGateway { .. } => StatusCode::BAD_GATEWAY,
            AppError::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message the client sees.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Internal(_) => "Internal server error".into(),
            other => other.to_string(),
        }
    }

    /// The spec's envelope: `{success: false, message, data?}`.
    pub fn body(&self) -> Value {
        let mut body = json!({ "success": false, "message": self.public_message() });
        match self {
            AppError::ForbiddenWith { details, .. }
            | AppError::NotFoundWith { details, .. }
            | AppError::BadGateway { details, .. } => body["data"] = details.clone(),
            _ => {}
        }
        body
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (self.status(), axum::Json(self.body())).into_response()
    }
}

impl From<crate::ssr::store::StoreError> for AppError {
    fn from(e: crate::ssr::store::StoreError) -> Self {
        match e {
            crate::ssr::store::StoreError::Conflict(m) => AppError::Conflict(m),
            other => AppError::internal("store", other),
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;
