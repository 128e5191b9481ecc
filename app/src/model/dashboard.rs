//! What the dashboard's server functions return.

use super::stats::{Bucket, WebhookStats};
use super::VideoStatus;
use serde::{Deserialize, Serialize};

/// How many videos are in each status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
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

/// The ranges of the overview (`?range=24h|7d|30d`), each charted by its own bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OverviewRange {
    #[default]
    Day,
    Week,
    Month,
}

impl OverviewRange {
    pub const ALL: [OverviewRange; 3] = [Self::Day, Self::Week, Self::Month];

    /// The URL form.
    pub fn key(self) -> &'static str {
        match self {
            Self::Day => "24h",
            Self::Week => "7d",
            Self::Month => "30d",
        }
    }

    /// From the URL form; anything else is the default (the last 24 hours).
    pub fn from_key(key: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|r| r.key() == key)
            .unwrap_or_default()
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Day => "Last 24 hours",
            Self::Week => "Last 7 days",
            Self::Month => "Last 30 days",
        }
    }

    pub fn hours(self) -> i64 {
        match self {
            Self::Day => 24,
            Self::Week => 24 * 7,
            Self::Month => 24 * 30,
        }
    }

    pub fn bucket(self) -> Bucket {
        match self {
            Self::Day => Bucket::Hour,
            Self::Week | Self::Month => Bucket::Day,
        }
    }
}

/// Who is signed in to the dashboard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub email: String,
    pub role: String,
}
