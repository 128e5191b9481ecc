//! Notification settings (a `notificationSettings` field of the workspace's document) and the
//! `notifications` outbox (see `ssr::notify`).

use super::docs::{date, form, oid, read};
use super::txn::{Attempt, Step};
use super::{collect, MongoStore};
use crate::model::notify::{
    Attempted, Channel, DeliveryStatus, Notification, NotificationSettings,
};
use crate::model::{AiVideo, ObjectId, Timestamp};
use crate::ssr::store::{NotificationQuery, NotificationStore, StoreError, StoreResult};
use async_trait::async_trait;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::Hint;
use mongodb::ClientSession;
use serde::Deserialize;

pub(super) const NOTIFICATIONS: &str = "notifications";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NotificationDoc {
    #[serde(rename = "_id", deserialize_with = "form::oid")]
    id: ObjectId,
    #[serde(deserialize_with = "form::oid")]
    workspace_id: ObjectId,
    channel: String,
    event_type: String,
    #[serde(default, deserialize_with = "form::opt_oid")]
    video_id: Option<ObjectId>,
    status: String,
    #[serde(default, deserialize_with = "form::opt_u32")]
    attempts: Option<u32>,
    #[serde(default)]
    last_error: Option<String>,
    #[serde(deserialize_with = "form::date")]
    next_attempt_at: Timestamp,
    #[serde(default, deserialize_with = "form::opt_date")]
    delivered_at: Option<Timestamp>,
    #[serde(deserialize_with = "form::date")]
    created_at: Timestamp,
    #[serde(deserialize_with = "form::date")]
    updated_at: Timestamp,
    /// Kept as JSON text: any body, whatever its keys.
    body: String,
    dedupe_key: String,
}

fn notification(d: Document) -> StoreResult<Notification> {
    let n = read::<NotificationDoc>(d, "notification")?;
    Ok(Notification {
        id: n.id,
        workspace_id: n.workspace_id,
        channel: Channel::parse(&n.channel)
            .ok_or_else(|| StoreError::Corrupt(format!("notification {}: channel", n.id)))?,
        event_type: n.event_type,
        video_id: n.video_id,
        status: DeliveryStatus::parse(&n.status)
            .ok_or_else(|| StoreError::Corrupt(format!("notification {}: status", n.id)))?,
        attempts: n.attempts.unwrap_or(0),
        last_error: n.last_error,
        next_attempt_at: n.next_attempt_at,
        delivered_at: n.delivered_at,
        created_at: n.created_at,
        updated_at: n.updated_at,
        body: serde_json::from_str(&n.body).unwrap_or(serde_json::Value::Null),
        dedupe_key: n.dedupe_key,
    })
}

pub(super) fn notification_doc(n: &Notification) -> Document {
    doc! {
        "_id": oid(n.id),
        "workspaceId": oid(n.workspace_id),
        "channel": n.channel.as_str(),
        "eventType": &n.event_type,
        "videoId": n.video_id.map(|v| Bson::ObjectId(oid(v))).unwrap_or(Bson::Null),
        "status": n.status.as_str(),
        "attempts": n.attempts as i64,
        "lastError": n.last_error.clone().map(Bson::String).unwrap_or(Bson::Null),
        "nextAttemptAt": date(n.next_attempt_at),
        "deliveredAt": n.delivered_at.map(|t| Bson::DateTime(date(t))).unwrap_or(Bson::Null),
        "createdAt": date(n.created_at),
        "updatedAt": date(n.updated_at),
        "body": n.body.to_string(),
        "dedupeKey": &n.dedupe_key,
        "lease": Bson::Null,
        "leaseUntil": Bson::Null,
    }
}

fn list_filter(q: &NotificationQuery) -> (Document, Document) {
    let mut f = doc! { "channel": { "$ne": "fanout" } };
    if let Some(s) = q.status {
        f.insert("status", s.as_str());
    }
    let index = match q.workspace_id {
        Some(w) => {
            f.insert("workspaceId", oid(w));
            doc! { "workspaceId": 1, "createdAt": -1, "_id": -1 }
        }
        None => doc! { "createdAt": -1, "_id": -1 },
    };
    (f, index)
}

impl MongoStore {
    /// Adds rows in the session's transaction, skipping known `dedupeKey`s (one at a time, so a
    /// duplicate does not abort the transaction's other writes).
    pub(super) async fn insert_notifications_in(
        &self,
        s: &mut ClientSession,
        rows: &[Notification],
    ) -> Result<u64, super::txn::TxnError> {
        let mut n = 0;
        for r in rows {
            let known = self
                .notifications
                .find_one(doc! { "dedupeKey": &r.dedupe_key })
                .hint(Hint::Keys(doc! { "dedupeKey": 1 }))
                .session(&mut *s)
                .await?;
            if known.is_none() {
                self.notifications
                    .insert_one(notification_doc(r))
                    .session(&mut *s)
                    .await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// The update of an attempt's outcome, only while the row is leased by `lease`.
    fn finish_update(outcome: &Attempted, now: Timestamp) -> Document {
        let now = date(now);
        match outcome {
            Attempted::Delivered => doc! {
                "$set": { "status": "delivered", "deliveredAt": now, "updatedAt": now,
                          "lastError": Bson::Null, "lease": Bson::Null, "leaseUntil": Bson::Null },
                "$inc": { "attempts": 1i64 },
            },
            Attempted::Retry { at, error } => doc! {
                "$set": { "nextAttemptAt": date(*at), "lastError": error, "updatedAt": now,
                          "lease": Bson::Null, "leaseUntil": Bson::Null },
                "$inc": { "attempts": 1i64 },
            },
            Attempted::Failed { error } => doc! {
                "$set": { "status": "failed", "lastError": error, "updatedAt": now,
                          "lease": Bson::Null, "leaseUntil": Bson::Null },
                "$inc": { "attempts": 1i64 },
            },
        }
    }

    async fn expand_attempt(
        &self,
        s: &mut ClientSession,
        lease: &str,
        expanded: &[(ObjectId, Vec<Notification>)],
        now: Timestamp,
    ) -> Attempt<u64> {
        let mut closed = 0;
        for (id, rows) in expanded {
            let r = self
                .notifications
                .update_one(
                    doc! { "_id": oid(*id), "lease": lease, "status": "pending" },
                    Self::finish_update(&Attempted::Delivered, now),
                )
                .hint(Hint::Keys(doc! { "_id": 1 }))
                .session(&mut *s)
                .await?;
            if r.matched_count == 1 {
                self.insert_notifications_in(s, rows).await?;
                closed += 1;
            }
        }
        Ok(if closed == 0 {
            Step::Abort(0)
        } else {
            Step::Commit(closed)
        })
    }

    async fn insert_attempt(&self, s: &mut ClientSession, rows: &[Notification]) -> Attempt<u64> {
        Ok(Step::Commit(self.insert_notifications_in(s, rows).await?))
    }
}

#[async_trait]
impl NotificationStore for MongoStore {
    async fn notification_settings(
        &self,
        ws: ObjectId,
    ) -> StoreResult<Option<NotificationSettings>> {
        let found = self
            .workspaces
            .find_one(doc! { "_id": oid(ws) })
            .projection(doc! { "notificationSettings": 1 })
            .await?;
        Ok(found
            .and_then(|d| d.get_str("notificationSettings").ok().map(str::to_string))
            .and_then(|s| serde_json::from_str(&s).ok()))
    }

    async fn put_notification_settings(
        &self,
        ws: ObjectId,
        s: &NotificationSettings,
    ) -> StoreResult<()> {
        let text = serde_json::to_string(s).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.workspaces
            .update_one(
                doc! { "_id": oid(ws) },
                doc! { "$set": { "notificationSettings": text } },
            )
            .await?;
        Ok(())
    }

    async fn insert_notifications(&self, rows: &[Notification]) -> StoreResult<u64> {
        let rows = rows.to_vec();
        transaction!(self, |s| self.insert_attempt(s, &rows))
    }

    async fn claim_notifications(
        &self,
        now: Timestamp,
        lease_for: std::time::Duration,
        lease: &str,
        limit: u32,
    ) -> StoreResult<Vec<Notification>> {
        let until = Timestamp::from_millis(now.millis() + lease_for.as_millis() as i64);
        let mut out = Vec::new();
        for _ in 0..limit {
            let claimed = self
                .notifications
                .find_one_and_update(
                    doc! {
                        "status": "pending",
                        "nextAttemptAt": { "$lte": date(now) },
                        "$or": [ { "leaseUntil": Bson::Null }, { "leaseUntil": { "$lt": date(now) } } ],
                    },
                    doc! { "$set": { "lease": lease, "leaseUntil": date(until) } },
                )
                .sort(doc! { "status": 1, "nextAttemptAt": 1 })
                .hint(Hint::Keys(doc! { "status": 1, "nextAttemptAt": 1 }))
                .return_document(mongodb::options::ReturnDocument::After)
                .await;
            match claimed {
                Ok(Some(d)) => out.push(notification(d)?),
                Ok(None) => break,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    async fn finish_notification(
        &self,
        id: ObjectId,
        lease: &str,
        outcome: &Attempted,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let r = self
            .notifications
            .update_one(
                doc! { "_id": oid(id), "lease": lease, "status": "pending" },
                Self::finish_update(outcome, now),
            )
            .hint(Hint::Keys(doc! { "_id": 1 }))
            .await?;
        Ok(r.matched_count == 1)
    }

    async fn expand_notifications(
        &self,
        lease: &str,
        expanded: &[(ObjectId, Vec<Notification>)],
        now: Timestamp,
    ) -> StoreResult<u64> {
        let (lease, expanded) = (lease.to_string(), expanded.to_vec());
        transaction!(self, |s| self.expand_attempt(s, &lease, &expanded, now))
    }

    async fn page_notifications(&self, q: &NotificationQuery) -> StoreResult<Vec<Notification>> {
        let (filter, index) = list_filter(q);
        let page = crate::ssr::store::PageSpec {
            page: q.page,
            limit: q.limit,
        };
        super::page_of(&self.notifications, filter, index, page, None, notification).await
    }

    async fn count_notifications(&self, q: &NotificationQuery) -> StoreResult<u64> {
        let (filter, index) = list_filter(q);
        super::count_of(&self.notifications, filter, index).await
    }

    async fn find_notification(&self, id: ObjectId) -> StoreResult<Option<Notification>> {
        self.notifications
            .find_one(doc! { "_id": oid(id) })
            .hint(Hint::Keys(doc! { "_id": 1 }))
            .await?
            .map(notification)
            .transpose()
    }

    async fn redeliver_notification(
        &self,
        id: ObjectId,
        now: Timestamp,
    ) -> StoreResult<Option<Notification>> {
        self.notifications
            .update_one(
                doc! { "_id": oid(id), "channel": { "$ne": "fanout" } },
                doc! { "$set": { "status": "pending", "nextAttemptAt": date(now), "updatedAt": date(now),
                                 "lease": Bson::Null, "leaseUntil": Bson::Null } },
            )
            .hint(Hint::Keys(doc! { "_id": 1 }))
            .await?;
        self.find_notification(id).await
    }

    async fn videos_of_batch(&self, token_hash: &str) -> StoreResult<Vec<AiVideo>> {
        let cursor = self
            .videos
            .find(doc! { "callbackTokenHash": token_hash })
            .hint(Hint::Keys(doc! { "callbackTokenHash": 1 }))
            .limit(500)
            .await?;
        collect(cursor, super::videos::video).await
    }

    async fn pending_notifications(&self) -> StoreResult<u64> {
        super::count_of(
            &self.notifications,
            doc! { "status": "pending" },
            doc! { "status": 1, "nextAttemptAt": 1 },
        )
        .await
    }
}
