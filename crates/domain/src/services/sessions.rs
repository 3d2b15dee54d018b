//! Login, refresh, logout and the check of an access token: the rules of CasareRPA's JWT flow.
//!
//! Refresh tokens rotate: each one buys exactly one new pair, because its id is revoked in the
//! database before the pair is issued and that revocation succeeds only once across every server.
//! A refresh token presented a second time means it leaked, so its whole session is revoked.

use std::sync::Arc;

use crate::auth::{Password, User, Username};
use crate::clock::{Clock, IdGenerator, Timestamp};
use crate::error::RepoError;
use crate::ports::{AccessGuardRepository, UserRepository};
use crate::session::{
    BrowserSession, TenantId, TokenClaims, TokenCodec, TokenError, TokenKind, TokenLifetimes,
    TokenPair,
};

/// Why a session operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Unknown user or wrong password; the two are not told apart.
    #[error("the username or password is wrong")]
    BadCredentials,
    /// Not a token this server signed: counts as a failed authentication.
    #[error("the token is malformed or its signature does not match")]
    InvalidToken,
    #[error("the token has expired; log in again or refresh it")]
    ExpiredToken,
    /// Logged out, rotated away, or its user deleted.
    #[error("the token has been revoked; log in again")]
    RevokedToken,
    /// A genuine token of the other kind (an access token offered to refresh, or the reverse).
    #[error("expected a {expected} token but got a {got} token")]
    WrongKind {
        expected: &'static str,
        got: &'static str,
    },
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("tokens could not be signed")]
    Signing,
}

impl From<TokenError> for SessionError {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::Invalid => Self::InvalidToken,
            TokenError::Expired => Self::ExpiredToken,
            TokenError::Signing => Self::Signing,
        }
    }
}

/// The caller behind a valid access token, with the user's current roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    pub user: User,
    pub claims: TokenClaims,
}

/// The session use cases.
pub struct SessionService {
    users: Arc<dyn UserRepository>,
    guard: Arc<dyn AccessGuardRepository>,
    codec: Arc<dyn TokenCodec>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    lifetimes: TokenLifetimes,
}

impl SessionService {
    pub fn new(
        users: Arc<dyn UserRepository>,
        guard: Arc<dyn AccessGuardRepository>,
        codec: Arc<dyn TokenCodec>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        lifetimes: TokenLifetimes,
    ) -> Self {
        Self {
            users,
            guard,
            codec,
            clock,
            ids,
            lifetimes,
        }
    }

    pub fn lifetimes(&self) -> TokenLifetimes {
        self.lifetimes
    }

    /// Checks the password and starts a session. `verify` checks a password against a stored
    /// hash; it is passed in so the caller can run the deliberately slow hash off its event loop.
    /// For an unknown user it is still called, against `decoy_hash`, so the answer takes as
    /// long as for a wrong password and does not reveal which usernames exist.
    pub async fn login<V>(
        &self,
        username: &str,
        password: Password,
        tenant_id: Option<TenantId>,
        decoy_hash: &str,
        verify: V,
    ) -> Result<(User, TokenPair), SessionError>
    where
        V: AsyncFnOnce(Password, String) -> bool,
    {
        let user = self
            .check_password(username, password, decoy_hash, verify)
            .await?;
        let session_id = self.ids.new_uuid().to_string();
        let pair = self.issue_pair(&user, session_id, tenant_id)?;
        Ok((user, pair))
    }

    /// Checks the password, as [`Self::login`] does, and starts a browser session: one access
    /// token that lives `lifetimes.browser` and is never refreshed. It ends like any session,
    /// on every server, when logged out or when its user is deleted.
    ///
    /// Errors: `BadCredentials`, `Repo`, `Signing`.
    pub async fn start_browser_session<V>(
        &self,
        username: &str,
        password: Password,
        decoy_hash: &str,
        verify: V,
    ) -> Result<(User, BrowserSession), SessionError>
    where
        V: AsyncFnOnce(Password, String) -> bool,
    {
        let user = self
            .check_password(username, password, decoy_hash, verify)
            .await?;
        let claims = self.claims(
            &user,
            TokenKind::Access,
            self.lifetimes.browser,
            self.ids.new_uuid().to_string(),
            None,
        );
        let session = BrowserSession {
            token: self.codec.encode(&claims)?,
            expires_at: claims.expires_at,
        };
        Ok((user, session))
    }

    /// The user named `username` if `password` is theirs. For an unknown user `verify` is
    /// still called, against `decoy_hash`, so the answer takes as long as for a wrong password.
    async fn check_password<V>(
        &self,
        username: &str,
        password: Password,
        decoy_hash: &str,
        verify: V,
    ) -> Result<User, SessionError>
    where
        V: AsyncFnOnce(Password, String) -> bool,
    {
        let user = match Username::parse(username) {
            Ok(name) => match self.users.get_user(&name).await {
                Ok(user) => Some(user),
                Err(RepoError::NotFound(_)) => None,
                Err(e) => return Err(e.into()),
            },
            Err(_) => None,
        };
        let hash = user
            .as_ref()
            .map_or_else(|| decoy_hash.to_owned(), |u| u.password_hash.clone());
        let matches = verify(password, hash).await;
        match user {
            Some(user) if matches => Ok(user),
            _ => Err(SessionError::BadCredentials),
        }
    }

    /// Trades a refresh token for a new pair, once.
    ///
    /// Errors: `InvalidToken`, `ExpiredToken`, `WrongKind` for an access token, `RevokedToken`
    /// when the token was used before (which also ends its session), its session was logged
    /// out, or its user no longer exists.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, SessionError> {
        let now = self.clock.now();
        let claims = self.codec.decode(refresh_token, now)?;
        if claims.kind != TokenKind::Refresh {
            return Err(SessionError::WrongKind {
                expected: TokenKind::Refresh.as_str(),
                got: claims.kind.as_str(),
            });
        }
        if self.guard.is_token_revoked(&claims.session_id).await? {
            return Err(SessionError::RevokedToken);
        }
        if !self
            .guard
            .revoke_token(&claims.token_id, claims.expires_at)
            .await?
        {
            // A second use of one refresh token: whoever holds it now, the session is unsafe.
            self.end_session(&claims.session_id, now).await?;
            return Err(SessionError::RevokedToken);
        }
        let user = self.current_user(&claims).await?;
        self.issue_pair(&user, claims.session_id, claims.tenant_id)
    }

    /// Ends the session of `claims`: its access and refresh tokens, and every token rotated from
    /// them, stop working on every server.
    pub async fn logout(&self, claims: &TokenClaims) -> Result<(), SessionError> {
        self.end_session(&claims.session_id, self.clock.now()).await
    }

    /// The user behind an access token.
    ///
    /// Errors: `InvalidToken`, `ExpiredToken`, `WrongKind` for a refresh token, `RevokedToken`
    /// after logout or when the user was deleted.
    pub async fn authenticate(&self, access_token: &str) -> Result<SessionUser, SessionError> {
        let claims = self.codec.decode(access_token, self.clock.now())?;
        if claims.kind != TokenKind::Access {
            return Err(SessionError::WrongKind {
                expected: TokenKind::Access.as_str(),
                got: claims.kind.as_str(),
            });
        }
        if self.guard.is_token_revoked(&claims.session_id).await? {
            return Err(SessionError::RevokedToken);
        }
        let user = self.current_user(&claims).await?;
        Ok(SessionUser { user, claims })
    }

    /// The user a token was issued to. A token of another user of the same name (one deleted
    /// since) is refused: a deleted user's tokens must not come back with the name.
    async fn current_user(&self, claims: &TokenClaims) -> Result<User, SessionError> {
        let user = match self.users.get_user(&claims.subject).await {
            Ok(user) => user,
            Err(RepoError::NotFound(_)) => return Err(SessionError::RevokedToken),
            Err(e) => return Err(e.into()),
        };
        if claims.user_created_at != user.created_at {
            return Err(SessionError::RevokedToken);
        }
        Ok(user)
    }

    /// Revokes a session for as long as any of its tokens could still be valid: a refresh
    /// issued just now lives one refresh lifetime, a browser session one browser lifetime.
    async fn end_session(&self, session_id: &str, now: Timestamp) -> Result<(), SessionError> {
        let longest = self.lifetimes.refresh.max(self.lifetimes.browser);
        self.guard.revoke_token(session_id, now + longest).await?;
        Ok(())
    }

    fn issue_pair(
        &self,
        user: &User,
        session_id: String,
        tenant_id: Option<TenantId>,
    ) -> Result<TokenPair, SessionError> {
        let access = self.claims(
            user,
            TokenKind::Access,
            self.lifetimes.access,
            session_id.clone(),
            tenant_id.clone(),
        );
        let refresh = self.claims(
            user,
            TokenKind::Refresh,
            self.lifetimes.refresh,
            session_id,
            tenant_id,
        );
        Ok(TokenPair {
            access_token: self.codec.encode(&access)?,
            refresh_token: self.codec.encode(&refresh)?,
            expires_in: self.lifetimes.access.whole_seconds(),
        })
    }

    fn claims(
        &self,
        user: &User,
        kind: TokenKind,
        lifetime: time::Duration,
        session_id: String,
        tenant_id: Option<TenantId>,
    ) -> TokenClaims {
        let now = crate::clock::truncate_to_seconds(self.clock.now());
        TokenClaims {
            subject: user.username.clone(),
            roles: user.roles.clone(),
            kind,
            token_id: self.ids.new_uuid().to_string(),
            session_id,
            tenant_id,
            user_created_at: user.created_at,
            issued_at: now,
            expires_at: now + lifetime,
        }
    }
}

#[cfg(test)]
mod tests;
