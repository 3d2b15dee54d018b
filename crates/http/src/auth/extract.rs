//! The extractors that put the permission matrix into handler signatures.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use baton_domain::robot::RobotId;

use super::AccessControl;
use super::principal::{Principal, Requirement};
use crate::errors::ApiError;

/// An authenticated caller whose roles allow `P`: a handler taking `Authorized<Operate>` runs
/// only for operators, developers, admins and API keys with one of those roles.
#[derive(Debug)]
pub struct Authorized<P: Requirement> {
    pub principal: Principal,
    requirement: PhantomData<P>,
}

impl<P: Requirement> Authorized<P> {
    pub fn into_principal(self) -> Principal {
        self.principal
    }
}

/// The app's [`AccessControl`], registered on its own (see `app`) so that authentication needs
/// nothing of the rest of the state.
fn access(req: &HttpRequest) -> Result<web::Data<AccessControl>, ApiError> {
    req.app_data::<web::Data<AccessControl>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("AccessControl is not registered on the app"))
}

impl<P: Requirement + 'static> FromRequest for Authorized<P> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(crate::detach::detached(async move {
            let access = access(&req)?;
            let principal = access.authenticate(&req).await?;
            if let Principal::Robot { robot_id } = &principal {
                return Err(ApiError::forbidden(format!(
                    "robot '{robot_id}' authenticated with a robot token, which is only accepted \
                     on the robot protocol; use a user's token or an API key here"
                )));
            }
            if !principal.allows(P::PERMISSION) {
                return Err(ApiError::forbidden(format!(
                    "this needs the {} permission, which the caller's roles ({}) do not grant",
                    permission_name(P::PERMISSION),
                    role_list(&principal),
                )));
            }
            Ok(Self {
                principal,
                requirement: PhantomData,
            })
        }))
    }
}

/// The caller of a robot-protocol route `…/robots/{robot_id}/…`: the robot itself with its
/// token, or (unless `ROBOT_AUTH_ENABLED`) an operator acting for it.
#[derive(Debug)]
pub struct RobotCaller {
    pub robot_id: RobotId,
    pub principal: Principal,
}

impl FromRequest for RobotCaller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(crate::detach::detached(async move {
            let access = access(&req)?;
            let principal = access.authenticate(&req).await?;
            let raw = req.match_info().get("robot_id").unwrap_or_default();
            let robot_id = RobotId::parse(raw)?;
            match &principal {
                Principal::Robot { robot_id: caller } if *caller == robot_id => {}
                Principal::Robot { robot_id: caller } => {
                    return Err(ApiError::forbidden(format!(
                        "robot '{caller}' may act only as itself, not as '{robot_id}'"
                    )));
                }
                Principal::DevMode => {}
                other
                    if !access.robot_auth_enabled()
                        && other.allows(baton_domain::auth::Permission::Operate) => {}
                _ => {
                    return Err(ApiError::forbidden(if access.robot_auth_enabled() {
                        "ROBOT_AUTH_ENABLED is on: the robot protocol takes a robot's own token \
                         in X-Api-Token"
                    } else {
                        "the robot protocol takes the robot's token in X-Api-Token, or an \
                         operator's credentials"
                    }));
                }
            }
            Ok(Self {
                robot_id,
                principal,
            })
        }))
    }
}

fn permission_name(permission: baton_domain::auth::Permission) -> &'static str {
    use baton_domain::auth::Permission;
    match permission {
        Permission::Read => "read (viewer, operator, developer or admin)",
        Permission::Operate => "operate (operator, developer or admin)",
        Permission::Develop => "develop (developer or admin)",
        Permission::Administer => "administer (admin)",
    }
}

fn role_list(principal: &Principal) -> String {
    let roles: Vec<&str> = principal.roles().iter().map(|r| r.as_str()).collect();
    if roles.is_empty() {
        "none".to_owned()
    } else {
        roles.join(", ")
    }
}
