//! `aivideos` and the status changes that keep each video's `product_videos` entry in step.
//!
//! Status changes load ([`load`]), plan (`model::plan`) and write conditionally ([`write_video`]).

use super::{all, find_one, json, oid, parsed, to_json, ts, SqliteStore};
use crate::model::notify::Notification;
use crate::model::plan::{plan_fail, plan_requeue, plan_timeout, Loaded, VideoWrite};
use crate::model::{AiVideo, LiveChange, ObjectId, ProductVideo, Timestamp, VideoMetadata};
use crate::ssr::store::{CounterDelta, StoreError, StoreResult, VideoQuery, VideoStore};
use async_trait::async_trait;
use rusqlite::{named_params, Connection, OptionalExtension, Row, ToSql, Transaction};

/// The columns `video_row` reads, in its order.
pub(super) const VIDEO_COLUMNS: &str = "id, user_id, workspace_id, product_id, template, status, error, metadata, created_at, updated_at,
            callback_token_hash";
const INSERT: &str = "INSERT INTO aivideos
     (id, user_id, workspace_id, product_id, template, status, error, metadata, created_at, updated_at,
      callback_token_hash)
     VALUES (:id, :user_id, :workspace_id, :product_id, :template, :status, :error, :metadata, :created_at,
      :updated_at, :callback_token_hash)";
const INSERT_ENTRY: &str =
    "INSERT INTO product_videos (video_id, product_id, entry) VALUES (:video_id, :product_id, :entry)";
const TOUCH_PRODUCT: &str = "UPDATE products SET updated_at = :at WHERE id = :id";
const BY_ID: &str = "SELECT id, user_id, workspace_id, product_id, template, status, error, metadata, created_at, updated_at,
            callback_token_hash
     FROM aivideos WHERE id = :id";
/// A video and its product entry in one statement (the writer reads both for every callback).
const WITH_ENTRY: &str =
    "SELECT v.id, v.user_id, v.workspace_id, v.product_id, v.template, v.status, v.error,
            v.metadata, v.created_at, v.updated_at, v.callback_token_hash, e.entry
     FROM aivideos v LEFT JOIN product_videos e ON e.video_id = v.id
     WHERE v.id = :id";
const SET_JOB_ID: &str =
    "UPDATE aivideos SET metadata = json_set(metadata, '$.externalJobId', :job)
     WHERE id = :id";
/// The conditional write of a planned change: only if the status is still the one planned from.
/// The callback token is left out: naming a column in SET rewrites its index entry even when the
/// value is the same, and only a requeue changes it ([`UPDATE_TOKEN`]).
const UPDATE_IF_STATUS: &str = "UPDATE aivideos
     SET status = :status, error = :error, metadata = :metadata, updated_at = :updated_at
     WHERE id = :id AND status = :expected";
const UPDATE_TOKEN: &str =
    "UPDATE aivideos SET callback_token_hash = :callback_token_hash WHERE id = :id";
/// The videos still waiting for RCK the longest (the status index, oldest first).
const WAITING_SINCE_BEFORE: &str = "SELECT id FROM aivideos
     WHERE status IN ('pending', 'generating') AND updated_at < :before
     ORDER BY updated_at LIMIT :max";
/// Recent failures with retries left (the status index bounds the scan to the window).
const RETRYABLE_FAILED: &str = "SELECT id, user_id, workspace_id, product_id, template, status, error, metadata, created_at, updated_at,
            callback_token_hash
     FROM aivideos
     WHERE status = 'failed' AND updated_at >= :since AND updated_at < :before
       AND COALESCE(json_extract(metadata, '$.retryCount'), 0) < :max_retries
     ORDER BY updated_at LIMIT :max";
const UPDATE_ENTRY: &str = "UPDATE product_videos SET entry = :entry WHERE video_id = :video_id";

// The list, newest first, by keyset: rows before `(:before_at, :before_id)` (a cursor, or the end of
// time). A workspace or status filter has a statement of its own, so it reads its index as a range;
// the other filters are optional (`:x IS NULL OR ...`).
const PAGE_ALL: &str = "SELECT id, user_id, workspace_id, product_id, template, status, error, metadata, created_at, updated_at,
            callback_token_hash
     FROM aivideos
     WHERE (created_at, id) < (:before_at, :before_id)
       AND (:video_id IS NULL OR id = :video_id)
       AND (:error IS NULL OR substr(error, 1, length(:error)) = :error)
       AND (:stuck_before IS NULL OR (status = 'generating' AND updated_at < :stuck_before))
     ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset";
const PAGE_OF_STATUS: &str = "SELECT id, user_id, workspace_id, product_id, template, status, error, metadata, created_at, updated_at,
            callback_token_hash
     FROM aivideos
     WHERE status = :status AND (created_at, id) < (:before_at, :before_id)
       AND (:video_id IS NULL OR id = :video_id)
       AND (:error IS NULL OR substr(error, 1, length(:error)) = :error)
       AND (:stuck_before IS NULL OR updated_at < :stuck_before)
     ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset";
const PAGE_IN_WORKSPACE: &str = "SELECT id, user_id, workspace_id, product_id, template, status, error, metadata, created_at, updated_at,
            callback_token_hash
     FROM aivideos
     WHERE workspace_id = :workspace_id AND (created_at, id) < (:before_at, :before_id)
       AND (:status IS NULL OR status = :status)
       AND (:video_id IS NULL OR id = :video_id)
       AND (:error IS NULL OR substr(error, 1, length(:error)) = :error)
       AND (:stuck_before IS NULL OR updated_at < :stuck_before)
     ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset";
const COUNT_ALL: &str = "SELECT COUNT(*) FROM aivideos
     WHERE (:video_id IS NULL OR id = :video_id)
       AND (:error IS NULL OR substr(error, 1, length(:error)) = :error)
       AND (:stuck_before IS NULL OR (status = 'generating' AND updated_at < :stuck_before))";
const COUNT_OF_STATUS: &str = "SELECT COUNT(*) FROM aivideos
     WHERE status = :status
       AND (:video_id IS NULL OR id = :video_id)
       AND (:error IS NULL OR substr(error, 1, length(:error)) = :error)
       AND (:stuck_before IS NULL OR updated_at < :stuck_before)";
const COUNT_IN_WORKSPACE: &str = "SELECT COUNT(*) FROM aivideos
     WHERE workspace_id = :workspace_id
       AND (:status IS NULL OR status = :status)
       AND (:video_id IS NULL OR id = :video_id)
       AND (:error IS NULL OR substr(error, 1, length(:error)) = :error)
       AND (:stuck_before IS NULL OR updated_at < :stuck_before)";

/// The status a query selects: its filter, or `generating` for the stuck ones.
fn status_of(q: &VideoQuery) -> Option<&'static str> {
    q.status
        .map(|s| s.as_str())
        .or(q.stuck_before.map(|_| "generating"))
}

/// Runs the statement for the query's shape (`page`: a page of rows, else the count), with its
/// parameters.
fn video_query<T>(
    c: &Connection,
    q: &VideoQuery,
    page: bool,
    run: impl FnOnce(&Connection, &'static str, &[(&str, &dyn ToSql)]) -> StoreResult<T>,
) -> StoreResult<T> {
    let status = status_of(q);
    let stuck_conflicts =
        q.stuck_before.is_some() && q.status.is_some_and(|s| s.as_str() != "generating");
    let video_id = q.video_id.map(|v| v.to_string());
    let error = q.error_prefix.clone();
    let stuck_before = q.stuck_before.map(|t| t.to_string());
    let workspace_id = q.workspace_id.map(|w| w.to_string());
    let (before_at, before_id) = match q.after {
        Some(k) => (k.at.to_string(), k.id.to_string()),
        None => ("~".to_string(), "~".to_string()),
    };
    let spec = q.page_spec();
    let limit = if stuck_conflicts {
        0
    } else {
        i64::try_from(spec.limit).unwrap_or(i64::MAX)
    };
    let offset = i64::try_from(spec.offset()).unwrap_or(i64::MAX);
    let mut params: Vec<(&str, &dyn ToSql)> = vec![
        (":video_id", &video_id),
        (":stuck_before", &stuck_before),
        (":error", &error),
    ];
    if page {
        params.extend([
            (":before_at", &before_at as &dyn ToSql),
            (":before_id", &before_id),
            (":limit", &limit),
            (":offset", &offset),
        ]);
    }
    let sql = match (&workspace_id, status) {
        (Some(ws), _) => {
            params.push((":workspace_id", ws));
            params.push((":status", &status));
            if page {
                PAGE_IN_WORKSPACE
            } else {
                COUNT_IN_WORKSPACE
            }
        }
        (None, Some(_)) => {
            params.push((":status", &status));
            if page {
                PAGE_OF_STATUS
            } else {
                COUNT_OF_STATUS
            }
        }
        (None, None) => {
            if page {
                PAGE_ALL
            } else {
                COUNT_ALL
            }
        }
    };
    if stuck_conflicts && !page {
        return run(c, "SELECT 0", &[]);
    }
    run(c, sql, &params)
}

pub(super) fn video_row(r: &Row) -> rusqlite::Result<AiVideo> {
    Ok(AiVideo {
        id: oid(r.get(0)?)?,
        user_id: oid(r.get(1)?)?,
        workspace_id: oid(r.get(2)?)?,
        product_id: oid(r.get(3)?)?,
        template: r.get(4)?,
        status: parsed(r.get(5)?, "status")?,
        error: r.get(6)?,
        metadata: json::<VideoMetadata>(r.get(7)?)?,
        created_at: ts(r.get(8)?)?,
        updated_at: ts(r.get(9)?)?,
        callback_token_hash: r.get(10)?,
    })
}

/// The video and its product entry, read inside the transaction that will write them.
pub(super) fn load(c: &Connection, id: ObjectId) -> StoreResult<Option<Loaded>> {
    let loaded = c
        .prepare_cached(WITH_ENTRY)?
        .query_row(named_params! { ":id": id.to_string() }, |r| {
            Ok(Loaded {
                video: video_row(r)?,
                entry: r
                    .get::<_, Option<String>>(11)?
                    .map(json::<ProductVideo>)
                    .transpose()?,
            })
        })
        .optional()?;
    Ok(loaded)
}

/// Writes a planned change: the video only if its status is still `expected`, then its entry.
pub(super) fn write_video(tx: &Transaction, w: &VideoWrite) -> StoreResult<()> {
    let v = &w.video;
    let changed = tx
        .prepare_cached(UPDATE_IF_STATUS)?
        .execute(named_params! {
            ":id": v.id.to_string(),
            ":status": v.status.as_str(),
            ":error": v.error,
            ":metadata": to_json(&v.metadata),
            ":updated_at": v.updated_at.to_string(),
            ":expected": w.expected.as_str(),
        })?;
    if changed != 1 {
        // Cannot happen inside an IMMEDIATE transaction, which read the status under the same lock.
        return Err(StoreError::Contended(1));
    }
    if w.token_changed {
        tx.prepare_cached(UPDATE_TOKEN)?.execute(named_params! {
            ":id": v.id.to_string(),
            ":callback_token_hash": v.callback_token_hash,
        })?;
    }
    super::bump_videos(tx, CounterDelta::of_write(w))?;
    if let Some(n) = Notification::fanout_of(v, w.expected, w.at) {
        if super::notifications::may_notify(tx, v.workspace_id)? {
            super::notifications::insert(tx, &[n])?;
        }
    }
    if let Some(e) = &w.entry {
        tx.prepare_cached(UPDATE_ENTRY)?
            .execute(named_params! { ":video_id": v.id.to_string(), ":entry": to_json(e) })?;
        tx.prepare_cached(TOUCH_PRODUCT)?
            .execute(named_params! { ":id": v.product_id.to_string(), ":at": w.at.to_string() })?;
    }
    Ok(())
}

/// Loads each video, plans with `plan`, writes what it planned; returns the changed videos and their
/// live changes (fail and time-out share this).
fn write_each(
    tx: &Transaction,
    ids: impl IntoIterator<Item = ObjectId>,
    plan: impl Fn(Loaded) -> Option<VideoWrite>,
) -> StoreResult<(Vec<AiVideo>, Vec<LiveChange>)> {
    let mut changed = Vec::new();
    for id in ids {
        if let Some(w) = load(tx, id)?.and_then(&plan) {
            write_video(tx, &w)?;
            changed.push(w.video);
        }
    }
    let changes = changed.iter().map(LiveChange::video).collect();
    Ok((changed, changes))
}

#[async_trait]
impl VideoStore for SqliteStore {
    async fn insert_videos(&self, videos: &[AiVideo]) -> StoreResult<()> {
        let videos = videos.to_vec();
        self.write_tx(move |tx| {
            for v in &videos {
                tx.prepare_cached(INSERT)?.execute(named_params! {
                    ":id": v.id.to_string(),
                    ":user_id": v.user_id.to_string(),
                    ":workspace_id": v.workspace_id.to_string(),
                    ":product_id": v.product_id.to_string(),
                    ":template": v.template,
                    ":status": v.status.as_str(),
                    ":error": v.error,
                    ":metadata": to_json(&v.metadata),
                    ":created_at": v.created_at.to_string(),
                    ":updated_at": v.updated_at.to_string(),
                    ":callback_token_hash": v.callback_token_hash,
                })?;
                tx.prepare_cached(INSERT_ENTRY)?.execute(named_params! {
                    ":video_id": v.id.to_string(),
                    ":product_id": v.product_id.to_string(),
                    ":entry": to_json(&ProductVideo::pending_for(v)),
                })?;
                tx.prepare_cached(TOUCH_PRODUCT)?.execute(named_params! {
                    ":id": v.product_id.to_string(),
                    ":at": v.created_at.to_string(),
                })?;
            }
            super::bump_videos(tx, CounterDelta::of_insert(&videos))?;
            let changes = videos.iter().map(LiveChange::video).collect();
            Ok(((), changes))
        })
        .await
    }

    async fn set_job_ids(&self, jobs: &[(ObjectId, String)]) -> StoreResult<()> {
        let jobs = jobs.to_vec();
        self.write_tx(move |tx| {
            let mut changes = Vec::new();
            for (id, job) in &jobs {
                tx.prepare_cached(SET_JOB_ID)?
                    .execute(named_params! { ":id": id.to_string(), ":job": job })?;
                if let Some(video) = find_one(tx, BY_ID, *id, video_row)? {
                    changes.push(LiveChange::video(&video));
                }
            }
            Ok(((), changes))
        })
        .await
    }

    async fn fail_videos(
        &self,
        ids: &[ObjectId],
        reason: &str,
        at: Timestamp,
    ) -> StoreResult<Vec<AiVideo>> {
        let ids = ids.to_vec();
        let reason = reason.to_string();
        self.write_tx(move |tx| write_each(tx, ids.iter().copied(), |l| plan_fail(l, &reason, at)))
            .await
    }

    async fn requeue_video(
        &self,
        id: ObjectId,
        callback_token_hash: Option<String>,
        at: Timestamp,
    ) -> StoreResult<Option<AiVideo>> {
        self.write_tx(move |tx| {
            let Some(w) =
                load(tx, id)?.and_then(|l| plan_requeue(l, callback_token_hash.clone(), at))
            else {
                return Ok((None, Vec::new()));
            };
            write_video(tx, &w)?;
            let change = LiveChange::video(&w.video);
            Ok((Some(w.video), vec![change]))
        })
        .await
    }

    async fn find_video(&self, id: ObjectId) -> StoreResult<Option<AiVideo>> {
        self.find_by_id(BY_ID, id, video_row).await
    }

    async fn fail_timed_out(
        &self,
        before: Timestamp,
        at: Timestamp,
        max: u64,
    ) -> StoreResult<Vec<AiVideo>> {
        self.write_tx(move |tx| {
            let ids = all(
                tx,
                WAITING_SINCE_BEFORE,
                named_params! {
                    ":before": before.to_string(),
                    ":max": i64::try_from(max).unwrap_or(i64::MAX),
                },
                |r| oid(r.get(0)?),
            )?;
            write_each(tx, ids, |l| plan_timeout(l, before, at))
        })
        .await
    }

    async fn retryable_failed(
        &self,
        since: Timestamp,
        before: Timestamp,
        max_retries: u32,
        max: u64,
    ) -> StoreResult<Vec<AiVideo>> {
        self.read(move |c| {
            all(
                c,
                RETRYABLE_FAILED,
                named_params! {
                    ":since": since.to_string(),
                    ":before": before.to_string(),
                    ":max_retries": max_retries,
                    ":max": i64::try_from(max).unwrap_or(i64::MAX),
                },
                video_row,
            )
        })
        .await
    }

    async fn page_videos(&self, q: &VideoQuery) -> StoreResult<Vec<AiVideo>> {
        let q = q.clone();
        self.read(move |c| {
            video_query(c, &q, true, |c, sql, params| all(c, sql, params, video_row))
        })
        .await
    }

    async fn count_videos(&self, q: &VideoQuery) -> StoreResult<u64> {
        let q = q.clone();
        self.read(move |c| {
            video_query(c, &q, false, |c, sql, params| {
                Ok(c.prepare_cached(sql)?.query_row(params, |r| r.get(0))?)
            })
        })
        .await
    }
}
