//! Every route of the API. Each module owns one resource and exposes a `configure` function;
//! this module decides where each is mounted.
//!
//! Mount paths with `web::resource(path).route(web::get().to(…))`, not `cfg.route(path, …)`:
//! a resource answers a method it lacks with 405, while `cfg.route` turns it into a 404.

use actix_web::web;

pub mod agents;
pub mod api_keys;
pub mod auth;
pub mod browser_session;
pub mod console;
pub mod flows;
pub mod health;
pub mod jobs;
pub mod metrics;
pub mod prometheus;
pub mod queues;
pub mod robot_batch;
pub mod robot_protocol;
pub mod robots;
pub mod schedules;
pub mod triggers;
pub mod users;
pub mod workflows;
pub mod ws;

/// Mounts every route: the root-level paths, then the `/api/v1` scope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // PyOrchestrator's `/api/queue` and `/api/trigger` live at the root, beside their resources.
    cfg.configure(health::configure)
        .configure(prometheus::configure)
        .configure(queues::configure_root)
        .configure(triggers::configure_root)
        .configure(ws::configure)
        .configure(crate::openapi::docs::configure)
        .configure(console::configure);
    cfg.service(web::scope("/api/v1").configure(api_v1));
}

/// The routes under `/api/v1`.
fn api_v1(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::configure)
        .configure(crate::openapi::configure)
        .configure(auth::configure)
        .configure(browser_session::configure)
        .configure(users::configure)
        .configure(api_keys::configure)
        .configure(robots::configure)
        .configure(jobs::configure)
        .configure(metrics::configure)
        .configure(robot_protocol::configure)
        .configure(robot_batch::configure)
        .configure(queues::configure)
        .configure(triggers::configure)
        .configure(schedules::configure)
        .configure(workflows::configure)
        .configure(agents::configure)
        .configure(flows::configure);
}
