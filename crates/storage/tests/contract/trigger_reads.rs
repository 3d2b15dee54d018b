//! PostgreSQL only: what a read of due trigger candidates makes PostgreSQL read, counted by its
//! own statistics.
//!
//! The engine takes due triggers a batch at a time, the longest overdue first. Each read must
//! walk the partial index `triggers_fireable` in that order and stop after its batch. A plan that
//! reads every due trigger and sorts them keeps every read correct but makes each batch cost all
//! that are due: with 10,000 schedules due each second, every batch of 1,000 read all that were
//! left. The next batch's read, from where the last one ended, must start its walk there.
//! Counting index entries is exact, unlike timing, so this is a test and not a benchmark.

use baton_domain::ports::{DueCursor, TriggerRepository};
use baton_domain::schedule::CronSchedule;
use baton_domain::trigger::{ProcessStatus, TriggerKind};
use baton_storage::testing::TestDatabase;

use crate::index_reads::index_reads;
use baton_domain::testing::contract::SharedStore;
use baton_domain::testing::contract::fixtures::at;
use baton_domain::testing::contract::workflows::{single_trigger, stored_workflow, workflow_id};

const DUE: u128 = 2_000;
const READS: i64 = 10;
const LIMIT: u32 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_read_walks_the_fireable_index_for_its_batch_not_every_due_trigger() {
    let database = TestDatabase::postgres().await;
    let db = database.connect().await;
    let store: SharedStore = std::sync::Arc::new(db.clone());
    stored_workflow(&store, 1).await;
    for n in 1..=DUE {
        // Per-second schedules as the engine leaves them between fires: running, not blocking,
        // each due at its own second; half are paused, which the read must pass over.
        let seconds = i64::try_from(n).unwrap();
        let mut trigger = single_trigger(n, workflow_id(1));
        trigger.edit(|r| {
            r.kind =
                TriggerKind::Scheduled(Box::new(CronSchedule::parse("* * * * * *", None).unwrap()));
            r.process_status = if n % 2 == 0 {
                ProcessStatus::Running
            } else {
                ProcessStatus::Paused
            };
            r.is_blocking = false;
            r.next_run = Some(at(seconds));
        });
        db.insert_trigger(&trigger).await.unwrap();
    }
    let now = at(10_000);
    // The engine's round: a full read, then each next batch read on from where the last ended.
    let mut after: Option<DueCursor> = None;
    for _ in 0..READS {
        let due = match after {
            Some(cursor) => db.due_trigger_candidates_after(now, cursor, LIMIT).await,
            None => db.due_trigger_candidates(now, LIMIT).await,
        }
        .unwrap();
        assert_eq!(due.len(), LIMIT as usize);
        assert!(
            due.windows(2).all(|w| w[0].next_run() < w[1].next_run()),
            "the longest overdue first"
        );
        assert!(
            after.is_none_or(|cursor| due[0].next_run() > Some(cursor.next_run)),
            "on from the cursor"
        );
        let last = &due[due.len() - 1];
        after = Some(DueCursor {
            next_run: last.next_run().unwrap(),
            id: last.id(),
        });
    }

    let reads = index_reads(database.url(), "triggers_fireable", READS).await;
    assert_eq!(reads.scans, READS, "one walk of triggers_fireable per read");
    // The index holds only the triggers that may fire, so a walk starts at its cursor, reads
    // its batch and stops. A bitmap scan of every due trigger reads the 1,000 running ones per
    // read; a walk from the start that filters out the earlier batches, all of those too.
    let bound = i64::from(LIMIT + 1) * READS;
    assert!(
        reads.entries <= bound,
        "{READS} reads of {LIMIT} read {} entries of triggers_fireable (at most {bound} \
         expected, {} may fire)",
        reads.entries,
        DUE / 2
    );
    drop(db);
}
