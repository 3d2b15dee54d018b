//! The HTTP adapter's health port, answered by the storage pool.

use async_trait::async_trait;
use baton_http::{DatabaseHealth, HealthProbe};
use baton_storage::Db;

/// Reports the database pool of a [`Db`].
pub struct StorageHealth(pub Db);

#[async_trait]
impl HealthProbe for StorageHealth {
    async fn database(&self) -> DatabaseHealth {
        let health = self.0.health().await;
        DatabaseHealth {
            healthy: health.healthy,
            pool_size: health.pool_size,
            pool_free: health.pool_free,
            error: health.error,
        }
    }
}
