//! `idempotencykeys`: bulk generation's `Idempotency-Key`s and their answers, one document per user
//! and key (`_id: {u, k}`); a TTL index removes them after a day.

use super::docs::date;
use super::txn::is_duplicate;
use super::MongoStore;
use crate::model::{ObjectId, Timestamp};
use crate::ssr::store::{Claim, IdempotencyStore, KeptAnswer, StoreError, StoreResult};
use async_trait::async_trait;
use mongodb::bson::{doc, Bson, Document};

fn id(user: ObjectId, key: &str) -> Document {
    doc! { "u": user.to_string(), "k": key }
}

fn claim_of(d: &Document) -> StoreResult<Claim> {
    let fingerprint = d
        .get_str("fingerprint")
        .map_err(|_| StoreError::Corrupt("idempotency key without a fingerprint".into()))?
        .to_string();
    Ok(match (d.get("status"), d.get_str("body")) {
        (Some(status), Ok(body)) => Claim::Answered {
            fingerprint,
            answer: KeptAnswer {
                status: super::docs::num(status)
                    .and_then(|n| u16::try_from(n).ok())
                    .ok_or_else(|| StoreError::Corrupt("idempotency key status".into()))?,
                body: body.to_string(),
            },
        },
        _ => Claim::InProgress { fingerprint },
    })
}

#[async_trait]
impl IdempotencyStore for MongoStore {
    async fn claim_key(
        &self,
        user: ObjectId,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
        expired_before: Timestamp,
    ) -> StoreResult<Claim> {
        let fresh =
            doc! { "_id": id(user, key), "fingerprint": fingerprint, "createdAt": date(now) };
        // Insert, or take over an expired record the TTL monitor has not removed yet; a key that
        // vanishes or expires between the steps is tried again (bounded).
        for _ in 0..3 {
            match self.idempotency.insert_one(&fresh).await {
                Ok(_) => return Ok(Claim::Claimed),
                Err(e) if is_duplicate(&e) => {}
                Err(e) => return Err(e.into()),
            }
            let Some(held) = self
                .idempotency
                .find_one(doc! { "_id": id(user, key) })
                .await?
            else {
                continue;
            };
            let created = held.get_datetime("createdAt").map(|d| d.timestamp_millis());
            if created.is_ok_and(|c| c >= expired_before.millis()) {
                return claim_of(&held);
            }
            let replaced = self
                .idempotency
                .replace_one(
                    doc! { "_id": id(user, key), "createdAt": held.get("createdAt").cloned().unwrap_or(Bson::Null) },
                    fresh.clone(),
                )
                .hint(mongodb::options::Hint::Keys(doc! { "_id": 1 }))
                .await?;
            if replaced.modified_count == 1 {
                return Ok(Claim::Claimed);
            }
        }
        Err(StoreError::Contended(3))
    }

    async fn answer_key(&self, user: ObjectId, key: &str, answer: &KeptAnswer) -> StoreResult<()> {
        self.idempotency
            .update_one(
                doc! { "_id": id(user, key) },
                doc! { "$set": { "status": answer.status as i32, "body": &answer.body } },
            )
            .await?;
        Ok(())
    }

    async fn release_key(&self, user: ObjectId, key: &str) -> StoreResult<()> {
        self.idempotency
            .delete_one(doc! { "_id": id(user, key) })
            .await?;
        Ok(())
    }
}
