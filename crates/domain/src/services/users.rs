//! Users: creating them (the only place a password is hashed for storage), listing them, and
//! deleting them under two rules that keep the system administrable: nobody deletes their own
//! user, and the last admin stays.

use std::sync::Arc;

use crate::auth::{Argon2idHasher, Password, PasswordHasher, Role, SecretError, User, Username};
use crate::clock::Clock;
use crate::error::{RepoError, ValidationError, Validator};
use crate::ports::{UserDeletion, UserRepository};

/// The name of the user created on a database without users.
pub const FIRST_ADMIN: &str = "admin";

/// A user as a request asked for it, not yet checked against the rules.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub roles: Vec<String>,
}

/// Why a user operation was refused. The messages are worded for clients.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(transparent)]
    Invalid(ValidationError),
    #[error("a user named '{0}' exists")]
    Taken(Username),
    #[error("you cannot delete your own user; ask another admin")]
    OwnUser,
    #[error("this is the last admin; create another admin before deleting it")]
    LastAdmin,
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// What [`UserService::create_first_admin`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstAdmin {
    /// The database had users already (or another server created the admin meanwhile).
    AlreadyBootstrapped,
    Created(User),
}

/// One password to hash with argon2id. The service hands it to its caller to run, because the
/// hash is deliberately slow (tens of milliseconds of CPU) and only the caller knows where its
/// runtime allows blocking work.
pub struct HashJob(Password);

impl HashJob {
    /// The PHC-format argon2id hash of the password, with a fresh salt.
    pub fn run(self) -> Result<String, SecretError> {
        Argon2idHasher.hash(&self.0)
    }
}

/// The user use cases.
pub struct UserService {
    users: Arc<dyn UserRepository>,
    clock: Arc<dyn Clock>,
}

impl UserService {
    pub fn new(users: Arc<dyn UserRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { users, clock }
    }

    /// Checks every field (reporting every broken rule at once), hashes the password with
    /// `blocking`, which must run the [`HashJob`] off the caller's event loop, and stores the
    /// user. Errors: `Invalid`, `Taken`, `Secret` when hashing failed, `Repo`.
    pub async fn create<B>(&self, new: NewUser, blocking: B) -> Result<User, UserError>
    where
        B: AsyncFnOnce(HashJob) -> Result<String, SecretError>,
    {
        let mut v = Validator::new();
        let username = v.check(Username::parse(new.username));
        let password = v.check(Password::new(new.password));
        let roles = v.check(Role::parse_list(&new.roles));
        let (Some(username), Some(password), Some(roles)) = (username, password, roles) else {
            return Err(UserError::Invalid(invalid(v)));
        };
        self.store(username, password, roles, blocking).await
    }

    /// Creates the first user, [`FIRST_ADMIN`] with every role, if the database has no user at
    /// all. Of several servers starting at once on one database, one creates it; the others
    /// find it created. Errors: `Secret` when hashing failed, `Repo`.
    pub async fn create_first_admin<B>(
        &self,
        password: Password,
        blocking: B,
    ) -> Result<FirstAdmin, UserError>
    where
        B: AsyncFnOnce(HashJob) -> Result<String, SecretError>,
    {
        if self.users.count_users().await? > 0 {
            return Ok(FirstAdmin::AlreadyBootstrapped);
        }
        let username = Username::parse(FIRST_ADMIN).map_err(UserError::Invalid)?;
        match self
            .store(username, password, Role::ALL.to_vec(), blocking)
            .await
        {
            Ok(user) => Ok(FirstAdmin::Created(user)),
            Err(UserError::Taken(_)) => Ok(FirstAdmin::AlreadyBootstrapped),
            Err(e) => Err(e),
        }
    }

    /// Every user, by username.
    pub async fn list(&self) -> Result<Vec<User>, UserError> {
        Ok(self.users.list_users().await?)
    }

    /// Deletes `username` on behalf of `caller` (the user making the request; `None` for a
    /// caller that is not a user, such as an API key). Errors: `OwnUser` when the caller names
    /// itself, `LastAdmin` when the user is the only admin, `Repo(NotFound)` for an unknown
    /// user, `Repo`.
    pub async fn delete(
        &self,
        caller: Option<&Username>,
        username: &Username,
    ) -> Result<(), UserError> {
        if caller == Some(username) {
            return Err(UserError::OwnUser);
        }
        match self.users.delete_user_unless_last_admin(username).await? {
            UserDeletion::Deleted => Ok(()),
            UserDeletion::LastAdmin => Err(UserError::LastAdmin),
        }
    }

    async fn store<B>(
        &self,
        username: Username,
        password: Password,
        roles: Vec<Role>,
        blocking: B,
    ) -> Result<User, UserError>
    where
        B: AsyncFnOnce(HashJob) -> Result<String, SecretError>,
    {
        let password_hash = blocking(HashJob(password)).await?;
        let user = User {
            username,
            password_hash,
            roles,
            created_at: self.clock.now(),
        };
        match self.users.insert_user(&user).await {
            Ok(()) => Ok(user),
            Err(RepoError::Conflict(_)) => Err(UserError::Taken(user.username)),
            Err(e) => Err(e.into()),
        }
    }
}

/// The errors a failed [`Validator`] collected.
fn invalid(v: Validator) -> ValidationError {
    match v.finish() {
        Err(e) => e,
        // A check came out `None` only by recording an error, so this arm is not reached; an
        // error that names no field is still better than a panic.
        Ok(()) => ValidationError::field("user", "the user is not valid"),
    }
}

#[cfg(test)]
mod tests;
