//! `HEAD` is answered as `GET` without the body (RFC 9110 §9.3.2), on every route that serves
//! `GET`: health probes, monitors and link checkers send it.
//!
//! Routes are mounted for `GET` only, so this middleware hands a `HEAD` request on as a `GET`.
//! The HTTP layer remembers that the request was `HEAD` and sends the response's status and
//! headers (its `Content-Length` included) without the body. A path that serves no `GET`
//! answers `HEAD` with the same 404 or 405 a `GET` gets.

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;

/// Middleware: routes `HEAD` as `GET`. Register it inside the access log, so the log shows the
/// method the client sent.
pub async fn head_as_get<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}
