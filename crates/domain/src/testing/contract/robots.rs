//! `RobotRepository`.

// Helpers here are not `#[test]` functions, so clippy's test exemption does not reach them; a
// failed unwrap in a contract test is a failed assertion with a location.
#![allow(clippy::unwrap_used)]

use super::SharedStore;
use baton_domain::RepoError;
use baton_domain::event::EventType;
use baton_domain::ports::EventFilter;
use baton_domain::robot::{Robot, RobotId, RobotLoad, RobotStatus};

use super::fixtures::{T0, at};
use super::workflows::{event, job_id, micros};

fn id(name: &str) -> RobotId {
    RobotId::parse(name).unwrap()
}

/// Every optional field set, every instant with microseconds.
fn busy_robot(name: &str) -> Robot {
    let mut robot = Robot::register(
        id(name),
        Some("host-1.example".to_owned()),
        Some("ab".repeat(32)),
        micros(T0, 11),
    )
    .unwrap();
    robot.edit(|r| {
        r.capabilities = vec![
            "Log".to_owned(),
            "HttpRequest".to_owned(),
            "Ünïcode".to_owned(),
        ]
    });
    robot.take_job(job_id(1));
    robot.heartbeat(
        RobotLoad::new(12.5, 2048.25, 33.3).unwrap(),
        micros(at(5), 123_456),
    );
    robot
}

/// Registered and never seen: every optional field empty.
fn new_robot(name: &str) -> Robot {
    Robot::register(id(name), None, None, T0).unwrap()
}

pub async fn event_count(db: &SharedStore) -> u64 {
    db.list_events(&EventFilter {
        limit: 1,
        ..EventFilter::default()
    })
    .await
    .unwrap()
    .1
}

pub async fn robots_read_back_as_written(db: SharedStore) {
    let busy = busy_robot("robot-b");
    let fresh = new_robot("robot-a");
    db.insert_robot(&busy).await.unwrap();
    db.insert_robot(&fresh).await.unwrap();
    assert_eq!(db.get_robot(busy.robot_id()).await.unwrap(), busy);
    assert_eq!(db.get_robot(fresh.robot_id()).await.unwrap(), fresh);
    assert_eq!(
        db.list_robots(None).await.unwrap(),
        vec![fresh.clone(), busy.clone()],
        "by id"
    );
    assert_eq!(
        db.list_robots(Some(RobotStatus::Busy)).await.unwrap(),
        vec![busy]
    );
    assert_eq!(
        db.list_robots(Some(RobotStatus::Offline)).await.unwrap(),
        vec![fresh]
    );
    assert!(
        db.list_robots(Some(RobotStatus::Idle))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn a_taken_robot_id_conflicts(db: SharedStore) {
    db.insert_robot(&busy_robot("r1")).await.unwrap();
    let err = db.insert_robot(&new_robot("r1")).await.unwrap_err();
    assert!(matches!(err, RepoError::Conflict(_)), "{err:?}");
    assert_eq!(db.get_robot(&id("r1")).await.unwrap(), busy_robot("r1"));
}

pub async fn missing_robots_are_not_found(db: SharedStore) {
    assert!(matches!(
        db.get_robot(&id("ghost")).await,
        Err(RepoError::NotFound(_))
    ));
    assert!(matches!(
        db.delete_robot(&id("ghost")).await,
        Err(RepoError::NotFound(_))
    ));
}

pub async fn robots_are_deleted(db: SharedStore) {
    db.insert_robot(&new_robot("r1")).await.unwrap();
    db.insert_robot(&new_robot("r2")).await.unwrap();
    db.delete_robot(&id("r1")).await.unwrap();
    assert!(matches!(
        db.get_robot(&id("r1")).await,
        Err(RepoError::NotFound(_))
    ));
    assert_eq!(db.list_robots(None).await.unwrap(), vec![new_robot("r2")]);
}

pub async fn save_inserts_then_replaces_every_field_with_events(db: SharedStore) {
    let busy = busy_robot("r1");
    db.save_robot(&busy, &[event(1, EventType::RobotOnline, at(5))])
        .await
        .unwrap();
    assert_eq!(
        db.get_robot(busy.robot_id()).await.unwrap(),
        busy,
        "saving an unknown robot inserts it"
    );

    // Every field changes, optional ones to None.
    let mut changed = busy.clone();
    changed.edit(|r| {
        r.hostname = None;
        r.token_hash = None;
        r.capabilities.clear();
    });
    changed.release_job();
    changed.heartbeat(
        RobotLoad::new(99.0, 1.5, 0.0).unwrap(),
        micros(at(30), 999_999),
    );
    changed.edit(|r| r.created_at = micros(T0, 22));
    db.save_robot(&changed, &[event(2, EventType::RobotOnline, at(30))])
        .await
        .unwrap();
    assert_eq!(db.get_robot(busy.robot_id()).await.unwrap(), changed);

    let mut offline = changed.clone();
    offline.edit(|r| r.last_heartbeat = None);
    offline.mark_offline();
    db.save_robot(&offline, &[]).await.unwrap();
    assert_eq!(db.get_robot(busy.robot_id()).await.unwrap(), offline);
    assert_eq!(event_count(&db).await, 2);
}

pub async fn stale_robots_are_online_ones_without_a_recent_heartbeat(db: SharedStore) {
    let before = micros(at(100), 500);
    let beat = |name: &str, when| {
        let mut robot = new_robot(name);
        robot.heartbeat(RobotLoad::default(), when);
        robot
    };
    let mut never_seen_online = new_robot("a-never");
    never_seen_online.edit(|r| r.status = RobotStatus::Idle);
    let mut offline_and_old = beat("e-offline", at(1));
    offline_and_old.mark_offline();
    for robot in [
        never_seen_online,
        beat("b-old", micros(before, -1)),
        beat("c-exactly", before),
        beat("d-recent", micros(before, 1)),
        offline_and_old,
        new_robot("f-registered"),
    ] {
        db.insert_robot(&robot).await.unwrap();
    }
    let stale: Vec<String> = db
        .stale_robots(before)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.robot_id().to_string())
        .collect();
    assert_eq!(
        stale,
        ["a-never", "b-old"],
        "offline robots are not stale, and `before` is strict"
    );
}

pub async fn marking_offline_loses_to_a_newer_heartbeat(db: SharedStore) {
    let robot = busy_robot("r1");
    db.insert_robot(&robot).await.unwrap();
    let seen = robot.last_heartbeat();

    // A heartbeat arrives after the sweeper read the robot.
    let mut fresh = robot.clone();
    fresh.heartbeat(RobotLoad::default(), micros(at(50), 1));
    db.save_robot(&fresh, &[]).await.unwrap();

    let marked = db
        .mark_robot_offline(
            robot.robot_id(),
            seen,
            &[event(1, EventType::RobotOffline, at(60))],
        )
        .await
        .unwrap();
    assert!(!marked);
    assert_eq!(
        db.get_robot(robot.robot_id()).await.unwrap(),
        fresh,
        "the robot stays online"
    );
    assert_eq!(
        event_count(&db).await,
        0,
        "no event for a mark that did not happen"
    );

    let marked = db
        .mark_robot_offline(
            robot.robot_id(),
            fresh.last_heartbeat(),
            &[event(2, EventType::RobotOffline, at(200))],
        )
        .await
        .unwrap();
    assert!(marked);
    let mut expected = fresh.clone();
    expected.mark_offline();
    assert_eq!(db.get_robot(robot.robot_id()).await.unwrap(), expected);
    assert_eq!(event_count(&db).await, 1);

    let again = db
        .mark_robot_offline(
            robot.robot_id(),
            fresh.last_heartbeat(),
            &[event(3, EventType::RobotOffline, at(201))],
        )
        .await
        .unwrap();
    assert!(!again, "an offline robot is not marked twice");
    assert_eq!(event_count(&db).await, 1);
}

pub async fn a_robot_never_seen_is_marked_by_a_null_heartbeat(db: SharedStore) {
    let mut robot = new_robot("r1");
    robot.edit(|r| r.status = RobotStatus::Idle);
    db.insert_robot(&robot).await.unwrap();
    assert!(
        !db.mark_robot_offline(robot.robot_id(), Some(at(1)), &[])
            .await
            .unwrap(),
        "a heartbeat it never sent"
    );
    assert!(
        db.mark_robot_offline(
            robot.robot_id(),
            None,
            &[event(1, EventType::RobotOffline, at(2))]
        )
        .await
        .unwrap()
    );
    assert_eq!(
        db.get_robot(robot.robot_id()).await.unwrap().status(),
        RobotStatus::Offline
    );
    assert_eq!(event_count(&db).await, 1);
    assert!(
        !db.mark_robot_offline(&id("ghost"), None, &[])
            .await
            .unwrap(),
        "an unknown robot is not marked"
    );
}

pub async fn robots_are_found_by_their_token_hash(db: SharedStore) {
    let with_token = busy_robot("r1");
    db.insert_robot(&with_token).await.unwrap();
    db.insert_robot(&new_robot("r2")).await.unwrap();
    assert_eq!(
        db.find_robot_by_token_hash(&"ab".repeat(32)).await.unwrap(),
        with_token
    );
    assert!(matches!(
        db.find_robot_by_token_hash(&"cd".repeat(32)).await,
        Err(RepoError::NotFound(_))
    ));
    let mut twin = new_robot("r3");
    twin.edit(|r| r.token_hash = with_token.token_hash().map(str::to_owned));
    assert!(
        matches!(db.insert_robot(&twin).await, Err(RepoError::Conflict(_))),
        "two robots never share a token"
    );
}

/// The tests of this module, for [`contract_suite!`](crate::contract_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_robots {
    ($($backend:ident => $fixture:expr),+) => {
        $crate::__contract_module!(robots [
    robots_read_back_as_written,
    robots_are_found_by_their_token_hash,
    a_taken_robot_id_conflicts,
    missing_robots_are_not_found,
    robots_are_deleted,
    save_inserts_then_replaces_every_field_with_events,
    stale_robots_are_online_ones_without_a_recent_heartbeat,
    marking_offline_loses_to_a_newer_heartbeat,
    a_robot_never_seen_is_marked_by_a_null_heartbeat,
        ] $($backend => $fixture),+);
    };
}
