//! `UserRepository` and `ApiKeyRepository`.

use super::SharedStore;
use baton_domain::RepoError;
use baton_domain::auth::{ApiKey, Role, User, Username};
use baton_domain::ids::ApiKeyId;
use baton_domain::ports::UserDeletion;

use super::fixtures::{T0, at, uuid};

fn user(name: &str) -> User {
    User {
        username: Username::parse(name).unwrap(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        roles: vec![Role::Admin, Role::Viewer],
        created_at: T0,
    }
}

pub async fn a_user_reads_back_as_written(db: SharedStore) {
    let u = user("alice");
    db.insert_user(&u).await.unwrap();
    assert_eq!(db.get_user(&u.username).await.unwrap(), u);
    assert_eq!(db.count_users().await.unwrap(), 1);
}

pub async fn a_taken_username_conflicts(db: SharedStore) {
    db.insert_user(&user("alice")).await.unwrap();
    let err = db.insert_user(&user("alice")).await.unwrap_err();
    assert!(matches!(err, RepoError::Conflict(_)), "{err:?}");
    assert_eq!(db.count_users().await.unwrap(), 1);
}

pub async fn users_list_by_name_and_delete(db: SharedStore) {
    for name in ["carol", "alice", "bob"] {
        db.insert_user(&user(name)).await.unwrap();
    }
    let names: Vec<String> = db
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username.to_string())
        .collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    assert_eq!(
        db.delete_user_unless_last_admin(&Username::parse("bob").unwrap())
            .await
            .unwrap(),
        UserDeletion::Deleted
    );
    assert!(matches!(
        db.get_user(&Username::parse("bob").unwrap()).await,
        Err(RepoError::NotFound(_))
    ));
    assert!(matches!(
        db.delete_user_unless_last_admin(&Username::parse("bob").unwrap())
            .await,
        Err(RepoError::NotFound(_))
    ));
    assert_eq!(db.count_users().await.unwrap(), 2);
}

fn with_roles(name: &str, roles: &[Role]) -> User {
    User {
        roles: roles.to_vec(),
        ..user(name)
    }
}

async fn admins(db: &SharedStore) -> Vec<String> {
    db.list_users()
        .await
        .unwrap()
        .into_iter()
        .filter(|u| u.roles.contains(&Role::Admin))
        .map(|u| u.username.to_string())
        .collect()
}

pub async fn the_last_admin_is_kept_and_others_go(db: SharedStore) {
    db.insert_user(&with_roles("root", &[Role::Admin]))
        .await
        .unwrap();
    db.insert_user(&with_roles("dev", &[Role::Developer, Role::Viewer]))
        .await
        .unwrap();
    let root = Username::parse("root").unwrap();
    assert_eq!(
        db.delete_user_unless_last_admin(&root).await.unwrap(),
        UserDeletion::LastAdmin
    );
    assert!(db.get_user(&root).await.is_ok(), "the last admin is kept");
    // A user that is not an admin goes while one admin remains.
    let dev = Username::parse("dev").unwrap();
    assert_eq!(
        db.delete_user_unless_last_admin(&dev).await.unwrap(),
        UserDeletion::Deleted
    );
    // With a second admin, either may go, but not both.
    db.insert_user(&with_roles("second", &[Role::Admin, Role::Viewer]))
        .await
        .unwrap();
    assert_eq!(
        db.delete_user_unless_last_admin(&root).await.unwrap(),
        UserDeletion::Deleted
    );
    assert_eq!(
        db.delete_user_unless_last_admin(&Username::parse("second").unwrap())
            .await
            .unwrap(),
        UserDeletion::LastAdmin
    );
    assert!(matches!(
        db.delete_user_unless_last_admin(&Username::parse("ghost").unwrap())
            .await,
        Err(RepoError::NotFound(_))
    ));
    assert_eq!(admins(&db).await, ["second"]);
}

/// Rounds of the race below: enough that deletes which read the admins and then delete
/// separately would, in some round, both see two admins and both delete.
const RACE_ROUNDS: usize = 25;

pub async fn two_concurrent_deletes_of_different_admins_leave_one(db: SharedStore) {
    db.insert_user(&with_roles("admin-0", &[Role::Admin]))
        .await
        .unwrap();
    let mut survivor = "admin-0".to_owned();
    for round in 1..=RACE_ROUNDS {
        let newcomer = format!("admin-{round}");
        db.insert_user(&with_roles(&newcomer, &[Role::Admin, Role::Operator]))
            .await
            .unwrap();
        // Both deletes wait at the barrier, so they reach the store together.
        let start = std::sync::Arc::new(super::Barrier::new(2));
        let delete = |name: String| {
            let db = db.clone();
            let start = start.clone();
            async move {
                start.wait().await;
                let outcome = db
                    .delete_user_unless_last_admin(&Username::parse(&name).unwrap())
                    .await
                    .unwrap();
                (name, outcome)
            }
        };
        let (a, b) =
            futures_util::future::join(delete(survivor.clone()), delete(newcomer.clone())).await;
        let outcomes = [a, b];
        let deleted = outcomes
            .iter()
            .filter(|(_, o)| *o == UserDeletion::Deleted)
            .count();
        assert_eq!(
            deleted, 1,
            "round {round}: exactly one delete wins: {outcomes:?}"
        );
        let (kept, _) = outcomes
            .iter()
            .find(|(_, o)| *o == UserDeletion::LastAdmin)
            .unwrap();
        survivor = kept.clone();
        assert_eq!(admins(&db).await, [survivor.clone()], "round {round}");
    }
}

pub async fn api_keys_are_found_by_hash_until_revoked(db: SharedStore) {
    let (key, plaintext) = ApiKey::issue(
        ApiKeyId::from_uuid(uuid(1)),
        "ci".into(),
        vec![Role::Operator],
        T0,
    )
    .unwrap();
    db.insert_api_key(&key).await.unwrap();
    let found = db
        .find_api_key_by_hash(&baton_domain::auth::sha256_hex(&plaintext))
        .await
        .unwrap();
    assert_eq!(found, key);
    db.revoke_api_key(key.id, at(5)).await.unwrap();
    assert!(matches!(
        db.find_api_key_by_hash(&key.key_hash).await,
        Err(RepoError::NotFound(_))
    ));
    assert!(
        matches!(
            db.revoke_api_key(key.id, at(6)).await,
            Err(RepoError::NotFound(_))
        ),
        "revoking twice"
    );
    let listed = db.list_api_keys().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].revoked_at, Some(at(5)));
}

pub async fn api_key_hashes_are_unique(db: SharedStore) {
    let (key, _) = ApiKey::issue(
        ApiKeyId::from_uuid(uuid(1)),
        "a".into(),
        vec![Role::Viewer],
        T0,
    )
    .unwrap();
    db.insert_api_key(&key).await.unwrap();
    let twin = ApiKey {
        id: ApiKeyId::from_uuid(uuid(2)),
        ..key
    };
    assert!(matches!(
        db.insert_api_key(&twin).await,
        Err(RepoError::Conflict(_))
    ));
}

/// The tests of this module, for [`contract_suite!`](crate::contract_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_users {
    ($($backend:ident => $fixture:expr),+) => {
        $crate::__contract_module!(users [
    a_user_reads_back_as_written,
    a_taken_username_conflicts,
    users_list_by_name_and_delete,
    the_last_admin_is_kept_and_others_go,
    two_concurrent_deletes_of_different_admins_leave_one,
    api_keys_are_found_by_hash_until_revoked,
    api_key_hashes_are_unique,
        ] $($backend => $fixture),+);
    };
}
