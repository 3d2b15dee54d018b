//! The OpenAPI 3.1 document of the whole API (every route of the seed documents and Baton's own),
//! built with utoipa's builder API from the route table in [`table`], and served without authentication at
//! `GET /api/v1/openapi.json` (it holds no secret; see docs/openapi.md).

mod build;
pub mod docs;
mod examples;
mod schemas;
pub mod table;

use std::sync::LazyLock;

use actix_web::{HttpResponse, web};

use crate::errors::{ApiError, ApiResult};

pub use build::document;

/// The document as pretty JSON with sorted keys, the form `cargo xtask openapi` writes to
/// `docs/openapi.json`.
pub fn document_json() -> Result<String, serde_json::Error> {
    // Through `Value`, whose maps are sorted, so the file's key order is stable.
    let value = serde_json::to_value(document()?)?;
    let mut text = serde_json::to_string_pretty(&value)?;
    text.push('\n');
    Ok(text)
}

static RENDERED: LazyLock<Result<String, String>> =
    LazyLock::new(|| document_json().map_err(|e| e.to_string()));

/// Mounts `/openapi.json` (under `/api/v1`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/openapi.json").route(web::get().to(serve)));
}

async fn serve() -> ApiResult<HttpResponse> {
    match &*RENDERED {
        Ok(text) => Ok(HttpResponse::Ok()
            .content_type("application/json")
            .body(text.clone())),
        Err(cause) => Err(ApiError::internal(format!(
            "the OpenAPI document cannot be built: {cause}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_builds() {
        let text = document_json();
        assert!(text.is_ok(), "{text:?}");
    }
}
