//! Products of a workspace, each with its `videos` entries.

use super::{parse_id, parse_paging};
use crate::model::filters::ProductFilter;
use crate::model::{ObjectId, Pagination, Product, Timestamp};
use crate::ssr::auth::Caller;
use crate::ssr::error::{AppError, AppResult};
use crate::ssr::state::AppState;
use crate::ssr::store::PageSpec;
use serde::{Deserialize, Serialize};

pub const MSG_PRODUCT_NOT_FOUND: &str = "Product not found";
const MAX_IMAGES: usize = 20;

#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[schema(examples(json!({"title": "Trail shoes", "sku": "SKU-1", "imgUrls": ["https://img.example/1.jpg"]})))]
#[serde(rename_all = "camelCase")]
pub struct NewProduct {
    pub title: String,
    pub sku: String,
    #[serde(default)]
    pub img_urls: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ProductPage {
    pub products: Vec<Product>,
    pub pagination: Pagination,
}

fn is_http_url(u: &str) -> bool {
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !u.contains(char::is_whitespace))
        && u.len() <= 2048
}

pub fn validate(new: NewProduct) -> AppResult<NewProduct> {
    let title = new.title.trim().to_string();
    let sku = new.sku.trim().to_string();
    if title.is_empty() || title.chars().count() > 500 {
        return Err(AppError::BadRequest(
            "title is required (at most 500 characters)".into(),
        ));
    }
    if sku.is_empty() || sku.chars().count() > 100 {
        return Err(AppError::BadRequest(
            "sku is required (at most 100 characters)".into(),
        ));
    }
    if new.img_urls.len() > MAX_IMAGES {
        return Err(AppError::BadRequest(format!(
            "imgUrls may hold at most {MAX_IMAGES} URLs"
        )));
    }
    if let Some(bad) = new.img_urls.iter().find(|u| !is_http_url(u)) {
        return Err(AppError::BadRequest(format!(
            "imgUrls must be http(s) URLs; got {:?}",
            bad.chars().take(100).collect::<String>()
        )));
    }
    Ok(NewProduct {
        title,
        sku,
        img_urls: new.img_urls,
    })
}

#[tracing::instrument(skip_all, fields(user = %caller.user_id, workspace = ?caller.workspace_id))]
pub async fn create_product(
    state: &AppState,
    caller: &Caller,
    new: NewProduct,
) -> AppResult<Product> {
    let workspace_id = caller.workspace()?;
    let new = validate(new)?;
    let now = Timestamp::now();
    let p = Product {
        id: ObjectId::new(),
        workspace_id,
        user_id: Some(caller.user_id),
        title: new.title,
        sku: new.sku,
        img_urls: new.img_urls,
        videos: Vec::new(),
        created_at: now,
        updated_at: now,
    };
    state.store.insert_product(&p).await?;
    Ok(p)
}

/// The caller's products; a superadmin may name any workspace with `workspace_id`.
#[tracing::instrument(skip(state, caller), fields(user = %caller.user_id))]
pub async fn list_products(
    state: &AppState,
    caller: &Caller,
    filter: &ProductFilter,
) -> AppResult<ProductPage> {
    let (page, limit) = parse_paging(filter.page.as_deref(), filter.limit.as_deref())?;
    let ws = match filter.workspace_id.as_deref().filter(|s| !s.is_empty()) {
        Some(raw) if caller.is_superadmin() => parse_id(raw, "workspaceId")?,
        Some(raw) if Some(parse_id(raw, "workspaceId")?) == caller.workspace_id => {
            caller.workspace()?
        }
        Some(_) => {
            return Err(AppError::Forbidden(
                "You can only list your own workspace's products".into(),
            ))
        }
        None => caller.workspace()?,
    };
    let found = state
        .store
        .list_products(ws, PageSpec { page, limit })
        .await?;
    Ok(ProductPage {
        products: found.items,
        pagination: Pagination::new(page, limit, found.total),
    })
}

/// A product of the caller's workspace (any, for a superadmin). Another workspace's product is a 404,
/// so ids of other tenants cannot be probed.
#[tracing::instrument(skip(state, caller), fields(user = %caller.user_id))]
pub async fn get_product(state: &AppState, caller: &Caller, id: &str) -> AppResult<Product> {
    let id: ObjectId = parse_id(id, "product id")?;
    match state.store.find_product(id).await? {
        Some(p) if caller.is_superadmin() || Some(p.workspace_id) == caller.workspace_id => Ok(p),
        _ => Err(AppError::NotFound(MSG_PRODUCT_NOT_FOUND.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(title: &str, sku: &str, urls: &[&str]) -> NewProduct {
        NewProduct {
            title: title.into(),
            sku: sku.into(),
            img_urls: urls.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn product_validation() {
        assert!(validate(p("T", "S", &["https://x.y/a.jpg"])).is_ok());
        assert_eq!(validate(p("  T ", " S", &[])).unwrap().title, "T");
        assert!(validate(p("", "S", &[])).is_err());
        assert!(validate(p("T", " ", &[])).is_err());
        assert!(validate(p("T", "S", &["ftp://x"])).is_err());
        assert!(validate(p("T", "S", &["https://"])).is_err());
        assert!(validate(p("T", "S", &["https://a b"])).is_err());
        let many: Vec<&str> = std::iter::repeat_n("https://x.y/", 21).collect();
        assert!(validate(p("T", "S", &many)).is_err());
    }
}
