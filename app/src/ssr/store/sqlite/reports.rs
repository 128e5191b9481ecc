//! Read-only aggregates for the stats API and the dashboard, from the counters kept with every
//! write (`migrations/008_rollups.sql`): they read O(hours × buckets) rows, never every event or
//! video. Only the part-hours at the ends of a range are counted from the events (by their index).

use super::{all, parsed, ts, SqliteStore};
use crate::model::{ObjectId, Timestamp, VideoStatus};
use crate::ssr::store::{
    known_statuses, processing_spans, whole_hours, HourlyCount, ProcessingCount, Reports,
    StoreResult,
};
use async_trait::async_trait;
use rusqlite::{Connection, ToSql};
use std::collections::BTreeMap;

const ROLLUP: &str = "SELECT hour, endpoint, accepted, n FROM event_rollup
     WHERE hour >= :from AND hour < :to AND n <> 0 ORDER BY hour";
/// Timestamps are stored as `YYYY-MM-DDTHH:MM:SS.mmmZ`: the first 13 characters are the hour.
const RAW_COUNTS: &str = "SELECT substr(created_at, 1, 13) AS hour, endpoint,
            status_code BETWEEN 200 AND 299 AS accepted, COUNT(*)
     FROM webhook_events WHERE created_at >= :from AND created_at < :to
     GROUP BY hour, endpoint, accepted ORDER BY hour";
const STATUS_COUNTS: &str = "SELECT status, n FROM video_counts WHERE n > 0";
const PROCESSING: &str = "SELECT status, bucket, SUM(n), SUM(sum_ms) FROM processing_rollup
     WHERE hour >= :from AND hour < :to GROUP BY status, bucket";
const PROCESSING_DAILY: &str = "SELECT status, bucket, SUM(n), SUM(sum_ms) FROM processing_daily
     WHERE day >= :from AND day < :to GROUP BY status, bucket";

/// The finished rollup of a span, by hour or by day (`:from`/`:to` bound the table's time column).
const REASONS: &str = "SELECT reason, SUM(n) FROM finished_rollup
     WHERE hour >= :from AND hour < :to AND status = 'failed' GROUP BY reason";
const REASONS_DAILY: &str = "SELECT reason, SUM(n) FROM finished_daily
     WHERE day >= :from AND day < :to AND status = 'failed' GROUP BY reason";
const BY_WORKSPACE: &str = "SELECT workspace_id || ' ' || status, SUM(n) FROM finished_rollup
     WHERE hour >= :from AND hour < :to GROUP BY workspace_id, status";
const BY_WORKSPACE_DAILY: &str = "SELECT workspace_id || ' ' || status, SUM(n) FROM finished_daily
     WHERE day >= :from AND day < :to GROUP BY workspace_id, status";

/// Sums a keyed count over the spans of a range (whole days from the daily table, the rest from
/// the hourly one).
fn summed_over(
    c: &Connection,
    from: Timestamp,
    to: Timestamp,
    hourly: &'static str,
    daily: &'static str,
) -> StoreResult<BTreeMap<String, i64>> {
    let mut summed: BTreeMap<String, i64> = BTreeMap::new();
    for (is_daily, start, end) in processing_spans(from, to) {
        let (start, end) = (start.to_string(), end.to_string());
        let rows = all(
            c,
            if is_daily { daily } else { hourly },
            &[(":from", &start as &dyn ToSql), (":to", &end)],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
        )?;
        for (key, n) in rows {
            *summed.entry(key).or_default() += n;
        }
    }
    summed.retain(|_, n| *n > 0);
    Ok(summed)
}

fn hourly_rows(
    c: &Connection,
    sql: &'static str,
    from: Timestamp,
    to: Timestamp,
) -> StoreResult<Vec<HourlyCount>> {
    let (from, to) = (from.to_string(), to.to_string());
    all(
        c,
        sql,
        &[(":from", &from as &dyn ToSql), (":to", &to)],
        |r| {
            let hour: String = r.get(0)?;
            let hour = if hour.len() == 13 {
                format!("{hour}:00:00.000Z")
            } else {
                hour
            };
            Ok(HourlyCount {
                hour: ts(hour)?,
                endpoint: r.get(1)?,
                accepted: r.get(2)?,
                count: r.get::<_, i64>(3)?.max(0) as u64,
            })
        },
    )
}

#[async_trait]
impl Reports for SqliteStore {
    async fn event_counts_by_hour(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<HourlyCount>> {
        self.read(move |c| {
            // The whole hours from the rollup; the part-hours around them from the events.
            let (first, last) = whole_hours(from, to);
            if first >= last {
                return hourly_rows(c, RAW_COUNTS, from, to);
            }
            let mut rows = hourly_rows(c, RAW_COUNTS, from, first)?;
            rows.extend(hourly_rows(c, ROLLUP, first, last)?);
            if last < to {
                rows.extend(hourly_rows(c, RAW_COUNTS, last, to)?);
            }
            Ok(rows)
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

    async fn processing_counts(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<ProcessingCount>> {
        self.read(move |c| {
            let mut summed: BTreeMap<(String, u32), (i64, i64)> = BTreeMap::new();
            for (daily, start, end) in processing_spans(from, to) {
                let (start, end) = (start.to_string(), end.to_string());
                let sql = if daily { PROCESSING_DAILY } else { PROCESSING };
                let rows = all(
                    c,
                    sql,
                    &[(":from", &start as &dyn ToSql), (":to", &end)],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, u32>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, i64>(3)?,
                        ))
                    },
                )?;
                for (status, bucket, n, sum) in rows {
                    let slot = summed.entry((status, bucket)).or_default();
                    slot.0 += n;
                    slot.1 += sum;
                }
            }
            summed
                .into_iter()
                .filter(|(_, (n, _))| *n > 0)
                .map(|((status, bucket), (n, sum))| {
                    Ok(ProcessingCount {
                        status: parsed::<VideoStatus>(status, "status")?,
                        bucket,
                        count: n as u64,
                        sum_ms: sum.max(0) as u64,
                    })
                })
                .collect()
        })
        .await
    }

    async fn failure_reasons(
        &self,
        from: Timestamp,
        to: Timestamp,
        limit: u64,
    ) -> StoreResult<(Vec<(String, u64)>, u64)> {
        let summed = self
            .read(move |c| summed_over(c, from, to, REASONS, REASONS_DAILY))
            .await?;
        Ok(crate::ssr::store::top_reasons(summed, limit))
    }

    async fn finished_by_workspace(
        &self,
        from: Timestamp,
        to: Timestamp,
        limit: u64,
    ) -> StoreResult<Vec<(ObjectId, u64, u64)>> {
        let summed = self
            .read(move |c| summed_over(c, from, to, BY_WORKSPACE, BY_WORKSPACE_DAILY))
            .await?;
        let pairs = summed.into_iter().filter_map(|(key, n)| {
            let (ws, status) = key.split_once(' ')?;
            Some((ws.parse().ok()?, status.parse().ok()?, n))
        });
        Ok(crate::ssr::store::busiest_workspaces(pairs, limit))
    }
}
