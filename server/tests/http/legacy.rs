//! The platform's existing MongoDB data, as the original Node service writes it: product `videos`
//! entries without `videoId` and users whose `password` is a bcryptjs hash. Seeded with the driver
//! in that exact shape, then driven over HTTP: login, callbacks, the event log.

use crate::support::{mongo_uri, TestApp};
use mongodb::bson::{doc, oid::ObjectId, DateTime, Document};
use serde_json::json;

/// A hash in the form bcryptjs writes (`$2a$`), at cost 4 to keep the test quick.
fn bcryptjs_hash(password: &str) -> String {
    bcrypt::hash_with_salt(password, 4, [42; 16])
        .unwrap()
        .format_for_version(bcrypt::Version::TwoA)
}

struct Seeded {
    product: ObjectId,
    first: ObjectId,
    second: ObjectId,
}

/// A workspace, a superadmin and a product with three entries as the original service leaves them:
/// an older completed video of template_001, one of template_001 being generated and one of
/// template_002 pending; and the two AIVideo records in flight.
async fn seed(db: &mongodb::Database) -> Seeded {
    let now = DateTime::now();
    let ws = ObjectId::new();
    db.collection::<Document>("workspaces")
        .insert_one(doc! { "_id": ws, "name": "Legacy shop", "videoLimit": 50, "videosUsed": 2, "createdAt": now, "updatedAt": now })
        .await
        .unwrap();
    let user = ObjectId::new();
    db.collection::<Document>("users")
        .insert_one(doc! {
            "_id": user, "email": "legacy@racky.test", "password": bcryptjs_hash("legacy-password-1"),
            "role": "SUPERADMIN", "createdAt": now, "updatedAt": now, "__v": 0,
        })
        .await
        .unwrap();
    let product = ObjectId::new();
    let entry = |template: &str, status: &str| {
        doc! { "templateId": template, "templateName": "Product Showcase", "status": status, "createdAt": now }
    };
    let mut done = entry("template_001", "completed");
    done.insert("videoUrl", "https://cdn.example.com/old.mp4");
    done.insert("completedAt", now);
    db.collection::<Document>("products")
        .insert_one(doc! {
            "_id": product, "workspaceId": ws, "userId": user, "title": "Producto ejemplo",
            "videos": [done, entry("template_001", "generating"), entry("template_002", "pending")],
            "createdAt": now, "updatedAt": now, "__v": 0,
        })
        .await
        .unwrap();
    let video = |template: &str| {
        doc! {
            "_id": ObjectId::new(), "userId": user, "workspaceId": ws, "productId": product,
            "template": "Product Showcase", "status": "generating",
            "metadata": { "templateId": template, "externalJobId": "job_xyz789", "queuedAt": now, "aspect_ratio": "9:16" },
            "createdAt": now, "updatedAt": now, "__v": 0,
        }
    };
    let (first, second) = (video("template_001"), video("template_002"));
    let ids = (
        first.get_object_id("_id").unwrap(),
        second.get_object_id("_id").unwrap(),
    );
    db.collection::<Document>("aivideos")
        .insert_many([first, second])
        .await
        .unwrap();
    Seeded {
        product,
        first: ids.0,
        second: ids.1,
    }
}

async fn entries(db: &mongodb::Database, product: ObjectId) -> Vec<Document> {
    let p = db
        .collection::<Document>("products")
        .find_one(doc! { "_id": product })
        .await
        .unwrap()
        .unwrap();
    p.get_array("videos")
        .unwrap()
        .iter()
        .map(|e| e.as_document().unwrap().clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_services_documents_work_unchanged() {
    let Some(uri) = mongo_uri() else { return };
    let db_name = format!(
        "legacy_{}_{}",
        std::process::id(),
        crate::support::rand_suffix()
    );
    let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
    let db = client.database(&db_name);
    let s = seed(&db).await;
    let app = TestApp::spawn_with(|c| {
        c.mongodb_uri = Some(uri.clone());
        c.mongodb_db = db_name.clone();
    })
    .await;

    // A bcrypt password logs in, and is moved to argon2 in our field; the original stays.
    let token = app.login("legacy@racky.test", "legacy-password-1").await;
    let u = db
        .collection::<Document>("users")
        .find_one(doc! { "email": "legacy@racky.test" })
        .await
        .unwrap()
        .unwrap();
    assert!(u.get_str("passwordHash").unwrap().starts_with("$argon2"));
    assert!(u.get_str("password").unwrap().starts_with("$2a$"));
    app.login("legacy@racky.test", "legacy-password-1").await;
    app.post(
        "/api/auth/login",
        None,
        json!({ "email": "legacy@racky.test", "password": "wrong-password" }),
    )
    .await
    .expect(401);

    // Success for the template_001 video: the generating entry of that template, not the
    // completed one before it.
    let r = app
        .post(
            "/internal/videos/success",
            None,
            json!({ "videoId": s.first.to_hex(), "youtubeVideoId": "dQw4w9WgXcQ",
                    "video_url": "https://cdn.example.com/video.mp4", "img_s3_url": "https://s3.example.com/t.jpg" }),
        )
        .await
        .expect(200);
    assert_eq!(r.data()["productId"], s.product.to_hex());
    let e = entries(&db, s.product).await;
    assert_eq!(
        e[0].get_str("videoUrl").unwrap(),
        "https://cdn.example.com/old.mp4"
    );
    assert!(e[0].get("videoId").is_none(), "{e:?}");
    assert_eq!(e[1].get_str("status").unwrap(), "completed");
    assert_eq!(
        e[1].get_str("videoUrl").unwrap(),
        "https://cdn.example.com/video.mp4"
    );
    assert_eq!(
        e[1].get_str("imgS3Url").unwrap(),
        "https://s3.example.com/t.jpg"
    );
    assert_eq!(e[1].get_object_id("videoId").unwrap(), s.first);
    assert_eq!(e[2].get_str("status").unwrap(), "pending");

    // A duplicate finds the entry it linked, and changes nothing.
    app.post(
        "/internal/videos/success",
        None,
        json!({ "videoId": s.first.to_hex(), "video_url": "https://cdn.example.com/other.mp4" }),
    )
    .await;
    assert_eq!(
        entries(&db, s.product).await[1]
            .get_str("videoUrl")
            .unwrap(),
        "https://cdn.example.com/video.mp4"
    );

    // Failure for the template_002 video: its pending entry.
    app.post(
        "/internal/videos/failure",
        None,
        json!({ "videoId": s.second.to_hex(), "error": "insufficient image quality" }),
    )
    .await
    .expect(200);
    let e = entries(&db, s.product).await;
    assert_eq!(e[2].get_str("status").unwrap(), "failed");
    assert_eq!(e[2].get_str("error").unwrap(), "insufficient image quality");
    assert_eq!(e[2].get_object_id("videoId").unwrap(), s.second);

    // The API reads the product, legacy entry included, and the event log has every call.
    let p = app
        .get(&format!("/api/products/{}", s.product.to_hex()), &token)
        .await
        .expect(200);
    assert_eq!(p.data()["videos"].as_array().unwrap().len(), 3);
    assert!(p.data()["videos"][0].get("videoId").is_none());
    let first = app.events_for(&token, &s.first.to_hex()).await;
    assert_eq!(first.len(), 2, "{first:?}");
    assert_eq!(app.events_for(&token, &s.second.to_hex()).await.len(), 1);
    let v = app
        .get(&format!("/api/videos/{}", s.first.to_hex()), &token)
        .await
        .expect(200);
    assert_eq!(v.data()["status"], "completed");
    db.drop().await.unwrap();
}
