//! The HTTP server: actix-web's `HttpServer`, assembled from its parts so that each connection
//! passes through `JsonErrorAnswers` (see `wire.rs`) on its way to the HTTP/1.1 dispatcher.
//! `HttpServer` offers no way to wrap a connection; everything else here is what it does for a
//! plain-TCP listener: one HTTP/1.1 service per worker over the app, the client timeouts, a
//! graceful stop that closes idle keep-alive connections at once.

use std::future::Future;
use std::net::TcpListener;
use std::time::Duration;

use actix_http::{HttpService, Request, Response, body::MessageBody};
use actix_rt::net::TcpStream;
use actix_server::Server;
use actix_service::{
    IntoServiceFactory, ServiceFactory, ServiceFactoryExt, fn_service, map_config,
};
use actix_web::dev::AppConfig;

use crate::wire::JsonErrorAnswers;

/// How long clients may take, and how long a stop waits for requests in flight.
#[derive(Debug, Clone, Copy)]
pub struct ServerTimeouts {
    /// From connecting to the end of a request's head.
    pub header: Duration,
    /// Idle time between two requests of one connection.
    pub keep_alive: Duration,
    /// For a client to close its side once the server has closed its own.
    pub disconnect: Duration,
    /// For requests in flight to finish once a stop is asked for.
    pub shutdown: Duration,
}

/// Serves the apps `factory` makes (one per worker) on `listener` until `stop` completes.
pub fn serve<F, I, S, B>(
    listener: TcpListener,
    timeouts: ServerTimeouts,
    stop: impl Future<Output = ()> + Send + 'static,
    factory: F,
) -> std::io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    B: MessageBody + 'static,
{
    let address = listener.local_addr()?;
    let builder = Server::build();
    let graceful = builder.graceful_shutdown_signal();
    let server = builder
        .shutdown_timeout(timeouts.shutdown.as_secs())
        .shutdown_signal(stop)
        .listen(format!("baton-{address}"), listener, move || {
            let graceful = graceful.clone();
            let app = factory()
                .into_factory()
                .map_err(|err| err.into().error_response());
            let http = HttpService::build()
                // Told of a stop, each connection closes once its request in flight is
                // answered instead of idling until the shutdown timeout.
                .graceful_shutdown_signal(move || {
                    let graceful = graceful.clone();
                    async move { graceful.notified().await }
                })
                .client_request_timeout(timeouts.header)
                .keep_alive(timeouts.keep_alive)
                .client_disconnect_timeout(timeouts.disconnect)
                .local_addr(address)
                // The app's configuration: `AppConfig::default()` is plain HTTP; the host it
                // names is used only for a request without a `Host` header.
                .h1(map_config(app, |_| AppConfig::default()));
            fn_service(|io: TcpStream| {
                let peer = io.peer_addr().ok();
                std::future::ready(Ok((JsonErrorAnswers::new(io), peer)))
            })
            .and_then(http)
        })?
        .run();
    Ok(server)
}
