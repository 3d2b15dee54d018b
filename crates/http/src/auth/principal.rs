//! Who is calling, once their credentials checked out.

use baton_domain::auth::{Permission, Role, Username, roles_allow};
use baton_domain::ids::ApiKeyId;
use baton_domain::robot::RobotId;
use baton_domain::session::TokenClaims;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A user with a JWT access token; `roles` are the user's current ones.
    User {
        username: Username,
        roles: Vec<Role>,
        claims: TokenClaims,
    },
    /// An integrator's API key.
    ApiKey {
        id: ApiKeyId,
        name: String,
        roles: Vec<Role>,
    },
    /// A robot with its token: it may use the robot protocol, as itself only.
    Robot { robot_id: RobotId },
    /// `JWT_DEV_MODE=true`: authentication is off and every caller is an admin.
    DevMode,
}

impl Principal {
    /// The roles this caller holds; robots hold none.
    pub fn roles(&self) -> &[Role] {
        match self {
            Self::User { roles, .. } | Self::ApiKey { roles, .. } => roles,
            Self::Robot { .. } => &[],
            Self::DevMode => &Role::ALL,
        }
    }

    pub fn allows(&self, permission: Permission) -> bool {
        roles_allow(self.roles(), permission)
    }

    /// How the caller shows up in logs and in `/auth/me`: never a secret.
    pub fn display_id(&self) -> String {
        match self {
            Self::User { username, .. } => username.to_string(),
            Self::ApiKey { id, .. } => format!("api-key:{id}"),
            Self::Robot { robot_id } => format!("robot:{robot_id}"),
            Self::DevMode => "dev".to_owned(),
        }
    }
}

/// What a route requires, as a type: `Authorized<Operate>` in a handler's arguments is the
/// route's entry in the permission matrix.
pub trait Requirement {
    const PERMISSION: Permission;
}

macro_rules! requirement {
    ($(#[$doc:meta])* $name:ident => $permission:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name;
        impl Requirement for $name {
            const PERMISSION: Permission = Permission::$permission;
        }
    };
}

requirement!(
    /// Any role: viewers and up.
    Read => Read
);
requirement!(
    /// Operators and up: run and steer work.
    Operate => Operate
);
requirement!(
    /// Developers and up: change what runs.
    Develop => Develop
);
requirement!(
    /// Admins only: users, API keys and robots.
    Administer => Administer
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robots_hold_no_role_and_dev_mode_holds_all() {
        let robot = Principal::Robot {
            robot_id: RobotId::parse("r1").unwrap(),
        };
        for permission in Permission::ALL {
            assert!(!robot.allows(permission));
            assert!(Principal::DevMode.allows(permission));
        }
    }
}
