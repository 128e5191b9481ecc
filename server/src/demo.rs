//! The demo of `make run` (dev mode only): a workspace with a few products and a user to log in as.

use anyhow::Context;
use app::model::Role;
use app::ssr::auth::Caller;
use app::ssr::services::products::{self, NewProduct};
use app::ssr::services::users::{self, NewUser, NewWorkspace};
use app::ssr::state::AppState;

pub const DEMO_EMAIL: &str = "demo@racky.local";
pub const DEMO_PASSWORD: &str = "racky-demo-2024";

const PRODUCTS: [(&str, &str); 6] = [
    ("Trail running shoes", "SKU-TRAIL-42"),
    ("Ceramic pour-over coffee set", "SKU-COFFEE-07"),
    ("Waterproof hiking backpack 30L", "SKU-PACK-30"),
    ("Bamboo cutting board", "SKU-BOARD-12"),
    ("Noise-cancelling headphones", "SKU-AUDIO-88"),
    ("Linen summer shirt", "SKU-LINEN-03"),
];

/// Creates the demo data once (skipped when the demo user exists). Returns whether it created it.
pub async fn seed(state: &AppState) -> anyhow::Result<bool> {
    if state
        .store
        .find_user_by_email(DEMO_EMAIL)
        .await
        .context("seeding the demo")?
        .is_some()
    {
        return Ok(false);
    }
    let ws = users::create_workspace(
        state,
        NewWorkspace {
            name: "Demo Store".into(),
            video_limit: 500,
        },
    )
    .await
    .context("seeding the demo")?;
    let user = users::create_user(
        state,
        NewUser {
            email: DEMO_EMAIL.into(),
            password: DEMO_PASSWORD.into(),
            role: Role::Admin,
            workspace_id: Some(ws.id.to_string()),
        },
    )
    .await
    .context("seeding the demo")?;
    let caller = Caller {
        user_id: user.id,
        role: user.role,
        workspace_id: Some(ws.id),
        session: None,
    };
    for (i, (title, sku)) in PRODUCTS.iter().enumerate() {
        products::create_product(
            state,
            &caller,
            NewProduct {
                title: (*title).into(),
                sku: (*sku).into(),
                img_urls: vec![
                    format!("https://images.racky.example/demo/{}/1.jpg", i + 1),
                    format!("https://images.racky.example/demo/{}/2.jpg", i + 1),
                ],
            },
        )
        .await
        .context("seeding the demo")?;
    }
    Ok(true)
}
