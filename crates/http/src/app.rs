//! The actix `App`: middleware, extractor settings, routes and the fallback, in one place so
//! the server binary and the tests build exactly the same thing.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, Error, middleware, web};

use crate::state::AppState;
use crate::{
    access_log, auth, body_guard, detach, extract, fallback, head, prometheus, rate_limit, routes,
};

/// The whole API over `state`. Call it in `HttpServer::new`'s factory: once per worker.
///
/// Middleware runs from the last `wrap` inwards: each request first becomes a task of its own
/// (so a client that disconnects cannot cut a storage call in half), the access log sees every
/// request, the Prometheus request metrics count every request with the status its client gets
/// (bans, rate limits and shaped errors included), errors
/// are shaped into JSON, a banned address is refused before it spends its rate limit, the
/// rate limit applies before any handler, and a URL holding NUL is refused before any route
/// reads it. Innermost, request bodies are watched against the server's budget and deadline
/// (`body_guard`), and `HEAD` is routed as `GET` (`head`).
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = Error,
        InitError = (),
    >,
> {
    // The middleware and the authentication extractors read their parts on their own, so
    // none of them depends on the whole `AppState`.
    let rate_limiter = web::Data::from(state.rate_limiter.clone());
    let access = web::Data::from(state.access.clone());
    let prometheus = web::Data::from(state.prometheus.clone());
    let body_guard = web::Data::from(state.body_guard.clone());
    App::new()
        .configure(extractor_settings)
        .app_data(web::Data::new(state))
        .app_data(rate_limiter)
        .app_data(access)
        .app_data(prometheus)
        .app_data(body_guard)
        .configure(routes::configure)
        .wrap(middleware::from_fn(head::head_as_get))
        .wrap(middleware::from_fn(body_guard::watch_bodies))
        .wrap(middleware::from_fn(extract::refuse_nul_in_url))
        .wrap(middleware::from_fn(rate_limit::enforce))
        .wrap(middleware::from_fn(auth::reject_banned))
        .wrap(fallback::json_error_responses())
        .wrap(middleware::from_fn(prometheus::record_requests))
        .wrap(middleware::from_fn(access_log::log_request))
        .wrap(middleware::from_fn(detach::run_to_completion))
}

/// Everything but the routes, the state and the security middleware: error shape, body limits,
/// access log and the fallback for unknown routes. Tests mount their own routes on it to
/// exercise the extractors.
pub fn base_app() -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = Error,
        InitError = (),
    >,
> {
    App::new()
        .configure(extractor_settings)
        .wrap(middleware::from_fn(head::head_as_get))
        .wrap(fallback::json_error_responses())
        .wrap(middleware::from_fn(access_log::log_request))
}

/// How extractors answer bad input (JSON errors, body limits), and the JSON 404 for unknown routes.
fn extractor_settings(cfg: &mut web::ServiceConfig) {
    cfg.app_data(extract::json_config())
        .app_data(extract::query_config())
        .app_data(extract::path_config())
        .app_data(extract::payload_config())
        .default_service(web::to(fallback::no_route));
}
