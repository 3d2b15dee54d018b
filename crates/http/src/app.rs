//! The actix `App`: middleware, extractor settings, routes and the fallback, in one place so
//! the server binary and the tests build exactly the same thing.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, Error, middleware, web};

use crate::state::AppState;
use crate::{access_log, extract, fallback, routes};

/// The whole API over `state`. Call it in `HttpServer::new`'s factory: once per worker.
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
    base_app()
        .app_data(web::Data::new(state))
        .configure(routes::configure)
}

/// Everything but the routes and the state: error shape, body limits, access log and the
/// fallback for unknown routes. Tests mount their own routes on it to exercise the extractors.
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
        .app_data(extract::json_config())
        .app_data(extract::query_config())
        .app_data(extract::path_config())
        .app_data(extract::payload_config())
        .default_service(web::to(fallback::no_route))
        .wrap(fallback::json_error_responses())
        .wrap(middleware::from_fn(access_log::log_request))
}
