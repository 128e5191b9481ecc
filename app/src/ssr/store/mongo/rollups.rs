//! The counters behind statistics and the overview, kept in the transaction of every change they
//! count (as on SQLite): `statsevents` (calls per hour, endpoint and 2xx-or-not), `statsvideos`
//! (videos per status) and `statsprocessing` (finished videos per hour, status and processing-time
//! bucket, with the sum of their times).
//!
//! Every counter is split over [`SHARDS`] documents, one picked at random per write, so concurrent
//! transactions seldom touch the same document (a hot counter would make them conflict and retry);
//! reads add the shards up. The first start on a database without them fills them from what is
//! stored (`statsmeta` remembers it was done).

use super::docs::{date, from_oid, num, oid, read, FinishedDoc};
use super::txn::{is_duplicate, TxnError};
use super::{collect, MongoStore};
use crate::model::stats::processing_bucket;
use crate::model::{ObjectId, Timestamp, VideoStatus, WebhookEvent};
use crate::ssr::store::{day_of, hour_of, CounterDelta, FinishedDelta, FinishedVideo, StoreResult};
use mongodb::bson::{doc, Document};
use mongodb::ClientSession;
use std::collections::HashMap;

pub(super) const EVENTS: &str = "statsevents";
pub(super) const VIDEOS: &str = "statsvideos";
pub(super) const PROCESSING: &str = "statsprocessing";
/// Final videos per hour (`h`) and day (`day`), workspace (`ws`), status (`st`) and failure reason
/// (`r`, `model::dashboard::failure_reason`).
pub(super) const FINISHED: &str = "statsfinished";
const META: &str = "statsmeta";
const SHARDS: u32 = 16;

/// A finished counter's `_id`: the reason goes in hashed, so the key stays short whatever the text.
fn finished_key(time: &str, ws: ObjectId, st: VideoStatus, reason: &str, shard: u32) -> String {
    use sha2::{Digest, Sha256};
    let hex = crate::model::hex(&Sha256::digest(reason.as_bytes())[..8]);
    format!("{time}|{ws}|{}|{hex}|{shard}", st.as_str())
}

fn shard() -> u32 {
    use rand::Rng;
    rand::thread_rng().gen_range(0..SHARDS)
}

impl MongoStore {
    /// Adds `n` to a counter document (created on first use); `false` when a concurrent
    /// transaction created it first (the caller runs its transaction again).
    async fn bump(
        &self,
        s: &mut ClientSession,
        coll: &str,
        key: String,
        set_on_insert: Document,
        inc: Document,
    ) -> Result<bool, TxnError> {
        let r = self
            .database
            .collection::<Document>(coll)
            .update_one(
                doc! { "_id": key },
                doc! { "$inc": inc, "$setOnInsert": set_on_insert },
            )
            .upsert(true)
            .session(&mut *s)
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Counts a recorded call.
    pub(super) async fn count_event(
        &self,
        s: &mut ClientSession,
        e: &WebhookEvent,
    ) -> Result<bool, TxnError> {
        let hour = hour_of(e.created_at);
        let accepted = (200..300).contains(&e.status_code);
        self.bump(
            s,
            EVENTS,
            format!("{}|{}|{}|{}", hour.millis(), e.endpoint, accepted, shard()),
            doc! { "h": date(hour), "e": &e.endpoint, "a": accepted },
            doc! { "n": 1i64 },
        )
        .await
    }

    /// Applies a delta of the video counters.
    pub(super) async fn count_videos(
        &self,
        s: &mut ClientSession,
        d: &CounterDelta,
    ) -> Result<bool, TxnError> {
        for (status, n) in &d.statuses {
            if !self
                .bump(
                    s,
                    VIDEOS,
                    format!("{}|{}", status.as_str(), shard()),
                    doc! { "st": status.as_str() },
                    doc! { "n": n },
                )
                .await?
            {
                return Ok(false);
            }
        }
        for (hour, status, bucket, n, sum_ms) in &d.processing {
            let day = day_of(*hour);
            // The hour's counter and the day's (`h` or `day`: a query reads one kind).
            for (key, at) in [
                (format!("{}", hour.millis()), doc! { "h": date(*hour) }),
                (format!("d{}", day.millis()), doc! { "day": date(day) }),
            ] {
                let mut on_insert = at;
                on_insert.insert("st", status.as_str());
                on_insert.insert("b", *bucket as i64);
                if !self
                    .bump(
                        s,
                        PROCESSING,
                        format!("{key}|{}|{}|{}", status.as_str(), bucket, shard()),
                        on_insert,
                        doc! { "n": n, "sum": sum_ms },
                    )
                    .await?
                {
                    return Ok(false);
                }
            }
        }
        for f in &d.finished {
            if !self.bump_finished(s, f).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn bump_finished(
        &self,
        s: &mut ClientSession,
        f: &FinishedDelta,
    ) -> Result<bool, TxnError> {
        for (key, at) in [
            (format!("{}", f.hour.millis()), doc! { "h": date(f.hour) }),
            (
                format!("d{}", day_of(f.hour).millis()),
                doc! { "day": date(day_of(f.hour)) },
            ),
        ] {
            let mut on_insert = at;
            on_insert.insert("ws", oid(f.workspace));
            on_insert.insert("st", f.status.as_str());
            on_insert.insert("r", &f.reason);
            if !self
                .bump(
                    s,
                    FINISHED,
                    finished_key(&key, f.workspace, f.status, &f.reason, shard()),
                    on_insert,
                    doc! { "n": f.n },
                )
                .await?
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Fills the finished rollup from the stored videos, once per database (`statsmeta`
    /// remembers it), streaming them: memory grows with the rollup, not with the videos.
    pub(super) async fn fill_finished(&self) -> StoreResult<()> {
        let db = &self.database;
        let meta = db.collection::<Document>(META);
        if meta.find_one(doc! { "_id": "finished" }).await?.is_some() {
            return Ok(());
        }
        let coll = db.collection::<Document>(FINISHED);
        coll.delete_many(doc! {}).await?;
        let mut cursor = self
            .videos
            .find(doc! { "status": { "$in": ["completed", "failed"] } })
            .hint(mongodb::options::Hint::Keys(
                doc! { "status": 1, "updatedAt": 1 },
            ))
            .projection(doc! { "status": 1, "metadata": 1, "workspaceId": 1, "error": 1 })
            .await?;
        let mut per: HashMap<(String, ObjectId, VideoStatus, String), (Document, i64)> =
            HashMap::new();
        while cursor.advance().await? {
            let d = cursor.deserialize_current()?;
            let Ok(ws) = d.get_object_id("workspaceId").map(from_oid) else {
                continue;
            };
            let error = d.get_str("error").ok().map(str::to_string);
            let doc = read::<FinishedDoc>(d, "video")?;
            let status = doc.status;
            let Some(f) = FinishedDelta::of(status, &doc.metadata(), ws, error.as_deref(), 1)
            else {
                continue;
            };
            for (key, at) in [
                (format!("{}", f.hour.millis()), doc! { "h": date(f.hour) }),
                (
                    format!("d{}", day_of(f.hour).millis()),
                    doc! { "day": date(day_of(f.hour)) },
                ),
            ] {
                per.entry((key, ws, status, f.reason.clone()))
                    .or_insert_with(|| (at, 0))
                    .1 += 1;
            }
        }
        let docs: Vec<Document> = per
            .into_iter()
            .map(|((key, ws, st, r), (mut d, n))| {
                d.insert("_id", finished_key(&key, ws, st, &r, 0));
                d.insert("ws", oid(ws));
                d.insert("st", st.as_str());
                d.insert("r", r);
                d.insert("n", n);
                d
            })
            .collect();
        for chunk in docs.chunks(1000) {
            coll.insert_many(chunk.to_vec()).await?;
        }
        meta.insert_one(doc! { "_id": "finished", "filledAt": date(Timestamp::now()) })
            .await?;
        Ok(())
    }

    /// Fills the counters from the stored events and videos, once per database (a database written
    /// by an earlier version, or by another program).
    pub(super) async fn fill_rollups(&self) -> StoreResult<()> {
        let db = &self.database;
        let meta = db.collection::<Document>(META);
        if meta.find_one(doc! { "_id": "rollups" }).await?.is_some() {
            return Ok(());
        }
        for name in [EVENTS, VIDEOS, PROCESSING] {
            db.collection::<Document>(name).delete_many(doc! {}).await?;
        }
        // Calls per hour, endpoint and acceptance (`$dateToString`: MongoDB 4 has no `$dateTrunc`).
        let cursor = self
            .events
            .aggregate([doc! { "$group": {
                "_id": {
                    "hour": { "$dateToString": { "date": "$createdAt", "format": "%Y-%m-%dT%H" } },
                    "endpoint": "$endpoint",
                    "accepted": { "$and": [
                        { "$gte": ["$statusCode", 200] }, { "$lte": ["$statusCode", 299] },
                    ]},
                },
                "n": { "$sum": 1 },
            }}])
            .await?;
        let rows = collect(cursor, Ok).await?;
        let mut docs = Vec::new();
        for d in rows {
            let Ok(key) = d.get_document("_id") else {
                continue;
            };
            let Some(hour) = Timestamp::parse(&format!(
                "{}:00:00.000Z",
                key.get_str("hour").unwrap_or_default()
            )) else {
                continue;
            };
            let endpoint = key.get_str("endpoint").unwrap_or_default();
            let accepted = key.get_bool("accepted").unwrap_or(false);
            docs.push(doc! {
                "_id": format!("{}|{}|{}|0", hour.millis(), endpoint, accepted),
                "h": date(hour), "e": endpoint, "a": accepted,
                "n": d.get("n").and_then(num).unwrap_or(0),
            });
        }
        if !docs.is_empty() {
            db.collection::<Document>(EVENTS).insert_many(docs).await?;
        }
        // Videos per status, and the processing rollup, in one pass over the videos, added up as
        // they stream by (memory follows the hours and buckets, not the number of videos).
        let mut cursor = self
            .videos
            .find(doc! {})
            .projection(doc! { "status": 1, "metadata": 1 })
            .await?;
        let mut statuses: HashMap<VideoStatus, i64> = HashMap::new();
        let mut processing: HashMap<(i64, VideoStatus, u32), (i64, i64)> = HashMap::new();
        let mut daily: HashMap<(i64, VideoStatus, u32), (i64, i64)> = HashMap::new();
        while cursor.advance().await? {
            let doc = read::<FinishedDoc>(cursor.deserialize_current()?, "video")?;
            let status = doc.status;
            let finished = FinishedVideo::of(status, &doc.metadata());
            *statuses.entry(status).or_default() += 1;
            if let Some(f) = finished {
                let ms = f.ms();
                let bucket = processing_bucket(ms);
                for (map, at) in [
                    (&mut processing, hour_of(f.finished_at)),
                    (&mut daily, day_of(f.finished_at)),
                ] {
                    let slot = map.entry((at.millis(), status, bucket)).or_default();
                    slot.0 += 1;
                    slot.1 += ms as i64;
                }
            }
        }
        let docs: Vec<Document> = statuses
            .into_iter()
            .map(|(st, n)| doc! { "_id": format!("{}|0", st.as_str()), "st": st.as_str(), "n": n })
            .collect();
        if !docs.is_empty() {
            db.collection::<Document>(VIDEOS).insert_many(docs).await?;
        }
        let docs: Vec<Document> = processing
            .into_iter()
            .map(|((h, st, b), (n, sum))| {
                doc! {
                    "_id": format!("{h}|{}|{b}|0", st.as_str()),
                    "h": date(Timestamp::from_millis(h)), "st": st.as_str(), "b": b as i64,
                    "n": n, "sum": sum,
                }
            })
            .chain(daily.into_iter().map(|((d, st, b), (n, sum))| {
                doc! {
                    "_id": format!("d{d}|{}|{b}|0", st.as_str()),
                    "day": date(Timestamp::from_millis(d)), "st": st.as_str(), "b": b as i64,
                    "n": n, "sum": sum,
                }
            }))
            .collect();
        if !docs.is_empty() {
            db.collection::<Document>(PROCESSING)
                .insert_many(docs)
                .await?;
        }
        meta.insert_one(doc! { "_id": "rollups", "filledAt": date(Timestamp::now()) })
            .await?;
        Ok(())
    }
}
