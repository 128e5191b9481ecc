//! `users`: accounts with their argon2 password hash (emails stored lowercase).

use super::docs::{oid, read, user_doc, UserDoc};
use super::txn::is_duplicate;
use super::MongoStore;
use crate::model::{ObjectId, Role, User};
use crate::ssr::store::{StoreError, StoreResult, UserRecord, UserStore};
use async_trait::async_trait;
use mongodb::bson::{doc, Document};

fn user(d: Document) -> StoreResult<UserRecord> {
    Ok(read::<UserDoc>(d, "user")?.into())
}

#[async_trait]
impl UserStore for MongoStore {
    async fn insert_user(&self, rec: &UserRecord) -> StoreResult<()> {
        match self.users.insert_one(user_doc(rec)).await {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate(&e) => {
                Err(StoreError::Conflict("Email already registered".into()))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        self.users
            .find_one(doc! { "email": email.to_ascii_lowercase() })
            .await?
            .map(user)
            .transpose()
    }

    async fn find_user(&self, id: ObjectId) -> StoreResult<Option<User>> {
        let found = self.users.find_one(doc! { "_id": oid(id) }).await?;
        Ok(found.map(user).transpose()?.map(|r| r.user))
    }

    async fn count_users_with_role(&self, role: Role) -> StoreResult<u64> {
        Ok(self
            .users
            .count_documents(doc! { "role": role.as_str() })
            .hint(mongodb::options::Hint::Keys(doc! { "role": 1 }))
            .await?)
    }

    /// Into our field only: the original service's `password` stays as it was.
    async fn set_password_hash(&self, id: ObjectId, hash: &str) -> StoreResult<()> {
        self.users
            .update_one(
                doc! { "_id": oid(id) },
                doc! { "$set": { "passwordHash": hash } },
            )
            .await?;
        Ok(())
    }
}
