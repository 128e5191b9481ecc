//! `GET /api/webhook-events/stats`: totals, success rate, processing times and volume per bucket.

use crate::model::filters::StatsQuery;
use crate::model::stats::{
    p95_of_histogram, Bucket, BucketCount, Processing, Totals, WebhookStats,
};
use crate::model::webhook::WebhookKind;
use crate::model::{Timestamp, VideoStatus};
use crate::ssr::auth::Caller;
use crate::ssr::error::{AppError, AppResult};
use crate::ssr::state::AppState;
use crate::ssr::store::{HourlyCount, ProcessingCount};
use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};
use std::collections::BTreeMap;

/// The widest range one query may cover.
pub const MAX_RANGE_DAYS: i64 = 366;
/// The most buckets one query may ask for.
pub const MAX_BUCKETS: usize = 1000;

/// The start of the bucket holding `t`.
pub fn bucket_start(bucket: Bucket, t: DateTime<Utc>) -> DateTime<Utc> {
    let day = Utc
        .with_ymd_and_hms(t.year(), t.month(), t.day(), 0, 0, 0)
        .single()
        .unwrap_or(t);
    match bucket {
        Bucket::Hour => day + Duration::hours(t.hour() as i64),
        Bucket::Day => day,
        Bucket::Week => day - Duration::days(t.weekday().num_days_from_monday() as i64),
        Bucket::Month => Utc
            .with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
            .single()
            .unwrap_or(day),
    }
}

fn next_bucket(bucket: Bucket, start: DateTime<Utc>) -> DateTime<Utc> {
    match bucket {
        Bucket::Hour => start + Duration::hours(1),
        Bucket::Day => start + Duration::days(1),
        Bucket::Week => start + Duration::days(7),
        Bucket::Month => {
            let (y, m) = if start.month() == 12 {
                (start.year() + 1, 1)
            } else {
                (start.year(), start.month() + 1)
            };
            Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
                .single()
                .unwrap_or(start + Duration::days(31))
        }
    }
}

/// Parses and bounds the query. Defaults: the last 7 days, by day.
pub fn parse(p: &StatsQuery, now: Timestamp) -> AppResult<(Timestamp, Timestamp, Bucket)> {
    let time = |raw: &Option<String>, name: &str| -> AppResult<Option<Timestamp>> {
        match raw.as_deref().filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => Timestamp::parse(s).map(Some).ok_or_else(|| {
                AppError::BadRequest(format!(
                    "{name} must be an RFC 3339 date-time, e.g. 2025-01-17T10:30:00Z"
                ))
            }),
        }
    };
    let to = time(&p.to, "to")?.unwrap_or(now);
    let from = time(&p.from, "from")?
        .unwrap_or_else(|| Timestamp::from_millis(to.millis() - 7 * 86_400_000));
    if from >= to {
        return Err(AppError::BadRequest("from must be before to".into()));
    }
    if to.millis() - from.millis() > MAX_RANGE_DAYS * 86_400_000 {
        return Err(AppError::BadRequest(format!(
            "the range may cover at most {MAX_RANGE_DAYS} days"
        )));
    }
    let bucket = match p.bucket.as_deref().filter(|s| !s.is_empty()) {
        None => Bucket::Day,
        Some(b) => Bucket::parse(b).ok_or_else(|| {
            AppError::BadRequest("bucket must be one of hour, day, week, month".into())
        })?,
    };
    let buckets = bucket_starts(bucket, from, to).len();
    if buckets > MAX_BUCKETS {
        return Err(AppError::BadRequest(format!(
            "{buckets} buckets of one {} are too many (at most {MAX_BUCKETS}); choose a wider bucket or a shorter range",
            bucket.as_str()
        )));
    }
    Ok((from, to, bucket))
}

/// The bucket starts covering `[from, to)`, bounded so a bad range cannot loop for long.
fn bucket_starts(bucket: Bucket, from: Timestamp, to: Timestamp) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut t = bucket_start(bucket, from.datetime());
    while t < to.datetime() && out.len() <= MAX_BUCKETS {
        out.push(t);
        t = next_bucket(bucket, t);
    }
    out
}

/// Folds hourly counts into zero-filled buckets and totals.
pub fn fold(
    bucket: Bucket,
    from: Timestamp,
    to: Timestamp,
    hourly: &[HourlyCount],
) -> (Totals, Vec<BucketCount>) {
    let mut series: Vec<BucketCount> = bucket_starts(bucket, from, to)
        .into_iter()
        .map(|start| BucketCount {
            start: Timestamp::from_millis(start.timestamp_millis()),
            success: 0,
            failure: 0,
            rejected: 0,
        })
        .collect();
    let mut totals = Totals::default();
    for h in hourly {
        let start = bucket_start(bucket, h.hour.datetime()).timestamp_millis();
        let Some(slot) = series.iter_mut().find(|b| b.start.millis() == start) else {
            continue;
        };
        if !h.accepted {
            slot.rejected += h.count;
            totals.rejected += h.count;
        } else if h.endpoint == WebhookKind::Success.endpoint() {
            slot.success += h.count;
            totals.success += h.count;
        } else if h.endpoint == WebhookKind::Failure.endpoint() {
            slot.failure += h.count;
            totals.failure += h.count;
        }
    }
    (totals, series)
}

/// Average (exact) and 95th percentile (nearest rank, exact to its histogram bucket: see
/// `model::stats::processing_bucket`) of queue-to-result times, from the processing rollup.
pub fn processing(rows: &[ProcessingCount]) -> Processing {
    let count: u64 = rows.iter().map(|r| r.count).sum();
    let of = |status| {
        rows.iter()
            .filter(|r| r.status == status)
            .map(|r| r.count)
            .sum()
    };
    let mut histogram: BTreeMap<u32, u64> = BTreeMap::new();
    for r in rows {
        *histogram.entry(r.bucket).or_default() += r.count;
    }
    let histogram: Vec<(u32, u64)> = histogram.into_iter().collect();
    Processing {
        count,
        completed: of(VideoStatus::Completed),
        failed: of(VideoStatus::Failed),
        average_ms: (count > 0).then(|| rows.iter().map(|r| r.sum_ms).sum::<u64>() / count),
        p95_ms: p95_of_histogram(&histogram),
    }
}

#[tracing::instrument(skip(state, caller), fields(user = %caller.user_id))]
pub async fn webhook_stats(
    state: &AppState,
    caller: &Caller,
    p: &StatsQuery,
) -> AppResult<WebhookStats> {
    caller.require_superadmin()?;
    let (from, to, bucket) = parse(p, Timestamp::now())?;
    // The range starts at its first bucket's start, so every bucket (and the totals) covers whole
    // buckets; the answer's `from` says so.
    let from = Timestamp::from_millis(bucket_start(bucket, from.datetime()).timestamp_millis());
    let (hourly, finished) = tokio::try_join!(
        state.store.event_counts_by_hour(from, to),
        state.store.processing_counts(from, to)
    )?;
    let (totals, series) = fold(bucket, from, to, &hourly);
    let accepted = totals.success + totals.failure;
    Ok(WebhookStats {
        from,
        to,
        bucket,
        success_rate: (accepted > 0).then(|| totals.success as f64 / accepted as f64),
        totals,
        processing: processing(&finished),
        series,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn bucket_starts_for_each_width() {
        let x = t("2025-01-15T13:45:10.123Z").datetime(); // a Wednesday
        let s = |b| Timestamp::from_millis(bucket_start(b, x).timestamp_millis()).to_string();
        assert_eq!(s(Bucket::Hour), "2025-01-15T13:00:00.000Z");
        assert_eq!(s(Bucket::Day), "2025-01-15T00:00:00.000Z");
        assert_eq!(s(Bucket::Week), "2025-01-13T00:00:00.000Z");
        assert_eq!(s(Bucket::Month), "2025-01-01T00:00:00.000Z");
        let dec = t("2024-12-31T23:00:00Z").datetime();
        assert_eq!(
            next_bucket(Bucket::Month, bucket_start(Bucket::Month, dec)),
            t("2025-01-01T00:00:00Z").datetime()
        );
    }

    #[test]
    fn folding_zero_fills_and_splits_by_endpoint_and_acceptance() {
        let hourly = vec![
            HourlyCount {
                hour: t("2025-01-01T10:00:00Z"),
                endpoint: "/videos/success".into(),
                accepted: true,
                count: 3,
            },
            HourlyCount {
                hour: t("2025-01-01T11:00:00Z"),
                endpoint: "/videos/failure".into(),
                accepted: true,
                count: 1,
            },
            HourlyCount {
                hour: t("2025-01-03T09:00:00Z"),
                endpoint: "/videos/success".into(),
                accepted: false,
                count: 2,
            },
        ];
        let (totals, series) = fold(
            Bucket::Day,
            t("2025-01-01T00:00:00Z"),
            t("2025-01-04T00:00:00Z"),
            &hourly,
        );
        assert_eq!(
            totals,
            Totals {
                success: 3,
                failure: 1,
                rejected: 2
            }
        );
        assert_eq!(series.len(), 3);
        assert_eq!((series[0].success, series[0].failure), (3, 1));
        assert_eq!(
            (series[1].success, series[1].failure, series[1].rejected),
            (0, 0, 0)
        );
        assert_eq!(series[2].rejected, 2);
    }

    #[test]
    fn processing_from_the_rollup() {
        use crate::model::stats::processing_bucket;
        let row = |status, ms: u64, count| ProcessingCount {
            status,
            bucket: processing_bucket(ms),
            count,
            sum_ms: ms * count,
        };
        // 100 videos of 10..1000 ms, 10 of them failed.
        let rows: Vec<_> = (1..=100u64)
            .map(|i| {
                let status = if i % 10 == 0 {
                    VideoStatus::Failed
                } else {
                    VideoStatus::Completed
                };
                row(status, i * 10, 1)
            })
            .collect();
        let p = processing(&rows);
        assert_eq!(
            (p.count, p.completed, p.failed, p.average_ms, p.p95_ms),
            (100, 90, 10, Some(505), Some(960))
        );
        assert_eq!(processing(&[]).average_ms, None);
        assert_eq!(processing(&[]).p95_ms, None);
    }

    #[test]
    fn ranges_are_bounded() {
        let now = t("2025-06-01T00:00:00Z");
        let p = |from: &str, to: &str, b: &str| StatsQuery {
            from: Some(from.into()),
            to: Some(to.into()),
            bucket: Some(b.into()),
        };
        assert!(parse(&StatsQuery::default(), now).is_ok());
        assert!(parse(
            &p("2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z", "hour"),
            now
        )
        .is_ok());
        assert!(parse(
            &p("2025-01-02T00:00:00Z", "2025-01-01T00:00:00Z", "day"),
            now
        )
        .is_err());
        assert!(parse(
            &p("2023-01-01T00:00:00Z", "2025-01-01T00:00:00Z", "month"),
            now
        )
        .is_err());
        assert!(parse(
            &p("2025-01-01T00:00:00Z", "2025-03-01T00:00:00Z", "hour"),
            now
        )
        .is_err());
        assert!(parse(
            &p("2025-01-01T00:00:00Z", "2025-03-01T00:00:00Z", "fortnight"),
            now
        )
        .is_err());
    }
}
