//! `idempotency_keys`: bulk generation's `Idempotency-Key`s and their answers.

use super::SqliteStore;
use crate::model::{ObjectId, Timestamp};
use crate::ssr::store::{Claim, IdempotencyStore, KeptAnswer, StoreResult};
use async_trait::async_trait;
use rusqlite::{named_params, OptionalExtension};

const FIND: &str = "SELECT fingerprint, status, body, created_at FROM idempotency_keys
     WHERE user_id = :user AND key = :key";
const TAKE: &str = "INSERT OR REPLACE INTO idempotency_keys
     (user_id, key, fingerprint, status, body, created_at)
     VALUES (:user, :key, :fingerprint, NULL, NULL, :now)";
/// A few expired rows go with every claim, so the table holds about a day of keys.
const FORGET_EXPIRED: &str = "DELETE FROM idempotency_keys WHERE rowid IN (
     SELECT rowid FROM idempotency_keys WHERE created_at < :before ORDER BY created_at LIMIT 16)";
const ANSWER: &str = "UPDATE idempotency_keys SET status = :status, body = :body
     WHERE user_id = :user AND key = :key";
const RELEASE: &str = "DELETE FROM idempotency_keys WHERE user_id = :user AND key = :key";

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn claim_key(
        &self,
        user: ObjectId,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
        expired_before: Timestamp,
    ) -> StoreResult<Claim> {
        let (key, fingerprint) = (key.to_string(), fingerprint.to_string());
        self.write(move |t| {
            let user = user.to_string();
            let found = t
                .prepare_cached(FIND)?
                .query_row(named_params! { ":user": user, ":key": key }, |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<u16>>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })
                .optional()?;
            let before = expired_before.to_string();
            if let Some((held, status, body, created_at)) = found {
                if created_at >= before {
                    return Ok(match (status, body) {
                        (Some(status), Some(body)) => Claim::Answered {
                            fingerprint: held,
                            answer: KeptAnswer { status, body },
                        },
                        _ => Claim::InProgress { fingerprint: held },
                    });
                }
            }
            t.prepare_cached(TAKE)?.execute(named_params! { ":user": user, ":key": key, ":fingerprint": fingerprint, ":now": now.to_string() },
            )?;
            t.prepare_cached(FORGET_EXPIRED)?.execute(named_params! { ":before": before })?;
            Ok(Claim::Claimed)
        })
        .await
    }

    async fn answer_key(&self, user: ObjectId, key: &str, answer: &KeptAnswer) -> StoreResult<()> {
        let (key, answer) = (key.to_string(), answer.clone());
        self.write(move |t| {
            t.prepare_cached(ANSWER)?.execute(named_params! {
                ":user": user.to_string(), ":key": key,
                ":status": answer.status, ":body": answer.body,
            })?;
            Ok(())
        })
        .await
    }

    async fn release_key(&self, user: ObjectId, key: &str) -> StoreResult<()> {
        let key = key.to_string();
        self.write(move |t| {
            t.prepare_cached(RELEASE)?
                .execute(named_params! { ":user": user.to_string(), ":key": key })?;
            Ok(())
        })
        .await
    }
}
