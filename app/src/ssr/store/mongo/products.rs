//! `products`, with their `videos` entries embedded as Mongoose keeps them.

use super::docs::{oid, product_doc, read, ProductDoc};
use super::{collect, paged, MongoStore};
use crate::model::{ObjectId, Product};
use crate::ssr::store::{PageSpec, Paged, ProductStore, StoreResult};
use async_trait::async_trait;
use mongodb::bson::{doc, oid::ObjectId as Oid, Document};
use std::collections::HashMap;

fn product(d: Document) -> StoreResult<Product> {
    read::<ProductDoc>(d, "product")?.try_into()
}

impl MongoStore {
    /// The products of these ids that exist, in no particular order (`projection` leaves fields out).
    async fn products_by_ids(
        &self,
        ids: &[ObjectId],
        projection: Option<mongodb::bson::Document>,
    ) -> StoreResult<Vec<Product>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<Oid> = ids.iter().map(|i| oid(*i)).collect();
        let cursor = self
            .products
            .find(doc! { "_id": { "$in": wanted } })
            .with_options(
                mongodb::options::FindOptions::builder()
                    .projection(projection)
                    .build(),
            )
            .await?;
        collect(cursor, product).await
    }
}

#[async_trait]
impl ProductStore for MongoStore {
    async fn insert_product(&self, p: &Product) -> StoreResult<()> {
        self.products.insert_one(product_doc(p)).await?;
        Ok(())
    }

    async fn find_product(&self, id: ObjectId) -> StoreResult<Option<Product>> {
        Ok(self.find_products(&[id]).await?.into_iter().next())
    }

    async fn find_products(&self, ids: &[ObjectId]) -> StoreResult<Vec<Product>> {
        let found: HashMap<ObjectId, Product> = self
            .products_by_ids(ids, None)
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        // In the order asked for, as SQLite answers.
        Ok(ids.iter().filter_map(|i| found.get(i).cloned()).collect())
    }

    async fn find_product_cards(&self, ids: &[ObjectId]) -> StoreResult<Vec<Product>> {
        self.products_by_ids(ids, Some(doc! { "videos": 0 })).await
    }

    async fn list_products(&self, ws: ObjectId, page: PageSpec) -> StoreResult<Paged<Product>> {
        paged(
            &self.products,
            doc! { "workspaceId": oid(ws) },
            doc! { "workspaceId": 1, "createdAt": -1, "_id": -1 },
            page,
            product,
        )
        .await
    }
}
