//! Read-only aggregates for the stats API and the dashboard.

use super::docs::{date, num, read, FinishedDoc};
use super::{collect, MongoStore};
use crate::model::{Timestamp, VideoStatus};
use crate::ssr::store::{
    known_statuses, FinishedVideo, HourlyCount, Reports, StoreError, StoreResult,
};
use async_trait::async_trait;
use mongodb::bson::doc;

#[async_trait]
impl Reports for MongoStore {
    async fn event_counts_by_hour(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<HourlyCount>> {
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
                doc! { "$sort": { "_id.hour": 1, "_id.endpoint": 1, "_id.accepted": 1 } },
            ])
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
                count: d.get("count").and_then(num).unwrap_or(0).max(0) as u64,
            })
        })
        .await
    }

    async fn video_status_counts(&self) -> StoreResult<Vec<(VideoStatus, u64)>> {
        let cursor = self
            .videos
            .aggregate([doc! { "$group": { "_id": "$status", "count": { "$sum": 1 } } }])
            .await?;
        let rows = collect(cursor, |d| {
            Ok((
                d.get_str("_id").ok().map(str::to_string),
                d.get("count").and_then(num).unwrap_or(0).max(0) as u64,
            ))
        })
        .await?;
        Ok(known_statuses(rows))
    }

    async fn finished_videos(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<FinishedVideo>> {
        let cursor = self
            .videos
            .find(doc! {
                "status": { "$in": [VideoStatus::Completed.as_str(), VideoStatus::Failed.as_str()] },
                "updatedAt": { "$gte": date(from), "$lt": date(to) },
            })
            .projection(doc! { "status": 1, "metadata": 1 })
            .await?;
        let rows = collect(cursor, |d| {
            let doc = read::<FinishedDoc>(d, "video")?;
            let status = doc.status;
            Ok(FinishedVideo::of(status, &doc.metadata()))
        })
        .await?;
        Ok(rows.into_iter().flatten().collect())
    }
}
