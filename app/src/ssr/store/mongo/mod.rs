//! The scale-out store: MongoDB (a replica set, a sharded cluster or Atlas), chosen with `MONGODB_URI`.
//!
//! Collections and fields are the ones Mongoose would make for the spec's models (`aivideos`,
//! `products`, `webhookevents`, `users`, `workspaces`; camelCase fields; ObjectId `_id`s and
//! references; BSON dates), so the service can run on the platform's existing database. `docs.rs`
//! maps documents both ways; the model types keep their JSON shape for the API.
//!
//! Consistency: a webhook's writes (the AIVideo, its `Product.videos` entry, the WebhookEvent) commit
//! in one multi-document transaction (`txn.rs`), and every status change is an update conditional on
//! the status it was planned from, so the state rules of `model::webhook` hold however many
//! instances run. The quota is one conditional update. The live feed is read from a change stream
//! (`live.rs`), not from local writes, so every instance sees what any instance wrote.
//!
//! One file per aggregate, as in `sqlite/`: `users`, `workspaces`, `products`, `videos`, `events`,
//! `reports`.

#[macro_use]
mod txn;
mod docs;
mod events;
mod idempotency;
mod indexes;
mod live;
mod notifications;
mod products;
mod reports;
mod rollups;
mod sessions;
mod users;
mod videos;
mod workspaces;

use super::{LiveFeed, PageSpec, Paged, Store, StoreError, StoreResult, LIVE_BUFFER};
use mongodb::bson::{doc, Document};
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection};
use tokio::sync::{broadcast, watch};

const USERS: &str = "users";
const WORKSPACES: &str = "workspaces";
const PRODUCTS: &str = "products";
const VIDEOS: &str = "aivideos";
const EVENTS: &str = "webhookevents";
const DELIVERIES: &str = "webhookdeliveries";
const SESSIONS: &str = "revokedsessions";
const IDEMPOTENCY: &str = "idempotencykeys";

/// How long an operation waits for a usable server (a primary, for writes).
const SELECTION_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1500);

/// MongoDB stores `expireAfterSeconds` as a 32-bit int; anything longer is "forever" in practice.
const MAX_TTL_SECS: u64 = i32::MAX as u64;

pub struct MongoStore {
    client: Client,
    database: mongodb::Database,
    users: Collection<Document>,
    workspaces: Collection<Document>,
    products: Collection<Document>,
    videos: Collection<Document>,
    events: Collection<Document>,
    deliveries: Collection<Document>,
    sessions: Collection<Document>,
    idempotency: Collection<Document>,
    notifications: Collection<Document>,
    live: broadcast::Sender<crate::ssr::store::Live>,
    /// Dropped with the store, which ends the change-stream task.
    _stop: watch::Sender<()>,
}

/// Opens the store: connects, refuses a server that is not part of a replica set (transactions and
/// change streams need one), creates the indexes, applies the retention TTL index, and starts
/// following the change stream for the live feed.
pub async fn connect(uri: &str, db: &str, retention_days: Option<u64>) -> StoreResult<MongoStore> {
    let options = ClientOptions::parse(uri).await.map_err(|e| {
        StoreError::setup("MONGODB_URI is not a valid MongoDB connection string", e)
    })?;
    connect_with(options, db, retention_days).await
}

/// [`connect`] with client options already parsed (a test may add a command monitor, for one).
pub async fn connect_with(
    mut options: ClientOptions,
    db: &str,
    retention_days: Option<u64>,
) -> StoreResult<MongoStore> {
    let hosts = options
        .hosts
        .iter()
        .map(|h| h.to_string())
        .collect::<Vec<_>>()
        .join(",");
    if options.app_name.is_none() {
        options.app_name = Some("racky-videos".into());
    }
    // An outage is answered 503 within the store deadline, not after the driver's 30 s default
    // (a `serverSelectionTimeoutMS`/`connectTimeoutMS` in the URI is kept).
    options
        .server_selection_timeout
        .get_or_insert(SELECTION_TIMEOUT);
    options.connect_timeout.get_or_insert(SELECTION_TIMEOUT);
    // Acknowledged means durable: every write (transactions included, see `txn.rs`) waits for a
    // majority of the replica set to have it in its journal.
    options.write_concern = Some(durable());
    // Every command's time, as `racky_store_operation_duration_seconds{store="mongodb",operation}`
    // (the command's name: a small, fixed set). A test's own monitor takes precedence.
    if options.command_event_handler.is_none() {
        options.command_event_handler = Some(mongodb::event::EventHandler::callback(
            |ev: mongodb::event::command::CommandEvent| {
                use mongodb::event::command::CommandEvent;
                let (name, took) = match ev {
                    CommandEvent::Succeeded(e) => (e.command_name, e.duration),
                    CommandEvent::Failed(e) => (e.command_name, e.duration),
                    _ => return,
                };
                metrics::histogram!("racky_store_operation_duration_seconds", "store" => "mongodb", "operation" => name)
                    .record(took.as_secs_f64());
            },
        ));
    }
    let client = Client::with_options(options)?;
    let database = client.database(db);
    let hello = database
        .run_command(doc! { "hello": 1 })
        .await
        .map_err(|e| StoreError::setup(format!("cannot reach MongoDB at {hosts}"), e))?;
    let replica_set = hello.get_str("setName").is_ok();
    let mongos = hello.get_str("msg") == Ok("isdbgrid");
    if !replica_set && !mongos {
        return Err(StoreError::setup(
            format!("MongoDB at {hosts} is not a replica set"),
            "transactions and change streams need one \
             (a one-node replica set is enough: mongod --replSet rs0, then rs.initiate())",
        ));
    }
    let (stop, stop_rx) = watch::channel(());
    let store = MongoStore {
        users: database.collection(USERS),
        workspaces: database.collection(WORKSPACES),
        products: database.collection(PRODUCTS),
        videos: database.collection(VIDEOS),
        events: database.collection(EVENTS),
        deliveries: database.collection(DELIVERIES),
        sessions: database.collection(SESSIONS),
        idempotency: database.collection(IDEMPOTENCY),
        notifications: database.collection(notifications::NOTIFICATIONS),
        database: database.clone(),
        client,
        live: broadcast::channel(LIVE_BUFFER).0,
        _stop: stop,
    };
    store.create_indexes().await?;
    store
        .fill_rollups()
        .await
        .map_err(|e| StoreError::setup("filling the statistics rollups", e))?;
    store
        .fill_finished()
        .await
        .map_err(|e| StoreError::setup("filling the finished-videos rollup", e))?;
    indexes::apply_retention(&database, &store.events, retention_days).await?;
    // Opened before returning, so every change committed after `connect` reaches the feed.
    let stream = live::open_stream(&database, None).await.map_err(|e| {
        StoreError::setup(
            format!("cannot open a change stream on MongoDB at {hosts} (the live feed needs one)"),
            e,
        )
    })?;
    tokio::spawn(live::follow(database, stream, store.live.clone(), stop_rx));
    Ok(store)
}

/// `w: "majority", j: true`.
fn durable() -> mongodb::options::WriteConcern {
    mongodb::options::WriteConcern::builder()
        .w(mongodb::options::Acknowledgment::Majority)
        .journal(true)
        .build()
}

/// Reads a cursor to the end, mapping each document.
async fn collect<T>(
    mut cursor: mongodb::Cursor<Document>,
    f: impl Fn(Document) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut out = Vec::new();
    while cursor.advance().await? {
        out.push(f(cursor.deserialize_current()?)?);
    }
    Ok(out)
}

fn newest_first() -> Document {
    doc! { "createdAt": -1, "_id": -1 }
}

/// The one paged-query helper every list uses: counts what `filter` selects and reads one page of
/// it, newest first.
async fn paged<T>(
    coll: &Collection<Document>,
    filter: Document,
    index: Document,
    page: PageSpec,
    f: impl Fn(Document) -> StoreResult<T>,
) -> StoreResult<Paged<T>> {
    let total = count_of(coll, filter.clone(), index.clone()).await?;
    let items = page_of(coll, filter, index, page, None, f).await?;
    Ok(Paged { items, total })
}

/// How many documents `filter` selects, read through `index` (named as a hint, so no query of the
/// product ever scans a collection, whatever the server's planner would choose).
async fn count_of(
    coll: &Collection<Document>,
    filter: Document,
    index: Document,
) -> StoreResult<u64> {
    Ok(coll
        .count_documents(filter)
        .hint(mongodb::options::Hint::Keys(index))
        .await?)
}

/// One page of what `filter` selects, newest first (`createdAt`, then `_id`): after `after` when
/// given (keyset: a range of the `{…, createdAt: -1, _id: -1}` index), else `page`'s offset.
async fn page_of<T>(
    coll: &Collection<Document>,
    filter: Document,
    index: Document,
    page: PageSpec,
    after: Option<crate::model::Keyset>,
    f: impl Fn(Document) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    if page.limit == 0 {
        return Ok(Vec::new());
    }
    let filter = match after {
        None => filter,
        Some(k) => all_of(vec![
            filter,
            doc! { "$or": [
                { "createdAt": { "$lt": docs::date(k.at) } },
                { "createdAt": docs::date(k.at), "_id": { "$lt": docs::oid(k.id) } },
            ]},
        ]),
    };
    let cursor = coll
        .find(filter)
        .hint(mongodb::options::Hint::Keys(index))
        .sort(newest_first())
        .skip(if after.is_some() { 0 } else { page.offset() })
        .limit(i64::try_from(page.limit).unwrap_or(i64::MAX))
        .await?;
    collect(cursor, f).await
}

/// `a AND b AND ...` as one filter (`{}` when there is nothing to filter on).
fn all_of(clauses: Vec<Document>) -> Document {
    match clauses.len() {
        0 => Document::new(),
        1 => clauses.into_iter().next().unwrap_or_default(),
        _ => doc! { "$and": clauses },
    }
}

impl LiveFeed for MongoStore {
    fn subscribe(&self) -> broadcast::Receiver<crate::ssr::store::Live> {
        self.live.subscribe()
    }
}

#[async_trait::async_trait]
impl Store for MongoStore {
    fn kind(&self) -> &'static str {
        "mongodb"
    }

    async fn ping(&self) -> StoreResult<()> {
        self.client
            .database("admin")
            .run_command(doc! { "ping": 1 })
            .selection_criteria(mongodb::options::SelectionCriteria::ReadPreference(
                mongodb::options::ReadPreference::Primary,
            ))
            .await?;
        Ok(())
    }
}
