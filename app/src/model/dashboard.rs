//! What the dashboard's server functions return.

use super::stats::WebhookStats;
use super::VideoStatus;
use serde::{Deserialize, Serialize};

/// How many videos are in each status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusCounts {
    pub pending: u64,
    pub generating: u64,
    pub completed: u64,
    pub failed: u64,
}

impl StatusCounts {
    pub fn from_pairs(pairs: &[(VideoStatus, u64)]) -> Self {
        let mut c = Self::default();
        for (s, n) in pairs {
            match s {
                VideoStatus::Pending => c.pending += n,
                VideoStatus::Generating => c.generating += n,
                VideoStatus::Completed => c.completed += n,
                VideoStatus::Failed => c.failed += n,
            }
        }
        c
    }
}

/// The overview page: counts now, and webhook statistics over the chosen range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    pub counts: StatusCounts,
    pub stats: WebhookStats,
    /// `24h`, `7d` or `30d`.
    pub range: String,
}

/// The three ranges of the overview, with the bucket each one is charted by.
pub const RANGES: [(&str, &str, i64, &str); 3] = [
    ("24h", "Last 24 hours", 24, "hour"),
    ("7d", "Last 7 days", 24 * 7, "day"),
    ("30d", "Last 30 days", 24 * 30, "day"),
];

/// Who is signed in to the dashboard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub email: String,
    pub role: String,
}
