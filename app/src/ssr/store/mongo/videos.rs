//! `aivideos` and the status changes that keep each video's `Product.videos` entry in step.
//!
//! Status changes run in a transaction: load ([`MongoStore::load`]), plan (`model::plan`), write
//! conditionally on the status planned from ([`MongoStore::write_video`]); a write that finds the
//! video changed makes the transaction run again.

use super::docs::{
    entry_doc, entry_update, oid, read, video_doc, video_update, EntryAt, ProductEntriesDoc,
    VideoDoc,
};
use super::txn::{Attempt, Step, TxnError};
use super::{all_of, count_of, page_of, MongoStore};
use crate::model::plan::{plan_fail, plan_requeue, plan_timeout, Loaded, VideoWrite};
use crate::model::{AiVideo, ObjectId, ProductVideo, Timestamp, VideoStatus};
use crate::ssr::store::{CounterDelta, StoreError, StoreResult, VideoQuery, VideoStore};
use async_trait::async_trait;
use mongodb::bson::{doc, Document};
use mongodb::ClientSession;

/// Only the id of a document.
#[derive(serde::Deserialize)]
struct IdDoc {
    #[serde(rename = "_id", deserialize_with = "super::docs::form::oid")]
    id: ObjectId,
}

pub(super) fn video(d: Document) -> StoreResult<AiVideo> {
    Ok(read::<VideoDoc>(d, "video")?.into())
}

/// The index that serves a query of the list (named as a hint).
fn video_index(q: &VideoQuery) -> Document {
    match (
        q.workspace_id,
        q.status.is_some() || q.stuck_before.is_some(),
        q.video_id,
    ) {
        (Some(_), _, _) => doc! { "workspaceId": 1, "createdAt": -1, "_id": -1 },
        (None, _, Some(_)) => doc! { "_id": 1 },
        (None, true, None) => doc! { "status": 1, "createdAt": -1, "_id": -1 },
        (None, false, None) => doc! { "createdAt": -1, "_id": -1 },
    }
}

/// A text as a regular expression that matches only itself.
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if "\\^$.|?*+()[]{}/-".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn video_filter(q: &VideoQuery) -> Document {
    let mut clauses = Vec::new();
    if let Some(s) = q.status {
        clauses.push(doc! { "status": s.as_str() });
    }
    if let Some(w) = q.workspace_id {
        clauses.push(doc! { "workspaceId": oid(w) });
    }
    if let Some(v) = q.video_id {
        clauses.push(doc! { "_id": oid(v) });
    }
    if let Some(p) = &q.error_prefix {
        clauses.push(doc! { "error": { "$regex": format!("^{}", regex_escape(p)) } });
    }
    if let Some(t) = q.stuck_before {
        clauses.push(doc! {
            "status": VideoStatus::Generating.as_str(),
            "updatedAt": { "$lt": super::docs::date(t) },
        });
    }
    all_of(clauses)
}

impl MongoStore {
    /// The video and its product entry, read in the transaction that will write them.
    pub(super) async fn load(
        &self,
        s: &mut ClientSession,
        id: ObjectId,
    ) -> Result<Option<Loaded>, TxnError> {
        let Some(d) = self
            .videos
            .find_one(doc! { "_id": oid(id) })
            .session(&mut *s)
            .await?
        else {
            return Ok(None);
        };
        let video = video(d)?;
        let product = self
            .products
            .find_one(doc! { "_id": oid(video.product_id) })
            .projection(doc! { "videos": 1 })
            .session(&mut *s)
            .await?;
        let found = match product {
            Some(p) => {
                read::<ProductEntriesDoc>(p, "product")?.entry_of(id, &video.metadata.template_id)
            }
            None => None,
        };
        let entry = match found {
            None => None,
            Some(EntryAt::Linked(e)) => Some(e),
            // An entry of the original service: link it to this video (in this transaction), so
            // the write below and every later change find it by id, as they find ours.
            Some(EntryAt::Unlinked(i, mut e)) => {
                self.products
                    .update_one(
                        doc! { "_id": oid(video.product_id), format!("videos.{i}.videoId"): { "$exists": false } },
                        doc! { "$set": { format!("videos.{i}.videoId"): oid(id) } },
                    )
                    .hint(mongodb::options::Hint::Keys(doc! { "_id": 1 }))
                    .session(&mut *s)
                    .await?;
                e.video_id = Some(id);
                Some(e)
            }
        };
        Ok(Some(Loaded { video, entry }))
    }

    /// Writes a planned change: the video only if its status is still the one planned from, then its
    /// product entry. `false` when the video changed since it was read.
    pub(super) async fn write_video(
        &self,
        s: &mut ClientSession,
        w: &VideoWrite,
    ) -> Result<bool, TxnError> {
        let r = self
            .videos
            .update_one(
                doc! { "_id": oid(w.video.id), "status": w.expected.as_str() },
                video_update(&w.video),
            )
            .hint(mongodb::options::Hint::Keys(doc! { "_id": 1 }))
            .session(&mut *s)
            .await?;
        if r.matched_count == 0 {
            return Ok(false);
        }
        if !self.count_videos(s, &CounterDelta::of_write(w)).await? {
            return Ok(false);
        }
        if let Some(n) = crate::model::notify::Notification::fanout_of(&w.video, w.expected, w.at) {
            self.notifications
                .insert_one(super::notifications::notification_doc(&n))
                .session(&mut *s)
                .await?;
        }
        if let Some(e) = &w.entry {
            self.products
                .update_one(
                    doc! { "_id": oid(w.video.product_id) },
                    entry_update(e, w.at),
                )
                .array_filters(vec![doc! { "e.videoId": oid(w.video.id) }])
                .session(&mut *s)
                .await?;
        }
        Ok(true)
    }

    async fn insert_videos_attempt(
        &self,
        s: &mut ClientSession,
        videos: &[AiVideo],
    ) -> Attempt<()> {
        self.videos
            .insert_many(videos.iter().map(video_doc))
            .session(&mut *s)
            .await?;
        for v in videos {
            let r = self
                .products
                .update_one(
                    doc! { "_id": oid(v.product_id) },
                    doc! {
                        "$push": { "videos": entry_doc(&ProductVideo::pending_for(v)) },
                        "$set": { "updatedAt": super::docs::date(v.created_at) },
                    },
                )
                .session(&mut *s)
                .await?;
            if r.matched_count == 0 {
                return Err(StoreError::Corrupt(format!(
                    "video {} is of product {}, which does not exist",
                    v.id, v.product_id
                ))
                .into());
            }
        }
        if !self
            .count_videos(s, &CounterDelta::of_insert(videos))
            .await?
        {
            return Ok(Step::Retry);
        }
        Ok(Step::Commit(()))
    }

    async fn set_job_ids_attempt(
        &self,
        s: &mut ClientSession,
        jobs: &[(ObjectId, String)],
    ) -> Attempt<()> {
        for (id, job) in jobs {
            self.videos
                .update_one(
                    doc! { "_id": oid(*id) },
                    doc! { "$set": { "metadata.externalJobId": job } },
                )
                .session(&mut *s)
                .await?;
        }
        Ok(Step::Commit(()))
    }

    /// Loads each video, plans with `plan`, writes what it planned, conditionally (fail and
    /// time-out share this); a video changed meanwhile runs the transaction again.
    async fn write_each_attempt(
        &self,
        s: &mut ClientSession,
        ids: &[ObjectId],
        plan: impl Fn(Loaded) -> Option<VideoWrite>,
    ) -> Attempt<Vec<AiVideo>> {
        let mut changed = Vec::new();
        for id in ids {
            let Some(w) = self.load(s, *id).await?.and_then(&plan) else {
                continue;
            };
            if !self.write_video(s, &w).await? {
                return Ok(Step::Retry);
            }
            changed.push(w.video);
        }
        Ok(Step::Commit(changed))
    }

    async fn requeue_attempt(
        &self,
        s: &mut ClientSession,
        id: ObjectId,
        callback_token_hash: Option<String>,
        at: Timestamp,
    ) -> Attempt<Option<AiVideo>> {
        let Some(w) = self
            .load(s, id)
            .await?
            .and_then(|l| plan_requeue(l, callback_token_hash.clone(), at))
        else {
            return Ok(Step::Abort(None));
        };
        if !self.write_video(s, &w).await? {
            return Ok(Step::Retry);
        }
        Ok(Step::Commit(Some(w.video)))
    }
}

#[async_trait]
impl VideoStore for MongoStore {
    async fn insert_videos(&self, videos: &[AiVideo]) -> StoreResult<()> {
        if videos.is_empty() {
            return Ok(());
        }
        transaction!(self, |s| self.insert_videos_attempt(s, videos))
    }

    async fn set_job_ids(&self, jobs: &[(ObjectId, String)]) -> StoreResult<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        transaction!(self, |s| self.set_job_ids_attempt(s, jobs))
    }

    async fn fail_videos(
        &self,
        ids: &[ObjectId],
        reason: &str,
        at: Timestamp,
    ) -> StoreResult<Vec<AiVideo>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        transaction!(self, |s| self
            .write_each_attempt(s, ids, |l| plan_fail(l, reason, at)))
    }

    async fn requeue_video(
        &self,
        id: ObjectId,
        callback_token_hash: Option<String>,
        at: Timestamp,
    ) -> StoreResult<Option<AiVideo>> {
        transaction!(self, |s| self.requeue_attempt(
            s,
            id,
            callback_token_hash.clone(),
            at
        ))
    }

    async fn fail_timed_out(
        &self,
        before: Timestamp,
        at: Timestamp,
        max: u64,
    ) -> StoreResult<Vec<AiVideo>> {
        let cursor = self
            .videos
            .find(doc! {
                "status": { "$in": [VideoStatus::Pending.as_str(), VideoStatus::Generating.as_str()] },
                "updatedAt": { "$lt": super::docs::date(before) },
            })
            .hint(mongodb::options::Hint::Keys(
                doc! { "status": 1, "updatedAt": 1 },
            ))
            .sort(doc! { "updatedAt": 1 })
            .limit(i64::try_from(max).unwrap_or(i64::MAX))
            .projection(doc! { "_id": 1 })
            .await?;
        let ids = super::collect(cursor, |d| Ok(read::<IdDoc>(d, "video")?.id)).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        transaction!(self, |s| self.write_each_attempt(
            s,
            &ids,
            |l| plan_timeout(l, before, at)
        ))
    }

    async fn find_video(&self, id: ObjectId) -> StoreResult<Option<AiVideo>> {
        self.videos
            .find_one(doc! { "_id": oid(id) })
            .await?
            .map(video)
            .transpose()
    }

    async fn retryable_failed(
        &self,
        since: Timestamp,
        before: Timestamp,
        max_retries: u32,
        max: u64,
    ) -> StoreResult<Vec<AiVideo>> {
        let cursor = self
            .videos
            .find(doc! {
                "status": VideoStatus::Failed.as_str(),
                "updatedAt": { "$gte": super::docs::date(since), "$lt": super::docs::date(before) },
                "$or": [
                    { "metadata.retryCount": { "$exists": false } },
                    { "metadata.retryCount": null },
                    { "metadata.retryCount": { "$lt": max_retries as i64 } },
                ],
            })
            .hint(mongodb::options::Hint::Keys(
                doc! { "status": 1, "updatedAt": 1 },
            ))
            .sort(doc! { "updatedAt": 1 })
            .limit(i64::try_from(max).unwrap_or(i64::MAX))
            .await?;
        super::collect(cursor, video).await
    }

    async fn page_videos(&self, q: &VideoQuery) -> StoreResult<Vec<AiVideo>> {
        page_of(
            &self.videos,
            video_filter(q),
            video_index(q),
            q.page_spec(),
            q.after,
            video,
        )
        .await
    }

    async fn count_videos(&self, q: &VideoQuery) -> StoreResult<u64> {
        count_of(&self.videos, video_filter(q), video_index(q)).await
    }
}
