//! `notification_settings` and the `notifications` outbox (see `ssr::notify`).

use super::videos::{video_row, VIDEO_COLUMNS};
use super::{json, oid, to_json, ts, SqliteStore};
use crate::model::notify::{
    Attempted, Channel, DeliveryStatus, Notification, NotificationSettings,
};
use crate::model::{AiVideo, ObjectId, Timestamp};
use crate::ssr::store::{NotificationQuery, NotificationStore, StoreResult};
use async_trait::async_trait;
use rusqlite::{named_params, Connection, OptionalExtension, Row};

const COLUMNS: &str =
    "id, workspace_id, channel, event_type, video_id, status, attempts, last_error,
     next_attempt_at, delivered_at, created_at, updated_at, body, dedupe_key";
/// See [`may_notify`]; `temp.notify_policy` is the writer connection's own (made at open).
const MAY_NOTIFY: &str = "SELECT (SELECT email FROM temp.notify_policy)
     OR EXISTS (SELECT 1 FROM notification_settings WHERE workspace_id = :ws
                AND (json_extract(settings, '$.slackWebhookUrl') IS NOT NULL
                     OR json_extract(settings, '$.discordWebhookUrl') IS NOT NULL
                     OR json_extract(settings, '$.webhookUrl') IS NOT NULL))";
/// Made on the writer connection at open: email on until the server says otherwise.
pub(super) const NOTIFY_POLICY: &str = "CREATE TEMP TABLE notify_policy (email INTEGER NOT NULL);
     INSERT INTO temp.notify_policy (email) VALUES (1);";
const GET_SETTINGS: &str = "SELECT settings FROM notification_settings WHERE workspace_id = :ws";
const PUT_SETTINGS: &str =
    "INSERT INTO notification_settings (workspace_id, settings) VALUES (:ws, :s)
     ON CONFLICT (workspace_id) DO UPDATE SET settings = excluded.settings";
const INSERT: &str = "INSERT OR IGNORE INTO notifications
     (id, workspace_id, channel, event_type, video_id, status, attempts, last_error, next_attempt_at,
      delivered_at, created_at, updated_at, body, dedupe_key)
     VALUES (:id, :ws, :channel, :event_type, :video_id, :status, :attempts, :last_error, :next,
      :delivered_at, :created_at, :updated_at, :body, :dedupe_key)";
const DELIVERED: &str = "UPDATE notifications
     SET status = 'delivered', attempts = attempts + 1, delivered_at = :now, updated_at = :now,
         last_error = NULL, lease = NULL, lease_until = NULL
     WHERE id = :id AND lease = :lease AND status = 'pending'";
const RETRY: &str = "UPDATE notifications
     SET attempts = attempts + 1, next_attempt_at = :at, last_error = :error, updated_at = :now,
         lease = NULL, lease_until = NULL
     WHERE id = :id AND lease = :lease AND status = 'pending'";
const FAILED: &str = "UPDATE notifications
     SET status = 'failed', attempts = attempts + 1, last_error = :error, updated_at = :now,
         lease = NULL, lease_until = NULL
     WHERE id = :id AND lease = :lease AND status = 'pending'";
const REDELIVER: &str = "UPDATE notifications
     SET status = 'pending', next_attempt_at = :now, updated_at = :now, lease = NULL, lease_until = NULL
     WHERE id = :id AND channel != 'fanout'";
const PENDING: &str = "SELECT COUNT(*) FROM notifications WHERE status = 'pending'";

fn row(r: &Row) -> rusqlite::Result<Notification> {
    let channel: String = r.get(2)?;
    let status: String = r.get(5)?;
    Ok(Notification {
        id: oid(r.get(0)?)?,
        workspace_id: oid(r.get(1)?)?,
        channel: Channel::parse(&channel)
            .ok_or_else(|| super::corrupt(format!("channel {channel}")))?,
        event_type: r.get(3)?,
        video_id: r.get::<_, Option<String>>(4)?.map(oid).transpose()?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| super::corrupt(format!("delivery status {status}")))?,
        attempts: r.get(6)?,
        last_error: r.get(7)?,
        next_attempt_at: ts(r.get(8)?)?,
        delivered_at: r.get::<_, Option<String>>(9)?.map(ts).transpose()?,
        created_at: ts(r.get(10)?)?,
        updated_at: ts(r.get(11)?)?,
        body: json(r.get(12)?)?,
        dedupe_key: r.get(13)?,
    })
}

/// Whether a finished video of workspace `ws` can lead to any notification: email is on for this
/// server (see [`SqliteStore::set_email_notifications`]), or the workspace has a Slack, Discord or
/// webhook URL. When not, no fan-out row is queued: it would turn into nothing, and under load the
/// outbox's claims and expansions would take a share of the one writer for it.
pub(super) fn may_notify(c: &Connection, ws: ObjectId) -> rusqlite::Result<bool> {
    c.prepare_cached(MAY_NOTIFY)?
        .query_row(named_params! { ":ws": ws.to_string() }, |r| r.get(0))
}

/// Adds rows, skipping known `dedupe_key`s; how many were new. Also used by the status changes
/// (their fan-out row, in their transaction).
pub(super) fn insert(c: &Connection, rows: &[Notification]) -> rusqlite::Result<u64> {
    let mut n = 0;
    for x in rows {
        n += c.prepare_cached(INSERT)?.execute(named_params! {
            ":id": x.id.to_string(),
            ":ws": x.workspace_id.to_string(),
            ":channel": x.channel.as_str(),
            ":event_type": x.event_type,
            ":video_id": x.video_id.map(|v| v.to_string()),
            ":status": x.status.as_str(),
            ":attempts": x.attempts,
            ":last_error": x.last_error,
            ":next": x.next_attempt_at.to_string(),
            ":delivered_at": x.delivered_at.map(|t| t.to_string()),
            ":created_at": x.created_at.to_string(),
            ":updated_at": x.updated_at.to_string(),
            ":body": to_json(&x.body),
            ":dedupe_key": x.dedupe_key,
        })? as u64;
    }
    Ok(n)
}

fn finish(
    c: &Connection,
    id: ObjectId,
    lease: &str,
    outcome: &Attempted,
    now: Timestamp,
) -> rusqlite::Result<bool> {
    let (id, now) = (id.to_string(), now.to_string());
    let n = match outcome {
        Attempted::Delivered => c
            .prepare_cached(DELIVERED)?
            .execute(named_params! { ":id": id, ":lease": lease, ":now": now })?,
        Attempted::Retry { at, error } => c.prepare_cached(RETRY)?.execute(named_params! {
            ":id": id, ":lease": lease, ":now": now, ":at": at.to_string(), ":error": error,
        })?,
        Attempted::Failed { error } => c.prepare_cached(FAILED)?.execute(named_params! {
            ":id": id, ":lease": lease, ":now": now, ":error": error,
        })?,
    };
    Ok(n == 1)
}

/// The delivery log's statement: fan-out rows never listed; optional filters.
fn list_sql(count: bool) -> String {
    let head = if count {
        "SELECT COUNT(*)".to_string()
    } else {
        format!("SELECT {COLUMNS}")
    };
    let tail = if count {
        ""
    } else {
        " ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset"
    };
    format!(
        "{head} FROM notifications WHERE channel != 'fanout'
           AND (:ws IS NULL OR workspace_id = :ws) AND (:status IS NULL OR status = :status){tail}"
    )
}

#[async_trait]
impl NotificationStore for SqliteStore {
    async fn notification_settings(
        &self,
        ws: ObjectId,
    ) -> StoreResult<Option<NotificationSettings>> {
        self.read(move |c| {
            Ok(c.prepare_cached(GET_SETTINGS)?
                .query_row(named_params! { ":ws": ws.to_string() }, |r| {
                    json::<NotificationSettings>(r.get(0)?)
                })
                .optional()?)
        })
        .await
    }

    async fn put_notification_settings(
        &self,
        ws: ObjectId,
        s: &NotificationSettings,
    ) -> StoreResult<()> {
        let s = to_json(s);
        self.write(move |t| {
            t.prepare_cached(PUT_SETTINGS)?
                .execute(named_params! { ":ws": ws.to_string(), ":s": s })?;
            Ok(())
        })
        .await
    }

    async fn insert_notifications(&self, rows: &[Notification]) -> StoreResult<u64> {
        let rows = rows.to_vec();
        self.write(move |t| Ok(insert(t, &rows)?)).await
    }

    async fn claim_notifications(
        &self,
        now: Timestamp,
        lease_for: std::time::Duration,
        lease: &str,
        limit: u32,
    ) -> StoreResult<Vec<Notification>> {
        let lease = lease.to_string();
        let until = Timestamp::from_millis(now.millis() + lease_for.as_millis() as i64);
        self.write(move |t| {
            let sql = format!(
                "UPDATE notifications SET lease = :lease, lease_until = :until
                 WHERE id IN (SELECT id FROM notifications
                              WHERE status = 'pending' AND next_attempt_at <= :now
                                AND (lease_until IS NULL OR lease_until < :now)
                              ORDER BY next_attempt_at LIMIT :limit)
                 RETURNING {COLUMNS}"
            );
            let mut stmt = t.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(
                    named_params! {
                        ":lease": lease, ":until": until.to_string(), ":now": now.to_string(),
                        ":limit": limit,
                    },
                    row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn finish_notification(
        &self,
        id: ObjectId,
        lease: &str,
        outcome: &Attempted,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (lease, outcome) = (lease.to_string(), outcome.clone());
        self.write(move |t| Ok(finish(t, id, &lease, &outcome, now)?))
            .await
    }

    async fn expand_notifications(
        &self,
        lease: &str,
        expanded: &[(ObjectId, Vec<Notification>)],
        now: Timestamp,
    ) -> StoreResult<u64> {
        let (lease, expanded) = (lease.to_string(), expanded.to_vec());
        self.write(move |t| {
            let mut closed = 0;
            for (id, rows) in &expanded {
                if finish(t, *id, &lease, &Attempted::Delivered, now)? {
                    insert(t, rows)?;
                    closed += 1;
                }
            }
            Ok(closed)
        })
        .await
    }

    async fn page_notifications(&self, q: &NotificationQuery) -> StoreResult<Vec<Notification>> {
        let q = q.clone();
        self.read(move |c| {
            let offset = q.page.saturating_sub(1).saturating_mul(q.limit);
            let mut stmt = c.prepare_cached(&list_sql(false))?;
            let rows = stmt
                .query_map(
                    named_params! {
                        ":ws": q.workspace_id.map(|w| w.to_string()),
                        ":status": q.status.map(|s| s.as_str()),
                        ":limit": i64::try_from(q.limit).unwrap_or(i64::MAX),
                        ":offset": i64::try_from(offset).unwrap_or(i64::MAX),
                    },
                    row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn count_notifications(&self, q: &NotificationQuery) -> StoreResult<u64> {
        let q = q.clone();
        self.read(move |c| {
            Ok(c.prepare_cached(&list_sql(true))?.query_row(
                named_params! {
                    ":ws": q.workspace_id.map(|w| w.to_string()),
                    ":status": q.status.map(|s| s.as_str()),
                },
                |r| r.get::<_, u64>(0),
            )?)
        })
        .await
    }

    async fn find_notification(&self, id: ObjectId) -> StoreResult<Option<Notification>> {
        self.read(move |c| Ok(by_id(c, id)?)).await
    }

    async fn redeliver_notification(
        &self,
        id: ObjectId,
        now: Timestamp,
    ) -> StoreResult<Option<Notification>> {
        self.write(move |t| {
            t.prepare_cached(REDELIVER)?
                .execute(named_params! { ":id": id.to_string(), ":now": now.to_string() })?;
            Ok(by_id(t, id)?)
        })
        .await
    }

    async fn videos_of_batch(&self, token_hash: &str) -> StoreResult<Vec<AiVideo>> {
        let sql = format!(
            "SELECT {VIDEO_COLUMNS} FROM aivideos WHERE callback_token_hash = :h ORDER BY id LIMIT 500"
        );
        let h = token_hash.to_string();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(named_params! { ":h": h }, video_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn pending_notifications(&self) -> StoreResult<u64> {
        self.read(|c| Ok(c.prepare_cached(PENDING)?.query_row([], |r| r.get(0))?))
            .await
    }
}

fn by_id(c: &Connection, id: ObjectId) -> rusqlite::Result<Option<Notification>> {
    let sql = format!("SELECT {COLUMNS} FROM notifications WHERE id = :id");
    c.prepare_cached(&sql)?
        .query_row(named_params! { ":id": id.to_string() }, row)
        .optional()
}
