//! The first user: on a database without users, an `admin` with every role is created, with
//! `BATON_ADMIN_PASSWORD` or a random password shown once on standard output.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use baton_domain::Clock;
use baton_domain::auth::{Password, SecretError, generate_secret};
use baton_domain::ports::UserRepository;
use baton_domain::services::users::{FIRST_ADMIN, FirstAdmin, HashJob, UserService};

/// The first user's name.
pub const ADMIN_USERNAME: &str = FIRST_ADMIN;

/// Characters of a generated password: 24 hex characters are 96 random bits.
const GENERATED_PASSWORD_CHARS: usize = 24;

/// What the bootstrap found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminBootstrap {
    /// The database already had users (or another server created the admin meanwhile).
    AlreadyBootstrapped,
    /// The admin was created with `BATON_ADMIN_PASSWORD`.
    CreatedWithConfiguredPassword,
    /// The admin was created with a random password, which was printed once.
    CreatedWithGeneratedPassword,
}

/// The admin created by [`ensure_admin`], with the password to show if it was generated.
#[derive(Debug)]
pub enum Outcome {
    AlreadyBootstrapped,
    Created { generated: Option<Password> },
}

impl Outcome {
    pub fn summary(&self) -> AdminBootstrap {
        match self {
            Self::AlreadyBootstrapped => AdminBootstrap::AlreadyBootstrapped,
            Self::Created { generated: None } => AdminBootstrap::CreatedWithConfiguredPassword,
            Self::Created { generated: Some(_) } => AdminBootstrap::CreatedWithGeneratedPassword,
        }
    }
}

/// Creates the `admin` user if the database has no user at all, through the same rules as
/// every other user. Of several servers starting at once on one database, one creates it; the
/// others take the database as bootstrapped.
pub async fn ensure_admin(
    users: Arc<dyn UserRepository>,
    clock: Arc<dyn Clock>,
    configured: Option<Password>,
) -> anyhow::Result<Outcome> {
    let (password, generated) = match configured {
        Some(password) => (password, false),
        None => (generate_password()?, true),
    };
    let outcome = UserService::new(users, clock)
        .create_first_admin(password.clone(), hash_off_the_async_threads)
        .await
        .context("creating the admin user")?;
    Ok(match outcome {
        FirstAdmin::AlreadyBootstrapped => Outcome::AlreadyBootstrapped,
        FirstAdmin::Created(_) => Outcome::Created {
            generated: generated.then_some(password),
        },
    })
}

/// argon2id is slow on purpose (tens of milliseconds of CPU): it runs off the async threads.
async fn hash_off_the_async_threads(job: HashJob) -> Result<String, SecretError> {
    tokio::task::spawn_blocking(move || job.run())
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "the blocking pool failed to hash the admin password");
            Err(SecretError::Hashing)
        })
}

fn generate_password() -> anyhow::Result<Password> {
    let mut text = generate_secret("").context("generating the admin password")?;
    text.truncate(GENERATED_PASSWORD_CHARS);
    Password::new(text).context("the generated admin password breaks the password rules")
}

/// Shows a generated admin password once, on standard output and never in a log line: this is
/// the one place Baton displays a secret it keeps.
pub fn print_generated_password(password: &Password, mut out: impl Write) -> std::io::Result<()> {
    let rule = "=".repeat(72);
    writeln!(out, "{rule}")?;
    writeln!(out, "  Baton created the first user of this database.")?;
    writeln!(out)?;
    writeln!(out, "    username: {ADMIN_USERNAME}")?;
    writeln!(out, "    password: {}", password.expose())?;
    writeln!(out)?;
    writeln!(
        out,
        "  This password is shown only this once: store it in a password manager."
    )?;
    writeln!(
        out,
        "  To choose it yourself, set BATON_ADMIN_PASSWORD before the first start."
    )?;
    writeln!(out, "{rule}")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_random_and_valid() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_eq!(a.expose().len(), GENERATED_PASSWORD_CHARS);
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn the_banner_shows_the_username_and_password() {
        let password = Password::new("0123456789abcdef01234567".into()).unwrap();
        let mut out = Vec::new();
        print_generated_password(&password, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("    username: admin\n"));
        assert!(text.contains("    password: 0123456789abcdef01234567\n"));
        assert!(text.contains("shown only this once"));
    }
}
