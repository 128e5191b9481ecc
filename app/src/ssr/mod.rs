//! Server-only code: configuration, stores, services, auth and the RCK client.

pub mod auth;
pub mod callback_auth;
pub mod config;
pub mod error;
pub mod notify;
pub mod rck;
pub mod services;
pub mod sessions;
pub mod spool;
pub mod state;
pub mod store;
pub mod throttle;
pub mod totals;
