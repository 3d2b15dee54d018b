//! API keys, robot tokens and the brute-force rule that guards every credential.

use std::sync::Arc;

use crate::auth::{ApiKey, constant_time_eq, sha256_hex};
use crate::clock::Timestamp;
use crate::error::{RepoError, RepoResult};
use crate::ports::{AccessGuardRepository, ApiKeyRepository, FailureKind, RobotRepository};
use crate::robot::RobotId;

/// Longer presented secrets are refused before hashing: ours are under 100 bytes.
pub const MAX_SECRET_BYTES: usize = 512;

/// Why a presented key or token was refused.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// Unknown, revoked or malformed: counts as a failed authentication.
    #[error("the credential is not valid")]
    Invalid,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// The brute-force rule: the `max_failures`th failed authentication from one address within
/// `window` bans the address for `ban`.
///
/// Failures are counted per address and per [`FailureKind`], and the kinds add up: four wrong
/// API keys and one wrong password are five failures. What clears them differs by kind. A
/// request with a valid API key clears its address's key failures (keys are 256-bit random, so
/// that forgives honest mistakes and helps no guesser); nothing clears password failures but
/// the end of their window or a ban, since a successful sign-in to one account must not let the
/// same address go on guessing another's password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BruteForcePolicy {
    pub max_failures: u32,
    pub window: time::Duration,
    pub ban: time::Duration,
}

impl Default for BruteForcePolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: time::Duration::seconds(60),
            ban: time::Duration::hours(1),
        }
    }
}

impl BruteForcePolicy {
    /// Counts one failed authentication of `kind` from `ip`; returns the end of the ban when
    /// this failure reached the limit. The count restarts after a ban, so an address is not
    /// banned again by its first failure once the ban is over.
    pub async fn record_failure(
        &self,
        guard: &dyn AccessGuardRepository,
        ip: &str,
        kind: FailureKind,
        now: Timestamp,
    ) -> RepoResult<Option<Timestamp>> {
        let failures = guard
            .record_auth_failure(ip, kind, now, now - self.window)
            .await?;
        if failures < self.max_failures {
            return Ok(None);
        }
        let until = now + self.ban;
        guard.ban_ip(ip, until).await?;
        guard.clear_auth_failures(ip).await?;
        Ok(Some(until))
    }
}

/// The key behind `X-API-Key` or `Authorization: Bearer`, if it is a live one.
///
/// The lookup is by SHA-256: the database sees only the hash, and since keys are 256-bit
/// random, a lookup's timing tells an attacker nothing. The stored hash is still compared in
/// constant time before the key is trusted.
pub async fn authenticate_api_key(
    keys: &dyn ApiKeyRepository,
    presented: &str,
) -> Result<ApiKey, CredentialError> {
    if presented.is_empty() || presented.len() > MAX_SECRET_BYTES {
        return Err(CredentialError::Invalid);
    }
    let hash = sha256_hex(presented);
    match keys.find_api_key_by_hash(&hash).await {
        Ok(key) if constant_time_eq(&key.key_hash, &hash) && key.revoked_at.is_none() => Ok(key),
        Ok(_) | Err(RepoError::NotFound(_)) => Err(CredentialError::Invalid),
        Err(e) => Err(e.into()),
    }
}

/// Robot tokens: `ROBOT_TOKENS` entries from the configuration, then robots created through the
/// API (whose token hashes live in the database).
pub struct RobotTokens {
    configured: Vec<(RobotId, String)>,
    robots: Arc<dyn RobotRepository>,
}

impl RobotTokens {
    /// `configured` holds `(robot id, lower-case hex SHA-256 of its token)` pairs.
    pub fn new(configured: Vec<(RobotId, String)>, robots: Arc<dyn RobotRepository>) -> Self {
        Self { configured, robots }
    }

    /// The robot a token belongs to. Every configured entry is compared, in constant time, so
    /// the time taken does not say which entry (if any) came close.
    pub async fn authenticate(&self, presented: &str) -> Result<RobotId, CredentialError> {
        if presented.is_empty() || presented.len() > MAX_SECRET_BYTES {
            return Err(CredentialError::Invalid);
        }
        let hash = sha256_hex(presented);
        let mut found = None;
        for (robot, expected) in &self.configured {
            if constant_time_eq(expected, &hash) && found.is_none() {
                found = Some(robot.clone());
            }
        }
        if let Some(robot) = found {
            return Ok(robot);
        }
        match self.robots.find_robot_by_token_hash(&hash).await {
            Ok(robot)
                if robot
                    .token_hash()
                    .is_some_and(|stored| constant_time_eq(stored, &hash)) =>
            {
                Ok(robot.robot_id().clone())
            }
            Ok(_) | Err(RepoError::NotFound(_)) => Err(CredentialError::Invalid),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether `robot` is listed in `ROBOT_TOKENS` (such robots exist without a database row
    /// until their first heartbeat).
    pub fn is_configured(&self, robot: &RobotId) -> bool {
        self.configured.iter().any(|(id, _)| id == robot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::ids::ApiKeyId;
    use crate::ports::{MockAccessGuardRepository, MockApiKeyRepository, MockRobotRepository};
    use crate::robot::Robot;
    use mockall::predicate::eq;
    use time::macros::datetime;

    const NOW: Timestamp = datetime!(2025-03-01 12:00 UTC);

    /// A guard whose counter answers 1, 2, 3… and expects `kinds`, in order, then one ban.
    fn counting_guard(kinds: Vec<FailureKind>) -> MockAccessGuardRepository {
        let mut guard = MockAccessGuardRepository::new();
        let mut count = 0;
        let calls = kinds.len();
        guard
            .expect_record_auth_failure()
            .withf(|ip, _, now, start| {
                ip == "10.0.0.9" && *now == NOW && *start == NOW - time::Duration::seconds(60)
            })
            .times(calls)
            .returning(move |_, kind, _, _| {
                assert_eq!(kind, kinds[count], "failure {}", count + 1);
                count += 1;
                Ok(count as u32)
            });
        guard
            .expect_ban_ip()
            .with(eq("10.0.0.9"), eq(NOW + time::Duration::hours(1)))
            .times(1)
            .returning(|_, _| Ok(()));
        guard
            .expect_clear_auth_failures()
            .with(eq("10.0.0.9"))
            .times(1)
            .returning(|_| Ok(()));
        guard
    }

    async fn fail(
        policy: &BruteForcePolicy,
        guard: &MockAccessGuardRepository,
        kind: FailureKind,
    ) -> Option<Timestamp> {
        policy
            .record_failure(guard, "10.0.0.9", kind, NOW)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_fifth_failure_bans_and_restarts_the_count() {
        let policy = BruteForcePolicy::default();
        let guard = counting_guard(vec![FailureKind::Key; 5]);
        for _ in 0..4 {
            assert_eq!(fail(&policy, &guard, FailureKind::Key).await, None);
        }
        assert_eq!(
            fail(&policy, &guard, FailureKind::Key).await,
            Some(NOW + time::Duration::hours(1))
        );
    }

    #[tokio::test]
    async fn failures_of_both_kinds_add_up_to_the_ban() {
        use FailureKind::{Key, Password};
        let policy = BruteForcePolicy::default();
        let kinds = vec![Password, Key, Password, Key, Password];
        let guard = counting_guard(kinds.clone());
        for kind in &kinds[..4] {
            assert_eq!(fail(&policy, &guard, *kind).await, None);
        }
        assert_eq!(
            fail(&policy, &guard, Password).await,
            Some(NOW + time::Duration::hours(1)),
            "the fifth failure bans, whatever its kind"
        );
    }

    fn key(hash: &str, revoked: bool) -> ApiKey {
        ApiKey {
            id: ApiKeyId::from_uuid(uuid::Uuid::nil()),
            name: "ci".into(),
            key_hash: hash.into(),
            roles: vec![Role::Operator],
            created_at: NOW,
            revoked_at: revoked.then_some(NOW),
        }
    }

    #[tokio::test]
    async fn api_keys_are_found_by_hash_and_refused_when_unknown_revoked_or_oversized() {
        let mut keys = MockApiKeyRepository::new();
        let good = sha256_hex("bk_good");
        let revoked = sha256_hex("bk_revoked");
        keys.expect_find_api_key_by_hash().returning(move |hash| {
            if hash == good {
                Ok(key(hash, false))
            } else if hash == revoked {
                Ok(key(hash, true))
            } else {
                Err(RepoError::NotFound("api key"))
            }
        });
        assert!(authenticate_api_key(&keys, "bk_good").await.is_ok());
        for bad in ["bk_revoked", "bk_other", ""] {
            assert!(matches!(
                authenticate_api_key(&keys, bad).await,
                Err(CredentialError::Invalid)
            ));
        }
        let huge = "k".repeat(MAX_SECRET_BYTES + 1);
        assert!(matches!(
            authenticate_api_key(&keys, &huge).await,
            Err(CredentialError::Invalid)
        ));
    }

    #[tokio::test]
    async fn an_unavailable_store_is_not_a_bad_key() {
        let mut keys = MockApiKeyRepository::new();
        keys.expect_find_api_key_by_hash()
            .returning(|_| Err(RepoError::Unavailable("down".into())));
        assert!(matches!(
            authenticate_api_key(&keys, "bk_x").await,
            Err(CredentialError::Repo(RepoError::Unavailable(_)))
        ));
    }

    #[tokio::test]
    async fn robot_tokens_come_from_the_configuration_then_the_database() {
        let configured = RobotId::parse("robot-001").unwrap();
        let mut robots = MockRobotRepository::new();
        let api_hash = sha256_hex("br_api");
        robots
            .expect_find_robot_by_token_hash()
            .returning(move |hash| {
                if hash == api_hash {
                    Robot::register(
                        RobotId::parse("robot-api").unwrap(),
                        None,
                        Some(hash.to_owned()),
                        NOW,
                    )
                    .map_err(|e| RepoError::Internal(e.to_string()))
                } else {
                    Err(RepoError::NotFound("robot"))
                }
            });
        let tokens = RobotTokens::new(
            vec![(configured.clone(), sha256_hex("static-secret"))],
            Arc::new(robots),
        );
        assert_eq!(
            tokens.authenticate("static-secret").await.unwrap(),
            configured
        );
        assert_eq!(
            tokens.authenticate("br_api").await.unwrap().as_str(),
            "robot-api"
        );
        assert!(matches!(
            tokens.authenticate("guess").await,
            Err(CredentialError::Invalid)
        ));
        assert!(tokens.is_configured(&configured));
    }
}
