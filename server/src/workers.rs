//! Background work that runs for the life of the server.

use app::model::Timestamp;
use app::ssr::state::AppState;
use std::time::Duration;

/// How often old webhook events are looked for.
pub const RETENTION_EVERY: Duration = Duration::from_secs(10 * 60);
/// Events deleted per statement: small enough not to hold the SQLite writer for long.
pub const RETENTION_BATCH: u64 = 10_000;
/// Batches per run; whatever is left waits for the next run, so one run never monopolises the store.
pub const RETENTION_MAX_BATCHES: u32 = 100;

/// The background workers of one server; [`Workers::stop`] ends them at shutdown.
pub struct Workers(Vec<tokio::task::JoinHandle<()>>);

impl Workers {
    /// Starts every worker: retention, the sweeper and the spool drainer.
    pub fn start(state: &AppState) -> Self {
        let mut all = vec![
            spawn_sweeper(state.clone()),
            spawn_spool_drainer(state.clone()),
            spawn_notifier(state.clone()),
            spawn_metrics_upkeep(),
        ];
        all.extend(spawn_retention(state.clone()));
        Self(all)
    }

    /// Stops them. Each is stopped between store writes or in one; an interrupted write is rolled
    /// back (SQLite drops a write whose caller is gone; MongoDB aborts the transaction).
    pub async fn stop(self) {
        for task in &self.0 {
            task.abort();
        }
        for task in self.0 {
            let _ = task.await;
        }
    }
}

/// How often the metrics' histograms are folded into their buckets (their samples wait in memory
/// until then).
pub const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Keeps the metrics' memory flat whether or not anyone scrapes `/metrics`.
fn spawn_metrics_upkeep() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let handle = crate::observe::prometheus();
        let mut tick = tokio::time::interval(METRICS_UPKEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    })
}

/// How often the outbox is looked at when the last look found nothing.
pub const NOTIFY_EVERY: Duration = Duration::from_millis(500);

/// Sends notifications from the outbox (`app::ssr::notify`): a pass, then straight another while
/// passes find work, else a pause. Every instance runs one; leases keep each row to one sender.
fn spawn_notifier(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut failing = false;
        loop {
            match app::ssr::notify::run_once(&state).await {
                Ok(n) => {
                    if failing {
                        tracing::info!(target: "video_service", "the notification outbox is readable again");
                        failing = false;
                    }
                    if n > 0 {
                        continue;
                    }
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(target: "video_service", "reading the notification outbox failed; will retry: {e}");
                        failing = true;
                    }
                }
            }
            tokio::time::sleep(NOTIFY_EVERY).await;
        }
    })
}

/// Deletes webhook events older than `WEBHOOK_EVENT_RETENTION_DAYS`, at start and then every ten
/// minutes. Nothing happens when retention is unset (events are kept forever). On MongoDB the TTL
/// index does this already and a run finds little or nothing; on SQLite this is the only cleanup.
fn spawn_retention(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    let days = state.config.webhook_event_retention_days?;
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(RETENTION_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            purge_once(&state, days).await;
        }
    }))
}

/// Fails the videos RCK never called back, then (with `VIDEO_AUTO_RETRY`) sends the failed videos
/// whose backoff has passed back to RCK, every `SWEEP_INTERVAL_SECONDS`.
fn spawn_sweeper(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(state.config.sweep_interval_secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = app::ssr::services::videos::sweep_timed_out(&state).await {
                tracing::warn!(target: "video_service", "sweeping timed-out videos failed; will retry: {e}");
            }
            if let Err(e) = app::ssr::services::videos::auto_retry(&state).await {
                tracing::warn!(target: "video_service", "automatic retries failed; will try again: {e}");
            }
        }
    })
}

/// How often the spool is looked at (and written to the store when the store takes it).
pub const SPOOL_EVERY: Duration = Duration::from_secs(1);

/// Writes the callbacks spooled during a store outage to the store once it is back: at start (a
/// spool left by the last run) and then every [`SPOOL_EVERY`]. Logs the first failure of an outage
/// and its end, not every try.
fn spawn_spool_drainer(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SPOOL_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tick.tick().await;
            if !state.spool.pending() {
                continue;
            }
            match state.spool.drain(&*state.store).await {
                Ok(_) if failing => {
                    failing = false;
                    tracing::info!(target: "webhook_logger", "the store is back; the spool is written");
                }
                Ok(_) => {}
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(target: "webhook_logger", "spooled events wait for the store: {e}");
                }
                Err(_) => {}
            }
        }
    })
}

/// One retention run: deletes in bounded batches while batches come back full.
pub async fn purge_once(state: &AppState, days: u64) -> u64 {
    let keep_ms = i64::try_from(days.saturating_mul(86_400_000)).unwrap_or(i64::MAX);
    let before = Timestamp::from_millis(Timestamp::now().millis().saturating_sub(keep_ms));
    let mut total = 0;
    for _ in 0..RETENTION_MAX_BATCHES {
        match state
            .store
            .purge_events_before(before, RETENTION_BATCH)
            .await
        {
            Ok(n) => {
                total += n;
                if n < RETENTION_BATCH {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(target: "webhook_logger", error = %e, "deleting old webhook events failed; will retry on the next run");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(target: "webhook_logger", deleted = total, older_than = %before, retention_days = days, "deleted old webhook events");
    } else {
        tracing::debug!(target: "webhook_logger", older_than = %before, "no webhook events past retention");
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::model::{ObjectId, WebhookEvent};
    use app::ssr::config::Config;
    use app::ssr::store::sqlite::SqliteStore;
    use app::ssr::store::EventQuery;
    use std::sync::Arc;

    fn event(age_hours: i64) -> WebhookEvent {
        WebhookEvent {
            id: ObjectId::new(),
            endpoint: "/videos/success".into(),
            payload: serde_json::json!({}),
            video_id: None,
            status_code: 200,
            outcome: "ok".into(),
            created_at: Timestamp::from_millis(Timestamp::now().millis() - age_hours * 3_600_000),
        }
    }

    #[tokio::test]
    async fn a_run_deletes_only_events_past_retention() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let mut config = Config::for_tests(dir.path().to_path_buf());
        config.webhook_event_retention_days = Some(2);
        let state = AppState::new(config, Arc::new(store)).unwrap();
        let keep = [event(1), event(47)];
        for e in keep
            .iter()
            .chain(&[event(49), event(24 * 30), event(24 * 400)])
        {
            state.store.insert_event(e).await.unwrap();
        }
        assert_eq!(purge_once(&state, 2).await, 3);
        assert_eq!(purge_once(&state, 2).await, 0);
        let q = EventQuery {
            page: 1,
            limit: 10,
            ..Default::default()
        };
        let left = state.store.list_events(&q).await.unwrap();
        assert_eq!(left.total, 2);
        assert!(keep.iter().all(|e| left.items.contains(e)));
    }
}
