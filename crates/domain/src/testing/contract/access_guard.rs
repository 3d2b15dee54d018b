//! `AccessGuardRepository`: revocations, failure counting and bans.

use super::SharedStore;
use futures_util::future::join_all;

use super::fixtures::at;

pub async fn a_token_is_revoked_once(db: SharedStore) {
    assert!(!db.is_token_revoked("jti-1").await.unwrap());
    assert!(db.revoke_token("jti-1", at(3600)).await.unwrap());
    assert!(
        !db.revoke_token("jti-1", at(3600)).await.unwrap(),
        "the second revocation is not new"
    );
    assert!(db.is_token_revoked("jti-1").await.unwrap());
    assert!(!db.is_token_revoked("jti-2").await.unwrap());
}

pub async fn concurrent_revocations_of_one_token_have_one_winner(db: SharedStore) {
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let db = db.clone();
            async move { db.revoke_token("refresh-1", at(60)).await.unwrap() }
        })
        .collect();
    let mut winners = 0;
    for task in join_all(tasks).await {
        winners += usize::from(task);
    }
    assert_eq!(winners, 1);
}

pub async fn expired_revocations_are_purged(db: SharedStore) {
    db.revoke_token("old", at(10)).await.unwrap();
    db.revoke_token("new", at(100)).await.unwrap();
    assert_eq!(db.purge_expired_revocations(at(10)).await.unwrap(), 1);
    assert!(!db.is_token_revoked("old").await.unwrap());
    assert!(db.is_token_revoked("new").await.unwrap());
}

pub async fn failures_count_within_the_window_and_restart_after_it(db: SharedStore) {
    let ip = "203.0.113.7";
    for (i, expected) in (1..=4).enumerate() {
        let now = at(i as i64);
        assert_eq!(
            db.record_auth_failure(ip, now, now - time::Duration::seconds(60))
                .await
                .unwrap(),
            expected
        );
    }
    // The window started at at(0); at(61) it lies outside, so counting starts over.
    let later = at(61);
    assert_eq!(
        db.record_auth_failure(ip, later, later - time::Duration::seconds(60))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        db.record_auth_failure("198.51.100.1", later, at(0))
            .await
            .unwrap(),
        1,
        "addresses count apart"
    );
    db.clear_auth_failures(ip).await.unwrap();
    assert_eq!(db.record_auth_failure(ip, at(62), at(2)).await.unwrap(), 1);
}

pub async fn concurrent_failures_are_all_counted(db: SharedStore) {
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let db = db.clone();
            async move {
                db.record_auth_failure("192.0.2.1", at(1), at(0))
                    .await
                    .unwrap()
            }
        })
        .collect();
    let mut seen = Vec::new();
    for task in join_all(tasks).await {
        seen.push(task);
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=10).collect::<Vec<u32>>());
}

pub async fn bans_hold_until_they_end_and_only_extend(db: SharedStore) {
    let ip = "203.0.113.9";
    assert_eq!(db.active_ban(ip, at(0)).await.unwrap(), None);
    db.ban_ip(ip, at(3600)).await.unwrap();
    assert_eq!(db.active_ban(ip, at(0)).await.unwrap(), Some(at(3600)));
    db.ban_ip(ip, at(60)).await.unwrap();
    assert_eq!(
        db.active_ban(ip, at(0)).await.unwrap(),
        Some(at(3600)),
        "a shorter ban does not shorten"
    );
    db.ban_ip(ip, at(7200)).await.unwrap();
    assert_eq!(db.active_ban(ip, at(3600)).await.unwrap(), Some(at(7200)));
    assert_eq!(
        db.active_ban(ip, at(7200)).await.unwrap(),
        None,
        "a ban ends at its end"
    );
}

/// The tests of this module, for [`contract_suite!`](crate::contract_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_access_guard {
    ($($backend:ident => $fixture:expr),+) => {
        $crate::__contract_module!(access_guard [
    a_token_is_revoked_once,
    concurrent_revocations_of_one_token_have_one_winner,
    expired_revocations_are_purged,
    failures_count_within_the_window_and_restart_after_it,
    concurrent_failures_are_all_counted,
    bans_hold_until_they_end_and_only_extend,
        ] $($backend => $fixture),+);
    };
}
