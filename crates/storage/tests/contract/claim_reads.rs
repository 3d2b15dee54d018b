//! PostgreSQL only: what a job claim makes PostgreSQL read, counted by its own statistics.
//!
//! A claim must read about as many entries of the partial index `jobs_claim` as it takes jobs,
//! whatever the backlog. A plan that reaches the chosen ids through `jobs_claim` instead of the
//! primary key (its last column is the id, so that is a scan of every pending job) keeps every
//! claim correct but makes each one cost the whole backlog: it happened when the claim's UPDATE
//! repeated `status = 'pending'`, which the planner matched to the index's predicate. Counting
//! index entries is exact, unlike timing, so this is a test and not a benchmark.

use baton_domain::ids::JobId;
use baton_domain::ids::WorkflowId;
use baton_domain::job::{NewJob, Priority};
use baton_domain::ports::JobRepository;
use baton_domain::robot::RobotId;
use baton_domain::workflow::{ExecutionMode, WorkflowName};
use baton_storage::testing::TestDatabase;

use crate::index_reads::index_reads;
use baton_domain::testing::contract::fixtures::{at, uuid};

const BACKLOG: u128 = 1_000;
const CLAIMS: i64 = 10;
const LIMIT: u32 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_reads_the_claim_index_for_the_jobs_it_takes_not_the_backlog() {
    let database = TestDatabase::postgres().await;
    let db = database.connect().await;
    let writers: Vec<_> = (0..4u128)
        .map(|w| {
            let db = db.clone();
            tokio::spawn(async move {
                for n in (w * BACKLOG / 4)..((w + 1) * BACKLOG / 4) {
                    let job = NewJob {
                        workflow_id: WorkflowId::from_uuid(uuid(1_000_000)),
                        workflow_name: WorkflowName::parse("nightly").unwrap(),
                        priority: Priority::new(10).unwrap(),
                        execution_mode: ExecutionMode::Lan,
                        input: serde_json::Map::new(),
                        origin: baton_domain::job::JobOrigin::Manual,
                        max_retries: NewJob::DEFAULT_MAX_RETRIES,
                    }
                    .into_job(JobId::from_uuid(uuid(n + 1)), at(i64::try_from(n).unwrap()));
                    db.insert_job(&job, &[]).await.unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let robot = RobotId::parse("robot-1").unwrap();
    for _ in 0..CLAIMS {
        let claimed = db.claim_jobs(&robot, at(5_000), 60, LIMIT).await.unwrap();
        assert_eq!(claimed.len(), LIMIT as usize);
    }

    let reads = index_reads(database.url(), "jobs_claim", CLAIMS).await;
    assert_eq!(reads.scans, CLAIMS, "one walk of jobs_claim per claim");
    // The k-th walk reads the jobs it takes and at most the entries of the jobs claimed before
    // it: a dead entry is skipped once a scan has marked it, but whether it may be marked yet
    // depends on the other transactions running (measured: 200 to 680 here). Scanning the
    // backlog instead costs about the backlog per claim, several times this bound.
    let bound = i64::from(LIMIT) * CLAIMS * (CLAIMS + 1) / 2;
    assert!(
        reads.entries <= bound,
        "{CLAIMS} claims of {LIMIT} read {} entries of jobs_claim (at most {bound} expected, \
         the backlog is {BACKLOG})",
        reads.entries
    );
    drop(db);
}
