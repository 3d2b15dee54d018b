//! `UserRepository` and `ApiKeyRepository`.

use super::SharedStore;
use baton_domain::RepoError;
use baton_domain::auth::{ApiKey, Role, User, Username};
use baton_domain::ids::ApiKeyId;

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
    db.delete_user(&Username::parse("bob").unwrap())
        .await
        .unwrap();
    assert!(matches!(
        db.get_user(&Username::parse("bob").unwrap()).await,
        Err(RepoError::NotFound(_))
    ));
    assert!(matches!(
        db.delete_user(&Username::parse("bob").unwrap()).await,
        Err(RepoError::NotFound(_))
    ));
    assert_eq!(db.count_users().await.unwrap(), 2);
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
    api_keys_are_found_by_hash_until_revoked,
    api_key_hashes_are_unique,
        ] $($backend => $fixture),+);
    };
}
