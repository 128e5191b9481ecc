//! Password guessing, bounded: failed logins are counted per client address and account, and per
//! client address in all. Successful logins are never counted. Memory is bounded: old failures are
//! forgotten as time passes, and the tables have a size cap.
//!
//! Per process: with several instances each one counts its own (the limits then apply per instance).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed for one (address, account) pair within [`PAIR_WINDOW`].
pub const PAIR_LIMIT: usize = 5;
pub const PAIR_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures allowed for one address, whatever the account, within [`ADDRESS_WINDOW`].
pub const ADDRESS_LIMIT: usize = 30;
pub const ADDRESS_WINDOW: Duration = Duration::from_secs(60);
/// The most keys either table keeps; beyond it the stalest entries are dropped.
const MAX_KEYS: usize = 100_000;

#[derive(Default)]
pub struct LoginThrottle {
    inner: Mutex<Tables>,
}

#[derive(Default)]
struct Tables {
    pairs: HashMap<(IpAddr, String), VecDeque<Instant>>,
    addresses: HashMap<IpAddr, VecDeque<Instant>>,
}

/// Drops the failures older than `window`; returns how long until the oldest kept one expires when
/// `limit` or more remain.
fn blocked(
    failures: &mut VecDeque<Instant>,
    limit: usize,
    window: Duration,
    now: Instant,
) -> Option<Duration> {
    while failures
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        failures.pop_front();
    }
    (failures.len() >= limit).then(|| {
        let oldest = failures[failures.len() - limit];
        window.saturating_sub(now.duration_since(oldest))
    })
}

fn cap<K: Clone + Eq + std::hash::Hash>(map: &mut HashMap<K, VecDeque<Instant>>) {
    if map.len() <= MAX_KEYS {
        return;
    }
    // Keep the most recent half.
    let mut by_age: Vec<(K, Instant)> = map
        .iter()
        .filter_map(|(k, v)| v.back().map(|t| (k.clone(), *t)))
        .collect();
    by_age.sort_by_key(|(_, t)| *t);
    for (k, _) in by_age.into_iter().take(map.len() - MAX_KEYS / 2) {
        map.remove(&k);
    }
}

impl LoginThrottle {
    /// `Err(retry after)` when this address (for this account) has failed too often.
    pub fn check(&self, address: IpAddr, account: &str, now: Instant) -> Result<(), Duration> {
        let mut t = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let key = (address, account.to_string());
        let pair = t
            .pairs
            .get_mut(&key)
            .and_then(|f| blocked(f, PAIR_LIMIT, PAIR_WINDOW, now));
        let all = t
            .addresses
            .get_mut(&address)
            .and_then(|f| blocked(f, ADDRESS_LIMIT, ADDRESS_WINDOW, now));
        match pair.into_iter().chain(all).max() {
            Some(wait) => Err(wait.max(Duration::from_secs(1))),
            None => Ok(()),
        }
    }

    /// A successful login clears its pair's failures (the address's total still counts).
    pub fn succeeded(&self, address: IpAddr, account: &str) {
        let mut t = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        t.pairs.remove(&(address, account.to_string()));
    }

    /// Counts a failed login.
    pub fn failed(&self, address: IpAddr, account: &str, now: Instant) {
        let mut t = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        t.pairs
            .entry((address, account.to_string()))
            .or_default()
            .push_back(now);
        t.addresses.entry(address).or_default().push_back(now);
        // Each queue holds at most what its limit needs.
        if let Some(f) = t.pairs.get_mut(&(address, account.to_string())) {
            while f.len() > PAIR_LIMIT {
                f.pop_front();
            }
        }
        if let Some(f) = t.addresses.get_mut(&address) {
            while f.len() > ADDRESS_LIMIT {
                f.pop_front();
            }
        }
        cap(&mut t.pairs);
        cap(&mut t.addresses);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn five_failures_of_a_pair_lock_that_pair_for_the_window() {
        let t = LoginThrottle::default();
        let start = Instant::now();
        for i in 0..5 {
            assert!(t.check(ip(1), "a@x", start).is_ok(), "attempt {i}");
            t.failed(ip(1), "a@x", start + Duration::from_secs(i));
        }
        let wait = t
            .check(ip(1), "a@x", start + Duration::from_secs(10))
            .unwrap_err();
        assert!(wait > Duration::from_secs(14 * 60) && wait <= PAIR_WINDOW);
        assert!(t.check(ip(2), "a@x", start).is_ok(), "another address");
        assert!(t.check(ip(1), "b@x", start).is_ok(), "another account");
        assert!(
            t.check(ip(1), "a@x", start + PAIR_WINDOW + Duration::from_secs(5))
                .is_ok(),
            "the window passes"
        );
    }

    #[test]
    fn a_success_starts_the_pair_count_again() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..4 {
            t.failed(ip(4), "a@x", now);
        }
        t.succeeded(ip(4), "a@x");
        for _ in 0..4 {
            t.failed(ip(4), "a@x", now);
        }
        assert!(t.check(ip(4), "a@x", now).is_ok());
    }

    #[test]
    fn thirty_failures_a_minute_lock_an_address_whatever_the_account() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..30 {
            t.failed(ip(3), &format!("user{i}@x"), now);
        }
        assert!(t.check(ip(3), "fresh@x", now).is_err());
        assert!(t
            .check(
                ip(3),
                "fresh@x",
                now + ADDRESS_WINDOW + Duration::from_secs(1)
            )
            .is_ok());
    }
}
