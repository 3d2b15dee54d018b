//! `/docs`: Swagger UI over `/api/v1/openapi.json`, from assets built into the binary (vendored
//! under `crates/http/assets/`, see docs/openapi.md), so the page works with no internet. The
//! Content-Security-Policy lets the page load nothing but its own origin (plus `data:` images,
//! which Swagger UI's stylesheet uses for its icons).

use actix_web::{HttpResponse, web};

use crate::errors::{ApiError, ApiResult};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

const PAGE: &str = include_str!("../../assets/docs.html");

/// The files under `/docs/`: name, content type, bytes.
const ASSETS: [(&str, &str, &[u8]); 4] = [
    (
        "swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js"),
    ),
    (
        "swagger-ui.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/swagger-ui/swagger-ui.css"),
    ),
    (
        "docs.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/docs.js"),
    ),
    (
        "LICENSE",
        "text/plain; charset=utf-8",
        include_bytes!("../../assets/swagger-ui/LICENSE"),
    ),
];

/// Mounts `/docs` and `/docs/{asset}` at the root.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/docs").route(web::get().to(page)))
        .service(web::resource("/docs/{asset}").route(web::get().to(asset)));
}

async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", CSP))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(PAGE)
}

async fn asset(name: web::Path<String>) -> ApiResult<HttpResponse> {
    let Some((_, content_type, bytes)) = ASSETS.iter().find(|(n, _, _)| *n == name.as_str()) else {
        return Err(ApiError::not_found(format!("no asset {name} under /docs")));
    };
    Ok(HttpResponse::Ok()
        .content_type(*content_type)
        .insert_header(("Content-Security-Policy", CSP))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        // The assets change only with the binary; an hour of caching spares reloads.
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(*bytes))
}
