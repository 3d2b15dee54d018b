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

/// Checks the server's dependencies. Implemented by the composition root over the storage pool.
#[async_trait]
pub trait HealthProbe: Send + Sync {
    /// Whether the database answers now, with the pool's occupancy.
    async fn database(&self) -> DatabaseHealth;
}
