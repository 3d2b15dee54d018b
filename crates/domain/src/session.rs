//! Login sessions: the claims of access and refresh tokens, and the port that signs them.
//!
//! A login starts a session. Every token issued for it, the first pair and each pair a refresh
//! rotates in, carries the session's id, so logging out revokes the whole chain with one record
//! that every server sharing the database sees.

use std::fmt;

use crate::auth::{Role, Username};
use crate::clock::Timestamp;
use crate::error::ValidationError;

/// What a token may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Authenticates requests.
    Access,
    /// Buys one new pair of tokens, once.
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "access" => Some(Self::Access),
            "refresh" => Some(Self::Refresh),
            _ => None,
        }
    }
}

/// A tenant a user logged in for: CasareRPA's optional `tenant_id`, 1–100 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantId(String);

impl TenantId {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(value: String) -> Result<Self, ValidationError> {
        crate::text::check_name("tenant_id", &value, 1, Self::MAX_CHARS)?;
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    pub subject: Username,
    /// The roles at issue time; requests use the user's current roles instead.
    pub roles: Vec<Role>,
    pub kind: TokenKind,
    /// This token's own id (`jti`): revoking it stops this token only.
    pub token_id: String,
    /// The login session's id, shared by every token of the session.
    pub session_id: String,
    pub tenant_id: Option<TenantId>,
    /// When the user was created: tells this user apart from a deleted one of the same name.
    pub user_created_at: Timestamp,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Malformed, signed with another key or algorithm, or with claims this server never writes.
    #[error("the token is malformed or its signature does not match")]
    Invalid,
    /// Genuine, but past its expiry.
    #[error("the token has expired")]
    Expired,
    /// The codec could not sign (a configuration fault, not the client's).
    #[error("the token could not be signed")]
    Signing,
}

/// Signs and checks tokens. Implementations verify the signature and the expiry against `now`,
/// so tests can drive time through the domain's clock.
pub trait TokenCodec: Send + Sync {
    /// Errors: `Signing`.
    fn encode(&self, claims: &TokenClaims) -> Result<String, TokenError>;
    /// Errors: `Invalid` for anything not signed by this codec's key with its algorithm,
    /// `Expired` for a genuine token whose `expires_at` is at or before `now`.
    fn decode(&self, token: &str, now: Timestamp) -> Result<TokenClaims, TokenError>;
}

/// How long tokens live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLifetimes {
    pub access: time::Duration,
    pub refresh: time::Duration,
    /// A browser session of the console: one access token in an `HttpOnly` cookie, never
    /// refreshed (rotating refresh tokens race between a browser's tabs), so it lives as long as
    /// a working day's sign-in is expected to.
    pub browser: time::Duration,
}

impl Default for TokenLifetimes {
    /// CasareRPA's defaults: 60 minutes and 7 days; browser sessions last 12 hours.
    fn default() -> Self {
        Self {
            access: time::Duration::minutes(60),
            refresh: time::Duration::days(7),
            browser: time::Duration::hours(12),
        }
    }
}

/// The token a browser session's scripts send in `X-CSRF-Token` with every write.
///
/// It is derived from the session's own token, which sits in an `HttpOnly` cookie that scripts
/// cannot read: a page of another origin can make the browser send the cookie, but it can
/// neither read this value (the session endpoint answers same-origin scripts only) nor derive
/// it, and a hash does not give the token back to whoever reads it.
pub fn csrf_token(session_token: &str) -> String {
    crate::auth::sha256_hex(&format!("baton-csrf:{session_token}"))
}

/// Whether `presented` is the CSRF token of `session_token`, compared in constant time.
pub fn csrf_token_matches(session_token: &str, presented: &str) -> bool {
    crate::auth::constant_time_eq(&csrf_token(session_token), presented)
}

/// A browser session: its token (for the cookie) and when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserSession {
    pub token: String,
    pub expires_at: Timestamp,
}

/// The tokens a login or a refresh hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// The access token's lifetime in seconds (`expires_in`).
    pub expires_in: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_kinds_round_trip_and_refuse_others() {
        for kind in [TokenKind::Access, TokenKind::Refresh] {
            assert_eq!(TokenKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(TokenKind::parse("id"), None);
    }

    #[test]
    fn tenant_ids_are_bounded() {
        assert!(TenantId::parse("acme".into()).is_ok());
        assert!(TenantId::parse(String::new()).is_err());
        assert!(TenantId::parse("x".repeat(101)).is_err());
    }

    #[test]
    fn default_lifetimes_are_casarerpas() {
        let lifetimes = TokenLifetimes::default();
        assert_eq!(lifetimes.access.whole_seconds(), 3600);
        assert_eq!(lifetimes.refresh.whole_days(), 7);
        assert_eq!(lifetimes.browser.whole_hours(), 12);
    }

    #[test]
    fn csrf_tokens_belong_to_one_session() {
        let token = csrf_token("a.b.c");
        assert!(csrf_token_matches("a.b.c", &token));
        assert!(!csrf_token_matches("a.b.d", &token));
        assert!(!csrf_token_matches("a.b.c", ""));
        assert_ne!(token, "a.b.c", "the CSRF token is not the session's token");
    }
}
