//! `workspaces`: the tenant and its video quota.

use super::{all, oid, paged, ts, SqliteStore};
use crate::model::{ObjectId, Timestamp, VideoStatus, Workspace};
use crate::ssr::store::{known_statuses, PageSpec, Paged, Quota, StoreResult, WorkspaceStore};
use async_trait::async_trait;
use rusqlite::{named_params, OptionalExtension, Row};

const INSERT: &str =
    "INSERT INTO workspaces (id, name, video_limit, videos_used, created_at, updated_at)
     VALUES (:id, :name, :video_limit, :videos_used, :created_at, :updated_at)";
const BY_ID: &str = "SELECT id, name, video_limit, videos_used, created_at, updated_at
     FROM workspaces WHERE id = :id";
/// A page of the workspaces by name (`workspaces_by_name`).
const PAGE: &str = "SELECT id, name, video_limit, videos_used, created_at, updated_at
     FROM workspaces ORDER BY name, id LIMIT :limit OFFSET :offset";
const COUNT: &str = "SELECT COUNT(*) FROM workspaces";
/// One conditional UPDATE: the check and the count cannot be separated by another request.
const RESERVE: &str = "UPDATE workspaces SET videos_used = videos_used + :n, updated_at = :now
     WHERE id = :id AND videos_used + :n <= video_limit";
const SET_LIMIT: &str =
    "UPDATE workspaces SET video_limit = :limit, updated_at = :now WHERE id = :id";
/// Walks the workspace's range of `aivideos_by_workspace` (no index of its own: one more index
/// to update on every status change costs the callback path more than this page is worth).
const STATUS_COUNTS: &str =
    "SELECT status, COUNT(*) FROM aivideos WHERE workspace_id = :id GROUP BY status";
const NEWEST: &str = "SELECT created_at FROM aivideos WHERE workspace_id = :id
     ORDER BY created_at DESC, id DESC LIMIT 1";
const USAGE: &str = "SELECT video_limit, videos_used FROM workspaces WHERE id = :id";
const RELEASE: &str =
    "UPDATE workspaces SET videos_used = MAX(videos_used - :n, 0), updated_at = :now
     WHERE id = :id";

fn ws_row(r: &Row) -> rusqlite::Result<Workspace> {
    Ok(Workspace {
        id: oid(r.get(0)?)?,
        name: r.get(1)?,
        video_limit: r.get(2)?,
        videos_used: r.get(3)?,
        created_at: ts(r.get(4)?)?,
        updated_at: ts(r.get(5)?)?,
    })
}

#[async_trait]
impl WorkspaceStore for SqliteStore {
    async fn insert_workspace(&self, ws: &Workspace) -> StoreResult<()> {
        let ws = ws.clone();
        self.write(move |c| {
            c.prepare_cached(INSERT)?.execute(named_params! {
                ":id": ws.id.to_string(),
                ":name": ws.name,
                ":video_limit": ws.video_limit,
                ":videos_used": ws.videos_used,
                ":created_at": ws.created_at.to_string(),
                ":updated_at": ws.updated_at.to_string(),
            })?;
            Ok(())
        })
        .await
    }

    async fn find_workspace(&self, id: ObjectId) -> StoreResult<Option<Workspace>> {
        self.find_by_id(BY_ID, id, ws_row).await
    }

    async fn list_workspaces(&self, page: PageSpec) -> StoreResult<Paged<Workspace>> {
        self.read(move |c| paged(c, COUNT, PAGE, &[], page, ws_row))
            .await
    }

    async fn reserve_quota(&self, ws: ObjectId, n: u32) -> StoreResult<Quota> {
        self.write(move |c| {
            let id = ws.to_string();
            let changed = c.prepare_cached(RESERVE)?.execute(
                named_params! { ":id": id, ":n": n, ":now": Timestamp::now().to_string() },
            )?;
            if changed == 1 {
                return Ok(Quota::Reserved);
            }
            let usage = c
                .prepare_cached(USAGE)?
                .query_row(named_params! { ":id": id }, |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            Ok(match usage {
                Some((limit, used)) => Quota::Exceeded { limit, used },
                None => Quota::NoWorkspace,
            })
        })
        .await
    }

    async fn release_quota(&self, ws: ObjectId, n: u32) -> StoreResult<()> {
        self.write(move |c| {
            c.prepare_cached(RELEASE)?.execute(named_params! {
                ":id": ws.to_string(),
                ":n": n,
                ":now": Timestamp::now().to_string(),
            })?;
            Ok(())
        })
        .await
    }

    async fn set_video_limit(&self, id: ObjectId, limit: u32) -> StoreResult<Option<Workspace>> {
        self.write(move |c| {
            c.prepare_cached(SET_LIMIT)?.execute(named_params! {
                ":id": id.to_string(),
                ":limit": limit,
                ":now": Timestamp::now().to_string(),
            })?;
            Ok(c.prepare_cached(BY_ID)?
                .query_row(named_params! { ":id": id.to_string() }, ws_row)
                .optional()?)
        })
        .await
    }

    async fn workspace_activity(
        &self,
        id: ObjectId,
    ) -> StoreResult<(Vec<(VideoStatus, u64)>, Option<Timestamp>)> {
        let (rows, newest) = self
            .read(move |c| {
                let id = id.to_string();
                let rows = all(
                    c,
                    STATUS_COUNTS,
                    &[(":id", &id as &dyn rusqlite::ToSql)],
                    |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, u64>(1)?)),
                )?;
                let newest = c
                    .prepare_cached(NEWEST)?
                    .query_row(named_params! { ":id": id }, |r| r.get::<_, String>(0))
                    .optional()?
                    .map(ts)
                    .transpose()?;
                Ok((rows, newest))
            })
            .await?;
        Ok((known_statuses(rows), newest))
    }
}
