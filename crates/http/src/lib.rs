//! Baton's actix-web adapter: routes, request and response types, the error policy, and the
//! ports the composition root fills in. It knows the domain and nothing of the database.
//!
//! The server builds [`app`] once per worker over one shared [`AppState`].

mod access_log;
mod app;
pub mod auth;
pub mod backup;
pub mod body;
pub mod body_guard;
pub mod client_ip;
mod detach;
pub mod errors;
pub mod extract;
mod fallback;
mod head;
pub mod live;
pub mod openapi;
pub mod probe;
pub mod prometheus;
pub mod rate_limit;
pub mod routes;
pub mod server;
pub mod state;
pub mod time_format;
mod wire;

pub use app::{app, base_app};
pub use errors::{ApiError, ApiResult};
pub use probe::{DatabaseHealth, HealthProbe, PoolStats};
pub use state::AppState;

#[cfg(test)]
mod tests;
