//! What the dashboard shows beyond the lists: who is signed in, and the overview.

use crate::model::dashboard::{
    EventsView, FailureReason, FailureReport, Me, Overview, OverviewRange, StatusCounts,
    WorkspaceRate,
};
use crate::model::filters::{EventFilter, StatsQuery};
use crate::model::{ObjectId, Timestamp};
use crate::ssr::auth::Caller;
use crate::ssr::error::AppResult;
use crate::ssr::services::stats::webhook_stats;
use crate::ssr::state::AppState;
use std::collections::HashMap;

/// The signed-in user (any role: the page says what they may do).
#[tracing::instrument(skip(state), fields(user = %caller.user_id))]
pub async fn me(state: &AppState, caller: &Caller) -> AppResult<Me> {
    let user = super::users::me(state, caller).await?;
    Ok(Me {
        email: user.email,
        role: user.role.to_string(),
    })
}

/// Counts per status now, and the webhook statistics of the range (superadmin).
#[tracing::instrument(skip(state), fields(user = %caller.user_id))]
pub async fn overview(
    state: &AppState,
    caller: &Caller,
    range: OverviewRange,
) -> AppResult<Overview> {
    caller.require_superadmin()?;
    let now = Timestamp::now();
    let query = StatsQuery {
        from: Some(Timestamp::from_millis(now.millis() - range.hours() * 3_600_000).to_string()),
        to: Some(now.to_string()),
        bucket: Some(range.bucket().as_str().into()),
    };
    let from = Timestamp::from_millis(now.millis() - range.hours() * 3_600_000);
    let (stats, counts, failures) = tokio::try_join!(
        webhook_stats(state, caller, &query),
        async { Ok(state.store.video_status_counts().await?) },
        failure_report(state, from, now),
    )?;
    Ok(Overview {
        counts: StatusCounts::from_pairs(&counts),
        stats,
        failures,
        range: range.key().to_string(),
    })
}

/// Why videos failed in the hours from `from`'s to `to`'s, and each workspace's success rate (from
/// the finished rollup).
pub async fn failure_report(
    state: &AppState,
    from: Timestamp,
    to: Timestamp,
) -> AppResult<FailureReport> {
    let top = FailureReport::TOP as u64;
    let ((reasons, failed), per_ws) = tokio::try_join!(
        state.store.failure_reasons(from, to, top),
        state.store.finished_by_workspace(from, to, top)
    )?;
    let ids: Vec<_> = per_ws.iter().map(|(ws, ..)| *ws).collect();
    let names: HashMap<_, _> = state
        .store
        .find_workspaces(&ids)
        .await?
        .into_iter()
        .map(|w| (w.id, w.name))
        .collect();
    Ok(FailureReport {
        failed,
        reasons: reasons
            .into_iter()
            .map(|(reason, count)| FailureReason {
                reason,
                count,
                share: count as f64 / failed.max(1) as f64,
            })
            .collect(),
        workspaces: per_ws
            .into_iter()
            .map(|(ws, completed, failed)| WorkspaceRate {
                workspace_id: ws,
                workspace_name: names.get(&ws).cloned(),
                completed,
                failed,
                success_rate: (completed + failed > 0)
                    .then(|| completed as f64 / (completed + failed) as f64),
            })
            .collect(),
    })
}

/// The event log's page for the dashboard: the page, and a row (with names) for each video it
/// names.
#[tracing::instrument(skip(state), fields(user = %caller.user_id))]
pub async fn events_view(
    state: &AppState,
    caller: &Caller,
    filter: &EventFilter,
) -> AppResult<EventsView> {
    let page = super::events::list_events(state, caller, filter).await?;
    let mut ids: Vec<ObjectId> = page
        .events
        .iter()
        .filter_map(|e| e.video_id.as_deref()?.parse().ok())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let videos = state.store.find_videos(&ids).await?;
    let videos = super::videos::named_rows(state, videos, Timestamp::from_millis(0)).await?;
    Ok(EventsView { page, videos })
}
