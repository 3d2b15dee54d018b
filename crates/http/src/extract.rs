//! Extractor configurations, so a body or query string actix cannot parse is answered in the
//! API's error shape rather than actix's default plain text; and the refusal of NUL in a URL,
//! which no extractor would notice.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, PathError, PayloadError, QueryPayloadError};
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest, ResponseError, web};
use baton_domain::ValidationError;
use baton_domain::text::NUL_REFUSED;

use crate::errors::ApiError;

/// The largest body a route accepts. Each route is given the limit of what it can legitimately
/// carry, so a client cannot make the server buffer megabytes on a route whose valid requests
/// are a few hundred bytes; a larger body is a 413 read no further than the limit (a declared
/// `Content-Length` over it is refused before a byte of the body is read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit(usize);

impl BodyLimit {
    /// Commands of a few fields: logins, users, keys, heartbeats, claims, one queue item, a
    /// status change, a trigger or schedule. The largest valid one, a heartbeat with 200
    /// capabilities of 100 characters, is under 100 KB even in four-byte UTF-8.
    pub const SMALL: Self = Self(256 * 1024);
    /// Batches of up to 1000 records (queue items, flow commands, job completions without
    /// outputs), flow documents (at most 1 MB) and a robot's error report (truncated, not
    /// refused, when long).
    pub const BATCH: Self = Self(4 * 1024 * 1024);
    /// Documents: workflow graphs (at most 10 MB), job inputs and outputs, node reports with
    /// their messages.
    pub const DOCUMENT: Self = Self(10 * 1024 * 1024);

    pub const fn bytes(self) -> usize {
        self.0
    }

    /// The limit as the 413's detail and the docs word it: `256 KB`, `4 MB`.
    pub fn describe(self) -> String {
        if self.0 >= 1024 * 1024 {
            format!("{} MB", self.0 / (1024 * 1024))
        } else {
            format!("{} KB", self.0 / 1024)
        }
    }

    /// The 413 of a body over this limit.
    pub fn too_large(self) -> ApiError {
        ApiError::payload_too_large(format!(
            "the request body is larger than this endpoint's limit of {}: send less data per \
             request",
            self.describe()
        ))
    }

    /// The limit of the route `req` reached: its own, or [`BodyLimit::SMALL`] for a route that
    /// sets none.
    pub fn of(req: &HttpRequest) -> Self {
        req.app_data::<Self>().copied().unwrap_or(Self::SMALL)
    }
}

/// Gives `resource` the body limit `limit`, for every extractor that reads a body (`Bytes`,
/// `String`, `web::Json`).
pub fn limit_body<T>(resource: actix_web::Resource<T>, limit: BodyLimit) -> actix_web::Resource<T>
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = Error, InitError = ()>,
{
    resource
        .app_data(web::PayloadConfig::new(limit.bytes()))
        .app_data(json_config().limit(limit.bytes()))
        .app_data(limit)
}

/// `web::Json` settings: the small limit (routes that accept more say so with [`limit_body`])
/// and errors in the API's shape.
///
/// The body is parsed as JSON whatever its `Content-Type` says: the seed documents' clients
/// always send JSON, and a client that forgot the header gets its request served instead of a
/// puzzling 415. Authentication is by header, never by cookie, so accepting a body a browser
/// form could send opens no cross-site request forgery.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(BodyLimit::SMALL.bytes())
        .content_type_required(false)
        .error_handler(|err, req| json_error_of(err, BodyLimit::of(req)).into())
}

/// `web::Query` settings: a query string that does not fit is a 400 in the API's shape.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| query_error(err).into())
}

/// `web::Path` settings: a path segment of the wrong type (e.g. an id that is not a UUID) is a
/// 400 in the API's shape.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, req| path_error(err, req).into())
}

/// Raw body (`Bytes`, `String`) settings: the small limit, like JSON. Their errors are
/// rewritten into the API's shape by the `fallback` module.
pub fn payload_config() -> web::PayloadConfig {
    web::PayloadConfig::new(BodyLimit::SMALL.bytes())
}

/// Maps every way a JSON body can fail to 400 or 413, for a route without a limit of its own.
pub fn json_error(err: JsonPayloadError) -> ApiError {
    json_error_of(err, BodyLimit::SMALL)
}

/// Maps every way a JSON body can fail to 400 or 413 (`limit` words the 413).
fn json_error_of(err: JsonPayloadError, limit: BodyLimit) -> ApiError {
    match err {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            limit.too_large()
        }
        JsonPayloadError::Payload(PayloadError::Overflow) => limit.too_large(),
        JsonPayloadError::Deserialize(err) if err.is_data() => ApiError::bad_request(format!(
            "the JSON body does not have the expected fields and types: {err}"
        )),
        JsonPayloadError::Deserialize(err)
            if err.is_eof() && err.line() == 1 && err.column() == 0 =>
        {
            ApiError::bad_request("the request needs a JSON body, and it was empty")
        }
        JsonPayloadError::Deserialize(err) => {
            ApiError::bad_request(format!("the request body is not valid JSON: {err}"))
        }
        JsonPayloadError::ContentType => {
            ApiError::bad_request("the request body must be JSON (Content-Type: application/json)")
        }
        JsonPayloadError::Payload(err) => {
            ApiError::bad_request(format!("the request body could not be read: {err}"))
        }
        other => ApiError::bad_request(format!("the request body was refused: {other}")),
    }
}

fn query_error(err: QueryPayloadError) -> ApiError {
    match err {
        QueryPayloadError::Deserialize(err) => ApiError::bad_request(format!(
            "the query string has a missing or invalid parameter: {err}"
        )),
        other => ApiError::bad_request(format!("the query string was refused: {other}")),
    }
}

fn path_error(err: PathError, req: &HttpRequest) -> ApiError {
    match err {
        PathError::Deserialize(err) => ApiError::bad_request(format!(
            "the path {} has an invalid segment: {err}",
            req.path()
        )),
        other => ApiError::bad_request(format!("the path was refused: {other}")),
    }
}

/// Refuses, with a 400 naming the parameter, a request whose path or query string holds an
/// encoded NUL (`%00`; a raw NUL byte never gets past the HTTP parser). Routes read path
/// segments and query parameters as plain strings, look records up by them and store some:
/// PostgreSQL refuses NUL in text, so such a request would otherwise fail as a 500 there, and
/// be served on SQLite. Like NUL in a body (see `body.rs`), it is refused the same way on every
/// route; names in a URL that hold other control characters are refused by the domain's
/// value types when the route parses them.
pub async fn refuse_nul_in_url(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    match nul_in_url(req.path(), req.query_string()) {
        None => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
        Some(refusal) => {
            let response = ApiError::validation(refusal).error_response();
            Ok(req.into_response(response).map_into_right_body())
        }
    }
}

/// The parameters of a URL holding an encoded NUL: the query's by name (`status`), the path's
/// as `path` with the segment quoted, so a client sees which of its values to fix.
fn nul_in_url(path: &str, query: &str) -> Option<ValidationError> {
    const NUL: &str = "%00";
    let mut errors = Vec::new();
    for segment in path.split('/').filter(|s| s.contains(NUL)) {
        errors.push(baton_domain::FieldError {
            field: "path".to_owned(),
            message: format!("{NUL_REFUSED}, written %00 in its segment '{segment}'"),
        });
    }
    for pair in query.split('&').filter(|p| p.contains(NUL)) {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        errors.push(baton_domain::FieldError {
            field: name.to_owned(),
            message: NUL_REFUSED.to_owned(),
        });
    }
    (!errors.is_empty()).then_some(ValidationError { errors })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::nul_in_url;

    fn fields(path: &str, query: &str) -> Vec<String> {
        nul_in_url(path, query)
            .map(|e| e.errors.into_iter().map(|e| e.field).collect())
            .unwrap_or_default()
    }

    #[test]
    fn an_encoded_nul_in_a_path_or_query_is_named() {
        assert_eq!(fields("/api/queue/a%00b", ""), ["path"]);
        let refusal = nul_in_url("/api/queue/a%00b", "").unwrap();
        assert_eq!(
            refusal.errors[0].message,
            "must not contain the NUL character (U+0000), written %00 in its segment 'a%00b'"
        );
        assert_eq!(
            fields("/api/v1/queues", "status=NEW&queue_name=q%00&limit=5"),
            ["queue_name"]
        );
        assert_eq!(fields("/x", "%00"), ["%00"]);
    }

    #[test]
    fn other_urls_pass() {
        // `%2500` is a percent sign followed by `00`, not NUL.
        assert!(fields("/api/queue/a%2500b", "q=%2500&r=%01").is_empty());
        assert!(fields("/", "").is_empty());
    }
}
