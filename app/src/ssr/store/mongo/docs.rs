//! Documents as stored, both ways.
//!
//! Reading: one `#[derive(Deserialize)]` struct per collection, with the [`form`] helpers accepting
//! what other writers (Mongoose, the original Node service, a hand edit) may have stored: ids as
//! hex strings, numbers of any width, dates as ISO strings, `null` for absent. Unknown fields are
//! ignored. Writing: builders that put ObjectIds and BSON dates where Mongoose would, and updates
//! that `$set`/`$unset` field by field so fields other writers keep on a document survive.

use crate::model::plan::Delivery;
use crate::model::{
    AiVideo, ObjectId, Product, ProductVideo, Role, Timestamp, User, VideoMetadata, VideoStatus,
    WebhookEvent, Workspace,
};
use crate::ssr::store::{StoreError, StoreResult, UserRecord};
use mongodb::bson::{doc, oid::ObjectId as Oid, Bson, DateTime, Document};
use serde::Deserialize;

pub(super) fn oid(id: ObjectId) -> Oid {
    Oid::from_bytes(id.bytes())
}

/// The other way: a stored ObjectId as ours.
pub(super) fn from_oid(o: Oid) -> ObjectId {
    ObjectId::from_bytes(o.bytes())
}

pub(super) fn date(t: Timestamp) -> DateTime {
    DateTime::from_millis(t.millis())
}

/// A whole number stored as Int32, Int64 or a Double without a fraction.
pub(super) fn num(b: &Bson) -> Option<i64> {
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

/// `deserialize_with` helpers for the forms other writers store.
pub(super) mod form {
    use super::num;
    use crate::model::{ObjectId, Timestamp};
    use mongodb::bson::Bson;
    use serde::de::Error;
    use serde::{Deserialize, Deserializer};

    fn bson<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Bson>, D::Error> {
        Ok(Option::<Bson>::deserialize(d)?.filter(|b| !matches!(b, Bson::Null)))
    }

    fn to_oid<E: Error>(b: Bson) -> Result<ObjectId, E> {
        match b {
            Bson::ObjectId(o) => Ok(super::from_oid(o)),
            Bson::String(s) => s
                .parse()
                .map_err(|_| E::custom(format!("{s:?} is not an ObjectId"))),
            other => Err(E::custom(format!("expected an ObjectId, found {other}"))),
        }
    }

    fn to_date<E: Error>(b: Bson) -> Result<Timestamp, E> {
        match b {
            Bson::DateTime(d) => Ok(Timestamp::from_millis(d.timestamp_millis())),
            Bson::String(s) => {
                Timestamp::parse(&s).ok_or_else(|| E::custom(format!("{s:?} is not a date")))
            }
            other => Err(E::custom(format!("expected a date, found {other}"))),
        }
    }

    pub fn oid<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectId, D::Error> {
        to_oid(bson(d)?.ok_or_else(|| D::Error::custom("missing ObjectId"))?)
    }

    pub fn opt_oid<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ObjectId>, D::Error> {
        bson(d)?.map(to_oid).transpose()
    }

    pub fn date<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        to_date(bson(d)?.ok_or_else(|| D::Error::custom("missing date"))?)
    }

    pub fn opt_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        bson(d)?.map(to_date).transpose()
    }

    /// A count: any integer width; negative values read as 0.
    pub fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        bson(d)?
            .map(|b| {
                num(&b)
                    .map(|v| u32::try_from(v.max(0)).unwrap_or(u32::MAX))
                    .ok_or_else(|| D::Error::custom(format!("expected a whole number, found {b}")))
            })
            .transpose()
    }

    pub fn u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        opt_u32(d)?.ok_or_else(|| D::Error::custom("missing number"))
    }

    /// A string, or an ObjectId kept as its hex (a `videoId` some writers store as an ObjectId).
    pub fn opt_id_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        match bson(d)? {
            None => Ok(None),
            Some(Bson::String(s)) => Ok(Some(s)),
            Some(Bson::ObjectId(o)) => Ok(Some(o.to_hex())),
            Some(other) => Err(D::Error::custom(format!(
                "expected a string, found {other}"
            ))),
        }
    }

    /// An array, `null` or absent being empty.
    pub fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
    }

    /// The strings of an array, anything else in it skipped.
    pub fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(list::<D, Bson>(d)?
            .into_iter()
            .filter_map(|b| match b {
                Bson::String(s) => Some(s),
                _ => None,
            })
            .collect())
    }
}

/// Reads a document into its typed form, naming the record when it does not fit.
pub(super) fn read<T: serde::de::DeserializeOwned>(d: Document, what: &str) -> StoreResult<T> {
    let id = d.get("_id").map(|v| v.to_string()).unwrap_or_default();
    mongodb::bson::from_document(d).map_err(|e| StoreError::Corrupt(format!("{what} {id}: {e}")))
}

// --- reading

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UserDoc {
    #[serde(rename = "_id", deserialize_with = "form::oid")]
    id: ObjectId,
    email: String,
    role: Role,
    #[serde(default, deserialize_with = "form::opt_oid")]
    workspace_id: Option<ObjectId>,
    #[serde(deserialize_with = "form::date")]
    created_at: Timestamp,
    #[serde(deserialize_with = "form::date")]
    updated_at: Timestamp,
    /// Ours (argon2).
    #[serde(default)]
    password_hash: Option<String>,
    /// The original service's field (bcrypt), used until a login moves it to `passwordHash`.
    #[serde(default)]
    password: Option<String>,
}

impl From<UserDoc> for UserRecord {
    fn from(d: UserDoc) -> Self {
        UserRecord {
            user: User {
                id: d.id,
                email: d.email,
                role: d.role,
                workspace_id: d.workspace_id,
                created_at: d.created_at,
                updated_at: d.updated_at,
            },
            password_hash: d
                .password_hash
                .or(d.password.filter(|p| crate::ssr::auth::is_bcrypt(p)))
                .unwrap_or_default(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WorkspaceDoc {
    #[serde(rename = "_id", deserialize_with = "form::oid")]
    id: ObjectId,
    name: String,
    #[serde(deserialize_with = "form::u32")]
    video_limit: u32,
    #[serde(default, deserialize_with = "form::opt_u32")]
    videos_used: Option<u32>,
    #[serde(deserialize_with = "form::date")]
    created_at: Timestamp,
    #[serde(deserialize_with = "form::date")]
    updated_at: Timestamp,
}

impl From<WorkspaceDoc> for Workspace {
    fn from(d: WorkspaceDoc) -> Self {
        Workspace {
            id: d.id,
            name: d.name,
            video_limit: d.video_limit,
            videos_used: d.videos_used.unwrap_or(0),
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct EntryDoc {
    /// Entries written by the original service have none (see [`ProductEntriesDoc::entry_of`]).
    #[serde(default, deserialize_with = "form::opt_oid")]
    video_id: Option<ObjectId>,
    #[serde(default)]
    template_id: Option<String>,
    #[serde(default)]
    template_name: Option<String>,
    status: VideoStatus,
    #[serde(default)]
    video_url: Option<String>,
    #[serde(default)]
    youtube_url: Option<String>,
    #[serde(default)]
    img_s3_url: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(deserialize_with = "form::date")]
    created_at: Timestamp,
    #[serde(default, deserialize_with = "form::opt_date")]
    completed_at: Option<Timestamp>,
    #[serde(default, deserialize_with = "form::opt_date")]
    failed_at: Option<Timestamp>,
}

impl EntryDoc {
    fn into_entry(self) -> ProductVideo {
        ProductVideo {
            video_id: self.video_id,
            template_id: self.template_id.unwrap_or_default(),
            template_name: self.template_name.unwrap_or_default(),
            status: self.status,
            video_url: self.video_url,
            youtube_url: self.youtube_url,
            img_s3_url: self.img_s3_url,
            error: self.error,
            created_at: self.created_at,
            completed_at: self.completed_at,
            failed_at: self.failed_at,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ProductDoc {
    #[serde(rename = "_id", deserialize_with = "form::oid")]
    id: ObjectId,
    #[serde(deserialize_with = "form::oid")]
    workspace_id: ObjectId,
    #[serde(default, deserialize_with = "form::opt_oid")]
    user_id: Option<ObjectId>,
    title: String,
    #[serde(default)]
    sku: Option<String>,
    #[serde(default, deserialize_with = "form::strings")]
    img_urls: Vec<String>,
    #[serde(default, deserialize_with = "form::list")]
    videos: Vec<EntryDoc>,
    #[serde(deserialize_with = "form::date")]
    created_at: Timestamp,
    #[serde(deserialize_with = "form::date")]
    updated_at: Timestamp,
}

impl TryFrom<ProductDoc> for Product {
    type Error = StoreError;

    fn try_from(d: ProductDoc) -> StoreResult<Self> {
        let videos = d.videos.into_iter().map(EntryDoc::into_entry).collect();
        Ok(Product {
            id: d.id,
            workspace_id: d.workspace_id,
            user_id: d.user_id,
            title: d.title,
            sku: d.sku.unwrap_or_default(),
            img_urls: d.img_urls,
            videos,
            created_at: d.created_at,
            updated_at: d.updated_at,
        })
    }
}

/// Only the `videos` of a product (what a status change needs of it).
#[derive(Deserialize)]
pub(super) struct ProductEntriesDoc {
    #[serde(default, deserialize_with = "form::list")]
    pub videos: Vec<EntryDoc>,
}

/// Where a video's entry was found in its product's `videos`.
pub(super) enum EntryAt {
    /// It carries the video's id (ours, or one linked before).
    Linked(ProductVideo),
    /// At this position, without a `videoId` (written by the original service): the first entry of
    /// the video's template that is still `pending` or `generating`, as the original service finds it.
    Unlinked(usize, ProductVideo),
}

impl ProductEntriesDoc {
    /// The entry of `video` (with template `template_id`), if the product has one.
    pub fn entry_of(self, video: ObjectId, template_id: &str) -> Option<EntryAt> {
        let linked = self.videos.iter().position(|e| e.video_id == Some(video));
        if let Some(i) = linked {
            return Some(EntryAt::Linked(
                self.videos.into_iter().nth(i)?.into_entry(),
            ));
        }
        let i = self.videos.iter().position(|e| {
            e.video_id.is_none()
                && e.template_id.as_deref() == Some(template_id)
                && matches!(e.status, VideoStatus::Pending | VideoStatus::Generating)
        })?;
        let entry = self.videos.into_iter().nth(i)?.into_entry();
        Some(EntryAt::Unlinked(i, entry))
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct MetadataDoc {
    #[serde(default)]
    template_id: Option<String>,
    #[serde(default)]
    external_job_id: Option<String>,
    #[serde(default)]
    youtube_video_id: Option<String>,
    #[serde(default)]
    local_filename: Option<String>,
    #[serde(default)]
    video_url: Option<String>,
    #[serde(default)]
    img_s3_url: Option<String>,
    #[serde(default, deserialize_with = "form::opt_date")]
    queued_at: Option<Timestamp>,
    #[serde(default, deserialize_with = "form::opt_date")]
    completed_at: Option<Timestamp>,
    #[serde(default, deserialize_with = "form::opt_date")]
    failed_at: Option<Timestamp>,
    #[serde(default, rename = "aspect_ratio")]
    aspect_ratio: Option<String>,
    #[serde(default, deserialize_with = "form::opt_u32")]
    retry_count: Option<u32>,
}

impl From<MetadataDoc> for VideoMetadata {
    fn from(d: MetadataDoc) -> Self {
        VideoMetadata {
            template_id: d.template_id.unwrap_or_default(),
            external_job_id: d.external_job_id,
            youtube_video_id: d.youtube_video_id,
            local_filename: d.local_filename,
            video_url: d.video_url,
            img_s3_url: d.img_s3_url,
            queued_at: d.queued_at,
            completed_at: d.completed_at,
            failed_at: d.failed_at,
            aspect_ratio: d.aspect_ratio,
            retry_count: d.retry_count,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct VideoDoc {
    #[serde(rename = "_id", deserialize_with = "form::oid")]
    id: ObjectId,
    #[serde(deserialize_with = "form::oid")]
    user_id: ObjectId,
    #[serde(deserialize_with = "form::oid")]
    workspace_id: ObjectId,
    #[serde(deserialize_with = "form::oid")]
    product_id: ObjectId,
    #[serde(default)]
    template: Option<String>,
    status: VideoStatus,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    metadata: Option<MetadataDoc>,
    #[serde(deserialize_with = "form::date")]
    created_at: Timestamp,
    #[serde(deserialize_with = "form::date")]
    updated_at: Timestamp,
    #[serde(default)]
    callback_token_hash: Option<String>,
}

impl From<VideoDoc> for AiVideo {
    fn from(d: VideoDoc) -> Self {
        AiVideo {
            id: d.id,
            user_id: d.user_id,
            workspace_id: d.workspace_id,
            product_id: d.product_id,
            template: d.template.unwrap_or_default(),
            status: d.status,
            error: d.error,
            metadata: d.metadata.unwrap_or_default().into(),
            created_at: d.created_at,
            updated_at: d.updated_at,
            callback_token_hash: d.callback_token_hash,
        }
    }
}

/// The fields the processing-time statistics read.
#[derive(Deserialize)]
pub(super) struct FinishedDoc {
    pub status: VideoStatus,
    #[serde(default)]
    metadata: Option<MetadataDoc>,
}

impl FinishedDoc {
    pub fn metadata(self) -> VideoMetadata {
        self.metadata.unwrap_or_default().into()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct EventDoc {
    #[serde(rename = "_id", deserialize_with = "form::oid")]
    id: ObjectId,
    endpoint: String,
    #[serde(default)]
    payload: Option<Bson>,
    #[serde(default, deserialize_with = "form::opt_id_text")]
    video_id: Option<String>,
    #[serde(default, deserialize_with = "form::opt_u32")]
    status_code: Option<u32>,
    #[serde(default)]
    outcome: Option<String>,
    #[serde(deserialize_with = "form::date")]
    created_at: Timestamp,
}

impl From<EventDoc> for WebhookEvent {
    fn from(d: EventDoc) -> Self {
        WebhookEvent {
            id: d.id,
            endpoint: d.endpoint,
            payload: d.payload.as_ref().map(bson_to_json).unwrap_or_default(),
            video_id: d.video_id,
            status_code: d
                .status_code
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(0),
            outcome: d.outcome.unwrap_or_default(),
            created_at: d.created_at,
        }
    }
}

/// `webhookdeliveries`: a signed delivery's first answer, by `webhook-id`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeliveryDoc {
    #[serde(rename = "_id")]
    id: String,
    #[serde(default, deserialize_with = "form::opt_u32")]
    status_code: Option<u32>,
    #[serde(default)]
    outcome: Option<String>,
}

impl From<DeliveryDoc> for Delivery {
    fn from(d: DeliveryDoc) -> Self {
        Delivery {
            id: d.id,
            status_code: d
                .status_code
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(0),
            outcome: d.outcome.unwrap_or_default(),
        }
    }
}

// --- writing

pub(super) fn delivery_doc(d: &Delivery, at: Timestamp) -> Document {
    doc! {
        "_id": &d.id,
        "statusCode": d.status_code as i32,
        "outcome": &d.outcome,
        "createdAt": date(at),
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

pub(super) fn user_doc(rec: &UserRecord) -> Document {
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

pub(super) fn ws_doc(w: &Workspace) -> Document {
    doc! {
        "_id": oid(w.id),
        "name": &w.name,
        "videoLimit": int(w.video_limit),
        "videosUsed": int(w.videos_used),
        "createdAt": date(w.created_at),
        "updatedAt": date(w.updated_at),
    }
}

pub(super) fn entry_doc(e: &ProductVideo) -> Document {
    let mut d = Document::new();
    if let Some(v) = e.video_id {
        d.insert("videoId", oid(v));
    }
    d.extend(doc! {
        "templateId": &e.template_id,
        "templateName": &e.template_name,
        "status": e.status.as_str(),
    });
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

/// The `$set`/`$unset` that makes a stored entry (matched by the array filter `e`) equal `e`.
pub(super) fn entry_update(e: &ProductVideo, at: Timestamp) -> Document {
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

pub(super) fn product_doc(p: &Product) -> Document {
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

pub(super) fn video_doc(v: &AiVideo) -> Document {
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
    if let Some(h) = &v.callback_token_hash {
        d.insert("callbackTokenHash", h);
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

/// The `$set`/`$unset` that makes a stored video equal `v` (field by field, so fields other
/// writers keep on the document survive).
pub(super) fn video_update(v: &AiVideo) -> Document {
    let mut c = Changes::new();
    c.put("status".into(), v.status.as_str());
    c.opt("error".into(), v.error.clone());
    c.opt("callbackTokenHash".into(), v.callback_token_hash.clone());
    for (k, val) in metadata_fields(&v.metadata) {
        c.opt(format!("metadata.{k}"), val);
    }
    c.put("updatedAt".into(), date(v.updated_at));
    c.update()
}

pub(super) fn event_doc(e: &WebhookEvent) -> Document {
    let mut d = doc! {
        "_id": oid(e.id),
        "endpoint": &e.endpoint,
        "payload": payload_bson(&e.payload),
    };
    if let Some(v) = &e.video_id {
        d.insert("videoId", v);
    }
    d.insert("statusCode", e.status_code as i32);
    d.insert("outcome", &e.outcome);
    d.insert("createdAt", date(e.created_at));
    d
}

/// Deepest nesting of a payload stored as a document (MongoDB refuses documents nested past 100
/// levels, and the event document is one of them).
const MAX_PAYLOAD_DEPTH: usize = 90;

/// A call's payload as stored: the JSON as a document when MongoDB can hold it as one, else its
/// text (keys with NUL, nesting too deep), so that every call is recorded whatever its body. Names
/// only some servers refuse (`$`-prefixed, dotted) are tried as a document first; the adapter
/// falls back to the text when the server says no (`txn::payload_refused`).
pub(super) fn payload_bson(v: &serde_json::Value) -> Bson {
    if storable(v, 0) {
        json_to_bson(v)
    } else {
        Bson::String(v.to_string())
    }
}

fn storable(v: &serde_json::Value, depth: usize) -> bool {
    use serde_json::Value;
    match v {
        Value::Array(a) => depth < MAX_PAYLOAD_DEPTH && a.iter().all(|x| storable(x, depth + 1)),
        Value::Object(o) => {
            depth < MAX_PAYLOAD_DEPTH
                && o.iter()
                    .all(|(k, x)| !k.contains('\0') && storable(x, depth + 1))
        }
        _ => true,
    }
}

/// JSON as BSON, literally: keys are kept as they are (no extended-JSON interpretation of `$oid`
/// and friends), whole numbers become Int32/Int64 as the Node driver stores them.
pub(super) fn json_to_bson(v: &serde_json::Value) -> Bson {
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

pub(super) fn bson_to_json(b: &Bson) -> serde_json::Value {
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
