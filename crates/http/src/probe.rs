//! The health port: how the HTTP adapter learns whether its dependencies work, without knowing
//! which database sits behind them.

use async_trait::async_trait;

/// The database as the health endpoints report it (the CasareRPA document's
/// `dependencies.database` object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseHealth {
    pub healthy: bool,
    /// Connections the pool may hold.
    pub pool_size: usize,
    /// Connections idle in the pool right now.
    pub pool_free: usize,
    /// Why the database is unhealthy; a short sentence without secrets.
    pub error: Option<String>,
}

impl DatabaseHealth {
    /// An unhealthy report whose pool could not be inspected.
    pub fn unhealthy(error: impl Into<String>) -> Self {
        Self {
            healthy: false,
            pool_size: 0,
            pool_free: 0,
            error: Some(error.into()),
        }
    }
}

/// The database pool's occupancy, as `/metrics` exposes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections the pool may hold.
    pub max_size: usize,
    /// Connections open now, idle or checked out.
    pub size: usize,
    /// Open connections idle in the pool.
    pub available: usize,
    /// Tasks waiting for a connection.
    pub waiting: usize,
}

/// Checks the server's dependencies. Implemented by the composition root over the storage pool.
#[async_trait]
pub trait HealthProbe: Send + Sync {
    /// Whether the database answers now, with the pool's occupancy.
    async fn database(&self) -> DatabaseHealth;

    /// The pool's occupancy without a round trip to the database, or `None` when there is no
    /// pool to inspect (then `/metrics` leaves the pool gauges out).
    fn pool_stats(&self) -> Option<PoolStats> {
        None
    }
}
