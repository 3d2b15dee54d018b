//! The one error policy of the HTTP API.
//!
//! Every failure a client sees is an [`ApiError`], answered in one JSON shape:
//! `{"error": "<short reason>", "detail": "<what was wrong and how to fix it>"}`, plus
//! `errors` (a per-field list) on validation failures and `retry_after` on 429. Domain and
//! storage errors convert into it with `?`, so handlers never build responses for failures by
//! hand. Causes a client cannot act on (driver text, internal state) are logged here and
//! answered with a generic message: no SQL text, stack trace or secret reaches a response.

use std::borrow::Cow;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use baton_domain::services::ServiceError;
use baton_domain::{FieldError, RepoError, TransitionError, ValidationError};
use serde::Serialize;

/// The `Retry-After` of a 503 for an unavailable database: a broken connection is replaced
/// on the next request and a saturated pool frees up within seconds, so a short pause is enough.
pub const UNAVAILABLE_RETRY_SECONDS: u64 = 1;

/// The result type of every handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// An error answered to the client in the API's JSON error shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    error: Cow<'static, str>,
    detail: Cow<'static, str>,
    errors: Vec<FieldError>,
    retry_after: Option<u64>,
}

/// The JSON body of every error response.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<Vec<FieldErrorBody<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
}

#[derive(Debug, Serialize)]
struct FieldErrorBody<'a> {
    field: &'a str,
    message: &'a str,
}

impl ApiError {
    /// An error with `status`, its standard reason phrase as `error`, and `detail`.
    pub fn new(status: StatusCode, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            error: Cow::Borrowed(status.canonical_reason().unwrap_or("Error")),
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    /// 400: the request cannot be understood (malformed JSON, wrong types, bad query).
    pub fn bad_request(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 400 with the per-field list, so a client learns every problem of a request at once.
    pub fn validation(err: ValidationError) -> Self {
        let detail = if err.errors.len() == 1 {
            format!("the request has an invalid field: {err}")
        } else {
            format!("the request has {} invalid fields: {err}", err.errors.len())
        };
        Self {
            errors: err.errors,
            ..Self::bad_request(detail)
        }
    }

    /// 401: no credentials, or credentials that do not check out.
    pub fn unauthorized(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }

    /// 403: the caller is known but may not do this (missing role, banned IP).
    pub fn forbidden(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    /// 403 for an address banned after repeated failed authentications (docs/security.md).
    pub fn banned(until: baton_domain::Timestamp) -> Self {
        let until = crate::time_format::rfc3339(until);
        Self::forbidden(format!(
            "this address is banned until {until} after repeated failed authentications"
        ))
    }

    /// 404: the addressed record or route does not exist.
    pub fn not_found(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    /// 405: the path exists but not with this method.
    pub fn method_not_allowed(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, detail)
    }

    /// 409: the change conflicts with the record's state or with another record.
    pub fn conflict(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }

    /// 413: the body is larger than the endpoint accepts.
    pub fn payload_too_large(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, detail)
    }

    /// 429 with `retry_after` seconds in the body and the `Retry-After` header. The short reason
    /// is the CasareRPA document's "Rate limit exceeded".
    pub fn too_many_requests(retry_after_seconds: u64) -> Self {
        Self {
            error: Cow::Borrowed("Rate limit exceeded"),
            retry_after: Some(retry_after_seconds),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many requests from this client: retry in {retry_after_seconds} s"),
            )
        }
    }

    /// 503: a dependency (the database) is unavailable; the client may retry later.
    pub fn service_unavailable(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, detail)
    }

    /// 503 with `retry_after` seconds in the body and the `Retry-After` header: the server
    /// cannot serve this now (a database connection broke, or it holds as many request bodies
    /// as it may), and the same request is likely to succeed after the pause.
    pub fn unavailable_for(retry_after_seconds: u64, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            retry_after: Some(retry_after_seconds),
            ..Self::service_unavailable(detail)
        }
    }

    /// 408: the client took longer than the server waits to send its request.
    pub fn request_timeout(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::REQUEST_TIMEOUT, detail)
    }

    /// 500 for a failure no client can fix. The cause is logged here with `tracing::error` and
    /// never put into the response, since it may hold driver text or internal state.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(cause = %cause, "internal error answered with 500");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the server failed to handle this request; it has been logged, please retry later",
        )
    }

    /// Replaces the short reason, for the few places where a seed document fixes its wording.
    pub fn with_error(mut self, error: impl Into<Cow<'static, str>>) -> Self {
        self.error = error.into();
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn error(&self) -> &str {
        &self.error
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }

    pub fn field_errors(&self) -> &[FieldError] {
        &self.errors
    }

    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// The response body as JSON text.
    pub fn body_json(&self) -> String {
        let body = ErrorBody {
            error: &self.error,
            detail: &self.detail,
            errors: (!self.errors.is_empty()).then(|| {
                self.errors
                    .iter()
                    .map(|e| FieldErrorBody {
                        field: &e.field,
                        message: &e.message,
                    })
                    .collect()
            }),
            retry_after: self.retry_after,
        };
        // Serialising a struct of strings and integers cannot fail; the fallback keeps the
        // response well-formed JSON even so.
        serde_json::to_string(&body).unwrap_or_else(|_| {
            r#"{"error":"Internal Server Error","detail":"the error could not be encoded"}"#
                .to_owned()
        })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.error,
            self.detail
        )
    }
}

impl std::error::Error for ApiError {}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ));
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 9110 asks a 401 to name the scheme the client should use.
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        response.body(self.body_json())
    }
}

impl From<ValidationError> for ApiError {
    fn from(err: ValidationError) -> Self {
        Self::validation(err)
    }
}

impl From<TransitionError> for ApiError {
    fn from(err: TransitionError) -> Self {
        Self::conflict(err.to_string())
    }
}

impl From<RepoError> for ApiError {
    fn from(err: RepoError) -> Self {
        match err {
            RepoError::NotFound(entity) => Self::not_found(format!(
                "{entity} not found: check the id or name in the path"
            )),
            // Storage words conflicts for clients (which uniqueness rule or version check
            // refused the write), so the message is shown as it is.
            RepoError::Conflict(message) => Self::conflict(message),
            RepoError::Unavailable(cause) => {
                tracing::warn!(cause = %cause, "storage unavailable, answered with 503");
                Self::unavailable_for(
                    UNAVAILABLE_RETRY_SECONDS,
                    "the database is unavailable right now; retry in a few seconds",
                )
            }
            RepoError::Internal(cause) => Self::internal(format!("storage: {cause}")),
        }
    }
}

/// A use case's failure: 400, 409, or the storage's own status, as its parts map alone.
impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Invalid(e) => e.into(),
            ServiceError::Transition(e) => e.into(),
            ServiceError::Repo(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::to_bytes;
    use serde_json::{Value, json};

    use super::*;

    async fn rendered(err: ApiError) -> (StatusCode, Option<String>, Value) {
        let response = err.error_response();
        let status = response.status();
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE).unwrap(),
            "application/json"
        );
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = to_bytes(response.into_body()).await.unwrap();
        (status, retry_after, serde_json::from_slice(&body).unwrap())
    }

    #[actix_web::test]
    async fn plain_errors_have_exactly_error_and_detail() {
        let (status, _, body) = rendered(ApiError::not_found("no job with id 42")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            body,
            json!({"error": "Not Found", "detail": "no job with id 42"})
        );
    }

    #[actix_web::test]
    async fn validation_errors_are_400_with_a_field_list() {
        let err = ValidationError::field("queue_name", "must be 1-100 characters").merge(
            ValidationError::field("data", "must be at most 2000 characters"),
        );
        let (status, _, body) = rendered(err.into()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "Bad Request");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("2 invalid fields")
        );
        assert_eq!(
            body["errors"],
            json!([
                {"field": "queue_name", "message": "must be 1-100 characters"},
                {"field": "data", "message": "must be at most 2000 characters"},
            ])
        );
    }

    #[actix_web::test]
    async fn transitions_are_409() {
        let err = TransitionError {
            entity: "job",
            action: "complete",
            state: "cancelled".into(),
        };
        let (status, _, body) = rendered(err.into()).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["error"], "Conflict");
        assert_eq!(body["detail"], "cannot complete a job that is cancelled");
    }

    #[actix_web::test]
    async fn repository_errors_map_to_404_409_503_and_500() {
        let (status, _, body) = rendered(RepoError::NotFound("queue item").into()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .starts_with("queue item not found")
        );

        let (status, _, body) =
            rendered(RepoError::Conflict("a trigger named nightly exists".into()).into()).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["detail"], "a trigger named nightly exists");

        let (status, retry_after, body) =
            rendered(RepoError::Unavailable("pool timed out after 30s".into()).into()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert_eq!(body["retry_after"], 1);
        assert!(!body.to_string().contains("pool timed out"));

        let driver_text = "ERROR: relation \"jobs\" does not exist at character 15";
        let (status, _, body) = rendered(RepoError::Internal(driver_text.into()).into()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"], "Internal Server Error");
        assert!(!body.to_string().contains("relation"), "driver text leaked");
    }

    #[actix_web::test]
    async fn service_errors_map_as_their_parts_do() {
        let invalid = ServiceError::Invalid(ValidationError::field("priority", "too high"));
        let (status, _, body) = rendered(invalid.into()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["errors"][0]["field"], "priority");

        let transition = ServiceError::Transition(TransitionError {
            entity: "job",
            action: "cancel",
            state: "completed".into(),
        });
        let (status, _, _) = rendered(transition.into()).await;
        assert_eq!(status, StatusCode::CONFLICT);

        let (status, _, _) = rendered(ServiceError::Repo(RepoError::NotFound("job")).into()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[actix_web::test]
    async fn rate_limits_carry_retry_after_in_body_and_header() {
        let (status, header, body) = rendered(ApiError::too_many_requests(42)).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(header.as_deref(), Some("42"));
        assert_eq!(body["error"], "Rate limit exceeded");
        assert_eq!(body["retry_after"], 42);
    }

    #[actix_web::test]
    async fn auth_and_size_constructors_use_their_status() {
        for (err, status, reason) in [
            (ApiError::unauthorized("x"), 401, "Unauthorized"),
            (ApiError::forbidden("x"), 403, "Forbidden"),
            (ApiError::payload_too_large("x"), 413, "Payload Too Large"),
            (ApiError::method_not_allowed("x"), 405, "Method Not Allowed"),
        ] {
            let (got, _, body) = rendered(err).await;
            assert_eq!(got.as_u16(), status);
            assert_eq!(body, json!({"error": reason, "detail": "x"}));
        }
    }

    #[test]
    fn internal_errors_never_show_their_cause() {
        let err = ApiError::internal("password=hunter2 in connection string");
        assert!(!err.body_json().contains("hunter2"));
        assert!(!err.to_string().contains("hunter2"));
    }
}
