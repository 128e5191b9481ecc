//! Black-box HTTP tests: each test starts the real app on 127.0.0.1:0 with a temporary data dir and
//! talks to it over HTTP, like the platform and RCK do.

mod auth;
mod breakage;
mod bulk;
mod callback_auth;
mod daily;
mod dashboard;
mod events;
mod fuzz;
mod legacy;
mod lifecycle;
mod notifications;
mod observe;
mod openapi;
mod operator;
mod products;
mod security;
mod sessions;
mod support;
mod webhooks;
