//! The JWT signing secret: from `JWT_SECRET_KEY`, or generated once and kept in a file beside
//! the SQLite database so tokens survive restarts.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use baton_domain::auth::generate_secret;

use crate::config::{Config, DatabaseKind};

/// The file name of the generated secret, in the SQLite database's directory.
pub const SECRET_FILE_NAME: &str = "jwt-secret";

/// Below this many bytes an HMAC secret is guessable; such a configured secret is warned about.
const MIN_SECRET_BYTES: usize = 32;

/// The secret that signs and verifies JWTs. Its `Debug` never shows it.
#[derive(Clone)]
pub struct JwtSecret(String);

impl JwtSecret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtSecret(****)")
    }
}

/// Where the secret came from, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Configured,
    /// Read from the file a previous start wrote.
    File(PathBuf),
    /// Generated now and written to the file.
    Generated(PathBuf),
    /// Generated now and kept in memory only (the in-memory database does not persist either).
    Ephemeral,
}

/// The secret for `config`: `JWT_SECRET_KEY` when set, else the file beside the SQLite
/// database (created on first start), else, for the in-memory database, a fresh one.
/// PostgreSQL without `JWT_SECRET_KEY` is refused earlier by [`Config::check_for_serving`].
pub fn resolve_jwt_secret(config: &Config) -> anyhow::Result<(JwtSecret, SecretSource)> {
    if let Some(secret) = config.jwt_secret() {
        if secret.len() < MIN_SECRET_BYTES {
            tracing::warn!(
                "JWT_SECRET_KEY is shorter than {MIN_SECRET_BYTES} bytes: tokens signed with it \
                 can be forged by brute force; use e.g. `openssl rand -hex 32`"
            );
        }
        return Ok((JwtSecret(secret.to_owned()), SecretSource::Configured));
    }
    match config.database_kind()? {
        DatabaseKind::SqliteFile(db_path) => {
            let dir = match db_path.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
                _ => PathBuf::from("."),
            };
            load_or_create(&dir.join(SECRET_FILE_NAME))
        }
        DatabaseKind::SqliteMemory => Ok((new_secret()?, SecretSource::Ephemeral)),
        DatabaseKind::Postgres => bail!(crate::config::ConfigError::SharedSecretRequired),
    }
}

fn new_secret() -> anyhow::Result<JwtSecret> {
    Ok(JwtSecret(
        generate_secret("").context("generating a JWT secret")?,
    ))
}

/// Reads the secret at `path`, or creates it readable by the owner only. Two servers starting
/// at once on one SQLite file agree on one secret: each writes its candidate to a private
/// temporary file and hard-links it into place, which fails for all but the first.
pub fn load_or_create(path: &Path) -> anyhow::Result<(JwtSecret, SecretSource)> {
    if let Some(secret) = read_secret(path)? {
        return Ok((secret, SecretSource::File(path.to_owned())));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let secret = new_secret()?;
    let candidate = dir.join(format!(
        ".{SECRET_FILE_NAME}.{}.tmp",
        generate_secret("").context("naming a temporary file")?
    ));
    write_private(&candidate, secret.expose())
        .with_context(|| format!("writing {}", candidate.display()))?;
    let linked = fs::hard_link(&candidate, path);
    // The candidate is only a staging copy; failing to remove it leaves a private file behind,
    // which is harmless.
    let _ = fs::remove_file(&candidate);
    match linked {
        Ok(()) => Ok((secret, SecretSource::Generated(path.to_owned()))),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_secret(path)?
            .map(|s| (s, SecretSource::File(path.to_owned())))
            .with_context(|| format!("{} appeared empty", path.display())),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

fn write_private(path: &Path, secret: &str) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(secret.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// The secret stored at `path`, `None` if there is no file.
fn read_secret(path: &Path) -> anyhow::Result<Option<JwtSecret>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let secret = text.trim();
    if secret.is_empty() {
        bail!(
            "{} is empty: delete it to have a new secret generated (this logs every user out), \
             or set JWT_SECRET_KEY",
            path.display()
        );
    }
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            "the JWT secret file is readable by other users: run `chmod 600` on it"
        );
    }
    Ok(Some(JwtSecret(secret.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_secret_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join(SECRET_FILE_NAME);
        let (first, source) = load_or_create(&path).unwrap();
        assert_eq!(source, SecretSource::Generated(path.clone()));
        assert_eq!(first.expose().len(), 64);
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let (second, source) = load_or_create(&path).unwrap();
        assert_eq!(source, SecretSource::File(path.clone()));
        assert_eq!(first.expose(), second.expose());
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temporary files were left behind");
    }

    #[test]
    fn concurrent_starts_agree_on_one_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SECRET_FILE_NAME);
        let secrets: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| load_or_create(&path).unwrap().0.expose().to_owned()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(secrets.iter().all(|s| s == &secrets[0]));
    }

    #[test]
    fn an_empty_secret_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SECRET_FILE_NAME);
        fs::write(&path, "\n").unwrap();
        let err = load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("is empty"), "{err}");
    }

    #[test]
    fn the_secret_lives_beside_the_sqlite_file_unless_configured() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sub").join("baton.db");
        let config = Config {
            database_url: format!("sqlite://{}", db.display()),
            ..Config::default()
        };
        let (_, source) = resolve_jwt_secret(&config).unwrap();
        assert_eq!(
            source,
            SecretSource::Generated(dir.path().join("sub").join(SECRET_FILE_NAME))
        );

        let configured = Config {
            jwt_secret_key: Some("k".repeat(40)),
            ..config
        };
        let (secret, source) = resolve_jwt_secret(&configured).unwrap();
        assert_eq!(source, SecretSource::Configured);
        assert_eq!(secret.expose(), "k".repeat(40));
        assert_eq!(format!("{secret:?}"), "JwtSecret(****)");

        let memory = Config {
            use_memory_queue: true,
            ..Config::default()
        };
        assert_eq!(
            resolve_jwt_secret(&memory).unwrap().1,
            SecretSource::Ephemeral
        );
    }
}
