//! What every request handler and server function shares.

use crate::ssr::auth::Jwt;
use crate::ssr::config::Config;
use crate::ssr::rck::RckClient;
use crate::ssr::store::Store;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub jwt: Jwt,
    /// The RCK client; `None` when no RCK server is configured (bulk generation then answers 503).
    pub rck: Option<RckClient>,
}

impl AppState {
    pub fn new(config: Config, store: Arc<dyn Store>) -> Self {
        let jwt = Jwt::new(&config.jwt_secret, config.jwt_ttl_hours);
        let rck = config.rck_url.as_deref().map(|url| {
            RckClient::new(
                url,
                config.rck_api_key.clone(),
                config.rck_connect_timeout_ms,
                config.rck_timeout_ms,
                config.rck_max_retries,
            )
        });
        Self {
            config: Arc::new(config),
            store,
            jwt,
            rck,
        }
    }
}
