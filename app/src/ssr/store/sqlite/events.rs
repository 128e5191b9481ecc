//! `webhook_events`: the audit log of every `/internal/*` call, and applying a callback.

use super::videos::{load, write_video};
use super::{json, oid, paged, to_json, ts, SqliteStore};
use crate::model::plan::{plan_duplicate, plan_webhook, Delivery};
use crate::model::webhook::{CallbackAuth, VideoChange};
use crate::model::{LiveChange, ObjectId, Timestamp, WebhookEvent};
use crate::ssr::store::{
    Applied, EventDraft, EventQuery, EventStore, Paged, StoreResult, DELIVERY_MEMORY_MS,
};
use async_trait::async_trait;
use rusqlite::{named_params, Connection, OptionalExtension, Row, ToSql};

const INSERT: &str =
    "INSERT INTO webhook_events (id, endpoint, payload, video_id, status_code, outcome, created_at)
     VALUES (:id, :endpoint, :payload, :video_id, :status_code, :outcome, :created_at)
     ON CONFLICT (id) DO NOTHING";
const BY_ID: &str = "SELECT id, endpoint, payload, video_id, status_code, outcome, created_at
     FROM webhook_events WHERE id = :id";
const DELIVERY: &str = "SELECT id, status_code, outcome FROM webhook_deliveries
     WHERE id = :id AND created_at >= :since";
const INSERT_DELIVERY: &str =
    "INSERT OR REPLACE INTO webhook_deliveries (id, status_code, outcome, created_at)
     VALUES (:id, :status_code, :outcome, :created_at)";
/// A few expired deliveries go with every new one, so the table stays at about a day of them.
const FORGET_DELIVERIES: &str = "DELETE FROM webhook_deliveries WHERE id IN (
         SELECT id FROM webhook_deliveries WHERE created_at < :since ORDER BY created_at LIMIT 16)";

/// Oldest first and bounded, so one run of retention never holds the writer for long.
const PURGE: &str = "DELETE FROM webhook_events WHERE id IN (
         SELECT id FROM webhook_events WHERE created_at < :before ORDER BY created_at LIMIT :max)";

// The log, newest first. The filters are optional (`:x IS NULL OR ...`); a video filter has a
// statement of its own so it reads that video's index.
const COUNT_ALL: &str = "SELECT COUNT(*) FROM webhook_events
     WHERE (:endpoint IS NULL OR endpoint = :endpoint)
       AND (:from IS NULL OR created_at >= :from)
       AND (:to IS NULL OR created_at < :to)";
const PAGE_ALL: &str = "SELECT id, endpoint, payload, video_id, status_code, outcome, created_at
     FROM webhook_events
     WHERE (:endpoint IS NULL OR endpoint = :endpoint)
       AND (:from IS NULL OR created_at >= :from)
       AND (:to IS NULL OR created_at < :to)
     ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset";
const COUNT_OF_VIDEO: &str = "SELECT COUNT(*) FROM webhook_events
     WHERE video_id = :video_id
       AND (:endpoint IS NULL OR endpoint = :endpoint)
       AND (:from IS NULL OR created_at >= :from)
       AND (:to IS NULL OR created_at < :to)";
const PAGE_OF_VIDEO: &str =
    "SELECT id, endpoint, payload, video_id, status_code, outcome, created_at
     FROM webhook_events
     WHERE video_id = :video_id
       AND (:endpoint IS NULL OR endpoint = :endpoint)
       AND (:from IS NULL OR created_at >= :from)
       AND (:to IS NULL OR created_at < :to)
     ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset";

fn event_row(r: &Row) -> rusqlite::Result<WebhookEvent> {
    Ok(WebhookEvent {
        id: oid(r.get(0)?)?,
        endpoint: r.get(1)?,
        payload: json(r.get(2)?)?,
        video_id: r.get(3)?,
        status_code: r.get(4)?,
        outcome: r.get(5)?,
        created_at: ts(r.get(6)?)?,
    })
}

/// Inserts the event unless one with its id is stored; whether it did.
fn insert(c: &Connection, e: &WebhookEvent) -> StoreResult<bool> {
    let n = c.execute(
        INSERT,
        named_params! {
            ":id": e.id.to_string(),
            ":endpoint": e.endpoint,
            ":payload": to_json(&e.payload),
            ":video_id": e.video_id,
            ":status_code": e.status_code,
            ":outcome": e.outcome,
            ":created_at": e.created_at.to_string(),
        },
    )?;
    if n == 1 {
        super::bump_events(c, e.created_at, &e.endpoint, e.status_code, 1)?;
    }
    Ok(n == 1)
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn apply_webhook(
        &self,
        video_id: ObjectId,
        change: &VideoChange,
        auth: &CallbackAuth,
        draft: EventDraft,
    ) -> StoreResult<Applied> {
        let change = change.clone();
        let auth = auth.clone();
        self.write_tx(move |tx| {
            let at = draft.created_at;
            let since = Timestamp::from_millis(at.millis() - DELIVERY_MEMORY_MS).to_string();
            let loaded = load(tx, video_id)?;
            let first = match auth.delivery_id() {
                Some(id) => tx
                    .prepare_cached(DELIVERY)?
                    .query_row(named_params! { ":id": id, ":since": since }, |r| {
                        Ok(Delivery {
                            id: r.get(0)?,
                            status_code: r.get(1)?,
                            outcome: r.get(2)?,
                        })
                    })
                    .optional()?,
                None => None,
            };
            let plan = match first {
                Some(first) => plan_duplicate(loaded, first, draft),
                None => {
                    let plan = plan_webhook(loaded, &change, &auth, draft);
                    if let Some(id) = auth.delivery_id() {
                        let d = Delivery::answered(id, &plan.event);
                        tx.execute(
                            INSERT_DELIVERY,
                            named_params! {
                                ":id": d.id,
                                ":status_code": d.status_code,
                                ":outcome": d.outcome,
                                ":created_at": at.to_string(),
                            },
                        )?;
                        tx.execute(FORGET_DELIVERIES, named_params! { ":since": since })?;
                    }
                    plan
                }
            };
            let mut changes = Vec::new();
            if let Some(w) = &plan.write {
                write_video(tx, w)?;
                changes.push(LiveChange::Video {
                    video: w.video.clone(),
                });
            }
            insert(tx, &plan.event)?;
            changes.push(LiveChange::event(plan.event));
            Ok((plan.applied, changes))
        })
        .await
    }

    async fn insert_event(&self, event: &WebhookEvent) -> StoreResult<()> {
        let event = event.clone();
        self.write_tx(move |tx| {
            let fresh = insert(tx, &event)?;
            Ok((
                (),
                fresh
                    .then(|| LiveChange::event(event))
                    .into_iter()
                    .collect(),
            ))
        })
        .await
    }

    async fn list_events(&self, q: &EventQuery) -> StoreResult<Paged<WebhookEvent>> {
        let q = q.clone();
        self.read(move |c| {
            let from = q.from.map(|t| t.to_string());
            let to = q.to.map(|t| t.to_string());
            let mut filter: Vec<(&str, &dyn ToSql)> =
                vec![(":endpoint", &q.endpoint), (":from", &from), (":to", &to)];
            let page = q.page_spec();
            let (count, page_sql) = match &q.video_id {
                Some(v) => {
                    filter.push((":video_id", v));
                    (COUNT_OF_VIDEO, PAGE_OF_VIDEO)
                }
                None => (COUNT_ALL, PAGE_ALL),
            };
            paged(c, count, page_sql, &filter, page, event_row)
        })
        .await
    }

    async fn find_event(&self, id: ObjectId) -> StoreResult<Option<WebhookEvent>> {
        self.find_by_id(BY_ID, id, event_row).await
    }

    async fn purge_events_before(&self, before: Timestamp, max: u64) -> StoreResult<u64> {
        self.write(move |c| {
            let max = i64::try_from(max).unwrap_or(i64::MAX);
            let n = c.execute(
                PURGE,
                named_params! { ":before": before.to_string(), ":max": max },
            )?;
            Ok(n as u64)
        })
        .await
    }
}
