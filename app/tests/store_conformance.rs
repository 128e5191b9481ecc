//! One conformance suite for both stores: every case runs against a fresh SQLite store (temp dir)
//! and a fresh MongoDB store (a database of its own on `MONGODB_TEST_URI`), through the `Store`
//! trait only. `make test` starts a SecantusDB server for it (scripts/with-mongo.sh); without one the
//! MongoDB cases fail, unless RACKY_SKIP_MONGO_TESTS=1 (quick local runs).

use app::model::stats::processing_bucket;
use app::model::webhook::{
    CallbackAuth, Decision, SuccessFields, VideoChange, WebhookKind, MSG_FAILURE,
    MSG_FAILURE_IGNORED, MSG_SUCCESS, MSG_VIDEO_NOT_FOUND,
};
use app::model::Keyset;
use app::model::{
    AiVideo, LiveChange, ObjectId, Product, Role, Timestamp, User, VideoMetadata, VideoStatus,
    WebhookEvent, Workspace,
};
use app::ssr::store::mongo::{connect as mongo_connect, MongoStore};
use app::ssr::store::sqlite::SqliteStore;
use app::ssr::store::{
    Applied, Claim, EventDraft, EventQuery, EventStore, HourlyCount, KeptAnswer, LiveFeed,
    PageSpec, Paged, ProcessingCount, ProductStore, Quota, Store, StoreError, UserRecord,
    UserStore, VideoQuery, VideoStore, WorkspaceStore,
};
use serde_json::json;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

// --- backends

/// A store for one test, and what to clean up after it.
struct Backend {
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    mongo_db: Option<(String, String)>,
}

impl Backend {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path()).expect("open sqlite store");
        Self {
            store: Arc::new(store),
            _dir: Some(dir),
            mongo_db: None,
        }
    }

    /// `None` when MongoDB tests are skipped on purpose.
    async fn mongo(case: &str) -> Option<Self> {
        let uri = mongo_uri()?;
        let db = unique_db(case);
        let store = mongo_connect(&uri, &db, None)
            .await
            .unwrap_or_else(|e| panic!("connecting to MONGODB_TEST_URI: {e}"));
        Some(Self {
            store: Arc::new(store),
            _dir: None,
            mongo_db: Some((uri, db)),
        })
    }

    /// Drops the test's database (only after a passing test: a failing one leaves it to look at).
    async fn finish(self) {
        let Backend {
            store, mongo_db, ..
        } = self;
        drop(store);
        if let Some((uri, db)) = mongo_db {
            drop_db(&uri, &db).await;
        }
    }
}

fn mongo_uri() -> Option<String> {
    match std::env::var("MONGODB_TEST_URI") {
        Ok(uri) if !uri.trim().is_empty() => Some(uri),
        _ if std::env::var("RACKY_SKIP_MONGO_TESTS").as_deref() == Ok("1") => {
            eprintln!("MongoDB case skipped: RACKY_SKIP_MONGO_TESTS=1");
            None
        }
        _ => panic!(
            "MONGODB_TEST_URI is not set: run `make test` (it starts a local SecantusDB), or \
             `scripts/with-mongo.sh cargo test -p app --features ssr --test store_conformance`, or set \
             MONGODB_TEST_URI to a MongoDB replica set; RACKY_SKIP_MONGO_TESTS=1 skips these cases"
        ),
    }
}

/// A database name no other test (or run) uses; MongoDB allows 63 characters.
fn unique_db(case: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let case: String = case.chars().take(30).collect();
    format!(
        "conf_{case}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() % 1_000_000)
            .unwrap_or(0)
    )
}

async fn drop_db(uri: &str, db: &str) {
    if let Ok(client) = mongodb::Client::with_uri_str(uri).await {
        let _ = client.database(db).drop().await;
    }
}

type CaseFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One `#[tokio::test]` per (case, backend): `sqlite::<case>` and `mongo::<case>`.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let b = super::Backend::sqlite();
                    let run: fn(std::sync::Arc<dyn app::ssr::store::Store>) -> super::CaseFuture =
                        |s| Box::pin(super::$case(s));
                    run(b.store.clone()).await;
                    b.finish().await;
                }
            )*
        }
        mod mongo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(b) = super::Backend::mongo(stringify!($case)).await else { return };
                    let run: fn(std::sync::Arc<dyn app::ssr::store::Store>) -> super::CaseFuture =
                        |s| Box::pin(super::$case(s));
                    run(b.store.clone()).await;
                    b.finish().await;
                }
            )*
        }
    };
}

conformance!(
    users,
    revoked_sessions,
    idempotency_keys,
    keyset_pages,
    any_payload_is_recorded,
    concurrent_writes_fail_alone,
    workspaces_and_quota,
    quota_under_concurrency,
    products_and_their_video_entries,
    webhook_state_rules,
    webhook_for_a_missing_video,
    concurrent_webhooks_on_one_video,
    job_ids,
    timed_out_videos,
    callback_tokens,
    signed_redeliveries,
    fail_videos_skips_final_ones,
    event_log_filters_and_pages,
    purge_events_before,
    event_counts_by_hour,
    list_videos_filters,
    video_status_counts,
    processing_rollup,
    finished_rollup_and_workspace_activity,
    requeue_video,
    retryable_failed,
    notification_outbox,
    live_feed,
);

/// The outbox: a finishing change leaves a fan-out row in its transaction (a repeat does not);
/// leases keep a row to one sender until they expire; outcomes need the lease; a fan-out's
/// expansion is atomic and deduplicated; the log lists deliveries only; settings round-trip.
async fn notification_outbox(s: Arc<dyn Store>) {
    use app::model::notify::{
        Attempted, Channel, DeliveryStatus, Notification, NotificationSettings,
    };
    use app::ssr::store::NotificationQuery;
    use VideoStatus::*;
    let (ws, p, mut videos) = scene(&*s, &[]).await;
    for _ in 0..2 {
        let mut v = video(&p, Generating, at(30));
        v.callback_token_hash = Some("batch-hash-1".into());
        videos.push(v);
    }
    s.insert_videos(&videos).await.unwrap();
    let now = Timestamp::now();
    let lease = Duration::from_secs(30);
    assert!(s
        .claim_notifications(now, lease, "a", 10)
        .await
        .unwrap()
        .is_empty());
    let complete = |v: &AiVideo| {
        let draft = draft(WebhookKind::Success, &v.id.to_string(), at(100));
        (v.id, draft)
    };
    let (id0, d0) = complete(&videos[0]);
    s.apply_webhook(id0, &VideoChange::Complete(success_fields("n")), &OPEN, d0)
        .await
        .unwrap();
    let (_, d0b) = complete(&videos[0]);
    s.apply_webhook(id0, &VideoChange::Complete(success_fields("n")), &OPEN, d0b)
        .await
        .unwrap();
    assert_eq!(
        s.pending_notifications().await.unwrap(),
        1,
        "one fan-out row, none for the repeat"
    );
    let claimed = s.claim_notifications(now, lease, "a", 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let fan = &claimed[0];
    assert_eq!(fan.channel, Channel::Fanout);
    assert_eq!(fan.event_type, "video.completed");
    assert_eq!(fan.video_id, Some(id0));
    assert_eq!(fan.workspace_id, ws.id);
    assert!(
        s.claim_notifications(now, lease, "b", 10)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );
    assert!(!s
        .finish_notification(fan.id, "b", &Attempted::Delivered, now)
        .await
        .unwrap());
    // The expansion, with a delivery whose key is already known skipped.
    let delivery = |channel: Channel, key: &str| Notification {
        id: ObjectId::new(),
        channel,
        dedupe_key: key.into(),
        body: json!({ "n": key }),
        ..fan.clone()
    };
    let rows = [
        delivery(Channel::Slack, "slack:1"),
        delivery(Channel::Webhook, "webhook:1"),
    ];
    let expanded = [(fan.id, rows.to_vec())];
    assert_eq!(
        s.expand_notifications("a", &expanded, now).await.unwrap(),
        1
    );
    assert_eq!(
        s.expand_notifications("a", &expanded, now).await.unwrap(),
        0,
        "once"
    );
    assert_eq!(
        s.insert_notifications(&[delivery(Channel::Slack, "slack:1")])
            .await
            .unwrap(),
        0
    );
    let mut due = s.claim_notifications(now, lease, "c", 10).await.unwrap();
    due.sort_by_key(|n| n.dedupe_key.clone());
    assert_eq!(due.len(), 2);
    assert_eq!(due[0].body, json!({ "n": "slack:1" }));
    let (slack, hook) = (due[0].clone(), due[1].clone());
    assert!(s
        .finish_notification(slack.id, "c", &Attempted::Delivered, now)
        .await
        .unwrap());
    let later = Timestamp::from_millis(now.millis() + 3_600_000);
    let retry = Attempted::Retry {
        at: later,
        error: "answered HTTP 500".into(),
    };
    assert!(s
        .finish_notification(hook.id, "c", &retry, now)
        .await
        .unwrap());
    assert!(
        s.claim_notifications(now, lease, "d", 10)
            .await
            .unwrap()
            .is_empty(),
        "not due"
    );
    let again = s.claim_notifications(later, lease, "d", 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    assert_eq!(again[0].last_error.as_deref(), Some("answered HTTP 500"));
    // A lease that expired (its holder died) is taken over.
    let after_lease = Timestamp::from_millis(later.millis() + 31_000);
    let taken = s
        .claim_notifications(after_lease, lease, "e", 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert!(!s
        .finish_notification(hook.id, "d", &Attempted::Delivered, now)
        .await
        .unwrap());
    let failed = Attempted::Failed {
        error: "gave up".into(),
    };
    assert!(s
        .finish_notification(hook.id, "e", &failed, now)
        .await
        .unwrap());
    // The log: deliveries only, filters, then a redelivery.
    let q = |status| NotificationQuery {
        page: 1,
        limit: 10,
        workspace_id: Some(ws.id),
        status,
    };
    assert_eq!(s.count_notifications(&q(None)).await.unwrap(), 2);
    let delivered = s
        .page_notifications(&q(Some(DeliveryStatus::Delivered)))
        .await
        .unwrap();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].channel, Channel::Slack);
    let gone = s
        .page_notifications(&q(Some(DeliveryStatus::Failed)))
        .await
        .unwrap();
    assert_eq!(
        gone[0].attempts, 2,
        "the lapsed holder's attempt never counted"
    );
    let other = NotificationQuery {
        workspace_id: Some(ObjectId::new()),
        ..q(None)
    };
    assert_eq!(s.count_notifications(&other).await.unwrap(), 0);
    let back = s
        .redeliver_notification(hook.id, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.status, DeliveryStatus::Pending);
    assert_eq!(s.pending_notifications().await.unwrap(), 1);
    assert!(
        s.redeliver_notification(fan.id, now)
            .await
            .unwrap()
            .map(|n| n.status)
            != Some(DeliveryStatus::Pending),
        "a fan-out row is not redelivered"
    );
    // The batch's videos, and the settings.
    let batch = s.videos_of_batch("batch-hash-1").await.unwrap();
    assert_eq!(batch.len(), 2);
    assert!(s.notification_settings(ws.id).await.unwrap().is_none());
    let settings = NotificationSettings {
        slack_webhook_url: Some("https://hooks.slack.com/services/x".into()),
        webhook_secret: Some("whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=".into()),
        ..Default::default()
    };
    s.put_notification_settings(ws.id, &settings).await.unwrap();
    assert_eq!(
        s.notification_settings(ws.id).await.unwrap(),
        Some(settings)
    );
}

/// A revoked token id stays revoked; revoking twice is fine; others are not revoked.
async fn revoked_sessions(s: Arc<dyn Store>) {
    let jti = format!("{:032x}", rand_id());
    assert!(!s.is_session_revoked(&jti).await.unwrap());
    let expires = Timestamp::from_millis(Timestamp::now().millis() + 3_600_000);
    s.revoke_session(&jti, expires).await.unwrap();
    s.revoke_session(&jti, expires).await.unwrap();
    assert!(s.is_session_revoked(&jti).await.unwrap());
    assert!(!s.is_session_revoked("another").await.unwrap());
}

/// An idempotency key is claimed once per user; it is in progress until answered, then answers;
/// a released or expired key can be claimed again.
async fn idempotency_keys(s: Arc<dyn Store>) {
    let (alice, bob) = (ObjectId::new(), ObjectId::new());
    let now = Timestamp::now();
    let day_ago = Timestamp::from_millis(now.millis() - 86_400_000);
    let claim = |user, key: &'static str, f: &'static str, at: Timestamp| {
        let s = s.clone();
        async move { s.claim_key(user, key, f, at, day_ago).await.unwrap() }
    };
    assert_eq!(claim(alice, "k", "f1", now).await, Claim::Claimed);
    assert_eq!(
        claim(alice, "k", "f2", now).await,
        Claim::InProgress {
            fingerprint: "f1".into()
        }
    );
    assert_eq!(claim(bob, "k", "f2", now).await, Claim::Claimed, "per user");
    let answer = KeptAnswer {
        status: 202,
        body: r#"{"success":true}"#.into(),
    };
    s.answer_key(alice, "k", &answer).await.unwrap();
    assert_eq!(
        claim(alice, "k", "f1", now).await,
        Claim::Answered {
            fingerprint: "f1".into(),
            answer
        }
    );
    s.release_key(bob, "k").await.unwrap();
    assert_eq!(claim(bob, "k", "f3", now).await, Claim::Claimed);
    // A record older than the memory is replaced.
    let old = Timestamp::from_millis(day_ago.millis() - 1_000);
    assert_eq!(claim(alice, "old", "f1", old).await, Claim::Claimed);
    assert_eq!(claim(alice, "old", "f9", now).await, Claim::Claimed);
    assert_eq!(
        claim(alice, "old", "f1", now).await,
        Claim::InProgress {
            fingerprint: "f9".into()
        }
    );
    // Concurrent claims of one key: exactly one wins.
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        racers.spawn(claim(alice, "race", "f", now));
    }
    let all = racers.join_all().await;
    assert_eq!(all.iter().filter(|c| **c == Claim::Claimed).count(), 1);
}

/// A list walked page by page by keyset (`page(limit, after)`, pages of `size`), and the same list
/// read at once.
async fn walk_by_keyset<T, F, Fut>(
    page: F,
    key: impl Fn(&T) -> Keyset,
    size: u64,
) -> (Vec<T>, Vec<T>)
where
    F: Fn(u64, Option<Keyset>) -> Fut,
    Fut: Future<Output = Vec<T>>,
{
    let all = page(1000, None).await;
    let mut walked = Vec::new();
    let mut after = None;
    for _ in 0..100 {
        let items = page(size, after).await;
        let Some(last) = items.last() else { break };
        after = Some(key(last));
        walked.extend(items);
    }
    (walked, all)
}

/// Paging by keyset walks the same rows, in the same order, as paging by number: ties on
/// `createdAt` broken by id, filters kept, `to` exclusive.
async fn keyset_pages(s: Arc<dyn Store>) {
    use VideoStatus::*;
    for i in 0..23 {
        // Three events per second: ties on createdAt.
        let endpoint = if i % 4 == 0 {
            "/videos/failure"
        } else {
            "/videos/success"
        };
        s.insert_event(&event_at(endpoint, Some("v"), 200, at(i / 3)))
            .await
            .unwrap();
    }
    let walk_events = |q: EventQuery| {
        let s = s.clone();
        async move {
            let (walked, all) = walk_by_keyset(
                |limit, after| {
                    let (s, q) = (
                        s.clone(),
                        EventQuery {
                            limit,
                            after,
                            ..q.clone()
                        },
                    );
                    async move { s.page_events(&q).await.unwrap() }
                },
                |e: &WebhookEvent| Keyset {
                    at: e.created_at,
                    id: e.id,
                },
                4,
            )
            .await;
            assert_eq!(walked, all, "{q:?}");
            assert_eq!(s.count_events(&q).await.unwrap(), all.len() as u64);
            all.len()
        }
    };
    let base = EventQuery {
        page: 1,
        limit: 4,
        ..Default::default()
    };
    assert_eq!(walk_events(base.clone()).await, 23);
    assert_eq!(
        walk_events(EventQuery {
            endpoint: Some("/videos/failure".into()),
            ..base.clone()
        })
        .await,
        6
    );
    assert_eq!(
        walk_events(EventQuery {
            video_id: Some("v".into()),
            ..base.clone()
        })
        .await,
        23
    );
    // [at(2), at(5)): seconds 2, 3 and 4, three events each.
    assert_eq!(
        walk_events(EventQuery {
            from: Some(at(2)),
            to: Some(at(5)),
            ..base.clone()
        })
        .await,
        9
    );

    let (ws, _, _) = scene(
        &*s,
        &[
            Generating, Failed, Generating, Failed, Failed, Completed, Failed,
        ],
    )
    .await;
    let walk_videos = |q: VideoQuery| {
        let s = s.clone();
        async move {
            let (walked, all) = walk_by_keyset(
                |limit, after| {
                    let (s, q) = (
                        s.clone(),
                        VideoQuery {
                            limit,
                            after,
                            ..q.clone()
                        },
                    );
                    async move { s.page_videos(&q).await.unwrap() }
                },
                |v: &AiVideo| Keyset {
                    at: v.created_at,
                    id: v.id,
                },
                2,
            )
            .await;
            assert_eq!(walked, all, "{q:?}");
            assert_eq!(s.count_videos(&q).await.unwrap(), all.len() as u64);
            all.len()
        }
    };
    let base = VideoQuery {
        page: 1,
        limit: 2,
        ..Default::default()
    };
    assert_eq!(walk_videos(base.clone()).await, 7);
    assert_eq!(
        walk_videos(VideoQuery {
            status: Some(Failed),
            ..base.clone()
        })
        .await,
        4
    );
    assert_eq!(
        walk_videos(VideoQuery {
            workspace_id: Some(ws.id),
            status: Some(Generating),
            ..base.clone()
        })
        .await,
        2
    );
}

/// Whatever JSON a call carried, its event is recorded: as a document where the store can hold
/// one, else as the JSON text. Recording the same event twice keeps one.
async fn any_payload_is_recorded(s: Arc<dyn Store>) {
    let mut deep = json!("bottom");
    for _ in 0..120 {
        deep = json!({ "d": deep });
    }
    let payloads = [
        json!({ "videoId": "x", "ok": [1, 2, { "a": null }] }),
        json!({ "nul\u{0}key": 1 }),
        json!({ "$set": { "status": "completed" } }),
        json!({ "a.b": 1 }),
        json!({ "nested": { "$where": "1" } }),
        deep,
        json!("raw text"),
    ];
    for p in payloads {
        let event = WebhookEvent {
            id: ObjectId::new(),
            endpoint: "/videos/success".into(),
            payload: p.clone(),
            video_id: None,
            status_code: 400,
            outcome: "Malformed".into(),
            created_at: Timestamp::now(),
        };
        s.insert_event(&event).await.unwrap();
        s.insert_event(&event).await.unwrap();
        let got = s.find_event(event.id).await.unwrap().expect("recorded");
        assert!(
            got.payload == p || got.payload == json!(p.to_string()),
            "{} came back as {}",
            p.to_string().chars().take(80).collect::<String>(),
            got.payload.to_string().chars().take(80).collect::<String>()
        );
        let page = s
            .list_events(&EventQuery {
                page: 1,
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.items.iter().filter(|e| e.id == event.id).count(), 1);
    }
}

/// The candidates of an automatic retry: failed in the window, with retries left, oldest first.
async fn retryable_failed(s: Arc<dyn Store>) {
    let (_, _, videos) = scene(
        &*s,
        &[
            VideoStatus::Generating,
            VideoStatus::Generating,
            VideoStatus::Generating,
        ],
    )
    .await;
    let ids: Vec<ObjectId> = videos.iter().map(|v| v.id).collect();
    let t0 = Timestamp::now();
    let at = |ms| Timestamp::from_millis(t0.millis() + ms);
    s.fail_videos(&ids[..1], "first", at(10)).await.unwrap();
    s.fail_videos(&ids[1..2], "second", at(20)).await.unwrap();
    // The third was retried up to the limit already.
    s.fail_videos(&ids[2..], "third", at(30)).await.unwrap();
    for _ in 0..2 {
        s.requeue_video(ids[2], None, at(31))
            .await
            .unwrap()
            .unwrap();
        s.fail_videos(&ids[2..], "again", at(32)).await.unwrap();
    }
    let found = |since, before, max_retries, max| {
        let s = s.clone();
        async move {
            s.retryable_failed(since, before, max_retries, max)
                .await
                .unwrap()
                .into_iter()
                .map(|v| v.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(found(at(0), at(100), 2, 10).await, ids[..2].to_vec());
    assert_eq!(found(at(0), at(100), 3, 10).await, ids.to_vec());
    assert_eq!(found(at(0), at(100), 2, 1).await, ids[..1].to_vec());
    assert_eq!(found(at(15), at(100), 2, 10).await, ids[1..2].to_vec());
    assert_eq!(found(at(0), at(15), 2, 10).await, ids[..1].to_vec());
}

fn rand_id() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(7)
}

/// Writes that land together (on SQLite: in one group commit) succeed or fail one by one: a
/// refused write changes nothing and takes none of the others down.
async fn concurrent_writes_fail_alone(s: Arc<dyn Store>) {
    let ws = workspace("Busy", 1000);
    s.insert_workspace(&ws).await.unwrap();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let s = s.clone();
            // Every fourth email is taken by an earlier one.
            let email = format!("u{}@busy.test", if i % 4 == 3 { i - 1 } else { i });
            tokio::spawn(async move {
                let u = user(&email, Role::User, Some(ws.id));
                (u.user.id, s.insert_user(&u).await)
            })
        })
        .collect();
    let mut stored = 0;
    for t in tasks {
        let (id, result) = t.await.unwrap();
        match result {
            Ok(()) => {
                stored += 1;
                assert!(s.find_user(id).await.unwrap().is_some());
            }
            Err(StoreError::Conflict(m)) => {
                assert_eq!(m, "Email already registered");
                assert!(
                    s.find_user(id).await.unwrap().is_none(),
                    "a refused write left nothing"
                );
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(stored, 30);
    assert_eq!(s.count_users_with_role(Role::User).await.unwrap(), 30);
}

/// The sweeper fails what waited since before the cutoff, each once, bounded per call.
async fn timed_out_videos(s: Arc<dyn Store>) {
    use VideoStatus::*;
    // Updated at 20, 21, 22, 23 (a second apart).
    let (_, p, videos) = scene(&*s, &[Generating, Generating, Completed, Generating]).await;
    let first = s.fail_timed_out(at(22), at(100), 1).await.unwrap();
    assert_eq!(first.len(), 1, "bounded per call");
    assert_eq!(first[0].id, videos[0].id, "oldest first");
    let second = s.fail_timed_out(at(22), at(100), 10).await.unwrap();
    assert_eq!(
        second.iter().map(|v| v.id).collect::<Vec<_>>(),
        vec![videos[1].id]
    );
    assert!(
        s.fail_timed_out(at(22), at(101), 10)
            .await
            .unwrap()
            .is_empty(),
        "once each"
    );
    let v = s.find_video(videos[1].id).await.unwrap().unwrap();
    assert_eq!(v.status, Failed);
    assert_eq!(
        v.error.as_deref(),
        Some("Timed out waiting for the video generation service")
    );
    assert_eq!(entry_of(&*s, p.id, videos[1].id).await.status, Failed);
    assert_eq!(
        s.find_video(videos[2].id).await.unwrap().unwrap(),
        videos[2]
    );
    assert_eq!(
        s.find_video(videos[3].id).await.unwrap().unwrap(),
        videos[3]
    );
}

/// A video sent with a callback token keeps its hash (never its token), refuses a callback without
/// it (401, unchanged, recorded), accepts the right one or a verified signature, and a retry
/// replaces it.
async fn callback_tokens(s: Arc<dyn Store>) {
    use VideoStatus::*;
    let ws = workspace("Tokens", 10);
    s.insert_workspace(&ws).await.unwrap();
    let p = product(ws.id, "Lamp", at(10));
    s.insert_product(&p).await.unwrap();
    let mut v = video(&p, Generating, at(20));
    v.callback_token_hash = Some("a".repeat(64));
    s.insert_videos(std::slice::from_ref(&v)).await.unwrap();
    assert_eq!(
        s.find_video(v.id).await.unwrap().unwrap(),
        v,
        "the hash is stored"
    );

    let change = VideoChange::Complete(success_fields("forged"));
    for (i, auth) in [
        CallbackAuth::Token(None),
        CallbackAuth::Token(Some("b".repeat(64))),
    ]
    .iter()
    .enumerate()
    {
        let d = draft(WebhookKind::Success, &v.id.to_string(), at(30 + i as i64));
        let applied = s
            .apply_webhook(v.id, &change, auth, d.clone())
            .await
            .unwrap();
        assert_eq!(applied, Applied::Unauthorized);
        assert_eq!(s.find_video(v.id).await.unwrap().unwrap(), v, "unchanged");
        let recorded = s.find_event(d.id).await.unwrap().unwrap();
        assert_eq!(
            (recorded.status_code, recorded.outcome.as_str()),
            (401, "Invalid callback credentials")
        );
    }
    assert_eq!(entry_of(&*s, p.id, v.id).await.status, Generating);

    let right = CallbackAuth::Token(Some("a".repeat(64)));
    let d = draft(WebhookKind::Failure, &v.id.to_string(), at(40));
    let fail = VideoChange::Fail {
        error: "boom".into(),
    };
    let Applied::Done { video, .. } = s.apply_webhook(v.id, &fail, &right, d).await.unwrap() else {
        panic!("the right token is accepted");
    };
    assert_eq!(video.status, Failed);

    let again = s
        .requeue_video(v.id, Some("c".repeat(64)), at(50))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.callback_token_hash, Some("c".repeat(64)));
    let d = draft(WebhookKind::Success, &v.id.to_string(), at(60));
    assert_eq!(
        s.apply_webhook(v.id, &change, &right, d).await.unwrap(),
        Applied::Unauthorized,
        "a retry's new token replaces the old one"
    );
    let d = draft(WebhookKind::Success, &v.id.to_string(), at(61));
    let signed = CallbackAuth::Signed("msg_token_case".into());
    let Applied::Done { video, .. } = s.apply_webhook(v.id, &change, &signed, d).await.unwrap()
    else {
        panic!("a verified signature stands in for the token");
    };
    assert_eq!(video.status, Completed);
    assert_eq!(video.callback_token_hash, Some("c".repeat(64)));
}

/// A signed delivery's `webhook-id` seen again is answered as the first time, changes nothing, and
/// is recorded as a duplicate.
async fn signed_redeliveries(s: Arc<dyn Store>) {
    use VideoStatus::*;
    let (_, _, videos) = scene(&*s, &[Generating]).await;
    let v = &videos[0];
    let id = format!("msg_{}", v.id);
    let signed = CallbackAuth::Signed(id.clone());
    let ok = VideoChange::Complete(success_fields("first"));
    let d = draft(WebhookKind::Success, &v.id.to_string(), at(100));
    let Applied::Done { video: done, .. } = s.apply_webhook(v.id, &ok, &signed, d).await.unwrap()
    else {
        panic!("the first delivery applies");
    };
    assert_eq!(done.status, Completed);

    // The same delivery again, even with another body, changes nothing.
    let d = draft(WebhookKind::Failure, &v.id.to_string(), at(110));
    let fail = VideoChange::Fail { error: "x".into() };
    let again = s
        .apply_webhook(v.id, &fail, &signed, d.clone())
        .await
        .unwrap();
    assert_eq!(
        again,
        Applied::Duplicate {
            status_code: 200,
            outcome: "Video status updated successfully".into(),
            video: Some(done.clone()),
        }
    );
    assert_eq!(s.find_video(v.id).await.unwrap().unwrap(), done);
    let recorded = s.find_event(d.id).await.unwrap().unwrap();
    assert_eq!(recorded.status_code, 200);
    assert!(
        recorded
            .outcome
            .contains(&format!("duplicate of delivery {id}")),
        "{}",
        recorded.outcome
    );

    // Another delivery id is a new call; a 404 is remembered as a 404.
    let other = CallbackAuth::Signed(format!("{id}_2"));
    let d = draft(WebhookKind::Failure, &v.id.to_string(), at(120));
    assert!(matches!(
        s.apply_webhook(v.id, &fail, &other, d).await.unwrap(),
        Applied::Done { .. }
    ));
    let ghost = ObjectId::new();
    let lost = CallbackAuth::Signed(format!("{id}_3"));
    let d = draft(WebhookKind::Success, &ghost.to_string(), at(130));
    assert_eq!(
        s.apply_webhook(ghost, &ok, &lost, d).await.unwrap(),
        Applied::NotFound
    );
    let d = draft(WebhookKind::Success, &ghost.to_string(), at(131));
    assert_eq!(
        s.apply_webhook(ghost, &ok, &lost, d).await.unwrap(),
        Applied::Duplicate {
            status_code: 404,
            outcome: "Video not found".into(),
            video: None,
        }
    );
}

/// Authentication is the service's business; these cases are about the state rules.
const OPEN: CallbackAuth = CallbackAuth::Open;

// --- fixtures

/// A fixed point in time plus `secs` seconds.
fn at(secs: i64) -> Timestamp {
    Timestamp::from_millis(1_737_108_000_000 + secs * 1000) // 2025-01-17T10:00:00Z
}

fn workspace(name: &str, limit: u32) -> Workspace {
    Workspace {
        id: ObjectId::new(),
        name: name.into(),
        video_limit: limit,
        videos_used: 0,
        created_at: at(0),
        updated_at: at(0),
    }
}

fn user(email: &str, role: Role, ws: Option<ObjectId>) -> UserRecord {
    UserRecord {
        user: User {
            id: ObjectId::new(),
            email: email.into(),
            role,
            workspace_id: ws,
            created_at: at(1),
            updated_at: at(2),
        },
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
    }
}

fn product(ws: ObjectId, title: &str, created: Timestamp) -> Product {
    Product {
        id: ObjectId::new(),
        workspace_id: ws,
        user_id: Some(ObjectId::new()),
        title: title.into(),
        sku: format!("SKU-{title}"),
        img_urls: vec![
            "https://img.test/a.jpg".into(),
            "https://img.test/b.jpg".into(),
        ],
        videos: Vec::new(),
        created_at: created,
        updated_at: created,
    }
}

fn video(p: &Product, status: VideoStatus, created: Timestamp) -> AiVideo {
    AiVideo {
        id: ObjectId::new(),
        user_id: p.user_id.unwrap_or_else(ObjectId::new),
        workspace_id: p.workspace_id,
        product_id: p.id,
        template: "Product Showcase".into(),
        status,
        error: (status == VideoStatus::Failed).then(|| "earlier failure".to_string()),
        metadata: VideoMetadata {
            template_id: "template_001".into(),
            queued_at: Some(created),
            failed_at: (status == VideoStatus::Failed).then_some(created),
            aspect_ratio: Some("9:16".into()),
            ..Default::default()
        },
        created_at: created,
        updated_at: created,
        callback_token_hash: None,
    }
}

/// A workspace, one product, and videos in the given states (created a second apart).
async fn scene(s: &dyn Store, statuses: &[VideoStatus]) -> (Workspace, Product, Vec<AiVideo>) {
    let ws = workspace("Shop", 100);
    s.insert_workspace(&ws).await.unwrap();
    let p = product(ws.id, "Mug", at(10));
    s.insert_product(&p).await.unwrap();
    let videos: Vec<AiVideo> = statuses
        .iter()
        .enumerate()
        .map(|(i, st)| video(&p, *st, at(20 + i as i64)))
        .collect();
    s.insert_videos(&videos).await.unwrap();
    (ws, p, videos)
}

fn success_fields(tag: &str) -> SuccessFields {
    SuccessFields {
        youtube_video_id: Some(format!("yt_{tag}")),
        local_filename: Some(format!("/videos/{tag}.mp4")),
        video_url: Some(format!("https://cdn.test/{tag}.mp4")),
        img_s3_url: Some(format!("https://s3.test/{tag}.jpg")),
    }
}

fn draft(kind: WebhookKind, video_id: &str, created: Timestamp) -> EventDraft {
    EventDraft {
        id: ObjectId::new(),
        endpoint: kind.endpoint().into(),
        payload: json!({
            "videoId": video_id,
            "n": 3, "big": 9_000_000_000i64, "ratio": 0.5, "whole": 2.0, "ok": true, "none": null,
            "nested": { "list": [1, "two", { "$weird.key": "kept" }] },
        }),
        video_id: Some(video_id.into()),
        created_at: created,
        note: None,
    }
}

async fn entry_of(s: &dyn Store, p: ObjectId, v: ObjectId) -> app::model::ProductVideo {
    let product = s.find_product(p).await.unwrap().expect("product");
    product
        .videos
        .into_iter()
        .find(|e| e.video_id == Some(v))
        .expect("entry of the video")
}

fn event_at(endpoint: &str, video: Option<&str>, status: u16, created: Timestamp) -> WebhookEvent {
    WebhookEvent {
        id: ObjectId::new(),
        endpoint: endpoint.into(),
        payload: json!({ "videoId": video }),
        video_id: video.map(str::to_string),
        status_code: status,
        outcome: "ok".into(),
        created_at: created,
    }
}

// --- cases

async fn users(s: Arc<dyn Store>) {
    let ws = workspace("Shop", 10);
    s.insert_workspace(&ws).await.unwrap();
    let ann = user("ann@shop.test", Role::User, Some(ws.id));
    s.insert_user(&ann).await.unwrap();

    let found = s
        .find_user_by_email("ann@shop.test")
        .await
        .unwrap()
        .expect("by email");
    assert_eq!(found.user, ann.user);
    assert_eq!(found.password_hash, ann.password_hash);
    let found = s
        .find_user_by_email("ANN@Shop.Test")
        .await
        .unwrap()
        .expect("case-insensitive");
    assert_eq!(found.user.id, ann.user.id);
    assert!(s
        .find_user_by_email("bob@shop.test")
        .await
        .unwrap()
        .is_none());

    assert_eq!(
        s.find_user(ann.user.id).await.unwrap(),
        Some(ann.user.clone())
    );
    assert_eq!(s.find_user(ObjectId::new()).await.unwrap(), None);

    let dup = user("Ann@SHOP.test", Role::Admin, Some(ws.id));
    match s.insert_user(&dup).await {
        Err(StoreError::Conflict(m)) => assert_eq!(m, "Email already registered"),
        other => panic!("a duplicate email must be a conflict, got {other:?}"),
    }

    assert_eq!(s.count_users_with_role(Role::User).await.unwrap(), 1);
    assert_eq!(s.count_users_with_role(Role::Superadmin).await.unwrap(), 0);
    let root = user("root@racky.test", Role::Superadmin, None);
    s.insert_user(&root).await.unwrap();
    assert_eq!(s.count_users_with_role(Role::Superadmin).await.unwrap(), 1);
    assert_eq!(s.count_users_with_role(Role::Admin).await.unwrap(), 0);
    let back = s.find_user(root.user.id).await.unwrap().unwrap();
    assert_eq!(back.workspace_id, None);
}

async fn workspaces_and_quota(s: Arc<dyn Store>) {
    let b = workspace("Beta", 5);
    let a = workspace("Alpha", 3);
    s.insert_workspace(&b).await.unwrap();
    s.insert_workspace(&a).await.unwrap();
    assert_eq!(s.find_workspace(b.id).await.unwrap(), Some(b.clone()));
    assert_eq!(s.find_workspace(ObjectId::new()).await.unwrap(), None);
    let c = workspace("Charlie", 1);
    s.insert_workspace(&c).await.unwrap();
    // By name, a page at a time, with the count of all.
    let names = |page: Paged<Workspace>| -> (Vec<String>, u64) {
        (page.items.into_iter().map(|w| w.name).collect(), page.total)
    };
    let page = |page, limit| s.list_workspaces(PageSpec { page, limit });
    assert_eq!(
        names(page(1, 10).await.unwrap()),
        (vec!["Alpha".into(), "Beta".into(), "Charlie".into()], 3)
    );
    assert_eq!(
        names(page(1, 2).await.unwrap()),
        (vec!["Alpha".into(), "Beta".into()], 3)
    );
    assert_eq!(
        names(page(2, 2).await.unwrap()),
        (vec!["Charlie".into()], 3)
    );
    assert_eq!(
        names(page(3, 2).await.unwrap()),
        (vec![], 3),
        "past the end"
    );
    assert_eq!(names(page(1, 0).await.unwrap()), (vec![], 3));

    let used = |s: Arc<dyn Store>| async move {
        s.find_workspace(b.id).await.unwrap().unwrap().videos_used
    };
    assert_eq!(s.reserve_quota(b.id, 3).await.unwrap(), Quota::Reserved);
    assert_eq!(
        s.reserve_quota(b.id, 3).await.unwrap(),
        Quota::Exceeded { limit: 5, used: 3 }
    );
    assert_eq!(
        used(s.clone()).await,
        3,
        "a refused reservation counts nothing"
    );
    assert_eq!(s.reserve_quota(b.id, 2).await.unwrap(), Quota::Reserved);
    assert_eq!(used(s.clone()).await, 5);
    assert_eq!(
        s.reserve_quota(b.id, 1).await.unwrap(),
        Quota::Exceeded { limit: 5, used: 5 }
    );
    s.release_quota(b.id, 2).await.unwrap();
    assert_eq!(used(s.clone()).await, 3);
    s.release_quota(b.id, 10).await.unwrap();
    assert_eq!(used(s.clone()).await, 0, "never below zero");
    assert_eq!(
        s.reserve_quota(ObjectId::new(), 1).await.unwrap(),
        Quota::NoWorkspace
    );
    assert_eq!(
        s.find_workspace(a.id).await.unwrap().unwrap().videos_used,
        0,
        "other workspaces untouched"
    );
}

async fn quota_under_concurrency(s: Arc<dyn Store>) {
    let ws = workspace("Busy", 7);
    s.insert_workspace(&ws).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.reserve_quota(ws.id, 1).await.unwrap() })
        })
        .collect();
    let mut reserved = 0;
    for t in tasks {
        match t.await.unwrap() {
            Quota::Reserved => reserved += 1,
            Quota::Exceeded { limit, used } => {
                assert_eq!(limit, 7);
                assert!(used <= 7, "usage above the limit: {used}");
            }
            Quota::NoWorkspace => panic!("the workspace exists"),
        }
    }
    assert_eq!(reserved, 7, "exactly the limit is reserved");
    assert_eq!(
        s.find_workspace(ws.id).await.unwrap().unwrap().videos_used,
        7
    );
}

async fn products_and_their_video_entries(s: Arc<dyn Store>) {
    let ws = workspace("Shop", 10);
    let other = workspace("Other", 10);
    s.insert_workspace(&ws).await.unwrap();
    s.insert_workspace(&other).await.unwrap();
    let p1 = product(ws.id, "One", at(1));
    let p2 = product(ws.id, "Two", at(2));
    let mut p3 = product(ws.id, "Three", at(3));
    p3.user_id = None;
    let foreign = product(other.id, "Foreign", at(4));
    for p in [&p1, &p2, &p3, &foreign] {
        s.insert_product(p).await.unwrap();
    }
    assert_eq!(s.find_product(p3.id).await.unwrap(), Some(p3.clone()));
    assert_eq!(s.find_product(ObjectId::new()).await.unwrap(), None);

    let found = s
        .find_products(&[p2.id, ObjectId::new(), p1.id])
        .await
        .unwrap();
    let ids: Vec<ObjectId> = found.iter().map(|p| p.id).collect();
    assert_eq!(ids, [p2.id, p1.id], "found ones, in the order asked");
    assert!(s.find_products(&[]).await.unwrap().is_empty());

    let Paged { items: page, total } = s
        .list_products(ws.id, PageSpec { page: 1, limit: 2 })
        .await
        .unwrap();
    assert_eq!(total, 3);
    assert_eq!(
        page.iter().map(|p| p.id).collect::<Vec<_>>(),
        [p3.id, p2.id]
    );
    let Paged { items: page, total } = s
        .list_products(ws.id, PageSpec { page: 2, limit: 2 })
        .await
        .unwrap();
    assert_eq!(total, 3);
    assert_eq!(page, std::slice::from_ref(&p1));
    let Paged {
        items: page,
        total: _,
    } = s
        .list_products(ws.id, PageSpec { page: 3, limit: 2 })
        .await
        .unwrap();
    assert!(page.is_empty());

    // Videos come with their product entries, in one commit.
    let v1 = video(&p1, VideoStatus::Generating, at(30));
    let v2 = video(&p1, VideoStatus::Generating, at(31));
    let v3 = video(&p2, VideoStatus::Generating, at(32));
    s.insert_videos(&[v1.clone(), v2.clone(), v3.clone()])
        .await
        .unwrap();
    assert_eq!(s.find_video(v2.id).await.unwrap(), Some(v2.clone()));
    assert_eq!(s.find_video(ObjectId::new()).await.unwrap(), None);
    let one = s.find_product(p1.id).await.unwrap().unwrap();
    assert_eq!(one.videos.len(), 2);
    for (e, v) in one.videos.iter().zip([&v1, &v2]) {
        assert_eq!(e.video_id, Some(v.id));
        assert_eq!(e.template_id, "template_001");
        assert_eq!(e.template_name, "Product Showcase");
        assert_eq!(e.status, VideoStatus::Generating);
        assert_eq!(e.created_at, v.created_at);
        assert_eq!(
            (e.video_url.as_ref(), e.error.as_ref(), e.completed_at),
            (None, None, None)
        );
    }
    assert_eq!(
        one.updated_at,
        at(31),
        "the product was touched by its new videos"
    );
    assert_eq!(
        s.find_product(p2.id).await.unwrap().unwrap().videos.len(),
        1
    );
    let Paged {
        items: listed,
        total: _,
    } = s
        .list_products(ws.id, PageSpec { page: 1, limit: 10 })
        .await
        .unwrap();
    assert_eq!(
        listed.iter().find(|p| p.id == p1.id).unwrap().videos.len(),
        2
    );
}

async fn webhook_state_rules(s: Arc<dyn Store>) {
    use VideoStatus::*;
    struct Rule {
        from: VideoStatus,
        kind: WebhookKind,
        decision: Decision,
        to: VideoStatus,
        outcome: &'static str,
    }
    let rules = [
        Rule {
            from: Generating,
            kind: WebhookKind::Success,
            decision: Decision::Apply,
            to: Completed,
            outcome: MSG_SUCCESS,
        },
        Rule {
            from: Failed,
            kind: WebhookKind::Success,
            decision: Decision::Apply,
            to: Completed,
            outcome: MSG_SUCCESS,
        },
        Rule {
            from: Completed,
            kind: WebhookKind::Success,
            decision: Decision::Repeat,
            to: Completed,
            outcome: MSG_SUCCESS,
        },
        Rule {
            from: Generating,
            kind: WebhookKind::Failure,
            decision: Decision::Apply,
            to: Failed,
            outcome: MSG_FAILURE,
        },
        Rule {
            from: Failed,
            kind: WebhookKind::Failure,
            decision: Decision::Repeat,
            to: Failed,
            outcome: MSG_FAILURE,
        },
        Rule {
            from: Completed,
            kind: WebhookKind::Failure,
            decision: Decision::Ignore,
            to: Completed,
            outcome: MSG_FAILURE_IGNORED,
        },
    ];
    let (_, p, videos) = scene(&*s, &rules.iter().map(|r| r.from).collect::<Vec<_>>()).await;
    for (i, (rule, before)) in rules.iter().zip(&videos).enumerate() {
        let when = at(1000 + i as i64);
        let change = match rule.kind {
            WebhookKind::Success => VideoChange::Complete(success_fields(&i.to_string())),
            WebhookKind::Failure => VideoChange::Fail {
                error: format!("render error {i}"),
            },
        };
        let entry_before = entry_of(&*s, p.id, before.id).await;
        let d = draft(rule.kind, &before.id.to_string(), when);
        let applied = s
            .apply_webhook(before.id, &change, &OPEN, d.clone())
            .await
            .unwrap();
        let label = format!("{:?} on {:?}", rule.kind, rule.from);
        let Applied::Done {
            decision,
            video,
            previous,
        } = applied
        else {
            panic!("{label}: the video exists");
        };
        assert_eq!(decision, rule.decision, "{label}");
        assert_eq!(previous, rule.from, "{label}");
        assert_eq!(video.status, rule.to, "{label}");
        let stored = s.find_video(before.id).await.unwrap().unwrap();
        assert_eq!(
            stored, video,
            "{label}: what was returned is what is stored"
        );
        let entry = entry_of(&*s, p.id, before.id).await;
        assert_eq!(entry.status, rule.to, "{label}: the product entry agrees");

        if rule.decision == Decision::Apply {
            assert_eq!(stored.updated_at, when, "{label}");
            match &change {
                VideoChange::Complete(f) => {
                    assert_eq!(stored.error, None, "{label}");
                    assert_eq!(stored.metadata.youtube_video_id, f.youtube_video_id);
                    assert_eq!(stored.metadata.local_filename, f.local_filename);
                    assert_eq!(stored.metadata.video_url, f.video_url);
                    assert_eq!(stored.metadata.img_s3_url, f.img_s3_url);
                    assert_eq!(stored.metadata.completed_at, Some(when));
                    assert_eq!(entry.video_url, f.video_url);
                    assert_eq!(
                        entry.youtube_url.as_deref(),
                        Some(format!("https://www.youtube.com/watch?v=yt_{i}").as_str())
                    );
                    assert_eq!(entry.img_s3_url, f.img_s3_url);
                    assert_eq!(entry.error, None, "{label}: a completed entry has no error");
                    assert_eq!(entry.completed_at, Some(when));
                }
                VideoChange::Fail { error } => {
                    assert_eq!(stored.error.as_ref(), Some(error));
                    assert_eq!(stored.metadata.failed_at, Some(when));
                    assert_eq!(entry.error.as_ref(), Some(error));
                    assert_eq!(entry.failed_at, Some(when));
                }
            }
            // Unchanged parts stay.
            assert_eq!(stored.metadata.queued_at, before.metadata.queued_at);
            assert_eq!(stored.metadata.aspect_ratio, before.metadata.aspect_ratio);
            assert_eq!(stored.created_at, before.created_at);
        } else {
            assert_eq!(&stored, before, "{label}: nothing changes");
            assert_eq!(
                entry, entry_before,
                "{label}: the entry does not change either"
            );
        }

        let event = s
            .find_event(d.id)
            .await
            .unwrap()
            .expect("the event is recorded");
        assert_eq!(event.status_code, 200, "{label}");
        assert_eq!(event.outcome, rule.outcome, "{label}");
        assert_eq!(event.endpoint, rule.kind.endpoint());
        assert_eq!(event.payload, d.payload, "{label}: the payload as received");
        assert_eq!(event.video_id, d.video_id);
        assert_eq!(event.created_at, when);
    }
}

async fn webhook_for_a_missing_video(s: Arc<dyn Store>) {
    let missing = ObjectId::new();
    let d = draft(WebhookKind::Success, &missing.to_string(), at(5));
    let applied = s
        .apply_webhook(
            missing,
            &VideoChange::Complete(success_fields("x")),
            &OPEN,
            d.clone(),
        )
        .await
        .unwrap();
    assert!(matches!(applied, Applied::NotFound));
    let event = s.find_event(d.id).await.unwrap().expect("recorded anyway");
    assert_eq!(event.status_code, 404);
    assert_eq!(event.outcome, MSG_VIDEO_NOT_FOUND);
    assert_eq!(event.payload, d.payload);
    assert_eq!(event.video_id, Some(missing.to_string()));
    assert_eq!(s.find_video(missing).await.unwrap(), None);

    // A call rejected before reaching a video is recorded on its own, as given.
    let rejected = WebhookEvent {
        id: ObjectId::new(),
        endpoint: "/videos/failure".into(),
        payload: json!("not json {"),
        video_id: Some("not-an-id".into()),
        status_code: 400,
        outcome: "Invalid videoId format".into(),
        created_at: at(6),
    };
    s.insert_event(&rejected).await.unwrap();
    assert_eq!(s.find_event(rejected.id).await.unwrap(), Some(rejected));
    assert_eq!(s.find_event(ObjectId::new()).await.unwrap(), None);
}

async fn concurrent_webhooks_on_one_video(s: Arc<dyn Store>) {
    let (_, p, videos) = scene(&*s, &[VideoStatus::Generating]).await;
    let v = videos[0].clone();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let (kind, change) = if i % 2 == 0 {
                    (
                        WebhookKind::Success,
                        VideoChange::Complete(success_fields("c")),
                    )
                } else {
                    (
                        WebhookKind::Failure,
                        VideoChange::Fail {
                            error: "boom".into(),
                        },
                    )
                };
                let d = draft(kind, &v.id.to_string(), at(100 + i));
                s.apply_webhook(v.id, &change, &OPEN, d).await.unwrap()
            })
        })
        .collect();
    let mut completions = 0;
    for t in tasks {
        if let Applied::Done {
            decision: Decision::Apply,
            video,
            ..
        } = t.await.unwrap()
        {
            if video.status == VideoStatus::Completed {
                completions += 1;
            }
        }
    }
    assert_eq!(
        completions, 1,
        "completed is final: exactly one success applies"
    );
    let stored = s.find_video(v.id).await.unwrap().unwrap();
    assert_eq!(stored.status, VideoStatus::Completed);
    assert_eq!(stored.error, None);
    let entry = entry_of(&*s, p.id, v.id).await;
    assert_eq!(entry.status, VideoStatus::Completed, "the entry agrees");
    assert_eq!(entry.error, None);
    assert_eq!(entry.completed_at, stored.metadata.completed_at);
    let Paged {
        items: events,
        total,
    } = s
        .list_events(&EventQuery {
            page: 1,
            limit: 100,
            video_id: Some(v.id.to_string()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(total, 20, "every call is recorded");
    assert_eq!(events.len(), 20);
    assert!(events.iter().all(|e| e.status_code == 200));
}

async fn job_ids(s: Arc<dyn Store>) {
    let (_, _, videos) = scene(&*s, &[VideoStatus::Generating, VideoStatus::Generating]).await;
    s.set_job_ids(&[
        (videos[0].id, "job_0".into()),
        (videos[1].id, "job_1".into()),
        (ObjectId::new(), "job_x".into()),
    ])
    .await
    .unwrap();
    for (i, v) in videos.iter().enumerate() {
        let stored = s.find_video(v.id).await.unwrap().unwrap();
        assert_eq!(stored.metadata.external_job_id, Some(format!("job_{i}")));
        let mut expected = v.clone();
        expected.metadata.external_job_id = Some(format!("job_{i}"));
        assert_eq!(stored, expected, "nothing else changes");
    }
    s.set_job_ids(&[]).await.unwrap();
}

async fn fail_videos_skips_final_ones(s: Arc<dyn Store>) {
    use VideoStatus::*;
    let (_, p, videos) = scene(&*s, &[Generating, Completed, Failed, Generating]).await;
    let ids: Vec<ObjectId> = videos[..3].iter().map(|v| v.id).collect();
    let failed = s
        .fail_videos(
            &[ids.clone(), vec![ObjectId::new()]].concat(),
            "RCK unreachable",
            at(500),
        )
        .await
        .unwrap();
    let g = s.find_video(videos[0].id).await.unwrap().unwrap();
    assert_eq!(
        failed,
        vec![g.clone()],
        "returns exactly what it changed, as stored"
    );
    assert_eq!(g.status, Failed);
    assert_eq!(g.error.as_deref(), Some("RCK unreachable"));
    assert_eq!(g.metadata.failed_at, Some(at(500)));
    assert_eq!(g.updated_at, at(500));
    let e = entry_of(&*s, p.id, videos[0].id).await;
    assert_eq!(
        (e.status, e.error.as_deref()),
        (Failed, Some("RCK unreachable"))
    );
    assert_eq!(
        s.find_video(videos[1].id).await.unwrap().unwrap(),
        videos[1],
        "completed stays"
    );
    assert_eq!(
        s.find_video(videos[2].id).await.unwrap().unwrap(),
        videos[2],
        "failed keeps its error"
    );
    assert_eq!(
        s.find_video(videos[3].id).await.unwrap().unwrap(),
        videos[3],
        "not in the list"
    );
    assert_eq!(entry_of(&*s, p.id, videos[1].id).await.status, Completed);
    assert!(s.fail_videos(&[], "x", at(501)).await.unwrap().is_empty());
}

async fn event_log_filters_and_pages(s: Arc<dyn Store>) {
    let v1 = ObjectId::new().to_string();
    let v2 = ObjectId::new().to_string();
    let events = vec![
        event_at("/videos/success", Some(&v1), 200, at(10)),
        event_at("/videos/failure", Some(&v1), 200, at(20)),
        event_at("/videos/success", Some(&v2), 404, at(30)),
        event_at("/videos/success", None, 400, at(40)),
        event_at("/videos/failure", Some("garbage"), 400, at(40)),
    ];
    for e in &events {
        s.insert_event(e).await.unwrap();
    }
    let q = |f: &dyn Fn(&mut EventQuery)| {
        let mut q = EventQuery {
            page: 1,
            limit: 10,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    let ids = |v: &[WebhookEvent]| v.iter().map(|e| e.id).collect::<Vec<_>>();

    // Newest first; equal times by id, newest id first.
    let Paged { items: all, total } = s.list_events(&q(&|_| {})).await.unwrap();
    assert_eq!(total, 5);
    let tie = if events[4].id > events[3].id {
        [events[4].id, events[3].id]
    } else {
        [events[3].id, events[4].id]
    };
    assert_eq!(
        ids(&all),
        [tie[0], tie[1], events[2].id, events[1].id, events[0].id]
    );
    assert_eq!(all[2], events[2], "stored as given");

    let Paged { items: page, total } = s
        .list_events(&q(&|q| {
            q.page = 2;
            q.limit = 2
        }))
        .await
        .unwrap();
    assert_eq!(total, 5);
    assert_eq!(ids(&page), [events[2].id, events[1].id]);
    let Paged { items: page, total } = s
        .list_events(&q(&|q| {
            q.page = 4;
            q.limit = 2
        }))
        .await
        .unwrap();
    assert_eq!((page.len(), total), (0, 5));

    let Paged { items: page, total } = s
        .list_events(&q(&|q| q.endpoint = Some("/videos/failure".into())))
        .await
        .unwrap();
    assert_eq!(total, 2);
    assert!(page.iter().all(|e| e.endpoint == "/videos/failure"));

    let Paged { items: page, total } = s
        .list_events(&q(&|q| q.video_id = Some(v1.clone())))
        .await
        .unwrap();
    assert_eq!((ids(&page), total), (vec![events[1].id, events[0].id], 2));
    let Paged {
        items: page,
        total: _,
    } = s
        .list_events(&q(&|q| q.video_id = Some("garbage".into())))
        .await
        .unwrap();
    assert_eq!(ids(&page), [events[4].id]);

    // `from` is inclusive, `to` exclusive.
    let Paged { items: page, total } = s
        .list_events(&q(&|q| {
            q.from = Some(at(20));
            q.to = Some(at(40));
        }))
        .await
        .unwrap();
    assert_eq!((ids(&page), total), (vec![events[2].id, events[1].id], 2));

    let Paged { items: page, total } = s
        .list_events(&q(&|q| {
            q.endpoint = Some("/videos/success".into());
            q.from = Some(at(30));
        }))
        .await
        .unwrap();
    assert_eq!((ids(&page), total), (vec![events[3].id, events[2].id], 2));

    assert_eq!(
        s.find_event(events[3].id).await.unwrap(),
        Some(events[3].clone())
    );
}

async fn purge_events_before(s: Arc<dyn Store>) {
    let mut old = Vec::new();
    for i in 0..5 {
        let e = event_at("/videos/success", None, 200, at(i));
        s.insert_event(&e).await.unwrap();
        old.push(e);
    }
    let mut new = Vec::new();
    for i in 0..3 {
        let e = event_at("/videos/success", None, 200, at(100 + i));
        s.insert_event(&e).await.unwrap();
        new.push(e);
    }
    assert_eq!(s.purge_events_before(at(100), 2).await.unwrap(), 2);
    // Oldest go first.
    assert_eq!(s.find_event(old[0].id).await.unwrap(), None);
    assert_eq!(s.find_event(old[1].id).await.unwrap(), None);
    assert!(s.find_event(old[2].id).await.unwrap().is_some());
    assert_eq!(s.purge_events_before(at(100), 10).await.unwrap(), 3);
    assert_eq!(s.purge_events_before(at(100), 10).await.unwrap(), 0);
    let Paged { items: left, total } = s
        .list_events(&EventQuery {
            page: 1,
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(total, 3);
    assert_eq!(left.len(), 3);
    assert!(new.iter().all(|e| left.contains(e)));
}

async fn event_counts_by_hour(s: Arc<dyn Store>) {
    let ok = "/videos/success";
    let ko = "/videos/failure";
    for (endpoint, status, secs) in [
        (ok, 200, 5 * 60),
        (ok, 200, 30 * 60),
        (ok, 404, 40 * 60),
        (ko, 200, 45 * 60),
        (ok, 400, 70 * 60),
        (ok, 299, 71 * 60),
        (ok, 200, 120 * 60), // at `to`: excluded
        (ok, 200, -1),       // before `from`: excluded
    ] {
        s.insert_event(&event_at(endpoint, None, status, at(secs)))
            .await
            .unwrap();
    }
    let mut counts = s.event_counts_by_hour(at(0), at(7200)).await.unwrap();
    counts
        .sort_by(|a, b| (a.hour, &a.endpoint, a.accepted).cmp(&(b.hour, &b.endpoint, b.accepted)));
    let h = |hour: i64, endpoint: &str, accepted: bool, count: u64| HourlyCount {
        hour: at(hour * 3600),
        endpoint: endpoint.into(),
        accepted,
        count,
    };
    assert_eq!(
        counts,
        [
            h(0, ko, true, 1),
            h(0, ok, false, 1),
            h(0, ok, true, 2),
            h(1, ok, false, 1),
            h(1, ok, true, 1),
        ]
    );
    // A range that starts mid-hour: the part-hour counted from the events, the rest from the rollup.
    let mut counts = s.event_counts_by_hour(at(600), at(7200)).await.unwrap();
    counts
        .sort_by(|a, b| (a.hour, &a.endpoint, a.accepted).cmp(&(b.hour, &b.endpoint, b.accepted)));
    assert_eq!(
        counts,
        [
            h(0, ko, true, 1),
            h(0, ok, false, 1),
            h(0, ok, true, 1),
            h(1, ok, false, 1),
            h(1, ok, true, 1),
        ]
    );
    assert!(s
        .event_counts_by_hour(at(9000), at(9999))
        .await
        .unwrap()
        .is_empty());
}

async fn list_videos_filters(s: Arc<dyn Store>) {
    use VideoStatus::*;
    let (ws, _, videos) = scene(&*s, &[Generating, Completed, Generating, Failed]).await;
    // Another workspace, with a recent generating video.
    let other = workspace("Other", 10);
    s.insert_workspace(&other).await.unwrap();
    let op = product(other.id, "Other", at(5));
    s.insert_product(&op).await.unwrap();
    let mut fresh = video(&op, Generating, at(50));
    fresh.updated_at = at(5000);
    s.insert_videos(&[fresh.clone()]).await.unwrap();

    let q = |f: &dyn Fn(&mut VideoQuery)| {
        let mut q = VideoQuery {
            page: 1,
            limit: 10,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    let ids = |v: &[AiVideo]| v.iter().map(|v| v.id).collect::<Vec<_>>();

    let Paged { items: all, total } = s.list_videos(&q(&|_| {})).await.unwrap();
    assert_eq!(total, 5);
    assert_eq!(
        ids(&all),
        [
            fresh.id,
            videos[3].id,
            videos[2].id,
            videos[1].id,
            videos[0].id
        ],
        "newest first"
    );
    assert_eq!(all[1], videos[3]);

    let Paged { items: page, total } = s
        .list_videos(&q(&|q| {
            q.page = 2;
            q.limit = 2
        }))
        .await
        .unwrap();
    assert_eq!((ids(&page), total), (vec![videos[2].id, videos[1].id], 5));

    let Paged { items: page, total } = s
        .list_videos(&q(&|q| q.status = Some(Generating)))
        .await
        .unwrap();
    assert_eq!(
        (ids(&page), total),
        (vec![fresh.id, videos[2].id, videos[0].id], 3)
    );

    let Paged { items: page, total } = s
        .list_videos(&q(&|q| q.workspace_id = Some(ws.id)))
        .await
        .unwrap();
    assert_eq!(total, 4);
    assert!(page.iter().all(|v| v.workspace_id == ws.id));

    let Paged { items: page, total } = s
        .list_videos(&q(&|q| q.video_id = Some(videos[1].id)))
        .await
        .unwrap();
    assert_eq!((page, total), (vec![videos[1].clone()], 1));

    // Stuck: generating and not updated since the cut-off.
    let Paged { items: page, total } = s
        .list_videos(&q(&|q| q.stuck_before = Some(at(1000))))
        .await
        .unwrap();
    assert_eq!((ids(&page), total), (vec![videos[2].id, videos[0].id], 2));
    let Paged { items: page, total } = s
        .list_videos(&q(&|q| {
            q.stuck_before = Some(at(1000));
            q.status = Some(Generating);
            q.workspace_id = Some(ws.id);
        }))
        .await
        .unwrap();
    assert_eq!((ids(&page), total), (vec![videos[2].id, videos[0].id], 2));
    let Paged { items: page, total } = s
        .list_videos(&q(&|q| {
            q.stuck_before = Some(at(1000));
            q.status = Some(Failed);
        }))
        .await
        .unwrap();
    assert_eq!((page.len(), total), (0, 0), "stuck means generating");
}

async fn video_status_counts(s: Arc<dyn Store>) {
    use VideoStatus::*;
    assert!(s
        .video_status_counts()
        .await
        .unwrap()
        .iter()
        .all(|(_, n)| *n == 0));
    scene(
        &*s,
        &[Generating, Completed, Generating, Failed, Generating],
    )
    .await;
    let mut counts: Vec<(VideoStatus, u64)> = s
        .video_status_counts()
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    counts.sort_by_key(|(st, _)| st.as_str());
    assert_eq!(counts, [(Completed, 1), (Failed, 1), (Generating, 3)]);
}

async fn processing_rollup(s: Arc<dyn Store>) {
    use VideoStatus::*;
    let (_, _, videos) = scene(&*s, &[Generating, Generating, Generating, Generating]).await;
    let finish = |i: usize, secs: i64, ok: bool| {
        let s = s.clone();
        let v = videos[i].clone();
        async move {
            let (kind, change) = if ok {
                (
                    WebhookKind::Success,
                    VideoChange::Complete(success_fields("f")),
                )
            } else {
                (
                    WebhookKind::Failure,
                    VideoChange::Fail { error: "e".into() },
                )
            };
            s.apply_webhook(
                v.id,
                &change,
                &OPEN,
                draft(kind, &v.id.to_string(), at(secs)),
            )
            .await
            .unwrap();
        }
    };
    finish(0, 1000, true).await;
    finish(1, 1100, false).await;
    finish(2, 5000, true).await; // another hour
    let row = |i: usize, status, secs| {
        let ms = (at(secs).millis() - videos[i].metadata.queued_at.unwrap().millis()) as u64;
        ProcessingCount {
            status,
            bucket: processing_bucket(ms),
            count: 1,
            sum_ms: ms,
        }
    };
    let sorted = |mut rows: Vec<ProcessingCount>| {
        rows.sort_by_key(|r| (r.status.as_str(), r.bucket));
        rows
    };
    let got = sorted(s.processing_counts(at(900), at(2000)).await.unwrap());
    assert_eq!(got, [row(0, Completed, 1000), row(1, Failed, 1100)]);
    // The hour of the third is not asked for.
    assert_eq!(s.processing_counts(at(0), at(3600)).await.unwrap().len(), 2);
    assert_eq!(s.processing_counts(at(0), at(7200)).await.unwrap().len(), 3);
    // A video that leaves its final state leaves the rollup (and the status counts follow).
    s.requeue_video(videos[1].id, None, at(1200))
        .await
        .unwrap()
        .unwrap();
    let got = sorted(s.processing_counts(at(900), at(2000)).await.unwrap());
    assert_eq!(got, [row(0, Completed, 1000)]);
    // Over days: the whole days from the daily rollup, the same answer.
    let days = sorted(
        s.processing_counts(at(-2 * 86_400 + 1234), at(3 * 86_400 + 99))
            .await
            .unwrap(),
    );
    let hours = sorted(s.processing_counts(at(0), at(7200)).await.unwrap());
    assert_eq!(days, hours);
    assert_eq!(days.len(), 2);
    let mut counts = s.video_status_counts().await.unwrap();
    counts.retain(|(_, n)| *n > 0);
    counts.sort_by_key(|(st, _)| st.as_str());
    assert_eq!(counts, [(Completed, 2), (Generating, 2)]);
}

/// Failure reasons and per-workspace success: final videos by the hour they finished in, kept
/// with every change (a retry takes its failure away; a repeat moves nothing), filled for videos
/// stored final; the error filter of the list; a workspace's activity and its limit.
async fn finished_rollup_and_workspace_activity(s: Arc<dyn Store>) {
    use VideoStatus::*;
    // The fourth is stored failed (`earlier failure` at 23 s), as a migration would find it.
    let (ws, p, videos) = scene(&*s, &[Generating, Generating, Generating, Failed]).await;
    let fail = |i: usize, secs: i64, error: &str| {
        let s = s.clone();
        let v = videos[i].clone();
        let error = error.to_string();
        async move {
            s.apply_webhook(
                v.id,
                &VideoChange::Fail { error },
                &OPEN,
                draft(WebhookKind::Failure, &v.id.to_string(), at(secs)),
            )
            .await
            .unwrap();
        }
    };
    fail(0, 100, "  Template not found \n").await;
    fail(1, 200, "Template not found").await;
    // A repeat of the same failure changes nothing.
    fail(1, 250, "Template not found").await;
    s.apply_webhook(
        videos[2].id,
        &VideoChange::Complete(success_fields("ok")),
        &OPEN,
        draft(WebhookKind::Success, &videos[2].id.to_string(), at(300)),
    )
    .await
    .unwrap();
    let (reasons, failed) = s.failure_reasons(at(0), at(3000), 10).await.unwrap();
    assert_eq!(failed, 3);
    assert_eq!(
        reasons,
        [
            ("Template not found".to_string(), 2),
            ("earlier failure".to_string(), 1)
        ]
    );
    assert_eq!(
        s.failure_reasons(at(0), at(3000), 1).await.unwrap(),
        (vec![("Template not found".to_string(), 2)], 3)
    );
    assert_eq!(
        s.finished_by_workspace(at(0), at(3000), 10).await.unwrap(),
        [(ws.id, 1, 3)]
    );
    // Another hour holds none of them; whole days read the daily rollup, with the same answer.
    assert_eq!(
        s.failure_reasons(at(7200), at(9000), 10).await.unwrap().1,
        0
    );
    assert_eq!(
        s.finished_by_workspace(at(-2 * 86_400), at(3 * 86_400), 10)
            .await
            .unwrap(),
        [(ws.id, 1, 3)]
    );
    // A retry takes its failure away.
    s.requeue_video(videos[0].id, None, at(400))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.failure_reasons(at(0), at(3000), 10).await.unwrap(),
        (
            vec![
                ("Template not found".to_string(), 1),
                ("earlier failure".to_string(), 1)
            ],
            2
        )
    );
    // The list's error filter matches the start of the error.
    let by_error = |prefix: &str| {
        let s = s.clone();
        let q = VideoQuery {
            page: 1,
            limit: 10,
            status: Some(Failed),
            error_prefix: Some(prefix.to_string()),
            ..Default::default()
        };
        async move {
            let mut ids: Vec<ObjectId> = s
                .page_videos(&q)
                .await
                .unwrap()
                .iter()
                .map(|v| v.id)
                .collect();
            ids.sort();
            (ids, s.count_videos(&q).await.unwrap())
        }
    };
    assert_eq!(by_error("Template").await, (vec![videos[1].id], 1));
    assert_eq!(by_error("earlier failure").await, (vec![videos[3].id], 1));
    assert_eq!(
        by_error("Template.*").await.1,
        0,
        "the prefix is text, not a pattern"
    );
    // The workspace's activity, and its limit.
    let (mut counts, newest) = s.workspace_activity(ws.id).await.unwrap();
    counts.retain(|(_, n)| *n > 0);
    counts.sort_by_key(|(st, _)| st.as_str());
    assert_eq!(counts, [(Completed, 1), (Failed, 2), (Generating, 1)]);
    assert_eq!(newest, Some(videos[3].created_at));
    assert_eq!(s.workspace_activity(ObjectId::new()).await.unwrap().1, None);
    let changed = s.set_video_limit(ws.id, 7).await.unwrap().unwrap();
    assert_eq!(changed.video_limit, 7);
    assert_eq!(
        s.find_workspace(ws.id).await.unwrap().unwrap().video_limit,
        7
    );
    assert!(s
        .set_video_limit(ObjectId::new(), 7)
        .await
        .unwrap()
        .is_none());
    let _ = p;
}

async fn requeue_video(s: Arc<dyn Store>) {
    use VideoStatus::*;
    let (_, p, videos) = scene(&*s, &[Generating]).await;
    let v = &videos[0];
    s.set_job_ids(&[(v.id, "job_1".into())]).await.unwrap();
    assert_eq!(
        s.requeue_video(v.id, None, at(300)).await.unwrap(),
        None,
        "only failed videos"
    );
    s.apply_webhook(
        v.id,
        &VideoChange::Fail {
            error: "bad frame".into(),
        },
        &OPEN,
        draft(WebhookKind::Failure, &v.id.to_string(), at(200)),
    )
    .await
    .unwrap();
    let back = s
        .requeue_video(v.id, None, at(300))
        .await
        .unwrap()
        .expect("requeued");
    assert_eq!(back.status, Generating);
    assert_eq!(back.error, None);
    assert_eq!(back.updated_at, at(300));
    assert_eq!(back.metadata.queued_at, Some(at(300)));
    assert_eq!(back.metadata.failed_at, None);
    assert_eq!(back.metadata.completed_at, None);
    assert_eq!(back.metadata.external_job_id, None, "the old job id goes");
    assert_eq!(back.metadata.retry_count, Some(1));
    assert_eq!(back.metadata.aspect_ratio, v.metadata.aspect_ratio);
    assert_eq!(s.find_video(v.id).await.unwrap(), Some(back.clone()));
    let e = entry_of(&*s, p.id, v.id).await;
    assert_eq!((e.status, e.error, e.failed_at), (Generating, None, None));
    assert_eq!(
        s.requeue_video(v.id, None, at(301)).await.unwrap(),
        None,
        "already generating"
    );
    assert_eq!(
        s.requeue_video(ObjectId::new(), None, at(301))
            .await
            .unwrap(),
        None
    );

    s.fail_videos(&[v.id], "RCK down", at(400)).await.unwrap();
    let again = s.requeue_video(v.id, None, at(500)).await.unwrap().unwrap();
    assert_eq!(again.metadata.retry_count, Some(2));
}

async fn live_feed(s: Arc<dyn Store>) {
    let mut rx = s.subscribe();
    let (_, _, videos) = scene(&*s, &[VideoStatus::Generating]).await;
    let v = &videos[0];
    let d = draft(WebhookKind::Success, &v.id.to_string(), at(100));
    s.apply_webhook(
        v.id,
        &VideoChange::Complete(success_fields("live")),
        &OPEN,
        d.clone(),
    )
    .await
    .unwrap();
    let mut created = false;
    let mut completed = None;
    let mut event = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !(created && completed.is_some() && event.is_some()) {
        let change = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "live feed: within 20 s got created={created} completed={} event={}",
                    completed.is_some(),
                    event.is_some()
                )
            })
            .expect("the feed stays open");
        match change.change.clone() {
            LiveChange::Video { video } if video.id == v.id => match video.status {
                VideoStatus::Generating => created = true,
                VideoStatus::Completed => completed = Some(video),
                _ => {}
            },
            LiveChange::Event { event: e } if e.id == d.id => event = Some(e),
            _ => {}
        }
    }
    // The feed carries summaries: the stored records' ids, status and times.
    let completed = completed.unwrap();
    let stored = s.find_video(v.id).await.unwrap().unwrap();
    let LiveChange::Video { video: summary } = LiveChange::video(&stored) else {
        unreachable!()
    };
    assert_eq!(completed, summary);
    assert_eq!(completed.updated_at, stored.updated_at);
    let event = event.unwrap();
    assert_eq!(event.status_code, 200);
    let stored = s.find_event(d.id).await.unwrap().unwrap();
    assert_eq!(stored.payload, d.payload);
    assert_eq!(LiveChange::Event { event }, LiveChange::event(&stored));
}

// --- MongoDB only: the retention TTL index and the document shapes

mod mongo_only {
    use super::*;
    use mongodb::bson::{doc, Bson, Document};

    async fn ttl_secs(uri: &str, db: &str) -> Option<i64> {
        let client = mongodb::Client::with_uri_str(uri).await.unwrap();
        let mut cursor = client
            .database(db)
            .collection::<Document>("webhookevents")
            .list_indexes()
            .await
            .unwrap();
        let mut found = None;
        while cursor.advance().await.unwrap() {
            let ix = cursor.deserialize_current().unwrap();
            if let Some(d) = ix.options.and_then(|o| o.expire_after) {
                assert_eq!(ix.keys, doc! { "createdAt": 1 });
                assert!(found.is_none(), "one TTL index at most");
                found = Some(d.as_secs() as i64);
            }
        }
        found
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retention_ttl_index_follows_the_configuration() {
        let Some(uri) = mongo_uri() else { return };
        let db = unique_db("ttl");
        let s = mongo_connect(&uri, &db, Some(3)).await.unwrap();
        assert_eq!(ttl_secs(&uri, &db).await, Some(3 * 86_400));
        drop(s);
        let s = mongo_connect(&uri, &db, Some(3)).await.unwrap();
        assert_eq!(ttl_secs(&uri, &db).await, Some(3 * 86_400), "idempotent");
        drop(s);
        let s = mongo_connect(&uri, &db, Some(5)).await.unwrap();
        assert_eq!(ttl_secs(&uri, &db).await, Some(5 * 86_400), "changed");
        drop(s);
        let s = mongo_connect(&uri, &db, None).await.unwrap();
        assert_eq!(
            ttl_secs(&uri, &db).await,
            None,
            "unset keeps events forever"
        );
        drop(s);
        drop_db(&uri, &db).await;
    }

    /// A callback whose video another writer holds (a concurrent transaction that has changed it and
    /// not yet committed) waits its turn, however long that takes: a write conflict is contention, not
    /// an outage, so it outlasts the store's patience for outages (2 s) and then applies once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_held_video_is_waited_for_past_the_outage_patience() {
        let Some(uri) = mongo_uri() else { return };
        let db = unique_db("held");
        let s: Arc<dyn Store> = Arc::new(mongo_connect(&uri, &db, None).await.unwrap());
        let (_, p, videos) = scene(&*s, &[VideoStatus::Generating]).await;
        let v = videos[0].clone();

        let other = mongodb::Client::with_uri_str(&uri).await.unwrap();
        let mut holder = other.start_session().await.unwrap();
        holder.start_transaction().await.unwrap();
        other
            .database(&db)
            .collection::<Document>("aivideos")
            .update_one(
                doc! { "_id": mongodb::bson::oid::ObjectId::from_bytes(v.id.bytes()) },
                doc! { "$set": { "heldBy": "test" } },
            )
            .session(&mut holder)
            .await
            .unwrap();

        let callback = {
            let s = s.clone();
            tokio::spawn(async move {
                let d = draft(WebhookKind::Success, &v.id.to_string(), at(100));
                let change = VideoChange::Complete(success_fields("held"));
                s.apply_webhook(v.id, &change, &OPEN, d).await
            })
        };
        // Past the patience for outages, while every attempt of the callback meets the conflict.
        tokio::time::sleep(Duration::from_millis(2600)).await;
        assert!(
            !callback.is_finished(),
            "the callback waits while the video is held"
        );
        holder.abort_transaction().await.unwrap();

        let applied = callback
            .await
            .unwrap()
            .expect("applied once the video is free");
        assert!(
            matches!(
                &applied,
                Applied::Done { decision: Decision::Apply, video, .. } if video.status == VideoStatus::Completed
            ),
            "got {applied:?}"
        );
        assert_eq!(
            entry_of(&*s, p.id, v.id).await.status,
            VideoStatus::Completed
        );
        drop(s);
        drop_db(&uri, &db).await;
    }

    /// A change stream that fails is reopened from its resume token: what was written while it was
    /// down still reaches the feed, once. Failures are injected with the `failCommand` fail point,
    /// for this store's connections only (by appName).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn live_feed_resumes_after_the_stream_fails() {
        let Some(uri) = mongo_uri() else { return };
        let db = unique_db("resume");
        let app_name = format!("resume-test-{}", std::process::id());
        let sep = if uri.contains('?') { '&' } else { '?' };
        let victim_uri = format!("{uri}{sep}appName={app_name}");
        let s = mongo_connect(&victim_uri, &db, None).await.unwrap();
        let mut rx = s.subscribe();
        let ws = workspace("Shop", 10);
        s.insert_workspace(&ws).await.unwrap();
        let p = product(ws.id, "Mug", at(1));
        s.insert_product(&p).await.unwrap();
        let v1 = video(&p, VideoStatus::Generating, at(2));
        let v2 = video(&p, VideoStatus::Generating, at(3));

        let admin = mongodb::Client::with_uri_str(&uri).await.unwrap();
        // The stream's next getMore fails, and so do the first two attempts to reopen it (with
        // backoff, well over half a second of downtime).
        let armed = admin
            .database("admin")
            .run_command(doc! {
                "configureFailPoint": "failCommand",
                "mode": { "times": 3 },
                "data": { "failCommands": ["getMore", "aggregate"], "errorCode": 2, "appName": &app_name },
            })
            .await;
        if let Err(e) = armed {
            if std::env::var("MONGODB_TEST_FAILPOINTS").as_deref() == Ok("1") {
                panic!("configureFailPoint refused: {e}");
            }
            eprintln!("skipped: this server does not take configureFailPoint ({e})");
            return;
        }

        s.insert_videos(std::slice::from_ref(&v1)).await.unwrap();
        let first = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("the first change within 20 s")
            .unwrap();
        assert!(matches!(&first.change, LiveChange::Video { video } if video.id == v1.id));
        // The stream now fails on its next read; this write lands while it is down.
        s.insert_videos(std::slice::from_ref(&v2)).await.unwrap();
        let second = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("the change made while the stream was down arrives after it resumes")
            .unwrap();
        assert!(
            matches!(&second.change, LiveChange::Video { video } if video.id == v2.id),
            "got {second:?}"
        );
        // Nothing twice.
        let extra = tokio::time::timeout(Duration::from_millis(1500), rx.recv()).await;
        assert!(extra.is_err(), "unexpected extra change: {extra:?}");
        let _ = admin
            .database("admin")
            .run_command(doc! { "configureFailPoint": "failCommand", "mode": "off" })
            .await;
        drop(s);
        drop_db(&uri, &db).await;
    }

    /// Every query the store sends while the product works (lists with each filter and by keyset,
    /// stats, the sweeper, retries, the rollups, users, quotas) is read through an index: the
    /// server's `explain` of each shows no collection scan.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_query_scans_a_collection() {
        use mongodb::event::command::CommandEvent;
        use mongodb::event::EventHandler;
        use std::sync::Mutex;
        let Some(uri) = mongo_uri() else {
            return;
        };
        let db = unique_db("explain");
        let seen: Arc<Mutex<Vec<Document>>> = Arc::default();
        let watching = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut options = mongodb::options::ClientOptions::parse(&uri).await.unwrap();
        {
            let (seen, watching) = (seen.clone(), watching.clone());
            options.command_event_handler =
                Some(EventHandler::callback(move |ev: CommandEvent| {
                    if let CommandEvent::Started(ev) = ev {
                        let reads = [
                            "find",
                            "aggregate",
                            "count",
                            "delete",
                            "update",
                            "findAndModify",
                        ];
                        if watching.load(std::sync::atomic::Ordering::SeqCst)
                            && reads.contains(&ev.command_name.as_str())
                        {
                            seen.lock().unwrap().push(ev.command);
                        }
                    }
                }));
        }
        let s: Arc<dyn Store> = Arc::new(
            app::ssr::store::mongo::connect_with(options, &db, None)
                .await
                .unwrap(),
        );
        watching.store(true, std::sync::atomic::Ordering::SeqCst);
        // The workload: what the product does.
        use VideoStatus::*;
        let (ws, p, videos) = scene(&*s, &[Generating, Generating, Generating, Failed]).await;
        s.apply_webhook(
            videos[0].id,
            &VideoChange::Complete(success_fields("f")),
            &OPEN,
            draft(WebhookKind::Success, &videos[0].id.to_string(), at(100)),
        )
        .await
        .unwrap();
        s.insert_event(&event_at("/videos/failure", Some("x"), 400, at(5)))
            .await
            .unwrap();
        let after = Some(Keyset {
            at: at(1_000_000),
            id: ObjectId::new(),
        });
        for q in [
            EventQuery::default(),
            EventQuery {
                endpoint: Some("/videos/success".into()),
                ..Default::default()
            },
            EventQuery {
                video_id: Some("x".into()),
                ..Default::default()
            },
            EventQuery {
                from: Some(at(0)),
                to: Some(at(9000)),
                ..Default::default()
            },
            EventQuery {
                after,
                ..Default::default()
            },
            EventQuery {
                endpoint: Some("/videos/failure".into()),
                after,
                ..Default::default()
            },
        ] {
            let q = EventQuery {
                page: 2,
                limit: 5,
                ..q
            };
            s.page_events(&q).await.unwrap();
            s.count_events(&q).await.unwrap();
        }
        for q in [
            VideoQuery::default(),
            VideoQuery {
                status: Some(Failed),
                ..Default::default()
            },
            VideoQuery {
                workspace_id: Some(ws.id),
                ..Default::default()
            },
            VideoQuery {
                video_id: Some(videos[1].id),
                ..Default::default()
            },
            VideoQuery {
                stuck_before: Some(at(10_000)),
                ..Default::default()
            },
            VideoQuery {
                status: Some(Generating),
                after,
                ..Default::default()
            },
        ] {
            let q = VideoQuery {
                page: 2,
                limit: 5,
                ..q
            };
            s.page_videos(&q).await.unwrap();
            s.count_videos(&q).await.unwrap();
        }
        s.event_counts_by_hour(at(-1800), at(9000)).await.unwrap();
        s.processing_counts(at(0), at(9000)).await.unwrap();
        s.failure_reasons(at(-2 * 86_400), at(2 * 86_400), 5)
            .await
            .unwrap();
        s.finished_by_workspace(at(-2 * 86_400), at(2 * 86_400), 5)
            .await
            .unwrap();
        s.workspace_activity(ws.id).await.unwrap();
        s.set_video_limit(ws.id, 50).await.unwrap();
        s.page_videos(&VideoQuery {
            page: 1,
            limit: 5,
            status: Some(Failed),
            error_prefix: Some("earlier".into()),
            ..Default::default()
        })
        .await
        .unwrap();
        s.video_status_counts().await.unwrap();
        s.fail_timed_out(at(25), at(200), 10).await.unwrap();
        s.retryable_failed(at(0), at(10_000), 3, 10).await.unwrap();
        s.purge_events_before(at(1), 10).await.unwrap();
        s.list_products(ws.id, PageSpec { page: 1, limit: 5 })
            .await
            .unwrap();
        s.find_products(&[p.id]).await.unwrap();
        s.find_product_cards(&[p.id]).await.unwrap();
        s.count_users_with_role(Role::Superadmin).await.unwrap();
        s.list_workspaces(PageSpec { page: 2, limit: 5 })
            .await
            .unwrap();
        s.reserve_quota(ws.id, 1).await.unwrap();
        // The outbox.
        let now = Timestamp::now();
        let claimed = s
            .claim_notifications(now, Duration::from_secs(30), "l", 5)
            .await
            .unwrap();
        for n in &claimed {
            s.expand_notifications("l", &[(n.id, Vec::new())], now)
                .await
                .unwrap();
            s.redeliver_notification(n.id, now).await.unwrap();
        }
        let nq = app::ssr::store::NotificationQuery {
            page: 2,
            limit: 5,
            workspace_id: Some(ws.id),
            status: None,
        };
        s.page_notifications(&nq).await.unwrap();
        s.count_notifications(&nq).await.unwrap();
        s.page_notifications(&app::ssr::store::NotificationQuery {
            page: 1,
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
        s.pending_notifications().await.unwrap();
        s.videos_of_batch("h").await.unwrap();
        s.notification_settings(ws.id).await.unwrap();
        watching.store(false, std::sync::atomic::Ordering::SeqCst);

        let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
        let database = client.database(&db);
        let commands = seen.lock().unwrap().clone();
        assert!(commands.len() > 20, "the workload ran its queries");
        let mut checked = 0;
        for mut command in commands {
            // As sent, less what belongs to the session or transaction it ran in.
            for key in [
                "lsid",
                "txnNumber",
                "autocommit",
                "startTransaction",
                "readConcern",
                "writeConcern",
                "$db",
                "$clusterTime",
                "$readPreference",
            ] {
                command.remove(key);
            }
            let name = command.keys().next().cloned().unwrap_or_default();
            // The change stream of the live feed follows every change, by nature.
            if command.get_array("pipeline").is_ok_and(|p| {
                p.iter().any(|st| {
                    st.as_document()
                        .is_some_and(|d| d.contains_key("$changeStream"))
                })
            }) {
                continue;
            }
            // An update or delete is explained as the find of its filter (what selects the
            // documents it writes).
            let explained: Vec<Document> = match name.as_str() {
                "update" | "delete" => {
                    let coll = command.get_str(&name).unwrap_or_default().to_string();
                    let list = if name == "update" {
                        "updates"
                    } else {
                        "deletes"
                    };
                    command
                        .get_array(list)
                        .map(|stmts| {
                            stmts
                                .iter()
                                .filter_map(|st| st.as_document())
                                .map(|st| {
                                    let mut find = doc! {
                                        "find": &coll,
                                        "filter": st.get_document("q").cloned().unwrap_or_default(),
                                    };
                                    if let Some(h) = st.get("hint") {
                                        find.insert("hint", h.clone());
                                    }
                                    find
                                })
                                .collect()
                        })
                        .unwrap_or_default()
                }
                _ => vec![command.clone()],
            };
            for cmd in explained {
                let plan = database
                    .run_command(doc! { "explain": cmd.clone(), "verbosity": "queryPlanner" })
                    .await
                    .unwrap_or_else(|e| panic!("explain {name}: {e}"));
                let text = format!("{plan:?}");
                assert!(
                    !text.contains("COLLSCAN"),
                    "{name} scans a collection: {cmd:?}\n{text}"
                );
                checked += 1;
            }
        }
        assert!(checked > 20);
        drop(s);
        drop_db(&uri, &db).await;
    }

    /// The documents are what Mongoose would have stored, so an existing database reads the same.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn documents_have_the_mongoose_shape() {
        let Some(uri) = mongo_uri() else { return };
        let db = unique_db("shape");
        let s: MongoStore = mongo_connect(&uri, &db, None).await.unwrap();
        let (ws, p, videos) = scene(&s, &[VideoStatus::Generating]).await;
        let v = &videos[0];
        let u = user("Shape@Shop.test", Role::Admin, Some(ws.id));
        s.insert_user(&u).await.unwrap();
        let d = draft(WebhookKind::Success, &v.id.to_string(), at(60));
        s.apply_webhook(
            v.id,
            &VideoChange::Complete(success_fields("s")),
            &OPEN,
            d.clone(),
        )
        .await
        .unwrap();

        let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
        let database = client.database(&db);
        let one = |coll: &'static str| {
            let c = database.collection::<Document>(coll);
            async move { c.find_one(doc! {}).await.unwrap().expect(coll) }
        };
        let is_oid = |b: Option<&Bson>| matches!(b, Some(Bson::ObjectId(_)));
        let is_date = |b: Option<&Bson>| matches!(b, Some(Bson::DateTime(_)));

        let video = one("aivideos").await;
        assert!(is_oid(video.get("_id")) && is_oid(video.get("userId")));
        assert!(is_oid(video.get("workspaceId")) && is_oid(video.get("productId")));
        assert_eq!(video.get_str("status").unwrap(), "completed");
        assert!(is_date(video.get("createdAt")) && is_date(video.get("updatedAt")));
        let m = video.get_document("metadata").unwrap();
        assert_eq!(m.get_str("aspect_ratio").unwrap(), "9:16");
        assert_eq!(m.get_str("youtubeVideoId").unwrap(), "yt_s");
        assert!(is_date(m.get("completedAt")) && is_date(m.get("queuedAt")));
        assert!(video.get("error").is_none(), "absent fields are left out");

        let product = one("products").await;
        assert_eq!(product.get_object_id("_id").unwrap().bytes(), p.id.bytes());
        assert!(is_oid(product.get("workspaceId")));
        let entry = product.get_array("videos").unwrap()[0]
            .as_document()
            .unwrap()
            .clone();
        assert_eq!(
            entry.get_object_id("videoId").unwrap().bytes(),
            v.id.bytes()
        );
        assert_eq!(entry.get_str("status").unwrap(), "completed");
        assert_eq!(
            entry.get_str("youtubeUrl").unwrap(),
            "https://www.youtube.com/watch?v=yt_s"
        );
        assert!(is_date(entry.get("completedAt")));

        let event = one("webhookevents").await;
        assert_eq!(event.get_str("endpoint").unwrap(), "/videos/success");
        assert_eq!(event.get_str("videoId").unwrap(), v.id.to_string());
        assert_eq!(event.get_i32("statusCode").unwrap(), 200);
        assert_eq!(event.get_str("outcome").unwrap(), MSG_SUCCESS);
        assert!(is_date(event.get("createdAt")));
        let payload = event.get_document("payload").unwrap();
        assert_eq!(payload.get_i32("n").unwrap(), 3);
        assert_eq!(payload.get_i64("big").unwrap(), 9_000_000_000);

        let user = one("users").await;
        assert_eq!(
            user.get_str("email").unwrap(),
            "shape@shop.test",
            "stored lowercase"
        );
        assert_eq!(user.get_str("role").unwrap(), "ADMIN");
        assert!(user.get_str("passwordHash").is_ok());
        assert!(is_oid(user.get("workspaceId")));

        let workspace = one("workspaces").await;
        assert_eq!(workspace.get_str("name").unwrap(), "Shop");
        assert_eq!(workspace.get_i32("videoLimit").unwrap(), 100);
        assert_eq!(workspace.get_i32("videosUsed").unwrap(), 0);
        drop(s);
        drop_db(&uri, &db).await;
    }
}

/// SQLite without email: a finished video is queued for notifications only when its workspace has
/// somewhere to send them (a URL); with email on, every finished video is.
#[tokio::test]
async fn sqlite_queues_a_fan_out_only_when_it_can_lead_somewhere() {
    use app::model::notify::NotificationSettings;
    use app::ssr::store::NotificationStore;
    use VideoStatus::*;
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path()).unwrap();
    s.set_email_notifications(false).await.unwrap();
    let (ws, _, videos) = scene(&s, &[Generating, Generating, Generating]).await;
    let finish = |v: &AiVideo, t: i64| {
        let draft = draft(WebhookKind::Success, &v.id.to_string(), at(t));
        (v.id, draft)
    };
    let (id, d) = finish(&videos[0], 100);
    s.apply_webhook(id, &VideoChange::Complete(success_fields("a")), &OPEN, d)
        .await
        .unwrap();
    assert_eq!(
        s.pending_notifications().await.unwrap(),
        0,
        "nowhere to send"
    );
    let hooked = NotificationSettings {
        webhook_url: Some("https://hooks.example.com/racky".into()),
        ..Default::default()
    };
    s.put_notification_settings(ws.id, &hooked).await.unwrap();
    let (id, d) = finish(&videos[1], 200);
    s.apply_webhook(id, &VideoChange::Complete(success_fields("b")), &OPEN, d)
        .await
        .unwrap();
    assert_eq!(s.pending_notifications().await.unwrap(), 1, "a webhook URL");
    s.put_notification_settings(ws.id, &NotificationSettings::default())
        .await
        .unwrap();
    s.set_email_notifications(true).await.unwrap();
    let (id, d) = finish(&videos[2], 300);
    s.apply_webhook(id, &VideoChange::Complete(success_fields("c")), &OPEN, d)
        .await
        .unwrap();
    assert_eq!(s.pending_notifications().await.unwrap(), 2, "email is on");
}

/// A database written before the rollups existed gets them filled from what it stores: the same
/// statistics as if they had been kept all along.
mod upgrades {
    use super::*;

    type Snapshot = (
        Vec<HourlyCount>,
        Vec<(VideoStatus, u64)>,
        Vec<ProcessingCount>,
        (Vec<(String, u64)>, u64),
        Vec<(ObjectId, u64, u64)>,
    );

    /// Some history: finished, failed and waiting videos, accepted and refused calls.
    async fn history(s: &dyn Store) {
        use VideoStatus::*;
        let (_, _, videos) = scene(s, &[Generating, Generating, Generating, Generating]).await;
        for (i, v) in videos.iter().enumerate().take(3) {
            let (kind, change) = if i == 1 {
                (
                    WebhookKind::Failure,
                    VideoChange::Fail {
                        error: " Template not found\n".into(),
                    },
                )
            } else {
                (
                    WebhookKind::Success,
                    VideoChange::Complete(success_fields("f")),
                )
            };
            s.apply_webhook(
                v.id,
                &change,
                &OPEN,
                draft(kind, &v.id.to_string(), at(1000 + 4000 * i as i64)),
            )
            .await
            .unwrap();
        }
        s.insert_event(&event_at("/videos/success", None, 400, at(7300)))
            .await
            .unwrap();
    }

    async fn snapshot(s: &dyn Store) -> Snapshot {
        let mut events = s.event_counts_by_hour(at(-7200), at(20000)).await.unwrap();
        events.sort_by(|a, b| {
            (a.hour, &a.endpoint, a.accepted).cmp(&(b.hour, &b.endpoint, b.accepted))
        });
        let mut statuses = s.video_status_counts().await.unwrap();
        statuses.retain(|(_, n)| *n > 0);
        statuses.sort_by_key(|(st, _)| st.as_str());
        let mut processing = s.processing_counts(at(-7200), at(20000)).await.unwrap();
        processing.sort_by_key(|r| (r.status.as_str(), r.bucket));
        let reasons = s.failure_reasons(at(-7200), at(20000), 10).await.unwrap();
        let per_ws = s
            .finished_by_workspace(at(-2 * 86_400), at(2 * 86_400), 10)
            .await
            .unwrap();
        (events, statuses, processing, reasons, per_ws)
    }

    #[tokio::test]
    async fn sqlite_fills_the_rollups_of_an_older_database() {
        let dir = tempfile::tempdir().unwrap();
        let kept = {
            let s = SqliteStore::open(dir.path()).unwrap();
            history(&s).await;
            snapshot(&s).await
        };
        assert_eq!(kept.2.len(), 3, "three finished videos");
        assert_eq!(kept.3, (vec![("Template not found".to_string(), 1)], 1));
        assert_eq!(kept.4.len(), 1);
        // As an older version left it: schema version 7, no rollups.
        let c = rusqlite::Connection::open(dir.path().join("videos.db")).unwrap();
        c.execute_batch(
            "DROP TABLE event_rollup; DROP TABLE video_counts; DROP TABLE processing_rollup;
             DROP TABLE processing_daily;
             DROP INDEX aivideos_by_status_created; DROP INDEX aivideos_by_workspace;
             CREATE INDEX aivideos_by_workspace ON aivideos(workspace_id, created_at DESC);
             DROP TABLE notification_settings; DROP TABLE notifications;
             DROP INDEX aivideos_by_token;
             DROP TABLE finished_rollup; DROP TABLE finished_daily;
             DROP INDEX workspaces_by_name;
             PRAGMA user_version = 7;",
        )
        .unwrap();
        drop(c);
        let s = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(snapshot(&s).await, kept);
    }

    #[tokio::test]
    async fn mongodb_fills_the_rollups_of_an_older_database() {
        let Some(uri) = mongo_uri() else {
            return;
        };
        let db = unique_db("rollup_fill");
        let kept = {
            let s = mongo_connect(&uri, &db, None).await.unwrap();
            history(&s).await;
            snapshot(&s).await
        };
        assert_eq!(kept.2.len(), 3, "three finished videos");
        assert_eq!(kept.3, (vec![("Template not found".to_string(), 1)], 1));
        let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
        for c in [
            "statsmeta",
            "statsevents",
            "statsvideos",
            "statsprocessing",
            "statsfinished",
        ] {
            client
                .database(&db)
                .collection::<mongodb::bson::Document>(c)
                .drop()
                .await
                .unwrap();
        }
        let s = mongo_connect(&uri, &db, None).await.unwrap();
        assert_eq!(snapshot(&s).await, kept);
        drop(s);
        drop_db(&uri, &db).await;
    }
}
