//! One log line per request, through `tracing`.

use std::time::Instant;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

/// The path of webhook URLs whose last segment is the webhook's secret.
const WEBHOOK_PREFIX: &str = "/api/v1/webhooks/";

/// The path as it may be logged: a webhook URL's token is its only credential, so it is
/// replaced by a placeholder.
fn loggable_path(path: &str) -> String {
    match path.strip_prefix(WEBHOOK_PREFIX) {
        Some(_) => format!("{WEBHOOK_PREFIX}<token>"),
        None => path.to_owned(),
    }
}

/// Logs method, path, status and duration under the `baton_http::access` target, so operators
/// can silence it alone (`RUST_LOG=info,baton_http::access=warn`). The query string is left out
/// because it may carry a token (`/ws/...?token=`).
pub async fn log_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = loggable_path(req.path());
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

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn webhook_tokens_never_reach_the_log() {
        let logged = loggable_path("/api/v1/webhooks/s3cr3t-token-value");
        assert_eq!(logged, "/api/v1/webhooks/<token>");
        assert!(!logged.contains("s3cr3t"));
    }

    #[test]
    fn other_paths_are_logged_as_they_are() {
        assert_eq!(loggable_path("/api/v1/jobs/42"), "/api/v1/jobs/42");
        assert_eq!(loggable_path("/api/v1/webhooks"), "/api/v1/webhooks");
    }
}
