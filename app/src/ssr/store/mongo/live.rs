//! The live feed on MongoDB: one change stream over `aivideos` and `webhookevents`, so every
//! instance sees what any instance wrote, resumed from its token when it fails.

use super::docs::{read, EventDoc, VideoDoc};
use super::{EVENTS, VIDEOS};
use crate::model::LiveChange;
use mongodb::bson::{doc, Document};
use mongodb::change_stream::event::{ChangeStreamEvent, OperationType, ResumeToken};
use mongodb::change_stream::ChangeStream;
use mongodb::error::{Error as MongoError, ErrorKind};
use mongodb::options::FullDocumentType;
use mongodb::Database;
use std::time::Duration;
use tokio::sync::{broadcast, watch};

pub(super) async fn open_stream(
    db: &Database,
    resume: Option<ResumeToken>,
) -> mongodb::error::Result<ChangeStream<ChangeStreamEvent<Document>>> {
    // One stream for both collections keeps the commit order (a video's change before its event).
    db.watch()
        .pipeline([doc! { "$match": {
            "ns.coll": { "$in": [VIDEOS, EVENTS] },
            "operationType": { "$in": ["insert", "update", "replace"] },
        }}])
        .full_document(FullDocumentType::UpdateLookup)
        .resume_after(resume)
        .await
}

/// The change stream's events as live changes.
fn to_live(ev: &ChangeStreamEvent<Document>) -> Option<LiveChange> {
    let coll = ev.ns.as_ref()?.coll.as_deref()?;
    let doc = ev.full_document.as_ref()?;
    let parsed = match (coll, &ev.operation_type) {
        (VIDEOS, OperationType::Insert | OperationType::Update | OperationType::Replace) => {
            read::<VideoDoc>(doc.clone(), "video").map(|d| LiveChange::video(&d.into()))
        }
        (EVENTS, OperationType::Insert) => {
            read::<EventDoc>(doc.clone(), "webhook event").map(|d| LiveChange::event(&d.into()))
        }
        _ => return None,
    };
    parsed
        .map_err(|e| tracing::warn!(target: "video_service", error = %e, "skipping a change the live feed cannot read"))
        .ok()
}

/// Whether a change stream cannot be resumed from its token (the history is gone).
fn history_lost(e: &MongoError) -> bool {
    matches!(&*e.kind, ErrorKind::Command(c) if matches!(c.code, 260 | 280 | 286))
}

/// Feeds the broadcast from the change stream until the store is dropped. When the stream fails it
/// is reopened from the last resume token, so a dropped connection loses no change.
pub(super) async fn follow(
    db: Database,
    first: ChangeStream<ChangeStreamEvent<Document>>,
    live: broadcast::Sender<crate::ssr::store::Live>,
    mut stop: watch::Receiver<()>,
) {
    let mut stream = Some(first);
    let mut token: Option<ResumeToken> = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(current) = stream.as_mut() else {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(10));
            match open_stream(&db, token.clone()).await {
                Ok(s) => {
                    tracing::info!(target: "video_service", "change stream reopened");
                    stream = Some(s);
                }
                Err(e) if token.is_some() && history_lost(&e) => {
                    tracing::error!(target: "video_service", error = %e, "change stream cannot resume (its history is gone); starting afresh: changes in between were missed by this instance's live feed");
                    token = None;
                }
                Err(e) => {
                    tracing::error!(target: "video_service", error = %e, "cannot reopen the change stream; retrying");
                }
            }
            continue;
        };
        let next = tokio::select! {
            _ = stop.changed() => return,
            next = current.next_if_any() => next,
        };
        match next {
            Ok(Some(ev)) => {
                token = current.resume_token().or(token);
                backoff = Duration::from_millis(100);
                if let Some(change) = to_live(&ev) {
                    let _ = live.send(crate::ssr::store::LiveMessage::new(change));
                }
            }
            Ok(None) => {
                token = current.resume_token().or(token);
                if !current.is_alive() {
                    tracing::warn!(target: "video_service", "change stream closed; reopening");
                    stream = None;
                }
            }
            Err(e) => {
                tracing::error!(target: "video_service", error = %e, "change stream failed; resuming from the last token");
                stream = None;
            }
        }
    }
}
