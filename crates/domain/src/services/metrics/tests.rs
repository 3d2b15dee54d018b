//! The metrics use cases against mocked ports: which jobs each figure covers, and the figures
//! computed from what storage answers.

use mockall::predicate::eq;
use time::macros::datetime;

use super::*;
use crate::RepoError;
use crate::ids::WorkflowId;
use crate::ports::{
    MockEventRepository, MockJobRepository, MockJobStatsRepository, MockRobotRepository,
};

const NOW: Timestamp = datetime!(2025-06-01 15:30:20.5 UTC);
const MIDNIGHT: Timestamp = datetime!(2025-06-01 00:00 UTC);

struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        NOW
    }
}

#[derive(Default)]
struct Mocks {
    robots: MockRobotRepository,
    jobs: MockJobRepository,
    stats: MockJobStatsRepository,
    events: MockEventRepository,
}

impl Mocks {
    fn service(self) -> MetricsService {
        MetricsService::new(
            MetricsPorts {
                robots: Arc::new(self.robots),
                jobs: Arc::new(self.jobs),
                stats: Arc::new(self.stats),
                events: Arc::new(self.events),
            },
            Arc::new(FixedClock),
        )
    }
}

fn robot(id: &str, status: RobotStatus) -> Robot {
    let mut robot = Robot::register(RobotId::parse(id).unwrap(), None, None, MIDNIGHT).unwrap();
    robot.edit(|r| r.status = status);
    robot
}

fn totals(status: JobStatus, jobs: u64, retried: u64, durations: &[i64]) -> StatusTotals {
    StatusTotals {
        status,
        jobs,
        retried,
        timed: durations.len() as u64,
        duration_ms_sum: durations.iter().sum(),
    }
}

fn created_since(t: Timestamp) -> JobScope {
    JobScope {
        created_since: Some(t),
        ..JobScope::default()
    }
}

#[test]
fn today_starts_at_midnight_utc() {
    assert_eq!(start_of_day(NOW), MIDNIGHT);
    assert_eq!(start_of_day(MIDNIGHT), MIDNIGHT);
    assert_eq!(
        start_of_day(datetime!(2025-06-01 23:30 -02:00)),
        datetime!(2025-06-02 00:00 UTC),
        "an instant is judged by its UTC day"
    );
}

#[tokio::test]
async fn the_fleet_counts_robots_by_status_and_todays_jobs() {
    let mut m = Mocks::default();
    m.robots.expect_list_robots().with(eq(None)).returning(|_| {
        Ok(vec![
            robot("a", RobotStatus::Busy),
            robot("b", RobotStatus::Idle),
            robot("c", RobotStatus::Idle),
            robot("d", RobotStatus::Offline),
        ])
    });
    m.jobs.expect_count_jobs_by_status().returning(|| {
        Ok(vec![
            (JobStatus::Pending, 12),
            (JobStatus::Claimed, 1),
            (JobStatus::Running, 2),
            (JobStatus::Completed, 40),
        ])
    });
    m.stats
        .expect_job_totals()
        .with(eq(created_since(MIDNIGHT)))
        .returning(|_| {
            Ok(vec![
                totals(JobStatus::Pending, 3, 0, &[]),
                totals(JobStatus::Completed, 5, 0, &[1, 2, 3, 4, 5]),
            ])
        });
    m.stats
        .expect_job_totals()
        .with(eq(JobScope {
            ended_since: Some(MIDNIGHT),
            ..JobScope::default()
        }))
        .returning(|_| {
            Ok(vec![
                totals(JobStatus::Completed, 2, 0, &[40_000, 51_000]),
                totals(JobStatus::Failed, 1, 0, &[999_000]),
            ])
        });
    let fleet = m.service().fleet().await.unwrap();
    assert_eq!(
        fleet,
        FleetMetrics {
            total_robots: 4,
            active_robots: 1,
            idle_robots: 2,
            offline_robots: 1,
            total_jobs_today: 8,
            active_jobs: 3,
            queue_depth: 12,
            average_job_duration_seconds: 45.5,
        }
    );
}

#[tokio::test]
async fn an_empty_fleet_is_all_zeros() {
    let mut m = Mocks::default();
    m.robots.expect_list_robots().returning(|_| Ok(Vec::new()));
    m.jobs
        .expect_count_jobs_by_status()
        .returning(|| Ok(Vec::new()));
    m.stats.expect_job_totals().returning(|_| Ok(Vec::new()));
    let fleet = m.service().fleet().await.unwrap();
    assert_eq!(fleet.total_robots, 0);
    assert_eq!(fleet.total_jobs_today, 0);
    assert_eq!(fleet.average_job_duration_seconds, 0.0);
}

#[tokio::test]
async fn a_robot_shows_the_jobs_it_finished_today() {
    let mut m = Mocks::default();
    let id = RobotId::parse("robot-1").unwrap();
    m.robots
        .expect_get_robot()
        .with(eq(id.clone()))
        .returning(|_| Ok(robot("robot-1", RobotStatus::Busy)));
    m.stats
        .expect_job_totals()
        .with(eq(JobScope {
            ended_since: Some(MIDNIGHT),
            robot_id: Some(id.clone()),
            ..JobScope::default()
        }))
        .returning(|_| {
            Ok(vec![
                totals(JobStatus::Completed, 3, 0, &[1_000, 2_000, 4_000]),
                totals(JobStatus::Failed, 2, 0, &[5, 5]),
                totals(JobStatus::Cancelled, 1, 0, &[1]),
            ])
        });
    let metrics = m.service().robot(&id).await.unwrap();
    assert_eq!(metrics.robot.robot_id(), &id);
    assert_eq!(metrics.jobs_completed_today, 3);
    assert_eq!(metrics.jobs_failed_today, 2);
    assert_eq!(metrics.average_job_duration_seconds, 2.333);
}

#[tokio::test]
async fn an_unknown_robot_is_not_found() {
    let mut m = Mocks::default();
    m.robots
        .expect_get_robot()
        .returning(|_| Err(RepoError::NotFound("robot")));
    let err = m
        .service()
        .robot(&RobotId::parse("ghost").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Repo(RepoError::NotFound(_))));
}

#[tokio::test]
async fn analytics_cover_the_window_and_fetch_each_percentile_by_rank() {
    let mut m = Mocks::default();
    let days = AnalyticsDays::parse(Some("3")).unwrap();
    let since = NOW - time::Duration::days(3);
    let scope = created_since(since);
    // Ten completed jobs of 1 to 10 seconds, two of them after a retry; three failed, one of
    // them after a retry; one cancelled; four still pending.
    let durations: Vec<i64> = (1..=10).map(|s| s * 1000).collect();
    let completed = totals(JobStatus::Completed, 10, 2, &durations);
    m.stats
        .expect_job_totals()
        .with(eq(scope.clone()))
        .returning(move |_| {
            Ok(vec![
                totals(JobStatus::Pending, 4, 0, &[]),
                completed,
                totals(JobStatus::Failed, 3, 1, &[1, 1, 1]),
                totals(JobStatus::Cancelled, 1, 0, &[1]),
            ])
        });
    // Nearest rank of ten values: p50 → 5th, p90 → 9th, p99 → 10th (0-based 4, 8, 9).
    for rank in [4u64, 8, 9] {
        let value = durations[rank as usize];
        m.stats
            .expect_completed_duration_at()
            .with(eq(scope.clone()), eq(rank))
            .times(1)
            .returning(move |_, _| Ok(Some(value)));
    }
    let slow = WorkflowDuration {
        workflow_id: WorkflowId::from_uuid(uuid::Uuid::from_u128(7)),
        workflow_name: "Heavy Report".to_owned(),
        average_duration_ms: 9_500.0,
        completed_jobs: 2,
    };
    let slowest = vec![slow.clone()];
    m.stats
        .expect_slowest_workflows()
        .with(eq(scope.clone()), eq(SLOWEST_WORKFLOWS))
        .returning(move |_, _| Ok(slowest.clone()));
    let errors = vec![ErrorCount {
        error_type: Some("TimeoutError".to_owned()),
        count: 3,
    }];
    let answer = errors.clone();
    m.stats
        .expect_error_counts()
        .with(eq(scope), eq(ERROR_TYPES))
        .returning(move |_, _| Ok(answer.clone()));

    let analytics = m.service().analytics(days).await.unwrap();
    assert_eq!(
        analytics,
        Analytics {
            days,
            since,
            total_jobs: 18,
            completed_jobs: 10,
            failed_jobs: 3,
            cancelled_jobs: 1,
            success_rate: 76.92,
            failure_rate: 23.08,
            average_duration_ms: 5_500,
            p50_duration_ms: 5_000,
            p90_duration_ms: 9_000,
            p99_duration_ms: 10_000,
            slowest_workflows: vec![slow],
            error_distribution: errors,
            self_healing_success_rate: 66.67,
        }
    );
}

#[tokio::test]
async fn analytics_without_jobs_are_zeros_and_ask_for_no_percentile() {
    let mut m = Mocks::default();
    m.stats.expect_job_totals().returning(|_| Ok(Vec::new()));
    m.stats.expect_completed_duration_at().never();
    m.stats
        .expect_slowest_workflows()
        .returning(|_, _| Ok(Vec::new()));
    m.stats
        .expect_error_counts()
        .returning(|_, _| Ok(Vec::new()));
    let analytics = m
        .service()
        .analytics(AnalyticsDays::default())
        .await
        .unwrap();
    assert_eq!(analytics.since, NOW - time::Duration::days(7));
    assert_eq!(analytics.total_jobs, 0);
    assert_eq!((analytics.success_rate, analytics.failure_rate), (0.0, 0.0));
    assert_eq!(
        [
            analytics.average_duration_ms,
            analytics.p50_duration_ms,
            analytics.p90_duration_ms,
            analytics.p99_duration_ms,
        ],
        [0; 4]
    );
    assert_eq!(analytics.self_healing_success_rate, 0.0);
}

#[tokio::test]
async fn storage_failures_surface_as_repo_errors() {
    let mut m = Mocks::default();
    m.stats
        .expect_job_totals()
        .returning(|_| Err(RepoError::Unavailable("down".to_owned())));
    let err = m
        .service()
        .analytics(AnalyticsDays::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Repo(RepoError::Unavailable(_))));
}

#[tokio::test]
async fn the_activity_feed_passes_its_filter_to_the_event_log() {
    let mut m = Mocks::default();
    let filter = ActivityParams {
        limit: Some("2".to_owned()),
        event_type: Some("job_failed".to_owned()),
        since: None,
    }
    .parse()
    .unwrap();
    m.events
        .expect_list_events()
        .with(eq(filter.clone()))
        .returning(|_| Ok((Vec::new(), 17)));
    let (events, total) = m.service().activity(&filter).await.unwrap();
    assert!(events.is_empty());
    assert_eq!(total, 17);
}
