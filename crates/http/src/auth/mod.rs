//! Authentication and authorisation: who is calling, and whether the route lets them.
//!
//! Credentials are read from, in this order: `X-Api-Token` (a robot), `X-API-Key` (an API
//! key), `Authorization: Bearer …` (a JWT access token, or an API key), and the console's
//! session cookie (see [`browser`]: same origin only, writes with a CSRF token). A credential that
//! is presented and wrong counts towards the brute-force ban; a missing one does not (it is a
//! misconfigured client, not a guess), and neither does a genuine token that has merely expired
//! or been revoked. A valid API key forgives its address's earlier wrong keys and tokens, never
//! its wrong passwords (see [`BruteForcePolicy`]). Handlers name their requirement with the
//! [`Authorized`] extractor.

mod bans;
pub mod browser;
mod extract;
pub mod jwt;
mod key_failures;
mod key_memo;
mod principal;

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::HttpRequest;
use actix_web::http::header::{AUTHORIZATION, HeaderMap};
use baton_domain::auth::{Argon2idHasher, Password, PasswordHasher, generate_secret};
use baton_domain::ports::{FailureKind, Store};
use baton_domain::robot::RobotId;
use baton_domain::services::credentials::{BruteForcePolicy, CredentialError, RobotTokens};
use baton_domain::services::sessions::{SessionError, SessionService};
use baton_domain::session::{TokenCodec, TokenLifetimes};
use baton_domain::{Clock, IdGenerator};

use crate::client_ip::TrustedProxies;
use crate::errors::ApiError;

pub use bans::{BanList, is_health_probe, reject_banned};
pub use extract::{Authorized, RobotCaller};
pub use key_memo::ApiKeyMemo;
pub use principal::{Administer, Develop, Operate, Principal, Read, Requirement};

/// How the server authenticates, from its configuration.
pub struct AuthSettings {
    /// `JWT_DEV_MODE`: every request is an admin's.
    pub dev_mode: bool,
    /// `ROBOT_AUTH_ENABLED`: the robot protocol accepts robot tokens only. Off, an operator's
    /// credentials may also act for any robot.
    pub robot_auth_enabled: bool,
    /// `ROBOT_TOKENS`: robot ids with the SHA-256 of their tokens.
    pub robot_tokens: Vec<(RobotId, String)>,
    pub lifetimes: TokenLifetimes,
    pub brute_force: BruteForcePolicy,
    pub trusted_proxies: Arc<TrustedProxies>,
}

/// Everything authentication needs, shared by every worker.
pub struct AccessControl {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    sessions: SessionService,
    robot_tokens: RobotTokens,
    /// API keys found valid lately (checked on every integrator request).
    api_keys: ApiKeyMemo,
    bans: BanList,
    /// Addresses whose wrong keys this server counted, for a valid key to forgive.
    key_failures: key_failures::KeyFailures,
    hasher: Arc<dyn PasswordHasher>,
    /// A hash of a random password, verified against when a login names an unknown user.
    decoy_hash: String,
    dev_mode: bool,
    robot_auth_enabled: bool,
    brute_force: BruteForcePolicy,
    proxies: Arc<TrustedProxies>,
}

/// A credential as presented, before it is checked.
enum Presented<'a> {
    RobotToken(&'a str),
    ApiKey(&'a str),
    Jwt(&'a str),
}

impl AccessControl {
    /// Errors when the operating system cannot provide randomness for the decoy hash.
    pub fn new(
        store: Arc<dyn Store>,
        codec: Arc<dyn TokenCodec>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        settings: AuthSettings,
    ) -> Result<Self, baton_domain::auth::SecretError> {
        let hasher: Arc<dyn PasswordHasher> = Arc::new(Argon2idHasher);
        let decoy = Password::candidate(generate_secret("decoy-")?)
            .map_err(|_| baton_domain::auth::SecretError::Hashing)?;
        let decoy_hash = hasher.hash(&decoy)?;
        Ok(Self {
            sessions: SessionService::new(
                store.clone(),
                store.clone(),
                codec,
                clock.clone(),
                ids,
                settings.lifetimes,
            ),
            robot_tokens: RobotTokens::new(settings.robot_tokens, store.clone()),
            api_keys: ApiKeyMemo::new(store.clone()),
            bans: BanList::new(store.clone()),
            key_failures: key_failures::KeyFailures::new(
                settings.brute_force.window.unsigned_abs(),
            ),
            store,
            clock,
            hasher,
            decoy_hash,
            dev_mode: settings.dev_mode,
            robot_auth_enabled: settings.robot_auth_enabled,
            brute_force: settings.brute_force,
            proxies: settings.trusted_proxies,
        })
    }

    pub fn sessions(&self) -> &SessionService {
        &self.sessions
    }

    /// When the ban of `ip` ends, if the address is banned now.
    pub async fn banned_until(
        &self,
        ip: IpAddr,
    ) -> baton_domain::RepoResult<Option<baton_domain::Timestamp>> {
        self.bans.active_ban(ip, self.clock.now()).await
    }

    pub fn bans(&self) -> &BanList {
        &self.bans
    }

    pub fn api_keys(&self) -> &ApiKeyMemo {
        &self.api_keys
    }

    pub fn hasher(&self) -> Arc<dyn PasswordHasher> {
        self.hasher.clone()
    }

    /// Checks a password against a stored hash on the blocking thread pool: argon2id is slow on
    /// purpose, and the event loop must not wait for it.
    pub fn password_check(&self) -> impl AsyncFnOnce(Password, String) -> bool + use<> {
        let hasher = self.hasher.clone();
        async move |password: Password, hash: String| {
            actix_web::web::block(move || hasher.verify(&password, &hash))
                .await
                .unwrap_or(false)
        }
    }

    pub fn decoy_hash(&self) -> &str {
        &self.decoy_hash
    }

    pub fn dev_mode(&self) -> bool {
        self.dev_mode
    }

    pub fn robot_auth_enabled(&self) -> bool {
        self.robot_auth_enabled
    }

    /// Whether `ip` is a proxy whose forwarding headers are believed.
    pub fn trusts_proxy(&self, ip: IpAddr) -> bool {
        self.proxies.contains(ip)
    }

    /// The client's address: the socket peer, or `X-Forwarded-For` from a trusted proxy.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        self.proxies.client_ip(req)
    }

    /// Who sent `req`. Errors: 401 for missing or wrong credentials (wrong ones are counted
    /// towards a ban), 503 when the database cannot be asked.
    pub async fn authenticate(&self, req: &HttpRequest) -> Result<Principal, ApiError> {
        if self.dev_mode {
            return Ok(Principal::DevMode);
        }
        let presented = match presented_credential(req.headers()) {
            Ok(presented) => presented,
            Err(missing) => {
                // Headers win; without any, the console's cookie may authenticate.
                let Some(token) = browser::cookie_credential(req) else {
                    return Err(missing);
                };
                browser::check_request(req, &token)?;
                return self.verify(req, Presented::Jwt(&token)).await;
            }
        };
        self.verify(req, presented).await
    }

    /// Who presents `credential` as a bearer credential (a JWT access token or an API key)
    /// outside the headers: browsers cannot set headers on a websocket, so they send it as
    /// `?token=`. Checked and counted towards a ban exactly like the `Authorization` header.
    pub async fn authenticate_bearer(
        &self,
        req: &HttpRequest,
        credential: &str,
    ) -> Result<Principal, ApiError> {
        if self.dev_mode {
            return Ok(Principal::DevMode);
        }
        self.verify(req, bearer_credential(credential.trim())).await
    }

    /// Checks a presented credential; a wrong one from `req`'s address counts towards a ban.
    async fn verify(
        &self,
        req: &HttpRequest,
        presented: Presented<'_>,
    ) -> Result<Principal, ApiError> {
        let outcome = match presented {
            Presented::RobotToken(token) => self
                .robot_tokens
                .authenticate(token)
                .await
                .map(|robot_id| Principal::Robot { robot_id })
                .map_err(|e| self.credential_refusal(e, "the robot token (X-Api-Token)")),
            Presented::ApiKey(key) => self
                .api_keys
                .authenticate(key)
                .await
                .map(|key| Principal::ApiKey {
                    id: key.id,
                    name: key.name,
                    roles: key.roles,
                })
                .map_err(|e| self.credential_refusal(e, "the API key")),
            Presented::Jwt(token) => self
                .sessions
                .authenticate(token)
                .await
                .map(|session| Principal::User {
                    username: session.user.username,
                    roles: session.user.roles,
                    claims: session.claims,
                })
                .map_err(session_refusal),
        };
        match outcome {
            Ok(principal) => {
                if matches!(principal, Principal::ApiKey { .. }) {
                    self.forgive_key_failures(req).await?;
                }
                Ok(principal)
            }
            Err(Refusal { error, counts }) => {
                if let Some(kind) = counts {
                    self.record_failure(req, kind).await?;
                }
                Err(error)
            }
        }
    }

    /// Counts a failed authentication of `kind` from `req`'s address and bans it on the limit.
    /// The request that reaches the limit is still answered 401; the ban starts with the next.
    pub async fn record_failure(
        &self,
        req: &HttpRequest,
        kind: FailureKind,
    ) -> Result<(), ApiError> {
        let Some(ip) = self.client_ip(req) else {
            return Ok(());
        };
        let now = self.clock.now();
        let banned = self
            .brute_force
            .record_failure(self.store.as_ref(), &ip.to_string(), kind, now)
            .await?;
        match banned {
            Some(until) => {
                tracing::warn!(client_ip = %ip, until = %until, "address banned after repeated failed authentications");
                self.bans.banned(ip, until);
            }
            None if kind == FailureKind::Key => self.key_failures.counted(ip),
            None => {}
        }
        Ok(())
    }

    /// Forgets the wrong keys and tokens of `req`'s address, which just presented a valid API
    /// key, if this server counted any lately. Its wrong passwords still count.
    async fn forgive_key_failures(&self, req: &HttpRequest) -> Result<(), ApiError> {
        let Some(ip) = self.client_ip(req) else {
            return Ok(());
        };
        if !self.key_failures.take(ip) {
            return Ok(());
        }
        if let Err(e) = self.store.clear_key_failures(&ip.to_string()).await {
            // Still to forgive: the next valid key tries again.
            self.key_failures.counted(ip);
            return Err(e.into());
        }
        Ok(())
    }

    fn credential_refusal(&self, err: CredentialError, what: &str) -> Refusal {
        match err {
            CredentialError::Invalid => Refusal {
                error: ApiError::unauthorized(format!("{what} is not valid")),
                counts: Some(FailureKind::Key),
            },
            CredentialError::Repo(e) => Refusal {
                error: e.into(),
                counts: None,
            },
        }
    }
}

/// A refused credential, and the kind of failure it counts as towards a ban, if any.
pub(crate) struct Refusal {
    error: ApiError,
    counts: Option<FailureKind>,
}

/// Maps a session failure to its answer: 401 for every token problem (only forgeries and wrong
/// passwords count towards a ban), 400 for a token of the wrong kind.
pub(crate) fn session_refusal(err: SessionError) -> Refusal {
    let counts = match &err {
        SessionError::InvalidToken => Some(FailureKind::Key),
        SessionError::BadCredentials => Some(FailureKind::Password),
        SessionError::ExpiredToken
        | SessionError::RevokedToken
        | SessionError::WrongKind { .. }
        | SessionError::Repo(_)
        | SessionError::Signing => None,
    };
    let error = match err {
        SessionError::WrongKind { .. } => ApiError::bad_request(format!(
            "{err}: use the access token to authenticate and the refresh token at /api/v1/auth/refresh"
        )),
        SessionError::Repo(e) => e.into(),
        SessionError::Signing => ApiError::internal("JWT signing failed"),
        SessionError::BadCredentials
        | SessionError::InvalidToken
        | SessionError::ExpiredToken
        | SessionError::RevokedToken => ApiError::unauthorized(err.to_string()),
    };
    Refusal { error, counts }
}

impl Refusal {
    /// The kind of failure this refusal counts as, if it counts.
    pub(crate) fn counts(&self) -> Option<FailureKind> {
        self.counts
    }

    pub(crate) fn into_error(self) -> ApiError {
        self.error
    }
}

/// The headers a credential may come in; a request with any of them is authenticated by it,
/// never by the console's cookie or a websocket's `?token=`.
const CREDENTIAL_HEADERS: [&str; 3] = ["x-api-token", "x-api-key", "authorization"];

/// Whether `req` presents a credential in a header (well-formed or not).
pub fn has_credential_headers(req: &HttpRequest) -> bool {
    CREDENTIAL_HEADERS
        .iter()
        .any(|name| req.headers().contains_key(*name))
}

/// Picks the credential a request presents.
fn presented_credential(headers: &HeaderMap) -> Result<Presented<'_>, ApiError> {
    let header = |name: &str| -> Result<Option<&str>, ApiError> {
        headers
            .get(name)
            .map(|v| {
                v.to_str().map(str::trim).map_err(|_| {
                    ApiError::unauthorized(format!("the {name} header is not valid text"))
                })
            })
            .transpose()
    };
    if let Some(token) = header("x-api-token")? {
        return Ok(Presented::RobotToken(token));
    }
    if let Some(key) = header("x-api-key")? {
        return Ok(Presented::ApiKey(key));
    }
    if let Some(value) = header(AUTHORIZATION.as_str())? {
        let Some((scheme, credential)) = value.split_once(' ') else {
            return Err(ApiError::unauthorized(
                "the Authorization header must be `Bearer <token or API key>`",
            ));
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::unauthorized(
                "only the Bearer scheme is accepted: `Authorization: Bearer <token or API key>`",
            ));
        }
        return Ok(bearer_credential(credential.trim()));
    }
    Err(ApiError::unauthorized(
        "authentication required: send `Authorization: Bearer <token>`, `X-API-Key: <key>`, \
         or a robot's `X-Api-Token: <token>`",
    ))
}

/// A bearer credential: a JWT is three base64url parts; an API key never holds a dot.
fn bearer_credential(credential: &str) -> Presented<'_> {
    if credential.matches('.').count() == 2 {
        Presented::Jwt(credential)
    } else {
        Presented::ApiKey(credential)
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        map
    }

    fn kind(pairs: &[(&'static str, &'static str)]) -> Result<&'static str, u16> {
        let map = headers(pairs);
        match presented_credential(&map) {
            Ok(Presented::RobotToken(_)) => Ok("robot"),
            Ok(Presented::ApiKey(_)) => Ok("key"),
            Ok(Presented::Jwt(_)) => Ok("jwt"),
            Err(e) => Err(e.status().as_u16()),
        }
    }

    #[test]
    fn credentials_are_read_from_the_documented_headers() {
        assert_eq!(kind(&[("x-api-token", "t")]), Ok("robot"));
        assert_eq!(kind(&[("x-api-key", "bk_1")]), Ok("key"));
        assert_eq!(kind(&[("authorization", "Bearer bk_1")]), Ok("key"));
        assert_eq!(kind(&[("authorization", "bearer a.b.c")]), Ok("jwt"));
        assert_eq!(
            kind(&[("x-api-key", "bk_1"), ("authorization", "Bearer a.b.c")]),
            Ok("key"),
            "an explicit key header wins"
        );
    }

    #[test]
    fn missing_or_malformed_credentials_are_401() {
        assert_eq!(kind(&[]), Err(401));
        assert_eq!(kind(&[("authorization", "Basic YTpi")]), Err(401));
        assert_eq!(kind(&[("authorization", "Bearer")]), Err(401));
    }
}
