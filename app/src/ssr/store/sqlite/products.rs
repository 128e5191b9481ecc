//! `products`, with their `videos` entries (rows of `product_videos`, one per video).

use super::{all, json, oid, paged, to_json, ts, SqliteStore};
use crate::model::{ObjectId, Product, ProductVideo};
use crate::ssr::store::{PageSpec, Paged, ProductStore, StoreResult};
use async_trait::async_trait;
use rusqlite::{named_params, Connection, OptionalExtension, Row, ToSql};

const INSERT: &str =
    "INSERT INTO products (id, workspace_id, user_id, title, sku, img_urls, created_at, updated_at)
     VALUES (:id, :workspace_id, :user_id, :title, :sku, :img_urls, :created_at, :updated_at)";
const BY_ID: &str = "SELECT id, workspace_id, user_id, title, sku, img_urls, created_at, updated_at
     FROM products WHERE id = :id";
const COUNT_IN_WORKSPACE: &str = "SELECT COUNT(*) FROM products WHERE workspace_id = :ws";
const PAGE_IN_WORKSPACE: &str =
    "SELECT id, workspace_id, user_id, title, sku, img_urls, created_at, updated_at
     FROM products WHERE workspace_id = :ws
     ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset";
const ENTRIES: &str = "SELECT entry FROM product_videos WHERE product_id = :id ORDER BY rowid";

fn product_row(r: &Row) -> rusqlite::Result<Product> {
    Ok(Product {
        id: oid(r.get(0)?)?,
        workspace_id: oid(r.get(1)?)?,
        user_id: r.get::<_, Option<String>>(2)?.map(oid).transpose()?,
        title: r.get(3)?,
        sku: r.get(4)?,
        img_urls: json(r.get(5)?)?,
        videos: Vec::new(),
        created_at: ts(r.get(6)?)?,
        updated_at: ts(r.get(7)?)?,
    })
}

/// Fills each product's `videos` from `product_videos`, oldest first.
fn attach_videos(c: &Connection, products: &mut [Product]) -> StoreResult<()> {
    for p in products.iter_mut() {
        let id = p.id.to_string();
        p.videos = all(c, ENTRIES, &[(":id", &id as &dyn ToSql)], |r| {
            json::<ProductVideo>(r.get(0)?)
        })?;
    }
    Ok(())
}

/// The products with these ids that exist, in the order asked, without their `videos` entries.
fn by_ids(c: &Connection, ids: &[String]) -> rusqlite::Result<Vec<Product>> {
    let mut stmt = c.prepare_cached(BY_ID)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.extend(
            stmt.query_row(named_params! { ":id": id }, product_row)
                .optional()?,
        );
    }
    Ok(out)
}

#[async_trait]
impl ProductStore for SqliteStore {
    async fn insert_product(&self, p: &Product) -> StoreResult<()> {
        let p = p.clone();
        self.write(move |c| {
            c.prepare_cached(INSERT)?.execute(named_params! {
                ":id": p.id.to_string(),
                ":workspace_id": p.workspace_id.to_string(),
                ":user_id": p.user_id.map(|u| u.to_string()),
                ":title": p.title,
                ":sku": p.sku,
                ":img_urls": to_json(&p.img_urls),
                ":created_at": p.created_at.to_string(),
                ":updated_at": p.updated_at.to_string(),
            })?;
            Ok(())
        })
        .await
    }

    async fn find_product(&self, id: ObjectId) -> StoreResult<Option<Product>> {
        Ok(self.find_products(&[id]).await?.into_iter().next())
    }

    async fn find_products(&self, ids: &[ObjectId]) -> StoreResult<Vec<Product>> {
        let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        self.read(move |c| {
            let mut out = by_ids(c, &ids)?;
            attach_videos(c, &mut out)?;
            Ok(out)
        })
        .await
    }

    async fn find_product_cards(&self, ids: &[ObjectId]) -> StoreResult<Vec<Product>> {
        let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        self.read(move |c| Ok(by_ids(c, &ids)?)).await
    }

    async fn list_products(&self, ws: ObjectId, page: PageSpec) -> StoreResult<Paged<Product>> {
        self.read(move |c| {
            let ws = ws.to_string();
            let mut found = paged(
                c,
                COUNT_IN_WORKSPACE,
                PAGE_IN_WORKSPACE,
                &[(":ws", &ws as &dyn ToSql)],
                page,
                product_row,
            )?;
            attach_videos(c, &mut found.items)?;
            Ok(found)
        })
        .await
    }
}
