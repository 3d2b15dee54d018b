//! `AccessGuardRepository`: revocations, failure counting and bans.

use std::collections::BTreeMap;

use baton_domain::Timestamp;
use baton_domain::ports::AccessGuardRepository;
use baton_domain::ports::FailureKind::{self, Key, Password};
use baton_storage::Db;
use baton_storage::testing::TestDatabase;
use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use crate::fixtures::at;

async fn a_token_is_revoked_once(db: Db) {
    assert!(!db.is_token_revoked("jti-1").await.unwrap());
    assert!(db.revoke_token("jti-1", at(3600)).await.unwrap());
    assert!(
        !db.revoke_token("jti-1", at(3600)).await.unwrap(),
        "the second revocation is not new"
    );
    assert!(db.is_token_revoked("jti-1").await.unwrap());
    assert!(!db.is_token_revoked("jti-2").await.unwrap());
}

async fn concurrent_revocations_of_one_token_have_one_winner(db: Db) {
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { db.revoke_token("refresh-1", at(60)).await.unwrap() })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap());
    }
    assert_eq!(winners, 1);
}

async fn expired_revocations_are_purged(db: Db) {
    db.revoke_token("old", at(10)).await.unwrap();
    db.revoke_token("new", at(100)).await.unwrap();
    assert_eq!(db.purge_expired_revocations(at(10)).await.unwrap(), 1);
    assert!(!db.is_token_revoked("old").await.unwrap());
    assert!(db.is_token_revoked("new").await.unwrap());
}

async fn fail(db: &Db, ip: &str, kind: FailureKind, now: Timestamp) -> u32 {
    db.record_auth_failure(ip, kind, now, now - time::Duration::seconds(60))
        .await
        .unwrap()
}

async fn failures_count_within_the_window_and_restart_after_it(db: Db) {
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

async fn both_kinds_add_up_and_a_valid_key_forgives_only_key_failures(db: Db) {
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
async fn concurrent_failures_are_all_counted(db: Db) {
    let tasks: Vec<_> = (0..20 * 15)
        .map(|n| {
            let db = db.clone();
            let ip = format!("192.0.2.{}", n % 20);
            let kind = if n % 2 == 0 { Key } else { Password };
            tokio::spawn(async move {
                let count = db
                    .record_auth_failure(&ip, kind, at(1), at(0))
                    .await
                    .unwrap();
                (ip, count)
            })
        })
        .collect();
    let mut seen: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for task in tasks {
        let (ip, count) = task.await.unwrap();
        seen.entry(ip).or_default().push(count);
    }
    assert_eq!(seen.len(), 20);
    for (ip, mut counts) in seen {
        counts.sort_unstable();
        assert_eq!(counts, (1..=15).collect::<Vec<u32>>(), "{ip}");
    }
}

async fn bans_hold_until_they_end_and_only_extend(db: Db) {
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

contract_tests!(
    a_token_is_revoked_once,
    concurrent_revocations_of_one_token_have_one_winner,
    expired_revocations_are_purged,
    failures_count_within_the_window_and_restart_after_it,
    both_kinds_add_up_and_a_valid_key_forgives_only_key_failures,
    concurrent_failures_are_all_counted,
    bans_hold_until_they_end_and_only_extend,
);

#[derive(QueryableByName)]
struct Statements {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// PostgreSQL only, where several servers share the database and each commit costs the most: a
/// flood of failures from as many addresses is counted in far fewer statements than failures.
/// A statement-level trigger counts the INSERTs into `auth_failures`, exactly, in the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_failures_from_many_addresses_costs_few_statements() {
    const FLOOD: usize = 300;
    let database = TestDatabase::postgres().await;
    let db = database.connect().await;
    let mut conn = AsyncPgConnection::establish(database.url()).await.unwrap();
    conn.batch_execute(
        "CREATE TABLE failure_statements (n BIGINT NOT NULL); \
         INSERT INTO failure_statements VALUES (0); \
         CREATE FUNCTION count_failure_statement() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN UPDATE failure_statements SET n = n + 1; RETURN NULL; END $$; \
         CREATE TRIGGER count_failure_statements AFTER INSERT ON auth_failures \
         FOR EACH STATEMENT EXECUTE FUNCTION count_failure_statement();",
    )
    .await
    .unwrap();
    let tasks: Vec<_> = (0..FLOOD)
        .map(|n| {
            let db = db.clone();
            tokio::spawn(async move {
                let ip = format!("10.{}.{}.1", n / 256, n % 256);
                db.record_auth_failure(&ip, Key, at(1), at(0))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 1, "each address failed once");
    }
    let statements: Statements = diesel::sql_query("SELECT n FROM failure_statements")
        .get_result(&mut conn)
        .await
        .unwrap();
    let stored: Statements = diesel::sql_query("SELECT count(*) AS n FROM auth_failures")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(stored.n, FLOOD as i64, "every failure is counted");
    assert!(
        statements.n >= 1 && statements.n <= (FLOOD / 10) as i64,
        "{} statements for {FLOOD} failures",
        statements.n
    );
}
