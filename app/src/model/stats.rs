//! Webhook statistics, as `GET /api/webhook-events/stats` returns them and the charts draw them.

use super::Timestamp;
use serde::{Deserialize, Serialize};

/// The width of one bar of the volume series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    Hour,
    Day,
    /// ISO weeks, starting on Monday (UTC).
    Week,
    /// Calendar months (UTC).
    Month,
}

impl Bucket {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hour" => Some(Bucket::Hour),
            "day" => Some(Bucket::Day),
            "week" => Some(Bucket::Week),
            "month" => Some(Bucket::Month),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Bucket::Hour => "hour",
            Bucket::Day => "day",
            Bucket::Week => "week",
            Bucket::Month => "month",
        }
    }
}

/// Calls accepted (2xx) by each webhook, and calls refused (any other status).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub success: u64,
    pub failure: u64,
    pub rejected: u64,
}

/// Queue-to-result time of the videos that finished in the range.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Processing {
    pub count: u64,
    pub completed: u64,
    pub failed: u64,
    pub average_ms: Option<u64>,
    pub p95_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BucketCount {
    pub start: Timestamp,
    pub success: u64,
    pub failure: u64,
    pub rejected: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WebhookStats {
    pub from: Timestamp,
    pub to: Timestamp,
    pub bucket: Bucket,
    pub totals: Totals,
    /// success / (success + failure) of accepted calls; `None` when there were none.
    pub success_rate: Option<f64>,
    pub processing: Processing,
    /// One entry per bucket from `from` to `to`, zero-filled.
    pub series: Vec<BucketCount>,
}

/// Processing-time histogram: the buckets processing times are counted in (per hour, in the
/// rollups), so the p95 of any range is exact to its bucket's width: 10 ms below 1 s, 100 ms below
/// 10 s, 1 s below 1 min, 10 s below 10 min, 1 min below 2 h, 10 min below 24 h, then one bucket for
/// anything longer. Each segment is `(upper bound in ms, width in ms)`.
const SEGMENTS: [(u64, u64); 6] = [
    (1_000, 10),
    (10_000, 100),
    (60_000, 1_000),
    (600_000, 10_000),
    (7_200_000, 60_000),
    (86_400_000, 600_000),
];

/// The histogram bucket of a processing time.
pub fn processing_bucket(ms: u64) -> u32 {
    let (mut base, mut lo) = (0u32, 0u64);
    for (hi, width) in SEGMENTS {
        if ms < hi {
            return base + ((ms - lo) / width) as u32;
        }
        base += ((hi - lo) / width) as u32;
        lo = hi;
    }
    base
}

/// The times a bucket holds: `[low, high)` in ms; the last bucket has no upper end.
pub fn bucket_range(bucket: u32) -> (u64, Option<u64>) {
    let (mut base, mut lo) = (0u32, 0u64);
    for (hi, width) in SEGMENTS {
        let n = ((hi - lo) / width) as u32;
        if bucket < base + n {
            let low = lo + (bucket - base) as u64 * width;
            return (low, Some(low + width));
        }
        base += n;
        lo = hi;
    }
    (lo, None)
}

/// The 95th percentile (nearest rank) of a histogram given as `(bucket, count)` pairs, reported as
/// the upper end of the bucket it falls in (the lower end for the open last bucket).
pub fn p95_of_histogram(counts: &[(u32, u64)]) -> Option<u64> {
    let mut sorted: Vec<(u32, u64)> = counts.iter().copied().filter(|c| c.1 > 0).collect();
    sorted.sort_unstable();
    let total: u64 = sorted.iter().map(|c| c.1).sum();
    if total == 0 {
        return None;
    }
    let rank = ((0.95 * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (bucket, n) in sorted {
        seen += n;
        if seen >= rank {
            let (low, high) = bucket_range(bucket);
            return Some(high.unwrap_or(low));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_time_in_order() {
        assert_eq!(processing_bucket(0), 0);
        assert_eq!(processing_bucket(9), 0);
        assert_eq!(processing_bucket(10), 1);
        assert_eq!(processing_bucket(999), 99);
        assert_eq!(processing_bucket(1_000), 100);
        assert_eq!(processing_bucket(86_399_999), 535);
        assert_eq!(processing_bucket(86_400_000), 536);
        assert_eq!(processing_bucket(u64::MAX), 536);
        let mut last = 0;
        for ms in (0..90_000_000u64).step_by(997) {
            let b = processing_bucket(ms);
            assert!(b >= last);
            let (low, high) = bucket_range(b);
            assert!(low <= ms && high.is_none_or(|h| ms < h), "{ms} in {b}");
            last = b;
        }
    }

    #[test]
    fn p95_is_exact_to_the_bucket() {
        // 100 times of 10..1000 ms: the 95th is 950 ms, in [950, 960).
        let mut counts = std::collections::BTreeMap::new();
        for i in 1..=100u64 {
            *counts.entry(processing_bucket(i * 10)).or_insert(0) += 1;
        }
        let counts: Vec<(u32, u64)> = counts.into_iter().collect();
        assert_eq!(p95_of_histogram(&counts), Some(960));
        assert_eq!(p95_of_histogram(&[]), None);
        assert_eq!(p95_of_histogram(&[(536, 3)]), Some(86_400_000));
    }
}
