//! `/api/...`: the JSON REST surface. Handlers parse and authorise; services decide.

use crate::extract::ApiJson;
use app::ssr::auth::Caller;
use app::ssr::error::{AppError, AppResult};
use app::ssr::services::{bulk, events, products, stats, users, videos};
use app::ssr::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;

/// `{success: true, data}` with a status.
pub fn ok<T: Serialize>(status: StatusCode, data: T) -> Response {
    (status, Json(json!({ "success": true, "data": data }))).into_response()
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/auth/login", post(login))
        .route("/auth/me", get(me))
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
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn not_found() -> AppError {
    AppError::NotFound("Route not found".into())
}

async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(json!({ "success": false, "message": "Method not allowed" })),
    )
        .into_response()
}

async fn health(State(state): State<AppState>) -> Response {
    ok(
        StatusCode::OK,
        json!({ "status": "ok", "store": state.store.kind() }),
    )
}

#[derive(Deserialize)]
struct LoginBody {
    email: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    ApiJson(b): ApiJson<LoginBody>,
) -> AppResult<Response> {
    let r = users::login(&state, &b.email, &b.password).await?;
    Ok(ok(StatusCode::OK, r))
}

async fn me(State(state): State<AppState>, caller: Caller) -> AppResult<Response> {
    let user = state
        .store
        .find_user(caller.user_id)
        .await?
        .ok_or_else(|| AppError::Unauthorized("User no longer exists".into()))?;
    Ok(ok(StatusCode::OK, user))
}

async fn create_workspace(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<users::NewWorkspace>,
) -> AppResult<Response> {
    let ws = users::create_workspace_as(&state, &caller, b).await?;
    Ok(ok(StatusCode::CREATED, ws))
}

async fn list_workspaces(State(state): State<AppState>, caller: Caller) -> AppResult<Response> {
    caller.require_superadmin()?;
    Ok(ok(StatusCode::OK, state.store.list_workspaces().await?))
}

async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<users::NewUser>,
) -> AppResult<Response> {
    let u = users::create_user_as(&state, &caller, b).await?;
    Ok(ok(StatusCode::CREATED, u))
}

async fn create_product(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<products::NewProduct>,
) -> AppResult<Response> {
    let p = products::create_product(&state, &caller, b).await?;
    Ok(ok(StatusCode::CREATED, p))
}

async fn list_products(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Response> {
    let page = products::list_products(
        &state,
        &caller,
        q.get("workspaceId").map(String::as_str),
        q.get("page").map(String::as_str),
        q.get("limit").map(String::as_str),
    )
    .await?;
    Ok(ok(StatusCode::OK, page))
}

async fn get_product(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<Response> {
    Ok(ok(
        StatusCode::OK,
        products::get_product(&state, &caller, &id).await?,
    ))
}

async fn get_video(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<Response> {
    Ok(ok(
        StatusCode::OK,
        videos::get_video(&state, &caller, &id).await?,
    ))
}

async fn bulk_generate(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<bulk::BulkRequest>,
) -> AppResult<Response> {
    let started = bulk::bulk_generate(&state, &caller, b).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "success": true, "message": "Video generation started", "data": started })),
    )
        .into_response())
}

async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    Query(mut q): Query<HashMap<String, String>>,
) -> AppResult<Response> {
    let params = events::EventParams {
        page: q.remove("page"),
        limit: q.remove("limit"),
        endpoint: q.remove("endpoint"),
        video_id: q.remove("videoId"),
        from: q.remove("from"),
        to: q.remove("to"),
    };
    let page = events::list_events(&state, &caller, &params).await?;
    Ok(ok(StatusCode::OK, page))
}

async fn get_event(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<Response> {
    Ok(ok(
        StatusCode::OK,
        events::get_event(&state, &caller, &id).await?,
    ))
}

async fn list_videos(
    State(state): State<AppState>,
    caller: Caller,
    Query(mut q): Query<HashMap<String, String>>,
) -> AppResult<Response> {
    let params = videos::VideoParams {
        page: q.remove("page"),
        limit: q.remove("limit"),
        status: q.remove("status"),
        workspace_id: q.remove("workspaceId"),
        video_id: q.remove("videoId"),
        stuck: q.remove("stuck"),
    };
    Ok(ok(
        StatusCode::OK,
        videos::list_videos(&state, &caller, &params).await?,
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
) -> AppResult<Response> {
    // The body is optional: empty, or `{"error": "..."}`.
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<FailBody>(&body)
            .map_err(|_| AppError::BadRequest("body must be empty or {\"error\": string}".into()))?
            .error
    };
    Ok(ok(
        StatusCode::OK,
        videos::mark_failed(&state, &caller, &id, reason).await?,
    ))
}

async fn retry_video(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<Response> {
    Ok(ok(
        StatusCode::ACCEPTED,
        videos::retry(&state, &caller, &id).await?,
    ))
}

async fn webhook_stats(
    State(state): State<AppState>,
    caller: Caller,
    Query(mut q): Query<HashMap<String, String>>,
) -> AppResult<Response> {
    let params = stats::StatsParams {
        from: q.remove("from"),
        to: q.remove("to"),
        bucket: q.remove("bucket"),
    };
    Ok(ok(
        StatusCode::OK,
        stats::webhook_stats(&state, &caller, &params).await?,
    ))
}
