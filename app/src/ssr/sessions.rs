//! Sessions that can end before their token expires: a logout revokes the token's id on the server,
//! and a token whose user was deleted, or whose role or workspace changed, stops working.
//!
//! Both checks read the store at most every `SESSION_RECHECK_SECONDS` per token and per user (a
//! bounded in-process cache), so they cost nothing on a busy dashboard; a logout is seen at once on
//! the instance that did it and within that time on the others.

use crate::model::{ObjectId, Role, Timestamp};
use crate::ssr::auth::Caller;
use crate::ssr::error::{AppError, AppResult};
use crate::ssr::store::Store;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MSG_SESSION_ENDED: &str = "Session has ended; sign in again";
/// The most entries either cache keeps; beyond it, it starts afresh.
const MAX_ENTRIES: usize = 50_000;

/// What is known of a user, for checking their tokens.
type UserFacts = Option<(Role, Option<ObjectId>)>;

pub struct Sessions {
    recheck: Duration,
    revoked: Mutex<HashMap<String, (bool, Instant)>>,
    users: Mutex<HashMap<ObjectId, (UserFacts, Instant)>>,
}

fn cached<K: std::hash::Hash + Eq, V: Clone>(
    map: &Mutex<HashMap<K, (V, Instant)>>,
    key: &K,
    fresh_for: Duration,
) -> Option<V> {
    let map = map.lock().unwrap_or_else(|p| p.into_inner());
    map.get(key)
        .filter(|(_, at)| at.elapsed() < fresh_for)
        .map(|(v, _)| v.clone())
}

fn remember<K: std::hash::Hash + Eq, V>(map: &Mutex<HashMap<K, (V, Instant)>>, key: K, value: V) {
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(key, (value, Instant::now()));
}

impl Sessions {
    pub fn new(recheck: Duration) -> Self {
        Self {
            recheck,
            revoked: Mutex::default(),
            users: Mutex::default(),
        }
    }

    pub fn recheck_interval(&self) -> Duration {
        self.recheck
    }

    /// `Ok` while the caller's session stands.
    pub async fn check(&self, store: &dyn Store, caller: &Caller) -> AppResult<()> {
        let ended = || AppError::Unauthorized(MSG_SESSION_ENDED.into());
        if let Some(session) = &caller.session {
            if session.expired() {
                return Err(AppError::Unauthorized(
                    crate::ssr::auth::MSG_BAD_TOKEN.into(),
                ));
            }
            if let Some(jti) = &session.jti {
                let revoked = match cached(&self.revoked, jti, self.recheck) {
                    Some(r) => r,
                    None => {
                        let r = store.is_session_revoked(jti).await?;
                        remember(&self.revoked, jti.clone(), r);
                        r
                    }
                };
                if revoked {
                    return Err(ended());
                }
            }
        }
        let facts = match cached(&self.users, &caller.user_id, self.recheck) {
            Some(f) => f,
            None => {
                let f = store
                    .find_user(caller.user_id)
                    .await?
                    .map(|u| (u.role, u.workspace_id));
                remember(&self.users, caller.user_id, f);
                f
            }
        };
        match facts {
            Some((role, ws)) if role == caller.role && ws == caller.workspace_id => Ok(()),
            _ => Err(ended()),
        }
    }

    /// Ends the caller's session: its token stops working (here at once, elsewhere within the
    /// recheck interval). A token without an id cannot be revoked; it lives until it expires.
    pub async fn revoke(&self, store: &dyn Store, caller: &Caller) -> AppResult<bool> {
        let Some(session) = &caller.session else {
            return Ok(false);
        };
        let Some(jti) = &session.jti else {
            return Ok(false);
        };
        store
            .revoke_session(jti, Timestamp::from_millis(session.expires_at * 1000))
            .await?;
        remember(&self.revoked, jti.clone(), true);
        tracing::info!(target: "video_service", user = %caller.user_id, "session revoked");
        Ok(true)
    }
}
