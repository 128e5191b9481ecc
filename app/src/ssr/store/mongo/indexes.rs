//! Indexes (one for every query the product makes) and retention (the TTL index of
//! `webhookevents`, following `WEBHOOK_EVENT_RETENTION_DAYS`).

use super::docs::num;
use super::{MongoStore, EVENTS, MAX_TTL_SECS};
use crate::ssr::store::{StoreError, StoreResult, DELIVERY_MEMORY_MS, IDEMPOTENCY_MEMORY_MS};
use mongodb::bson::{doc, Document};
use mongodb::error::Error as MongoError;
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use std::time::Duration;

impl MongoStore {
    /// An index for every query the product makes.
    pub(super) async fn create_indexes(&self) -> StoreResult<()> {
        let ix = |keys: Document| IndexModel::builder().keys(keys).build();
        let unique = IndexModel::builder()
            .keys(doc! { "email": 1 })
            .options(IndexOptions::builder().unique(true).build())
            .build();
        // Signed deliveries are remembered a day (the lookup also checks the age: TTL deletion lags).
        let forget_deliveries = IndexModel::builder()
            .keys(doc! { "createdAt": 1 })
            .options(
                IndexOptions::builder()
                    .expire_after(Duration::from_millis(DELIVERY_MEMORY_MS as u64))
                    .build(),
            )
            .build();
        // A revoked session is forgotten when its token would have expired anyway.
        let forget_sessions = IndexModel::builder()
            .keys(doc! { "expiresAt": 1 })
            .options(
                IndexOptions::builder()
                    .expire_after(Duration::from_secs(0))
                    .build(),
            )
            .build();
        // Idempotency keys likewise (the claim checks the age too).
        let forget_keys = IndexModel::builder()
            .keys(doc! { "createdAt": 1 })
            .options(
                IndexOptions::builder()
                    .expire_after(Duration::from_millis(IDEMPOTENCY_MEMORY_MS as u64))
                    .build(),
            )
            .build();
        let unique_dedupe = IndexModel::builder()
            .keys(doc! { "dedupeKey": 1 })
            .options(IndexOptions::builder().unique(true).build())
            .build();
        // The videos of one batch (only ours have a token hash).
        let by_token = IndexModel::builder()
            .keys(doc! { "callbackTokenHash": 1 })
            .options(IndexOptions::builder().sparse(true).build())
            .build();
        let plan: [(&Collection<Document>, Vec<IndexModel>); 9] = [
            (&self.users, vec![unique, ix(doc! { "role": 1 })]),
            (&self.workspaces, vec![ix(doc! { "name": 1, "_id": 1 })]),
            (
                &self.products,
                vec![ix(doc! { "workspaceId": 1, "createdAt": -1, "_id": -1 })],
            ),
            (
                &self.videos,
                vec![
                    ix(doc! { "status": 1, "updatedAt": 1 }),
                    ix(doc! { "status": 1, "createdAt": -1, "_id": -1 }),
                    ix(doc! { "workspaceId": 1, "createdAt": -1, "_id": -1 }),
                    ix(doc! { "workspaceId": 1, "status": 1 }),
                    ix(doc! { "createdAt": -1, "_id": -1 }),
                    by_token,
                ],
            ),
            (
                &self.notifications,
                vec![
                    ix(doc! { "status": 1, "nextAttemptAt": 1 }),
                    ix(doc! { "createdAt": -1, "_id": -1 }),
                    ix(doc! { "workspaceId": 1, "createdAt": -1, "_id": -1 }),
                    unique_dedupe,
                ],
            ),
            (
                &self.events,
                vec![
                    ix(doc! { "createdAt": -1, "_id": -1 }),
                    ix(doc! { "endpoint": 1, "createdAt": -1, "_id": -1 }),
                    ix(doc! { "videoId": 1, "createdAt": -1, "_id": -1 }),
                ],
            ),
            (&self.deliveries, vec![forget_deliveries]),
            (&self.sessions, vec![forget_sessions]),
            (&self.idempotency, vec![forget_keys]),
        ];
        // The rollups are read by hour range (and the processing one by day range too).
        for (name, key) in [
            (super::rollups::EVENTS, "h"),
            (super::rollups::PROCESSING, "h"),
            (super::rollups::PROCESSING, "day"),
            (super::rollups::FINISHED, "h"),
            (super::rollups::FINISHED, "day"),
        ] {
            let coll = self.database.collection::<Document>(name);
            coll.create_index(ix(doc! { key: 1 }))
                .await
                .map_err(|e| StoreError::setup(format!("creating the indexes of {name}"), e))?;
        }
        for (coll, models) in plan {
            coll.create_indexes(models).await.map_err(|e| {
                StoreError::setup(format!("creating the indexes of {}", coll.name()), e)
            })?;
        }
        Ok(())
    }
}

/// Whether an index is on exactly `{createdAt: 1}` (the only shape a TTL index on it can have).
fn is_created_at_asc(keys: &Document) -> bool {
    keys.len() == 1 && keys.get("createdAt").and_then(num).is_some_and(|v| v == 1)
}

/// Makes the TTL index of `webhookevents` match the configuration: created, changed (collMod, or drop
/// and create when the server refuses) or dropped when retention is unset.
pub(super) async fn apply_retention(
    db: &Database,
    events: &Collection<Document>,
    retention_days: Option<u64>,
) -> StoreResult<()> {
    let want = retention_days.map(|d| d.saturating_mul(86_400).min(MAX_TTL_SECS));
    let mut cursor = events.list_indexes().await?;
    let mut existing: Option<(String, Option<u64>)> = None;
    while cursor.advance().await? {
        let model = cursor.deserialize_current()?;
        if is_created_at_asc(&model.keys) {
            let opts = model.options.unwrap_or_default();
            existing = Some((
                opts.name.unwrap_or_else(|| "createdAt_1".into()),
                opts.expire_after.map(|d| d.as_secs()),
            ));
        }
    }
    let create = |secs: u64| {
        IndexModel::builder()
            .keys(doc! { "createdAt": 1 })
            .options(
                IndexOptions::builder()
                    .expire_after(Duration::from_secs(secs))
                    .build(),
            )
            .build()
    };
    let fail = |e: MongoError| StoreError::setup("applying WEBHOOK_EVENT_RETENTION_DAYS", e);
    match (existing, want) {
        (None, None) => {}
        (None, Some(secs)) => {
            events.create_index(create(secs)).await.map_err(fail)?;
            tracing::info!(target: "webhook_logger", expire_after_secs = secs, "created the webhook event TTL index");
        }
        (Some((name, Some(_))), None) => {
            events.drop_index(&name).await.map_err(fail)?;
            tracing::info!(target: "webhook_logger", index = %name, "retention unset: dropped the webhook event TTL index");
        }
        (Some((_, None)), None) => {}
        (Some((_, Some(have))), Some(secs)) if have == secs => {}
        (Some((name, _)), Some(secs)) => {
            let modified = db
                .run_command(doc! {
                    "collMod": EVENTS,
                    "index": { "name": &name, "expireAfterSeconds": secs as i64 },
                })
                .await;
            if let Err(e) = modified {
                tracing::info!(target: "webhook_logger", error = %e, "collMod refused; recreating the TTL index");
                events.drop_index(&name).await.map_err(fail)?;
                events.create_index(create(secs)).await.map_err(fail)?;
            }
            tracing::info!(target: "webhook_logger", expire_after_secs = secs, "changed the webhook event TTL index");
        }
    }
    Ok(())
}
