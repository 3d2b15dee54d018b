//! The first user: created once per database, by exactly one server even when several start
//! at once.

// A test crate: a panic is a failed assertion with its location, and helpers outside `#[test]`
// functions count too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use baton_domain::auth::{Argon2idHasher, Password, PasswordHasher, Role, Username};
use baton_domain::ports::UserRepository;
use baton_server::Application;
use baton_server::bootstrap::AdminBootstrap;
use baton_storage::testing::TestDatabase;
use baton_tests::{TEST_ADMIN_PASSWORD, TestApp, test_config};

async fn stored_admin(db: &TestDatabase) -> baton_domain::auth::User {
    let store = db.connect().await;
    assert_eq!(store.count_users().await.unwrap(), 1);
    store
        .get_user(&Username::parse("admin").unwrap())
        .await
        .expect("the admin user exists")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_gets_every_role_and_the_configured_password_hashed() {
    let app = TestApp::spawn_sqlite().await;
    assert_eq!(
        app.admin_bootstrap,
        AdminBootstrap::CreatedWithConfiguredPassword
    );
    let admin = stored_admin(app.database()).await;
    assert_eq!(admin.roles, Role::ALL.to_vec());
    assert!(admin.password_hash.starts_with("$argon2id$"));
    let password = Password::candidate(TEST_ADMIN_PASSWORD.into()).unwrap();
    assert!(Argon2idHasher.verify(&password, &admin.password_hash));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_configured_password_a_random_one_is_generated() {
    let app = TestApp::spawn_with(TestDatabase::sqlite().await, |c| c.admin_password = None).await;
    assert_eq!(
        app.admin_bootstrap,
        AdminBootstrap::CreatedWithGeneratedPassword
    );
    let admin = stored_admin(app.database()).await;
    let configured = Password::candidate(TEST_ADMIN_PASSWORD.into()).unwrap();
    assert!(!Argon2idHasher.verify(&configured, &admin.password_hash));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_later_start_on_the_same_database_creates_no_second_admin() {
    let db = TestDatabase::sqlite().await;
    let first = Application::build(test_config(db.url())).await.unwrap();
    assert_eq!(
        first.admin_bootstrap(),
        AdminBootstrap::CreatedWithConfiguredPassword
    );
    drop(first);
    let second = Application::build(test_config(db.url())).await.unwrap();
    assert_eq!(
        second.admin_bootstrap(),
        AdminBootstrap::AlreadyBootstrapped
    );
    stored_admin(&db).await;
}

async fn exactly_one_of_two_concurrent_starts_creates_the_admin(db: TestDatabase) {
    let (a, b) = tokio::join!(
        Application::build(test_config(db.url())),
        Application::build(test_config(db.url())),
    );
    let outcomes = [a.unwrap().admin_bootstrap(), b.unwrap().admin_bootstrap()];
    let created = outcomes
        .iter()
        .filter(|o| **o == AdminBootstrap::CreatedWithConfiguredPassword)
        .count();
    assert_eq!(created, 1, "{outcomes:?}");
    assert!(outcomes.contains(&AdminBootstrap::AlreadyBootstrapped));
    stored_admin(&db).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_starts_on_postgres_create_one_admin() {
    exactly_one_of_two_concurrent_starts_creates_the_admin(TestDatabase::postgres().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_starts_on_sqlite_create_one_admin() {
    exactly_one_of_two_concurrent_starts_creates_the_admin(TestDatabase::sqlite().await).await;
}
