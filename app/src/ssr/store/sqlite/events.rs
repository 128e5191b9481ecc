//! `webhook_events`: the audit log of every `/internal/*` call, and applying a callback.

use super::videos::{load, write_video};
use super::{all, json, oid, to_json, ts, SqliteStore};
use crate::model::plan::{plan_duplicate, plan_webhook, Delivery};
use crate::model::webhook::{CallbackAuth, VideoChange};
use crate::model::{LiveChange, ObjectId, Timestamp, WebhookEvent};
use crate::ssr::store::{
    Applied, EventDraft, EventQuery, EventStore, StoreResult, DELIVERY_MEMORY_MS,
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
/// Expired deliveries go a few at a time with new ones (`FORGET_EVERY`), so the table stays at
/// about a day of them.
const FORGET_DELIVERIES: &str = "DELETE FROM webhook_deliveries WHERE id IN (
         SELECT id FROM webhook_deliveries WHERE created_at < :since ORDER BY created_at LIMIT 64)";
/// Every 16th new delivery forgets up to 64 expired ones: four for each one added, so the table
/// cannot grow past a day of deliveries, and 15 callbacks in 16 skip the statement. "Every 16th"
/// is read from the new row's rowid, which each insert takes one past the highest (the oldest rows
/// are the ones that go), so it needs no counter of its own and holds per store.
const FORGET_EVERY: i64 = 16;

/// Oldest first and bounded, so one run of retention never holds the writer for long.
const PURGE: &str = "DELETE FROM webhook_events WHERE id IN (
         SELECT id FROM webhook_events WHERE created_at < :before ORDER BY created_at LIMIT :max)";

// The log, newest first, by keyset: rows before `(:before_at, :before_id)` (the page's start: a
// cursor, `to`, or the end of time) and from `:from` on; each filter shape has a statement of its
// own, so it reads its index as a range.
const PAGE_ALL: &str = "SELECT id, endpoint, payload, video_id, status_code, outcome, created_at
     FROM webhook_events
     WHERE (created_at, id) < (:before_at, :before_id) AND created_at >= :from
     ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset";
const PAGE_OF_ENDPOINT: &str =
    "SELECT id, endpoint, payload, video_id, status_code, outcome, created_at
     FROM webhook_events
     WHERE endpoint = :endpoint AND (created_at, id) < (:before_at, :before_id) AND created_at >= :from
     ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset";
const PAGE_OF_VIDEO: &str =
    "SELECT id, endpoint, payload, video_id, status_code, outcome, created_at
     FROM webhook_events
     WHERE video_id = :video_id AND (created_at, id) < (:before_at, :before_id) AND created_at >= :from
       AND (:endpoint IS NULL OR endpoint = :endpoint)
     ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset";
// Counts take no keyset: plain time bounds (a row-value bound costs twice as much per row), and the
// whole log is counted on its smallest index.
const COUNT_EVERYTHING: &str = "SELECT COUNT(*) FROM webhook_events";
const COUNT_ALL: &str = "SELECT COUNT(*) FROM webhook_events
     WHERE created_at < :before_at AND created_at >= :from";
const COUNT_OF_ENDPOINT: &str = "SELECT COUNT(*) FROM webhook_events
     WHERE endpoint = :endpoint AND created_at < :before_at AND created_at >= :from";
const COUNT_OF_VIDEO: &str = "SELECT COUNT(*) FROM webhook_events
     WHERE video_id = :video_id AND created_at < :before_at AND created_at >= :from
       AND (:endpoint IS NULL OR endpoint = :endpoint)";

/// The bounds of a query: `(before_at, before_id)` and `from`, as stored text. Every stored
/// timestamp sorts between `""` and `"~"`, every id before `"~"`.
fn bounds(q: &EventQuery, keyset: bool) -> (String, String, String) {
    let to = q.to.map(|t| (t.to_string(), String::new()));
    let cursor = keyset
        .then_some(q.after)
        .flatten()
        .map(|k| (k.at.to_string(), k.id.to_string()));
    let (at, id) = match (to, cursor) {
        (Some(t), Some(c)) => t.min(c),
        (Some(b), None) | (None, Some(b)) => b,
        (None, None) => ("~".into(), "~".into()),
    };
    let from = q.from.map(|t| t.to_string()).unwrap_or_default();
    (at, id, from)
}

/// The statement for the filter's shape.
fn statement(q: &EventQuery, page: bool) -> &'static str {
    match (&q.video_id, &q.endpoint, page) {
        (Some(_), _, true) => PAGE_OF_VIDEO,
        (Some(_), _, false) => COUNT_OF_VIDEO,
        (None, Some(_), true) => PAGE_OF_ENDPOINT,
        (None, Some(_), false) => COUNT_OF_ENDPOINT,
        (None, None, true) => PAGE_ALL,
        (None, None, false) if q.from.is_none() && q.to.is_none() => COUNT_EVERYTHING,
        (None, None, false) => COUNT_ALL,
    }
}

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
    let n = c.prepare_cached(INSERT)?.execute(named_params! {
        ":id": e.id.to_string(),
        ":endpoint": e.endpoint,
        ":payload": to_json(&e.payload),
        ":video_id": e.video_id,
        ":status_code": e.status_code,
        ":outcome": e.outcome,
        ":created_at": e.created_at.to_string(),
    })?;
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
                Some(first) => plan_duplicate(loaded, first, draft.clone()),
                None => {
                    let plan = plan_webhook(loaded, &change, &auth, draft.clone());
                    if let Some(id) = auth.delivery_id() {
                        let d = Delivery::answered(id, &plan.event);
                        tx.prepare_cached(INSERT_DELIVERY)?.execute(named_params! {
                            ":id": d.id,
                            ":status_code": d.status_code,
                            ":outcome": d.outcome,
                            ":created_at": at.to_string(),
                        })?;
                        if tx.last_insert_rowid() % FORGET_EVERY == 0 {
                            tx.prepare_cached(FORGET_DELIVERIES)?
                                .execute(named_params! { ":since": since })?;
                        }
                    }
                    plan
                }
            };
            let mut changes = Vec::new();
            if let Some(w) = &plan.write {
                write_video(tx, w)?;
                changes.push(LiveChange::video(&w.video));
            }
            insert(tx, &plan.event)?;
            changes.push(LiveChange::event(&plan.event));
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
                    .then(|| LiveChange::event(&event))
                    .into_iter()
                    .collect(),
            ))
        })
        .await
    }

    async fn page_events(&self, q: &EventQuery) -> StoreResult<Vec<WebhookEvent>> {
        let q = q.clone();
        self.read(move |c| {
            let (before_at, before_id, from) = bounds(&q, true);
            let page = q.page_spec();
            let limit = i64::try_from(page.limit).unwrap_or(i64::MAX);
            let offset = i64::try_from(page.offset()).unwrap_or(i64::MAX);
            let mut params: Vec<(&str, &dyn ToSql)> = vec![
                (":before_at", &before_at),
                (":before_id", &before_id),
                (":from", &from),
                (":limit", &limit),
                (":offset", &offset),
            ];
            if let Some(v) = &q.video_id {
                params.push((":video_id", v));
            }
            if q.endpoint.is_some() || q.video_id.is_some() {
                params.push((":endpoint", &q.endpoint));
            }
            all(c, statement(&q, true), &params, event_row)
        })
        .await
    }

    async fn count_events(&self, q: &EventQuery) -> StoreResult<u64> {
        let q = q.clone();
        self.read(move |c| {
            let (before_at, _, from) = bounds(&q, false);
            let sql = statement(&q, false);
            let mut params: Vec<(&str, &dyn ToSql)> = Vec::new();
            if sql != COUNT_EVERYTHING {
                params.extend([(":before_at", &before_at as &dyn ToSql), (":from", &from)]);
            }
            if let Some(v) = &q.video_id {
                params.push((":video_id", v));
            }
            if q.endpoint.is_some() || q.video_id.is_some() {
                params.push((":endpoint", &q.endpoint));
            }
            Ok(c.prepare_cached(sql)?
                .query_row(params.as_slice(), |r| r.get(0))?)
        })
        .await
    }

    async fn find_event(&self, id: ObjectId) -> StoreResult<Option<WebhookEvent>> {
        self.find_by_id(BY_ID, id, event_row).await
    }

    async fn purge_events_before(&self, before: Timestamp, max: u64) -> StoreResult<u64> {
        self.write(move |c| {
            let max = i64::try_from(max).unwrap_or(i64::MAX);
            let n = c
                .prepare_cached(PURGE)?
                .execute(named_params! { ":before": before.to_string(), ":max": max })?;
            Ok(n as u64)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A signed callback for a video that does not exist, delivery `id`, at `at`.
    async fn deliver(s: &SqliteStore, id: String, at: Timestamp) -> Applied {
        let video = ObjectId::new();
        let draft = EventDraft {
            id: ObjectId::new(),
            endpoint: "/videos/failure".into(),
            payload: serde_json::json!({ "videoId": video.to_string() }),
            video_id: Some(video.to_string()),
            created_at: at,
            note: None,
        };
        let change = VideoChange::Fail { error: "x".into() };
        s.apply_webhook(video, &change, &CallbackAuth::Signed(id), draft)
            .await
            .unwrap()
    }

    /// How many deliveries are remembered, and how many of them arrived before `before`.
    async fn deliveries(s: &SqliteStore, before: Timestamp) -> (i64, i64) {
        let before = before.to_string();
        s.write(move |t| {
            let all = "SELECT count(*) FROM webhook_deliveries";
            let expired = "SELECT count(*) FROM webhook_deliveries WHERE created_at < :before";
            Ok((
                t.query_row(all, [], |r| r.get(0))?,
                t.query_row(expired, named_params! {":before": before}, |r| r.get(0))?,
            ))
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn deliveries_are_forgotten_a_day_later_however_many_arrive() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        let day_one = Timestamp::from_millis(1_700_000_000_000);
        for i in 0..100 {
            deliver(&s, format!("msg_old_{i}"), day_one).await;
        }
        // Within the day, a delivery id seen before is a duplicate.
        assert!(matches!(
            deliver(&s, "msg_old_7".into(), day_one).await,
            Applied::Duplicate { .. }
        ));
        let day_two = Timestamp::from_millis(day_one.millis() + DELIVERY_MEMORY_MS + 1);
        for i in 0..100 {
            deliver(&s, format!("msg_new_{i}"), day_two).await;
        }
        // 100 new ones forget at least 6 x 64 expired ones: none of day one is left.
        let horizon = Timestamp::from_millis(day_two.millis() - DELIVERY_MEMORY_MS);
        assert_eq!(deliveries(&s, horizon).await, (100, 0));
        // And a day-one id is new again.
        assert!(matches!(
            deliver(&s, "msg_old_7".into(), day_two).await,
            Applied::NotFound
        ));
    }
}
