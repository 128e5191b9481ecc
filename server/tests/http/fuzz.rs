//! Generated input over `/internal/*` and the REST query strings: whatever arrives, no 5xx (503
//! aside), no panic, always a JSON envelope, and every call to `/internal/*` recorded.
//!
//! `FUZZ_CASES` cases (default 2,000 in `make test`; `make fuzz` runs 100,000), from `FUZZ_SEED`
//! (default: the clock, printed so a failure can be replayed).

use crate::support::Scene;
use futures::StreamExt;
use reqwest::Method;
use serde_json::{json, Map, Value};

/// xorshift64*: small, fast, reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const KEYS: &[&str] = &[
    "videoId",
    "videoUrl",
    "youtubeVideoId",
    "localFilename",
    "imgS3Url",
    "error",
    "errorMessage",
    "status",
    "$set",
    "$where",
    "a.b",
    "",
    "nul\u{0}key",
    "ñandú",
    "🙂",
    "__proto__",
    "metadata",
];

fn string(r: &mut Rng, video: &str) -> String {
    match r.below(9) {
        0 => video.to_string(),
        1 => format!("{:024x}", r.next() as u128 * r.next() as u128),
        2 => String::new(),
        3 => "x".repeat(r.below(5000)),
        4 => "\u{0}\u{1f}\"\\'<script>".into(),
        5 => "https://cdn.test/v.mp4".into(),
        6 => "ñ🙂\u{202e}".into(),
        7 => " 507f1f77bcf86cd799439011 ".into(),
        _ => format!("{}", r.next()),
    }
}

fn value(r: &mut Rng, video: &str, depth: usize) -> Value {
    match r.below(if depth > 4 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => json!(r.chance(50)),
        2 => json!(r.next() as i64),
        3 => json!(f64::from_bits(r.next()).clamp(-1e300, 1e300)),
        4 => json!(string(r, video)),
        5 | 6 => {
            let mut m = Map::new();
            for _ in 0..r.below(6) {
                let k = r.pick(KEYS).to_string();
                m.insert(k, value(r, video, depth + 1));
            }
            Value::Object(m)
        }
        _ => Value::Array(
            (0..r.below(4))
                .map(|_| value(r, video, depth + 1))
                .collect(),
        ),
    }
}

/// A callback body: mostly JSON objects near the contract, sometimes anything at all.
fn body(r: &mut Rng, video: &str) -> Vec<u8> {
    match r.below(10) {
        0 => (0..r.below(300)).map(|_| r.next() as u8).collect(),
        1 => {
            let mut deep = json!(1);
            for _ in 0..(90 + r.below(60)) {
                deep = json!({ "d": deep });
            }
            json!({ "videoId": video, "videoUrl": "https://x/v.mp4", "deep": deep })
                .to_string()
                .into_bytes()
        }
        2 => b"{\"videoId\": \"".to_vec(),
        _ => {
            let mut v = value(r, video, 0);
            if let (Value::Object(m), true) = (&mut v, r.chance(70)) {
                m.insert("videoId".into(), json!(string(r, video)));
            }
            v.to_string().into_bytes()
        }
    }
}

const QUERY_KEYS: &[&str] = &[
    "page",
    "limit",
    "endpoint",
    "videoId",
    "from",
    "to",
    "status",
    "workspaceId",
    "stuck",
    "range",
    "bucket",
    "groupBy",
    "cursor",
    "token",
    "x",
];

fn query_value(r: &mut Rng, video: &str) -> String {
    match r.below(10) {
        0 => "-1".into(),
        1 => "99999999999999999999999".into(),
        2 => "0".into(),
        3 => format!("{}", r.below(200)),
        4 => "/videos/failure".into(),
        5 => "2026-01-01T00:00:00Z".into(),
        6 => "%ZZ%00%ff".into(),
        7 => video.into(),
        8 => "failed".into(),
        _ => urlencode(&string(r, video)),
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .take(200)
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn total_events(s: &Scene) -> u64 {
    let r = s
        .app
        .get("/api/webhook-events?limit=1", &s.admin)
        .await
        .expect(200);
    r.data()["pagination"]["total"].as_u64().unwrap()
}

#[tokio::test]
async fn generated_input_never_breaks_the_server() {
    let cases: usize = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| crate::support::rand_suffix() | 1);
    eprintln!("fuzz: {cases} cases, FUZZ_SEED={seed}");
    let s = Scene::new().await;
    let videos = s.start_videos(&s.products[0], 3).await;
    let before = total_events(&s).await;

    // Each case is built from its own seed, so they can run concurrently and still replay.
    let results: Vec<(usize, bool)> = futures::stream::iter(0..cases)
        .map(|i| {
            let s = &s;
            let videos = &videos;
            async move {
                let mut r = Rng(seed
                    .wrapping_add(i as u64)
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    | 1);
                let video = r.pick(videos).clone();
                let internal = r.chance(60);
                let (method, url, body, ct) = if internal {
                    let path = *r.pick(&[
                        "/internal/videos/success",
                        "/internal/videos/failure",
                        "/internal/videos/success",
                        "/internal/videos/failure",
                        "/internal/videos/other",
                        "/internal/",
                    ]);
                    let query = match r.below(4) {
                        0 => s.rck.query_for(&video).unwrap_or_default(),
                        1 => format!("?token={}", query_value(&mut r, &video)),
                        _ => String::new(),
                    };
                    let method = if r.chance(90) {
                        Method::POST
                    } else {
                        Method::PUT
                    };
                    let ct = *r.pick(&[
                        Some("application/json"),
                        Some("application/json"),
                        Some("application/vnd.rck+json; charset=utf-8"),
                        Some("text/plain"),
                        None,
                    ]);
                    (method, format!("{path}{query}"), body(&mut r, &video), ct)
                } else {
                    let path = *r.pick(&[
                        "/api/webhook-events",
                        "/api/webhook-events/stats",
                        "/api/videos",
                        "/api/products",
                    ]);
                    let query: Vec<String> = (0..r.below(5))
                        .map(|_| {
                            let k = *r.pick(QUERY_KEYS);
                            format!("{k}={}", query_value(&mut r, &video))
                        })
                        .collect();
                    (
                        Method::GET,
                        format!("{path}?{}", query.join("&")),
                        Vec::new(),
                        None,
                    )
                };
                let mut req = s.app.http.request(method, s.app.url(&url)).body(body);
                if let Some(ct) = ct {
                    req = req.header("content-type", ct);
                }
                if !internal {
                    req = req.bearer_auth(if r.chance(80) { &s.admin } else { &s.user });
                }
                let resp = req
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("case {i} ({url}): {e}"));
                let status = resp.status().as_u16();
                let text = resp.text().await.unwrap();
                assert!(
                    status < 500 || status == 503,
                    "case {i} (FUZZ_SEED={seed}): {url} answered {status}: {text}"
                );
                let envelope: Value = serde_json::from_str(&text).unwrap_or_else(|_| {
                    panic!("case {i} (FUZZ_SEED={seed}): {url}: not JSON: {text:.200}")
                });
                assert!(envelope["success"].is_boolean(), "case {i}: {text:.200}");
                (i, internal)
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;

    let internal_calls = results.iter().filter(|r| r.1).count() as u64;
    // A list's total of `CACHE_FROM` or more may be up to `TTL` old, and the cases' own reads of the
    // log keep one (`make fuzz` records tens of thousands of calls): once that has passed, the
    // count is exact again.
    if before + internal_calls >= app::ssr::totals::CACHE_FROM {
        tokio::time::sleep(app::ssr::totals::TTL).await;
    }
    assert_eq!(
        total_events(&s).await - before,
        internal_calls,
        "every call to /internal/* is recorded once"
    );
}
