//! The real `baton` binary, started as an operator would start it.

// A test crate: a panic is a failed assertion with its location, and helpers outside `#[test]`
// functions count too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;

use baton_domain::auth::{Argon2idHasher, Password, PasswordHasher, Username};
use baton_domain::ports::UserRepository;
use baton_storage::testing::TestDatabase;
use baton_storage::{ConnectOptions, Db};
use baton_tests::{BatonProcess, TEST_JWT_SECRET, json, printed_admin_password};
use serde_json::Value;

async fn get_json(client: &reqwest::Client, url: &str) -> (u16, Value) {
    json(client.get(url).send().await.expect("send the request")).await
}

#[tokio::test(flavor = "multi_thread")]
async fn with_no_configuration_baton_serves_keeps_its_data_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();

    let mut first = BatonProcess::start(dir.path(), &[], &[]);
    first.wait_until_healthy().await;
    let (status, body) = get_json(&client, &first.url("/health")).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "healthy");

    let data = dir.path().join("baton-data");
    assert!(data.join("baton.db").is_file(), "no ./baton-data/baton.db");
    let secret = data.join("jwt-secret");
    let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the JWT secret file must be private");
    let secret_text = std::fs::read_to_string(&secret).unwrap();

    let stdout = first.stdout();
    let password = printed_admin_password(&stdout)
        .unwrap_or_else(|| panic!("no admin password on stdout:\n{stdout}"));
    assert_eq!(password.len(), 24);
    let stderr = first.stderr();
    assert!(
        !stderr.contains(&password),
        "the password leaked into the logs"
    );
    assert!(
        !stderr.contains(secret_text.trim()),
        "the JWT secret leaked into the logs"
    );

    // The printed password is the stored admin's.
    let url = format!("sqlite://{}", data.join("baton.db").display());
    let db = Db::connect(&url, ConnectOptions::default()).await.unwrap();
    let admin = db
        .get_user(&Username::parse("admin").unwrap())
        .await
        .unwrap();
    let candidate = Password::candidate(password.clone()).unwrap();
    assert!(Argon2idHasher.verify(&candidate, &admin.password_hash));
    drop(db);

    let status = first.terminate().await;
    assert_eq!(status.code(), Some(0), "stderr:\n{}", first.stderr());

    // A restart in the same folder finds its data: no new admin, the same secret. Its logs are
    // JSON lines when asked for, and Ctrl-C (SIGINT) stops it as cleanly as SIGTERM.
    let mut second = BatonProcess::start(dir.path(), &["--log-format", "json"], &[]);
    second.wait_until_healthy().await;
    let status = second.interrupt().await;
    assert_eq!(status.code(), Some(0), "stderr:\n{}", second.stderr());
    assert_eq!(printed_admin_password(&second.stdout()), None);
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), secret_text);
    let stderr = second.stderr();
    assert!(stderr.lines().count() >= 2, "no logs: {stderr}");
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let parsed: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert!(parsed["level"].is_string(), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_servers_on_one_postgres_database_share_it() {
    let db = TestDatabase::postgres().await;
    let env = [
        ("DATABASE_URL", db.url()),
        ("JWT_SECRET_KEY", TEST_JWT_SECRET),
    ];
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();

    let mut first = BatonProcess::start(dir.path(), &[], &env);
    first.wait_until_healthy().await;
    assert!(
        printed_admin_password(&first.stdout()).is_some(),
        "the first server printed no admin password:\n{}",
        first.stdout()
    );

    let mut second = BatonProcess::start(dir.path(), &[], &env);
    second.wait_until_healthy().await;
    assert_eq!(
        printed_admin_password(&second.stdout()),
        None,
        "the second server created a second admin"
    );

    for server in [&first, &second] {
        let (status, body) = get_json(&client, &server.url("/health/detailed")).await;
        assert_eq!(status, 200);
        assert_eq!(body["status"], "healthy", "{body}");
        assert_eq!(body["dependencies"]["database"]["healthy"], true, "{body}");
    }
    assert!(
        !dir.path().join("baton-data").exists(),
        "a PostgreSQL server must not create the SQLite folder"
    );

    for server in [&mut first, &mut second] {
        let status = server.terminate().await;
        assert_eq!(status.code(), Some(0), "stderr:\n{}", server.stderr());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_only_migrates_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let mut process = BatonProcess::start(dir.path(), &["migrate"], &[]);
    let status = process.wait_for_exit().await;
    assert_eq!(status.code(), Some(0), "stderr:\n{}", process.stderr());
    assert!(dir.path().join("baton-data/baton.db").is_file());
    assert_eq!(printed_admin_password(&process.stdout()), None);
}

/// Arguments, environment, and what the refusal must say.
type RefusedStart = (
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[tokio::test(flavor = "multi_thread")]
async fn unsafe_configurations_are_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [RefusedStart; 3] = [
        (
            &[],
            &[("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/nothing")],
            "JWT_SECRET_KEY must be set with PostgreSQL",
        ),
        (
            &["--bind", "0.0.0.0:0"],
            &[("JWT_DEV_MODE", "true")],
            "only allowed on a loopback address",
        ),
        (
            &[],
            &[("BATON_ADMIN_PASSWORD", "short")],
            "BATON_ADMIN_PASSWORD is not usable",
        ),
    ];
    for (args, env, message) in cases {
        let mut process = BatonProcess::start(dir.path(), args, env);
        let status = process.wait_for_exit().await;
        assert!(!status.success(), "{args:?} {env:?} started");
        let stderr = process.stderr();
        assert!(stderr.contains(message), "{message:?} not in:\n{stderr}");
    }
    assert!(
        !dir.path().join("baton-data").exists(),
        "a refused start must not touch the disk"
    );
}
