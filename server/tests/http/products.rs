//! Products and videos over REST, and tenant isolation.

use crate::support::{Scene, TestApp};
use serde_json::json;

#[tokio::test]
async fn products_are_created_in_the_callers_workspace() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let ws = app.workspace(&admin, 10).await;
    let user = app.user_in(&admin, &ws, "USER").await;
    let r = app
        .post(
            "/api/products",
            Some(&user),
            json!({ "title": " Shoes ", "sku": "SKU-1", "imgUrls": ["https://img.test/1.jpg"] }),
        )
        .await
        .expect(201);
    let p = r.data();
    assert_eq!(p["title"], "Shoes");
    assert_eq!(p["workspaceId"], ws);
    assert_eq!(p["videos"], json!([]));
    assert_eq!(p["imgUrls"], json!(["https://img.test/1.jpg"]));
    let id = p["_id"].as_str().unwrap();
    let got = app
        .get(&format!("/api/products/{id}"), &user)
        .await
        .expect(200);
    assert_eq!(got.data(), p);
    let list = app.get("/api/products", &user).await.expect(200);
    assert_eq!(list.data()["pagination"]["total"], 1);
    assert_eq!(list.data()["products"][0]["_id"], id);

    for bad in [
        json!({ "sku": "S" }),
        json!({ "title": "", "sku": "S" }),
        json!({ "title": "T", "sku": "S", "imgUrls": ["not a url"] }),
        json!({ "title": "T", "sku": "S", "imgUrls": "https://x.y" }),
    ] {
        let r = app
            .post("/api/products", Some(&user), bad.clone())
            .await
            .expect(400);
        assert_eq!(r.body["success"], false, "{bad}");
    }
    assert_eq!(
        app.get("/api/products", &user).await.data()["pagination"]["total"],
        1,
        "nothing created"
    );
    // A superadmin has no workspace to create products in.
    app.post(
        "/api/products",
        Some(&admin),
        json!({ "title": "T", "sku": "S" }),
    )
    .await
    .expect(403);
}

#[tokio::test]
async fn another_workspaces_products_and_videos_are_404() {
    let s = Scene::new().await;
    let v = &s.start_videos(&s.products[0], 1).await[0];
    let other_ws = s.app.workspace(&s.admin, 10).await;
    let stranger = s.app.user_in(&s.admin, &other_ws, "ADMIN").await;

    let r = s
        .app
        .get(&format!("/api/videos/{v}"), &stranger)
        .await
        .expect(404);
    assert_eq!(
        r.body,
        json!({ "success": false, "message": "Video not found" })
    );
    let r = s
        .app
        .get(&format!("/api/products/{}", s.products[0]), &stranger)
        .await
        .expect(404);
    assert_eq!(r.msg(), "Product not found");
    assert_eq!(
        s.app.get("/api/products", &stranger).await.data()["pagination"]["total"],
        0
    );

    // The owner and a superadmin see them.
    let mine = s
        .app
        .get(&format!("/api/videos/{v}"), &s.user)
        .await
        .expect(200);
    assert_eq!(mine.data()["_id"], v.as_str());
    assert_eq!(mine.data()["workspaceId"], s.workspace);
    s.app
        .get(&format!("/api/videos/{v}"), &s.admin)
        .await
        .expect(200);
    s.app
        .get(&format!("/api/products/{}", s.products[0]), &s.admin)
        .await
        .expect(200);

    s.app.get("/api/videos/xyz", &s.user).await.expect(400);
    s.app.get("/api/products/xyz", &s.user).await.expect(400);
    s.app
        .get("/api/videos/507f1f77bcf86cd799439011", &s.user)
        .await
        .expect(404);
}
