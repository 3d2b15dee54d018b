//! CasareRPA's authentication endpoints: `/auth/login`, `/auth/refresh`, `/auth/logout`,
//! `/auth/me`, with the document's request and response bodies.

use actix_web::{HttpRequest, HttpResponse, web};
use baton_domain::auth::Password;
use baton_domain::session::{TenantId, TokenPair};
use serde::{Deserialize, Serialize};

use crate::auth::{Authorized, Principal, Read, session_refusal};
use crate::body::typed;
use crate::errors::{ApiError, ApiResult};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/auth/login").route(web::post().to(login)))
        .service(web::resource("/auth/refresh").route(web::post().to(refresh)))
        .service(web::resource("/auth/logout").route(web::post().to(logout)))
        .service(web::resource("/auth/me").route(web::get().to(me)));
}

#[derive(Deserialize)]
struct LoginRequest {
    username: String,
    password: String,
    #[serde(default)]
    tenant_id: Option<String>,
}

#[derive(Deserialize)]
struct RefreshRequest {
    refresh_token: String,
}

#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    refresh_token: String,
    token_type: &'static str,
    expires_in: i64,
}

impl From<TokenPair> for TokenResponse {
    fn from(pair: TokenPair) -> Self {
        Self {
            access_token: pair.access_token,
            refresh_token: pair.refresh_token,
            token_type: "bearer",
            expires_in: pair.expires_in,
        }
    }
}

#[derive(Serialize)]
struct MeResponse {
    user_id: String,
    roles: Vec<&'static str>,
    tenant_id: Option<String>,
    dev_mode: bool,
}

async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let LoginRequest {
        username,
        password,
        tenant_id,
    } = typed(&body)?;
    let password = Password::candidate(password)?;
    let tenant_id = tenant_id.map(TenantId::parse).transpose()?;
    let access = &state.access;
    let verify = access.password_check();
    match access
        .sessions()
        .login(&username, password, tenant_id, access.decoy_hash(), verify)
        .await
    {
        // A sign-in forgives no failure: with an account of their own, an attacker could
        // otherwise guess another's password between sign-ins without ever being banned.
        Ok((user, pair)) => {
            tracing::info!(user = %user.username, "login");
            Ok(HttpResponse::Ok().json(TokenResponse::from(pair)))
        }
        Err(err) => {
            let refusal = session_refusal(err);
            if let Some(kind) = refusal.counts() {
                access.record_failure(&req, kind).await?;
            }
            Err(refusal.into_error())
        }
    }
}

async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let body: RefreshRequest = typed(&body)?;
    match state.access.sessions().refresh(&body.refresh_token).await {
        Ok(pair) => Ok(HttpResponse::Ok().json(TokenResponse::from(pair))),
        Err(err) => {
            let refusal = session_refusal(err);
            if let Some(kind) = refusal.counts() {
                state.access.record_failure(&req, kind).await?;
            }
            Err(refusal.into_error())
        }
    }
}

async fn logout(state: web::Data<AppState>, caller: Authorized<Read>) -> ApiResult<HttpResponse> {
    match caller.into_principal() {
        Principal::User {
            username, claims, ..
        } => {
            state
                .access
                .sessions()
                .logout(&claims)
                .await
                .map_err(|e| session_refusal(e).into_error())?;
            tracing::info!(user = %username, "logout");
            Ok(HttpResponse::Ok().json(serde_json::json!({"message": "Successfully logged out"})))
        }
        Principal::DevMode => {
            Ok(HttpResponse::Ok().json(serde_json::json!({"message": "Successfully logged out"})))
        }
        Principal::ApiKey { .. } | Principal::Robot { .. } => Err(ApiError::bad_request(
            "logout ends a login session and needs its access token; API keys are revoked with \
             DELETE /api/v1/api-keys/{id}",
        )),
    }
}

async fn me(caller: Authorized<Read>) -> HttpResponse {
    let principal = caller.into_principal();
    let (tenant_id, dev_mode) = match &principal {
        Principal::User { claims, .. } => (
            claims.tenant_id.as_ref().map(|t| t.as_str().to_owned()),
            false,
        ),
        Principal::DevMode => (None, true),
        Principal::ApiKey { .. } | Principal::Robot { .. } => (None, false),
    };
    let user_id = match &principal {
        Principal::User { username, .. } => username.to_string(),
        other => other.display_id(),
    };
    HttpResponse::Ok().json(MeResponse {
        user_id,
        roles: principal.roles().iter().map(|r| r.as_str()).collect(),
        tenant_id,
        dev_mode,
    })
}
