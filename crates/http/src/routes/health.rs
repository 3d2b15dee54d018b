//! Health probes, with the CasareRPA document's bodies: `/health` for load balancers,
//! `/health/detailed` with the database's state, `/health/ready` and `/health/live` for
//! Kubernetes. Mounted at the root and under `/api/v1`.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::probe::DatabaseHealth;
use crate::state::AppState;

/// The `service` value every health body carries.
pub const SERVICE_NAME: &str = "baton";

/// How long a probe waits for the database before calling it unhealthy: a probe that hangs is
/// worse for an orchestrator (Kubernetes, a load balancer) than one that answers "no".
const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/health").route(web::get().to(health)))
        .service(web::resource("/health/detailed").route(web::get().to(detailed)))
        .service(web::resource("/health/ready").route(web::get().to(ready)))
        .service(web::resource("/health/live").route(web::get().to(live)));
}

#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    service: &'static str,
}

#[derive(Debug, Serialize)]
struct Detailed {
    status: &'static str,
    service: &'static str,
    dependencies: Dependencies,
}

#[derive(Debug, Serialize)]
struct Dependencies {
    database: DatabaseBody,
}

#[derive(Debug, Serialize)]
struct DatabaseBody {
    healthy: bool,
    pool_size: usize,
    pool_free: usize,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Ready {
    ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct Live {
    alive: bool,
}

/// Always healthy while the process serves HTTP: load balancers want to know the server is up,
/// not whether every dependency is.
async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "healthy",
        service: SERVICE_NAME,
    })
}

async fn detailed(state: web::Data<AppState>) -> HttpResponse {
    detailed_response(check_database(&state).await)
}

async fn ready(state: web::Data<AppState>) -> HttpResponse {
    ready_response(&check_database(&state).await)
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Live { alive: true })
}

async fn check_database(state: &AppState) -> DatabaseHealth {
    match actix_web::rt::time::timeout(DATABASE_CHECK_TIMEOUT, state.health.database()).await {
        Ok(health) => health,
        Err(_) => DatabaseHealth::unhealthy(format!(
            "the database did not answer within {} s",
            DATABASE_CHECK_TIMEOUT.as_secs()
        )),
    }
}

/// 200 either way: a degraded server still answers, and the status says how it is.
fn detailed_response(db: DatabaseHealth) -> HttpResponse {
    HttpResponse::Ok().json(Detailed {
        status: if db.healthy { "healthy" } else { "degraded" },
        service: SERVICE_NAME,
        dependencies: Dependencies {
            database: DatabaseBody {
                healthy: db.healthy,
                pool_size: db.pool_size,
                pool_free: db.pool_free,
                error: db.error,
            },
        },
    })
}

/// 503 when the database is down, so an orchestrator stops routing traffic here.
fn ready_response(db: &DatabaseHealth) -> HttpResponse {
    if db.healthy {
        HttpResponse::Ok().json(Ready {
            ready: true,
            reason: None,
        })
    } else {
        HttpResponse::ServiceUnavailable().json(Ready {
            ready: false,
            reason: Some("Database unhealthy"),
        })
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::to_bytes;
    use actix_web::http::StatusCode;
    use serde_json::{Value, json};

    use super::*;

    async fn body(response: HttpResponse) -> (StatusCode, Value) {
        let status = response.status();
        let bytes = to_bytes(response.into_body()).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    fn healthy() -> DatabaseHealth {
        DatabaseHealth {
            healthy: true,
            pool_size: 10,
            pool_free: 8,
            error: None,
        }
    }

    #[actix_web::test]
    async fn detailed_reports_the_pool_when_healthy() {
        let (status, body) = body(detailed_response(healthy())).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({
                "status": "healthy",
                "service": "baton",
                "dependencies": {"database": {
                    "healthy": true, "pool_size": 10, "pool_free": 8, "error": null
                }}
            })
        );
    }

    #[actix_web::test]
    async fn detailed_is_200_degraded_when_the_database_is_down() {
        let (status, body) = body(detailed_response(DatabaseHealth::unhealthy(
            "Connection refused",
        )))
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({
                "status": "degraded",
                "service": "baton",
                "dependencies": {"database": {
                    "healthy": false, "pool_size": 0, "pool_free": 0,
                    "error": "Connection refused"
                }}
            })
        );
    }

    #[actix_web::test]
    async fn ready_follows_the_database() {
        let (status, body_ok) = body(ready_response(&healthy())).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body_ok, json!({"ready": true}));

        let (status, body_down) = body(ready_response(&DatabaseHealth::unhealthy("down"))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body_down,
            json!({"ready": false, "reason": "Database unhealthy"})
        );
    }

    #[actix_web::test]
    async fn live_and_basic_health_have_the_documented_bodies() {
        assert_eq!(
            body(live().await).await,
            (StatusCode::OK, json!({"alive": true}))
        );
        assert_eq!(
            body(health().await).await,
            (
                StatusCode::OK,
                json!({"status": "healthy", "service": "baton"})
            )
        );
    }
}
