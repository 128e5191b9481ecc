//! `users`: accounts with their argon2 password hash.

use super::{find_one, oid, parsed, ts, SqliteStore};
use crate::model::{ObjectId, Role, User};
use crate::ssr::store::{StoreError, StoreResult, UserRecord, UserStore};
use async_trait::async_trait;
use rusqlite::{named_params, OptionalExtension, Row};

const INSERT: &str =
    "INSERT INTO users (id, email, role, workspace_id, created_at, updated_at, password_hash)
     VALUES (:id, :email, :role, :workspace_id, :created_at, :updated_at, :password_hash)";
const BY_ID: &str = "SELECT id, email, role, workspace_id, created_at, updated_at, password_hash
     FROM users WHERE id = :id";
const BY_EMAIL: &str = "SELECT id, email, role, workspace_id, created_at, updated_at, password_hash
     FROM users WHERE email = :email";
const SET_HASH: &str = "UPDATE users SET password_hash = :hash WHERE id = :id";
const COUNT_BY_ROLE: &str = "SELECT COUNT(*) FROM users WHERE role = :role";

fn user_row(r: &Row) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        user: User {
            id: oid(r.get(0)?)?,
            email: r.get(1)?,
            role: parsed::<Role>(r.get(2)?, "role")?,
            workspace_id: r.get::<_, Option<String>>(3)?.map(oid).transpose()?,
            created_at: ts(r.get(4)?)?,
            updated_at: ts(r.get(5)?)?,
        },
        password_hash: r.get(6)?,
    })
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn insert_user(&self, rec: &UserRecord) -> StoreResult<()> {
        let rec = rec.clone();
        self.write(move |c| {
            let u = &rec.user;
            c.prepare_cached(INSERT)?
                .execute(named_params! {
                    ":id": u.id.to_string(),
                    ":email": u.email,
                    ":role": u.role.as_str(),
                    ":workspace_id": u.workspace_id.map(|w| w.to_string()),
                    ":created_at": u.created_at.to_string(),
                    ":updated_at": u.updated_at.to_string(),
                    ":password_hash": rec.password_hash,
                })
                .map_err(|e| match e {
                    rusqlite::Error::SqliteFailure(f, _)
                        if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                    {
                        StoreError::Conflict("Email already registered".into())
                    }
                    other => other.into(),
                })?;
            Ok(())
        })
        .await
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        let email = email.to_string();
        self.read(move |c| {
            Ok(c.prepare_cached(BY_EMAIL)?
                .query_row(named_params! { ":email": email }, user_row)
                .optional()?)
        })
        .await
    }

    async fn find_user(&self, id: ObjectId) -> StoreResult<Option<User>> {
        let found = self.read(move |c| find_one(c, BY_ID, id, user_row)).await?;
        Ok(found.map(|r| r.user))
    }

    async fn count_users_with_role(&self, role: Role) -> StoreResult<u64> {
        self.read(move |c| {
            Ok(c.prepare_cached(COUNT_BY_ROLE)?
                .query_row(named_params! { ":role": role.as_str() }, |r| r.get(0))?)
        })
        .await
    }

    async fn set_password_hash(&self, id: ObjectId, hash: &str) -> StoreResult<()> {
        let hash = hash.to_string();
        self.write(move |c| {
            c.prepare_cached(SET_HASH)?
                .execute(named_params! { ":id": id.to_string(), ":hash": hash })?;
            Ok(())
        })
        .await
    }
}
