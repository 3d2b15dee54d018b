//! Admin endpoints for users (DESIGN §8): `POST /users`, `GET /users`, `DELETE /users/{username}`.

use actix_web::{HttpResponse, web};
use baton_domain::auth::{Argon2idHasher, Password, PasswordHasher, Role, User, Username};
use baton_domain::error::ValidationError;
use serde::{Deserialize, Serialize};

use crate::auth::{Administer, Authorized, Principal};
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

async fn create(
    state: web::Data<AppState>,
    caller: Authorized<Administer>,
    body: web::Json<CreateUser>,
) -> ApiResult<HttpResponse> {
    let CreateUser {
        username,
        password,
        roles,
    } = body.into_inner();
    // Every broken rule is reported at once.
    let username = Username::parse(username);
    let password = Password::new(password);
    let roles = Role::parse_list(&roles);
    let (username, password, roles) = match (username, password, roles) {
        (Ok(u), Ok(p), Ok(r)) => (u, p, r),
        (u, p, r) => {
            let errors = [u.err(), p.err(), r.err()].into_iter().flatten().fold(
                None::<ValidationError>,
                |acc, e| {
                    Some(match acc {
                        Some(acc) => acc.merge(e),
                        None => e,
                    })
                },
            );
            return Err(errors.map_or_else(
                || ApiError::bad_request("the user is not valid"),
                ApiError::validation,
            ));
        }
    };
    let password_hash = web::block(move || Argon2idHasher.hash(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let user = User {
        username,
        password_hash,
        roles,
        created_at: state.clock.now(),
    };
    state.store.insert_user(&user).await.map_err(|e| match e {
        baton_domain::RepoError::Conflict(_) => {
            ApiError::conflict(format!("a user named '{}' exists", user.username))
        }
        other => other.into(),
    })?;
    tracing::info!(by = %caller.principal.display_id(), user = %user.username, "user created");
    Ok(HttpResponse::Created().json(UserView::from(&user)))
}

async fn list(state: web::Data<AppState>, _: Authorized<Administer>) -> ApiResult<HttpResponse> {
    let users = state.store.list_users().await?;
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
    if let Principal::User { username: me, .. } = &caller.principal
        && *me == username
    {
        return Err(ApiError::conflict(
            "you cannot delete your own user; ask another admin",
        ));
    }
    let user = state.store.get_user(&username).await?;
    if user.roles.contains(&Role::Admin) {
        let admins = state
            .store
            .list_users()
            .await?
            .iter()
            .filter(|u| u.roles.contains(&Role::Admin))
            .count();
        if admins <= 1 {
            return Err(ApiError::conflict(
                "this is the last admin; create another admin before deleting it",
            ));
        }
    }
    state.store.delete_user(&username).await?;
    tracing::info!(by = %caller.principal.display_id(), user = %username, "user deleted");
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "status": "success",
        "message": format!("User deleted: {username}"),
    })))
}
