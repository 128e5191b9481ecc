//! The server: start-up, the HTTP surface (REST, webhooks, the dashboard) and background work.
#![forbid(unsafe_code)]

pub mod assets;
pub mod demo;
pub mod extract;
pub mod internal;
pub mod live;
pub mod observe;
pub mod openapi;
pub mod rck_sim;
pub mod rest;
pub mod security;
pub mod session;
pub mod workers;

use anyhow::Context;
use app::ssr::config::Config;
use app::ssr::services::users;
use app::ssr::state::AppState;
use app::ssr::store::{sqlite::SqliteStore, Store};
use app::{shell, App};
use axum::extract::DefaultBodyLimit;
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Opens the configured store. SQLite in `DATA_DIR` unless `MONGODB_URI` is set.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(uri) = config.mongodb_uri.as_deref() {
        let store = app::ssr::store::mongo::connect(
            uri,
            &config.mongodb_db,
            config.webhook_event_retention_days,
        )
        .await
        .context("opening the MongoDB store")?;
        return Ok(Arc::new(store));
    }
    let store = SqliteStore::open(&config.data_dir).context("opening the SQLite store")?;
    store
        .set_email_notifications(config.smtp_url.is_some())
        .await
        .context("configuring the SQLite store")?;
    Ok(Arc::new(store))
}

/// Builds the shared state and runs the start-up tasks (first superadmin).
pub async fn build_state(config: Config) -> anyhow::Result<AppState> {
    let store = open_store(&config).await?;
    let state = AppState::new(config, store).context("opening the spool under DATA_DIR")?;
    users::ensure_superadmin(&state)
        .await
        .context("creating the first superadmin")?;
    Ok(state)
}

/// The Leptos options from the environment cargo-leptos sets (with defaults for a plain binary run).
/// Hashed file names are used when `hash.txt` (written by cargo-leptos) lies next to the binary,
/// or when `LEPTOS_HASH_FILES` says so.
pub fn leptos_options(site_addr: SocketAddr) -> LeptosOptions {
    let var = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let hash_file = var("LEPTOS_HASH_FILE_NAME", "hash.txt");
    let hash_files = match std::env::var("LEPTOS_HASH_FILES") {
        Ok(v) => v == "true",
        Err(_) => std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.join(&hash_file)))
            .is_some_and(|p| p.exists()),
    };
    LeptosOptions::builder()
        .hash_file(std::sync::Arc::from(hash_file))
        .hash_files(hash_files)
        .output_name(var("LEPTOS_OUTPUT_NAME", "racky-videos"))
        .site_root(var("LEPTOS_SITE_ROOT", "target/site"))
        .site_pkg_dir(var("LEPTOS_SITE_PKG_DIR", "pkg"))
        .site_addr(site_addr)
        .reload_port(
            var("LEPTOS_RELOAD_PORT", "3001")
                .parse::<u32>()
                .unwrap_or(3001),
        )
        .build()
}

/// The whole HTTP surface.
pub fn router(state: AppState, options: LeptosOptions) -> Router {
    observe::prometheus();
    let routes = generate_route_list(App);
    let app_state = state.clone();
    let hashed_assets = options.hash_files;
    let pages = Router::new()
        .leptos_routes_with_context(
            &options,
            routes,
            move || {
                provide_context(app_state.clone());
                // A fresh nonce per page: the hydration script carries it, the CSP names it.
                leptos::nonce::provide_nonce();
            },
            {
                let options = options.clone();
                move || shell(options.clone())
            },
        )
        .fallback(leptos_axum::file_and_error_handler(shell))
        .with_state(options)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::guard,
        ));
    let state_for_origin = state.clone();
    let in_flight = Arc::new(tokio::sync::Semaphore::new(state.config.max_in_flight));
    let timeout_secs = state.config.request_timeout_secs;
    let body_limit = DefaultBodyLimit::max(app::ssr::services::webhooks::MAX_BODY_BYTES);
    let api = Router::new()
        .nest(
            "/api",
            rest::router()
                .merge(live::router())
                .merge(openapi::router()),
        )
        .merge(session::router())
        .merge(observe::router())
        .layer(body_limit)
        .with_state(state.clone());
    // What browsers use (pages, static files, the API with its session cookie): cross-site writes
    // refused, cache headers on the static files, compression.
    let site = api
        .merge(pages)
        .layer(axum::middleware::from_fn_with_state(
            state_for_origin,
            security::same_origin,
        ))
        .layer(axum::middleware::from_fn_with_state(
            hashed_assets,
            assets::cache_control,
        ))
        .layer(assets::compression());
    // RCK's callbacks, which carry all of its load, go past those three: they authenticate by
    // token or signature, never by cookie, and answer a few bytes of JSON that are not worth
    // compressing. Three layers fewer: 3 % fewer instructions per callback (`make bench-instructions`).
    let callbacks = internal::router().layer(body_limit).with_state(state);
    site.merge(callbacks)
        .layer(axum::middleware::from_fn_with_state(
            timeout_secs,
            security::request_timeout,
        ))
        .layer(axum::middleware::from_fn(security::headers))
        .layer(axum::middleware::from_fn_with_state(
            in_flight,
            security::in_flight_limit,
        ))
        // Outermost: the request id, the access log and the HTTP metrics see every answer (the
        // in-flight limit's 503s too). Logs name the route template, never the path or query: a
        // query string may hold a callback token.
        .layer(axum::middleware::from_fn(observe::observe))
}

/// How long a client may take to send its request headers (slow clients are cut off).
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves until `shutdown` resolves, then lets in-flight requests finish for at most `grace`.
///
/// Our own accept loop over hyper (rather than `axum::serve`) so a client that is slow to send its
/// headers is cut off (`HEADER_READ_TIMEOUT`), and so shutdown is bounded even with live feeds open.
/// Each request carries the peer's address (`ConnectInfo`), which the login throttle counts by.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: std::time::Duration,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;
    use tower::Service;

    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let app = router.clone();
        let service =
            tower::service_fn(move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                let mut app = app.clone();
                async move { app.call(req.map(axum::body::Body::new)).await }
            });
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {grace:?}; closing them");
    }
    Ok(())
}
