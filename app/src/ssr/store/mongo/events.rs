//! `webhookevents`: the audit log of every `/internal/*` call, and applying a callback.

use super::docs::{date, delivery_doc, event_doc, oid, read, DeliveryDoc, EventDoc};
use super::txn::{is_duplicate, payload_refused, Attempt, Step};
use super::{all_of, collect, count_of, page_of, MongoStore};
use crate::model::plan::{plan_duplicate, plan_webhook, Delivery};
use crate::model::webhook::{CallbackAuth, VideoChange};
use crate::model::{ObjectId, Timestamp, WebhookEvent};
use crate::ssr::store::{
    Applied, EventDraft, EventQuery, EventStore, StoreError, StoreResult, DELIVERY_MEMORY_MS,
};
use async_trait::async_trait;
use mongodb::bson::{doc, Document};
use mongodb::ClientSession;

fn event(d: Document) -> StoreResult<WebhookEvent> {
    Ok(read::<EventDoc>(d, "webhook event")?.into())
}

/// The index that serves a query of the log (named as a hint).
fn event_index(q: &EventQuery) -> Document {
    match (&q.video_id, &q.endpoint) {
        (Some(_), _) => doc! { "videoId": 1, "createdAt": -1, "_id": -1 },
        (None, Some(_)) => doc! { "endpoint": 1, "createdAt": -1, "_id": -1 },
        (None, None) => doc! { "createdAt": -1, "_id": -1 },
    }
}

fn event_filter(q: &EventQuery) -> Document {
    let mut clauses = Vec::new();
    if let Some(e) = &q.endpoint {
        clauses.push(doc! { "endpoint": e });
    }
    if let Some(v) = &q.video_id {
        clauses.push(doc! { "videoId": v });
    }
    if let Some(t) = q.from {
        clauses.push(doc! { "createdAt": { "$gte": date(t) } });
    }
    if let Some(t) = q.to {
        clauses.push(doc! { "createdAt": { "$lt": date(t) } });
    }
    all_of(clauses)
}

impl MongoStore {
    async fn apply_attempt(
        &self,
        s: &mut ClientSession,
        video_id: ObjectId,
        change: &VideoChange,
        auth: &CallbackAuth,
        draft: &EventDraft,
    ) -> Attempt<Applied> {
        let loaded = self.load(s, video_id).await?;
        let at = draft.created_at;
        let first = match auth.delivery_id() {
            Some(id) => self
                .deliveries
                .find_one(doc! {
                    "_id": id,
                    "createdAt": { "$gte": date(Timestamp::from_millis(at.millis() - DELIVERY_MEMORY_MS)) },
                })
                .session(&mut *s)
                .await?
                .map(|d| read::<DeliveryDoc>(d, "webhook delivery"))
                .transpose()?
                .map(Delivery::from),
            None => None,
        };
        let plan = match first {
            Some(first) => plan_duplicate(loaded, first, draft.clone()),
            None => {
                let plan = plan_webhook(loaded, change, auth, draft.clone());
                if let Some(id) = auth.delivery_id() {
                    // Replaces one older than a day that the TTL index has not removed yet.
                    self.deliveries
                        .replace_one(
                            doc! { "_id": id },
                            delivery_doc(&Delivery::answered(id, &plan.event), at),
                        )
                        .upsert(true)
                        .session(&mut *s)
                        .await?;
                }
                plan
            }
        };
        if let Some(w) = &plan.write {
            if !self.write_video(s, w).await? {
                return Ok(Step::Retry);
            }
        }
        self.events
            .insert_one(event_doc(&plan.event))
            .session(&mut *s)
            .await?;
        if !self.count_event(s, &plan.event).await? {
            return Ok(Step::Retry);
        }
        Ok(Step::Commit(plan.applied))
    }

    /// Records an event and counts it; an event already stored is left as it is.
    async fn insert_event_attempt(
        &self,
        s: &mut ClientSession,
        event: &WebhookEvent,
    ) -> Attempt<()> {
        match self
            .events
            .insert_one(event_doc(event))
            .session(&mut *s)
            .await
        {
            Err(e) if is_duplicate(&e) => return Ok(Step::Abort(())),
            other => other?,
        };
        if !self.count_event(s, event).await? {
            return Ok(Step::Retry);
        }
        Ok(Step::Commit(()))
    }
}

#[async_trait]
impl EventStore for MongoStore {
    async fn apply_webhook(
        &self,
        video_id: ObjectId,
        change: &VideoChange,
        auth: &CallbackAuth,
        event: EventDraft,
    ) -> StoreResult<Applied> {
        let applied = transaction!(self, |s| self
            .apply_attempt(s, video_id, change, auth, &event));
        match applied {
            // The server would not hold this payload as a document: record it as its text.
            Err(StoreError::Mongo(e)) if payload_refused(&e) => {
                let event = event.with_payload_as_text();
                transaction!(self, |s| self
                    .apply_attempt(s, video_id, change, auth, &event))
            }
            other => other,
        }
    }

    async fn insert_event(&self, event: &WebhookEvent) -> StoreResult<()> {
        let inserted = transaction!(self, |s| self.insert_event_attempt(s, event));
        match inserted {
            // The server would not hold this payload as a document: record it as its text.
            Err(StoreError::Mongo(e)) if payload_refused(&e) => {
                let mut as_text = event.clone();
                as_text.payload = serde_json::Value::String(event.payload.to_string());
                transaction!(self, |s| self.insert_event_attempt(s, &as_text))
            }
            other => other,
        }
    }

    async fn page_events(&self, q: &EventQuery) -> StoreResult<Vec<WebhookEvent>> {
        page_of(
            &self.events,
            event_filter(q),
            event_index(q),
            q.page_spec(),
            q.after,
            event,
        )
        .await
    }

    async fn count_events(&self, q: &EventQuery) -> StoreResult<u64> {
        count_of(&self.events, event_filter(q), event_index(q)).await
    }

    async fn find_event(&self, id: ObjectId) -> StoreResult<Option<WebhookEvent>> {
        self.events
            .find_one(doc! { "_id": oid(id) })
            .await?
            .map(event)
            .transpose()
    }

    async fn purge_events_before(&self, before: Timestamp, max: u64) -> StoreResult<u64> {
        if max == 0 {
            return Ok(0);
        }
        // Oldest first and bounded, like SQLite; the TTL index does the regular work.
        let cursor = self
            .events
            .find(doc! { "createdAt": { "$lt": date(before) } })
            .hint(mongodb::options::Hint::Keys(
                doc! { "createdAt": -1, "_id": -1 },
            ))
            .sort(doc! { "createdAt": 1 })
            .limit(i64::try_from(max).unwrap_or(i64::MAX))
            .projection(doc! { "_id": 1 })
            .await?;
        let ids = collect(cursor, |d| {
            d.get("_id")
                .cloned()
                .ok_or_else(|| StoreError::Corrupt("webhook event without _id".into()))
        })
        .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let r = self
            .events
            .delete_many(doc! { "_id": { "$in": ids } })
            .await?;
        Ok(r.deleted_count)
    }
}
