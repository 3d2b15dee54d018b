//! Who may call: users, API keys, robot tokens, and the secrets behind them.
//!
//! Secrets are generated here, stored only as hashes (argon2id for passwords, SHA-256 for the
//! high-entropy keys and tokens), and compared in constant time.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clock::Timestamp;
use crate::error::ValidationError;
use crate::ids::ApiKeyId;

/// The roles of CasareRPA's matrix, from most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Admin,
    Developer,
    Operator,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 4] = [Self::Admin, Self::Developer, Self::Operator, Self::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Developer => "developer",
            Self::Operator => "operator",
            Self::Viewer => "viewer",
        }
    }

    /// Parses a list of role names; an empty list is refused so nobody is created powerless by mistake.
    pub fn parse_list<S: AsRef<str>>(names: &[S]) -> Result<Vec<Role>, ValidationError> {
        if names.is_empty() {
            return Err(ValidationError::field(
                "roles",
                "must name at least one role",
            ));
        }
        let mut roles = Vec::new();
        for name in names {
            let role: Role = name.as_ref().parse()?;
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
        roles.sort();
        Ok(roles)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                ValidationError::field(
                    "roles",
                    format!("unknown role '{s}': use admin, developer, operator or viewer"),
                )
            })
    }
}

/// What a caller may do. Every route requires exactly one of these; robots are authorised
/// separately (they act only as themselves, through the robot protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Read anything: workflows, jobs, queues, schedules, flows, metrics, activity.
    Read,
    /// Run and steer work: run or cancel jobs, fire triggers and set their status, start, stop,
    /// pause and resume flows, add and update queue items.
    Operate,
    /// Change what runs: create, change and delete workflows, schedules, triggers and flows.
    Develop,
    /// Manage who may call: users, API keys and robots.
    Administer,
}

impl Permission {
    pub const ALL: [Permission; 4] = [Self::Read, Self::Operate, Self::Develop, Self::Administer];
}

impl Role {
    /// CasareRPA's matrix: each role has the powers of the roles below it, plus its own.
    pub fn allows(self, permission: Permission) -> bool {
        let rank = |role: Role| match role {
            Role::Viewer => 0,
            Role::Operator => 1,
            Role::Developer => 2,
            Role::Admin => 3,
        };
        let needed = match permission {
            Permission::Read => Role::Viewer,
            Permission::Operate => Role::Operator,
            Permission::Develop => Role::Developer,
            Permission::Administer => Role::Admin,
        };
        rank(self) >= rank(needed)
    }
}

/// Whether any of `roles` allows `permission`.
pub fn roles_allow(roles: &[Role], permission: Permission) -> bool {
    roles.iter().any(|role| role.allows(permission))
}

/// A login name: 1–100 characters of letters, digits and `._@-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

impl Username {
    pub fn parse(value: impl Into<String>) -> Result<Self, ValidationError> {
        let value = value.into();
        let ok = (1..=100).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
        if ok {
            Ok(Self(value))
        } else {
            Err(ValidationError::field(
                "username",
                "must be 1-100 characters of letters, digits, '.', '_', '@' or '-'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A plaintext password on its way to the hasher. Its `Debug` never shows the text.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    /// argon2 hashes any length, but unbounded input is a denial-of-service lever.
    pub const MAX_BYTES: usize = 1024;

    /// A password a new account may have.
    pub fn new(value: String) -> Result<Self, ValidationError> {
        if value.chars().count() < Self::MIN_CHARS {
            return Err(ValidationError::field(
                "password",
                format!("must be at least {} characters", Self::MIN_CHARS),
            ));
        }
        Self::candidate(value)
    }

    /// A password offered at login: only the size limit applies.
    pub fn candidate(value: String) -> Result<Self, ValidationError> {
        if value.len() > Self::MAX_BYTES {
            return Err(ValidationError::field(
                "password",
                format!("must be at most {} bytes", Self::MAX_BYTES),
            ));
        }
        Ok(Self(value))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(****)")
    }
}

/// Hashes and verifies passwords. Implementations must be slow on purpose (argon2id).
pub trait PasswordHasher: Send + Sync {
    /// A PHC-format hash with a fresh random salt.
    fn hash(&self, password: &Password) -> Result<String, SecretError>;
    /// True when `password` matches `hash`; a malformed hash is `false`, not an error.
    fn verify(&self, password: &Password, hash: &str) -> bool;
}

/// argon2id with the crate's recommended parameters (19 MiB, 2 passes).
#[derive(Debug, Default, Clone, Copy)]
pub struct Argon2idHasher;

impl PasswordHasher for Argon2idHasher {
    fn hash(&self, password: &Password) -> Result<String, SecretError> {
        use argon2::password_hash::{PasswordHasher as _, SaltString};
        let mut salt_bytes = [0u8; 16];
        getrandom::fill(&mut salt_bytes).map_err(|_| SecretError::NoRandomness)?;
        let salt = SaltString::encode_b64(&salt_bytes).map_err(|_| SecretError::Hashing)?;
        argon2::Argon2::default()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|_| SecretError::Hashing)
    }

    fn verify(&self, password: &Password, hash: &str) -> bool {
        use argon2::password_hash::{PasswordHash, PasswordVerifier as _};
        PasswordHash::new(hash)
            .map(|parsed| {
                argon2::Argon2::default()
                    .verify_password(password.expose().as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    }
}

/// Secret handling failed in a way no client can fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the operating system's random source failed")]
    NoRandomness,
    #[error("hashing failed")]
    Hashing,
}

/// A new random secret: `prefix` followed by 64 hex characters (256 bits).
pub fn generate_secret(prefix: &str) -> Result<String, SecretError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| SecretError::NoRandomness)?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

/// Lower-case hex SHA-256, how API keys and robot tokens are stored.
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares two secrets without leaking where they differ through timing.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A dashboard or API user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub username: Username,
    pub password_hash: String,
    pub roles: Vec<Role>,
    pub created_at: Timestamp,
}

/// An integrator's key. Only its SHA-256 is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    pub key_hash: String,
    pub roles: Vec<Role>,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl ApiKey {
    pub const PREFIX: &'static str = "bk_";

    /// A new key: returns the record to store and the plaintext to show once.
    pub fn issue(
        id: ApiKeyId,
        name: String,
        roles: Vec<Role>,
        now: Timestamp,
    ) -> Result<(Self, String), ApiKeyError> {
        crate::text::check_name("name", &name, 1, 100).map_err(ApiKeyError::Invalid)?;
        let key = generate_secret(Self::PREFIX).map_err(ApiKeyError::Secret)?;
        let record = Self {
            id,
            name,
            key_hash: sha256_hex(&key),
            roles,
            created_at: now,
            revoked_at: None,
        };
        Ok((record, key))
    }
}

/// Why a key could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    #[error(transparent)]
    Invalid(ValidationError),
    #[error(transparent)]
    Secret(SecretError),
}

/// Parses `ROBOT_TOKENS` (`robot-id:sha256hex,...`) into pairs, refusing malformed entries.
pub fn parse_robot_tokens(
    spec: &str,
) -> Result<Vec<(crate::robot::RobotId, String)>, ValidationError> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|entry| {
            let (id, hash) = entry.split_once(':').ok_or_else(|| {
                ValidationError::field("ROBOT_TOKENS", "entries must be robot-id:sha256hex")
            })?;
            let id = crate::robot::RobotId::parse(id)?;
            let hash = hash.to_ascii_lowercase();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ValidationError::field(
                    "ROBOT_TOKENS",
                    format!("the hash for '{id}' must be 64 hex characters"),
                ));
            }
            Ok((id, hash))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_hashes_verify_and_are_salted() {
        let hasher = Argon2idHasher;
        let pw = Password::new("correct horse".into()).unwrap();
        let a = hasher.hash(&pw).unwrap();
        let b = hasher.hash(&pw).unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "fresh salt each time");
        assert!(hasher.verify(&pw, &a));
        assert!(!hasher.verify(&Password::candidate("wrong".into()).unwrap(), &a));
        assert!(!hasher.verify(&pw, "not a hash"));
    }

    #[test]
    fn passwords_have_bounds_and_a_redacted_debug() {
        assert!(Password::new("short".into()).is_err());
        assert!(Password::candidate("x".repeat(1025)).is_err());
        assert_eq!(
            format!("{:?}", Password::new("supersecret".into()).unwrap()),
            "Password(****)"
        );
    }

    #[test]
    fn secrets_are_prefixed_random_and_hash_to_sha256() {
        let a = generate_secret("bk_").unwrap();
        let b = generate_secret("bk_").unwrap();
        assert_eq!(a.len(), 3 + 64);
        assert_ne!(a, b);
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(constant_time_eq("same", "same"));
        assert!(!constant_time_eq("same", "sane"));
        assert!(!constant_time_eq("same", "same2"));
    }

    #[test]
    fn roles_parse_dedupe_and_refuse_unknown_or_empty() {
        assert_eq!(
            Role::parse_list(&["viewer", "admin", "viewer"]).unwrap(),
            vec![Role::Admin, Role::Viewer]
        );
        assert!(Role::parse_list::<&str>(&[]).is_err());
        assert!(Role::parse_list(&["root"]).is_err());
    }

    #[test]
    fn the_permission_matrix_is_casarerpas() {
        use Permission::*;
        // One row per role: what it may and may not do.
        let matrix = [
            (Role::Viewer, [true, false, false, false]),
            (Role::Operator, [true, true, false, false]),
            (Role::Developer, [true, true, true, false]),
            (Role::Admin, [true, true, true, true]),
        ];
        for (role, expected) in matrix {
            for (permission, allowed) in [Read, Operate, Develop, Administer]
                .into_iter()
                .zip(expected)
            {
                assert_eq!(role.allows(permission), allowed, "{role} {permission:?}");
            }
        }
    }

    #[test]
    fn any_role_of_a_caller_grants_its_powers() {
        assert!(roles_allow(
            &[Role::Viewer, Role::Developer],
            Permission::Develop
        ));
        assert!(!roles_allow(&[Role::Viewer], Permission::Operate));
        assert!(!roles_allow(&[], Permission::Read), "no role, no access");
    }

    #[test]
    fn usernames_are_restricted() {
        assert!(Username::parse("admin").is_ok());
        assert!(Username::parse("jane.doe@example.com").is_ok());
        assert!(Username::parse("").is_err());
        assert!(Username::parse("a b").is_err());
    }

    #[test]
    fn api_keys_store_only_the_hash() {
        let now = time::macros::datetime!(2025-01-01 00:00 UTC);
        let (record, key) = ApiKey::issue(
            ApiKeyId::from_uuid(uuid::Uuid::nil()),
            "ci".into(),
            vec![Role::Operator],
            now,
        )
        .unwrap();
        assert!(key.starts_with("bk_"));
        assert_eq!(record.key_hash, sha256_hex(&key));
        assert!(!format!("{record:?}").contains(&key));
    }

    #[test]
    fn robot_tokens_parse_from_the_environment_format() {
        let h = "a".repeat(64);
        let parsed =
            parse_robot_tokens(&format!("robot-001:{h}, robot-002:{}", "B".repeat(64))).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1].1, "b".repeat(64));
        assert!(parse_robot_tokens("robot-001").is_err());
        assert!(parse_robot_tokens("robot-001:abc").is_err());
        assert!(parse_robot_tokens("").unwrap().is_empty());
    }
}
