//! Admin endpoints for users: `POST /users`, `GET /users`, `DELETE /users/{username}`. The rules
//! (what a valid user is, how its password is hashed, who may be deleted) are the domain's
//! [`UserService`]; this module translates HTTP to it and back.

use actix_web::{HttpResponse, web};
use baton_domain::auth::{SecretError, User, Username};
use baton_domain::services::users::{HashJob, NewUser, UserError, UserService};
use serde::{Deserialize, Serialize};

use crate::auth::{Administer, Authorized, Principal};
use crate::body::typed;
use crate::errors::{ApiError, ApiResult};
use crate::state::AppState;
use crate::time_format::rfc3339;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/users")
            .route(web::post().to(create))
            .route(web::get().to(list)),
    )
    .service(web::resource("/users/{username}").route(web::delete().to(delete)));
}

#[derive(Deserialize)]
struct CreateUser {
    username: String,
    password: String,
    roles: Vec<String>,
}

/// A user as the API shows it: never the password hash.
#[derive(Serialize)]
struct UserView {
    username: String,
    roles: Vec<&'static str>,
    created_at: String,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            username: user.username.to_string(),
            roles: user.roles.iter().map(|r| r.as_str()).collect(),
            created_at: rfc3339(user.created_at),
        }
    }
}

fn service(state: &AppState) -> UserService {
    UserService::new(state.store.clone(), state.clock.clone())
}

/// Runs a password hash on actix's blocking pool, off the event loop.
async fn hash_off_the_event_loop(job: HashJob) -> Result<String, SecretError> {
    web::block(move || job.run()).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "the blocking pool failed to hash a password");
        Err(SecretError::Hashing)
    })
}

/// Each refusal of the user rules as the API answers it.
fn user_error(err: UserError) -> ApiError {
    match err {
        UserError::Invalid(e) => ApiError::validation(e),
        e @ (UserError::Taken(_) | UserError::OwnUser | UserError::LastAdmin) => {
            ApiError::conflict(e.to_string())
        }
        UserError::Secret(e) => ApiError::internal(e),
        UserError::Repo(e) => e.into(),
    }
}

async fn create(
    state: web::Data<AppState>,
    caller: Authorized<Administer>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let CreateUser {
        username,
        password,
        roles,
    } = typed(&body)?;
    let new = NewUser {
        username,
        password,
        roles,
    };
    let user = service(&state)
        .create(new, hash_off_the_event_loop)
        .await
        .map_err(user_error)?;
    tracing::info!(by = %caller.principal.display_id(), user = %user.username, "user created");
    Ok(HttpResponse::Created().json(UserView::from(&user)))
}

async fn list(state: web::Data<AppState>, _: Authorized<Administer>) -> ApiResult<HttpResponse> {
    let users = service(&state).list().await.map_err(user_error)?;
    Ok(HttpResponse::Ok().json(users.iter().map(UserView::from).collect::<Vec<_>>()))
}

async fn delete(
    state: web::Data<AppState>,
    caller: Authorized<Administer>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    // A name that breaks the rules names no user: 404, like any other unknown name.
    let username = Username::parse(path.into_inner())
        .map_err(|_| ApiError::not_found("user not found: the name is not a valid username"))?;
    let me = match &caller.principal {
        Principal::User { username, .. } => Some(username),
        _ => None,
    };
    service(&state)
        .delete(me, &username)
        .await
        .map_err(user_error)?;
    tracing::info!(by = %caller.principal.display_id(), user = %username, "user deleted");
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "status": "success",
        "message": format!("User deleted: {username}"),
    })))
}
