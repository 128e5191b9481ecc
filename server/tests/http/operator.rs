//! The operator's tools: replaying a recorded callback (REST, the same service as the dashboard's
//! button and `server events replay`), and the command line's `token` and `events export/replay`
//! run as a separate process on the server's data.

use crate::support::{Scene, ADMIN_EMAIL};
use serde_json::{json, Value};

/// The server binary on the scene's data, as an operator runs it; stdout when it succeeds.
fn cli(s: &Scene, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", s.app.data_dir.path())
        .env("JWT_SECRET", "test-secret-test-secret-test-secret-0123")
        .env("RUST_LOG", "warn")
        .current_dir(s.app.data_dir.path())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The newest event of a video.
async fn last_event(s: &Scene, video: &str) -> Value {
    s.app.events_for(&s.admin, video).await[0].clone()
}

#[tokio::test]
async fn a_refused_callback_replayed_by_a_superadmin_applies_and_is_recorded() {
    let s = Scene::new().await;
    let ids = s.start_videos(&s.products[0], 1).await;
    // RCK called without the batch's token: refused, recorded, nothing changed.
    s.app
        .post(
            "/internal/videos/success",
            None,
            json!({ "videoId": ids[0], "video_url": "https://cdn.example.com/v.mp4" }),
        )
        .await
        .expect(401);
    let refused = last_event(&s, &ids[0]).await;
    let id = refused["_id"].as_str().unwrap().to_string();
    // Only a superadmin replays.
    s.app
        .act(&format!("/api/webhook-events/{id}/replay"), &s.user)
        .await
        .expect(403);
    let r = s
        .app
        .act(&format!("/api/webhook-events/{id}/replay"), &s.admin)
        .await
        .expect(200);
    assert_eq!(r.data()["statusCode"], 200);
    assert_eq!(r.data()["outcome"], "Video status updated successfully");
    let video = s.video(&ids[0]).await;
    assert_eq!(video["status"], "completed");
    assert_eq!(
        video["metadata"]["videoUrl"],
        "https://cdn.example.com/v.mp4"
    );
    // The replay is an event of its own, saying what it is.
    let replay = last_event(&s, &ids[0]).await;
    assert_eq!(replay["_id"], r.data()["eventId"]);
    assert_eq!(replay["statusCode"], 200);
    assert_eq!(
        replay["outcome"],
        format!("Video status updated successfully (replay of {id} by {ADMIN_EMAIL})")
    );
    // Replayed again: the state rules answer as for any duplicate; nothing moves.
    let again = s
        .app
        .act(&format!("/api/webhook-events/{id}/replay"), &s.admin)
        .await
        .expect(200);
    assert_eq!(s.video(&ids[0]).await["updatedAt"], video["updatedAt"]);
    assert_ne!(again.data()["eventId"], r.data()["eventId"]);
    // Unknown and unfit events.
    s.app
        .act(
            "/api/webhook-events/507f1f77bcf86cd799439011/replay",
            &s.admin,
        )
        .await
        .expect(404);
    s.app
        .act("/api/webhook-events/nope/replay", &s.admin)
        .await
        .expect(400);
    s.app
        .post_raw(
            "/internal/videos/success",
            Some("application/json"),
            b"[1,2]".to_vec(),
        )
        .await;
    let events = s
        .app
        .get("/api/webhook-events?limit=1", &s.admin)
        .await
        .expect(200);
    let array_call = events.data()["events"][0]["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s
        .app
        .act(
            &format!("/api/webhook-events/{array_call}/replay"),
            &s.admin,
        )
        .await
        .expect(400);
    assert!(r.msg().contains("not a JSON object"), "{}", r.msg());
}

#[tokio::test]
async fn the_command_line_issues_tokens_exports_and_replays() {
    let s = Scene::new().await;
    let ids = s.start_videos(&s.products[0], 2).await;
    s.callback("/internal/videos/success", json!({ "videoId": ids[0] }))
        .await
        .expect(200);
    s.app
        .post(
            "/internal/videos/failure",
            None,
            json!({ "videoId": ids[1], "error": "x" }),
        )
        .await
        .expect(401);

    // A token for scripts: it works on the API like a login's.
    let token = cli(&s, &["token", "--email", ADMIN_EMAIL, "--ttl-hours", "2"]);
    let me = s.app.get("/api/auth/me", token.trim()).await.expect(200);
    assert_eq!(me.data()["email"], ADMIN_EMAIL);

    // The whole log as NDJSON, newest first, in the REST shape; --since filters.
    let all = cli(&s, &["events", "export"]);
    let lines: Vec<Value> = all
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{all}");
    assert_eq!(lines[0]["endpoint"], "/videos/failure");
    assert_eq!(lines[1]["statusCode"], 200);
    let later = cli(&s, &["events", "export", "--since", "2999-01-01T00:00:00Z"]);
    assert_eq!(later, "");
    let only = cli(&s, &["events", "export", "--endpoint", "/videos/success"]);
    assert_eq!(only.lines().count(), 1);

    // The refused failure replayed from the command line.
    let id = lines[0]["_id"].as_str().unwrap();
    let out: Value = serde_json::from_str(&cli(&s, &["events", "replay", id])).unwrap();
    assert_eq!(out["statusCode"], 200, "{out}");
    assert_eq!(s.video(&ids[1]).await["status"], "failed");
    let replay = last_event(&s, &ids[1]).await;
    assert!(replay["outcome"]
        .as_str()
        .unwrap()
        .ends_with(&format!("(replay of {id} by the command line)")));
}
