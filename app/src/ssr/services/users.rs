//! Accounts: login, superadmin-managed users and workspaces, and the first superadmin.

use crate::model::dashboard::WorkspacePage;
use crate::model::filters::WorkspaceFilter;
use crate::model::{ObjectId, Pagination, Role, Timestamp, User, Workspace};
use crate::ssr::auth::{hash_password, needs_rehash, verify_password, Caller};
use crate::ssr::error::{AppError, AppResult};
use crate::ssr::state::AppState;
use crate::ssr::store::{PageSpec, Paged, UserRecord};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::Instant;

pub const MSG_BAD_LOGIN: &str = "Invalid email or password";
pub const MIN_PASSWORD: usize = 8;

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LoginResult {
    pub token: String,
    pub user: User,
}

#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[schema(examples(json!({"email": "shop@acme.test", "password": "at-least-8", "role": "USER",
    "workspaceId": "507f1f77bcf86cd799439012"})))]
#[serde(rename_all = "camelCase")]
pub struct NewUser {
    pub email: String,
    pub password: String,
    pub role: Role,
    #[serde(default)]
    pub workspace_id: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[schema(examples(json!({"name": "Acme", "videoLimit": 100})))]
#[serde(rename_all = "camelCase")]
pub struct NewWorkspace {
    pub name: String,
    pub video_limit: u32,
}

/// A plausible email: one `@`, something before it, a dot after it, no spaces; stored lowercase.
fn normalise_email(raw: &str) -> AppResult<String> {
    let e = raw.trim().to_ascii_lowercase();
    let ok = e.len() <= 254
        && !e.contains(char::is_whitespace)
        && e.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty()
                && d.contains('.')
                && !d.starts_with('.')
                && !d.ends_with('.')
                && !d.contains('@')
        });
    if ok {
        Ok(e)
    } else {
        Err(AppError::BadRequest(
            "email must be a valid email address".into(),
        ))
    }
}

/// Spends about the same time on an unknown email as on a wrong password, so logins do not tell
/// which emails exist.
fn burn_a_hash(password: &str) {
    let _ = hash_password(password);
}

pub const MSG_TOO_MANY_LOGINS: &str = "Too many login attempts, try again later";

/// Checks a password. `client` is the caller's address: failed logins are throttled per address and
/// account (`ssr::throttle`), successful ones never.
#[tracing::instrument(skip_all)]
pub async fn login(
    state: &AppState,
    client: IpAddr,
    email: &str,
    password: &str,
) -> AppResult<LoginResult> {
    if email.trim().is_empty() || password.is_empty() {
        return Err(AppError::BadRequest(
            "email and password are required".into(),
        ));
    }
    let email = email.trim().to_ascii_lowercase();
    if let Err(wait) = state.login_throttle.check(client, &email, Instant::now()) {
        tracing::warn!(target: "video_service", %client, "login throttled");
        return Err(AppError::TooManyRequests {
            message: MSG_TOO_MANY_LOGINS.into(),
            retry_after_secs: wait.as_secs().max(1),
        });
    }
    let rec = state.store.find_user_by_email(&email).await?;
    let password = password.to_string();
    let _slot = state
        .hashing
        .acquire()
        .await
        .map_err(|e| AppError::internal("waiting to hash", e))?;
    // A bcrypt hash (the original service's) that verifies is replaced by an argon2 one.
    let ok = tokio::task::spawn_blocking(move || match rec {
        Some(r) if verify_password(&password, &r.password_hash) => {
            let rehashed = needs_rehash(&r.password_hash)
                .then(|| hash_password(&password).ok())
                .flatten();
            Some((r.user, rehashed))
        }
        Some(_) => None,
        None => {
            burn_a_hash(&password);
            None
        }
    })
    .await
    .map_err(|e| AppError::internal("login", e))?;
    let Some((user, rehashed)) = ok else {
        state.login_throttle.failed(client, &email, Instant::now());
        return Err(AppError::Unauthorized(MSG_BAD_LOGIN.into()));
    };
    state.login_throttle.succeeded(client, &email);
    if let Some(hash) = rehashed {
        // The login stands either way; the next one tries again.
        match state.store.set_password_hash(user.id, &hash).await {
            Ok(()) => {
                tracing::info!(target: "video_service", user = %user.id, "password hash moved from bcrypt to argon2")
            }
            Err(e) => {
                tracing::warn!(target: "video_service", user = %user.id, "keeping the bcrypt hash for now: {e}")
            }
        }
    }
    let (token, _) = state.jwt.issue(&user)?;
    tracing::info!(target: "video_service", user = %user.id, role = %user.role, "login");
    Ok(LoginResult { token, user })
}

/// Creates a user; any caller check happens before (see `create_user_as`).
#[tracing::instrument(skip_all, fields(role = ?new.role))]
pub async fn create_user(state: &AppState, new: NewUser) -> AppResult<User> {
    let email = normalise_email(&new.email)?;
    if new.password.chars().count() < MIN_PASSWORD {
        return Err(AppError::BadRequest(format!(
            "password must be at least {MIN_PASSWORD} characters"
        )));
    }
    let workspace_id = match new.workspace_id.as_deref().filter(|s| !s.is_empty()) {
        None if new.role != Role::Superadmin => {
            return Err(AppError::BadRequest(
                "workspaceId is required for USER and ADMIN".into(),
            ))
        }
        None => None,
        Some(raw) => {
            let id = super::parse_id(raw, "workspaceId")?;
            if state.store.find_workspace(id).await?.is_none() {
                return Err(AppError::NotFound("Workspace not found".into()));
            }
            Some(id)
        }
    };
    let password = new.password;
    let _slot = state
        .hashing
        .acquire()
        .await
        .map_err(|e| AppError::internal("waiting to hash", e))?;
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AppError::internal("hashing", e))??;
    let now = Timestamp::now();
    let user = User {
        id: ObjectId::new(),
        email,
        role: new.role,
        workspace_id,
        created_at: now,
        updated_at: now,
    };
    state
        .store
        .insert_user(&UserRecord {
            user: user.clone(),
            password_hash: hash,
        })
        .await?;
    tracing::info!(target: "video_service", user = %user.id, role = %user.role, "user created");
    Ok(user)
}

pub async fn create_user_as(state: &AppState, caller: &Caller, new: NewUser) -> AppResult<User> {
    caller.require_superadmin()?;
    create_user(state, new).await
}

#[tracing::instrument(skip_all)]
pub async fn create_workspace(state: &AppState, new: NewWorkspace) -> AppResult<Workspace> {
    let name = new.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AppError::BadRequest(
            "name is required (at most 200 characters)".into(),
        ));
    }
    let now = Timestamp::now();
    let ws = Workspace {
        id: ObjectId::new(),
        name,
        video_limit: new.video_limit,
        videos_used: 0,
        created_at: now,
        updated_at: now,
    };
    state.store.insert_workspace(&ws).await?;
    tracing::info!(target: "video_service", workspace = %ws.id, limit = ws.video_limit, "workspace created");
    Ok(ws)
}

pub async fn create_workspace_as(
    state: &AppState,
    caller: &Caller,
    new: NewWorkspace,
) -> AppResult<Workspace> {
    caller.require_superadmin()?;
    create_workspace(state, new).await
}

/// The longest a token from [`token_for`] may live: a year.
pub const MAX_TOKEN_TTL_HOURS: u64 = 24 * 365;

/// A token for `email`'s account that lives `ttl_hours` (the configured `JWT_TTL_HOURS` when
/// `None`): the command line's `server token`, for scripts. Revocable like any other (its `jti`).
pub async fn token_for(state: &AppState, email: &str, ttl_hours: Option<u64>) -> AppResult<String> {
    let ttl_secs = match ttl_hours {
        None => state.jwt.ttl_secs(),
        Some(h) if (1..=MAX_TOKEN_TTL_HOURS).contains(&h) => h as i64 * 3600,
        Some(_) => {
            return Err(AppError::BadRequest(format!(
                "--ttl-hours must be between 1 and {MAX_TOKEN_TTL_HOURS}"
            )))
        }
    };
    let email = email.trim().to_ascii_lowercase();
    let user = state
        .store
        .find_user_by_email(&email)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("No user with email {email}")))?
        .user;
    let (token, claims) = state.jwt.issue_for(&user, ttl_secs)?;
    tracing::info!(target: "video_service", user = %user.id, role = %user.role, expires = claims.exp, "token issued on the command line");
    Ok(token)
}

/// The caller's own account (`GET /api/auth/me`): any role.
#[tracing::instrument(skip(state), fields(user = %caller.user_id))]
pub async fn me(state: &AppState, caller: &Caller) -> AppResult<User> {
    state
        .store
        .find_user(caller.user_id)
        .await?
        .ok_or_else(|| AppError::Unauthorized("User no longer exists".into()))
}

/// A page of the workspaces with their usage, by name (superadmin): `page`/`limit` as every list
/// takes them (`parse_paging`).
#[tracing::instrument(skip(state), fields(user = %caller.user_id))]
pub async fn list_workspaces(
    state: &AppState,
    caller: &Caller,
    filter: &WorkspaceFilter,
) -> AppResult<WorkspacePage> {
    caller.require_superadmin()?;
    let (page, limit) = super::parse_paging(filter.page.as_deref(), filter.limit.as_deref())?;
    let Paged { items, total } = state
        .store
        .list_workspaces(PageSpec { page, limit })
        .await?;
    Ok(WorkspacePage {
        workspaces: items,
        pagination: Pagination::new(page, limit, total),
    })
}

/// On start-up: when `SUPERADMIN_EMAIL` and `SUPERADMIN_PASSWORD` are set and no superadmin exists,
/// creates one. Returns whether it did.
pub async fn ensure_superadmin(state: &AppState) -> AppResult<bool> {
    let (Some(email), Some(password)) = (
        state.config.superadmin_email.clone(),
        state.config.superadmin_password.clone(),
    ) else {
        return Ok(false);
    };
    if state.store.count_users_with_role(Role::Superadmin).await? > 0 {
        return Ok(false);
    }
    let created = create_user(
        state,
        NewUser {
            email,
            password,
            role: Role::Superadmin,
            workspace_id: None,
        },
    )
    .await;
    match created {
        Ok(user) => {
            tracing::info!(target: "video_service", email = %user.email, "first superadmin created");
            Ok(true)
        }
        // Another instance starting at the same moment created it first.
        Err(AppError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(normalise_email(" A@Example.COM ").unwrap(), "a@example.com");
        for bad in ["", "a", "a@b", "@b.c", "a b@c.d", "a@.c", "a@b.", "a@b@c.d"] {
            assert!(normalise_email(bad).is_err(), "{bad}");
        }
    }
}
