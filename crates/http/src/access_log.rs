//! One log line per request, through `tracing`.

use std::time::Instant;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

/// Logs method, path, status and duration under the `baton_http::access` target, so operators
/// can silence it alone (`RUST_LOG=info,baton_http::access=warn`). The query string is left out
/// because it may carry a token (`/ws/...?token=`).
pub async fn log_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_owned();
    let res = next.call(req).await?;
    let status = res.status().as_u16();
    // Rounded to the microsecond: finer digits are noise in a log line.
    let elapsed_ms = (started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0;
    if res.status().is_server_error() {
        tracing::warn!(target: "baton_http::access", %method, %path, status, elapsed_ms, "request failed");
    } else {
        tracing::info!(target: "baton_http::access", %method, %path, status, elapsed_ms, "request");
    }
    Ok(res)
}
