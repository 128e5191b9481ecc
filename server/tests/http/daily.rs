//! The dashboard's daily-use API: names in the video list and its error filter, bulk actions, and
//! the workspaces' usage and limits.

use crate::support::Scene;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn the_video_list_names_products_and_workspaces_and_filters_by_error() {
    let s = Scene::new().await;
    let ids = s.start_videos(&s.products[0], 3).await;
    s.callback(
        "/internal/videos/failure",
        json!({ "videoId": ids[0], "error": "Template not found: tpl_1" }),
    )
    .await
    .expect(200);
    s.callback(
        "/internal/videos/failure",
        json!({ "videoId": ids[1], "error": "Rendering timed out" }),
    )
    .await
    .expect(200);
    let list = s.app.get("/api/videos", &s.admin).await.expect(200);
    let row = &list.data()["videos"][0];
    assert_eq!(row["productTitle"], "P0");
    assert_eq!(row["workspaceName"], "Shop");
    let failed = s
        .app
        .get("/api/videos?status=failed&error=Template%20not", &s.admin)
        .await
        .expect(200);
    assert_eq!(failed.data()["pagination"]["total"], 1);
    assert_eq!(failed.data()["videos"][0]["_id"], ids[0].as_str());
    // The filter is text, not a pattern.
    let none = s
        .app
        .get("/api/videos?error=.*", &s.admin)
        .await
        .expect(200);
    assert_eq!(none.data()["pagination"]["total"], 0);
    let long = "x".repeat(1001);
    s.app
        .get(&format!("/api/videos?error={long}"), &s.admin)
        .await
        .expect(400);
}

async fn bulk(s: &Scene, token: &str, body: Value) -> crate::support::Res {
    s.app
        .post("/api/videos/bulk-action", Some(token), body)
        .await
}

#[tokio::test]
async fn bulk_actions_take_selected_videos_or_a_whole_filter_in_batches() {
    let s = Scene::new().await;
    let ids = s.start_videos(&s.products[0], 4).await;
    for v in &ids[..3] {
        s.callback(
            "/internal/videos/failure",
            json!({ "videoId": v, "error": "boom" }),
        )
        .await
        .expect(200);
    }
    // Selected ids: the dry run counts those the action takes; the run says why it left the others.
    let two = json!([ids[0], ids[3]]);
    let dry = bulk(
        &s,
        &s.admin,
        json!({ "action": "retry", "videoIds": two, "dryRun": true }),
    )
    .await
    .expect(200);
    assert_eq!(dry.data()["matched"], 1);
    assert_eq!(
        s.video(&ids[0]).await["status"],
        "failed",
        "a dry run changes nothing"
    );
    let r = bulk(&s, &s.admin, json!({ "action": "retry", "videoIds": two }))
        .await
        .expect(200);
    assert_eq!(r.data()["done"], 1);
    assert_eq!(r.data()["matched"], 2);
    assert_eq!(
        r.data()["skipped"],
        1,
        "the generating one is left as it is"
    );
    assert_eq!(r.data()["errors"], json!([]));
    // An id that names no video is listed with the single action's message.
    let ghost = "507f1f77bcf86cd799439011";
    let r = bulk(
        &s,
        &s.admin,
        json!({ "action": "retry", "videoIds": [ghost] }),
    )
    .await
    .expect(200);
    assert_eq!(
        r.data()["errors"],
        json!([{ "videoId": ghost, "message": "Video not found" }])
    );
    assert_eq!(s.video(&ids[0]).await["status"], "generating");

    // A whole filter: the failed ones of the workspace, in batches by cursor.
    let filter = json!({ "workspaceId": s.workspace });
    let dry = bulk(
        &s,
        &s.admin,
        json!({ "action": "retry", "filter": filter, "dryRun": true }),
    )
    .await
    .expect(200);
    assert_eq!(dry.data()["matched"], 2);
    let mut done = 0;
    let mut cursor = Value::Null;
    for _ in 0..10 {
        let r = bulk(
            &s,
            &s.admin,
            json!({ "action": "retry", "filter": filter, "cursor": cursor }),
        )
        .await
        .expect(200);
        done += r.data()["done"].as_u64().unwrap();
        cursor = r.data()["nextCursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(done, 2);
    for v in &ids[..3] {
        assert_eq!(s.video(v).await["status"], "generating");
        assert_eq!(s.video(v).await["metadata"]["retryCount"], 1);
    }
    // Mark-failed takes only the stuck ones: none yet.
    let dry = bulk(
        &s,
        &s.admin,
        json!({ "action": "markFailed", "filter": {}, "dryRun": true }),
    )
    .await
    .expect(200);
    assert_eq!(dry.data()["matched"], 0);
    // Selected generating videos are marked failed.
    let r = bulk(
        &s,
        &s.admin,
        json!({ "action": "markFailed", "videoIds": [ids[3], ids[3]] }),
    )
    .await
    .expect(200);
    assert_eq!(
        (r.data()["done"].as_u64(), r.data()["matched"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(s.video(&ids[3]).await["status"], "failed");

    // Refusals: the caller, and every malformed request, change nothing.
    bulk(
        &s,
        &s.user,
        json!({ "action": "retry", "videoIds": [ids[3]] }),
    )
    .await
    .expect(403);
    let many: Vec<String> = (0..101).map(|_| ids[3].clone()).collect();
    for body in [
        json!({ "action": "retry" }),
        json!({ "action": "retry", "videoIds": [ids[3]], "filter": {} }),
        json!({ "action": "retry", "videoIds": [] }),
        json!({ "action": "retry", "videoIds": many }),
        json!({ "action": "retry", "videoIds": ["nope"] }),
        json!({ "action": "explode", "videoIds": [ids[3]] }),
        json!({ "action": "retry", "filter": { "status": "sideways" } }),
        json!({ "action": "retry", "filter": {}, "cursor": "zzz" }),
    ] {
        let r = bulk(&s, &s.admin, body.clone()).await;
        assert_eq!(r.status.as_u16(), 400, "{body}: {}", r.body);
        assert_eq!(r.body["success"], false);
    }
    assert_eq!(s.video(&ids[3]).await["status"], "failed");
}

/// Workspaces come a page at a time, by name, with the spec's pagination block: a platform with
/// thousands of tenants never loads them all (nor counts every one's videos) for one page.
#[tokio::test]
async fn workspaces_are_listed_a_page_at_a_time_by_name() {
    let s = Scene::new().await;
    for name in ["Zeta", "Alpha", "Mid"] {
        s.app
            .post(
                "/api/workspaces",
                Some(&s.admin),
                json!({ "name": name, "videoLimit": 5 }),
            )
            .await
            .expect(201);
    }
    // The scene's own "Shop" makes four.
    for path in ["/api/workspaces", "/api/workspaces/usage"] {
        let names = |r: &crate::support::Res| -> Vec<String> {
            r.data()["workspaces"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["name"].as_str().unwrap().to_string())
                .collect()
        };
        let first = s
            .app
            .get(&format!("{path}?limit=3"), &s.admin)
            .await
            .expect(200);
        assert_eq!(names(&first), ["Alpha", "Mid", "Shop"], "{path}");
        assert_eq!(
            first.data()["pagination"],
            json!({ "page": 1, "limit": 3, "total": 4, "totalPages": 2 }),
            "{path}"
        );
        let second = s
            .app
            .get(&format!("{path}?limit=3&page=2"), &s.admin)
            .await
            .expect(200);
        assert_eq!(names(&second), ["Zeta"], "{path}");
        let all = s.app.get(path, &s.admin).await.expect(200);
        assert_eq!(
            all.data()["pagination"]["limit"],
            20,
            "{path}: the default page"
        );
        let bad = s
            .app
            .get(&format!("{path}?page=0"), &s.admin)
            .await
            .expect(400);
        assert_eq!(bad.msg(), "page must be a positive integer", "{path}");
        s.app.get(path, &s.user).await.expect(403);
    }
}

#[tokio::test]
async fn workspaces_show_their_usage_and_superadmins_change_limits() {
    let s = Scene::new().await;
    let ids = s.start_videos(&s.products[0], 2).await;
    s.callback("/internal/videos/success", json!({ "videoId": ids[0] }))
        .await
        .expect(200);
    let usage = s
        .app
        .get("/api/workspaces/usage", &s.admin)
        .await
        .expect(200);
    let ws = usage.data()["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["_id"] == s.workspace.as_str())
        .unwrap()
        .clone();
    assert_eq!(ws["name"], "Shop");
    assert_eq!(ws["videosUsed"], 2);
    assert_eq!(ws["videoLimit"], 100);
    assert_eq!(
        ws["counts"],
        json!({ "pending": 0, "generating": 1, "completed": 1, "failed": 0 })
    );
    assert!(ws["lastActivity"].is_string());
    s.app
        .get("/api/workspaces/usage", &s.user)
        .await
        .expect(403);

    let path = format!("/api/workspaces/{}", s.workspace);
    let patch = |token: &str, body: Value| {
        let (path, token) = (path.clone(), token.to_string());
        let app = &s.app;
        async move {
            app.call(Method::PATCH, &path, Some(&token), Some(body))
                .await
        }
    };
    let r = patch(&s.admin, json!({ "videoLimit": 2 }))
        .await
        .expect(200);
    assert_eq!(r.data()["videoLimit"], 2);
    // The quota follows at once: the workspace is full.
    let r = s
        .app
        .post(
            "/api/videos/bulk-generate",
            Some(&s.user),
            json!({ "productIds": [s.products[0]], "templateId": "t", "templateName": "T" }),
        )
        .await
        .expect(403);
    assert_eq!(r.body["data"]["limit"], 2);
    for body in [
        json!({}),
        json!({ "videoLimit": -1 }),
        json!({ "videoLimit": 1.5 }),
        json!({ "videoLimit": "lots" }),
        json!({ "videoLimit": 10_000_001 }),
    ] {
        let r = patch(&s.admin, body.clone()).await;
        assert_eq!(r.status.as_u16(), 400, "{body}: {}", r.body);
        assert!(r.msg().starts_with("videoLimit must be"), "{}", r.msg());
    }
    patch(&s.user, json!({ "videoLimit": 500 }))
        .await
        .expect(403);
    s.app
        .call(
            Method::PATCH,
            "/api/workspaces/507f1f77bcf86cd799439011",
            Some(&s.admin),
            Some(json!({ "videoLimit": 5 })),
        )
        .await
        .expect(404);
    let after = s
        .app
        .get("/api/workspaces/usage", &s.admin)
        .await
        .expect(200);
    assert!(after.data()["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w["_id"] == s.workspace.as_str() && w["videoLimit"] == 2));
}
