//! `workspaces`: the tenant and its video quota.

use super::docs::{date, oid, read, ws_doc, WorkspaceDoc};
use super::{collect, MongoStore};
use crate::model::{ObjectId, Timestamp, VideoStatus, Workspace};
use crate::ssr::store::{PageSpec, Paged, Quota, StoreResult, WorkspaceStore};
use async_trait::async_trait;
use mongodb::bson::{doc, Document};
use mongodb::options::{Hint, ReturnDocument};

fn workspace(d: Document) -> StoreResult<Workspace> {
    Ok(read::<WorkspaceDoc>(d, "workspace")?.into())
}

#[async_trait]
impl WorkspaceStore for MongoStore {
    async fn insert_workspace(&self, ws: &Workspace) -> StoreResult<()> {
        self.workspaces.insert_one(ws_doc(ws)).await?;
        Ok(())
    }

    async fn find_workspace(&self, id: ObjectId) -> StoreResult<Option<Workspace>> {
        self.workspaces
            .find_one(doc! { "_id": oid(id) })
            .await?
            .map(workspace)
            .transpose()
    }

    async fn list_workspaces(&self, page: PageSpec) -> StoreResult<Paged<Workspace>> {
        let total = self
            .workspaces
            .count_documents(doc! {})
            .hint(Hint::Keys(doc! { "_id": 1 }))
            .await?;
        if page.limit == 0 {
            return Ok(Paged {
                items: Vec::new(),
                total,
            });
        }
        // A range of the `{name: 1, _id: 1}` index, not a sort of every workspace.
        let cursor = self
            .workspaces
            .find(doc! {})
            .hint(Hint::Keys(doc! { "name": 1, "_id": 1 }))
            .sort(doc! { "name": 1, "_id": 1 })
            .skip(page.offset())
            .limit(i64::try_from(page.limit).unwrap_or(i64::MAX))
            .await?;
        Ok(Paged {
            items: collect(cursor, workspace).await?,
            total,
        })
    }

    async fn reserve_quota(&self, ws: ObjectId, n: u32) -> StoreResult<Quota> {
        // One conditional update: the check and the count cannot be separated by another request.
        let reserved = self
            .workspaces
            .find_one_and_update(
                doc! {
                    "_id": oid(ws),
                    "$expr": { "$lte": [{ "$add": ["$videosUsed", n as i64] }, "$videoLimit"] },
                },
                doc! {
                    "$inc": { "videosUsed": n as i64 },
                    "$set": { "updatedAt": date(Timestamp::now()) },
                },
            )
            .projection(doc! { "_id": 1 })
            .hint(mongodb::options::Hint::Keys(doc! { "_id": 1 }))
            .await?;
        if reserved.is_some() {
            return Ok(Quota::Reserved);
        }
        Ok(match self.find_workspace(ws).await? {
            Some(w) => Quota::Exceeded {
                limit: w.video_limit,
                used: w.videos_used,
            },
            None => Quota::NoWorkspace,
        })
    }

    async fn release_quota(&self, ws: ObjectId, n: u32) -> StoreResult<()> {
        // A pipeline update, so "never below zero" is part of the same atomic write.
        self.workspaces
            .update_one(
                doc! { "_id": oid(ws) },
                vec![doc! { "$set": {
                    "videosUsed": { "$max": [{ "$subtract": ["$videosUsed", n as i64] }, 0] },
                    "updatedAt": date(Timestamp::now()),
                }}],
            )
            .await?;
        Ok(())
    }

    async fn set_video_limit(&self, id: ObjectId, limit: u32) -> StoreResult<Option<Workspace>> {
        self.workspaces
            .find_one_and_update(
                doc! { "_id": oid(id) },
                doc! { "$set": { "videoLimit": limit as i64, "updatedAt": date(Timestamp::now()) } },
            )
            .return_document(ReturnDocument::After)
            .hint(Hint::Keys(doc! { "_id": 1 }))
            .await?
            .map(workspace)
            .transpose()
    }

    async fn workspace_activity(
        &self,
        id: ObjectId,
    ) -> StoreResult<(Vec<(VideoStatus, u64)>, Option<Timestamp>)> {
        let mut counts = Vec::new();
        for status in VideoStatus::ALL {
            let n = self
                .videos
                .count_documents(doc! { "workspaceId": oid(id), "status": status.as_str() })
                .hint(Hint::Keys(doc! { "workspaceId": 1, "status": 1 }))
                .await?;
            counts.push((status, n));
        }
        let newest = self
            .videos
            .find_one(doc! { "workspaceId": oid(id) })
            .sort(doc! { "createdAt": -1, "_id": -1 })
            .projection(doc! { "createdAt": 1 })
            .hint(Hint::Keys(
                doc! { "workspaceId": 1, "createdAt": -1, "_id": -1 },
            ))
            .await?
            .and_then(|d| d.get_datetime("createdAt").ok().copied())
            .map(|t| Timestamp::from_millis(t.timestamp_millis()));
        Ok((counts, newest))
    }
}
