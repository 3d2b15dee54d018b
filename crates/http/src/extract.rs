//! Extractor configurations, so a body or query string actix cannot parse is answered in the
//! API's error shape rather than actix's default plain text.

use actix_web::error::{JsonPayloadError, PathError, PayloadError, QueryPayloadError};
use actix_web::{HttpRequest, web};

use crate::errors::ApiError;

/// The largest JSON body any endpoint accepts (10 MB; uploads have their own limit).
pub const JSON_LIMIT_BYTES: usize = 10 * 1024 * 1024;

/// `web::Json` settings: the 10 MB limit and errors in the API's shape.
///
/// The body is parsed as JSON whatever its `Content-Type` says: the seed documents' clients
/// always send JSON, and a client that forgot the header gets its request served instead of a
/// puzzling 415. Authentication is by header, never by cookie, so accepting a body a browser
/// form could send opens no cross-site request forgery.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(JSON_LIMIT_BYTES)
        .content_type_required(false)
        .error_handler(|err, _req| json_error(err).into())
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

/// Raw body (`Bytes`, `String`) settings: the same 10 MB limit as JSON. Their errors are
/// rewritten into the API's shape by the `fallback` module.
pub fn payload_config() -> web::PayloadConfig {
    web::PayloadConfig::new(JSON_LIMIT_BYTES)
}

fn too_large() -> ApiError {
    ApiError::payload_too_large(format!(
        "the request body is larger than the limit of {} MB: send less data per request",
        JSON_LIMIT_BYTES / (1024 * 1024)
    ))
}

/// Maps every way a JSON body can fail to 400 or 413.
pub fn json_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            too_large()
        }
        JsonPayloadError::Payload(PayloadError::Overflow) => too_large(),
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
