//! The session rules against in-memory stand-ins: a codec that keeps claims in a table, a guard
//! with a revocation set, and a clock the test moves.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use time::macros::datetime;

use super::*;
use crate::auth::Role;
use crate::error::RepoResult;
use crate::ports::{FailureKind, MockUserRepository};

const START: Timestamp = datetime!(2025-03-01 12:00 UTC);

struct TestClock(Mutex<Timestamp>);

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

struct Counter(AtomicU64);

impl IdGenerator for Counter {
    fn new_uuid(&self) -> uuid::Uuid {
        uuid::Uuid::from_u128(u128::from(self.0.fetch_add(1, Ordering::SeqCst)))
    }
}

/// Tokens are `tok-N` indexes into a table; `forged` decodes as invalid.
#[derive(Default)]
struct TableCodec(Mutex<Vec<TokenClaims>>);

impl TokenCodec for TableCodec {
    fn encode(&self, claims: &TokenClaims) -> Result<String, TokenError> {
        let mut table = self.0.lock().unwrap();
        table.push(claims.clone());
        Ok(format!("tok-{}", table.len() - 1))
    }

    fn decode(&self, token: &str, now: Timestamp) -> Result<TokenClaims, TokenError> {
        let index: usize = token
            .strip_prefix("tok-")
            .and_then(|n| n.parse().ok())
            .ok_or(TokenError::Invalid)?;
        let claims = self
            .0
            .lock()
            .unwrap()
            .get(index)
            .cloned()
            .ok_or(TokenError::Invalid)?;
        if claims.expires_at <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[derive(Default)]
struct MemoryGuard(Mutex<HashSet<String>>);

#[async_trait]
impl AccessGuardRepository for MemoryGuard {
    async fn revoke_token(&self, jti: &str, _expires_at: Timestamp) -> RepoResult<bool> {
        Ok(self.0.lock().unwrap().insert(jti.to_owned()))
    }
    async fn is_token_revoked(&self, jti: &str) -> RepoResult<bool> {
        Ok(self.0.lock().unwrap().contains(jti))
    }
    async fn purge_expired_revocations(&self, _now: Timestamp) -> RepoResult<u64> {
        Ok(0)
    }
    async fn record_auth_failure(
        &self,
        _: &str,
        _: FailureKind,
        _: Timestamp,
        _: Timestamp,
    ) -> RepoResult<u32> {
        unreachable!("sessions do not count failures")
    }
    async fn clear_key_failures(&self, _: &str) -> RepoResult<()> {
        unreachable!("sessions do not count failures")
    }
    async fn clear_auth_failures(&self, _: &str) -> RepoResult<()> {
        unreachable!("sessions do not count failures")
    }
    async fn ban_ip(&self, _: &str, _: Timestamp) -> RepoResult<()> {
        unreachable!("sessions do not ban")
    }
    async fn active_ban(&self, _: &str, _: Timestamp) -> RepoResult<Option<Timestamp>> {
        unreachable!("sessions do not ban")
    }
}

struct Fixture {
    service: SessionService,
    clock: Arc<TestClock>,
}

fn alice() -> User {
    User {
        username: Username::parse("alice").unwrap(),
        password_hash: "hash-of:right".into(),
        roles: vec![Role::Operator],
        created_at: START,
    }
}

/// A service whose only user is `alice` (while `alice_exists` says so).
fn fixture(alice_exists: Arc<Mutex<bool>>) -> Fixture {
    let mut users = MockUserRepository::new();
    users.expect_get_user().returning(move |name| {
        if name.as_str() == "alice" && *alice_exists.lock().unwrap() {
            Ok(alice())
        } else {
            Err(RepoError::NotFound("user"))
        }
    });
    let clock = Arc::new(TestClock(Mutex::new(START)));
    let service = SessionService::new(
        Arc::new(users),
        Arc::new(MemoryGuard::default()),
        Arc::new(TableCodec::default()),
        clock.clone(),
        Arc::new(Counter(AtomicU64::new(1))),
        TokenLifetimes::default(),
    );
    Fixture { service, clock }
}

async fn fake_verify(password: Password, hash: String) -> bool {
    hash == format!("hash-of:{}", password.expose())
}

async fn login(service: &SessionService, password: &str) -> Result<TokenPair, SessionError> {
    service
        .login(
            "alice",
            Password::candidate(password.into()).unwrap(),
            None,
            "decoy",
            fake_verify,
        )
        .await
        .map(|(_, pair)| pair)
}

#[tokio::test]
async fn login_issues_a_pair_that_authenticates() {
    let f = fixture(Arc::new(Mutex::new(true)));
    let pair = login(&f.service, "right").await.unwrap();
    assert_eq!(pair.expires_in, 3600);
    let session = f.service.authenticate(&pair.access_token).await.unwrap();
    assert_eq!(session.user.username.as_str(), "alice");
    assert_eq!(session.claims.kind, TokenKind::Access);
    assert_eq!(session.claims.expires_at, START + time::Duration::hours(1));
}

#[tokio::test]
async fn wrong_passwords_and_unknown_users_look_the_same_and_still_hash() {
    let f = fixture(Arc::new(Mutex::new(true)));
    assert!(matches!(
        login(&f.service, "wrong").await,
        Err(SessionError::BadCredentials)
    ));
    let verified_against = Arc::new(Mutex::new(String::new()));
    let seen = verified_against.clone();
    let result = f
        .service
        .login(
            "mallory",
            Password::candidate("x".into()).unwrap(),
            None,
            "decoy",
            async move |_, hash| {
                *seen.lock().unwrap() = hash;
                true
            },
        )
        .await;
    assert!(matches!(result, Err(SessionError::BadCredentials)));
    assert_eq!(*verified_against.lock().unwrap(), "decoy");
}

#[tokio::test]
async fn a_refresh_token_rotates_once_and_reuse_ends_the_session() {
    let f = fixture(Arc::new(Mutex::new(true)));
    let first = login(&f.service, "right").await.unwrap();
    let second = f.service.refresh(&first.refresh_token).await.unwrap();
    assert!(f.service.authenticate(&second.access_token).await.is_ok());

    assert!(matches!(
        f.service.refresh(&first.refresh_token).await,
        Err(SessionError::RevokedToken)
    ));
    // The reuse revoked the session, so the rotated tokens die with it.
    assert!(matches!(
        f.service.authenticate(&second.access_token).await,
        Err(SessionError::RevokedToken)
    ));
    assert!(matches!(
        f.service.refresh(&second.refresh_token).await,
        Err(SessionError::RevokedToken)
    ));
}

#[tokio::test]
async fn tokens_of_the_wrong_kind_are_refused() {
    let f = fixture(Arc::new(Mutex::new(true)));
    let pair = login(&f.service, "right").await.unwrap();
    assert!(matches!(
        f.service.refresh(&pair.access_token).await,
        Err(SessionError::WrongKind {
            expected: "refresh",
            got: "access"
        })
    ));
    assert!(matches!(
        f.service.authenticate(&pair.refresh_token).await,
        Err(SessionError::WrongKind { .. })
    ));
}

#[tokio::test]
async fn a_browser_session_is_one_access_token_that_lives_its_own_lifetime() {
    let f = fixture(Arc::new(Mutex::new(true)));
    let right = || Password::candidate("right".into()).unwrap();
    let (user, browser) = f
        .service
        .start_browser_session("alice", right(), "decoy", fake_verify)
        .await
        .unwrap();
    assert_eq!(user.username.as_str(), "alice");
    assert_eq!(browser.expires_at, START + time::Duration::hours(12));
    let session = f.service.authenticate(&browser.token).await.unwrap();
    assert_eq!(session.claims.kind, TokenKind::Access);
    assert!(matches!(
        f.service.refresh(&browser.token).await,
        Err(SessionError::WrongKind { .. })
    ));
    f.service.logout(&session.claims).await.unwrap();
    assert!(matches!(
        f.service.authenticate(&browser.token).await,
        Err(SessionError::RevokedToken)
    ));
    let wrong = Password::candidate("wrong".into()).unwrap();
    assert!(matches!(
        f.service
            .start_browser_session("alice", wrong, "decoy", fake_verify)
            .await,
        Err(SessionError::BadCredentials)
    ));
}

#[tokio::test]
async fn logout_revokes_access_and_refresh_tokens() {
    let f = fixture(Arc::new(Mutex::new(true)));
    let pair = login(&f.service, "right").await.unwrap();
    let session = f.service.authenticate(&pair.access_token).await.unwrap();
    f.service.logout(&session.claims).await.unwrap();
    assert!(matches!(
        f.service.authenticate(&pair.access_token).await,
        Err(SessionError::RevokedToken)
    ));
    assert!(matches!(
        f.service.refresh(&pair.refresh_token).await,
        Err(SessionError::RevokedToken)
    ));
}

#[tokio::test]
async fn expired_and_forged_tokens_are_told_apart() {
    let f = fixture(Arc::new(Mutex::new(true)));
    let pair = login(&f.service, "right").await.unwrap();
    *f.clock.0.lock().unwrap() = START + time::Duration::hours(1);
    assert!(matches!(
        f.service.authenticate(&pair.access_token).await,
        Err(SessionError::ExpiredToken)
    ));
    assert!(f.service.refresh(&pair.refresh_token).await.is_ok());
    assert!(matches!(
        f.service.authenticate("forged").await,
        Err(SessionError::InvalidToken)
    ));
}

#[tokio::test]
async fn tokens_of_a_deleted_user_stay_dead_when_the_name_is_reused() {
    let f = fixture(Arc::new(Mutex::new(true)));
    let pair = login(&f.service, "right").await.unwrap();
    // A later `alice`, created even within the same second, is somebody else.
    let mut users = MockUserRepository::new();
    users.expect_get_user().returning(|_| {
        Ok(User {
            created_at: START + time::Duration::microseconds(1),
            ..alice()
        })
    });
    let service = SessionService::new(
        Arc::new(users),
        Arc::new(MemoryGuard::default()),
        f.service.codec.clone(),
        f.clock.clone(),
        Arc::new(Counter(AtomicU64::new(100))),
        TokenLifetimes::default(),
    );
    assert!(matches!(
        service.authenticate(&pair.access_token).await,
        Err(SessionError::RevokedToken)
    ));
    assert!(matches!(
        service.refresh(&pair.refresh_token).await,
        Err(SessionError::RevokedToken)
    ));
}

#[tokio::test]
async fn a_deleted_user_loses_access_at_once() {
    let exists = Arc::new(Mutex::new(true));
    let f = fixture(exists.clone());
    let pair = login(&f.service, "right").await.unwrap();
    *exists.lock().unwrap() = false;
    assert!(matches!(
        f.service.authenticate(&pair.access_token).await,
        Err(SessionError::RevokedToken)
    ));
    assert!(matches!(
        f.service.refresh(&pair.refresh_token).await,
        Err(SessionError::RevokedToken)
    ));
}
