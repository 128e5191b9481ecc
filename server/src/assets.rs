//! The static files' caching and every answer's compression.
//!
//! With content-hashed names (`hash-files`, `hash.txt` next to the binary) a file under `/pkg/`
//! never changes under its name: browsers keep it a year without asking again. Without them (a build
//! that did not hash), browsers revalidate each time (`no-cache`, answered 304 when unchanged).
//!
//! Release builds precompress the WASM, JS and CSS (`.br` and `.gz` beside each file, served by
//! `Accept-Encoding`); everything else (HTML, JSON) is compressed on the fly, except Server-Sent
//! Events (which must flow as they come) and a WASM without its precompressed copies (a debug build:
//! too big to compress per request).

use axum::extract::{Request, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_http::compression::CompressionLayer;

pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Sets `Cache-Control` on the site's `/pkg/` files.
pub async fn cache_control(State(hashed): State<bool>, req: Request, next: Next) -> Response {
    let pkg = req.uri().path().starts_with("/pkg/");
    let mut resp = next.run(req).await;
    if pkg && matches!(resp.status(), StatusCode::OK | StatusCode::NOT_MODIFIED) {
        let value = if hashed { IMMUTABLE } else { "no-cache" };
        resp.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static(value));
    }
    resp
}

/// Brotli or gzip by `Accept-Encoding`, for what is not precompressed already.
pub fn compression() -> CompressionLayer<impl Predicate> {
    CompressionLayer::new()
        .no_deflate()
        .no_zstd()
        .compress_when(
            DefaultPredicate::new().and(NotForContentType::const_new("application/wasm")),
        )
}
