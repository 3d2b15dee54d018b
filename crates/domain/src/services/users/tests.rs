//! The user rules against a mocked repository; hashing runs inline, as a test's "blocking" pool.

use std::sync::atomic::{AtomicUsize, Ordering};

use mockall::predicate::eq;
use time::macros::datetime;

use super::*;
use crate::clock::Timestamp;
use crate::ports::MockUserRepository;

const NOW: Timestamp = datetime!(2025-03-01 12:00 UTC);

struct FixedClock;
impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        NOW
    }
}

fn service(users: MockUserRepository) -> UserService {
    UserService::new(Arc::new(users), Arc::new(FixedClock))
}

fn name(text: &str) -> Username {
    Username::parse(text).unwrap()
}

fn new_user(username: &str, password: &str, roles: &[&str]) -> NewUser {
    NewUser {
        username: username.to_owned(),
        password: password.to_owned(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
    }
}

/// Runs the hash where it is, counting the calls.
fn inline(calls: &AtomicUsize) -> impl AsyncFnOnce(HashJob) -> Result<String, SecretError> + '_ {
    async move |job: HashJob| {
        calls.fetch_add(1, Ordering::SeqCst);
        job.run()
    }
}

#[tokio::test]
async fn a_new_user_is_stored_with_an_argon2id_hash_of_its_password() {
    let mut users = MockUserRepository::new();
    users
        .expect_insert_user()
        .withf(|u| {
            u.username.as_str() == "alice"
                && u.roles == [Role::Developer, Role::Viewer]
                && u.created_at == NOW
                && u.password_hash.starts_with("$argon2id$")
        })
        .times(1)
        .returning(|_| Ok(()));
    let calls = AtomicUsize::new(0);
    let user = service(users)
        .create(
            new_user("alice", "alice-password", &["viewer", "developer"]),
            inline(&calls),
        )
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1, "hashed through the caller");
    let password = Password::candidate("alice-password".into()).unwrap();
    assert!(Argon2idHasher.verify(&password, &user.password_hash));
    assert_ne!(user.password_hash, "alice-password");
}

#[tokio::test]
async fn every_broken_rule_is_reported_and_nothing_is_hashed_or_stored() {
    // The mock has no expectations: any repository call fails the test.
    let calls = AtomicUsize::new(0);
    let err = service(MockUserRepository::new())
        .create(new_user("not valid", "short", &[]), inline(&calls))
        .await
        .unwrap_err();
    let UserError::Invalid(invalid) = err else {
        panic!("expected Invalid, got {err:?}");
    };
    let fields: Vec<&str> = invalid.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["username", "password", "roles"]);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_unknown_role_is_refused() {
    let calls = AtomicUsize::new(0);
    let err = service(MockUserRepository::new())
        .create(new_user("bob", "bob-password", &["root"]), inline(&calls))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, UserError::Invalid(e) if e.errors[0].field == "roles"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_taken_username_is_reported_by_name() {
    let mut users = MockUserRepository::new();
    users
        .expect_insert_user()
        .returning(|_| Err(RepoError::Conflict("user 'alice' already exists".into())));
    let calls = AtomicUsize::new(0);
    let err = service(users)
        .create(
            new_user("alice", "alice-password", &["viewer"]),
            inline(&calls),
        )
        .await
        .unwrap_err();
    assert!(matches!(&err, UserError::Taken(n) if n.as_str() == "alice"));
    assert_eq!(err.to_string(), "a user named 'alice' exists");
}

#[tokio::test]
async fn a_failed_hash_stores_nothing() {
    let err = service(MockUserRepository::new())
        .create(
            new_user("alice", "alice-password", &["viewer"]),
            async |_job: HashJob| Err(SecretError::Hashing),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, UserError::Secret(SecretError::Hashing)));
}

#[tokio::test]
async fn nobody_deletes_their_own_user_whatever_its_roles() {
    // Refused before storage is asked: the mock has no expectations.
    let err = service(MockUserRepository::new())
        .delete(Some(&name("alice")), &name("alice"))
        .await
        .unwrap_err();
    assert!(matches!(err, UserError::OwnUser), "{err:?}");
}

#[tokio::test]
async fn the_last_admin_is_kept() {
    let mut users = MockUserRepository::new();
    users
        .expect_delete_user_unless_last_admin()
        .with(eq(name("admin")))
        .times(1)
        .returning(|_| Ok(UserDeletion::LastAdmin));
    // An API key (no user) is refused too: the rule is about the admins left, not the caller.
    let err = service(users)
        .delete(None, &name("admin"))
        .await
        .unwrap_err();
    assert!(matches!(err, UserError::LastAdmin), "{err:?}");
}

#[tokio::test]
async fn another_user_is_deleted_and_an_unknown_one_is_not_found() {
    let mut users = MockUserRepository::new();
    users
        .expect_delete_user_unless_last_admin()
        .with(eq(name("bob")))
        .returning(|_| Ok(UserDeletion::Deleted));
    users
        .expect_delete_user_unless_last_admin()
        .with(eq(name("ghost")))
        .returning(|_| Err(RepoError::NotFound("user")));
    let service = service(users);
    service
        .delete(Some(&name("admin")), &name("bob"))
        .await
        .unwrap();
    let err = service
        .delete(Some(&name("admin")), &name("ghost"))
        .await
        .unwrap_err();
    assert!(matches!(err, UserError::Repo(RepoError::NotFound(_))));
}

#[tokio::test]
async fn the_first_admin_has_every_role_and_is_created_once() {
    let mut users = MockUserRepository::new();
    users.expect_count_users().times(1).returning(|| Ok(0));
    users
        .expect_insert_user()
        .withf(|u| u.username.as_str() == FIRST_ADMIN && u.roles == Role::ALL)
        .times(1)
        .returning(|_| Ok(()));
    let calls = AtomicUsize::new(0);
    let password = Password::new("first-admin-password".into()).unwrap();
    let outcome = service(users)
        .create_first_admin(password.clone(), inline(&calls))
        .await
        .unwrap();
    let FirstAdmin::Created(admin) = outcome else {
        panic!("expected the admin to be created");
    };
    assert!(Argon2idHasher.verify(&password, &admin.password_hash));
}

#[tokio::test]
async fn a_database_with_users_gets_no_first_admin() {
    let mut users = MockUserRepository::new();
    users.expect_count_users().returning(|| Ok(1));
    let calls = AtomicUsize::new(0);
    let outcome = service(users)
        .create_first_admin(
            Password::new("first-admin-password".into()).unwrap(),
            inline(&calls),
        )
        .await
        .unwrap();
    assert_eq!(outcome, FirstAdmin::AlreadyBootstrapped);
    assert_eq!(calls.load(Ordering::SeqCst), 0, "nothing hashed");
}

#[tokio::test]
async fn a_first_admin_created_meanwhile_by_another_server_counts_as_bootstrapped() {
    let mut users = MockUserRepository::new();
    users.expect_count_users().returning(|| Ok(0));
    users
        .expect_insert_user()
        .returning(|_| Err(RepoError::Conflict("user 'admin' already exists".into())));
    let calls = AtomicUsize::new(0);
    let outcome = service(users)
        .create_first_admin(
            Password::new("first-admin-password".into()).unwrap(),
            inline(&calls),
        )
        .await
        .unwrap();
    assert_eq!(outcome, FirstAdmin::AlreadyBootstrapped);
}
