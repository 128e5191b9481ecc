//! Who may call `/internal/videos/*`: the batch's capability token (default), Standard Webhooks
//! signatures, and the spec's unauthenticated mode, each from outside over HTTP.

use crate::support::{Res, Scene};
use app::ssr::callback_auth::WebhookSecret;
use app::ssr::config::WebhookAuth;
use serde_json::{json, Value};

const SUCCESS: &str = "/internal/videos/success";
const FAILURE: &str = "/internal/videos/failure";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn refused_401(r: &Res) {
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(
        r.body,
        json!({ "success": false, "message": "Invalid callback credentials" })
    );
}

/// Sends a callback signed with `secret` at `ts` (seconds) under delivery `id`.
async fn signed(s: &Scene, path: &str, id: &str, ts: i64, body: &Value, secret: &str) -> Res {
    let bytes = serde_json::to_vec(body).unwrap();
    let secret: WebhookSecret = secret.parse().unwrap();
    let sig = secret.sign(id, ts, &bytes);
    send_signed(s, path, id, ts, &sig, bytes).await
}

async fn send_signed(s: &Scene, path: &str, id: &str, ts: i64, sig: &str, body: Vec<u8>) -> Res {
    let resp = s
        .app
        .http
        .post(s.app.url(path))
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    Res {
        status,
        body: resp.json().await.unwrap(),
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn a_forged_callback_is_refused_recorded_and_changes_nothing() {
    let s = Scene::new().await;
    let v = s.start_videos(&s.products[0], 1).await.remove(0);
    let forged = json!({ "videoId": v, "video_url": "https://evil.example/x.mp4" });

    // No token, then a wrong one: 401, the video and its product entry unchanged.
    refused_401(&s.app.post(SUCCESS, None, forged.clone()).await);
    let wrong = format!("{SUCCESS}?token=AAAAAAAAAAAAAAAAAAAAAA");
    refused_401(&s.app.post(&wrong, None, forged.clone()).await);
    refused_401(
        &s.app
            .post(FAILURE, None, json!({ "videoId": v, "error": "forged" }))
            .await,
    );
    assert_eq!(s.video(&v).await["status"], "generating");
    assert_eq!(
        s.product_entry(&s.products[0], &v).await["status"],
        "generating"
    );
    let events = s.app.events_for(&s.admin, &v).await;
    assert_eq!(events.len(), 3, "every refused call is recorded");
    for e in &events {
        assert_eq!(e["statusCode"], 401);
        assert_eq!(e["outcome"], "Invalid callback credentials");
    }

    // RCK's real callback, with the URL it was given, still completes the video.
    let r = s
        .callback(
            SUCCESS,
            json!({ "videoId": v, "video_url": "https://cdn/v.mp4" }),
        )
        .await
        .expect(200);
    assert_eq!(r.data()["videoUrl"], "https://cdn/v.mp4");
    assert_eq!(s.video(&v).await["status"], "completed");
}

#[tokio::test]
async fn validation_and_unknown_videos_answer_as_the_spec_says_without_a_token() {
    let s = Scene::new().await;
    let r = s.app.post(SUCCESS, None, json!({})).await.expect(400);
    assert_eq!(r.msg(), "videoId is required");
    let r = s
        .app
        .post(SUCCESS, None, json!({ "videoId": "nope" }))
        .await
        .expect(400);
    assert_eq!(r.msg(), "Invalid videoId format");
    let r = s
        .app
        .post(
            FAILURE,
            None,
            json!({ "videoId": "507f1f77bcf86cd799439011" }),
        )
        .await
        .expect(404);
    assert_eq!(r.msg(), "Video not found");
}

#[tokio::test]
async fn a_retry_gets_a_new_token_and_the_old_one_stops_working() {
    let s = Scene::new().await;
    let v = s.start_videos(&s.products[0], 1).await.remove(0);
    let old = s.rck.query_for(&v).unwrap();
    s.callback(FAILURE, json!({ "videoId": v, "error": "boom" }))
        .await
        .expect(200);
    s.app
        .post(&format!("/api/videos/{v}/retry"), Some(&s.admin), json!({}))
        .await
        .expect(202);
    let new = s.rck.query_for(&v).unwrap();
    assert_ne!(old, new, "a new batch, a new token");
    refused_401(
        &s.app
            .post(&format!("{SUCCESS}{old}"), None, json!({ "videoId": v }))
            .await,
    );
    s.callback(SUCCESS, json!({ "videoId": v }))
        .await
        .expect(200);
    assert_eq!(s.video(&v).await["status"], "completed");
}

#[tokio::test]
async fn signature_mode_accepts_valid_deliveries_once_and_refuses_the_rest() {
    let s = Scene::new_with(|c| {
        c.webhook_auth = WebhookAuth::Signature;
        c.rck_webhook_secret = Some(SECRET.parse().unwrap());
    })
    .await;
    let ids = s.start_videos(&s.products[0], 2).await;
    let (v, w) = (&ids[0], &ids[1]);
    let body = json!({ "videoId": v, "video_url": "https://cdn/signed.mp4" });

    // The token alone is not enough in this mode.
    refused_401(&s.callback(SUCCESS, body.clone()).await);
    // Stale (6 minutes old), tampered, signed with another secret: refused.
    refused_401(&signed(&s, SUCCESS, "msg_old", now() - 360, &body, SECRET).await);
    let bytes = serde_json::to_vec(&body).unwrap();
    let sig = SECRET
        .parse::<WebhookSecret>()
        .unwrap()
        .sign("msg_t", now(), &bytes);
    let tampered =
        serde_json::to_vec(&json!({ "videoId": v, "video_url": "https://evil/x" })).unwrap();
    refused_401(&send_signed(&s, SUCCESS, "msg_t", now(), &sig, tampered).await);
    let other = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0";
    refused_401(&signed(&s, SUCCESS, "msg_o", now(), &body, other).await);
    assert_eq!(s.video(v).await["status"], "generating");

    // A valid delivery applies; the same delivery again is answered the same and changes nothing.
    let first = signed(&s, SUCCESS, "msg_1", now(), &body, SECRET)
        .await
        .expect(200);
    assert_eq!(first.data()["videoUrl"], "https://cdn/signed.mp4");
    let fail = json!({ "videoId": v, "error": "late" });
    let again = signed(&s, FAILURE, "msg_1", now(), &fail, SECRET)
        .await
        .expect(200);
    assert_eq!(again.msg(), first.msg());
    assert_eq!(again.data()["videoId"], first.data()["videoId"]);
    assert_eq!(s.video(v).await["status"], "completed");
    let events = s.app.events_for(&s.admin, v).await;
    let outcomes: Vec<&str> = events
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert!(
        outcomes
            .iter()
            .any(|o| o.contains("duplicate of delivery msg_1")),
        "{outcomes:?}"
    );
    assert_eq!(
        events.iter().filter(|e| e["statusCode"] == 401).count(),
        4,
        "the refused calls are recorded"
    );

    // Another video, another delivery: applies.
    signed(
        &s,
        FAILURE,
        "msg_2",
        now(),
        &json!({ "videoId": w, "error": "x" }),
        SECRET,
    )
    .await
    .expect(200);
    assert_eq!(s.video(w).await["status"], "failed");
}

#[tokio::test]
async fn token_mode_also_accepts_a_valid_signature_when_a_secret_is_set() {
    let s = Scene::new_with(|c| c.rck_webhook_secret = Some(SECRET.parse().unwrap())).await;
    let v = s.start_videos(&s.products[0], 1).await.remove(0);
    let body = json!({ "videoId": v });
    refused_401(&signed(&s, SUCCESS, "msg_bad", now() - 900, &body, SECRET).await);
    signed(&s, SUCCESS, "msg_ok", now(), &body, SECRET)
        .await
        .expect(200);
    assert_eq!(s.video(&v).await["status"], "completed");
}

#[tokio::test]
async fn off_mode_is_the_original_unauthenticated_spec() {
    let s = Scene::new_with(|c| c.webhook_auth = WebhookAuth::Off).await;
    let v = s.start_videos(&s.products[0], 1).await.remove(0);
    s.app
        .post(SUCCESS, None, json!({ "videoId": v }))
        .await
        .expect(200);
    assert_eq!(s.video(&v).await["status"], "completed");
}
