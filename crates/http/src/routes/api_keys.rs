//! Admin endpoints for API keys (docs/security.md): the key is shown once, in the creation
//! response, and stored only as its SHA-256.

use actix_web::{HttpResponse, web};
use baton_domain::auth::{ApiKey, ApiKeyError, Role};
use baton_domain::ids::ApiKeyId;
use serde::{Deserialize, Serialize};

use crate::auth::{Administer, Authorized};
use crate::body::typed;
use crate::errors::{ApiError, ApiResult};
use crate::state::AppState;
use crate::time_format::rfc3339;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api-keys")
            .route(web::post().to(create))
            .route(web::get().to(list)),
    )
    .service(web::resource("/api-keys/{id}").route(web::delete().to(revoke)));
}

#[derive(Deserialize)]
struct CreateKey {
    name: String,
    roles: Vec<String>,
}

/// A key as listed: never the key or its hash.
#[derive(Serialize)]
struct KeyView {
    id: String,
    name: String,
    roles: Vec<&'static str>,
    created_at: String,
    revoked_at: Option<String>,
}

impl From<&ApiKey> for KeyView {
    fn from(key: &ApiKey) -> Self {
        Self {
            id: key.id.to_string(),
            name: key.name.clone(),
            roles: key.roles.iter().map(|r| r.as_str()).collect(),
            created_at: rfc3339(key.created_at),
            revoked_at: key.revoked_at.map(rfc3339),
        }
    }
}

/// The creation response, the only one that holds the key.
#[derive(Serialize)]
struct CreatedKey {
    id: String,
    name: String,
    key: String,
    roles: Vec<&'static str>,
    created_at: String,
}

async fn create(
    state: web::Data<AppState>,
    caller: Authorized<Administer>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let CreateKey { name, roles } = typed(&body)?;
    let roles = Role::parse_list(&roles)?;
    let id = ApiKeyId::from_uuid(state.ids.new_uuid());
    let (record, key) = ApiKey::issue(id, name, roles, state.clock.now()).map_err(|e| match e {
        ApiKeyError::Invalid(e) => ApiError::validation(e),
        ApiKeyError::Secret(e) => ApiError::internal(e),
    })?;
    state.store.insert_api_key(&record).await?;
    tracing::info!(by = %caller.principal.display_id(), key_id = %record.id, name = %record.name, "API key created");
    Ok(HttpResponse::Created().json(CreatedKey {
        id: record.id.to_string(),
        name: record.name,
        key,
        roles: record.roles.iter().map(|r| r.as_str()).collect(),
        created_at: rfc3339(record.created_at),
    }))
}

async fn list(state: web::Data<AppState>, _: Authorized<Administer>) -> ApiResult<HttpResponse> {
    let keys = state.store.list_api_keys().await?;
    Ok(HttpResponse::Ok().json(keys.iter().map(KeyView::from).collect::<Vec<_>>()))
}

async fn revoke(
    state: web::Data<AppState>,
    caller: Authorized<Administer>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = path
        .into_inner()
        .parse::<uuid::Uuid>()
        .map(ApiKeyId::from_uuid)
        .map_err(|_| ApiError::not_found("API key not found: the id is not a UUID"))?;
    state
        .store
        .revoke_api_key(id, state.clock.now())
        .await
        .map_err(|e| match e {
            baton_domain::RepoError::NotFound(_) => {
                ApiError::not_found(format!("no live API key with id {id}"))
            }
            other => other.into(),
        })?;
    // This server remembers valid keys for a second: it forgets this one now.
    state.access.api_keys().forget(id);
    tracing::info!(by = %caller.principal.display_id(), key_id = %id, "API key revoked");
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "status": "success",
        "message": format!("API key revoked: {id}"),
    })))
}
