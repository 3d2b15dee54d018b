//! What every handler may reach: the storage ports, authentication, and the domain's clock and
//! id source.

use std::sync::Arc;

use baton_domain::ports::Store;
use baton_domain::{Clock, IdGenerator};

use crate::auth::AccessControl;
use crate::backup::WorkflowBackup;
use crate::body_guard::BodyGuard;
use crate::live::LiveHub;
use crate::probe::HealthProbe;
use crate::prometheus::Prometheus;
use crate::rate_limit::RateLimiter;

/// Shared by all workers; cloning it clones only the `Arc`s.
#[derive(Clone)]
pub struct AppState {
    /// Every storage port.
    pub store: Arc<dyn Store>,
    /// Dependency checks for the health endpoints.
    pub health: Arc<dyn HealthProbe>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    /// Credentials, sessions and bans.
    pub access: Arc<AccessControl>,
    /// Per-client, per-route request limits.
    pub rate_limiter: Arc<RateLimiter>,
    /// Where workflow documents are mirrored as files, when backups are enabled.
    pub workflow_backup: Option<Arc<WorkflowBackup>>,
    /// The websockets' feeds, fanned out to this server's clients.
    pub live: Arc<LiveHub>,
    /// `GET /metrics`: this server's request metrics and who may scrape them.
    pub prometheus: Arc<Prometheus>,
    /// The server-wide budget of request-body bytes and the deadline of each body.
    pub body_guard: Arc<BodyGuard>,
}
