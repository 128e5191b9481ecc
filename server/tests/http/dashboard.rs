//! The superadmin's surface beyond the event log: stats, video list and actions, live feed, session.

use crate::support::{Scene, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};
use futures::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn stats_count_calls_rates_and_processing_times() {
    let s = Scene::new().await;
    let ids = s.start_videos(&s.products[0], 4).await;
    for v in &ids[..3] {
        s.callback("/internal/videos/success", json!({ "videoId": v }))
            .await
            .expect(200);
    }
    s.callback("/internal/videos/failure", json!({ "videoId": ids[3] }))
        .await
        .expect(200);
    s.callback("/internal/videos/failure", json!({ "videoId": "bad" }))
        .await
        .expect(400);

    let r = s
        .app
        .get("/api/webhook-events/stats?bucket=hour", &s.admin)
        .await
        .expect(200);
    let d = r.data();
    assert_eq!(
        d["totals"],
        json!({ "success": 3, "failure": 1, "rejected": 1 })
    );
    assert_eq!(d["successRate"], 0.75);
    assert_eq!(d["bucket"], "hour");
    assert_eq!(d["processing"]["count"], 4);
    assert_eq!(d["processing"]["completed"], 3);
    assert_eq!(d["processing"]["failed"], 1);
    assert!(d["processing"]["averageMs"].as_u64().is_some());
    assert!(
        d["processing"]["p95Ms"].as_u64().unwrap()
            >= d["processing"]["averageMs"].as_u64().unwrap()
    );
    let series = d["series"].as_array().unwrap();
    assert!(
        series.len() >= 168 && series.len() <= 169,
        "7 days of hours, zero-filled: {}",
        series.len()
    );
    let sum = |k: &str| series.iter().map(|b| b[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("success"), sum("failure"), sum("rejected")), (3, 1, 1));
    assert!(series
        .windows(2)
        .all(|w| w[0]["start"].as_str() < w[1]["start"].as_str()));

    let r = s.app.get("/api/webhook-events/stats?from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z&bucket=week", &s.admin).await.expect(200);
    assert_eq!(
        r.data()["totals"],
        json!({ "success": 0, "failure": 0, "rejected": 0 })
    );
    assert_eq!(r.data()["successRate"], Value::Null);
    assert_eq!(
        r.data()["series"].as_array().unwrap().len(),
        5,
        "weeks (from Monday) touching January 2020"
    );

    for q in [
        "bucket=year",
        "from=x",
        "from=2020-01-01T00:00:00Z&to=2019-01-01T00:00:00Z",
        "from=2020-01-01T00:00:00Z&to=2023-01-01T00:00:00Z&bucket=month",
        "from=2020-01-01T00:00:00Z&to=2020-12-01T00:00:00Z&bucket=hour",
    ] {
        let r = s
            .app
            .get(&format!("/api/webhook-events/stats?{q}"), &s.admin)
            .await
            .expect(400);
        assert_eq!(r.body["success"], false, "{q}");
    }
    s.app
        .get("/api/webhook-events/stats", &s.user)
        .await
        .expect(403);
}

#[tokio::test]
async fn superadmins_list_videos_mark_them_failed_and_retry_them() {
    let s = Scene::new().await;
    let ids = s.start_videos(&s.products[0], 2).await;
    let list = s
        .app
        .get("/api/videos?status=generating", &s.admin)
        .await
        .expect(200);
    assert_eq!(list.data()["pagination"]["total"], 2);
    assert_eq!(list.data()["videos"][0]["stuck"], false);
    s.app.get("/api/videos", &s.user).await.expect(403);
    s.app
        .get("/api/videos?status=weird", &s.admin)
        .await
        .expect(400);
    let by_ws = s
        .app
        .get(
            &format!("/api/videos?workspaceId={}", s.workspace),
            &s.admin,
        )
        .await
        .expect(200);
    assert_eq!(by_ws.data()["pagination"]["total"], 2);
    let by_id = s
        .app
        .get(&format!("/api/videos?videoId={}", ids[1]), &s.admin)
        .await
        .expect(200);
    assert_eq!(by_id.data()["videos"][0]["_id"], ids[1].as_str());

    // Mark failed: only a superadmin, only a video that is not final.
    s.app
        .act(&format!("/api/videos/{}/fail", ids[0]), &s.user)
        .await
        .expect(403);
    let r = s
        .app
        .post(
            &format!("/api/videos/{}/fail", ids[0]),
            Some(&s.admin),
            json!({ "error": "RCK lost it" }),
        )
        .await
        .expect(200);
    assert_eq!(r.data()["status"], "failed");
    assert_eq!(r.data()["error"], "RCK lost it");
    assert_eq!(
        s.product_entry(&s.products[0], &ids[0]).await["status"],
        "failed"
    );
    s.app
        .act(&format!("/api/videos/{}/fail", ids[0]), &s.admin)
        .await
        .expect(409);

    // Retry: back to generating with a new job, counted against the quota.
    s.app
        .act(&format!("/api/videos/{}/retry", ids[1]), &s.admin)
        .await
        .expect(409);
    let r = s
        .app
        .act(&format!("/api/videos/{}/retry", ids[0]), &s.admin)
        .await
        .expect(202);
    assert_eq!(r.data()["status"], "generating");
    assert_eq!(r.data()["metadata"]["retryCount"], 1);
    assert!(r.data()["metadata"]["externalJobId"].is_string());
    assert!(r.data().get("error").is_none());
    assert_eq!(
        s.product_entry(&s.products[0], &ids[0]).await["status"],
        "generating"
    );
    // And the callback completes it as usual.
    s.callback("/internal/videos/success", json!({ "videoId": ids[0] }))
        .await
        .expect(200);
    assert_eq!(s.video(&ids[0]).await["status"], "completed");
}

#[tokio::test]
async fn the_live_feed_streams_video_changes_and_events() {
    let s = Scene::new().await;
    let v = s.start_videos(&s.products[0], 1).await.remove(0);
    let resp = s
        .app
        .http
        .get(s.app.url("/api/live"))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    // Wait for `ready` before sending, so the change cannot slip in before the subscription.
    read_until(&mut stream, &mut buf, "event: ready").await;
    s.callback(
        "/internal/videos/success",
        json!({ "videoId": v, "video_url": "https://v/live" }),
    )
    .await
    .expect(200);
    read_until(&mut stream, &mut buf, "event: event").await;
    let change = frame(&buf, "video");
    assert_eq!(change["kind"], "video");
    assert_eq!(change["video"]["_id"], v.as_str());
    assert_eq!(change["video"]["status"], "completed");
    // A summary: ids, status and time; the record (its links, template, job) is one request away.
    let mut fields: Vec<&str> = change["video"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["_id", "productId", "status", "updatedAt", "workspaceId"]
    );
    let event = frame(&buf, "event");
    assert_eq!(event["kind"], "event");
    assert_eq!(event["event"]["videoId"], v.as_str());
    assert_eq!(event["event"]["statusCode"], 200);
    assert!(event["event"].get("payload").is_none(), "{event}");

    let denied = s
        .app
        .http
        .get(s.app.url("/api/live"))
        .bearer_auth(&s.user)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
}

#[tokio::test]
async fn the_live_feed_sends_only_the_kinds_asked_for_in_batches() {
    let s = Scene::new().await;
    let ids = s.start_videos(&s.products[0], 3).await;
    let mut stream = open_feed(&s, "?batch=true&kinds=video").await;
    let mut buf = String::new();
    read_until(&mut stream, &mut buf, "event: ready").await;
    // Sent together, so the feed may well hold several of them in one frame.
    let calls = ids.iter().map(|v| {
        s.callback(
            "/internal/videos/success",
            json!({ "videoId": v, "video_url": "https://v/batch" }),
        )
    });
    for r in futures::future::join_all(calls).await {
        r.expect(200);
    }
    // Every `changes` frame is an array of video changes; read until each video showed completed.
    let completed = |buf: &str| -> Vec<String> {
        changes_frames(buf)
            .into_iter()
            .flatten()
            .filter(|c| c["video"]["status"] == "completed")
            .map(|c| c["video"]["_id"].as_str().unwrap().to_string())
            .collect()
    };
    read_while(&mut stream, &mut buf, |buf| {
        completed(buf).len() < ids.len()
    })
    .await;
    let mut done = completed(&buf);
    done.sort_unstable();
    let mut want = ids.clone();
    want.sort_unstable();
    assert_eq!(done, want);
    for change in changes_frames(&buf).into_iter().flatten() {
        assert_eq!(
            change["kind"], "video",
            "an event change in a video-only feed: {change}"
        );
    }
    assert!(
        !buf.contains("event: video\n") && !buf.contains("event: event\n"),
        "{buf}"
    );

    // A kind or parameter the feed does not know is a 400 in the JSON envelope.
    for query in ["kinds=videos", "kinds=", "batch=maybe", "kind=video"] {
        let r = s.app.get(&format!("/api/live?{query}"), &s.admin).await;
        assert_eq!(r.status, 400, "{query}: {}", r.body);
        assert_eq!(r.body["success"], false, "{query}");
        assert!(!r.msg().is_empty(), "{query}");
    }
}

#[tokio::test]
async fn the_live_feed_shows_only_the_videos_asked_for_and_counts_the_rest() {
    let s = Scene::new().await;
    let ids = s.start_videos(&s.products[0], 3).await;
    let mut stream = open_feed(&s, &format!("?batch=true&videos={}", ids[0])).await;
    let mut buf = String::new();
    // First the video as it is now (so a page that read it before subscribing misses nothing).
    read_while(&mut stream, &mut buf, |buf| changes_frames(buf).is_empty()).await;
    let now = &changes_frames(&buf)[0];
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(now[0]["video"]["_id"], ids[0].as_str());
    assert_eq!(now[0]["video"]["status"], "generating");
    for v in &ids {
        s.callback(
            "/internal/videos/success",
            json!({ "videoId": v, "video_url": "https://v/only" }),
        )
        .await
        .expect(200);
    }
    // Then the asked-for video's change and its event come whole; the other two videos' changes (one
    // video change and one event each) only as counts, in `unseen` frames.
    let unseen = |buf: &str, kind: &str| -> u64 {
        frames(buf, "unseen")
            .iter()
            .map(|counts| counts[kind].as_u64().unwrap())
            .sum()
    };
    read_while(&mut stream, &mut buf, |buf| {
        changes_frames(buf).concat().len() < 3
            || unseen(buf, "videos") < 2
            || unseen(buf, "events") < 2
    })
    .await;
    let shown = changes_frames(&buf).concat();
    for change in &shown {
        let of = match change["kind"].as_str() {
            Some("video") => &change["video"]["_id"],
            _ => &change["event"]["videoId"],
        };
        assert_eq!(of, ids[0].as_str(), "a change of another video: {change}");
    }
    assert!(shown.iter().any(|c| c["video"]["status"] == "completed"));
    assert_eq!((unseen(&buf, "videos"), unseen(&buf, "events")), (2, 2));

    // A malformed id, or more than a page's worth of them, is a 400 in the JSON envelope.
    let many = vec![ids[0].as_str(); 201].join(",");
    for query in [
        "videos=nope",
        &format!("videos={},", ids[0]),
        &format!("videos={many}"),
    ] {
        let r = s.app.get(&format!("/api/live?{query}"), &s.admin).await;
        assert_eq!(r.status, 400, "{query}: {}", r.body);
        assert_eq!(r.body["success"], false, "{query}");
    }
}

#[tokio::test]
async fn the_live_feed_counts_only_the_events_of_the_endpoint_asked_for() {
    let s = Scene::new().await;
    let ids = s.start_videos(&s.products[0], 2).await;
    // What the events page filtered to failures asks for: no change whole, failures counted.
    let mut stream = open_feed(
        &s,
        "?batch=true&kinds=event&videos=&endpoint=/videos/failure",
    )
    .await;
    let mut buf = String::new();
    read_until(&mut stream, &mut buf, "event: ready").await;
    s.callback("/internal/videos/success", json!({ "videoId": ids[0] }))
        .await
        .expect(200);
    s.callback(
        "/internal/videos/failure",
        json!({ "videoId": ids[1], "error": "no images" }),
    )
    .await
    .expect(200);
    read_while(&mut stream, &mut buf, |buf| {
        frames(buf, "unseen").is_empty()
    })
    .await;
    let counts = &frames(&buf, "unseen")[0];
    assert_eq!(counts, &json!({ "videos": 0, "events": 1 }), "{buf}");
    assert!(changes_frames(&buf).is_empty(), "{buf}");

    let r = s.app.get("/api/live?endpoint=/videos/nope", &s.admin).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.msg().contains("endpoint"), "{}", r.body);
}

/// Opens the live feed as the superadmin, with `query`: the stream of its bytes.
async fn open_feed(
    s: &Scene,
    query: &str,
) -> impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin {
    let resp = s
        .app
        .http
        .get(s.app.url(&format!("/api/live{query}")))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.bytes_stream()
}

/// The data of every whole `name` frame in an SSE buffer (a frame ends with a blank line).
fn frames(buf: &str, name: &str) -> Vec<Value> {
    let whole = &buf[..buf.rfind("\n\n").unwrap_or(0)];
    let lines: Vec<&str> = whole.lines().collect();
    let event = format!("event: {name}");
    lines
        .windows(2)
        .filter(|w| w[0] == event)
        .map(|w| serde_json::from_str(w[1].trim_start_matches("data: ")).unwrap())
        .collect()
}

/// The arrays of every whole `changes` frame in an SSE buffer.
fn changes_frames(buf: &str) -> Vec<Vec<Value>> {
    frames(buf, "changes")
        .into_iter()
        .map(|array| serde_json::from_value(array).unwrap())
        .collect()
}

#[tokio::test]
async fn dashboard_session_login_guard_and_logout() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Signed out: pages redirect to the login page, which itself is served.
    for page in ["/", "/videos?status=failed", "/events"] {
        let r = http.get(app.url(page)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{page}");
        let to = r.headers()["location"].to_str().unwrap();
        assert!(to.starts_with("/login?next="), "{to}");
    }
    assert_eq!(
        http.get(app.url("/login")).send().await.unwrap().status(),
        200
    );

    let bad = http
        .post(app.url("/login"))
        .header("origin", app.url(""))
        .form(&[("email", ADMIN_EMAIL), ("password", "wrong-password")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 303);
    assert!(bad.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login?error=1"));
    assert!(bad.headers().get("set-cookie").is_none());

    let ok = http
        .post(app.url("/login"))
        .header("origin", app.url(""))
        .form(&[
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
            ("next", "/events"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    assert_eq!(ok.headers()["location"], "/events");
    let cookie = ok.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();

    let page = http
        .get(app.url("/events"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Webhook events"));
    // The cookie also authenticates the REST API (the dashboard's live feed uses it).
    let api = http
        .get(app.url("/api/webhook-events"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);

    let out = http
        .post(app.url("/logout"))
        .header("origin", app.url(""))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert!(out.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));

    // A non-superadmin is signed in but told the dashboard is not for them.
    let admin = app.admin().await;
    let ws = app.workspace(&admin, 1).await;
    app.post("/api/users", Some(&admin), json!({ "email": "shop@x.test", "password": "password-123", "role": "ADMIN", "workspaceId": ws })).await.expect(201);
    let shop = http
        .post(app.url("/login"))
        .header("origin", app.url(""))
        .form(&[("email", "shop@x.test"), ("password", "password-123")])
        .send()
        .await
        .unwrap();
    let shop_cookie = shop.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = http
        .get(app.url("/"))
        .header("cookie", &shop_cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Not allowed"), "{html}");
}

/// The JSON data of the first SSE frame named `name` in `buf`.
fn frame(buf: &str, name: &str) -> Value {
    let data = buf
        .lines()
        .skip_while(|l| *l != format!("event: {name}"))
        .nth(1)
        .unwrap_or_else(|| panic!("no `{name}` frame in {buf}"));
    serde_json::from_str(data.trim_start_matches("data: ")).unwrap()
}

/// Reads the SSE stream into `buf` until it contains `needle` (at most 10 s).
async fn read_until<S>(stream: &mut S, buf: &mut String, needle: &str)
where
    S: futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin,
{
    read_while(stream, buf, |buf| !buf.contains(needle)).await;
}

/// Reads the SSE stream into `buf` while `more` says so (at most 10 s).
async fn read_while<S>(stream: &mut S, buf: &mut String, more: impl Fn(&str) -> bool)
where
    S: futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin,
{
    let done = tokio::time::timeout(Duration::from_secs(10), async {
        while more(buf) {
            let chunk = stream.next().await.expect("stream ended").unwrap();
            buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(done.is_ok(), "still reading after 10 s: {buf:?}");
}
