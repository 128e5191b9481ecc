//! The client of the RCK Description server: `POST {RCK}/api/v1/create-images-batch`.
//!
//! Connect and total timeouts; bounded retries with exponential backoff on connection errors, 429 and
//! 5xx; the same `Idempotency-Key` on every attempt so a retry never creates a second batch of jobs.

use crate::model::{AiVideo, ObjectId, Product};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One product of a batch, as RCK expects it (snake_case, and `videoId` for the callback).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RckProduct {
    pub id_product: i32,
    pub title: String,
    pub img_urls: Vec<String>,
    pub user_id: String,
    pub sku: String,
    pub template_name: String,
    #[serde(rename = "videoId")]
    pub video_id: String,
    pub aspect_ratio: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchRequest {
    pub products: Vec<RckProduct>,
    pub callback_url: String,
    pub failure_callback_url: String,
}

impl BatchRequest {
    /// The one way a batch is built (bulk generation and retries): each video with its product, and
    /// the two callback URLs carrying the batch's capability token (`?token=`), which RCK calls
    /// exactly as given.
    pub fn new<'a>(
        server_url: &str,
        token: &str,
        items: impl IntoIterator<Item = (&'a AiVideo, &'a Product)>,
    ) -> Self {
        Self {
            products: items
                .into_iter()
                .map(|(video, p)| RckProduct {
                    id_product: id_product(&p.id),
                    title: p.title.clone(),
                    img_urls: p.img_urls.clone(),
                    user_id: video.user_id.to_string(),
                    sku: p.sku.clone(),
                    template_name: video.template.clone(),
                    video_id: video.id.to_string(),
                    aspect_ratio: video
                        .metadata
                        .aspect_ratio
                        .clone()
                        .unwrap_or_else(|| "9:16".into()),
                })
                .collect(),
            callback_url: format!("{server_url}/internal/videos/success?token={token}"),
            failure_callback_url: format!("{server_url}/internal/videos/failure?token={token}"),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
struct BatchResponse {
    job_ids: Vec<serde_json::Value>,
}

/// RCK's product number: FNV-1a (32-bit) over the ObjectId's 12 bytes, top bit cleared, so it is a
/// deterministic, non-negative signed 32-bit integer. Callbacks are matched by `videoId`, never by it.
pub fn id_product(id: &ObjectId) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in id.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    (h & 0x7fff_ffff) as i32
}

/// Why a batch was not confirmed. Some failures are *definite* (RCK cannot have started the jobs,
/// or told us it did not) and some are *ambiguous* (the batch was sent and RCK may be working on
/// it): see [`RckError::is_definite`].
#[derive(Debug, thiserror::Error)]
pub enum RckError {
    /// No connection could be made: nothing reached RCK.
    #[error("RCK server unreachable: {0}")]
    Unreachable(String),
    /// The batch was sent and no answer came in time.
    #[error("RCK server did not answer within {0} ms")]
    Timeout(u64),
    /// The connection broke after the batch was (perhaps) sent.
    #[error("RCK server connection lost: {0}")]
    Lost(String),
    /// Its body goes to the log only: what RCK says is not ours to show our callers.
    #[error("RCK server refused the batch with HTTP {status}")]
    Refused { status: u16, body: String },
    #[error("RCK server answered with {got} job ids for {expected} videos")]
    WrongJobCount { expected: usize, got: usize },
    /// A readable answer that is not what the contract says.
    #[error("RCK server sent a wrong answer: {0}")]
    WrongAnswer(String),
    /// A 2xx whose body could not be read or parsed: RCK accepted something.
    #[error("RCK server sent an unreadable answer: {0}")]
    Unreadable(String),
}

impl RckError {
    /// Definite: RCK did not take the batch (nothing reached it, it said no, or it answered
    /// something we can read and reject), so the videos fail and the quota is given back.
    /// Ambiguous (`false`): the batch went out and RCK may be generating the videos (a timeout, a
    /// connection lost after sending, a 2xx we cannot read); the videos stay `generating` and
    /// counted, for its callbacks or the sweeper to settle.
    pub fn is_definite(&self) -> bool {
        match self {
            RckError::Unreachable(_)
            | RckError::Refused { .. }
            | RckError::WrongJobCount { .. }
            | RckError::WrongAnswer(_) => true,
            RckError::Timeout(_) | RckError::Lost(_) | RckError::Unreadable(_) => false,
        }
    }
}

#[derive(Clone)]
pub struct RckClient {
    http: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
    max_retries: u32,
    timeout_ms: u64,
    /// First backoff; doubles on each retry.
    backoff: Duration,
    /// No retry starts that could end after this much time in all (the request that asked for the
    /// batch has its own timeout; see `with_budget`).
    budget: Option<Duration>,
}

impl RckClient {
    pub fn new(
        base_url: &str,
        api_key: Option<String>,
        connect_timeout_ms: u64,
        timeout_ms: u64,
        max_retries: u32,
    ) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(connect_timeout_ms))
            .timeout(Duration::from_millis(timeout_ms))
            .user_agent(concat!("racky-videos/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a client with only timeouts set always builds");
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            max_retries,
            timeout_ms,
            backoff: Duration::from_millis(200),
            budget: None,
        }
    }

    /// Bounds a call, its retries included, so it ends before the request waiting for it times out.
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = Some(budget);
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends a batch; returns one job id per product, in product order.
    pub async fn create_batch(
        &self,
        batch: &BatchRequest,
        idempotency_key: &str,
    ) -> Result<Vec<String>, RckError> {
        let url = format!("{}/api/v1/create-images-batch", self.base_url);
        let started = std::time::Instant::now();
        let mut attempt = 0;
        loop {
            let sent = std::time::Instant::now();
            let result = self.attempt(&url, batch, idempotency_key).await;
            let outcome = match &result {
                Ok(_) => "accepted",
                Err(RckError::Unreachable(_)) => "unreachable",
                Err(RckError::Timeout(_)) => "timeout",
                Err(RckError::Lost(_)) => "lost",
                Err(RckError::Refused { .. }) => "refused",
                Err(RckError::WrongJobCount { .. } | RckError::WrongAnswer(_)) => "wrong_answer",
                Err(RckError::Unreadable(_)) => "unreadable",
            };
            metrics::counter!("racky_rck_requests_total", "outcome" => outcome).increment(1);
            metrics::histogram!("racky_rck_request_duration_seconds", "outcome" => outcome)
                .record(sent.elapsed().as_secs_f64());
            let retryable = match &result {
                Err(RckError::Unreachable(_)) => true,
                Err(RckError::Refused { status, .. }) => *status == 429 || *status >= 500,
                _ => false,
            };
            if !retryable || attempt >= self.max_retries {
                return result;
            }
            let wait = self.backoff * 2u32.pow(attempt);
            let next_ends = started.elapsed() + wait + Duration::from_millis(self.timeout_ms);
            if self.budget.is_some_and(|b| next_ends > b) {
                return result;
            }
            tracing::warn!(target: "bulk_video_generation", attempt = attempt + 1, ?wait,
                "RCK call failed, retrying: {}", result.as_ref().err().map(|e| e.to_string()).unwrap_or_default());
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        url: &str,
        batch: &BatchRequest,
        idempotency_key: &str,
    ) -> Result<Vec<String>, RckError> {
        let mut req = self
            .http
            .post(url)
            .header("Idempotency-Key", idempotency_key)
            .json(batch);
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.map_err(|e| self.classify(e))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            let body: String = body.chars().take(300).collect();
            tracing::warn!(target: "bulk_video_generation", status = status.as_u16(), "RCK refused the batch; its answer: {body}");
            return Err(RckError::Refused {
                status: status.as_u16(),
                body,
            });
        }
        let body = resp.bytes().await.map_err(|e| {
            if e.is_timeout() {
                RckError::Timeout(self.timeout_ms)
            } else {
                RckError::Unreadable(e.to_string())
            }
        })?;
        let parsed: BatchResponse = match serde_json::from_slice(&body) {
            Ok(p) => p,
            // Valid JSON of another shape is a wrong answer; anything else is unreadable.
            Err(e) if e.is_data() => return Err(RckError::WrongAnswer(e.to_string())),
            Err(e) => return Err(RckError::Unreadable(e.to_string())),
        };
        if parsed.job_ids.len() != batch.products.len() {
            return Err(RckError::WrongJobCount {
                expected: batch.products.len(),
                got: parsed.job_ids.len(),
            });
        }
        parsed
            .job_ids
            .into_iter()
            .map(|j| match j {
                serde_json::Value::String(s) if !s.is_empty() => Ok(s),
                serde_json::Value::Number(n) => Ok(n.to_string()),
                other => Err(RckError::WrongAnswer(format!(
                    "job id {other} is not a string"
                ))),
            })
            .collect()
    }

    fn classify(&self, e: reqwest::Error) -> RckError {
        let why = std::error::Error::source(&e)
            .map(|s| s.to_string())
            .unwrap_or_else(|| e.to_string());
        if e.is_connect() {
            // Refused, DNS, connect timeout: nothing reached RCK, so a retry is safe.
            RckError::Unreachable(why)
        } else if e.is_timeout() {
            RckError::Timeout(self.timeout_ms)
        } else {
            RckError::Lost(why)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_product_is_deterministic_and_fits_i32() {
        let id: ObjectId = "507f1f77bcf86cd799439011".parse().unwrap();
        assert_eq!(id_product(&id), id_product(&id));
        assert!(id_product(&id) >= 0);
        let other: ObjectId = "507f1f77bcf86cd799439012".parse().unwrap();
        assert_ne!(id_product(&id), id_product(&other));
        for _ in 0..1000 {
            assert!(id_product(&ObjectId::new()) >= 0);
        }
    }
}
