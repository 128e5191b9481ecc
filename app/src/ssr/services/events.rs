//! The webhook event log: `GET /api/webhook-events` and `GET /api/webhook-events/:id`.

use super::{parse_id, parse_paging};
use crate::model::filters::EventFilter;
use crate::model::webhook::WebhookKind;
use crate::model::{EventPage, Pagination, Timestamp, WebhookEvent};
use crate::ssr::auth::Caller;
use crate::ssr::error::{AppError, AppResult};
use crate::ssr::state::AppState;
use crate::ssr::store::EventQuery;

/// Accepts the endpoint as stored (`/videos/success`) or as called (`/internal/videos/success`).
fn parse_endpoint(raw: &str) -> AppResult<String> {
    let path = raw.strip_prefix("/internal").unwrap_or(raw);
    [WebhookKind::Success, WebhookKind::Failure]
        .iter()
        .map(|k| k.endpoint())
        .find(|e| *e == path)
        .map(str::to_string)
        .ok_or_else(|| {
            AppError::BadRequest("endpoint must be /videos/success or /videos/failure".into())
        })
}

fn parse_time(raw: &str, name: &str) -> AppResult<Timestamp> {
    Timestamp::parse(raw).ok_or_else(|| {
        AppError::BadRequest(format!(
            "{name} must be an RFC 3339 date-time, e.g. 2025-01-17T10:30:00Z"
        ))
    })
}

pub fn parse_query(p: &EventFilter) -> AppResult<EventQuery> {
    let (page, limit) = parse_paging(p.page.as_deref(), p.limit.as_deref())?;
    let nonempty = |o: &Option<String>| o.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
    let endpoint = nonempty(&p.endpoint)
        .map(|e| parse_endpoint(&e))
        .transpose()?;
    let video_id = nonempty(&p.video_id);
    if video_id.as_ref().is_some_and(|v| v.len() > 200) {
        return Err(AppError::BadRequest("videoId is too long".into()));
    }
    let from = nonempty(&p.from)
        .map(|f| parse_time(&f, "from"))
        .transpose()?;
    let to = nonempty(&p.to).map(|t| parse_time(&t, "to")).transpose()?;
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(AppError::BadRequest("from must not be after to".into()));
        }
    }
    Ok(EventQuery {
        page,
        limit,
        after: super::parse_cursor(p.cursor.as_deref())?,
        endpoint,
        video_id,
        from,
        to,
    })
}

#[tracing::instrument(skip(state), fields(user = %caller.user_id))]
pub async fn list_events(
    state: &AppState,
    caller: &Caller,
    p: &EventFilter,
) -> AppResult<EventPage> {
    caller.require_superadmin()?;
    let q = parse_query(p)?;
    let total_key = format!(
        "events|{:?}|{:?}|{:?}|{:?}",
        q.endpoint, q.video_id, q.from, q.to
    );
    let (events, total) = tokio::try_join!(
        state.store.page_events(&q),
        state.totals.get(total_key, state.store.count_events(&q))
    )?;
    let next = super::next_cursor(&events, q.limit, |e| (e.created_at, e.id));
    Ok(EventPage {
        events,
        pagination: Pagination::new(q.page, q.limit, total).with_next_cursor(next),
    })
}

#[tracing::instrument(skip(state, caller), fields(user = %caller.user_id))]
pub async fn get_event(state: &AppState, caller: &Caller, id: &str) -> AppResult<WebhookEvent> {
    caller.require_superadmin()?;
    let id = parse_id(id, "event id")?;
    state
        .store
        .find_event(id)
        .await?
        .ok_or_else(|| AppError::NotFound("Webhook event not found".into()))
}

/// The events of an export page: enough to keep a store busy efficiently, small in memory.
const EXPORT_PAGE: u64 = 500;

/// Every event matching `q` (its page, limit and cursor are ignored), newest first, page by page
/// by keyset, so memory stays flat at any size. `sink` takes each page; returns how many events.
/// The command line's `server events export` uses it.
pub async fn export_events(
    state: &AppState,
    q: &EventQuery,
    mut sink: impl FnMut(&[WebhookEvent]) -> std::io::Result<()>,
) -> AppResult<u64> {
    let mut q = EventQuery {
        page: 1,
        limit: EXPORT_PAGE,
        after: None,
        ..q.clone()
    };
    let mut n = 0;
    loop {
        let events = state.store.page_events(&q).await?;
        sink(&events).map_err(|e| AppError::internal("writing the export", e))?;
        n += events.len() as u64;
        match events.last() {
            Some(last) if events.len() as u64 == EXPORT_PAGE => {
                q.after = Some(crate::model::Keyset {
                    at: last.created_at,
                    id: last.id,
                });
            }
            _ => return Ok(n),
        }
    }
}
