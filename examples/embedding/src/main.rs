//! A queue use case of baton-domain wired to its in-memory adapters: an item is added, a robot
//! claims it and reports it done. Nothing here but `main`: what an embedder needs is public.

use std::sync::Arc;

use baton_domain::SystemClock;
use baton_domain::queue::{QueueItemStatus, QueueName, RawQueueItem};
use baton_domain::robot::RobotId;
use baton_domain::services::queue::QueueService;
use baton_domain::testing::{InMemoryStore, SequentialIds, block_on};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(InMemoryStore::new());
    let queues = QueueService::new(store, Arc::new(SystemClock), Arc::new(SequentialIds::new()));
    block_on(async {
        let added = queues
            .add_item(RawQueueItem {
                queue_name: "invoices".to_owned(),
                data: serde_json::json!({ "invoice": 42 }),
                reference: Some("INV-42".to_owned()),
                ..RawQueueItem::default()
            })
            .await?;
        let robot = RobotId::parse("robot-1")?;
        let claimed = queues
            .claim(&QueueName::parse("invoices")?, &robot, 10)
            .await?;
        if claimed.iter().map(|item| item.id()).collect::<Vec<_>>() != [added.id()] {
            return Err(format!("expected to claim {}, claimed {claimed:?}", added.id()).into());
        }
        let done = queues
            .report(
                added.id(),
                &robot,
                QueueItemStatus::Done,
                Some("paid".to_owned()),
            )
            .await?;
        if done.status() != QueueItemStatus::Done {
            return Err(format!("expected DONE, got {:?}", done.status()).into());
        }
        println!("item {} of queue invoices: {:?}", done.id(), done.status());
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
