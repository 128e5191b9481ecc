//! The server process itself: slow clients are cut off, and SIGTERM ends it cleanly even with a live
//! feed open.

use crate::support::{TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_client_slow_to_send_its_headers_is_cut_off() {
    let app = TestApp::spawn().await;
    let addr = app.addr;
    let closed = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        // Headers started, never finished.
        s.write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = Vec::new();
        // The server answers 408 and/or closes: the read ends either way (bounded by the timeout).
        s.read_to_end(&mut buf).is_ok()
    })
    .await
    .unwrap();
    assert!(closed, "the connection was not closed within 30 s");
}

#[test]
fn sigterm_with_a_live_feed_open_exits_0_within_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::support::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", dir.path())
        .env("JWT_SECRET", "lifecycle-secret-lifecycle-secret-0123")
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .env("SUPERADMIN_EMAIL", ADMIN_EMAIL)
        .env("SUPERADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("SHUTDOWN_GRACE_SECONDS", "2")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    // Ready (bounded), then a superadmin with an open live feed.
    let token = rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("{base}/api/health")).send().await {
                if r.status() == 200 {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "the server did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let r: serde_json::Value = http
            .post(format!("{base}/api/auth/login"))
            .json(&serde_json::json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["data"]["token"].as_str().unwrap().to_string()
    });
    let feed = rt.block_on(async {
        http.get(format!("{base}/api/live"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
    });
    assert_eq!(feed.status(), 200);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    // Bounded: the grace period is 2 s; give the process 20.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not exit after SIGTERM with a live feed open");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "exit status {status}");
    drop(feed);
}
