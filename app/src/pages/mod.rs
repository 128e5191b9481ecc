//! One module per route.
pub mod events;
pub mod login;
pub mod notifications;
pub mod overview;
pub mod videos;
pub mod workspaces;
