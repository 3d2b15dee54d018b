//! App-level tests of the error policy: every failure a request can meet before or after a
//! handler answers in the one JSON shape.

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpResponse, test, web};
use baton_domain::ValidationError;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::errors::{ApiError, ApiResult};
use crate::extract::{BodyLimit, limit_body};

#[derive(Debug, Deserialize)]
struct Item {
    name: String,
    #[allow(dead_code)]
    count: u32,
}

#[derive(Debug, Deserialize)]
struct Paging {
    #[allow(dead_code)]
    limit: u32,
}

async fn echo(item: web::Json<Item>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"name": item.name}))
}

async fn raw(body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok().json(json!({"length": body.len()}))
}

async fn page(_query: web::Query<Paging>) -> HttpResponse {
    HttpResponse::Ok().finish()
}

async fn by_id(_id: web::Path<u32>) -> HttpResponse {
    HttpResponse::Ok().finish()
}

async fn invalid() -> ApiResult<HttpResponse> {
    Err(ValidationError::field("name", "must not be empty").into())
}

async fn failing() -> ApiResult<HttpResponse> {
    Err(ApiError::internal("secret driver text"))
}

async fn plain_text_error() -> actix_web::Result<HttpResponse> {
    Err(actix_web::error::ErrorInternalServerError(
        "plain text with internals",
    ))
}

/// Sends `req` to the base app with the test routes and returns status and JSON body.
async fn send(req: test::TestRequest) -> (StatusCode, Value) {
    let app = test::init_service(
        crate::base_app()
            .service(web::resource("/echo").route(web::post().to(echo)))
            .service(web::resource("/raw").route(web::post().to(raw)))
            .service(limit_body(
                web::resource("/big-echo").route(web::post().to(echo)),
                BodyLimit::DOCUMENT,
            ))
            .service(limit_body(
                web::resource("/big-raw").route(web::post().to(raw)),
                BodyLimit::DOCUMENT,
            ))
            .service(web::resource("/page").route(web::get().to(page)))
            .service(web::resource("/items/{id}").route(web::get().to(by_id)))
            .service(web::resource("/invalid").route(web::get().to(invalid)))
            .service(web::resource("/failing").route(web::get().to(failing)))
            .service(web::resource("/plain").route(web::get().to(plain_text_error))),
    )
    .await;
    let res = test::call_service(&app, req.to_request()).await;
    let status = res.status();
    let content_type = res
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = test::read_body(res).await;
    let body: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{status}: body is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    if !status.is_success() {
        assert_eq!(content_type.as_deref(), Some("application/json"));
        assert!(body["error"].is_string(), "no error field: {body}");
        assert!(body["detail"].is_string(), "no detail field: {body}");
    }
    (status, body)
}

fn post_json(body: impl Into<Vec<u8>>) -> test::TestRequest {
    test::TestRequest::post()
        .uri("/echo")
        .insert_header((CONTENT_TYPE, "application/json"))
        .set_payload(body.into())
}

#[actix_web::test]
async fn unknown_routes_are_json_404s_naming_the_route() {
    let (status, body) = send(test::TestRequest::get().uri("/x")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"error": "Not Found", "detail": "no route for GET /x"})
    );
}

#[actix_web::test]
async fn a_wrong_method_on_a_known_path_is_a_json_405() {
    let (status, body) = send(test::TestRequest::delete().uri("/echo")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"], "Method Not Allowed");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("DELETE is not allowed on /echo")
    );
}

#[actix_web::test]
async fn valid_json_reaches_the_handler() {
    let (status, body) = send(post_json(r#"{"name": "a", "count": 1}"#)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"name": "a"}));
}

#[actix_web::test]
async fn json_without_a_content_type_is_still_parsed() {
    let req = test::TestRequest::post()
        .uri("/echo")
        .set_payload(r#"{"name": "a", "count": 1}"#);
    assert_eq!(send(req).await.0, StatusCode::OK);
}

#[actix_web::test]
async fn malformed_json_is_a_400() {
    let (status, body) = send(post_json(r#"{"name": "#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "Bad Request");
    assert!(body["detail"].as_str().unwrap().contains("not valid JSON"));
}

#[actix_web::test]
async fn wrong_types_missing_fields_and_non_objects_are_400s() {
    for payload in [
        r#"{"name": "a", "count": "three"}"#,
        r#"{"name": "a"}"#,
        r#"[1, 2, 3]"#,
        r#""just a string""#,
    ] {
        let (status, body) = send(post_json(payload)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{payload}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("expected fields and types"),
            "{payload}: {body}"
        );
    }
}

#[actix_web::test]
async fn an_empty_body_is_a_400_saying_so() {
    let (status, body) = send(post_json("")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["detail"].as_str().unwrap().contains("empty"), "{body}");
}

/// A JSON body of exactly `len` bytes: `{"name": "aaa…", "count": 1}`.
fn item_of_len(len: usize) -> Vec<u8> {
    let frame = br#"{"name": "", "count": 1}"#.len();
    let name = "a".repeat(len - frame);
    format!(r#"{{"name": "{name}", "count": 1}}"#).into_bytes()
}

#[actix_web::test]
async fn a_body_over_a_route_without_a_limit_of_its_own_is_a_413_naming_the_small_limit() {
    let limit = BodyLimit::SMALL.bytes();
    for uri in ["/echo", "/raw"] {
        let (status, _) = send(post_json(item_of_len(limit)).uri(uri)).await;
        assert_eq!(status, StatusCode::OK, "{uri}: exactly the limit is read");
        let (status, body) = send(post_json(item_of_len(limit + 1)).uri(uri)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{uri}");
        assert_eq!(body["error"], "Payload Too Large");
        assert!(
            body["detail"].as_str().unwrap().contains("256 KB"),
            "{uri}: {body}"
        );
    }
}

#[actix_web::test]
async fn a_route_with_a_larger_limit_reads_up_to_it_and_names_it_in_its_413() {
    let limit = BodyLimit::DOCUMENT.bytes();
    for uri in ["/big-echo", "/big-raw"] {
        let (status, _) = send(post_json(item_of_len(limit)).uri(uri)).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        let (status, body) = send(post_json(item_of_len(limit + 1)).uri(uri)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{uri}");
        assert!(
            body["detail"].as_str().unwrap().contains("10 MB"),
            "{uri}: {body}"
        );
    }
}

#[actix_web::test]
async fn bad_query_strings_are_400s() {
    let (status, body) = send(test::TestRequest::get().uri("/page?limit=lots")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["detail"].as_str().unwrap().contains("query string"));
}

#[actix_web::test]
async fn bad_path_segments_are_400s() {
    let (status, body) = send(test::TestRequest::get().uri("/items/not-a-number")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("/items/not-a-number")
    );
}

#[actix_web::test]
async fn handler_validation_errors_list_their_fields() {
    let (status, body) = send(test::TestRequest::get().uri("/invalid")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["errors"],
        json!([{"field": "name", "message": "must not be empty"}])
    );
}

#[actix_web::test]
async fn internal_errors_are_generic_500s() {
    let (status, body) = send(test::TestRequest::get().uri("/failing")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!body.to_string().contains("secret"));
}

#[actix_web::test]
async fn actix_plain_text_errors_are_rewritten_without_their_text() {
    let (status, body) = send(test::TestRequest::get().uri("/plain")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"], "Internal Server Error");
    assert!(!body.to_string().contains("internals"));
}
