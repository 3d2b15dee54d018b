//! The brute-force ban, enforced on every route but the health probes.
//!
//! Bans live in the database so they hold on every server and across restarts. Reading the
//! database on every request would tax the hot paths, so each server remembers, per address,
//! what the database said for [`BanList::REFRESH`]: a ban set by another server takes effect
//! here within that time, and one set here takes effect at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError, web};
use baton_domain::ports::AccessGuardRepository;
use baton_domain::{RepoResult, Timestamp};

use super::AccessControl;
use crate::errors::ApiError;

/// Remembered ban lookups, per client address.
pub struct BanList {
    guard: Arc<dyn AccessGuardRepository>,
    seen: Mutex<HashMap<IpAddr, Seen>>,
}

#[derive(Clone, Copy)]
struct Seen {
    until: Option<Timestamp>,
    checked: Instant,
}

impl BanList {
    /// How long a lookup is trusted before the database is asked again.
    pub const REFRESH: Duration = Duration::from_secs(1);
    /// Beyond this many remembered addresses, stale ones are forgotten.
    const MAX_REMEMBERED: usize = 100_000;

    pub fn new(guard: Arc<dyn AccessGuardRepository>) -> Self {
        Self {
            guard,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The end of the ban on `ip` in force at `now`, if any.
    pub async fn active_ban(&self, ip: IpAddr, now: Timestamp) -> RepoResult<Option<Timestamp>> {
        if let Some(seen) = self.remembered(ip)
            && seen.checked.elapsed() < Self::REFRESH
        {
            return Ok(seen.until.filter(|until| *until > now));
        }
        let until = self.guard.active_ban(&ip.to_string(), now).await?;
        self.remember(ip, until);
        Ok(until)
    }

    /// Records a ban this server just stored, so it applies from the next request.
    pub fn banned(&self, ip: IpAddr, until: Timestamp) {
        self.remember(ip, Some(until));
    }

    fn remembered(&self, ip: IpAddr) -> Option<Seen> {
        self.seen.lock().ok()?.get(&ip).copied()
    }

    fn remember(&self, ip: IpAddr, until: Option<Timestamp>) {
        // A poisoned lock only loses the memo; the database stays the truth.
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        if seen.len() >= Self::MAX_REMEMBERED {
            seen.retain(|_, s| s.checked.elapsed() < Self::REFRESH || s.until.is_some());
        }
        seen.insert(
            ip,
            Seen {
                until,
                checked: Instant::now(),
            },
        );
    }
}

/// Whether `path` is a health probe, which stays open to banned addresses so a load balancer
/// behind one address never takes the server out of rotation.
pub fn is_health_probe(path: &str) -> bool {
    let rest = path.strip_prefix("/api/v1").unwrap_or(path);
    rest == "/health" || rest.starts_with("/health/")
}

/// Middleware: a banned address gets 403 `{"error": "Forbidden", …}` on every route but the
/// health probes.
pub async fn reject_banned(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    if is_health_probe(req.path()) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let Some(access) = req.app_data::<web::Data<AccessControl>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let Some(ip) = access.client_ip(req.request()) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let refusal = match access.banned_until(ip).await {
        Ok(None) => None,
        Ok(Some(until)) => Some(ApiError::banned(until)),
        Err(e) => Some(ApiError::from(e)),
    };
    match refusal {
        None => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
        Some(err) => Ok(req
            .into_response(err.error_response())
            .map_into_right_body()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_probes_are_recognised_at_both_roots() {
        for path in [
            "/health",
            "/health/live",
            "/api/v1/health",
            "/api/v1/health/ready",
        ] {
            assert!(is_health_probe(path), "{path}");
        }
        for path in [
            "/healthz",
            "/api/v1/healthcheck",
            "/api/queue",
            "/api/v1/auth/login",
        ] {
            assert!(!is_health_probe(path), "{path}");
        }
    }
}
