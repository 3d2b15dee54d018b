//! `/api/v1/auth/session`: the console's sign-in, its session, and sign-out.
//!
//! Sign-in checks the password as `/auth/login` does (failures count towards the ban, a success
//! forgives nothing) and answers with the session in an `HttpOnly` cookie instead of tokens in
//! the body; see `auth::browser` for what keeps the cookie safe.

use actix_web::{HttpRequest, HttpResponse, web};
use baton_domain::auth::Password;
use baton_domain::session::csrf_token;
use serde::{Deserialize, Serialize};

use crate::auth::browser::{self, cookie_credential};
use crate::auth::{Authorized, Principal, Read, session_refusal};
use crate::body::typed;
use crate::errors::{ApiError, ApiResult};
use crate::state::AppState;
use crate::time_format::rfc3339;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/auth/session")
            .route(web::post().to(sign_in))
            .route(web::get().to(current))
            .route(web::delete().to(sign_out)),
    );
}

#[derive(Deserialize)]
struct SignInRequest {
    username: String,
    password: String,
}

/// What the console knows of its session: who, with which roles, and the CSRF token its
/// writes carry.
#[derive(Serialize)]
struct SessionResponse {
    username: String,
    roles: Vec<&'static str>,
    csrf_token: String,
    expires_at: Option<String>,
}

async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    // A page of another site must not sign a browser into an account of its choosing.
    browser::check_origin(&req)?;
    let SignInRequest { username, password } = typed(&body)?;
    let password = Password::candidate(password)?;
    let access = &state.access;
    let verify = access.password_check();
    match access
        .sessions()
        .start_browser_session(&username, password, access.decoy_hash(), verify)
        .await
    {
        Ok((user, session)) => {
            tracing::info!(user = %user.username, "console sign-in");
            let body = SessionResponse {
                username: user.username.to_string(),
                roles: user.roles.iter().map(|r| r.as_str()).collect(),
                csrf_token: csrf_token(&session.token),
                expires_at: Some(rfc3339(session.expires_at)),
            };
            Ok(HttpResponse::Ok()
                .cookie(browser::session_cookie(
                    &req,
                    session.token,
                    session.expires_at,
                ))
                .insert_header(("Cache-Control", "no-store"))
                .json(body))
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

async fn current(req: HttpRequest, caller: Authorized<Read>) -> ApiResult<HttpResponse> {
    let principal = caller.into_principal();
    let (username, expires_at) = match &principal {
        Principal::User {
            username, claims, ..
        } => (username.to_string(), Some(rfc3339(claims.expires_at))),
        Principal::DevMode => (principal.display_id(), None),
        Principal::ApiKey { .. } | Principal::Robot { .. } => {
            return Err(no_browser_session());
        }
    };
    // The CSRF token belongs to the cookie's session; a bearer token has no use for one.
    let csrf = match cookie_credential(&req) {
        Some(token) => csrf_token(&token),
        _ if matches!(principal, Principal::DevMode) => String::new(),
        _ => return Err(no_browser_session()),
    };
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(SessionResponse {
            username,
            roles: principal.roles().iter().map(|r| r.as_str()).collect(),
            csrf_token: csrf,
            expires_at,
        }))
}

async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Authorized<Read>,
) -> ApiResult<HttpResponse> {
    let principal = caller.into_principal();
    // Only the cookie's session is signed out here; API clients end theirs at /auth/logout.
    let by_cookie = cookie_credential(&req).is_some();
    if !by_cookie && !matches!(principal, Principal::DevMode) {
        return Err(no_browser_session());
    }
    if let Principal::User {
        username, claims, ..
    } = principal
    {
        state
            .access
            .sessions()
            .logout(&claims)
            .await
            .map_err(|e| session_refusal(e).into_error())?;
        tracing::info!(user = %username, "console sign-out");
    }
    Ok(HttpResponse::Ok()
        .cookie(browser::removal_cookie(&req))
        .json(serde_json::json!({"message": "Signed out"})))
}

fn no_browser_session() -> ApiError {
    ApiError::unauthorized(
        "no console session: sign in with POST /api/v1/auth/session, which sets its cookie",
    )
}
