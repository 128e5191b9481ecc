//! Who may call `/internal/videos/*`: capability tokens in the callback URLs we give RCK, and
//! Standard Webhooks signatures (<https://www.standardwebhooks.com>) made with `RCK_WEBHOOK_SECRET`.
//!
//! A token is 128 random bits, URL-safe base64; only its SHA-256 is stored, with the batch's videos.
//! Secrets are compared in constant time, and nothing here logs a token or a signature.

use crate::model::webhook::constant_time_eq;
use crate::model::Timestamp;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

/// How far a signature's timestamp may be from our clock (either way).
pub const SIGNATURE_TOLERANCE_SECS: i64 = 5 * 60;

/// A fresh capability token for one batch: the token (goes into the URLs, never stored) and its
/// hash (stored with the videos).
pub fn new_token() -> (String, String) {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_token(&token);
    (token, hash)
}

/// SHA-256 of a token, as lowercase hex.
pub fn hash_token(token: &str) -> String {
    crate::model::hex(&Sha256::digest(token.as_bytes()))
}

/// The secret: `whsec_` followed by base64 key bytes (the prefix is optional, as the Standard
/// Webhooks libraries accept it). Held as an HMAC already keyed, so each delivery's MAC starts from
/// a copy of it rather than hashing the key again (two SHA-256 blocks fewer per callback).
#[derive(Clone)]
pub struct WebhookSecret(hmac::Hmac<Sha256>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl std::str::FromStr for WebhookSecret {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let b64 = s.trim().strip_prefix("whsec_").unwrap_or(s.trim());
        let key = STANDARD
            .decode(b64)
            .map_err(|_| "must be `whsec_` followed by base64".to_string())?;
        if key.len() < 16 {
            return Err("must hold at least 16 bytes of key".into());
        }
        let keyed = hmac::Hmac::<Sha256>::new_from_slice(&key)
            .map_err(|_| "must hold a key HMAC accepts".to_string())?;
        Ok(Self(keyed))
    }
}

/// Why a signed delivery was refused (for the log; the caller only ever sees 401).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("webhook-id, webhook-timestamp or webhook-signature header missing")]
    Missing,
    #[error("webhook-timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is more than 5 minutes from now")]
    Stale,
    #[error("no webhook-signature matches")]
    Mismatch,
}

/// The three Standard Webhooks headers of a delivery.
#[derive(Clone, Copy, Debug, Default)]
pub struct SignedHeaders<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

impl<'a> SignedHeaders<'a> {
    pub fn from_headers(h: &'a http::HeaderMap) -> Self {
        let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok());
        Self {
            id: get("webhook-id"),
            timestamp: get("webhook-timestamp"),
            signature: get("webhook-signature"),
        }
    }

    /// Whether the delivery claims to be signed at all.
    pub fn present(&self) -> bool {
        self.signature.is_some()
    }
}

impl WebhookSecret {
    /// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!(
            "v1,{}",
            STANDARD.encode(self.mac(id, &timestamp.to_string(), body))
        )
    }

    fn mac(&self, id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
        let mut mac = self.0.clone();
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }

    /// Checks a delivery: all three headers present, the timestamp within 5 minutes of `now`, and
    /// one of the space-separated `v1,` signatures matching. Returns the delivery's id.
    pub fn verify<'a>(
        &self,
        h: &SignedHeaders<'a>,
        body: &[u8],
        now: Timestamp,
    ) -> Result<&'a str, SignatureError> {
        let (Some(id), Some(ts), Some(sigs)) = (h.id, h.timestamp, h.signature) else {
            return Err(SignatureError::Missing);
        };
        let secs: i64 = ts
            .trim()
            .parse()
            .map_err(|_| SignatureError::BadTimestamp)?;
        if (now.millis() / 1000 - secs).abs() > SIGNATURE_TOLERANCE_SECS {
            return Err(SignatureError::Stale);
        }
        let expected = self.mac(id, ts.trim(), body);
        let matches = sigs
            .split_whitespace()
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|b64| STANDARD.decode(b64).ok())
            .any(|sig| constant_time_eq(&sig, &expected));
        if matches {
            Ok(id)
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> WebhookSecret {
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse().unwrap()
    }

    #[test]
    fn tokens_are_128_bits_url_safe_and_hashed() {
        let (t1, h1) = new_token();
        let (t2, _) = new_token();
        assert_ne!(t1, t2);
        assert_eq!(URL_SAFE_NO_PAD.decode(&t1).unwrap().len(), 16);
        assert!(t1
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(h1, hash_token(&t1));
        assert_eq!(h1.len(), 64);
    }

    #[test]
    fn the_standard_webhooks_test_vector_verifies() {
        // The example of the Standard Webhooks specification.
        let body = br#"{"test": 2432232314}"#;
        let h = SignedHeaders {
            id: Some("msg_p5jXN8AQM9LWM0D4loKWxJek"),
            timestamp: Some("1614265330"),
            signature: Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
        };
        let now = Timestamp::from_millis(1_614_265_330_000);
        assert_eq!(
            secret().verify(&h, body, now),
            Ok("msg_p5jXN8AQM9LWM0D4loKWxJek")
        );
        assert_eq!(
            secret().sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn stale_tampered_and_unsigned_deliveries_are_refused() {
        let s = secret();
        let now = Timestamp::from_millis(1_700_000_000_000);
        let sig = s.sign("msg_1", 1_700_000_000, b"{}");
        let h = |ts: &'static str, sig: &str| SignedHeaders {
            id: Some("msg_1"),
            timestamp: Some(ts),
            signature: Some(Box::leak(sig.to_string().into_boxed_str())),
        };
        assert_eq!(s.verify(&h("1700000000", &sig), b"{}", now), Ok("msg_1"));
        assert_eq!(
            s.verify(&h("1700000000", &format!("v1,bm9wZQ== {sig}")), b"{}", now),
            Ok("msg_1"),
            "any of several signatures may match"
        );
        assert_eq!(
            s.verify(&h("1700000000", &sig), b"{\"x\":1}", now),
            Err(SignatureError::Mismatch)
        );
        let old = s.sign("msg_1", 1_699_999_000, b"{}");
        assert_eq!(
            s.verify(&h("1699999000", &old), b"{}", now),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            s.verify(&h("soon", &sig), b"{}", now),
            Err(SignatureError::BadTimestamp)
        );
        assert_eq!(
            s.verify(&SignedHeaders::default(), b"{}", now),
            Err(SignatureError::Missing)
        );
        let other: WebhookSecret = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=".parse().unwrap();
        assert_eq!(
            other.verify(&h("1700000000", &sig), b"{}", now),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn secrets_parse_and_never_print() {
        assert!("whsec_!!".parse::<WebhookSecret>().is_err());
        assert!("whsec_c2hvcnQ=".parse::<WebhookSecret>().is_err());
        assert_eq!(format!("{:?}", secret()), "WebhookSecret(..)");
    }
}
