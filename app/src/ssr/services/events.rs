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
pub fn parse_endpoint(raw: &str) -> AppResult<String> {
    WebhookKind::from_endpoint(raw)
        .map(|k| k.endpoint().to_string())
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

/// Every event matching `q` (its page, limit and cursor are ignored), newest first, as a stream of
/// pages read by keyset: memory stays flat at any size, and a slow reader slows the reading. The
/// REST export and the command line's `server events export` both read it.
pub fn event_pages(
    store: std::sync::Arc<dyn crate::ssr::store::Store>,
    q: &EventQuery,
) -> impl futures::Stream<Item = AppResult<Vec<WebhookEvent>>> + Send + 'static {
    let first = EventQuery {
        page: 1,
        limit: EXPORT_PAGE,
        after: None,
        ..q.clone()
    };
    futures::stream::unfold(Some(first), move |next| {
        let store = store.clone();
        async move {
            let q = next?;
            match store.page_events(&q).await {
                Err(e) => Some((Err(e.into()), None)),
                Ok(events) => {
                    let more = match events.last() {
                        Some(last) if events.len() as u64 == EXPORT_PAGE => Some(EventQuery {
                            after: Some(crate::model::Keyset {
                                at: last.created_at,
                                id: last.id,
                            }),
                            ..q
                        }),
                        _ => None,
                    };
                    if events.is_empty() {
                        None
                    } else {
                        Some((Ok(events), more))
                    }
                }
            }
        }
    })
}

/// The formats of `GET /api/webhook-events/export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Ndjson,
}

impl ExportFormat {
    pub fn parse(raw: Option<&str>) -> AppResult<Self> {
        match raw.unwrap_or("csv") {
            "csv" => Ok(Self::Csv),
            "ndjson" => Ok(Self::Ndjson),
            _ => Err(AppError::BadRequest("format must be csv or ndjson".into())),
        }
    }

    pub fn content_type(&self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Ndjson => "application/x-ndjson",
        }
    }

    pub fn extension(&self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Ndjson => "ndjson",
        }
    }

    /// The header line, if the format has one.
    pub fn header(&self) -> &'static str {
        match self {
            Self::Csv => "id,createdAt,endpoint,videoId,statusCode,outcome,payload\r\n",
            Self::Ndjson => "",
        }
    }

    /// One page of events in this format.
    pub fn render(&self, events: &[WebhookEvent]) -> String {
        let mut out = String::new();
        for e in events {
            match self {
                Self::Ndjson => {
                    out.push_str(&serde_json::to_string(e).unwrap_or_default());
                    out.push('\n');
                }
                Self::Csv => {
                    let fields = [
                        e.id.to_string(),
                        e.created_at.to_string(),
                        e.endpoint.clone(),
                        e.video_id.clone().unwrap_or_default(),
                        e.status_code.to_string(),
                        e.outcome.clone(),
                        e.payload.to_string(),
                    ];
                    let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                    out.push_str(&row.join(","));
                    out.push_str("\r\n");
                }
            }
        }
        out
    }
}

/// A CSV field (RFC 4180): quoted when it holds a comma, quote or line break; a leading `=`, `+`,
/// `-` or `@` is prefixed with `'` so a spreadsheet never runs it as a formula.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// `GET /api/webhook-events/export` (SUPERADMIN): the filter checked first (a bad one is a 400
/// before anything is streamed), then the events, newest first, as text chunks of one page each.
pub fn export(
    state: &AppState,
    caller: &Caller,
    p: &EventFilter,
    format: ExportFormat,
) -> AppResult<impl futures::Stream<Item = AppResult<String>> + Send + 'static> {
    use futures::StreamExt;
    caller.require_superadmin()?;
    let q = parse_query(p)?;
    let header = futures::stream::iter(
        (!format.header().is_empty()).then(|| Ok(format.header().to_string())),
    );
    let body =
        event_pages(state.store.clone(), &q).map(move |page| page.map(|e| format.render(&e)));
    Ok(header.chain(body))
}
