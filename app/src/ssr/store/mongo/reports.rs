//! Read-only aggregates for the stats API and the dashboard, from the counters kept with every
//! write (`rollups.rs`): O(hours × buckets × shards) documents, never every event or video. Only
//! the part-hours at the ends of a range are counted from the events (by their index).

use super::docs::{date, from_oid, num};
use super::rollups::{EVENTS, FINISHED, PROCESSING, VIDEOS};
use super::{collect, MongoStore};
use crate::model::{ObjectId, Timestamp, VideoStatus};
use crate::ssr::store::{
    known_statuses, processing_spans, whole_hours, HourlyCount, ProcessingCount, Reports,
    StoreError, StoreResult,
};
use async_trait::async_trait;
use mongodb::bson::{doc, Document};
use std::collections::BTreeMap;

fn count(d: &Document, field: &str) -> i64 {
    d.get(field).and_then(num).unwrap_or(0)
}

fn hour(d: &Document) -> StoreResult<Timestamp> {
    d.get_datetime("h")
        .map(|h| Timestamp::from_millis(h.timestamp_millis()))
        .map_err(|_| StoreError::Corrupt("a rollup without its hour".into()))
}

impl MongoStore {
    /// The finished rollup's counters of a range (whole days by day, the rest by hour), those of
    /// `failed` only when `failed_only`.
    async fn finished_counters(
        &self,
        from: Timestamp,
        to: Timestamp,
        failed_only: bool,
    ) -> StoreResult<Vec<Document>> {
        let mut out = Vec::new();
        for (daily, start, end) in processing_spans(from, to) {
            let key = if daily { "day" } else { "h" };
            let mut filter = doc! { key: { "$gte": date(start), "$lt": date(end) } };
            if failed_only {
                filter.insert("st", VideoStatus::Failed.as_str());
            }
            let cursor = self
                .database
                .collection::<Document>(FINISHED)
                .find(filter)
                .projection(doc! { "ws": 1, "st": 1, "r": 1, "n": 1 })
                .hint(mongodb::options::Hint::Keys(doc! { key: 1 }))
                .await?;
            out.extend(collect(cursor, Ok).await?);
        }
        Ok(out)
    }

    /// Calls in `[from, to)` per hour, endpoint and acceptance, counted from the events.
    async fn raw_counts(&self, from: Timestamp, to: Timestamp) -> StoreResult<Vec<HourlyCount>> {
        if from >= to {
            return Ok(Vec::new());
        }
        // `$dateToString` rather than `$dateTrunc`, which needs MongoDB 5.
        let cursor = self
            .events
            .aggregate([
                doc! { "$match": { "createdAt": { "$gte": date(from), "$lt": date(to) } } },
                doc! { "$group": {
                    "_id": {
                        "hour": { "$dateToString": { "date": "$createdAt", "format": "%Y-%m-%dT%H" } },
                        "endpoint": "$endpoint",
                        "accepted": { "$and": [
                            { "$gte": ["$statusCode", 200] },
                            { "$lte": ["$statusCode", 299] },
                        ]},
                    },
                    "count": { "$sum": 1 },
                }},
            ])
            .hint(mongodb::options::Hint::Keys(
                doc! { "createdAt": -1, "_id": -1 },
            ))
            .await?;
        collect(cursor, |d| {
            let key = d
                .get_document("_id")
                .map_err(|_| StoreError::Corrupt("hourly count without a key".into()))?;
            let hour = key.get_str("hour").unwrap_or_default();
            Ok(HourlyCount {
                hour: Timestamp::parse(&format!("{hour}:00:00.000Z"))
                    .ok_or_else(|| StoreError::Corrupt(format!("bad hour {hour:?}")))?,
                endpoint: key.get_str("endpoint").unwrap_or_default().to_string(),
                accepted: key.get_bool("accepted").unwrap_or(false),
                count: count(&d, "count").max(0) as u64,
            })
        })
        .await
    }
}

#[async_trait]
impl Reports for MongoStore {
    async fn event_counts_by_hour(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<HourlyCount>> {
        let (first, last) = whole_hours(from, to);
        if first >= last {
            return self.raw_counts(from, to).await;
        }
        let mut rows = self.raw_counts(from, first).await?;
        let cursor = self
            .database
            .collection::<Document>(EVENTS)
            .find(doc! { "h": { "$gte": date(first), "$lt": date(last) } })
            .hint(mongodb::options::Hint::Keys(doc! { "h": 1 }))
            .await?;
        let shards = collect(cursor, Ok).await?;
        let mut summed: BTreeMap<(i64, String, bool), i64> = BTreeMap::new();
        for d in &shards {
            let key = (
                hour(d)?.millis(),
                d.get_str("e").unwrap_or_default().to_string(),
                d.get_bool("a").unwrap_or(false),
            );
            *summed.entry(key).or_default() += count(d, "n");
        }
        rows.extend(summed.into_iter().filter(|(_, n)| *n > 0).map(
            |((h, endpoint, accepted), n)| HourlyCount {
                hour: Timestamp::from_millis(h),
                endpoint,
                accepted,
                count: n as u64,
            },
        ));
        if last < to {
            rows.extend(self.raw_counts(last, to).await?);
        }
        Ok(rows)
    }

    async fn video_status_counts(&self) -> StoreResult<Vec<(VideoStatus, u64)>> {
        let cursor = self
            .database
            .collection::<Document>(VIDEOS)
            .find(doc! {})
            .hint(mongodb::options::Hint::Keys(doc! { "_id": 1 }))
            .await?;
        let shards = collect(cursor, Ok).await?;
        let mut summed: BTreeMap<String, i64> = BTreeMap::new();
        for d in &shards {
            *summed
                .entry(d.get_str("st").unwrap_or_default().to_string())
                .or_default() += count(d, "n");
        }
        Ok(known_statuses(
            summed
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(s, n)| (Some(s), n as u64))
                .collect(),
        ))
    }

    async fn processing_counts(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<ProcessingCount>> {
        let mut shards = Vec::new();
        for (daily, start, end) in processing_spans(from, to) {
            let key = if daily { "day" } else { "h" };
            let cursor = self
                .database
                .collection::<Document>(PROCESSING)
                .find(doc! { key: { "$gte": date(start), "$lt": date(end) } })
                .hint(mongodb::options::Hint::Keys(doc! { key: 1 }))
                .await?;
            shards.extend(collect(cursor, Ok).await?);
        }
        let mut summed: BTreeMap<(String, i64), (i64, i64)> = BTreeMap::new();
        for d in &shards {
            let key = (
                d.get_str("st").unwrap_or_default().to_string(),
                count(d, "b"),
            );
            let slot = summed.entry(key).or_default();
            slot.0 += count(d, "n");
            slot.1 += count(d, "sum");
        }
        Ok(summed
            .into_iter()
            .filter(|(_, (n, _))| *n > 0)
            .filter_map(|((st, b), (n, sum))| {
                Some(ProcessingCount {
                    status: st.parse().ok()?,
                    bucket: u32::try_from(b).ok()?,
                    count: n as u64,
                    sum_ms: sum.max(0) as u64,
                })
            })
            .collect())
    }

    async fn failure_reasons(
        &self,
        from: Timestamp,
        to: Timestamp,
        limit: u64,
    ) -> StoreResult<(Vec<(String, u64)>, u64)> {
        let mut summed: BTreeMap<String, i64> = BTreeMap::new();
        for d in self.finished_counters(from, to, true).await? {
            *summed
                .entry(d.get_str("r").unwrap_or_default().to_string())
                .or_default() += count(&d, "n");
        }
        Ok(crate::ssr::store::top_reasons(summed, limit))
    }

    async fn finished_by_workspace(
        &self,
        from: Timestamp,
        to: Timestamp,
        limit: u64,
    ) -> StoreResult<Vec<(ObjectId, u64, u64)>> {
        let counters = self.finished_counters(from, to, false).await?;
        let pairs = counters.iter().filter_map(|d| {
            let ws = d.get_object_id("ws").map(from_oid).ok()?;
            let st = d.get_str("st").ok()?.parse().ok()?;
            Some((ws, st, count(d, "n")))
        });
        Ok(crate::ssr::store::busiest_workspaces(pairs, limit))
    }
}
