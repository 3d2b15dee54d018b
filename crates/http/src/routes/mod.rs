//! Every route of the API. Each module owns one resource and exposes a `configure` function;
//! this module decides where each is mounted.
//!
//! Mount paths with `web::resource(path).route(web::get().to(…))`, not `cfg.route(path, …)`:
//! a resource answers a method it lacks with 405, while `cfg.route` turns it into a 404.

use actix_web::web;

pub mod health;

/// Mounts every route: the root-level paths, then the `/api/v1` scope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::configure);
    cfg.service(web::scope("/api/v1").configure(api_v1));
}

/// The routes under `/api/v1`.
fn api_v1(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::configure);
}
