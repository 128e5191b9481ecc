//! The webhook event log: every call recorded, and its REST queries.

use crate::support::{Scene, TestApp};
use serde_json::{json, Value};

#[tokio::test]
async fn every_call_is_recorded_valid_or_not() {
    let s = Scene::new().await;
    let v = &s.start_videos(&s.products[0], 1).await[0];
    let app = &s.app;
    s.callback(
        "/internal/videos/success",
        json!({ "videoId": v, "youtubeVideoId": "yt" }),
    )
    .await
    .expect(200);
    s.callback("/internal/videos/failure", json!({ "videoId": "nope" }))
        .await
        .expect(400);
    s.callback("/internal/videos/failure", json!({}))
        .await
        .expect(400);
    app.post_raw(
        "/internal/videos/success",
        Some("application/json"),
        b"not json at all".to_vec(),
    )
    .await
    .expect(400);
    s.callback(
        "/internal/videos/failure",
        json!({ "videoId": "507f1f77bcf86cd799439011" }),
    )
    .await
    .expect(404);

    let r = app.get("/api/webhook-events", &s.admin).await.expect(200);
    let events = r.data()["events"].as_array().unwrap();
    assert_eq!(
        r.data()["pagination"],
        json!({ "page": 1, "limit": 20, "total": 5, "totalPages": 1 })
    );
    let summary: Vec<(String, u64, String, Value)> = events
        .iter()
        .map(|e| {
            (
                e["endpoint"].as_str().unwrap().to_string(),
                e["statusCode"].as_u64().unwrap(),
                e["outcome"].as_str().unwrap().to_string(),
                e["payload"].clone(),
            )
        })
        .collect();
    // Newest first.
    assert_eq!(
        summary,
        vec![
            (
                "/videos/failure".into(),
                404,
                "Video not found".into(),
                json!({ "videoId": "507f1f77bcf86cd799439011" })
            ),
            (
                "/videos/success".into(),
                400,
                "Malformed JSON in request body".into(),
                json!("not json at all")
            ),
            (
                "/videos/failure".into(),
                400,
                "videoId is required".into(),
                json!({})
            ),
            (
                "/videos/failure".into(),
                400,
                "Invalid videoId format".into(),
                json!({ "videoId": "nope" })
            ),
            (
                "/videos/success".into(),
                200,
                "Video status updated successfully".into(),
                json!({ "videoId": v, "youtubeVideoId": "yt" })
            ),
        ]
    );
    assert_eq!(events[0]["videoId"], "507f1f77bcf86cd799439011");
    assert_eq!(
        events[3]["videoId"], "nope",
        "malformed ids are kept for search"
    );
    assert!(events[2].get("videoId").is_none());
    for e in events {
        assert_eq!(e["_id"].as_str().unwrap().len(), 24);
        assert!(e["createdAt"].as_str().unwrap().ends_with('Z'));
    }

    // One by id, exactly the listed record.
    let one = app
        .get(
            &format!("/api/webhook-events/{}", events[4]["_id"].as_str().unwrap()),
            &s.admin,
        )
        .await
        .expect(200);
    assert_eq!(one.body["success"], true);
    assert_eq!(one.data(), &events[4]);
}

#[tokio::test]
async fn pagination_and_filters() {
    let s = Scene::new().await;
    let ids = s.start_videos(&s.products[0], 3).await;
    for v in &ids {
        s.callback("/internal/videos/success", json!({ "videoId": v }))
            .await
            .expect(200);
    }
    for _ in 0..4 {
        s.callback("/internal/videos/failure", json!({ "videoId": ids[0] }))
            .await
            .expect(200);
    }
    // 7 events: 3 success, 4 failure (ignored: the video is completed).
    let page = |q: &str| {
        let app = &s.app;
        let admin = s.admin.clone();
        let q = q.to_string();
        async move {
            app.get(&format!("/api/webhook-events?{q}"), &admin)
                .await
                .expect(200)
        }
    };
    let p1 = page("page=1&limit=3").await;
    let p3 = page("page=3&limit=3").await;
    let mut pagination = p1.data()["pagination"].clone();
    let next = pagination["nextCursor"].take();
    assert!(
        next.is_string(),
        "a page with more after it says where the next starts"
    );
    pagination.as_object_mut().unwrap().remove("nextCursor");
    assert_eq!(
        pagination,
        json!({ "page": 1, "limit": 3, "total": 7, "totalPages": 3 })
    );
    assert_eq!(p1.data()["events"].as_array().unwrap().len(), 3);
    assert_eq!(p3.data()["events"].as_array().unwrap().len(), 1);
    let beyond = page("page=9&limit=3").await;
    assert_eq!(beyond.data()["events"], json!([]));

    let all: Vec<Value> = page("limit=100").await.data()["events"]
        .as_array()
        .unwrap()
        .clone();
    let times: Vec<&str> = all
        .iter()
        .map(|e| e["createdAt"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");
    // Pages partition the whole list.
    let mut paged = Vec::new();
    for n in 1..=3 {
        paged.extend(
            page(&format!("page={n}&limit=3")).await.data()["events"]
                .as_array()
                .unwrap()
                .clone(),
        );
    }
    assert_eq!(paged, all);
    // The same walk by cursor; the last page has no nextCursor.
    let mut walked = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let p = page(&format!("limit=3&cursor={cursor}")).await;
        walked.extend(p.data()["events"].as_array().unwrap().clone());
        match p.data()["pagination"]["nextCursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(walked, all);
    let bad = s
        .app
        .get("/api/webhook-events?cursor=nope", &s.admin)
        .await
        .expect(400);
    assert_eq!(bad.msg(), "cursor is not valid (use pagination.nextCursor)");

    let succ = page("endpoint=/videos/success").await;
    assert_eq!(succ.data()["pagination"]["total"], 3);
    assert!(succ.data()["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["endpoint"] == "/videos/success"));
    let fail = page("endpoint=/internal/videos/failure").await;
    assert_eq!(fail.data()["pagination"]["total"], 4);
    let by_video = page(&format!("videoId={}", ids[0])).await;
    assert_eq!(by_video.data()["pagination"]["total"], 5);
    let both = page(&format!("videoId={}&endpoint=/videos/success", ids[0])).await;
    assert_eq!(both.data()["pagination"]["total"], 1);
    let capped = page("limit=1000").await;
    assert_eq!(capped.data()["pagination"]["limit"], 100);
    let future = page("from=2999-01-01T00:00:00Z").await;
    assert_eq!(future.data()["pagination"]["total"], 0);
}

#[tokio::test]
async fn bad_queries_and_ids() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    for (q, msg) in [
        ("page=0", "page must be a positive integer"),
        ("page=abc", "page must be a positive integer"),
        ("limit=-5", "limit must be a positive integer"),
        (
            "endpoint=/videos/other",
            "endpoint must be /videos/success or /videos/failure",
        ),
        (
            "from=yesterday",
            "from must be an RFC 3339 date-time, e.g. 2025-01-17T10:30:00Z",
        ),
    ] {
        let r = app
            .get(&format!("/api/webhook-events?{q}"), &admin)
            .await
            .expect(400);
        assert_eq!(r.msg(), msg);
    }
    let r = app
        .get("/api/webhook-events/507f1f77bcf86cd799439011", &admin)
        .await
        .expect(404);
    assert_eq!(
        r.body,
        json!({ "success": false, "message": "Webhook event not found" })
    );
    let r = app
        .get("/api/webhook-events/not-an-id", &admin)
        .await
        .expect(400);
    assert_eq!(r.body["success"], false);
}

#[tokio::test]
async fn only_superadmins_read_the_log() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let ws = app.workspace(&admin, 10).await;
    for role in ["USER", "ADMIN"] {
        let token = app.user_in(&admin, &ws, role).await;
        let r = app.get("/api/webhook-events", &token).await.expect(403);
        assert_eq!(r.body["success"], false);
        app.get("/api/webhook-events/507f1f77bcf86cd799439011", &token)
            .await
            .expect(403);
    }
    let r = app
        .call(reqwest::Method::GET, "/api/webhook-events", None, None)
        .await
        .expect(401);
    assert_eq!(r.body["success"], false);
}

/// `GET /api/webhook-events/export`: the list's filters, CSV (escaped, formula-safe) or NDJSON,
/// every matching event however many pages; a superadmin's, by Bearer or by the dashboard cookie.
#[tokio::test]
async fn the_event_log_exports_as_csv_and_ndjson() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    // 1,001 refused calls (three export pages of 500), one with commas, quotes and a formula.
    for i in 0..1001 {
        app.post_raw(
            "/internal/videos/failure",
            Some("application/json"),
            format!("{{\"videoId\":\"nope-{i}\"}}").into_bytes(),
        )
        .await;
    }
    app.post_raw(
        "/internal/videos/success",
        Some("application/json"),
        br#"{"videoId":"=cmd, \"quoted\""}"#.to_vec(),
    )
    .await;
    let get = |q: &str, token: &str| {
        app.http
            .get(app.url(&format!("/api/webhook-events/export{q}")))
            .bearer_auth(token.to_string())
            .send()
    };
    let r = get("?format=ndjson&endpoint=/videos/failure", &admin)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains(".ndjson"));
    let text = r.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1001);
    assert!(lines.iter().all(|e| e["endpoint"] == "/videos/failure"));
    let ids: std::collections::HashSet<&str> =
        lines.iter().map(|e| e["_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1001, "no event twice across pages");

    let r = get("?endpoint=/videos/success", &admin).await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = r.text().await.unwrap();
    let mut rows = csv.split("\r\n");
    assert_eq!(
        rows.next().unwrap(),
        "id,createdAt,endpoint,videoId,statusCode,outcome,payload"
    );
    let row = rows.next().unwrap();
    assert!(
        row.contains(",/videos/success,\"'=cmd, \"\"quoted\"\"\",400,"),
        "{row}"
    );

    // Refusals are JSON, before anything streams.
    let r = get("?format=xml", &admin).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["message"],
        "format must be csv or ndjson"
    );
    let r = get("?from=yesterday", &admin).await.unwrap();
    assert_eq!(r.status(), 400);
    let ws = app.workspace(&admin, 5).await;
    let user = app.user_in(&admin, &ws, "USER").await;
    assert_eq!(get("", &user).await.unwrap().status(), 403);
    // The dashboard's link: the session cookie is enough for a GET.
    let cookie = app
        .form_login(crate::support::ADMIN_EMAIL, crate::support::ADMIN_PASSWORD)
        .await;
    let r = app
        .http
        .get(app.url("/api/webhook-events/export?format=ndjson&endpoint=/videos/success"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap().lines().count(), 1);
}
