//! What every request handler and server function shares.

use crate::ssr::auth::Jwt;
use crate::ssr::config::Config;
use crate::ssr::rck::RckClient;
use crate::ssr::sessions::Sessions;
use crate::ssr::spool::Spool;
use crate::ssr::store::Store;
use crate::ssr::throttle::LoginThrottle;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Password hashes computed at once (argon2 is deliberately slow): a login flood waits here instead
/// of taking every blocking thread the store and the webhooks need.
pub const HASHING_SLOTS: usize = 2;

/// What every request handler shares. Extractors and middleware clone it per request (each `State`
/// does), so it is one reference count to clone, not a copy of its keys and clients.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Shared {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub jwt: Jwt,
    /// The RCK client; `None` when no RCK server is configured (bulk generation then answers 503).
    pub rck: Option<RckClient>,
    /// Failed logins per client address and account.
    pub login_throttle: Arc<LoginThrottle>,
    /// See [`HASHING_SLOTS`].
    pub hashing: Arc<Semaphore>,
    /// Revoked tokens and changed users (`ssr::sessions`).
    pub sessions: Arc<Sessions>,
    /// Callbacks the store could not record during an outage (`ssr::spool`).
    pub spool: Arc<Spool>,
    /// Totals of big lists, kept briefly (`ssr::totals`).
    pub totals: Arc<crate::ssr::totals::Totals>,
}

impl AppState {
    /// Fails only if the spool directory under `DATA_DIR` cannot be created.
    pub fn new(config: Config, store: Arc<dyn Store>) -> std::io::Result<Self> {
        let jwt = Jwt::new(&config.jwt_secret, config.jwt_ttl_hours)
            .with_issuer_and_audience(config.jwt_issuer.clone(), config.jwt_audience.clone());
        let sessions = Arc::new(Sessions::new(std::time::Duration::from_secs(
            config.session_recheck_secs,
        )));
        let rck = config.rck_url.as_deref().map(|url| {
            RckClient::new(
                url,
                config.rck_api_key.clone(),
                config.rck_connect_timeout_ms,
                config.rck_timeout_ms,
                config.rck_max_retries,
            )
            // Retries end before the request that waits for them times out.
            .with_budget(std::time::Duration::from_secs(
                config.request_timeout_secs.saturating_sub(1).max(1),
            ))
        });
        let spool = Arc::new(Spool::open(&config.data_dir)?);
        Ok(Self(Arc::new(Shared {
            config: Arc::new(config),
            store,
            jwt,
            rck,
            login_throttle: Arc::default(),
            hashing: Arc::new(Semaphore::new(HASHING_SLOTS)),
            sessions,
            spool,
            totals: Arc::default(),
        })))
    }
}
