//! What every request handler and server function shares.

use crate::ssr::auth::Jwt;
use crate::ssr::config::Config;
use crate::ssr::store::Store;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub jwt: Jwt,
}

impl AppState {
    pub fn new(config: Config, store: Arc<dyn Store>) -> Self {
        let jwt = Jwt::new(&config.jwt_secret, config.jwt_ttl_hours);
        Self {
            config: Arc::new(config),
            store,
            jwt,
        }
    }
}
