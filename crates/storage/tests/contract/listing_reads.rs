//! What a page of a listing makes each backend read: PostgreSQL's index statistics count the
//! entries a page walked, SQLite's plan says which index it walks and that it sorts nothing.
//!
//! A page must walk an index in the listing's order and stop after the page. A plan that reads
//! everything the filter matches and sorts it returns the same page, but each page then costs the
//! whole queue (measured 72 ms a page at 37,500 items without a status filter, against 1.5 ms
//! with one), and a few viewers paging starve the queue's writers. Counting index entries is
//! exact, unlike timing, so these are tests and not benchmarks.

use baton_domain::ids::{JobId, QueueItemId, WorkflowId};
use baton_domain::job::{Job, JobOrigin, JobStatus, NewJob, Priority};
use baton_domain::ports::{ItemCursor, JobCursor, JobFilter, JobRepository, QueueRepository};
use baton_domain::queue::{QueueItem, QueueItemStatus};
use baton_domain::robot::RobotId;
use baton_domain::workflow::{ExecutionMode, WorkflowName};
use baton_storage::Db;
use baton_storage::testing::TestDatabase;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

use crate::index_reads::index_reads;
use crate::sqlite_plans::{StatementLog, assert_walks_in_order};
use baton_domain::testing::contract::fixtures::{at, uuid};
use baton_domain::testing::contract::queues::{item, queue};

/// Items of the listed queue; another queue's items are stored around them.
const ITEMS: u128 = 5_000;
const PAGE: u32 = 50;
const PAGES: i64 = 5;
const JOBS: u128 = 5_000;

/// `ITEMS` items of "orders", one a second, their statuses in turn (so each status is a fifth),
/// and a fifth as many of "returns" at the same times.
async fn stored_items(db: &Db) {
    let items: Vec<QueueItem> = (1..=ITEMS)
        .map(|n| {
            let mut item = item("orders", n, i64::try_from(n).unwrap());
            item.edit(|r| r.status = QueueItemStatus::ALL[usize::try_from(n % 5).unwrap()]);
            item
        })
        .chain((1..=ITEMS / 5).map(|n| item("returns", ITEMS + n, i64::try_from(n).unwrap())))
        .collect();
    db.insert_items(&items).await.unwrap();
}

/// `PAGES` pages of "orders" (of one status, or all), each from where the last one ended.
async fn page_items(db: &Db, status: Option<QueueItemStatus>) {
    let mut cursor: Option<ItemCursor> = None;
    for _ in 0..PAGES {
        let page = db
            .list_items(&queue("orders"), status, None, PAGE, cursor)
            .await
            .unwrap();
        assert_eq!(page.len(), PAGE as usize);
        assert!(
            page.windows(2)
                .all(|w| w[0].created_date() > w[1].created_date()),
            "newest first"
        );
        assert!(
            page.iter()
                .all(|i| i.queue_name().as_str() == "orders"
                    && status.is_none_or(|s| i.status() == s))
        );
        assert!(
            cursor.is_none_or(|c| page[0].created_date() < c.created_date),
            "on from the cursor"
        );
        let last = &page[page.len() - 1];
        cursor = Some(ItemCursor {
            created_date: last.created_date(),
            id: last.id(),
        });
    }
}

/// `JOBS` jobs, one a second, of five workflows in turn, a fifth failed and a fifth pending (the
/// others completed), the taken ones by five robots in turn. Each listed value matches a fifth
/// of the jobs, a thousand.
async fn stored_jobs(db: &Db) {
    for n in 1..=JOBS {
        let mut job: Job = NewJob {
            workflow_id: WorkflowId::from_uuid(uuid(1_000_000 + n % 5)),
            workflow_name: WorkflowName::parse("nightly").unwrap(),
            priority: Priority::new(10).unwrap(),
            execution_mode: ExecutionMode::Lan,
            input: serde_json::Map::new(),
            origin: JobOrigin::Manual,
            max_retries: NewJob::DEFAULT_MAX_RETRIES,
        }
        .into_job(JobId::from_uuid(uuid(n)), at(i64::try_from(n).unwrap()));
        job.edit(|r| {
            r.status = match n % 5 {
                0 => JobStatus::Pending,
                3 => JobStatus::Failed,
                _ => JobStatus::Completed,
            }
        });
        if job.status() != JobStatus::Pending {
            job.edit(|r| {
                r.robot_id = Some(RobotId::parse(format!("robot-{}", (n + 1) % 5)).unwrap())
            });
        }
        db.insert_job(&job, &[]).await.unwrap();
    }
}

/// Every index of `jobs` a listing could walk.
const JOB_INDEXES: [&str; 8] = [
    "jobs_created",
    "jobs_status",
    "jobs_workflow",
    "jobs_robot",
    "jobs_claim",
    "jobs_lease",
    "jobs_ended",
    "jobs_pkey",
];

/// Each listing of jobs the API offers, with the index that serves it in its order on SQLite.
fn job_listings() -> Vec<(JobFilter, &'static str)> {
    let page = |filter: JobFilter| JobFilter {
        limit: PAGE,
        ..filter
    };
    vec![
        (page(JobFilter::default()), "jobs_created"),
        (
            page(JobFilter {
                status: Some(JobStatus::Failed),
                ..JobFilter::default()
            }),
            "jobs_status",
        ),
        (
            page(JobFilter {
                workflow_id: Some(WorkflowId::from_uuid(uuid(1_000_002))),
                ..JobFilter::default()
            }),
            "jobs_workflow",
        ),
        (
            page(JobFilter {
                robot_id: Some(RobotId::parse("robot-2").unwrap()),
                ..JobFilter::default()
            }),
            "jobs_robot",
        ),
    ]
}

/// Refreshes PostgreSQL's statistics, as autovacuum does after a load: the plans under test are
/// the ones a database in use gets, not those of a table the planner has never seen.
async fn analyze(url: &str) {
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    conn.batch_execute("ANALYZE").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_queue_items_reads_its_page_of_an_index_with_or_without_a_status() {
    let database = TestDatabase::postgres().await;
    let db = database.connect().await;
    stored_items(&db).await;
    analyze(database.url()).await;
    page_items(&db, None).await;
    page_items(&db, Some(QueueItemStatus::Failed)).await;

    // A page reads its items and the one entry after them that ends the walk. Reading and
    // sorting the queue instead reads its 5,000 entries a page.
    let bound = i64::from(PAGE + 1) * PAGES;
    for index in ["queue_items_listed", "queue_items_claim"] {
        let reads = index_reads(database.url(), index, PAGES).await;
        assert_eq!(reads.scans, PAGES, "one walk of {index} per page");
        assert!(
            reads.entries <= bound,
            "{PAGES} pages of {PAGE} read {} entries of {index} (at most {bound} expected, the \
             queue holds {ITEMS})",
            reads.entries
        );
    }
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_jobs_walks_an_index_in_its_order_not_every_match() {
    let database = TestDatabase::postgres().await;
    let db = database.connect().await;
    stored_jobs(&db).await;
    analyze(database.url()).await;
    let listings = job_listings();
    for (filter, _) in &listings {
        let jobs = db.list_jobs(filter).await.unwrap();
        assert_eq!(jobs.len(), PAGE as usize, "{filter:?}");
    }

    // Each page walks one index in the listing's order: its filter's, or `jobs_created` while
    // skipping the other four fifths, whichever PostgreSQL's costs prefer (it weighs how closely
    // an index's order follows the table's). Either reads at most five entries per job listed.
    // Reading every match to sort it reads a thousand entries for each filtered page; reading the
    // table walks no index at all.
    let mut scans = 0;
    let mut entries = 0;
    for index in JOB_INDEXES {
        let reads = index_reads(database.url(), index, 0).await;
        scans += reads.scans;
        entries += reads.entries;
    }
    let pages = i64::try_from(listings.len()).unwrap();
    assert_eq!(scans, pages, "one index walk per page");
    let bound = pages * 5 * i64::from(PAGE + 1);
    assert!(
        entries <= bound,
        "{pages} pages of {PAGE} read {entries} entries of the jobs' indexes (at most {bound} \
         expected, each filter matches {})",
        JOBS / 5
    );
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_walks_an_index_in_order_for_each_page_of_queue_items() {
    let database = TestDatabase::sqlite().await;
    let log = StatementLog::watch(&database);
    let db = database.connect().await;
    stored_items(&db).await;
    let cursor = Some(ItemCursor {
        created_date: at(4_000),
        id: QueueItemId::from_uuid(uuid(4_000)),
    });
    for (status, index) in [
        (None, "queue_items_listed"),
        (Some(QueueItemStatus::Failed), "queue_items_claim"),
    ] {
        for cursor in [None, cursor] {
            let page = db
                .list_items(&queue("orders"), status, None, PAGE, cursor)
                .await
                .unwrap();
            assert_eq!(page.len(), PAGE as usize);
            let plan = log.plan_of_last_select();
            assert_walks_in_order(&plan, index);
            // The cursor bounds the walk: without it as a row comparison, SQLite walks from the
            // newest item and skips those before the cursor, so page k reads k pages.
            assert_eq!(
                cursor.is_some(),
                plan.iter()
                    .any(|line| line.contains("(created_date,id)<(?,?)")),
                "the cursor is where the walk starts: {plan:#?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_walks_the_index_of_its_filter_for_a_page_of_jobs() {
    let database = TestDatabase::sqlite().await;
    let log = StatementLog::watch(&database);
    let db = database.connect().await;
    stored_jobs(&db).await;
    let cursor = Some(JobCursor {
        created_at: at(4_000),
        id: JobId::from_uuid(uuid(4_000)),
    });
    for (filter, index) in job_listings() {
        for after in [None, cursor] {
            let filter = JobFilter {
                after,
                ..filter.clone()
            };
            let jobs = db.list_jobs(&filter).await.unwrap();
            assert_eq!(jobs.len(), PAGE as usize, "{filter:?}");
            let plan = log.plan_of_last_select();
            assert_walks_in_order(&plan, index);
            // As for queue items: the cursor, a row comparison, is where the walk starts.
            assert_eq!(
                after.is_some(),
                plan.iter()
                    .any(|line| line.contains("(created_at,id)<(?,?)")),
                "the cursor is where the walk starts: {plan:#?}"
            );
        }
    }
}
