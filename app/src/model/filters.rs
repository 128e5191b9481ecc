//! The query strings of the lists, typed once. Each filter is what arrives on the wire: axum reads it
//! as `Query<EventFilter>`, a server function takes it as its one argument, and a page keeps it as its
//! URL state. Values stay text until they are validated, so a bad value gets the contract's message
//! (`"page must be a positive integer"`, ...) instead of a deserialiser's.

use serde::{Deserialize, Serialize};

/// `GET /api/webhook-events` and the events page.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(rename_all = "camelCase", default)]
pub struct EventFilter {
    pub page: Option<String>,
    pub limit: Option<String>,
    /// `/videos/success` or `/videos/failure` (the `/internal` prefix is accepted too).
    pub endpoint: Option<String>,
    pub video_id: Option<String>,
    /// RFC 3339, inclusive.
    pub from: Option<String>,
    /// RFC 3339, exclusive.
    pub to: Option<String>,
    /// `pagination.nextCursor` of the previous page: the next page by keyset, whatever the log's
    /// size (`page` is then ignored).
    pub cursor: Option<String>,
}

/// `GET /api/videos` and the videos page.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "ssr",
    derive(utoipa::IntoParams, utoipa::ToSchema),
    into_params(parameter_in = Query)
)]
#[serde(rename_all = "camelCase", default)]
pub struct VideoFilter {
    pub page: Option<String>,
    pub limit: Option<String>,
    /// `pending`, `generating`, `completed` or `failed`.
    pub status: Option<String>,
    pub workspace_id: Option<String>,
    pub video_id: Option<String>,
    /// `1`/`true`/`on`: only videos stuck in `generating`.
    pub stuck: Option<String>,
    /// `pagination.nextCursor` of the previous page (`page` is then ignored).
    pub cursor: Option<String>,
    /// Only videos whose error starts with this text (the Overview's failure reasons link here).
    pub error: Option<String>,
}

/// `GET /api/products`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(rename_all = "camelCase", default)]
pub struct ProductFilter {
    pub page: Option<String>,
    pub limit: Option<String>,
    /// A superadmin may name any workspace; others only their own.
    pub workspace_id: Option<String>,
}

/// `GET /api/workspaces` and `/api/workspaces/usage` (and the workspaces page), by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(rename_all = "camelCase", default)]
pub struct WorkspaceFilter {
    pub page: Option<String>,
    pub limit: Option<String>,
}

impl WithPage for WorkspaceFilter {
    fn with_page(&self, page: u64) -> Self {
        Self {
            page: Some(page.to_string()),
            ..self.clone()
        }
    }
}

/// `GET /api/webhook-events/stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(rename_all = "camelCase", default)]
pub struct StatsQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    /// `hour`, `day`, `week` or `month`.
    pub bucket: Option<String>,
}

/// A list filter that has a page, so a pager can link to its neighbours with the rest kept.
pub trait WithPage: Serialize + Clone {
    fn with_page(&self, page: u64) -> Self;
}

impl WithPage for EventFilter {
    fn with_page(&self, page: u64) -> Self {
        Self {
            page: Some(page.to_string()),
            cursor: None,
            ..self.clone()
        }
    }
}

impl WithPage for VideoFilter {
    fn with_page(&self, page: u64) -> Self {
        Self {
            page: Some(page.to_string()),
            cursor: None,
            ..self.clone()
        }
    }
}

/// The `?a=b&c=d` form of a filter (empty values left out), for links that keep the page's state.
pub fn query_string<T: Serialize>(filter: &T) -> String {
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(filter) else {
        return String::new();
    };
    let pairs: Vec<String> = fields
        .iter()
        .filter_map(|(k, v)| Some((k, v.as_str().filter(|s| !s.is_empty())?)))
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    if pairs.is_empty() {
        String::new()
    } else {
        format!("?{}", pairs.join("&"))
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters and the `/` and `:` a query may
/// hold as they are (paths and times stay readable).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' | b':' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_keep_set_values_only_and_encode_them() {
        let f = EventFilter {
            page: Some("2".into()),
            endpoint: Some("/videos/failure".into()),
            from: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(query_string(&f), "?page=2&endpoint=/videos/failure");
        let t = EventFilter {
            video_id: Some("a b&c".into()),
            ..Default::default()
        };
        assert_eq!(query_string(&t), "?videoId=a%20b%26c");
        assert_eq!(query_string(&VideoFilter::default()), "");
    }

    #[test]
    fn wire_names_are_camel_case() {
        let f: VideoFilter =
            serde_json::from_str(r#"{"workspaceId":"w","videoId":"v","stuck":"1"}"#).unwrap();
        assert_eq!(f.workspace_id.as_deref(), Some("w"));
        assert_eq!(f.video_id.as_deref(), Some("v"));
    }
}

/// `GET /api/notifications` and the delivery log page.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(rename_all = "camelCase", default)]
pub struct NotificationFilter {
    pub page: Option<String>,
    pub limit: Option<String>,
    pub workspace_id: Option<String>,
    /// `pending`, `delivered` or `failed`.
    pub status: Option<String>,
}

impl WithPage for NotificationFilter {
    fn with_page(&self, page: u64) -> Self {
        Self {
            page: Some(page.to_string()),
            ..self.clone()
        }
    }
}
