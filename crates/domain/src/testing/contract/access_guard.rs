//! `AccessGuardRepository`: revocations, failure counting and bans.

use std::collections::BTreeMap;

use futures_util::future::join_all;

use baton_domain::Timestamp;
use baton_domain::ports::FailureKind::{self, Key, Password};

use super::SharedStore;
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

async fn fail(db: &SharedStore, ip: &str, kind: FailureKind, now: Timestamp) -> u32 {
    db.record_auth_failure(ip, kind, now, now - time::Duration::seconds(60))
        .await
        .unwrap()
}

pub async fn failures_count_within_the_window_and_restart_after_it(db: SharedStore) {
    let ip = "203.0.113.7";
    for (i, expected) in (1..=4).enumerate() {
        assert_eq!(fail(&db, ip, Key, at(i as i64)).await, expected);
    }
    // The window started at at(0); at(61) it lies outside, so counting starts over.
    assert_eq!(fail(&db, ip, Password, at(61)).await, 1);
    assert_eq!(
        fail(&db, "198.51.100.1", Key, at(61)).await,
        1,
        "addresses count apart"
    );
    db.clear_auth_failures(ip).await.unwrap();
    assert_eq!(fail(&db, ip, Key, at(62)).await, 1);
}

pub async fn both_kinds_add_up_and_a_valid_key_forgives_only_key_failures(db: SharedStore) {
    let ip = "203.0.113.8";
    assert_eq!(fail(&db, ip, Key, at(0)).await, 1);
    assert_eq!(fail(&db, ip, Password, at(1)).await, 2);
    assert_eq!(fail(&db, ip, Key, at(2)).await, 3);
    assert_eq!(fail(&db, ip, Password, at(3)).await, 4, "the kinds add up");
    db.clear_key_failures(ip).await.unwrap();
    assert_eq!(
        fail(&db, ip, Key, at(4)).await,
        3,
        "the two password failures survive a valid key"
    );
    db.clear_key_failures(ip).await.unwrap();
    db.clear_key_failures("192.0.2.200").await.unwrap();
    assert_eq!(fail(&db, ip, Password, at(5)).await, 3);
    // A restarted window forgets the old password failures too.
    assert_eq!(fail(&db, ip, Key, at(70)).await, 1);
    db.clear_key_failures(ip).await.unwrap();
    assert_eq!(fail(&db, ip, Password, at(71)).await, 1);
    db.clear_auth_failures(ip).await.unwrap();
    assert_eq!(
        fail(&db, ip, Password, at(72)).await,
        1,
        "a ban's clear is total"
    );
}

/// 20 addresses fail 15 times each, all at once, half with keys and half with passwords: each
/// failure gets a count of its own, so each address's counts are exactly 1 to 15.
pub async fn concurrent_failures_are_all_counted(db: SharedStore) {
    let tasks: Vec<_> = (0..20 * 15)
        .map(|n| {
            let db = db.clone();
            let ip = format!("192.0.2.{}", n % 20);
            let kind = if n % 2 == 0 { Key } else { Password };
            async move {
                let count = db
                    .record_auth_failure(&ip, kind, at(1), at(0))
                    .await
                    .unwrap();
                (ip, count)
            }
        })
        .collect();
    let mut seen: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for (ip, count) in join_all(tasks).await {
        seen.entry(ip).or_default().push(count);
    }
    assert_eq!(seen.len(), 20);
    for (ip, mut counts) in seen {
        counts.sort_unstable();
        assert_eq!(counts, (1..=15).collect::<Vec<u32>>(), "{ip}");
    }
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
    both_kinds_add_up_and_a_valid_key_forgives_only_key_failures,
    concurrent_failures_are_all_counted,
    bans_hold_until_they_end_and_only_extend,
        ] $($backend => $fixture),+);
    };
}
