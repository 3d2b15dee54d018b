//! Baton's domain: entities, value types, state machines, validation, and the ports adapters
//! implement. It performs no I/O and depends on no database, web framework or async runtime, so
//! teams can embed it in their own services.
//!
//! Types here cannot hold invalid values: every constructor that takes outside input validates
//! it and reports every broken rule at once as a [`ValidationError`]; every state change is a
//! method returning `Result`, so an illegal transition is a [`TransitionError`], never a
//! silent overwrite.
//!
//! What an embedding team may rely on between versions, and how to test a store of its own
//! against the ports' contract, is in `docs/embedding.md` of the repository.
// The example runs as a doctest when the in-memory adapters it uses are built.
#![cfg_attr(
    feature = "testing",
    doc = r#"
# Wiring a use case to the in-memory adapters

With the `testing` feature, [`testing::InMemoryStore`] implements every port, so a use case runs
without a database: here a queue item is added, claimed by a robot and reported done.

```
use std::sync::Arc;

use baton_domain::queue::{QueueItemStatus, QueueName, RawQueueItem};
use baton_domain::robot::RobotId;
use baton_domain::services::queue::QueueService;
use baton_domain::testing::{InMemoryStore, SequentialIds, block_on};
use baton_domain::SystemClock;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(InMemoryStore::new());
    let queues = QueueService::new(store, Arc::new(SystemClock), Arc::new(SequentialIds::new()));

    block_on(async {
        let added = queues
            .add_item(RawQueueItem {
                queue_name: "invoices".to_owned(),
                data: serde_json::json!({ "invoice": 42 }),
                ..RawQueueItem::default()
            })
            .await?;

        let robot = RobotId::parse("robot-1")?;
        let claimed = queues.claim(&QueueName::parse("invoices")?, &robot, 10).await?;
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].id(), added.id());

        let done = queues
            .report(added.id(), &robot, QueueItemStatus::Done, None)
            .await?;
        assert_eq!(done.status(), QueueItemStatus::Done);
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
```
"#
)]

pub mod agent;
pub mod auth;
pub mod clock;
pub mod error;
pub mod event;
pub mod flow;
pub mod ids;
pub mod instant;
pub mod job;
pub mod ports;
pub mod queue;
pub mod robot;
pub mod schedule;
pub mod services;
pub mod session;
#[cfg(feature = "testing")]
pub mod testing;
pub mod text;
pub mod trigger;
pub mod webhook;
pub mod workflow;

// The contract suite names this crate as its users do (`baton_domain::ports::...`), so that it
// reads, and is kept, as a test written against the public API only.
#[cfg(feature = "testing")]
extern crate self as baton_domain;

pub use clock::{Clock, IdGenerator, SystemClock, Timestamp, UuidV7Generator};
pub use error::{FieldError, RepoError, RepoResult, TransitionError, ValidationError};
