//! `/api/...`: the JSON REST surface. Handlers extract (the `Caller`, a typed body or filter) and
//! call one service function each; services authorise and decide; every answer is an `ApiResponse`.

use crate::extract::{ApiJson, ApiQuery, ClientAddr};
use crate::openapi::{Envelope, ErrorBody, Errors};
use app::model::filters::NotificationFilter;
use app::model::filters::{EventFilter, ProductFilter, StatsQuery, VideoFilter, WorkspaceFilter};
use app::model::notify::{ChannelResult, Notification, NotificationPage, NotificationSettings};
use app::ssr::auth::Caller;
use app::ssr::error::{ApiResponse, AppError, AppResult};
use app::ssr::services::notifications;
use app::ssr::services::{bulk, events, idempotency, products, stats, users, videos};
use app::ssr::state::AppState;
use app::ssr::store::within;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a handler answers: the envelope around `T`, or an error in the envelope.
type Reply<T> = AppResult<ApiResponse<T>>;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/auth/login", post(login))
        .route("/auth/me", get(me))
        .route("/auth/logout", post(logout))
        .route("/workspaces", post(create_workspace).get(list_workspaces))
        .route("/workspaces/usage", get(workspace_usage))
        .route("/workspaces/{id}", patch(update_workspace))
        .route("/users", post(create_user))
        .route("/products", post(create_product).get(list_products))
        .route("/products/{id}", get(get_product))
        .route("/videos/bulk-generate", post(bulk_generate))
        .route("/videos", get(list_videos))
        .route("/videos/bulk-action", post(bulk_video_action))
        .route("/videos/{id}", get(get_video))
        .route("/videos/{id}/fail", post(mark_failed))
        .route("/videos/{id}/retry", post(retry_video))
        .route("/webhook-events", get(list_events))
        .route("/webhook-events/stats", get(webhook_stats))
        .route("/webhook-events/export", get(export_events))
        .route("/webhook-events/{id}", get(get_event))
        .route("/webhook-events/{id}/replay", post(replay_event))
        .route(
            "/workspaces/{id}/notifications",
            get(get_notification_settings).put(put_notification_settings),
        )
        .route(
            "/workspaces/{id}/notifications/rotate-secret",
            post(rotate_webhook_secret),
        )
        .route(
            "/workspaces/{id}/notifications/test",
            post(test_notifications),
        )
        .route("/notifications", get(list_notifications))
        .route(
            "/notifications/{id}/redeliver",
            post(redeliver_notification),
        )
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
#[utoipa::path(get, path = "/api/health", tag = "operations",
    summary = "Store health (a real, bounded write probe)",
    responses((status = 200, description = "The store takes writes", body = Envelope<Health>),
              (status = 503, description = "Storage unavailable", body = ErrorBody)))]
async fn health(State(state): State<AppState>) -> Reply<Health> {
    within(state.store.ping()).await?;
    Ok(ApiResponse::ok(Health {
        status: "ok",
        store: state.store.kind(),
        spooled: state.spool.pending(),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`
    status: &'static str,
    /// `sqlite` or `mongodb`
    store: &'static str,
    /// Callbacks from a store outage still waiting to be written to the store.
    spooled: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignedOut {
    signed_out: bool,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(examples(json!({"email": "admin@racky.local", "password": "racky-admin-2024"})))]
pub struct LoginBody {
    email: String,
    password: String,
}

#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginBody,
    summary = "Log in: a bearer token and the user",
    responses((status = 200, body = Envelope<users::LoginResult>),
              (status = 400, description = "Missing email or password", body = ErrorBody),
              (status = 401, description = "Invalid email or password", body = ErrorBody),
              (status = 429, description = "Too many login attempts (see Retry-After)", body = ErrorBody)))]
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
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    summary = "Revoke the caller's token at once",
    responses((status = 200, description = "`message`: Signed out", body = Envelope<SignedOut>), Errors))]
async fn logout(State(state): State<AppState>, caller: Caller) -> Reply<SignedOut> {
    state.sessions.revoke(&*state.store, &caller).await?;
    Ok(ApiResponse::ok(SignedOut { signed_out: true }).message("Signed out"))
}

#[utoipa::path(get, path = "/api/auth/me", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    summary = "The caller's account",
    responses((status = 200, body = Envelope<app::model::User>), Errors))]
async fn me(State(state): State<AppState>, caller: Caller) -> Reply<impl Serialize> {
    Ok(ApiResponse::ok(users::me(&state, &caller).await?))
}

#[utoipa::path(post, path = "/api/workspaces", tag = "workspaces", security(("bearer" = []), ("cookie" = [])),
    request_body = users::NewWorkspace, summary = "Create a workspace (SUPERADMIN)",
    responses((status = 201, body = Envelope<app::model::Workspace>), Errors))]
async fn create_workspace(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<users::NewWorkspace>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::created(
        users::create_workspace_as(&state, &caller, b).await?,
    ))
}

#[utoipa::path(get, path = "/api/workspaces", tag = "workspaces", security(("bearer" = []), ("cookie" = [])),
    params(WorkspaceFilter),
    summary = "A page of the workspaces with their usage, by name (SUPERADMIN)",
    responses((status = 200, body = Envelope<app::model::dashboard::WorkspacePage>), Errors))]
async fn list_workspaces(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<WorkspaceFilter>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::ok(
        users::list_workspaces(&state, &caller, &q).await?,
    ))
}

#[utoipa::path(post, path = "/api/users", tag = "users", security(("bearer" = []), ("cookie" = [])),
    request_body = users::NewUser, summary = "Create a user (SUPERADMIN)",
    responses((status = 201, body = Envelope<app::model::User>),
              (status = 409, description = "Email already registered", body = ErrorBody), Errors))]
async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<users::NewUser>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::created(
        users::create_user_as(&state, &caller, b).await?,
    ))
}

#[utoipa::path(post, path = "/api/products", tag = "products", security(("bearer" = []), ("cookie" = [])),
    request_body = products::NewProduct, summary = "Create a product in the caller's workspace",
    responses((status = 201, body = Envelope<app::model::Product>), Errors))]
async fn create_product(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<products::NewProduct>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::created(
        products::create_product(&state, &caller, b).await?,
    ))
}

#[utoipa::path(get, path = "/api/products", tag = "products", security(("bearer" = []), ("cookie" = [])),
    params(ProductFilter), summary = "The caller's products, newest first",
    responses((status = 200, body = Envelope<products::ProductPage>), Errors))]
async fn list_products(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<ProductFilter>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::ok(
        products::list_products(&state, &caller, &filter).await?,
    ))
}

#[utoipa::path(get, path = "/api/products/{id}", tag = "products", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "The product's id")), summary = "One product with its `videos` entries",
    responses((status = 200, body = Envelope<app::model::Product>),
              (status = 404, description = "Product not found", body = ErrorBody), Errors))]
async fn get_product(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::ok(
        products::get_product(&state, &caller, &id).await?,
    ))
}

#[utoipa::path(get, path = "/api/videos/{id}", tag = "videos", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "The video's id")), summary = "One video (its workspace's users, or a superadmin)",
    responses((status = 200, body = Envelope<app::model::AiVideo>),
              (status = 404, description = "Video not found", body = ErrorBody), Errors))]
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
#[utoipa::path(post, path = "/api/videos/bulk-generate", tag = "videos", security(("bearer" = []), ("cookie" = [])),
    request_body = bulk::BulkRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry of the same request safe for 24 h: the same key and body replay the first answer (with `Idempotency-Replayed: true`)")),
    summary = "Start videos of products with one template",
    description = "Checks the products (the caller's workspace's) and the quota (counted in one atomic step), creates the videos, then sends the batch to RCK. An ambiguous RCK outcome leaves the videos `generating` with `externalJobId: null`.",
    responses((status = 202, description = "`message`: Video generation started", body = Envelope<bulk::BulkStarted>),
              (status = 403, description = "Video limit exceeded (`data`: limit, used, requested)", body = ErrorBody),
              (status = 404, description = "Products not found (`data.productIds`)", body = ErrorBody),
              (status = 409, description = "The Idempotency-Key is in use by a request still running or that died", body = ErrorBody),
              (status = 422, description = "The Idempotency-Key was used with another body", body = ErrorBody),
              (status = 502, description = "RCK refused the batch: the videos failed, the quota was given back", body = ErrorBody),
              Errors))]
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

#[utoipa::path(get, path = "/api/webhook-events", tag = "webhook-events", security(("bearer" = []), ("cookie" = [])),
    params(EventFilter), summary = "The webhook event log, newest first (SUPERADMIN)",
    responses((status = 200, body = Envelope<app::model::EventPage>), Errors))]
async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<EventFilter>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::ok(
        events::list_events(&state, &caller, &filter).await?,
    ))
}

#[utoipa::path(get, path = "/api/webhook-events/{id}", tag = "webhook-events", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "The event's id")), summary = "One webhook event (SUPERADMIN)",
    responses((status = 200, body = Envelope<app::model::WebhookEvent>),
              (status = 404, description = "Webhook event not found", body = ErrorBody), Errors))]
async fn get_event(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::ok(
        events::get_event(&state, &caller, &id).await?,
    ))
}

#[utoipa::path(post, path = "/api/webhook-events/{id}/replay", tag = "webhook-events", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "The event's id")),
    summary = "Apply a recorded callback again (SUPERADMIN)",
    description = "Through the normal path: the state rules apply; the replay is recorded as an event whose outcome ends `(replay of <id> by <email>)`.",
    responses((status = 200, body = Envelope<app::model::webhook::Replayed>),
              (status = 404, description = "Webhook event not found", body = ErrorBody), Errors))]
async fn replay_event(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::ok(
        app::ssr::services::webhooks::replay(&state, &caller, &id).await?,
    ))
}

#[utoipa::path(get, path = "/api/workspaces/usage", tag = "workspaces", security(("bearer" = []), ("cookie" = [])),
    params(WorkspaceFilter),
    summary = "A page of the workspaces with their quota, videos per status and last activity, by name (SUPERADMIN)",
    responses((status = 200, body = Envelope<app::model::dashboard::WorkspaceRowPage>), Errors))]
async fn workspace_usage(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<WorkspaceFilter>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::ok(
        app::ssr::services::workspaces::workspace_rows(&state, &caller, &q).await?,
    ))
}

/// `PATCH /api/workspaces/{id}`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct WorkspacePatch {
    /// A whole number from 0 to 10,000,000.
    #[schema(value_type = u32, example = 500)]
    video_limit: Option<Value>,
}

#[utoipa::path(patch, path = "/api/workspaces/{id}", tag = "workspaces", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "The workspace's id")), request_body = WorkspacePatch,
    summary = "Change a workspace's video limit (SUPERADMIN; written to the audit log)",
    responses((status = 200, body = Envelope<app::model::Workspace>),
              (status = 400, description = "videoLimit is not a whole number from 0 to 10,000,000", body = ErrorBody),
              (status = 404, description = "Workspace not found", body = ErrorBody), Errors))]
async fn update_workspace(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<WorkspacePatch>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::ok(
        app::ssr::services::workspaces::set_video_limit(
            &state,
            &caller,
            &id,
            body.video_limit.as_ref(),
        )
        .await?,
    ))
}

#[utoipa::path(get, path = "/api/videos", tag = "videos", security(("bearer" = []), ("cookie" = [])),
    params(VideoFilter), summary = "Every video, newest first (SUPERADMIN)",
    responses((status = 200, body = Envelope<app::model::VideoPage>), Errors))]
async fn list_videos(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<VideoFilter>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::ok(
        videos::list_videos(&state, &caller, &filter).await?,
    ))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct FailBody {
    #[serde(default)]
    error: Option<String>,
}

#[utoipa::path(post, path = "/api/videos/{id}/fail", tag = "videos", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "The video's id")), request_body(content = Option<FailBody>, description = "Optional: the reason"),
    summary = "Mark a video that will never be called back as failed (SUPERADMIN)",
    responses((status = 200, body = Envelope<app::model::AiVideo>),
              (status = 404, description = "Video not found", body = ErrorBody),
              (status = 409, description = "The video is already final", body = ErrorBody), Errors))]
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

#[utoipa::path(post, path = "/api/videos/bulk-action", tag = "videos", security(("bearer" = []), ("cookie" = [])),
    request_body = app::model::dashboard::BulkActionRequest,
    summary = "Retry failed videos or mark stuck ones failed, in bounded batches (SUPERADMIN)",
    description = "Either `videoIds` (1 to 100) or `filter` (the list's filter: a retry takes its failed videos, mark-failed its stuck ones, 50 per call from `cursor`; call again with `nextCursor` until it is absent). Each video goes through the single action (`/retry` or `/fail`); a video it refuses is listed in `errors` with the single action's message. `dryRun` changes nothing and answers in `matched` how many videos the action would take.",
    responses((status = 200, body = Envelope<app::model::dashboard::BulkActionResult>),
              (status = 400, description = "Neither or both of videoIds and filter, a bad id or filter", body = ErrorBody), Errors))]
async fn bulk_video_action(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<app::model::dashboard::BulkActionRequest>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::ok(
        videos::bulk_action(&state, &caller, &req).await?,
    ))
}

#[utoipa::path(post, path = "/api/videos/{id}/retry", tag = "videos", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "The video's id")),
    summary = "Send a failed video back to RCK (SUPERADMIN; counts one video of quota)",
    responses((status = 202, body = Envelope<app::model::AiVideo>),
              (status = 404, description = "Video not found", body = ErrorBody),
              (status = 409, description = "Not failed, or no retries left", body = ErrorBody), Errors))]
async fn retry_video(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::accepted(
        videos::retry(&state, &caller, &id).await?,
    ))
}

#[utoipa::path(get, path = "/api/webhook-events/stats", tag = "webhook-events", security(("bearer" = []), ("cookie" = [])),
    params(StatsQuery), summary = "Totals, success rate, processing times and volume per bucket (SUPERADMIN)",
    responses((status = 200, body = Envelope<app::model::stats::WebhookStats>), Errors))]
async fn webhook_stats(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<StatsQuery>,
) -> Reply<impl Serialize> {
    Ok(ApiResponse::ok(
        stats::webhook_stats(&state, &caller, &query).await?,
    ))
}

#[utoipa::path(get, path = "/api/workspaces/{id}/notifications", tag = "notifications", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "The workspace's id")),
    summary = "The workspace's notification settings (SUPERADMIN, or an ADMIN of the workspace)",
    description = "`webhookSecret` (`whsec_` + base64) signs the generic webhook's deliveries; it is made the first time the settings are read.",
    responses((status = 200, body = Envelope<NotificationSettings>),
              (status = 404, description = "Workspace not found", body = ErrorBody), Errors))]
async fn get_notification_settings(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<NotificationSettings> {
    Ok(ApiResponse::ok(
        notifications::get_settings(&state, &caller, &id).await?,
    ))
}

#[utoipa::path(put, path = "/api/workspaces/{id}/notifications", tag = "notifications", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "The workspace's id")), request_body = NotificationSettings,
    summary = "Replace the notification settings (the secret is kept)",
    description = "A URL may be null (that channel is off). URLs must be https and resolve to public addresses only (else 400 naming the field), unless NOTIFY_ALLOW_PRIVATE_URLS=1.",
    responses((status = 200, body = Envelope<NotificationSettings>),
              (status = 404, description = "Workspace not found", body = ErrorBody), Errors))]
async fn put_notification_settings(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<NotificationSettings>,
) -> Reply<NotificationSettings> {
    Ok(ApiResponse::ok(
        notifications::put_settings(&state, &caller, &id, b).await?,
    ))
}

#[utoipa::path(post, path = "/api/workspaces/{id}/notifications/rotate-secret", tag = "notifications", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "The workspace's id")),
    summary = "A new webhook signing secret (the old one stops signing at once)",
    responses((status = 200, body = Envelope<NotificationSettings>),
              (status = 404, description = "Workspace not found", body = ErrorBody), Errors))]
async fn rotate_webhook_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<NotificationSettings> {
    Ok(ApiResponse::ok(
        notifications::rotate_secret(&state, &caller, &id).await?,
    ))
}

#[utoipa::path(post, path = "/api/workspaces/{id}/notifications/test", tag = "notifications", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "The workspace's id")),
    summary = "Send a test to each configured channel now; each channel's result",
    description = "The email (when SMTP_URL is set) goes to the caller.",
    responses((status = 200, body = Envelope<Vec<ChannelResult>>),
              (status = 404, description = "Workspace not found", body = ErrorBody), Errors))]
async fn test_notifications(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<Vec<ChannelResult>> {
    Ok(ApiResponse::ok(
        notifications::send_test(&state, &caller, &id).await?,
    ))
}

#[utoipa::path(get, path = "/api/notifications", tag = "notifications", security(("bearer" = []), ("cookie" = [])),
    params(NotificationFilter), summary = "The delivery log, newest first (SUPERADMIN)",
    responses((status = 200, body = Envelope<NotificationPage>), Errors))]
async fn list_notifications(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<NotificationFilter>,
) -> Reply<NotificationPage> {
    Ok(ApiResponse::ok(
        notifications::list(&state, &caller, &filter).await?,
    ))
}

#[utoipa::path(post, path = "/api/notifications/{id}/redeliver", tag = "notifications", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "The notification's id")),
    summary = "Send a notification again (SUPERADMIN): pending, due now",
    responses((status = 200, body = Envelope<Notification>),
              (status = 404, description = "Notification not found", body = ErrorBody), Errors))]
async fn redeliver_notification(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<Notification> {
    Ok(ApiResponse::ok(
        notifications::redeliver(&state, &caller, &id).await?,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportFormatQuery {
    /// `csv` (the default) or `ndjson`.
    format: Option<String>,
}

#[utoipa::path(get, path = "/api/webhook-events/export", tag = "webhook-events", security(("bearer" = []), ("cookie" = [])),
    params(ExportFormatQuery, EventFilter),
    summary = "The event log as CSV or NDJSON, with the list's filters (SUPERADMIN)",
    description = "Streamed newest first, page by page by keyset, so any size works. CSV columns: id, createdAt, endpoint, videoId, statusCode, outcome, payload (JSON text); a cell starting with =, +, - or @ is prefixed with '. NDJSON: one event per line in the API's shape.",
    responses((status = 200, description = "The export", content_type = "text/csv", body = String),
              (status = 400, description = "A bad filter, or format not csv/ndjson", body = ErrorBody), Errors))]
async fn export_events(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Query(f): axum::extract::Query<ExportFormatQuery>,
    ApiQuery(filter): ApiQuery<EventFilter>,
) -> AppResult<Response> {
    use futures::StreamExt;
    let format = events::ExportFormat::parse(f.format.as_deref())?;
    let stream = events::export(&state, &caller, &filter, format)?.map(|chunk| {
        chunk
            .map(axum::body::Bytes::from)
            .map_err(|e| std::io::Error::other(e.public_message()))
    });
    let name = format!(
        "attachment; filename=\"webhook-events-{}.{}\"",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        format.extension()
    );
    let mut resp = axum::body::Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&name) {
        h.insert(axum::http::header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}
