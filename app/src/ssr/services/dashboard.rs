//! What the dashboard shows beyond the lists: who is signed in, and the overview.

use crate::model::dashboard::{Me, Overview, OverviewRange, StatusCounts};
use crate::model::filters::StatsQuery;
use crate::model::Timestamp;
use crate::ssr::auth::Caller;
use crate::ssr::error::AppResult;
use crate::ssr::services::stats::webhook_stats;
use crate::ssr::state::AppState;

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
    let stats = webhook_stats(state, caller, &query).await?;
    let counts = state.store.video_status_counts().await?;
    Ok(Overview {
        counts: StatusCounts::from_pairs(&counts),
        stats,
        range: range.key().to_string(),
    })
}
