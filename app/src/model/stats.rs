//! Webhook statistics, as `GET /api/webhook-events/stats` returns them and the charts draw them.

use super::Timestamp;
use serde::{Deserialize, Serialize};

/// The width of one bar of the volume series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub success: u64,
    pub failure: u64,
    pub rejected: u64,
}

/// Queue-to-result time of the videos that finished in the range.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Processing {
    pub count: u64,
    pub completed: u64,
    pub failed: u64,
    pub average_ms: Option<u64>,
    pub p95_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketCount {
    pub start: Timestamp,
    pub success: u64,
    pub failure: u64,
    pub rejected: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
