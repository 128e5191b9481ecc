//! One function per operation. REST handlers and server functions both call these: handlers parse
//! and authorise, services decide, stores persist.

pub mod bulk;
pub mod dashboard;
pub mod events;
pub mod idempotency;
pub mod notifications;
pub mod products;
pub mod stats;
pub mod users;
pub mod videos;
pub mod webhooks;
pub mod workspaces;

use crate::model::{Keyset, ObjectId, Timestamp};
use crate::ssr::error::AppError;

/// Parses an id from a path or body, with the message the caller will see.
pub fn parse_id(raw: &str, what: &str) -> Result<ObjectId, AppError> {
    raw.parse()
        .map_err(|_| AppError::BadRequest(format!("Invalid {what} format")))
}

/// The `cursor` query parameter (a `nextCursor` handed out earlier).
pub fn parse_cursor(raw: Option<&str>) -> Result<Option<Keyset>, AppError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(c) => Keyset::decode(c).map(Some).ok_or_else(|| {
            AppError::BadRequest("cursor is not valid (use pagination.nextCursor)".into())
        }),
    }
}

/// The cursor of the page after a full one (a page shorter than `limit` is the last).
pub fn next_cursor<T>(
    items: &[T],
    limit: u64,
    key: impl Fn(&T) -> (Timestamp, ObjectId),
) -> Option<String> {
    if (items.len() as u64) < limit {
        return None;
    }
    items.last().map(|last| {
        let (at, id) = key(last);
        Keyset { at, id }.encode()
    })
}

/// `page`/`limit` query parameters: page >= 1 (default 1), limit 1..=100 (default 20; larger values
/// are capped at 100, as the spec's "max 100" says).
pub fn parse_paging(page: Option<&str>, limit: Option<&str>) -> Result<(u64, u64), AppError> {
    let too_large = || AppError::BadRequest("page is too large".into());
    let page = match page {
        None | Some("") => 1,
        Some(p) => match p.parse::<u64>() {
            Ok(n) if n >= 1 => n,
            // All digits but past u64: a number, just too large.
            Err(_) if p.bytes().all(|b| b.is_ascii_digit()) => return Err(too_large()),
            _ => {
                return Err(AppError::BadRequest(
                    "page must be a positive integer".into(),
                ))
            }
        },
    };
    let limit = match limit {
        None | Some("") => 20,
        Some(l) => match l.parse::<u64>() {
            Ok(n) if n >= 1 => n.min(100),
            // A huge limit is capped like any other above 100.
            Err(_) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => 100,
            _ => {
                return Err(AppError::BadRequest(
                    "limit must be a positive integer".into(),
                ))
            }
        },
    };
    // The rows to skip must fit the stores' signed 64-bit offsets.
    if (page - 1)
        .checked_mul(limit)
        .is_none_or(|skip| skip > i64::MAX as u64)
    {
        return Err(too_large());
    }
    Ok((page, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_defaults_caps_and_rejects() {
        assert_eq!(parse_paging(None, None).unwrap(), (1, 20));
        assert_eq!(parse_paging(Some("3"), Some("500")).unwrap(), (3, 100));
        assert!(parse_paging(Some("0"), None).is_err());
        assert!(parse_paging(Some("-1"), None).is_err());
        assert!(parse_paging(None, Some("abc")).is_err());
        assert!(parse_paging(None, Some("0")).is_err());
        let msg = |p, l| parse_paging(p, l).unwrap_err().to_string();
        assert_eq!(msg(Some("99999999999999999999"), None), "page is too large");
        assert_eq!(
            msg(Some("999999999999999999"), Some("100")),
            "page is too large"
        );
        assert_eq!(
            parse_paging(Some("2"), Some("99999999999999999999")).unwrap(),
            (2, 100)
        );
    }

    #[test]
    fn ids_get_a_named_message() {
        assert_eq!(
            parse_id("nope", "product id").unwrap_err().to_string(),
            "Invalid product id format"
        );
        assert!(parse_id("507f1f77bcf86cd799439011", "x").is_ok());
    }
}
