//! JWTs (HS256) and password hashing (argon2id).

use crate::model::{ObjectId, Role, User};
use crate::ssr::error::AppError;
use crate::ssr::state::AppState;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The token's claims, as the platform's other services read them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub workspace_id: Option<String>,
    pub iat: i64,
    pub exp: i64,
    /// The token's id, so a logout can revoke it (tokens of other issuers may have none).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub aud: Option<String>,
}

/// Who is calling, once the token has been checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Caller {
    pub user_id: ObjectId,
    pub role: Role,
    pub workspace_id: Option<ObjectId>,
    /// The token it came with (`None` for callers made by the server itself, such as the demo).
    pub session: Option<SessionRef>,
}

/// The token a caller presented: its id (if it has one) and when it expires.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionRef {
    pub jti: Option<String>,
    pub expires_at: i64,
}

impl SessionRef {
    pub fn expired(&self) -> bool {
        chrono::Utc::now().timestamp() >= self.expires_at
    }
}

impl Caller {
    pub fn is_superadmin(&self) -> bool {
        self.role == Role::Superadmin
    }

    pub fn require_superadmin(&self) -> Result<(), AppError> {
        if self.is_superadmin() {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "Forbidden: SUPERADMIN role required".into(),
            ))
        }
    }

    /// The caller's workspace, which every workspace-scoped operation needs.
    pub fn workspace(&self) -> Result<ObjectId, AppError> {
        self.workspace_id
            .ok_or_else(|| AppError::Forbidden("Your account has no workspace".into()))
    }
}

fn bearer(parts: &http::request::Parts) -> Option<Result<&str, AppError>> {
    let value = parts.headers.get(http::header::AUTHORIZATION)?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    Some(token.ok_or_else(|| {
        AppError::Unauthorized("Authorization header must be `Bearer <token>`".into())
    }))
}

/// The one way a request says who it is: `Authorization: Bearer <jwt>`, or else the dashboard's
/// session cookie. REST handlers take `caller: Caller`; server functions get it with
/// `leptos_axum::extract_with_state`.
impl axum::extract::FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &AppState,
    ) -> Result<Self, AppError> {
        let token = match bearer(parts) {
            Some(t) => t?,
            None => cookie(&parts.headers, SESSION_COOKIE)
                .ok_or_else(|| AppError::Unauthorized(MSG_NO_TOKEN.into()))?,
        };
        authenticate(state, token).await
    }
}

/// A token's caller, if the token is valid and its session still stands: not revoked, its user still
/// there with the same role and workspace (checked at most every `SESSION_RECHECK_SECONDS`).
pub async fn authenticate(state: &AppState, token: &str) -> Result<Caller, AppError> {
    let caller = state.jwt.verify(token)?;
    state.sessions.check(&*state.store, &caller).await?;
    Ok(caller)
}

#[derive(Clone)]
pub struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl_secs: i64,
    /// `JWT_ISSUER` / `JWT_AUDIENCE`: put in our tokens and required on every token when set.
    issuer: Option<String>,
    audience: Option<String>,
}

pub const MSG_NO_TOKEN: &str = "Authentication required";

/// The dashboard's session cookie (HttpOnly, SameSite=Strict); it holds the same JWT as the API uses.
pub const SESSION_COOKIE: &str = "racky_session";

/// The value of a cookie in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` for a new session (or, with `None`, for signing out).
pub fn session_cookie(token: Option<&str>, max_age_secs: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match token {
        Some(t) => format!(
            "{SESSION_COOKIE}={t}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}{secure}"
        ),
        None => format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}"),
    }
}
pub const MSG_BAD_TOKEN: &str = "Invalid or expired token";

impl Jwt {
    pub fn new(secret: &str, ttl_hours: u64) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            ttl_secs: (ttl_hours as i64).saturating_mul(3600),
            issuer: None,
            audience: None,
        }
    }

    pub fn with_issuer_and_audience(
        mut self,
        issuer: Option<String>,
        audience: Option<String>,
    ) -> Self {
        self.issuer = issuer;
        self.audience = audience;
        self
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    pub fn issue(&self, user: &User) -> Result<(String, Claims), AppError> {
        self.issue_for(user, self.ttl_secs)
    }

    /// A token that lives `ttl_secs` (the command line's `server token --ttl-hours`).
    pub fn issue_for(&self, user: &User, ttl_secs: i64) -> Result<(String, Claims), AppError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user.id.to_string(),
            role: user.role,
            workspace_id: user.workspace_id.map(|w| w.to_string()),
            iat: now,
            exp: now + ttl_secs,
            jti: Some(new_token_id()),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AppError::internal("signing a token", e))?;
        Ok((token, claims))
    }

    /// Checks signature, algorithm and expiry (no leeway: an expired token is expired).
    pub fn verify(&self, token: &str) -> Result<Caller, AppError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        let mut required = vec!["exp", "sub"];
        match &self.issuer {
            Some(iss) => {
                validation.set_issuer(&[iss]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &self.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        let data = decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| AppError::Unauthorized(MSG_BAD_TOKEN.into()))?;
        let c = data.claims;
        let user_id = c
            .sub
            .parse()
            .map_err(|_| AppError::Unauthorized(MSG_BAD_TOKEN.into()))?;
        let workspace_id = match c.workspace_id {
            None => None,
            Some(w) => Some(
                w.parse()
                    .map_err(|_| AppError::Unauthorized(MSG_BAD_TOKEN.into()))?,
            ),
        };
        Ok(Caller {
            user_id,
            role: c.role,
            workspace_id,
            session: Some(SessionRef {
                jti: c.jti,
                expires_at: c.exp,
            }),
        })
    }
}

/// 128 random bits, hex: a token's id.
pub fn new_token_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    crate::model::hex(&b)
}

/// Hashes a password with argon2id and a random salt (PHC string format).
pub fn hash_password(password: &str) -> Result<String, AppError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::internal("hashing a password", e.to_string()))
}

/// Checks a password against an argon2 hash (ours) or a bcrypt one (`$2a$`, `$2b$`, `$2y$`: users
/// written by the platform's original service). Anything else never verifies.
pub fn verify_password(password: &str, hash: &str) -> bool {
    if is_bcrypt(hash) {
        return bcrypt::verify(password, hash).unwrap_or(false);
    }
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A bcrypt hash, as bcryptjs writes it.
pub fn is_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p))
}

/// Whether a hash that just verified should be replaced by an argon2 one.
pub fn needs_rehash(hash: &str) -> bool {
    is_bcrypt(hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Timestamp;

    fn user(role: Role) -> User {
        User {
            id: ObjectId::new(),
            email: "a@b.c".into(),
            role,
            workspace_id: Some(ObjectId::new()),
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
        }
    }

    #[test]
    fn issued_tokens_verify_and_carry_the_claims() {
        let jwt = Jwt::new("0123456789abcdef0123456789abcdef", 1);
        let u = user(Role::Admin);
        let (token, claims) = jwt.issue(&u).unwrap();
        assert_eq!(claims.exp - claims.iat, 3600);
        let caller = jwt.verify(&token).unwrap();
        assert_eq!(caller.user_id, u.id);
        assert_eq!(caller.role, Role::Admin);
        assert_eq!(caller.workspace_id, u.workspace_id);
        assert_eq!(claims.jti.as_ref().map(String::len), Some(32));
    }

    #[test]
    fn issuer_and_audience_are_put_in_and_required_when_set() {
        let secret = "0123456789abcdef0123456789abcdef";
        let ours = Jwt::new(secret, 1)
            .with_issuer_and_audience(Some("racky".into()), Some("videos".into()));
        let plain = Jwt::new(secret, 1);
        let (token, claims) = ours.issue(&user(Role::User)).unwrap();
        assert_eq!(
            (claims.iss.as_deref(), claims.aud.as_deref()),
            (Some("racky"), Some("videos"))
        );
        assert!(ours.verify(&token).is_ok());
        let (foreign, _) = plain.issue(&user(Role::User)).unwrap();
        assert!(
            ours.verify(&foreign).is_err(),
            "a token without iss/aud is refused"
        );
        assert!(plain.verify(&foreign).is_ok() && plain.verify(&token).is_ok());
    }

    #[test]
    fn other_secrets_and_expired_tokens_are_refused() {
        let jwt = Jwt::new("0123456789abcdef0123456789abcdef", 1);
        let other = Jwt::new("another-secret-another-secret-000", 1);
        let (token, _) = other.issue(&user(Role::Superadmin)).unwrap();
        assert!(jwt.verify(&token).is_err());
        let expired = Jwt::new("0123456789abcdef0123456789abcdef", 0);
        let mut c = Claims {
            sub: ObjectId::new().to_string(),
            role: Role::User,
            workspace_id: None,
            iat: 0,
            exp: chrono::Utc::now().timestamp() - 5,
            jti: None,
            iss: None,
            aud: None,
        };
        let t = encode(&Header::new(Algorithm::HS256), &c, &expired.encoding).unwrap();
        assert!(jwt.verify(&t).is_err());
        c.exp += 3600;
        let t = encode(&Header::new(Algorithm::HS512), &c, &expired.encoding).unwrap();
        assert!(jwt.verify(&t).is_err(), "only HS256 is accepted");
    }

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(!needs_rehash(&h));
    }

    #[test]
    fn bcrypt_hashes_of_the_original_service_verify() {
        // As bcryptjs writes them ($2a$ and $2b$), cost 4 to keep the test fast.
        let b = bcrypt::hash_with_salt("correct horse", 4, [7; 16]).unwrap();
        for h in [
            b.format_for_version(bcrypt::Version::TwoA),
            b.format_for_version(bcrypt::Version::TwoB),
            b.format_for_version(bcrypt::Version::TwoY),
        ] {
            assert!(verify_password("correct horse", &h), "{h}");
            assert!(!verify_password("wrong", &h));
            assert!(needs_rehash(&h));
        }
    }
}
