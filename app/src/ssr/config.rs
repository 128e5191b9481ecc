//! Configuration from the environment (and `.env`), validated once at start-up.

use crate::ssr::callback_auth::WebhookSecret;
use std::net::SocketAddr;
use std::path::PathBuf;

/// How `/internal/videos/*` callbacks prove they come from RCK (`WEBHOOK_AUTH`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookAuth {
    /// The default: the per-batch capability token in the callback URLs we give RCK (or a valid
    /// signature, when `RCK_WEBHOOK_SECRET` is set).
    Token,
    /// Every callback carries a Standard Webhooks signature made with `RCK_WEBHOOK_SECRET`.
    Signature,
    /// The original spec: unauthenticated. Logged as a warning at start-up.
    Off,
}

impl std::str::FromStr for WebhookAuth {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "token" => Ok(Self::Token),
            "signature" => Ok(Self::Signature),
            "off" => Ok(Self::Off),
            _ => Err("expected token, signature or off".into()),
        }
    }
}

/// Everything the server reads from its environment. Secrets are never printed: `Debug` redacts them.
#[derive(Clone)]
pub struct Config {
    /// Where the embedded SQLite store lives.
    pub data_dir: PathBuf,
    /// The address the HTTP server listens on (`LEPTOS_SITE_ADDR`).
    pub site_addr: SocketAddr,
    /// HS256 secret for the API's JWTs.
    pub jwt_secret: String,
    /// How long a token issued by `/api/auth/login` lives.
    pub jwt_ttl_hours: u64,
    /// Dev mode: no `JWT_SECRET` needed (one is kept in `DATA_DIR`), demo data and simulator.
    pub dev_mode: bool,
    /// Created on first start when no superadmin exists.
    pub superadmin_email: Option<String>,
    pub superadmin_password: Option<String>,
    /// The public URL of this server, from which RCK's callback URLs are built.
    pub server_url: String,
    /// The RCK Description server; unset in dev mode means the in-process simulator.
    pub rck_url: Option<String>,
    pub rck_api_key: Option<String>,
    /// Timeouts and retries of the RCK client.
    pub rck_connect_timeout_ms: u64,
    pub rck_timeout_ms: u64,
    pub rck_max_retries: u32,
    /// `MONGODB_URI` / `MONGODB_DB`: when set, the MongoDB store is used instead of SQLite.
    pub mongodb_uri: Option<String>,
    pub mongodb_db: String,
    /// Videos still `generating` after this long are flagged as stuck.
    /// Decimals allowed (`0.05` is three seconds): the sweeper fails videos waiting longer.
    pub video_timeout_minutes: f64,
    /// How often the sweeper looks for videos RCK never called back.
    pub sweep_interval_secs: u64,
    /// How many times a failed video may be sent back to RCK.
    pub video_max_retries: u32,
    /// `VIDEO_AUTO_RETRY`: failed and timed-out videos are sent back to RCK by themselves.
    pub video_auto_retry: bool,
    /// Wait before the first automatic retry; it doubles with each retry. Decimals allowed.
    pub video_retry_backoff_secs: f64,
    /// Webhook events older than this are deleted; unset keeps them forever.
    pub webhook_event_retention_days: Option<u64>,
    /// How callbacks authenticate (`WEBHOOK_AUTH`, default `token`).
    pub webhook_auth: WebhookAuth,
    /// `RCK_WEBHOOK_SECRET`: the Standard Webhooks secret RCK signs callbacks with.
    pub rck_webhook_secret: Option<WebhookSecret>,
    /// The session cookie is `Secure` (also implied by an https `SERVER_URL`).
    pub cookie_secure: bool,
    /// The longest a request may take (the live feed excepted).
    pub request_timeout_secs: u64,
    /// Requests served at once; more are answered 503 with `Retry-After` instead of queueing.
    pub max_in_flight: usize,
    /// `JWT_ISSUER` / `JWT_AUDIENCE`: put in our tokens and required on every token when set.
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    /// How often a token's session is checked again (revoked? user deleted or changed?).
    pub session_recheck_secs: u64,
    /// On SIGTERM/SIGINT, how long in-flight requests may take before the process exits anyway.
    pub shutdown_grace_secs: u64,
    /// `METRICS_TOKEN`: when set, `GET /metrics` requires it as a bearer token.
    pub metrics_token: Option<String>,
    /// `SMTP_URL` (`smtp://host:port`, `smtp+starttls://user:pass@host:587`, `smtps://user:pass@host:465`):
    /// where emails go; unset, no email is sent.
    pub smtp_url: Option<String>,
    /// `SMTP_FROM`: the sender of emails.
    pub smtp_from: String,
    /// `NOTIFY_MAX_ATTEMPTS`: attempts per notification before it is marked failed.
    pub notify_max_attempts: u32,
    /// `NOTIFY_RETRY_BASE_SECONDS`: the wait after a first failed attempt; it doubles (with jitter).
    pub notify_retry_base_secs: f64,
    /// `NOTIFY_ALLOW_PRIVATE_URLS`: notification URLs may be http and private addresses (tests,
    /// on-premises).
    pub notify_allow_private_urls: bool,
}

impl Config {
    /// Whether the session cookie must be `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.cookie_secure || self.server_url.starts_with("https://")
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("site_addr", &self.site_addr)
            .field("jwt_secret", &"<redacted>")
            .field("jwt_ttl_hours", &self.jwt_ttl_hours)
            .field("dev_mode", &self.dev_mode)
            .field("superadmin_email", &self.superadmin_email)
            .field("server_url", &self.server_url)
            .field("rck_url", &self.rck_url)
            .field(
                "rck_api_key",
                &self.rck_api_key.as_ref().map(|_| "<redacted>"),
            )
            .field("mongodb_db", &self.mongodb_db)
            .field(
                "mongodb_uri",
                &self.mongodb_uri.as_ref().map(|_| "<redacted>"),
            )
            .field("video_timeout_minutes", &self.video_timeout_minutes)
            .field("sweep_interval_secs", &self.sweep_interval_secs)
            .field("video_max_retries", &self.video_max_retries)
            .field("video_auto_retry", &self.video_auto_retry)
            .field("video_retry_backoff_secs", &self.video_retry_backoff_secs)
            .field(
                "webhook_event_retention_days",
                &self.webhook_event_retention_days,
            )
            .field("webhook_auth", &self.webhook_auth)
            .field("rck_webhook_secret", &self.rck_webhook_secret)
            .field("cookie_secure", &self.cookie_secure)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("max_in_flight", &self.max_in_flight)
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("session_recheck_secs", &self.session_recheck_secs)
            .field("shutdown_grace_secs", &self.shutdown_grace_secs)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "<redacted>"),
            )
            .field("smtp_url", &self.smtp_url.as_ref().map(|_| "<redacted>"))
            .field("smtp_from", &self.smtp_from)
            .field("notify_max_attempts", &self.notify_max_attempts)
            .field("notify_retry_base_secs", &self.notify_retry_base_secs)
            .field("notify_allow_private_urls", &self.notify_allow_private_urls)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not valid: {1}")]
    Invalid(&'static str, String),
    #[error(
        "JWT_SECRET is not set. Set it to a long random string (e.g. `openssl rand -hex 32`), \
         or set DEV_MODE=1 for local development only"
    )]
    MissingJwtSecret,
    #[error("JWT_SECRET must be at least 32 characters")]
    WeakJwtSecret,
    #[error("WEBHOOK_AUTH=signature needs RCK_WEBHOOK_SECRET (`whsec_` followed by base64)")]
    MissingWebhookSecret,
    #[error("could not keep the dev JWT secret in {0}: {1}")]
    DevSecret(String, std::io::Error),
}

/// Reads a variable, treating an empty value as unset.
fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn parsed<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|e: T::Err| ConfigError::Invalid(name, e.to_string())),
    }
}

fn flag(name: &str) -> bool {
    matches!(
        var(name).as_deref().map(str::to_ascii_lowercase).as_deref(),
        Some("1" | "true" | "yes" | "on")
    )
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let data_dir = PathBuf::from(var("DATA_DIR").unwrap_or_else(|| "./data".into()));
        let site_addr: SocketAddr = parsed("LEPTOS_SITE_ADDR", ([127, 0, 0, 1], 3000).into())?;
        let dev_mode = flag("DEV_MODE");
        let jwt_secret = match var("JWT_SECRET") {
            Some(s) if s.len() < 32 => return Err(ConfigError::WeakJwtSecret),
            Some(s) => s,
            None if dev_mode => dev_secret(&data_dir)?,
            None => return Err(ConfigError::MissingJwtSecret),
        };
        let server_url = var("SERVER_URL")
            .unwrap_or_else(|| format!("http://{site_addr}"))
            .trim_end_matches('/')
            .to_string();
        let retention = match var("WEBHOOK_EVENT_RETENTION_DAYS") {
            None => None,
            Some(v) => match v.parse::<u64>() {
                Ok(d) if d >= 1 => Some(d),
                _ => {
                    return Err(ConfigError::Invalid(
                        "WEBHOOK_EVENT_RETENTION_DAYS",
                        "expected a whole number of days, at least 1".into(),
                    ))
                }
            },
        };
        let webhook_auth: WebhookAuth = parsed("WEBHOOK_AUTH", WebhookAuth::Token)?;
        let rck_webhook_secret = var("RCK_WEBHOOK_SECRET")
            .map(|s| {
                s.parse::<WebhookSecret>()
                    .map_err(|e| ConfigError::Invalid("RCK_WEBHOOK_SECRET", e))
            })
            .transpose()?;
        if webhook_auth == WebhookAuth::Signature && rck_webhook_secret.is_none() {
            return Err(ConfigError::MissingWebhookSecret);
        }
        Ok(Self {
            data_dir,
            site_addr,
            jwt_secret,
            jwt_ttl_hours: parsed("JWT_TTL_HOURS", 12)?,
            dev_mode,
            superadmin_email: var("SUPERADMIN_EMAIL"),
            superadmin_password: var("SUPERADMIN_PASSWORD"),
            server_url,
            rck_url: var("RCK_DESCRIPTION_SERVER_URL").map(|u| u.trim_end_matches('/').into()),
            rck_api_key: var("RCK_API_KEY"),
            rck_connect_timeout_ms: parsed("RCK_CONNECT_TIMEOUT_MS", 2_000)?,
            rck_timeout_ms: parsed("RCK_TIMEOUT_MS", 15_000)?,
            rck_max_retries: parsed("RCK_MAX_RETRIES", 3)?,
            mongodb_uri: var("MONGODB_URI"),
            mongodb_db: var("MONGODB_DB").unwrap_or_else(|| "racky".into()),
            video_timeout_minutes: match parsed("VIDEO_TIMEOUT_MINUTES", 30.0f64)? {
                m if m.is_finite() && m > 0.0 => m,
                _ => {
                    return Err(ConfigError::Invalid(
                        "VIDEO_TIMEOUT_MINUTES",
                        "expected a number of minutes above 0, e.g. 30 or 0.05".into(),
                    ))
                }
            },
            sweep_interval_secs: parsed("SWEEP_INTERVAL_SECONDS", 60u64)?.max(1),
            video_max_retries: parsed("VIDEO_MAX_RETRIES", 3)?,
            video_auto_retry: flag("VIDEO_AUTO_RETRY"),
            video_retry_backoff_secs: match parsed("VIDEO_RETRY_BACKOFF_SECONDS", 60.0f64)? {
                s if s.is_finite() && s >= 0.0 => s,
                _ => {
                    return Err(ConfigError::Invalid(
                        "VIDEO_RETRY_BACKOFF_SECONDS",
                        "expected a number of seconds, 0 or more, e.g. 60 or 0.5".into(),
                    ))
                }
            },
            webhook_event_retention_days: retention,
            webhook_auth,
            rck_webhook_secret,
            cookie_secure: flag("COOKIE_SECURE"),
            request_timeout_secs: parsed("REQUEST_TIMEOUT_SECONDS", 30u64)?.max(1),
            max_in_flight: parsed("MAX_IN_FLIGHT_REQUESTS", 512usize)?.max(1),
            jwt_issuer: var("JWT_ISSUER"),
            jwt_audience: var("JWT_AUDIENCE"),
            session_recheck_secs: parsed("SESSION_RECHECK_SECONDS", 60u64)?.min(60),
            shutdown_grace_secs: parsed("SHUTDOWN_GRACE_SECONDS", 10u64)?,
            metrics_token: var("METRICS_TOKEN"),
            smtp_url: var("SMTP_URL"),
            smtp_from: var("SMTP_FROM")
                .unwrap_or_else(|| "Racky videos <videos@racky.local>".into()),
            notify_max_attempts: parsed("NOTIFY_MAX_ATTEMPTS", 8u32)?.clamp(1, 100),
            notify_retry_base_secs: match parsed("NOTIFY_RETRY_BASE_SECONDS", 30.0f64)? {
                s if s.is_finite() && s >= 0.0 => s,
                _ => {
                    return Err(ConfigError::Invalid(
                        "NOTIFY_RETRY_BASE_SECONDS",
                        "expected a number of seconds, 0 or more, e.g. 30 or 0.5".into(),
                    ))
                }
            },
            notify_allow_private_urls: flag("NOTIFY_ALLOW_PRIVATE_URLS"),
        })
    }

    /// A configuration for tests and tools: dev mode off, a fixed secret, everything else default.
    pub fn for_tests(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            site_addr: ([127, 0, 0, 1], 0).into(),
            jwt_secret: "test-secret-test-secret-test-secret-0123".into(),
            jwt_ttl_hours: 12,
            dev_mode: false,
            superadmin_email: None,
            superadmin_password: None,
            server_url: "http://127.0.0.1:0".into(),
            rck_url: None,
            rck_api_key: None,
            rck_connect_timeout_ms: 1_000,
            rck_timeout_ms: 5_000,
            rck_max_retries: 3,
            mongodb_uri: None,
            mongodb_db: "racky".into(),
            video_timeout_minutes: 30.0,
            sweep_interval_secs: 60,
            video_max_retries: 3,
            video_auto_retry: false,
            video_retry_backoff_secs: 60.0,
            webhook_event_retention_days: None,
            webhook_auth: WebhookAuth::Token,
            rck_webhook_secret: None,
            cookie_secure: false,
            request_timeout_secs: 30,
            max_in_flight: 512,
            jwt_issuer: None,
            jwt_audience: None,
            session_recheck_secs: 60,
            shutdown_grace_secs: 10,
            metrics_token: None,
            smtp_url: None,
            smtp_from: "Racky videos <videos@racky.test>".into(),
            notify_max_attempts: 8,
            notify_retry_base_secs: 30.0,
            notify_allow_private_urls: false,
        }
    }
}

/// In dev mode the JWT secret is generated once and kept in the data dir, so a restart does not sign
/// everybody out.
fn dev_secret(data_dir: &std::path::Path) -> Result<String, ConfigError> {
    use rand::distributions::{Alphanumeric, DistString};
    let path = data_dir.join("dev-jwt-secret");
    let err = |e| ConfigError::DevSecret(path.display().to_string(), e);
    if let Ok(s) = std::fs::read_to_string(&path) {
        if s.trim().len() >= 32 {
            return Ok(s.trim().to_string());
        }
    }
    std::fs::create_dir_all(data_dir).map_err(err)?;
    let secret = Alphanumeric.sample_string(&mut rand::thread_rng(), 48);
    std::fs::write(&path, &secret).map_err(err)?;
    Ok(secret)
}
