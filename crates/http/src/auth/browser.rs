//! Browser sessions: the console's cookie, and the rules that keep it safe in a browser.
//!
//! The session's token travels only in the `baton_session` cookie: `HttpOnly` (scripts never
//! see it, so nothing lands in `localStorage`), `SameSite=Strict` (other sites cannot make the
//! browser send it), `Secure` over HTTPS. A request authenticated by the cookie must also come
//! from the server's own origin when it names one (`Origin`), and a write must carry the
//! session's CSRF token in `X-CSRF-Token` (see `baton_domain::session::csrf_token`), which
//! only the console's own scripts can read from `GET /api/v1/auth/session`.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::OffsetDateTime};
use actix_web::http::Method;
use baton_domain::Timestamp;
use baton_domain::session::csrf_token_matches;

use crate::errors::ApiError;

/// The cookie that holds a browser session's token.
pub const SESSION_COOKIE: &str = "baton_session";

/// The header a console write carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The session token of `req`'s cookie when the cookie is what authenticates it: it has one,
/// and no credential header (which would win over it).
pub fn cookie_credential(req: &HttpRequest) -> Option<String> {
    if super::has_credential_headers(req) {
        return None;
    }
    req.cookie(SESSION_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

/// The cookie that starts a browser session ending at `expires_at`.
pub fn session_cookie(req: &HttpRequest, token: String, expires_at: Timestamp) -> Cookie<'static> {
    let mut cookie = Cookie::build(SESSION_COOKIE, token)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(is_https(req))
        .finish();
    if let Ok(expires) = OffsetDateTime::from_unix_timestamp(expires_at.unix_timestamp()) {
        cookie.set_expires(expires);
    }
    cookie
}

/// The cookie that ends a browser session in the browser (the server revokes it separately).
pub fn removal_cookie(req: &HttpRequest) -> Cookie<'static> {
    let mut cookie = Cookie::build(SESSION_COOKIE, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(is_https(req))
        .finish();
    cookie.make_removal();
    cookie
}

/// Whether the client reached the server over HTTPS (directly or through a proxy that says so).
fn is_https(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

/// Refuses a cookie-authenticated request that another origin sent, or a write without the
/// session's CSRF token. Neither counts towards a ban: the cookie itself is genuine.
pub fn check_request(req: &HttpRequest, token: &str) -> Result<(), ApiError> {
    check_origin(req)?;
    if is_safe(req.method()) {
        return Ok(());
    }
    let presented = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if presented.is_empty() || !csrf_token_matches(token, presented) {
        return Err(ApiError::forbidden(
            "a write with the console's session cookie must carry the session's CSRF token in \
             X-CSRF-Token (GET /api/v1/auth/session gives it); API clients send a bearer token \
             or an API key instead",
        ));
    }
    Ok(())
}

/// Refuses a request whose `Origin` names another origin than the server's. Browsers send
/// `Origin` with every cross-origin request, every write and every websocket handshake; a
/// request without one comes from a non-browser client or the page's own navigation.
pub fn check_origin(req: &HttpRequest) -> Result<(), ApiError> {
    let Some(origin) = req.headers().get("origin") else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    let authority = origin
        .split_once("://")
        .map_or("", |(_, authority)| authority);
    let host = req.connection_info().host().to_owned();
    if authority.is_empty() || !authority.eq_ignore_ascii_case(&host) {
        return Err(ApiError::forbidden(
            "the console's session cookie is accepted only from the server's own origin",
        ));
    }
    Ok(())
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}
