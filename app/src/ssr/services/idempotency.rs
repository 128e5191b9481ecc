//! `Idempotency-Key`: a request that creates and charges is done once per key and user; a retry with
//! the same key and the same body gets the first answer again, a retry with another body a 422.
//!
//! The key is claimed in the store before the work starts, so concurrent requests with one key
//! (on one instance or several) find it held and wait for its answer. Only answers after which
//! something exists are kept (the work says which); a request that changed nothing frees its key,
//! so it can simply be tried again. A request that dies half-way (a crash) leaves its key held until
//! it expires: its retries answer 409 rather than risk charging twice.

use crate::model::{ObjectId, Timestamp};
use crate::ssr::error::{ApiResponse, AppError, AppResult};
use crate::ssr::state::AppState;
use crate::ssr::store::{Claim, KeptAnswer, IDEMPOTENCY_MEMORY_MS};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::future::Future;
use std::time::Duration;

pub const HEADER: &str = "idempotency-key";
pub const MSG_REUSED: &str = "Idempotency-Key reused with a different request";
pub const MSG_IN_PROGRESS: &str = "A request with this Idempotency-Key is still in progress";
pub const MSG_BAD_KEY: &str =
    "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good choice)";

/// How often a request waiting for another one with its key looks for the answer.
const POLL: Duration = Duration::from_millis(50);

/// An answer as it goes out: status and JSON envelope, and whether it is a replay.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub replayed: bool,
}

impl Reply {
    pub fn of<T: Serialize>(r: ApiResponse<T>) -> Self {
        Self {
            status: r.status(),
            body: serde_json::to_value(&r).unwrap_or(Value::Null),
            replayed: false,
        }
    }

    fn kept(&self) -> KeptAnswer {
        KeptAnswer {
            status: self.status.as_u16(),
            body: self.body.to_string(),
        }
    }

    fn replay(k: KeptAnswer) -> AppResult<Self> {
        Ok(Self {
            status: StatusCode::from_u16(k.status)
                .map_err(|e| AppError::internal("kept idempotent answer", e))?,
            body: serde_json::from_str(&k.body)
                .map_err(|e| AppError::internal("kept idempotent answer", e))?,
            replayed: true,
        })
    }
}

/// The key as sent, checked.
pub fn check_key(raw: &str) -> AppResult<&str> {
    if raw.is_empty() || raw.len() > 255 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppError::BadRequest(MSG_BAD_KEY.into()));
    }
    Ok(raw)
}

/// What makes two requests "the same": the SHA-256 of the request as parsed (so spacing and key
/// order in the JSON do not matter).
pub fn fingerprint(req: &impl Serialize) -> String {
    let bytes = serde_json::to_vec(req).unwrap_or_default();
    crate::model::hex(&Sha256::digest(bytes))
}

/// Runs `work` once for `(user, key)`. `work` answers `Ok(reply)` when something now exists (the
/// reply is kept and replayed) and `Err` when it changed nothing (the key is freed). Waits at most
/// `wait` for a concurrent request holding the key.
pub async fn once<F>(
    state: &AppState,
    user: ObjectId,
    key: &str,
    fingerprint: &str,
    wait: Duration,
    work: F,
) -> AppResult<Reply>
where
    F: Future<Output = AppResult<Reply>>,
{
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let now = Timestamp::now();
        let expired_before = Timestamp::from_millis(now.millis() - IDEMPOTENCY_MEMORY_MS);
        match state
            .store
            .claim_key(user, key, fingerprint, now, expired_before)
            .await?
        {
            Claim::Claimed => break,
            Claim::Answered { fingerprint: f, .. } | Claim::InProgress { fingerprint: f }
                if f != fingerprint =>
            {
                return Err(AppError::Unprocessable(MSG_REUSED.into()));
            }
            Claim::Answered { answer, .. } => return Reply::replay(answer),
            Claim::InProgress { .. } if tokio::time::Instant::now() + POLL > deadline => {
                return Err(AppError::Conflict(MSG_IN_PROGRESS.into()));
            }
            Claim::InProgress { .. } => tokio::time::sleep(POLL).await,
        }
    }
    let result = work.await;
    match &result {
        Ok(reply) => {
            if let Err(e) = state.store.answer_key(user, key, &reply.kept()).await {
                // The answer still goes out; retries with this key get 409 until it expires,
                // never a second charge.
                tracing::error!(target: "bulk_video_generation", "could not keep the answer of an Idempotency-Key: {e}");
            }
        }
        Err(_) => {
            if let Err(e) = state.store.release_key(user, key).await {
                tracing::error!(target: "bulk_video_generation", "could not free an Idempotency-Key: {e}");
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        assert!(check_key("3f2b6c1e-9d4a-4f7e-8a11-0c5d2e7b9f10").is_ok());
        assert!(check_key("").is_err());
        assert!(check_key("has space").is_err());
        assert!(check_key("ñ").is_err());
        assert!(check_key(&"k".repeat(256)).is_err());
        assert!(check_key(&"k".repeat(255)).is_ok());
    }

    #[test]
    fn fingerprints_follow_the_content() {
        let a = serde_json::json!({"a": 1, "b": [1, 2]});
        let b: Value = serde_json::from_str(r#"{ "a": 1,  "b": [1,2] }"#).unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&serde_json::json!({"a": 2})));
    }
}
