//! The console: `/` sends browsers to `/ui/`, which serves the single page and its scripts from
//! files compiled into the binary (`crates/http/console/`, plain HTML, CSS and JavaScript
//! modules: no build step, no Node toolchain). The page loads nothing from outside the server,
//! and its Content-Security-Policy says so to the browser. Every path under `/ui/` that is not
//! an asset answers the page, whose script routes on the path (so links and reloads work).

use actix_web::http::header::{ACCEPT, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::errors::{ApiError, ApiResult};

/// Nothing but the server itself: scripts, styles, images, fetches and websockets.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data:; connect-src 'self'; font-src 'self'; \
                       object-src 'none'; base-uri 'none'; form-action 'self'; \
                       frame-ancestors 'none'";

const PAGE: &str = include_str!("../../console/index.html");

/// One asset of `crates/http/console/`, embedded at compile time.
macro_rules! asset {
    ($name:literal, $type:literal) => {
        (
            $name,
            concat!($type, "; charset=utf-8"),
            include_bytes!(concat!("../../console/", $name)),
        )
    };
}

/// The files under `/ui/assets/`: name, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    asset!("style.css", "text/css"),
    asset!("app.js", "text/javascript"),
    asset!("api.js", "text/javascript"),
    asset!("ui.js", "text/javascript"),
    asset!("live.js", "text/javascript"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("pages/signin.js", "text/javascript"),
    asset!("pages/overview.js", "text/javascript"),
    asset!("pages/jobs.js", "text/javascript"),
    asset!("pages/queues.js", "text/javascript"),
    asset!("pages/schedules.js", "text/javascript"),
    asset!("pages/schedule-form.js", "text/javascript"),
    asset!("pages/robots.js", "text/javascript"),
    asset!("pages/workflows.js", "text/javascript"),
    asset!("pages/workflow-graph.js", "text/javascript"),
    asset!("pages/flows.js", "text/javascript"),
    asset!("pages/settings.js", "text/javascript"),
];

/// Mounts `/`, `/ui` and everything under `/ui/` at the root.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").route(web::get().to(root)))
        .service(web::resource("/ui").route(web::get().to(to_console)))
        .service(web::resource("/ui/assets/{asset:.+}").route(web::get().to(asset_file)))
        .service(web::resource("/ui/{path:.*}").route(web::get().to(page)));
}

/// A browser asking for `/` is sent to the console; an API client gets the JSON 404 it got
/// before the console existed.
async fn root(req: HttpRequest) -> ApiResult<HttpResponse> {
    let wants_html = req
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html {
        return Ok(to_console().await);
    }
    Err(ApiError::not_found(
        "no API route at /: the API lives under /api/v1 (see /docs); the console under /ui/",
    ))
}

async fn to_console() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, "/ui/"))
        .finish()
}

async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", CSP))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "same-origin"))
        .insert_header(("Cache-Control", "no-cache"))
        .body(PAGE)
}

async fn asset_file(name: web::Path<String>) -> ApiResult<HttpResponse> {
    let Some((_, content_type, bytes)) = ASSETS.iter().find(|(n, _, _)| *n == name.as_str()) else {
        return Err(ApiError::not_found(format!(
            "no asset {name} under /ui/assets"
        )));
    };
    Ok(HttpResponse::Ok()
        .content_type(*content_type)
        .insert_header(("Content-Security-Policy", CSP))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        // Assets change with the binary: browsers revalidate rather than run an old script
        // against a new server.
        .insert_header(("Cache-Control", "no-cache"))
        .body(*bytes))
}
