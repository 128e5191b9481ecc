//! `/api/...`: the JSON REST surface. Handlers extract (the `Caller`, a typed body or filter) and
//! call one service function each; services authorise and decide; every answer is an `ApiResponse`.

use crate::extract::{ApiJson, ApiQuery, ClientAddr};
use app::model::filters::{EventFilter, ProductFilter, StatsQuery, VideoFilter};
use app::ssr::auth::Caller;
use app::ssr::error::{ApiResponse, AppError, AppResult};
use app::ssr::services::{bulk, events, idempotency, products, stats, users, videos};
use app::ssr::state::AppState;
use app::ssr::store::within;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// What a handler answers: the envelope around `T`, or an error in the envelope.
type Reply<T> = AppResult<ApiResponse<T>>;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/auth/login", post(login))
        .route("/auth/me", get(me))
        .route("/auth/logout", post(logout))
        .route("/workspaces", post(create_workspace).get(list_workspaces))
        .route("/users", post(create_user))
        .route("/products", post(create_product).get(list_products))
        .route("/products/{id}", get(get_product))
        .route("/videos/bulk-generate", post(bulk_generate))
        .route("/videos", get(list_videos))
        .route("/videos/{id}", get(get_video))
        .route("/videos/{id}/fail", post(mark_failed))
        .route("/videos/{id}/retry", post(retry_video))
        .route("/webhook-events", get(list_events))
        .route("/webhook-events/stats", get(webhook_stats))
        .route("/webhook-events/{id}", get(get_event))
        .route("/webhook-events/{id}/replay", post(replay_event))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn not_found() -> AppError {
    AppError::NotFound("Route not found".into())
}

async fn method_not_allowed() -> ApiResponse<Value> {
    ApiResponse::refused(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
}

/// 200 while the store takes writes (a real write probe, bounded); 503 `Storage unavailable`
/// otherwise. `spooled`: callbacks from an outage still waiting to be written to the store.
async fn health(State(state): State<AppState>) -> Reply<Value> {
    within(state.store.ping()).await?;
    Ok(ApiResponse::ok(json!({
        "status": "ok",
        "store": state.store.kind(),
        "spooled": state.spool.pending(),
    })))
}

#[derive(Deserialize)]
struct LoginBody {
    email: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(b): ApiJson<LoginBody>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::ok(
        users::login(&state, client, &b.email, &b.password).await?,
    ))
}

/// Revokes the caller's token (Bearer or cookie): it stops working at once.
async fn logout(State(state): State<AppState>, caller: Caller) -> Reply<Value> {
    state.sessions.revoke(&*state.store, &caller).await?;
    Ok(ApiResponse::ok(json!({ "signedOut": true })).message("Signed out"))
}

async fn me(State(state): State<AppState>, caller: Caller) -> Reply<impl Serialize> {
    Ok(ApiResponse::ok(users::me(&state, &caller).await?))
}

async fn create_workspace(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<users::NewWorkspace>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::created(
        users::create_workspace_as(&state, &caller, b).await?,
    ))
}

async fn list_workspaces(State(state): State<AppState>, caller: Caller) -> Reply<impl Serialize> {
    Ok(ApiResponse::ok(
        users::list_workspaces(&state, &caller).await?,
    ))
}

async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<users::NewUser>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::created(
        users::create_user_as(&state, &caller, b).await?,
    ))
}

async fn create_product(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<products::NewProduct>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::created(
        products::create_product(&state, &caller, b).await?,
    ))
}

async fn list_products(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<ProductFilter>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::ok(
        products::list_products(&state, &caller, &filter).await?,
    ))
}

async fn get_product(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::ok(
        products::get_product(&state, &caller, &id).await?,
    ))
}

async fn get_video(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::ok(
        videos::get_video(&state, &caller, &id).await?,
    ))
}

/// With an `Idempotency-Key`, a replayed answer carries `Idempotency-Replayed: true`.
async fn bulk_generate(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(b): ApiJson<bulk::BulkRequest>,
) -> AppResult<Response> {
    let key = match headers.get(idempotency::HEADER) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| AppError::BadRequest(idempotency::MSG_BAD_KEY.into()))?,
        ),
    };
    let reply = bulk::bulk_generate(&state, &caller, key, b).await?;
    let mut resp = (reply.status, axum::Json(reply.body)).into_response();
    if reply.replayed {
        resp.headers_mut()
            .insert("idempotency-replayed", HeaderValue::from_static("true"));
    }
    Ok(resp)
}

async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<EventFilter>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::ok(
        events::list_events(&state, &caller, &filter).await?,
    ))
}

async fn get_event(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::ok(
        events::get_event(&state, &caller, &id).await?,
    ))
}

async fn replay_event(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::ok(
        app::ssr::services::webhooks::replay(&state, &caller, &id).await?,
    ))
}

async fn list_videos(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<VideoFilter>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::ok(
        videos::list_videos(&state, &caller, &filter).await?,
    ))
}

#[derive(Deserialize, Default)]
struct FailBody {
    #[serde(default)]
    error: Option<String>,
}

async fn mark_failed(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Reply<impl Serialize> {
    // The body is optional: empty, or `{"error": "..."}`.
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<FailBody>(&body)
            .map_err(|_| AppError::BadRequest("body must be empty or {\"error\": string}".into()))?
            .error
    };
    Ok(ApiResponse::ok(
        videos::mark_failed(&state, &caller, &id, reason).await?,
    ))
}

async fn retry_video(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::accepted(
        videos::retry(&state, &caller, &id).await?,
    ))
}

async fn webhook_stats(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<StatsQuery>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::ok(
        stats::webhook_stats(&state, &caller, &query).await?,
    ))
}
