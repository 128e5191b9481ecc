//! Read-only aggregates for the stats API and the dashboard.

use super::{all, json, parsed, ts, SqliteStore};
use crate::model::{Timestamp, VideoMetadata, VideoStatus};
use crate::ssr::store::{known_statuses, FinishedVideo, HourlyCount, Reports, StoreResult};
use async_trait::async_trait;
use rusqlite::ToSql;

/// Timestamps are stored as `YYYY-MM-DDTHH:MM:SS.mmmZ`: the first 13 characters are the hour.
const COUNTS_BY_HOUR: &str = "SELECT substr(created_at, 1, 13) AS hour, endpoint,
            status_code BETWEEN 200 AND 299 AS accepted, COUNT(*)
     FROM webhook_events WHERE created_at >= :from AND created_at < :to
     GROUP BY hour, endpoint, accepted ORDER BY hour";
const STATUS_COUNTS: &str = "SELECT status, COUNT(*) FROM aivideos GROUP BY status";
const FINISHED: &str = "SELECT status, metadata FROM aivideos
     WHERE status IN ('completed', 'failed') AND updated_at >= :from AND updated_at < :to";

#[async_trait]
impl Reports for SqliteStore {
    async fn event_counts_by_hour(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<HourlyCount>> {
        self.read(move |c| {
            let (from, to) = (from.to_string(), to.to_string());
            all(
                c,
                COUNTS_BY_HOUR,
                &[(":from", &from as &dyn ToSql), (":to", &to)],
                |r| {
                    let hour: String = r.get(0)?;
                    Ok(HourlyCount {
                        hour: ts(format!("{hour}:00:00.000Z"))?,
                        endpoint: r.get(1)?,
                        accepted: r.get(2)?,
                        count: r.get(3)?,
                    })
                },
            )
        })
        .await
    }

    async fn video_status_counts(&self) -> StoreResult<Vec<(VideoStatus, u64)>> {
        let rows = self
            .read(move |c| {
                all(c, STATUS_COUNTS, &[], |r| {
                    Ok((r.get::<_, Option<String>>(0)?, r.get::<_, u64>(1)?))
                })
            })
            .await?;
        Ok(known_statuses(rows))
    }

    async fn finished_videos(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<FinishedVideo>> {
        self.read(move |c| {
            let (from, to) = (from.to_string(), to.to_string());
            let rows = all(
                c,
                FINISHED,
                &[(":from", &from as &dyn ToSql), (":to", &to)],
                |r| {
                    Ok((
                        parsed::<VideoStatus>(r.get(0)?, "status")?,
                        json::<VideoMetadata>(r.get(1)?)?,
                    ))
                },
            )?;
            Ok(rows
                .into_iter()
                .filter_map(|(status, m)| FinishedVideo::of(status, &m))
                .collect())
        })
        .await
    }
}
