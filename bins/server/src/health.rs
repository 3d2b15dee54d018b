//! The HTTP adapter's health port, answered by the storage pool.

use async_trait::async_trait;
use baton_http::{DatabaseHealth, HealthProbe, PoolStats};
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

    fn pool_stats(&self) -> Option<PoolStats> {
        let status = self.0.pool_status();
        Some(PoolStats {
            max_size: status.max_size,
            size: status.size,
            available: status.available,
            waiting: status.waiting,
        })
    }
}
