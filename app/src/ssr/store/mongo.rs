//! The scale-out store: MongoDB (a replica set, a sharded cluster or Atlas), chosen with `MONGODB_URI`.
//!
//! Collections and fields are the ones Mongoose would make for the spec's models (`aivideos`,
//! `products`, `webhookevents`, `users`, `workspaces`; camelCase fields; ObjectId `_id`s and
//! references; BSON dates), so the service can run on the platform's existing database. Documents are
//! converted by hand rather than through serde, so the model types keep their JSON shape for the API.
//!
//! Consistency: a webhook's writes (the AIVideo, its `Product.videos` entry, the WebhookEvent) commit
//! in one multi-document transaction, and every status change is an update conditional on the status
//! that was read, so the state rules of `model::webhook` hold however many instances run. The quota is
//! one conditional update. The live feed is read from a change stream, not from local writes, so every
//! instance sees what any instance wrote.

use super::{
    Applied, EventDraft, EventQuery, FinishedVideo, HourlyCount, Quota, Store, StoreError,
    StoreResult, UserRecord, VideoQuery, LIVE_BUFFER,
};
use crate::model::webhook::{
    apply_change, decide, requeue, response_line, Decision, VideoChange, MSG_VIDEO_NOT_FOUND,
};
use crate::model::{
    AiVideo, LiveChange, ObjectId, Product, ProductVideo, Role, Timestamp, User, VideoMetadata,
    VideoStatus, WebhookEvent, Workspace,
};
use async_trait::async_trait;
use mongodb::bson::{doc, oid::ObjectId as Oid, Bson, DateTime, Document};
use mongodb::change_stream::event::{ChangeStreamEvent, OperationType, ResumeToken};
use mongodb::change_stream::ChangeStream;
use mongodb::error::{
    Error as MongoError, ErrorKind, WriteFailure, TRANSIENT_TRANSACTION_ERROR,
    UNKNOWN_TRANSACTION_COMMIT_RESULT,
};
use mongodb::options::{ClientOptions, FullDocumentType, IndexOptions, WriteConcern};
use mongodb::{Client, ClientSession, Collection, Database, IndexModel};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{broadcast, watch};

const USERS: &str = "users";
const WORKSPACES: &str = "workspaces";
const PRODUCTS: &str = "products";
const VIDEOS: &str = "aivideos";
const EVENTS: &str = "webhookevents";

/// How many times a transaction is tried before giving up. Conflicts resolve quickly (each round
/// one writer wins and the others then see its result), so this is only hit when something is wrong.
const MAX_TXN_ATTEMPTS: u32 = 60;
/// How many times a commit whose outcome is unknown is sent again.
const MAX_COMMIT_RETRIES: u32 = 5;
/// MongoDB stores `expireAfterSeconds` as a 32-bit int; anything longer is "forever" in practice.
const MAX_TTL_SECS: u64 = i32::MAX as u64;

pub struct MongoStore {
    client: Client,
    users: Collection<Document>,
    workspaces: Collection<Document>,
    products: Collection<Document>,
    videos: Collection<Document>,
    events: Collection<Document>,
    live: broadcast::Sender<LiveChange>,
    /// Dropped with the store, which ends the change-stream task.
    _stop: watch::Sender<()>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Opens the store: connects, refuses a server that is not part of a replica set (transactions and
/// change streams need one), creates the indexes, applies the retention TTL index, and starts
/// following the change stream for the live feed.
pub async fn connect(uri: &str, db: &str, retention_days: Option<u64>) -> StoreResult<MongoStore> {
    let mut options = ClientOptions::parse(uri).await.map_err(|e| {
        backend(format!(
            "MONGODB_URI is not a valid MongoDB connection string: {e}"
        ))
    })?;
    let hosts = options
        .hosts
        .iter()
        .map(|h| h.to_string())
        .collect::<Vec<_>>()
        .join(",");
    if options.app_name.is_none() {
        options.app_name = Some("racky-videos".into());
    }
    let client = Client::with_options(options).map_err(backend)?;
    let database = client.database(db);
    let hello = database
        .run_command(doc! { "hello": 1 })
        .await
        .map_err(|e| backend(format!("cannot reach MongoDB at {hosts}: {e}")))?;
    let replica_set = hello.get_str("setName").is_ok();
    let mongos = hello.get_str("msg") == Ok("isdbgrid");
    if !replica_set && !mongos {
        return Err(backend(format!(
            "MongoDB at {hosts} is not a replica set: transactions and change streams need one \
             (a one-node replica set is enough: mongod --replSet rs0, then rs.initiate())"
        )));
    }
    let (stop, stop_rx) = watch::channel(());
    let store = MongoStore {
        users: database.collection(USERS),
        workspaces: database.collection(WORKSPACES),
        products: database.collection(PRODUCTS),
        videos: database.collection(VIDEOS),
        events: database.collection(EVENTS),
        client,
        live: broadcast::channel(LIVE_BUFFER).0,
        _stop: stop,
    };
    store.create_indexes().await?;
    apply_retention(&database, &store.events, retention_days).await?;
    // Opened before returning, so every change committed after `connect` reaches the feed.
    let stream = open_stream(&database, None).await.map_err(|e| {
        backend(format!(
            "cannot open a change stream on MongoDB at {hosts} (the live feed needs one): {e}"
        ))
    })?;
    tokio::spawn(follow(database, stream, store.live.clone(), stop_rx));
    Ok(store)
}

impl MongoStore {
    /// An index for every query the product makes.
    async fn create_indexes(&self) -> StoreResult<()> {
        let ix = |keys: Document| IndexModel::builder().keys(keys).build();
        let unique = IndexModel::builder()
            .keys(doc! { "email": 1 })
            .options(IndexOptions::builder().unique(true).build())
            .build();
        let plan: [(&Collection<Document>, Vec<IndexModel>); 4] = [
            (&self.users, vec![unique, ix(doc! { "role": 1 })]),
            (
                &self.products,
                vec![ix(doc! { "workspaceId": 1, "createdAt": -1, "_id": -1 })],
            ),
            (
                &self.videos,
                vec![
                    ix(doc! { "status": 1, "updatedAt": 1 }),
                    ix(doc! { "workspaceId": 1, "createdAt": -1, "_id": -1 }),
                    ix(doc! { "createdAt": -1, "_id": -1 }),
                ],
            ),
            (
                &self.events,
                vec![
                    ix(doc! { "createdAt": -1, "_id": -1 }),
                    ix(doc! { "endpoint": 1, "createdAt": -1, "_id": -1 }),
                    ix(doc! { "videoId": 1, "createdAt": -1, "_id": -1 }),
                ],
            ),
        ];
        for (coll, models) in plan {
            coll.create_indexes(models)
                .await
                .map_err(|e| backend(format!("creating the indexes of {}: {e}", coll.name())))?;
        }
        Ok(())
    }
}

// --- retention

/// Whether an index is on exactly `{createdAt: 1}` (the only shape a TTL index on it can have).
fn is_created_at_asc(keys: &Document) -> bool {
    keys.len() == 1 && keys.get("createdAt").and_then(num).is_some_and(|v| v == 1)
}

/// Makes the TTL index of `webhookevents` match the configuration: created, changed (collMod, or drop
/// and create when the server refuses) or dropped when retention is unset.
async fn apply_retention(
    db: &Database,
    events: &Collection<Document>,
    retention_days: Option<u64>,
) -> StoreResult<()> {
    let want = retention_days.map(|d| d.saturating_mul(86_400).min(MAX_TTL_SECS));
    let mut cursor = events.list_indexes().await.map_err(backend)?;
    let mut existing: Option<(String, Option<u64>)> = None;
    while cursor.advance().await.map_err(backend)? {
        let model = cursor.deserialize_current().map_err(backend)?;
        if is_created_at_asc(&model.keys) {
            let opts = model.options.unwrap_or_default();
            existing = Some((
                opts.name.unwrap_or_else(|| "createdAt_1".into()),
                opts.expire_after.map(|d| d.as_secs()),
            ));
        }
    }
    let create = |secs: u64| {
        IndexModel::builder()
            .keys(doc! { "createdAt": 1 })
            .options(
                IndexOptions::builder()
                    .expire_after(Duration::from_secs(secs))
                    .build(),
            )
            .build()
    };
    let fail = |e: MongoError| backend(format!("applying WEBHOOK_EVENT_RETENTION_DAYS: {e}"));
    match (existing, want) {
        (None, None) => {}
        (None, Some(secs)) => {
            events.create_index(create(secs)).await.map_err(fail)?;
            tracing::info!(target: "webhook_logger", expire_after_secs = secs, "created the webhook event TTL index");
        }
        (Some((name, Some(_))), None) => {
            events.drop_index(&name).await.map_err(fail)?;
            tracing::info!(target: "webhook_logger", index = %name, "retention unset: dropped the webhook event TTL index");
        }
        (Some((_, None)), None) => {}
        (Some((_, Some(have))), Some(secs)) if have == secs => {}
        (Some((name, _)), Some(secs)) => {
            let modified = db
                .run_command(doc! {
                    "collMod": EVENTS,
                    "index": { "name": &name, "expireAfterSeconds": secs as i64 },
                })
                .await;
            if let Err(e) = modified {
                tracing::info!(target: "webhook_logger", error = %e, "collMod refused; recreating the TTL index");
                events.drop_index(&name).await.map_err(fail)?;
                events.create_index(create(secs)).await.map_err(fail)?;
            }
            tracing::info!(target: "webhook_logger", expire_after_secs = secs, "changed the webhook event TTL index");
        }
    }
    Ok(())
}

// --- the live feed

async fn open_stream(
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
            video_from(doc).map(|video| LiveChange::Video { video })
        }
        (EVENTS, OperationType::Insert) => event_from(doc).map(|event| LiveChange::Event { event }),
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
async fn follow(
    db: Database,
    first: ChangeStream<ChangeStreamEvent<Document>>,
    live: broadcast::Sender<LiveChange>,
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
                    let _ = live.send(change);
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

// --- conversions: model <-> BSON

fn oid(id: ObjectId) -> Oid {
    Oid::from_bytes(id.bytes())
}

fn date(t: Timestamp) -> DateTime {
    DateTime::from_millis(t.millis())
}

fn num(b: &Bson) -> Option<i64> {
    match b {
        Bson::Int32(v) => Some(*v as i64),
        Bson::Int64(v) => Some(*v),
        Bson::Double(v) if v.fract() == 0.0 => Some(*v as i64),
        _ => None,
    }
}

fn int(v: u32) -> Bson {
    i32::try_from(v).map_or(Bson::Int64(v as i64), Bson::Int32)
}

/// Reads fields of a stored document, tolerating what other writers (Mongoose) may have stored: ids
/// as hex strings, numbers of any width, dates as ISO strings.
struct Fields<'a> {
    doc: &'a Document,
    what: &'static str,
}

impl<'a> Fields<'a> {
    fn of(doc: &'a Document, what: &'static str) -> Self {
        Self { doc, what }
    }

    fn bad(&self, key: &str, want: &str) -> StoreError {
        let id = self
            .doc
            .get("_id")
            .map(|v| v.to_string())
            .unwrap_or_default();
        StoreError::Backend(format!(
            "{} {id}: field {key} is missing or not {want}",
            self.what
        ))
    }

    /// The value, treating `null` as absent.
    fn get(&self, key: &str) -> Option<&'a Bson> {
        self.doc.get(key).filter(|b| !matches!(b, Bson::Null))
    }

    fn opt_oid(&self, key: &str) -> StoreResult<Option<ObjectId>> {
        match self.get(key) {
            None => Ok(None),
            Some(Bson::ObjectId(o)) => Ok(Some(ObjectId::from_bytes(o.bytes()))),
            Some(Bson::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| self.bad(key, "an ObjectId")),
            Some(_) => Err(self.bad(key, "an ObjectId")),
        }
    }

    fn oid(&self, key: &str) -> StoreResult<ObjectId> {
        self.opt_oid(key)?
            .ok_or_else(|| self.bad(key, "an ObjectId"))
    }

    fn opt_str(&self, key: &str) -> StoreResult<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Bson::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.bad(key, "a string")),
        }
    }

    fn str(&self, key: &str) -> StoreResult<String> {
        self.opt_str(key)?.ok_or_else(|| self.bad(key, "a string"))
    }

    fn opt_date(&self, key: &str) -> StoreResult<Option<Timestamp>> {
        match self.get(key) {
            None => Ok(None),
            Some(Bson::DateTime(d)) => Ok(Some(Timestamp::from_millis(d.timestamp_millis()))),
            Some(Bson::String(s)) => Timestamp::parse(s)
                .map(Some)
                .ok_or_else(|| self.bad(key, "a date")),
            Some(_) => Err(self.bad(key, "a date")),
        }
    }

    fn date(&self, key: &str) -> StoreResult<Timestamp> {
        self.opt_date(key)?.ok_or_else(|| self.bad(key, "a date"))
    }

    fn opt_u32(&self, key: &str) -> StoreResult<Option<u32>> {
        match self.get(key) {
            None => Ok(None),
            Some(b) => num(b)
                .and_then(|v| u32::try_from(v.max(0)).ok())
                .map(Some)
                .ok_or_else(|| self.bad(key, "a whole number")),
        }
    }

    fn u32(&self, key: &str) -> StoreResult<u32> {
        self.opt_u32(key)?
            .ok_or_else(|| self.bad(key, "a whole number"))
    }

    fn status(&self, key: &str) -> StoreResult<VideoStatus> {
        self.str(key)?
            .parse()
            .map_err(|_| self.bad(key, "a video status"))
    }
}

/// Sets `key` to `value`, or removes it when there is none (so a cleared field really goes).
struct Changes {
    set: Document,
    unset: Document,
}

impl Changes {
    fn new() -> Self {
        Self {
            set: Document::new(),
            unset: Document::new(),
        }
    }

    fn put(&mut self, key: String, value: impl Into<Bson>) {
        self.set.insert(key, value.into());
    }

    fn opt(&mut self, key: String, value: Option<impl Into<Bson>>) {
        match value {
            Some(v) => self.put(key, v),
            None => {
                self.unset.insert(key, "");
            }
        }
    }

    fn update(self) -> Document {
        let mut u = doc! { "$set": self.set };
        if !self.unset.is_empty() {
            u.insert("$unset", self.unset);
        }
        u
    }
}

fn user_doc(rec: &UserRecord) -> Document {
    let u = &rec.user;
    let mut d = doc! {
        "_id": oid(u.id),
        "email": u.email.to_ascii_lowercase(),
        "passwordHash": &rec.password_hash,
        "role": u.role.as_str(),
    };
    if let Some(w) = u.workspace_id {
        d.insert("workspaceId", oid(w));
    }
    d.insert("createdAt", date(u.created_at));
    d.insert("updatedAt", date(u.updated_at));
    d
}

fn user_from(d: &Document) -> StoreResult<UserRecord> {
    let f = Fields::of(d, "user");
    let role = f.str("role")?;
    Ok(UserRecord {
        user: User {
            id: f.oid("_id")?,
            email: f.str("email")?,
            role: role.parse().map_err(|_| f.bad("role", "a role"))?,
            workspace_id: f.opt_oid("workspaceId")?,
            created_at: f.date("createdAt")?,
            updated_at: f.date("updatedAt")?,
        },
        password_hash: f.str("passwordHash")?,
    })
}

fn ws_doc(w: &Workspace) -> Document {
    doc! {
        "_id": oid(w.id),
        "name": &w.name,
        "videoLimit": int(w.video_limit),
        "videosUsed": int(w.videos_used),
        "createdAt": date(w.created_at),
        "updatedAt": date(w.updated_at),
    }
}

fn ws_from(d: &Document) -> StoreResult<Workspace> {
    let f = Fields::of(d, "workspace");
    Ok(Workspace {
        id: f.oid("_id")?,
        name: f.str("name")?,
        video_limit: f.u32("videoLimit")?,
        videos_used: f.opt_u32("videosUsed")?.unwrap_or(0),
        created_at: f.date("createdAt")?,
        updated_at: f.date("updatedAt")?,
    })
}

fn entry_doc(e: &ProductVideo) -> Document {
    let mut d = doc! {
        "videoId": oid(e.video_id),
        "templateId": &e.template_id,
        "templateName": &e.template_name,
        "status": e.status.as_str(),
    };
    let opt = |d: &mut Document, k: &str, v: &Option<String>| {
        if let Some(v) = v {
            d.insert(k, v);
        }
    };
    opt(&mut d, "videoUrl", &e.video_url);
    opt(&mut d, "youtubeUrl", &e.youtube_url);
    opt(&mut d, "imgS3Url", &e.img_s3_url);
    opt(&mut d, "error", &e.error);
    d.insert("createdAt", date(e.created_at));
    if let Some(t) = e.completed_at {
        d.insert("completedAt", date(t));
    }
    if let Some(t) = e.failed_at {
        d.insert("failedAt", date(t));
    }
    d
}

fn entry_from(d: &Document) -> StoreResult<ProductVideo> {
    let f = Fields::of(d, "product video entry");
    Ok(ProductVideo {
        video_id: f.oid("videoId")?,
        template_id: f.opt_str("templateId")?.unwrap_or_default(),
        template_name: f.opt_str("templateName")?.unwrap_or_default(),
        status: f.status("status")?,
        video_url: f.opt_str("videoUrl")?,
        youtube_url: f.opt_str("youtubeUrl")?,
        img_s3_url: f.opt_str("imgS3Url")?,
        error: f.opt_str("error")?,
        created_at: f.date("createdAt")?,
        completed_at: f.opt_date("completedAt")?,
        failed_at: f.opt_date("failedAt")?,
    })
}

/// The `$set`/`$unset` that makes a stored entry (matched by the array filter `e`) equal `e`.
fn entry_update(e: &ProductVideo, at: Timestamp) -> Document {
    let mut c = Changes::new();
    let k = |f: &str| format!("videos.$[e].{f}");
    c.put(k("status"), e.status.as_str());
    c.opt(k("videoUrl"), e.video_url.clone());
    c.opt(k("youtubeUrl"), e.youtube_url.clone());
    c.opt(k("imgS3Url"), e.img_s3_url.clone());
    c.opt(k("error"), e.error.clone());
    c.opt(k("completedAt"), e.completed_at.map(date));
    c.opt(k("failedAt"), e.failed_at.map(date));
    c.put("updatedAt".into(), date(at));
    c.update()
}

fn product_doc(p: &Product) -> Document {
    let mut d = doc! { "_id": oid(p.id), "workspaceId": oid(p.workspace_id) };
    if let Some(u) = p.user_id {
        d.insert("userId", oid(u));
    }
    d.insert("title", &p.title);
    d.insert("sku", &p.sku);
    d.insert("imgUrls", p.img_urls.clone());
    d.insert("videos", p.videos.iter().map(entry_doc).collect::<Vec<_>>());
    d.insert("createdAt", date(p.created_at));
    d.insert("updatedAt", date(p.updated_at));
    d
}

fn product_from(d: &Document) -> StoreResult<Product> {
    let f = Fields::of(d, "product");
    let img_urls = match f.get("imgUrls") {
        None => Vec::new(),
        Some(Bson::Array(a)) => a
            .iter()
            .filter_map(|b| b.as_str().map(str::to_string))
            .collect(),
        Some(_) => return Err(f.bad("imgUrls", "an array of strings")),
    };
    let videos = match f.get("videos") {
        None => Vec::new(),
        Some(Bson::Array(a)) => a
            .iter()
            .filter_map(Bson::as_document)
            .map(entry_from)
            .collect::<StoreResult<_>>()?,
        Some(_) => return Err(f.bad("videos", "an array")),
    };
    Ok(Product {
        id: f.oid("_id")?,
        workspace_id: f.oid("workspaceId")?,
        user_id: f.opt_oid("userId")?,
        title: f.str("title")?,
        sku: f.opt_str("sku")?.unwrap_or_default(),
        img_urls,
        videos,
        created_at: f.date("createdAt")?,
        updated_at: f.date("updatedAt")?,
    })
}

/// The entry of `video` in a product document, if it has one.
fn entry_in(product: &Document, video: ObjectId) -> StoreResult<Option<ProductVideo>> {
    let Ok(entries) = product.get_array("videos") else {
        return Ok(None);
    };
    let want = oid(video);
    entries
        .iter()
        .filter_map(Bson::as_document)
        .find(|e| match e.get("videoId") {
            Some(Bson::ObjectId(o)) => *o == want,
            Some(Bson::String(s)) => s.parse::<ObjectId>() == Ok(video),
            _ => false,
        })
        .map(entry_from)
        .transpose()
}

/// `(key, value)` of every metadata field, `None` for the absent ones (in the model's order).
fn metadata_fields(m: &VideoMetadata) -> Vec<(&'static str, Option<Bson>)> {
    let s = |v: &Option<String>| v.clone().map(Bson::String);
    let t = |v: Option<Timestamp>| v.map(|t| Bson::DateTime(date(t)));
    vec![
        ("templateId", Some(Bson::String(m.template_id.clone()))),
        ("externalJobId", s(&m.external_job_id)),
        ("youtubeVideoId", s(&m.youtube_video_id)),
        ("localFilename", s(&m.local_filename)),
        ("videoUrl", s(&m.video_url)),
        ("imgS3Url", s(&m.img_s3_url)),
        ("queuedAt", t(m.queued_at)),
        ("completedAt", t(m.completed_at)),
        ("failedAt", t(m.failed_at)),
        ("aspect_ratio", s(&m.aspect_ratio)),
        ("retryCount", m.retry_count.map(int)),
    ]
}

fn metadata_from(d: &Document) -> StoreResult<VideoMetadata> {
    let f = Fields::of(d, "video metadata");
    Ok(VideoMetadata {
        template_id: f.opt_str("templateId")?.unwrap_or_default(),
        external_job_id: f.opt_str("externalJobId")?,
        youtube_video_id: f.opt_str("youtubeVideoId")?,
        local_filename: f.opt_str("localFilename")?,
        video_url: f.opt_str("videoUrl")?,
        img_s3_url: f.opt_str("imgS3Url")?,
        queued_at: f.opt_date("queuedAt")?,
        completed_at: f.opt_date("completedAt")?,
        failed_at: f.opt_date("failedAt")?,
        aspect_ratio: f.opt_str("aspect_ratio")?,
        retry_count: f.opt_u32("retryCount")?,
    })
}

fn video_doc(v: &AiVideo) -> Document {
    let mut d = doc! {
        "_id": oid(v.id),
        "userId": oid(v.user_id),
        "workspaceId": oid(v.workspace_id),
        "productId": oid(v.product_id),
        "template": &v.template,
        "status": v.status.as_str(),
    };
    if let Some(e) = &v.error {
        d.insert("error", e);
    }
    let mut m = Document::new();
    for (k, val) in metadata_fields(&v.metadata) {
        if let Some(val) = val {
            m.insert(k, val);
        }
    }
    d.insert("metadata", m);
    d.insert("createdAt", date(v.created_at));
    d.insert("updatedAt", date(v.updated_at));
    d
}

fn video_from(d: &Document) -> StoreResult<AiVideo> {
    let f = Fields::of(d, "video");
    let metadata = match f.get("metadata") {
        None => VideoMetadata::default(),
        Some(Bson::Document(m)) => metadata_from(m)?,
        Some(_) => return Err(f.bad("metadata", "a document")),
    };
    Ok(AiVideo {
        id: f.oid("_id")?,
        user_id: f.oid("userId")?,
        workspace_id: f.oid("workspaceId")?,
        product_id: f.oid("productId")?,
        template: f.opt_str("template")?.unwrap_or_default(),
        status: f.status("status")?,
        error: f.opt_str("error")?,
        metadata,
        created_at: f.date("createdAt")?,
        updated_at: f.date("updatedAt")?,
    })
}

/// The `$set`/`$unset` that makes a stored video equal `v` (field by field, so fields other
/// writers keep on the document survive).
fn video_update(v: &AiVideo) -> Document {
    let mut c = Changes::new();
    c.put("status".into(), v.status.as_str());
    c.opt("error".into(), v.error.clone());
    for (k, val) in metadata_fields(&v.metadata) {
        c.opt(format!("metadata.{k}"), val);
    }
    c.put("updatedAt".into(), date(v.updated_at));
    c.update()
}

/// JSON as BSON, literally: keys are kept as they are (no extended-JSON interpretation of `$oid`
/// and friends), whole numbers become Int32/Int64 as the Node driver stores them.
fn json_to_bson(v: &serde_json::Value) -> Bson {
    use serde_json::Value;
    match v {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i32::try_from(i).map_or(Bson::Int64(i), Bson::Int32),
            None => Bson::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Bson::String(s.clone()),
        Value::Array(a) => Bson::Array(a.iter().map(json_to_bson).collect()),
        Value::Object(o) => Bson::Document(
            o.iter()
                .map(|(k, v)| (k.clone(), json_to_bson(v)))
                .collect(),
        ),
    }
}

fn bson_to_json(b: &Bson) -> serde_json::Value {
    use serde_json::Value;
    match b {
        Bson::Null | Bson::Undefined => Value::Null,
        Bson::Boolean(v) => Value::Bool(*v),
        Bson::Int32(v) => Value::from(*v),
        Bson::Int64(v) => Value::from(*v),
        Bson::Double(v) if v.is_finite() => Value::from(*v),
        Bson::String(s) => Value::String(s.clone()),
        Bson::Array(a) => Value::Array(a.iter().map(bson_to_json).collect()),
        Bson::Document(d) => Value::Object(
            d.iter()
                .map(|(k, v)| (k.clone(), bson_to_json(v)))
                .collect(),
        ),
        Bson::ObjectId(o) => Value::String(o.to_hex()),
        Bson::DateTime(d) => {
            Value::String(Timestamp::from_millis(d.timestamp_millis()).to_string())
        }
        other => other.clone().into_relaxed_extjson(),
    }
}

fn event_doc(e: &WebhookEvent) -> Document {
    let mut d = doc! {
        "_id": oid(e.id),
        "endpoint": &e.endpoint,
        "payload": json_to_bson(&e.payload),
    };
    if let Some(v) = &e.video_id {
        d.insert("videoId", v);
    }
    d.insert("statusCode", e.status_code as i32);
    d.insert("outcome", &e.outcome);
    d.insert("createdAt", date(e.created_at));
    d
}

fn event_from(d: &Document) -> StoreResult<WebhookEvent> {
    let f = Fields::of(d, "webhook event");
    let video_id = match f.get("videoId") {
        None => None,
        Some(Bson::String(s)) => Some(s.clone()),
        Some(Bson::ObjectId(o)) => Some(o.to_hex()),
        Some(_) => return Err(f.bad("videoId", "a string")),
    };
    Ok(WebhookEvent {
        id: f.oid("_id")?,
        endpoint: f.str("endpoint")?,
        payload: f.get("payload").map(bson_to_json).unwrap_or_default(),
        video_id,
        status_code: f
            .opt_u32("statusCode")?
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(0),
        outcome: f.opt_str("outcome")?.unwrap_or_default(),
        created_at: f.date("createdAt")?,
    })
}

/// A duplicate key (E11000), however the driver reports it.
fn is_duplicate(e: &MongoError) -> bool {
    match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == 11000,
        ErrorKind::Command(c) => c.code == 11000,
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .is_some_and(|es| es.iter().any(|w| w.code == 11000)),
        _ => false,
    }
}

// --- transactions

/// What one attempt of a transaction concluded.
enum Step<T> {
    /// Commit and return this.
    Commit(T),
    /// Nothing to write: abort and return this.
    Abort(T),
    /// A conditional update found the document changed since it was read: run it all again.
    Retry,
}

/// An attempt's failure: the driver's (maybe transient), or a final one of ours.
enum TxnError {
    Mongo(MongoError),
    Store(StoreError),
}

impl From<MongoError> for TxnError {
    fn from(e: MongoError) -> Self {
        TxnError::Mongo(e)
    }
}

impl From<StoreError> for TxnError {
    fn from(e: StoreError) -> Self {
        TxnError::Store(e)
    }
}

type Attempt<T> = Result<Step<T>, TxnError>;

/// Sends the commit again while its outcome is unknown (it is idempotent).
async fn commit(s: &mut ClientSession) -> mongodb::error::Result<()> {
    let mut tries = 0;
    loop {
        match s.commit_transaction().await {
            Err(e)
                if e.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT)
                    && tries < MAX_COMMIT_RETRIES =>
            {
                tries += 1;
            }
            other => return other,
        }
    }
}

/// A short random pause, growing with the attempt, so conflicting writers spread out.
async fn pause(attempt: u32) {
    use rand::Rng;
    let cap = (5u64 << attempt.min(6)).min(250);
    let ms = rand::thread_rng().gen_range(1..=cap);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Runs `$attempt` (an expression using the session `$s` and evaluating to a future of
/// `Attempt<T>`) in a transaction with majority write concern, from the start again on transient
/// errors and write conflicts, bounded.
macro_rules! transaction {
    ($store:expr, |$s:ident| $attempt:expr) => {{
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut session = $store.client.start_session().await.map_err(backend)?;
            session
                .start_transaction()
                .write_concern(WriteConcern::majority())
                .await
                .map_err(backend)?;
            let outcome = {
                let $s: &mut ClientSession = &mut session;
                $attempt.await
            };
            let retry = attempt < MAX_TXN_ATTEMPTS;
            match outcome {
                Ok(Step::Commit(v)) => match commit(&mut session).await {
                    Ok(()) => break Ok(v),
                    Err(e) if retry && e.contains_label(TRANSIENT_TRANSACTION_ERROR) => {}
                    Err(e) => break Err(backend(e)),
                },
                Ok(Step::Abort(v)) => {
                    let _ = session.abort_transaction().await;
                    break Ok(v);
                }
                Ok(Step::Retry) if retry => {
                    let _ = session.abort_transaction().await;
                }
                Ok(Step::Retry) => {
                    let _ = session.abort_transaction().await;
                    break Err(backend(format!(
                        "gave up after {attempt} attempts: the record kept changing"
                    )));
                }
                Err(TxnError::Mongo(e))
                    if retry && e.contains_label(TRANSIENT_TRANSACTION_ERROR) =>
                {
                    let _ = session.abort_transaction().await;
                }
                Err(TxnError::Mongo(e)) => {
                    let _ = session.abort_transaction().await;
                    break Err(backend(e));
                }
                Err(TxnError::Store(e)) => {
                    let _ = session.abort_transaction().await;
                    break Err(e);
                }
            }
            pause(attempt).await;
        }
    }};
}

/// Reads a cursor to the end.
async fn collect<T, F>(mut cursor: mongodb::Cursor<Document>, f: F) -> StoreResult<Vec<T>>
where
    F: Fn(&Document) -> StoreResult<T>,
{
    let mut out = Vec::new();
    while cursor.advance().await.map_err(backend)? {
        let d: Document = cursor.deserialize_current().map_err(backend)?;
        out.push(f(&d)?);
    }
    Ok(out)
}

fn skip(page: u64, limit: u64) -> u64 {
    page.saturating_sub(1).saturating_mul(limit)
}

fn limit(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `a AND b AND ...` as one filter (`{}` when there is nothing to filter on).
fn all_of(clauses: Vec<Document>) -> Document {
    match clauses.len() {
        0 => Document::new(),
        1 => clauses.into_iter().next().unwrap_or_default(),
        _ => doc! { "$and": clauses },
    }
}

fn event_filter(q: &EventQuery) -> Document {
    let mut clauses = Vec::new();
    if let Some(e) = &q.endpoint {
        clauses.push(doc! { "endpoint": e });
    }
    if let Some(v) = &q.video_id {
        clauses.push(doc! { "videoId": v });
    }
    if let Some(t) = q.from {
        clauses.push(doc! { "createdAt": { "$gte": date(t) } });
    }
    if let Some(t) = q.to {
        clauses.push(doc! { "createdAt": { "$lt": date(t) } });
    }
    all_of(clauses)
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
    if let Some(t) = q.stuck_before {
        clauses.push(doc! {
            "status": VideoStatus::Generating.as_str(),
            "updatedAt": { "$lt": date(t) },
        });
    }
    all_of(clauses)
}

fn newest_first() -> Document {
    doc! { "createdAt": -1, "_id": -1 }
}

impl MongoStore {
    /// The video and its product entry as read in the transaction.
    async fn read_video(
        &self,
        s: &mut ClientSession,
        id: ObjectId,
    ) -> Result<Option<(AiVideo, Option<ProductVideo>)>, TxnError> {
        let Some(d) = self
            .videos
            .find_one(doc! { "_id": oid(id) })
            .session(&mut *s)
            .await?
        else {
            return Ok(None);
        };
        let video = video_from(&d)?;
        let product = self
            .products
            .find_one(doc! { "_id": oid(video.product_id) })
            .projection(doc! { "videos": 1 })
            .session(&mut *s)
            .await?;
        let entry = match product {
            Some(p) => entry_in(&p, id)?,
            None => None,
        };
        Ok(Some((video, entry)))
    }

    /// Writes a changed video only if its status is still `previous`, and its product entry.
    /// `false` when the video changed since it was read.
    async fn write_video(
        &self,
        s: &mut ClientSession,
        video: &AiVideo,
        previous: VideoStatus,
        entry: Option<&ProductVideo>,
        at: Timestamp,
    ) -> Result<bool, TxnError> {
        let r = self
            .videos
            .update_one(
                doc! { "_id": oid(video.id), "status": previous.as_str() },
                video_update(video),
            )
            .session(&mut *s)
            .await?;
        if r.matched_count == 0 {
            return Ok(false);
        }
        if let Some(e) = entry {
            self.products
                .update_one(doc! { "_id": oid(video.product_id) }, entry_update(e, at))
                .array_filters(vec![doc! { "e.videoId": oid(e.video_id) }])
                .session(&mut *s)
                .await?;
        }
        Ok(true)
    }

    async fn apply_attempt(
        &self,
        s: &mut ClientSession,
        video_id: ObjectId,
        change: &VideoChange,
        draft: &EventDraft,
    ) -> Attempt<Applied> {
        let at = draft.created_at;
        let Some((mut video, mut entry)) = self.read_video(s, video_id).await? else {
            let event = draft.clone().finish(404, MSG_VIDEO_NOT_FOUND);
            self.events
                .insert_one(event_doc(&event))
                .session(&mut *s)
                .await?;
            return Ok(Step::Commit(Applied::NotFound));
        };
        let previous = video.status;
        let kind = change.kind();
        let decision = decide(kind, previous);
        if decision == Decision::Apply {
            apply_change(&mut video, entry.as_mut(), change, at);
            if !self
                .write_video(s, &video, previous, entry.as_ref(), at)
                .await?
            {
                return Ok(Step::Retry);
            }
        }
        let (status, message) = response_line(kind, decision);
        let event = draft.clone().finish(status, message);
        self.events
            .insert_one(event_doc(&event))
            .session(&mut *s)
            .await?;
        Ok(Step::Commit(Applied::Done {
            decision,
            video,
            previous,
        }))
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
            let entry = ProductVideo {
                video_id: v.id,
                template_id: v.metadata.template_id.clone(),
                template_name: v.template.clone(),
                status: v.status,
                video_url: None,
                youtube_url: None,
                img_s3_url: None,
                error: None,
                created_at: v.created_at,
                completed_at: None,
                failed_at: None,
            };
            let r = self
                .products
                .update_one(
                    doc! { "_id": oid(v.product_id) },
                    doc! {
                        "$push": { "videos": entry_doc(&entry) },
                        "$set": { "updatedAt": date(v.created_at) },
                    },
                )
                .session(&mut *s)
                .await?;
            if r.matched_count == 0 {
                return Err(backend(format!(
                    "video {} is of product {}, which does not exist",
                    v.id, v.product_id
                ))
                .into());
            }
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

    async fn fail_unsent_attempt(
        &self,
        s: &mut ClientSession,
        ids: &[ObjectId],
        change: &VideoChange,
        at: Timestamp,
    ) -> Attempt<()> {
        for id in ids {
            let Some((mut v, mut entry)) = self.read_video(s, *id).await? else {
                continue;
            };
            let previous = v.status;
            if matches!(previous, VideoStatus::Completed | VideoStatus::Failed) {
                continue;
            }
            apply_change(&mut v, entry.as_mut(), change, at);
            if !self
                .write_video(s, &v, previous, entry.as_ref(), at)
                .await?
            {
                return Ok(Step::Retry);
            }
        }
        Ok(Step::Commit(()))
    }

    async fn requeue_attempt(
        &self,
        s: &mut ClientSession,
        id: ObjectId,
        at: Timestamp,
    ) -> Attempt<Option<AiVideo>> {
        let Some((mut v, mut entry)) = self.read_video(s, id).await? else {
            return Ok(Step::Abort(None));
        };
        if v.status != VideoStatus::Failed {
            return Ok(Step::Abort(None));
        }
        requeue(&mut v, entry.as_mut(), at);
        if !self
            .write_video(s, &v, VideoStatus::Failed, entry.as_ref(), at)
            .await?
        {
            return Ok(Step::Retry);
        }
        Ok(Step::Commit(Some(v)))
    }
}

#[async_trait]
impl Store for MongoStore {
    fn kind(&self) -> &'static str {
        "mongodb"
    }

    fn subscribe(&self) -> broadcast::Receiver<LiveChange> {
        self.live.subscribe()
    }

    async fn insert_user(&self, rec: &UserRecord) -> StoreResult<()> {
        match self.users.insert_one(user_doc(rec)).await {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate(&e) => {
                Err(StoreError::Conflict("Email already registered".into()))
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        self.users
            .find_one(doc! { "email": email.to_ascii_lowercase() })
            .await
            .map_err(backend)?
            .as_ref()
            .map(user_from)
            .transpose()
    }

    async fn find_user(&self, id: ObjectId) -> StoreResult<Option<User>> {
        Ok(self
            .users
            .find_one(doc! { "_id": oid(id) })
            .await
            .map_err(backend)?
            .as_ref()
            .map(user_from)
            .transpose()?
            .map(|r| r.user))
    }

    async fn count_users_with_role(&self, role: Role) -> StoreResult<u64> {
        self.users
            .count_documents(doc! { "role": role.as_str() })
            .await
            .map_err(backend)
    }

    async fn insert_workspace(&self, ws: &Workspace) -> StoreResult<()> {
        self.workspaces
            .insert_one(ws_doc(ws))
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn find_workspace(&self, id: ObjectId) -> StoreResult<Option<Workspace>> {
        self.workspaces
            .find_one(doc! { "_id": oid(id) })
            .await
            .map_err(backend)?
            .as_ref()
            .map(ws_from)
            .transpose()
    }

    async fn list_workspaces(&self) -> StoreResult<Vec<Workspace>> {
        let cursor = self
            .workspaces
            .find(doc! {})
            .sort(doc! { "name": 1, "_id": 1 })
            .await
            .map_err(backend)?;
        collect(cursor, ws_from).await
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
            .await
            .map_err(backend)?;
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
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn insert_product(&self, product: &Product) -> StoreResult<()> {
        self.products
            .insert_one(product_doc(product))
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn find_product(&self, id: ObjectId) -> StoreResult<Option<Product>> {
        Ok(self.find_products(&[id]).await?.into_iter().next())
    }

    async fn find_products(&self, ids: &[ObjectId]) -> StoreResult<Vec<Product>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<Oid> = ids.iter().map(|i| oid(*i)).collect();
        let cursor = self
            .products
            .find(doc! { "_id": { "$in": wanted } })
            .await
            .map_err(backend)?;
        let found: HashMap<ObjectId, Product> = collect(cursor, product_from)
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        // In the order asked for, as SQLite answers.
        Ok(ids.iter().filter_map(|i| found.get(i).cloned()).collect())
    }

    async fn list_products(
        &self,
        ws: ObjectId,
        page: u64,
        lim: u64,
    ) -> StoreResult<(Vec<Product>, u64)> {
        let filter = doc! { "workspaceId": oid(ws) };
        let total = self
            .products
            .count_documents(filter.clone())
            .await
            .map_err(backend)?;
        if lim == 0 {
            return Ok((Vec::new(), total));
        }
        let cursor = self
            .products
            .find(filter)
            .sort(newest_first())
            .skip(skip(page, lim))
            .limit(limit(lim))
            .await
            .map_err(backend)?;
        Ok((collect(cursor, product_from).await?, total))
    }

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

    async fn fail_unsent(&self, ids: &[ObjectId], reason: &str, at: Timestamp) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let change = VideoChange::Fail {
            error: reason.to_string(),
        };
        transaction!(self, |s| self.fail_unsent_attempt(s, ids, &change, at))
    }

    async fn find_video(&self, id: ObjectId) -> StoreResult<Option<AiVideo>> {
        self.videos
            .find_one(doc! { "_id": oid(id) })
            .await
            .map_err(backend)?
            .as_ref()
            .map(video_from)
            .transpose()
    }

    async fn apply_webhook(
        &self,
        video_id: ObjectId,
        change: &VideoChange,
        event: EventDraft,
    ) -> StoreResult<Applied> {
        transaction!(self, |s| self.apply_attempt(s, video_id, change, &event))
    }

    async fn insert_event(&self, event: &WebhookEvent) -> StoreResult<()> {
        self.events
            .insert_one(event_doc(event))
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn list_events(&self, q: &EventQuery) -> StoreResult<(Vec<WebhookEvent>, u64)> {
        let filter = event_filter(q);
        let total = self
            .events
            .count_documents(filter.clone())
            .await
            .map_err(backend)?;
        if q.limit == 0 {
            return Ok((Vec::new(), total));
        }
        let cursor = self
            .events
            .find(filter)
            .sort(newest_first())
            .skip(skip(q.page, q.limit))
            .limit(limit(q.limit))
            .await
            .map_err(backend)?;
        Ok((collect(cursor, event_from).await?, total))
    }

    async fn find_event(&self, id: ObjectId) -> StoreResult<Option<WebhookEvent>> {
        self.events
            .find_one(doc! { "_id": oid(id) })
            .await
            .map_err(backend)?
            .as_ref()
            .map(event_from)
            .transpose()
    }

    async fn purge_events_before(&self, before: Timestamp, max: u64) -> StoreResult<u64> {
        if max == 0 {
            return Ok(0);
        }
        // Oldest first and bounded, like SQLite; the TTL index does the regular work.
        let cursor = self
            .events
            .find(doc! { "createdAt": { "$lt": date(before) } })
            .sort(doc! { "createdAt": 1 })
            .limit(limit(max))
            .projection(doc! { "_id": 1 })
            .await
            .map_err(backend)?;
        let ids = collect(cursor, |d| {
            d.get("_id")
                .cloned()
                .ok_or_else(|| backend("webhook event without _id"))
        })
        .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let r = self
            .events
            .delete_many(doc! { "_id": { "$in": ids } })
            .await
            .map_err(backend)?;
        Ok(r.deleted_count)
    }

    async fn event_counts_by_hour(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<HourlyCount>> {
        // `$dateToString` rather than `$dateTrunc`, which needs MongoDB 5.
        let cursor = self
            .events
            .aggregate([
                doc! { "$match": { "createdAt": { "$gte": date(from), "$lt": date(to) } } },
                doc! { "$group": {
                    "_id": {
                        "hour": { "$dateToString": { "date": "$createdAt", "format": "%Y-%m-%dT%H" } },
                        "endpoint": "$endpoint",
                        "accepted": { "$and": [
                            { "$gte": ["$statusCode", 200] },
                            { "$lte": ["$statusCode", 299] },
                        ]},
                    },
                    "count": { "$sum": 1 },
                }},
                doc! { "$sort": { "_id.hour": 1, "_id.endpoint": 1, "_id.accepted": 1 } },
            ])
            .await
            .map_err(backend)?;
        collect(cursor, |d| {
            let key = d
                .get_document("_id")
                .map_err(|_| backend("hourly count without a key"))?;
            let hour = key.get_str("hour").unwrap_or_default();
            Ok(HourlyCount {
                hour: Timestamp::parse(&format!("{hour}:00:00.000Z"))
                    .ok_or_else(|| backend(format!("bad hour {hour:?}")))?,
                endpoint: key.get_str("endpoint").unwrap_or_default().to_string(),
                accepted: key.get_bool("accepted").unwrap_or(false),
                count: d.get("count").and_then(num).unwrap_or(0).max(0) as u64,
            })
        })
        .await
    }

    async fn list_videos(&self, q: &VideoQuery) -> StoreResult<(Vec<AiVideo>, u64)> {
        let filter = video_filter(q);
        let total = self
            .videos
            .count_documents(filter.clone())
            .await
            .map_err(backend)?;
        if q.limit == 0 {
            return Ok((Vec::new(), total));
        }
        let cursor = self
            .videos
            .find(filter)
            .sort(newest_first())
            .skip(skip(q.page, q.limit))
            .limit(limit(q.limit))
            .await
            .map_err(backend)?;
        Ok((collect(cursor, video_from).await?, total))
    }

    async fn video_status_counts(&self) -> StoreResult<Vec<(VideoStatus, u64)>> {
        let cursor = self
            .videos
            .aggregate([doc! { "$group": { "_id": "$status", "count": { "$sum": 1 } } }])
            .await
            .map_err(backend)?;
        let rows = collect(cursor, |d| {
            Ok((
                d.get_str("_id").ok().and_then(|s| s.parse().ok()),
                d.get("count").and_then(num).unwrap_or(0).max(0) as u64,
            ))
        })
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(s, n)| s.map(|s| (s, n)))
            .collect())
    }

    async fn finished_videos(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<FinishedVideo>> {
        let cursor = self
            .videos
            .find(doc! {
                "status": { "$in": [VideoStatus::Completed.as_str(), VideoStatus::Failed.as_str()] },
                "updatedAt": { "$gte": date(from), "$lt": date(to) },
            })
            .projection(doc! { "status": 1, "metadata": 1 })
            .await
            .map_err(backend)?;
        let rows = collect(cursor, |d| {
            let f = Fields::of(d, "video");
            let status = f.status("status")?;
            let m = match d.get_document("metadata") {
                Ok(m) => metadata_from(m)?,
                Err(_) => VideoMetadata::default(),
            };
            let finished_at = match status {
                VideoStatus::Completed => m.completed_at,
                _ => m.failed_at,
            };
            Ok(m.queued_at
                .zip(finished_at)
                .map(|(queued_at, finished_at)| FinishedVideo {
                    status,
                    queued_at,
                    finished_at,
                }))
        })
        .await?;
        Ok(rows.into_iter().flatten().collect())
    }

    async fn requeue_video(&self, id: ObjectId, at: Timestamp) -> StoreResult<Option<AiVideo>> {
        transaction!(self, |s| self.requeue_attempt(s, id, at))
    }
}
