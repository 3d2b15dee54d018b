//! `GET /metrics`: Prometheus' text exposition (docs/prometheus.md). The content lives in
//! [`crate::prometheus`]; this module mounts it and checks who may read it.

use actix_web::{FromRequest, HttpRequest, HttpResponse, web};

use crate::auth::{Authorized, Read};
use crate::errors::ApiResult;
use crate::prometheus::ScrapeAccess;
use crate::prometheus::text::CONTENT_TYPE;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/metrics").route(web::get().to(scrape)));
}

async fn scrape(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    if state.prometheus.access() == ScrapeAccess::Read {
        Authorized::<Read>::extract(&req).await?;
    }
    let body = state
        .prometheus
        .render(state.store.clone(), state.health.as_ref())
        .await;
    Ok(HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        // A scrape is a snapshot; a cache in between would show stale numbers.
        .insert_header(("Cache-Control", "no-store"))
        .body(body))
}
