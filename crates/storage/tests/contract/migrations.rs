//! The database handle itself: migrations are idempotent and health reports the pool.

use baton_storage::Db;

async fn migrating_twice_is_harmless(db: Db) {
    db.migrate().await.unwrap();
    db.migrate().await.unwrap();
}

async fn health_reports_a_reachable_database_and_its_pool(db: Db) {
    let health = db.health().await;
    assert!(health.healthy, "{health:?}");
    assert!(health.error.is_none());
    assert!(health.pool_size >= 1);
    assert!(health.pool_free <= health.pool_size);
}

contract_tests!(
    migrating_twice_is_harmless,
    health_reports_a_reachable_database_and_its_pool
);
