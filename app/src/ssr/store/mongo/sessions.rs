//! `revokedsessions`: tokens ended before they expire (a TTL index removes them at `expiresAt`).

use super::docs::date;
use super::MongoStore;
use crate::model::Timestamp;
use crate::ssr::store::{SessionStore, StoreResult};
use async_trait::async_trait;
use mongodb::bson::doc;

#[async_trait]
impl SessionStore for MongoStore {
    async fn revoke_session(&self, jti: &str, expires_at: Timestamp) -> StoreResult<()> {
        self.sessions
            .update_one(
                doc! { "_id": jti },
                doc! { "$setOnInsert": { "expiresAt": date(expires_at) } },
            )
            .upsert(true)
            .await?;
        Ok(())
    }

    async fn is_session_revoked(&self, jti: &str) -> StoreResult<bool> {
        Ok(self.sessions.find_one(doc! { "_id": jti }).await?.is_some())
    }
}
