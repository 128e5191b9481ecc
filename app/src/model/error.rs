//! What a server function can fail with, as the dashboard sees it: the HTTP status and message of
//! the service's error (typed, so the page can tell "signed out" from "not allowed" without parsing
//! text), or a transport problem of the call itself.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum FnError {
    /// The service refused: its status (401, 403, 404, 409, ...) and its public message.
    #[error("{message}")]
    Api { status: u16, message: String },
    /// The call did not get through (network, encoding, a server function missing).
    #[error("{0}")]
    Call(String),
}

impl FnError {
    pub fn status(&self) -> Option<u16> {
        match self {
            FnError::Api { status, .. } => Some(*status),
            FnError::Call(_) => None,
        }
    }

    /// Whether the caller must sign in (again).
    pub fn is_unauthorized(&self) -> bool {
        self.status() == Some(401)
    }

    pub fn is_forbidden(&self) -> bool {
        self.status() == Some(403)
    }
}

impl FromServerFnError for FnError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        FnError::Call(value.to_string())
    }
}

#[cfg(feature = "ssr")]
impl From<crate::ssr::error::AppError> for FnError {
    fn from(e: crate::ssr::error::AppError) -> Self {
        // Where a server function's error becomes its answer: logged here, as REST does.
        e.log();
        FnError::Api {
            status: e.status().as_u16(),
            message: e.public_message(),
        }
    }
}
