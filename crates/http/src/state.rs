//! What every handler may reach: the storage ports and the domain's clock and id source.

use std::sync::Arc;

use baton_domain::ports::Store;
use baton_domain::{Clock, IdGenerator};

use crate::probe::HealthProbe;

/// Shared by all workers; cloning it clones only the `Arc`s.
#[derive(Clone)]
pub struct AppState {
    /// Every storage port.
    pub store: Arc<dyn Store>,
    /// Dependency checks for the health endpoints.
    pub health: Arc<dyn HealthProbe>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        health: Arc<dyn HealthProbe>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        Self {
            store,
            health,
            clock,
            ids,
        }
    }
}
