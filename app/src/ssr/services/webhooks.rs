//! RCK's callbacks: `POST /internal/videos/success` and `/failure`.
//!
//! Every call is recorded as a WebhookEvent, the invalid ones too. A valid call's changes and its event
//! commit together, and the answer goes out only after that commit.
//!
//! Who may call (`WEBHOOK_AUTH`): with `token` (the default) a video sent with a capability token
//! accepts only calls carrying it (`?token=` in the URLs we gave RCK), or a valid signature when
//! `RCK_WEBHOOK_SECRET` is set; with `signature` every call must be signed; `off` is the original
//! spec. Tokens and signatures are never logged.

use crate::model::webhook::{self, CallbackAuth, Rejection, Replayed, VideoChange, WebhookKind};
use crate::model::{AiVideo, ObjectId, Timestamp, WebhookEvent};
use crate::ssr::auth::Caller;
use crate::ssr::callback_auth::{hash_token, SignatureError, SignedHeaders};
use crate::ssr::config::{Config, WebhookAuth};
use crate::ssr::error::{ApiResponse, AppError, AppResult, MSG_STORAGE_UNAVAILABLE};
use crate::ssr::state::AppState;
use crate::ssr::store::{within, Applied, EventDraft};
use axum::http::StatusCode;
use serde_json::Value;

/// The largest body a callback may have.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A callback as it arrived.
pub enum Incoming<'a> {
    Body {
        content_type: Option<&'a str>,
        bytes: &'a [u8],
    },
    /// The body was over `MAX_BODY_BYTES` (or could not be read): never parsed, never stored whole.
    TooLarge,
}

/// What a callback presented to prove it comes from RCK.
#[derive(Clone, Copy, Debug, Default)]
pub struct Credentials<'a> {
    /// The `token` query parameter of the callback URL.
    pub token: Option<&'a str>,
    /// The Standard Webhooks headers.
    pub signed: SignedHeaders<'a>,
}

/// What the call proved, under the configured rule. `Err` only in `signature` mode, where an
/// unsigned or badly signed call is refused before anything else.
pub fn authenticate(
    config: &Config,
    creds: &Credentials,
    body: &[u8],
    now: Timestamp,
) -> Result<CallbackAuth, SignatureError> {
    let signed = |secret: &crate::ssr::callback_auth::WebhookSecret| {
        secret
            .verify(&creds.signed, body, now)
            .map(|id| CallbackAuth::Signed(id.to_string()))
    };
    match (config.webhook_auth, &config.rck_webhook_secret) {
        (WebhookAuth::Off, _) => Ok(CallbackAuth::Open),
        (WebhookAuth::Signature, Some(secret)) => signed(secret),
        // Refused at start-up; refuse here too rather than let calls in.
        (WebhookAuth::Signature, None) => Err(SignatureError::Missing),
        (WebhookAuth::Token, secret) => {
            let by_signature = secret
                .as_ref()
                .filter(|_| creds.signed.present())
                .and_then(|s| signed(s).ok());
            Ok(by_signature.unwrap_or_else(|| CallbackAuth::Token(creds.token.map(hash_token))))
        }
    }
}

/// What to answer: the envelope and its status.
pub type Reply = ApiResponse<Value>;

fn refused(status: u16, message: &str) -> Reply {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    ApiResponse::refused(status, message.to_string())
}

/// `{success: true, message, data}` of a processed callback.
fn processed(status: u16, message: String, video: &AiVideo, change: &VideoChange) -> Reply {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    ApiResponse::with_status(status, webhook::response_data(video, change)).message(message)
}

fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .map(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// Payloads nested deeper than this are recorded as their text: every client (the dashboard's
/// too) can then read any event back, inside its envelope, within common JSON parsers' limits.
pub const MAX_PAYLOAD_DEPTH: usize = 64;

/// What is recorded of a body: its JSON if it parses and is at most `MAX_PAYLOAD_DEPTH` deep, else
/// its text (lossy for non-UTF-8 bytes).
pub fn payload_of(bytes: &[u8], parsed: Option<&Value>) -> Value {
    match parsed {
        Some(v) if depth(v) <= MAX_PAYLOAD_DEPTH => v.clone(),
        _ => Value::String(String::from_utf8_lossy(bytes).into_owned()),
    }
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Reads the body into the payload to record and, when it is acceptable, the parsed JSON.
fn read_body(incoming: &Incoming) -> (Value, Result<Value, Rejection>) {
    let reject = |status, message: &str| {
        Err(Rejection {
            status,
            message: message.into(),
        })
    };
    match incoming {
        Incoming::TooLarge => (
            Value::String(format!(
                "<body larger than {MAX_BODY_BYTES} bytes; not stored>"
            )),
            reject(413, "Request body too large (max 1 MiB)"),
        ),
        Incoming::Body {
            content_type,
            bytes,
        } => {
            let parsed = serde_json::from_slice::<Value>(bytes);
            let payload = payload_of(bytes, parsed.as_ref().ok());
            let verdict = if !is_json(*content_type) {
                reject(415, "Content-Type must be application/json")
            } else {
                match parsed {
                    Ok(v) => Ok(v),
                    Err(_) if bytes.iter().all(u8::is_ascii_whitespace) => {
                        reject(400, "Request body is empty")
                    }
                    Err(_) => reject(400, "Malformed JSON in request body"),
                }
            };
            (payload, verdict)
        }
    }
}

/// Handles one callback end to end and says what to answer.
///
/// No span of its own, unlike the other services: this is the hot path of ingest, the request's
/// span already names the route, and every line logged here carries the endpoint.
pub async fn handle(
    state: &AppState,
    kind: WebhookKind,
    incoming: Incoming<'_>,
    creds: Credentials<'_>,
) -> Reply {
    let (payload, parsed) = read_body(&incoming);
    let now = Timestamp::now();
    let draft = EventDraft {
        id: ObjectId::new(),
        endpoint: kind.endpoint().to_string(),
        video_id: webhook::raw_video_id(&payload),
        payload,
        created_at: now,
        note: None,
    };
    let body = match &incoming {
        Incoming::Body { bytes, .. } => *bytes,
        Incoming::TooLarge => &[],
    };
    let auth = match authenticate(&state.config, &creds, body, now) {
        Ok(auth) => auth,
        Err(why) => {
            tracing::warn!(target: "internal_webhook", endpoint = kind.endpoint(), "refused: {why}");
            record_alone(state, draft.finish(401, webhook::MSG_INVALID_CREDENTIALS)).await;
            return refused(401, webhook::MSG_INVALID_CREDENTIALS);
        }
    };
    process(state, kind, draft, parsed, auth).await
}

/// Re-applies a recorded callback through the normal path, as a superadmin's act: the state rules
/// apply (a replay of a success on a completed video changes nothing), credentials are not asked
/// for (the operator is trusted; the original token is never stored), and the replay is recorded
/// as an event of its own whose outcome ends "(replay of <id> by <email>)".
#[tracing::instrument(skip(state, caller), fields(user = %caller.user_id))]
pub async fn replay(state: &AppState, caller: &Caller, id: &str) -> AppResult<Replayed> {
    caller.require_superadmin()?;
    let who = within(state.store.find_user(caller.user_id))
        .await?
        .map(|u| u.email)
        .unwrap_or_else(|| caller.user_id.to_string());
    replay_as(state, id, &who).await
}

/// [`replay`] on behalf of `who` (the command line's `server events replay` is trusted as the
/// operator of the machine).
pub async fn replay_as(state: &AppState, id: &str, who: &str) -> AppResult<Replayed> {
    let id = super::parse_id(id, "event id")?;
    let original = within(state.store.find_event(id))
        .await?
        .ok_or_else(|| AppError::NotFound("Webhook event not found".into()))?;
    let kind = [WebhookKind::Success, WebhookKind::Failure]
        .into_iter()
        .find(|k| k.endpoint() == original.endpoint)
        .ok_or_else(|| {
            AppError::BadRequest(
                "Only calls to /videos/success and /videos/failure can be replayed".into(),
            )
        })?;
    if !original.payload.is_object() {
        return Err(AppError::BadRequest(
            "This call's body was not a JSON object; there is nothing to replay".into(),
        ));
    }
    let draft = EventDraft {
        id: ObjectId::new(),
        endpoint: original.endpoint.clone(),
        video_id: original.video_id.clone(),
        payload: original.payload.clone(),
        created_at: Timestamp::now(),
        note: Some(format!("replay of {} by {who}", original.id)),
    };
    let event_id = draft.id;
    let reply = process(state, kind, draft, Ok(original.payload), CallbackAuth::Open).await;
    tracing::info!(target: "internal_webhook", replay_of = %original.id, %event_id, status = reply.status().as_u16(), "callback replayed");
    Ok(Replayed {
        event_id,
        status_code: reply.status().as_u16(),
        outcome: reply.message_text().unwrap_or_default().to_string(),
    })
}

/// A callback past authentication: validated, applied with its event in one commit, answered.
async fn process(
    state: &AppState,
    kind: WebhookKind,
    draft: EventDraft,
    parsed: Result<Value, Rejection>,
    auth: CallbackAuth,
) -> Reply {
    let valid = parsed.and_then(|body| webhook::parse_payload(kind, &body));
    let (video_id, change) = match valid {
        Ok(v) => v,
        Err(r) => {
            tracing::warn!(target: "internal_webhook", endpoint = kind.endpoint(), status = r.status, "rejected: {}", r.message);
            record_alone(state, draft.finish(r.status, &r.message)).await;
            return refused(r.status, &r.message);
        }
    };
    match within(
        state
            .store
            .apply_webhook(video_id, &change, &auth, draft.clone()),
    )
    .await
    {
        Ok(Applied::NotFound) => {
            tracing::warn!(target: "internal_webhook", %video_id, endpoint = kind.endpoint(), "video not found");
            refused(404, webhook::MSG_VIDEO_NOT_FOUND)
        }
        Ok(Applied::Duplicate {
            status_code,
            outcome,
            video,
        }) => {
            tracing::info!(target: "internal_webhook", %video_id, endpoint = kind.endpoint(), status = status_code, "duplicate delivery: answered as the first, nothing changed");
            match video.filter(|_| (200..300).contains(&status_code)) {
                Some(video) => processed(status_code, outcome, &video, &change),
                None => refused(status_code, &outcome),
            }
        }
        Ok(Applied::Unauthorized) => {
            tracing::warn!(target: "internal_webhook", %video_id, endpoint = kind.endpoint(), "refused: invalid callback credentials");
            refused(401, webhook::MSG_INVALID_CREDENTIALS)
        }
        Ok(Applied::Done {
            decision,
            video,
            previous,
        }) => {
            let (status, message) = webhook::response_line(kind, decision);
            tracing::info!(target: "internal_webhook", %video_id, endpoint = kind.endpoint(), ?decision, from = %previous, to = %video.status, "{message}");
            processed(status, message.to_string(), &video, &change)
        }
        Err(e) if e.is_unavailable() => {
            // Nothing was committed (a write whose caller gave up is never applied late): 503, so
            // RCK retries; the call goes to the spool, as the store cannot take it now.
            tracing::warn!(target: "internal_webhook", %video_id, "store unavailable, answering 503: {e}");
            spool(state, draft.finish(503, MSG_STORAGE_UNAVAILABLE)).await;
            refused(503, MSG_STORAGE_UNAVAILABLE)
        }
        Err(e) => {
            // Nothing was committed: answer 500 so RCK retries, and still leave a trace of the call.
            tracing::error!(target: "internal_webhook", %video_id, "could not apply the callback: {e}");
            record_alone(state, draft.finish(500, "Internal server error")).await;
            refused(500, "Internal server error")
        }
    }
}

/// Records an event outside any other write (calls refused before reaching a video); into the
/// spool when the store cannot take it. Failing to record never changes the answer.
pub async fn record_alone(state: &AppState, event: WebhookEvent) {
    match within(state.store.insert_event(&event)).await {
        Ok(()) => {}
        Err(e) if e.is_unavailable() => spool(state, event).await,
        Err(e) => lost(&event, &e),
    }
}

/// Appends the event to the spool (see `ssr::spool`); it reaches the store when the store is back.
async fn spool(state: &AppState, event: WebhookEvent) {
    if let Err(e) = state.spool.append(&event).await {
        lost(&event, &e);
    }
}

/// Logged loudly: the audit log has a hole.
fn lost(event: &WebhookEvent, e: &dyn std::fmt::Display) {
    tracing::error!(target: "webhook_logger", event_id = %event.id, endpoint = %event.endpoint,
        "FAILED TO RECORD WEBHOOK EVENT (audit log is missing this call): {e}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("Application/JSON; charset=utf-8")));
        assert!(is_json(Some("application/vnd.rck+json")));
        assert!(!is_json(Some("text/plain")));
        assert!(!is_json(None));
    }

    #[test]
    fn deep_payloads_are_kept_as_text() {
        let mut deep = serde_json::json!(1);
        for _ in 0..MAX_PAYLOAD_DEPTH + 1 {
            deep = serde_json::json!([deep]);
        }
        let text = deep.to_string();
        assert_eq!(
            payload_of(text.as_bytes(), Some(&deep)),
            Value::String(text)
        );
        let shallow = serde_json::json!({ "a": [1] });
        assert_eq!(payload_of(b"{}", Some(&shallow)), shallow);
    }

    #[test]
    fn non_json_bodies_are_kept_as_text() {
        let (payload, verdict) = read_body(&Incoming::Body {
            content_type: Some("application/json"),
            bytes: b"{not json",
        });
        assert_eq!(payload, Value::String("{not json".into()));
        assert_eq!(verdict.unwrap_err().status, 400);
        let (_, verdict) = read_body(&Incoming::Body {
            content_type: Some("text/plain"),
            bytes: b"{}",
        });
        assert_eq!(verdict.unwrap_err().status, 415);
    }
}
