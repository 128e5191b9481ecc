//! The `total` of big lists, computed once per filter and kept briefly.
//!
//! A page is read by keyset and costs the same on any page of any log; counting what a filter
//! selects still grows with the log. So a count of at least [`CACHE_FROM`] is kept for [`TTL`] per
//! filter (and instance): a total that large may be up to that old. Smaller counts are cheap and
//! always exact, as every test and most stores see them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts below this are never kept.
pub const CACHE_FROM: u64 = 10_000;
/// How long a kept count is used.
pub const TTL: Duration = Duration::from_secs(5);
/// Distinct filters kept at once; past it the oldest half is dropped.
const MAX_KEPT: usize = 1024;

#[derive(Default)]
pub struct Totals {
    kept: Mutex<HashMap<String, (u64, Instant)>>,
}

impl Totals {
    /// The count for `key` (a filter's canonical text), from `count` unless a fresh one is kept.
    pub async fn get<E>(
        &self,
        key: String,
        count: impl std::future::Future<Output = Result<u64, E>>,
    ) -> Result<u64, E> {
        let now = Instant::now();
        if let Some((n, at)) = self.lock().get(&key) {
            if now.duration_since(*at) < TTL {
                return Ok(*n);
            }
        }
        let n = count.await?;
        if n >= CACHE_FROM {
            let mut kept = self.lock();
            if kept.len() >= MAX_KEPT {
                let mut ages: Vec<Instant> = kept.values().map(|v| v.1).collect();
                ages.sort_unstable();
                let cut = ages[ages.len() / 2];
                kept.retain(|_, v| v.1 > cut);
            }
            kept.insert(key, (n, now));
        }
        Ok(n)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, Instant)>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }
}
