//! `revoked_sessions`: tokens ended before they expire.

use super::SqliteStore;
use crate::model::Timestamp;
use crate::ssr::store::{SessionStore, StoreResult};
use async_trait::async_trait;
use rusqlite::{named_params, OptionalExtension};

const REVOKE: &str =
    "INSERT OR IGNORE INTO revoked_sessions (jti, expires_at) VALUES (:jti, :expires_at)";
/// A few expired rows go with every new one, so the table holds about the live revocations.
const FORGET_EXPIRED: &str = "DELETE FROM revoked_sessions WHERE jti IN (
         SELECT jti FROM revoked_sessions WHERE expires_at < :now ORDER BY expires_at LIMIT 16)";
const IS_REVOKED: &str = "SELECT 1 FROM revoked_sessions WHERE jti = :jti";

#[async_trait]
impl SessionStore for SqliteStore {
    async fn revoke_session(&self, jti: &str, expires_at: Timestamp) -> StoreResult<()> {
        let jti = jti.to_string();
        self.write(move |t| {
            t.prepare_cached(REVOKE)?
                .execute(named_params! { ":jti": jti, ":expires_at": expires_at.to_string() })?;
            t.prepare_cached(FORGET_EXPIRED)?
                .execute(named_params! { ":now": Timestamp::now().to_string() })?;
            Ok(())
        })
        .await
    }

    async fn is_session_revoked(&self, jti: &str) -> StoreResult<bool> {
        let jti = jti.to_string();
        self.read(move |c| {
            Ok(c.prepare_cached(IS_REVOKED)?
                .query_row(named_params! { ":jti": jti }, |_| Ok(()))
                .optional()?
                .is_some())
        })
        .await
    }
}
