//! The webhook contract: messages, status codes, state rules, dual storage and the audit log.

use crate::support::Scene;
use serde_json::json;

const SUCCESS: &str = "/internal/videos/success";
const FAILURE: &str = "/internal/videos/failure";

#[tokio::test]
async fn success_completes_the_video_and_its_product_entry() {
    let s = Scene::new().await;
    let ids = s.start_videos(&s.products[0], 1).await;
    let v = &ids[0];
    assert_eq!(s.video(v).await["status"], "generating");
    assert_eq!(
        s.product_entry(&s.products[0], v).await["status"],
        "generating"
    );

    let r = s.callback(SUCCESS, json!({
            "videoId": v, "youtubeVideoId": "dQw4w9WgXcQ", "localFilename": "/videos/p.mp4",
            "video_url": "https://cdn.example.com/video.mp4", "img_s3_url": "https://s3.example.com/t.jpg"
        }))
        .await
        .expect(200);
    assert_eq!(r.body["success"], true);
    assert_eq!(r.msg(), "Video status updated successfully");
    assert_eq!(
        r.data(),
        &json!({
            "videoId": v, "youtubeVideoId": "dQw4w9WgXcQ", "localFilename": "/videos/p.mp4",
            "videoUrl": "https://cdn.example.com/video.mp4", "imgS3Url": "https://s3.example.com/t.jpg",
            "productId": s.products[0]
        })
    );

    let video = s.video(v).await;
    assert_eq!(video["status"], "completed");
    let m = &video["metadata"];
    assert_eq!(m["youtubeVideoId"], "dQw4w9WgXcQ");
    assert_eq!(m["videoUrl"], "https://cdn.example.com/video.mp4");
    assert_eq!(m["imgS3Url"], "https://s3.example.com/t.jpg");
    assert_eq!(m["localFilename"], "/videos/p.mp4");
    assert_eq!(m["templateId"], "tpl_1");
    assert_eq!(m["aspect_ratio"], "9:16");
    assert!(m["completedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        m["completedAt"].as_str().unwrap().len(),
        24,
        "RFC 3339 with milliseconds"
    );

    let e = s.product_entry(&s.products[0], v).await;
    assert_eq!(e["status"], "completed");
    assert_eq!(e["videoUrl"], "https://cdn.example.com/video.mp4");
    assert_eq!(
        e["youtubeUrl"],
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    );
    assert_eq!(e["imgS3Url"], "https://s3.example.com/t.jpg");
    assert_eq!(e["templateId"], "tpl_1");
    assert_eq!(e["templateName"], "Showcase");
    assert_eq!(e["completedAt"], m["completedAt"]);
}

#[tokio::test]
async fn failure_fails_the_video_with_the_reason_or_a_default() {
    let s = Scene::new().await;
    let ids = s.start_videos(&s.products[0], 2).await;
    let r = s
        .callback(
            FAILURE,
            json!({ "videoId": ids[0], "error": "Processing timeout" }),
        )
        .await
        .expect(200);
    assert_eq!(r.msg(), "Video failure recorded successfully");
    assert_eq!(
        r.data(),
        &json!({ "videoId": ids[0], "productId": s.products[0], "error": "Processing timeout" })
    );
    let video = s.video(&ids[0]).await;
    assert_eq!(video["status"], "failed");
    assert_eq!(video["error"], "Processing timeout");
    assert!(video["metadata"]["failedAt"].is_string());
    let e = s.product_entry(&s.products[0], &ids[0]).await;
    assert_eq!(
        (e["status"].as_str(), e["error"].as_str()),
        (Some("failed"), Some("Processing timeout"))
    );

    let r = s
        .callback(FAILURE, json!({ "videoId": ids[1] }))
        .await
        .expect(200);
    assert_eq!(r.data()["error"], "Video generation failed");
    assert_eq!(s.video(&ids[1]).await["error"], "Video generation failed");
}

#[tokio::test]
async fn the_right_entry_is_updated_when_a_product_has_several_videos_of_one_template() {
    let s = Scene::new().await;
    let ids = s.start_videos(&s.products[0], 3).await;
    s.callback(
        SUCCESS,
        json!({ "videoId": ids[1], "video_url": "https://v/1" }),
    )
    .await
    .expect(200);
    s.callback(FAILURE, json!({ "videoId": ids[2], "error": "boom" }))
        .await
        .expect(200);
    assert_eq!(
        s.product_entry(&s.products[0], &ids[0]).await["status"],
        "generating"
    );
    assert_eq!(
        s.product_entry(&s.products[0], &ids[1]).await["status"],
        "completed"
    );
    assert_eq!(
        s.product_entry(&s.products[0], &ids[1]).await["videoUrl"],
        "https://v/1"
    );
    assert_eq!(
        s.product_entry(&s.products[0], &ids[2]).await["status"],
        "failed"
    );
    // The other product is untouched.
    let other = s
        .app
        .get(&format!("/api/products/{}", s.products[1]), &s.user)
        .await
        .expect(200);
    assert_eq!(other.data()["videos"], json!([]));
}

#[tokio::test]
async fn the_three_documented_errors() {
    let s = Scene::new().await;
    for path in [SUCCESS, FAILURE] {
        let r = s
            .app
            .post(path, None, json!({ "youtubeVideoId": "x" }))
            .await
            .expect(400);
        assert_eq!(
            r.body,
            json!({ "success": false, "message": "videoId is required" })
        );
        let r = s
            .app
            .post(path, None, json!({ "videoId": "65abc123def456789012" }))
            .await
            .expect(400);
        assert_eq!(
            r.body,
            json!({ "success": false, "message": "Invalid videoId format" })
        );
        let r = s
            .app
            .post(path, None, json!({ "videoId": "507f1f77bcf86cd799439011" }))
            .await
            .expect(404);
        assert_eq!(
            r.body,
            json!({ "success": false, "message": "Video not found" })
        );
    }
}

#[tokio::test]
async fn wrong_types_bad_bodies_and_content_types_are_clear_4xx_and_change_nothing() {
    let s = Scene::new().await;
    let v = &s.start_videos(&s.products[0], 1).await[0];
    let cases: Vec<(Option<&str>, Vec<u8>, u16, &str)> = vec![
        (
            Some("application/json"),
            json!({ "videoId": 42 }).to_string().into(),
            400,
            "videoId must be a string",
        ),
        (
            Some("application/json"),
            json!({ "videoId": v, "video_url": ["x"] })
                .to_string()
                .into(),
            400,
            "video_url must be a string",
        ),
        (
            Some("application/json"),
            b"{\"videoId\": ".to_vec(),
            400,
            "Malformed JSON in request body",
        ),
        (
            Some("application/json"),
            b"[1,2]".to_vec(),
            400,
            "Request body must be a JSON object",
        ),
        (
            Some("application/json"),
            Vec::new(),
            400,
            "Request body is empty",
        ),
        (
            Some("text/plain"),
            json!({ "videoId": v }).to_string().into(),
            415,
            "Content-Type must be application/json",
        ),
        (
            None,
            json!({ "videoId": v }).to_string().into(),
            415,
            "Content-Type must be application/json",
        ),
        (
            Some("application/json"),
            vec![b' '; 1024 * 1024 + 1],
            413,
            "Request body too large (max 1 MiB)",
        ),
    ];
    for (ct, body, status, message) in cases {
        let r = s.app.post_raw(SUCCESS, ct, body).await;
        assert_eq!(
            (r.status.as_u16(), r.msg()),
            (status, message),
            "{}",
            r.body
        );
        assert_eq!(r.body["success"], false);
    }
    assert_eq!(s.video(v).await["status"], "generating", "nothing changed");
}

#[tokio::test]
async fn completed_is_final_and_repeats_change_nothing() {
    let s = Scene::new().await;
    let v = &s.start_videos(&s.products[0], 1).await[0];
    let first = s
        .callback(
            SUCCESS,
            json!({ "videoId": v, "youtubeVideoId": "first", "video_url": "https://v/1" }),
        )
        .await
        .expect(200);
    let before = s.video(v).await;

    // A repeated success answers the same and changes nothing (even with other values).
    let again = s
        .callback(
            SUCCESS,
            json!({ "videoId": v, "youtubeVideoId": "second", "video_url": "https://v/2" }),
        )
        .await
        .expect(200);
    assert_eq!(again.body, first.body);
    assert_eq!(s.video(v).await, before);

    // A late failure is acknowledged (2xx: no retry) but ignored, and says so.
    let late = s
        .callback(FAILURE, json!({ "videoId": v, "error": "late" }))
        .await
        .expect(200);
    assert_eq!(late.body["success"], true);
    assert!(late.msg().contains("ignored"), "{}", late.msg());
    assert_eq!(s.video(v).await, before);
    assert_eq!(
        s.product_entry(&s.products[0], v).await["status"],
        "completed"
    );
}

#[tokio::test]
async fn a_success_after_a_failure_completes_the_video() {
    let s = Scene::new().await;
    let v = &s.start_videos(&s.products[0], 1).await[0];
    s.callback(FAILURE, json!({ "videoId": v, "error": "flaky" }))
        .await
        .expect(200);
    // A repeated failure keeps the first one's record.
    let failed = s.video(v).await;
    s.callback(FAILURE, json!({ "videoId": v, "error": "again" }))
        .await
        .expect(200);
    assert_eq!(s.video(v).await, failed);

    s.callback(
        SUCCESS,
        json!({ "videoId": v, "video_url": "https://v/ok" }),
    )
    .await
    .expect(200);
    let video = s.video(v).await;
    assert_eq!(video["status"], "completed");
    assert!(video.get("error").is_none(), "{video}");
    let e = s.product_entry(&s.products[0], v).await;
    assert_eq!(e["status"], "completed");
    assert!(e.get("error").is_none());
}

#[tokio::test]
async fn concurrent_callbacks_for_one_video_leave_one_consistent_outcome() {
    let s = Scene::new().await;
    let v = s.start_videos(&s.products[0], 1).await.remove(0);
    let mut tasks = Vec::new();
    let query = s.rck.query_for(&v).expect("RCK got the video");
    for i in 0..20 {
        let http = s.app.http.clone();
        let (url, body) = if i % 2 == 0 {
            (
                s.app.url(&format!("{SUCCESS}{query}")),
                json!({ "videoId": v, "video_url": format!("https://v/{i}") }),
            )
        } else {
            (
                s.app.url(&format!("{FAILURE}{query}")),
                json!({ "videoId": v, "error": format!("e{i}") }),
            )
        };
        tasks.push(tokio::spawn(async move {
            http.post(url).json(&body).send().await.unwrap().status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    // Whatever the interleaving, a success arrived, so the video ends completed, and AIVideo and
    // the product entry agree.
    let video = s.video(&v).await;
    let entry = s.product_entry(&s.products[0], &v).await;
    assert_eq!(video["status"], "completed");
    assert_eq!(entry["status"], "completed");
    assert_eq!(entry["videoUrl"], video["metadata"]["videoUrl"]);
    assert_eq!(
        s.app.events_for(&s.admin, &v).await.len(),
        20,
        "every call recorded"
    );
}

#[tokio::test]
async fn unknown_internal_routes_and_methods_answer_json() {
    let s = Scene::new().await;
    let r = s
        .app
        .post("/internal/videos/other", None, json!({}))
        .await
        .expect(404);
    assert_eq!(r.body["success"], false);
    let r = s.app.get(SUCCESS, "unused").await.expect(405);
    assert_eq!(r.body["success"], false);
    // Both recorded, by their path under `/internal` as the callbacks are.
    let r = s
        .app
        .get("/api/webhook-events?limit=100", &s.admin)
        .await
        .expect(200);
    let recorded: Vec<_> = r.data()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["endpoint"].as_str().unwrap(),
                e["statusCode"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(recorded.contains(&("/videos/other", 404)), "{recorded:?}");
    assert!(recorded.contains(&("/videos/success", 405)), "{recorded:?}");
}

#[tokio::test]
async fn a_video_rck_never_calls_back_times_out_and_a_late_success_still_completes_it() {
    let s = crate::support::Scene::new_with(|c| {
        c.video_timeout_minutes = 0.001; // 60 ms
        c.sweep_interval_secs = 1;
    })
    .await;
    let v = s.start_videos(&s.products[0], 1).await.remove(0);
    // Bounded wait for the sweeper.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let video = loop {
        let video = s.video(&v).await;
        if video["status"] == "failed" {
            break video;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sweeper never failed {v}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(
        video["error"],
        "Timed out waiting for the video generation service"
    );
    assert_eq!(
        s.product_entry(&s.products[0], &v).await["status"],
        "failed"
    );
    s.callback(
        SUCCESS,
        json!({ "videoId": v, "video_url": "https://cdn/late.mp4" }),
    )
    .await
    .expect(200);
    assert_eq!(s.video(&v).await["status"], "completed");
}

/// Polls `video` (bounded) until `done` holds; returns it.
async fn wait_for(
    s: &crate::support::Scene,
    v: &str,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let video = s.video(v).await;
        if done(&video) {
            return video;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{v}: never {what}: {video}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn with_auto_retry_a_failed_video_goes_back_to_rck_with_backoff_up_to_the_limit() {
    let s = crate::support::Scene::new_with(|c| {
        c.video_auto_retry = true;
        c.video_retry_backoff_secs = 0.2;
        c.video_max_retries = 2;
        c.sweep_interval_secs = 1;
    })
    .await;
    let v = s.start_videos(&s.products[0], 1).await.remove(0);
    async fn used(s: &crate::support::Scene) -> u64 {
        let r = s.app.get("/api/workspaces", &s.admin).await.expect(200);
        r.data()["workspaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["_id"] == s.workspace)
            .unwrap()["videosUsed"]
            .as_u64()
            .unwrap()
    }
    for round in 1..=2u64 {
        let before = s.rck.query_for(&v).unwrap();
        s.callback(FAILURE, json!({ "videoId": v, "error": "render crashed" }))
            .await
            .expect(200);
        let video = wait_for(&s, &v, "retried", |x| {
            x["status"] == "generating" && x["metadata"]["retryCount"] == round
        })
        .await;
        assert_eq!(video["error"], serde_json::Value::Null);
        assert_ne!(
            s.rck.query_for(&v).unwrap(),
            before,
            "a new batch, a new callback token"
        );
        assert_eq!(used(&s).await, 1 + round, "each retry counts one video");
    }
    // The third failure is final: VIDEO_MAX_RETRIES = 2.
    s.callback(FAILURE, json!({ "videoId": v, "error": "render crashed" }))
        .await
        .expect(200);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let video = s.video(&v).await;
    assert_eq!(video["status"], "failed");
    assert_eq!(video["metadata"]["retryCount"], 2);
    assert_eq!(used(&s).await, 3);
}
