//! `server seed-bench`: a large store for benchmarks, written straight into SQLite in a few big
//! transactions (far faster than through the API), then its rollups filled as the migration does.
//!
//! One workspace and product; `videos` finished videos (9 in 10 completed) and `events` webhook
//! events, spread evenly over the last `days` days.

use super::{connect, migrate};
use crate::model::{AiVideo, ObjectId, ProductVideo, Timestamp, VideoMetadata, VideoStatus};
use crate::ssr::store::{StoreError, StoreResult};
use rusqlite::named_params;
use std::path::Path;

/// What was seeded, for the benchmark to aim at.
#[derive(Clone, Debug)]
pub struct Seeded {
    pub workspace_id: ObjectId,
    pub events: u64,
    pub videos: u64,
    /// An event about 80 % of the way down the log (newest first): where a deep page starts.
    pub deep: Option<(Timestamp, ObjectId)>,
}

const REBUILD_ROLLUPS: &str =
    "DELETE FROM event_rollup; DELETE FROM video_counts; DELETE FROM processing_rollup;
     DELETE FROM processing_daily; DELETE FROM finished_rollup; DELETE FROM finished_daily;";

pub fn seed_bench(data_dir: &Path, events: u64, videos: u64, days: u64) -> StoreResult<Seeded> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| StoreError::setup(format!("creating {}", data_dir.display()), e))?;
    let mut c = connect(&data_dir.join("videos.db"))?;
    migrate(&mut c)?;
    let now = Timestamp::now().millis();
    let span = (days.max(1) * 86_400_000) as i64;
    let start = now - span;
    let workspace_id = ObjectId::new();
    let product_id = ObjectId::new();
    let user_id = ObjectId::new();
    let t0 = Timestamp::from_millis(start).to_string();
    let tx = c.transaction()?;
    tx.execute(
        "INSERT INTO workspaces (id, name, video_limit, videos_used, created_at, updated_at)
         VALUES (:id, 'Bench', 1000000000, :used, :at, :at)",
        named_params! { ":id": workspace_id.to_string(), ":used": videos as i64, ":at": t0 },
    )?;
    tx.execute(
        "INSERT INTO products (id, workspace_id, user_id, title, sku, img_urls, created_at, updated_at)
         VALUES (:id, :ws, :user, 'Bench product', 'SKU-BENCH', '[]', :at, :at)",
        named_params! {
            ":id": product_id.to_string(), ":ws": workspace_id.to_string(),
            ":user": user_id.to_string(), ":at": t0,
        },
    )?;
    tx.commit()?;

    let mut video_ids = Vec::with_capacity(videos.min(1_000_000) as usize);
    let step = span / videos.max(1) as i64;
    for chunk in (0..videos).collect::<Vec<_>>().chunks(50_000) {
        let tx = c.transaction()?;
        {
            let mut video = tx.prepare_cached(
                "INSERT INTO aivideos (id, user_id, workspace_id, product_id, template, status, error,
                   metadata, created_at, updated_at)
                 VALUES (:id, :user, :ws, :product, 'Bench', :status, :error, :metadata, :created, :updated)",
            )?;
            let mut entry = tx.prepare_cached(
                "INSERT INTO product_videos (video_id, product_id, entry) VALUES (:id, :product, :entry)",
            )?;
            for &i in chunk {
                let created = Timestamp::from_millis(start + i as i64 * step);
                // Processing times from 20 s to about 10 min.
                let finished = Timestamp::from_millis(
                    created.millis() + 20_000 + (i as i64 * 7_919) % 600_000,
                );
                let failed = i % 10 == 9;
                let status = if failed {
                    VideoStatus::Failed
                } else {
                    VideoStatus::Completed
                };
                let metadata = VideoMetadata {
                    template_id: "t".into(),
                    queued_at: Some(created),
                    completed_at: (!failed).then_some(finished),
                    failed_at: failed.then_some(finished),
                    ..Default::default()
                };
                let v = AiVideo {
                    id: ObjectId::new(),
                    user_id,
                    workspace_id,
                    product_id,
                    template: "Bench".into(),
                    status,
                    error: failed.then(|| "render failed".to_string()),
                    metadata,
                    created_at: created,
                    updated_at: finished,
                    callback_token_hash: None,
                };
                video.execute(named_params! {
                    ":id": v.id.to_string(), ":user": user_id.to_string(),
                    ":ws": workspace_id.to_string(), ":product": product_id.to_string(),
                    ":status": v.status.as_str(), ":error": v.error,
                    ":metadata": super::to_json(&v.metadata),
                    ":created": created.to_string(), ":updated": finished.to_string(),
                })?;
                entry.execute(named_params! {
                    ":id": v.id.to_string(), ":product": product_id.to_string(),
                    ":entry": super::to_json(&ProductVideo::pending_for(&v)),
                })?;
                if video_ids.len() < 1_000_000 {
                    video_ids.push(v.id);
                }
            }
        }
        tx.commit()?;
    }

    let step = span / events.max(1) as i64;
    let deep_at = events * 2 / 10; // 80 % down the newest-first log is 20 % from the oldest
    let mut deep = None;
    for chunk in (0..events).collect::<Vec<_>>().chunks(100_000) {
        let tx = c.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO webhook_events (id, endpoint, payload, video_id, status_code, outcome, created_at)
                 VALUES (:id, :endpoint, :payload, :video, :status, :outcome, :at)",
            )?;
            for &i in chunk {
                let id = ObjectId::new();
                let at = Timestamp::from_millis(start + i as i64 * step);
                let video = video_ids
                    .get(i as usize % video_ids.len().max(1))
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                let failure = i % 10 == 9;
                let (endpoint, status, outcome) = match (failure, i % 50 == 7) {
                    (_, true) => ("/videos/success", 404, "Video not found"),
                    (true, _) => (
                        "/videos/failure",
                        200,
                        "Video failure recorded successfully",
                    ),
                    (false, _) => ("/videos/success", 200, "Video status updated successfully"),
                };
                let payload = format!(
                    "{{\"videoId\":\"{video}\",\"videoUrl\":\"https://cdn.example/{video}.mp4\"}}"
                );
                insert.execute(named_params! {
                    ":id": id.to_string(), ":endpoint": endpoint, ":payload": payload,
                    ":video": video, ":status": status, ":outcome": outcome, ":at": at.to_string(),
                })?;
                if i == deep_at {
                    deep = Some((at, id));
                }
            }
        }
        tx.commit()?;
    }

    // The rollups, as the migrations fill them for an existing database.
    let fill = [
        include_str!("migrations/008_rollups.sql"),
        include_str!("migrations/010_processing_daily.sql"),
        include_str!("migrations/012_finished_rollup.sql"),
    ];
    let inserts: Vec<&str> = fill
        .iter()
        .flat_map(|f| f.split(';'))
        .filter(|stmt| stmt.contains("INSERT INTO"))
        .collect();
    let tx = c.transaction()?;
    tx.execute_batch(REBUILD_ROLLUPS)?;
    for stmt in inserts {
        tx.execute_batch(stmt)?;
    }
    tx.commit()?;
    Ok(Seeded {
        workspace_id,
        events,
        videos,
        deep,
    })
}
