//! What answers when no handler of ours did: unknown routes, wrong methods, and errors actix
//! produces itself (body limits of raw extractors, malformed requests). Each is answered in the
//! API's JSON error shape.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{HttpRequest, HttpResponse};

use crate::errors::{ApiError, ApiResult};
use crate::extract::BodyLimit;

/// The app's default service: no route matched the path.
pub async fn no_route(req: HttpRequest) -> ApiResult<HttpResponse> {
    Err(ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}

/// Middleware that rewrites every error response that is not JSON yet (actix's 405 of a
/// resource without that method, its own extractor and protocol errors) into the API's shape,
/// keeping the status and headers. Responses that already are JSON pass untouched.
pub fn json_error_responses<B: MessageBody + 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(rewrite_unless_json)
}

fn rewrite_unless_json<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let error = error_for_status(res.status(), res.request());
    let (req, res) = res.into_parts();
    let mut res = res.set_body(BoxBody::new(error.body_json()));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res.headers_mut().remove(header::CONTENT_LENGTH);
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, res).map_into_right_body(),
    ))
}

/// The body for an error response actix produced without one of ours.
fn error_for_status(status: StatusCode, req: &HttpRequest) -> ApiError {
    let method = req.method();
    let path = req.path();
    match status {
        StatusCode::NOT_FOUND => ApiError::not_found(format!("no route for {method} {path}")),
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::method_not_allowed(format!("{method} is not allowed on {path}"))
        }
        StatusCode::PAYLOAD_TOO_LARGE => BodyLimit::of(req).too_large(),
        // Server errors keep their cause out of the response; actix has logged it.
        status if status.is_server_error() => ApiError::new(
            status,
            "the server failed to handle this request; please retry later",
        ),
        status => ApiError::new(
            status,
            format!("the request to {method} {path} was refused"),
        ),
    }
}
