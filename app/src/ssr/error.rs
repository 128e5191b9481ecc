//! One error type for the whole server, and the one JSON envelope every answer uses.
//!
//! Each error variant knows its HTTP status. An internal error keeps its cause (`source`) and is
//! logged once, where it becomes a response; the client only ever sees "Internal server error".

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;

/// The spec's envelope, `{success, message?, data?}`, with the status it is sent with.
#[derive(Debug, Serialize)]
pub struct ApiResponse<T> {
    #[serde(skip)]
    status: StatusCode,
    success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<Cow<'static, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
}

impl<T: Serialize> ApiResponse<T> {
    /// `200 {success: true, data}`.
    pub fn ok(data: T) -> Self {
        Self::with_status(StatusCode::OK, data)
    }

    /// `201 {success: true, data}`.
    pub fn created(data: T) -> Self {
        Self::with_status(StatusCode::CREATED, data)
    }

    /// `202 {success: true, data}`.
    pub fn accepted(data: T) -> Self {
        Self::with_status(StatusCode::ACCEPTED, data)
    }

    pub fn with_status(status: StatusCode, data: T) -> Self {
        Self {
            status,
            success: status.is_success(),
            message: None,
            data: Some(data),
        }
    }

    pub fn message(mut self, message: impl Into<Cow<'static, str>>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// The envelope's `message`, if it has one.
    pub fn message_text(&self) -> Option<&str> {
        self.message.as_deref()
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl ApiResponse<Value> {
    /// `{success: false, message}` with a 4xx/5xx status.
    pub fn refused(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            success: false,
            message: Some(message.into()),
            data: None,
        }
    }
}

impl<T: Serialize> IntoResponse for ApiResponse<T> {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self)).into_response()
    }
}

/// A cause kept for the log.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

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
    /// 422: well-formed, but not acceptable now (an `Idempotency-Key` reused for another request).
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The RCK server could not be reached or refused; details name the videos.
    #[error("{message}")]
    BadGateway { message: String, details: Value },
    #[error("{0}")]
    ServiceUnavailable(String),
    /// 503 `Storage unavailable` with `Retry-After`: the store cannot be written or reached now.
    #[error("Storage unavailable")]
    StorageUnavailable(#[source] crate::ssr::store::StoreError),
    /// 429 with `Retry-After`.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
    /// Something that is not the caller's fault: what was being done, and why it failed.
    #[error("{context}: {source}")]
    Internal {
        context: &'static str,
        #[source]
        source: Cause,
    },
}

impl AppError {
    /// An internal error while doing `context` (logged when it becomes a response).
    pub fn internal(context: &'static str, source: impl Into<Cause>) -> Self {
        AppError::Internal {
            context,
            source: source.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) | AppError::ForbiddenWith { .. } => StatusCode::FORBIDDEN,
            AppError::NotFound(_) | AppError::NotFoundWith { .. } => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::BadGateway { .. } => StatusCode::BAD_GATEWAY,
            AppError::ServiceUnavailable(_) | AppError::StorageUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message the client sees.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Internal { .. } => "Internal server error".into(),
            other => other.to_string(),
        }
    }

    /// The envelope: `{success: false, message, data?}`.
    pub fn response(&self) -> ApiResponse<Value> {
        let details = match self {
            AppError::ForbiddenWith { details, .. }
            | AppError::NotFoundWith { details, .. }
            | AppError::BadGateway { details, .. } => Some(details.clone()),
            _ => None,
        };
        let mut r = ApiResponse::refused(self.status(), self.public_message());
        r.data = details;
        r
    }

    /// Logs an internal error with its whole chain of causes (the one place it is logged).
    pub fn log(&self) {
        if let AppError::StorageUnavailable(e) = self {
            tracing::warn!(target: "video_service", "storage unavailable: {e}");
        }
        if let AppError::Internal { .. } = self {
            let mut chain = self.to_string();
            let mut cause = std::error::Error::source(self).and_then(|e| e.source());
            while let Some(c) = cause {
                chain.push_str(&format!(": {c}"));
                cause = c.source();
            }
            tracing::error!(target: "video_service", "{chain}");
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let mut resp = self.response().into_response();
        let retry_after = match &self {
            AppError::TooManyRequests {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            AppError::StorageUnavailable(_) => Some(STORAGE_RETRY_AFTER_SECS),
            _ => None,
        };
        if let Some(secs) = retry_after {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        resp
    }
}

/// `Retry-After` of a 503 `Storage unavailable`.
pub const STORAGE_RETRY_AFTER_SECS: u64 = 5;
pub const MSG_STORAGE_UNAVAILABLE: &str = "Storage unavailable";

impl From<crate::ssr::store::StoreError> for AppError {
    fn from(e: crate::ssr::store::StoreError) -> Self {
        match e {
            crate::ssr::store::StoreError::Conflict(m) => AppError::Conflict(m),
            e if e.is_unavailable() => AppError::StorageUnavailable(e),
            other => AppError::internal("store", other),
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;
