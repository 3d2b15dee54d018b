//! Values stored before names refused control characters (and NUL) read back as they were: the
//! rules about characters apply to what clients send, and a stored row that breaks them must
//! not make every read of its table fail. Such values are built at the port
//! (`QueueName::from_stored`, `WorkflowGraph::parse_stored`), as an older server stored them.

use baton_domain::ports::{QueueRepository, WorkflowRepository};
use baton_domain::queue::{QueueName, QueueSettings};
use baton_domain::testing::contract::fixtures::at;
use baton_domain::testing::contract::workflows::workflow;
use baton_domain::workflow::{WorkflowGraph, WorkflowName};
use baton_storage::Db;
use serde_json::json;

async fn a_queue_named_with_a_control_character_reads_back(db: Db) {
    let name = QueueName::from_stored("old\tname");
    assert!(QueueName::parse("old\tname").is_err(), "no longer accepted");
    let name = name.unwrap();
    db.save_queue_settings(&name, &QueueSettings::default(), at(0))
        .await
        .unwrap();
    assert_eq!(db.get_queue(&name).await.unwrap().name, name);
    let listed = db.list_queues().await.unwrap();
    assert!(listed.iter().any(|q| q.queue.name == name), "{listed:?}");
}

async fn a_workflow_with_control_characters_reads_back(db: Db) {
    let mut stored = workflow(1);
    stored.name = WorkflowName::from_stored("two\nlines").unwrap();
    stored.graph = WorkflowGraph::parse_stored(json!({
        "nodes": [{"id": "a\tb", "type": "Start\u{1b}", "name": "old\u{0}"}],
        "connections": []
    }))
    .unwrap();
    db.insert_workflow(&stored, &[]).await.unwrap();
    assert_eq!(db.get_workflow(stored.id).await.unwrap(), stored);
    assert_eq!(db.list_workflows().await.unwrap(), [stored]);
}

contract_tests!(
    a_queue_named_with_a_control_character_reads_back,
    a_workflow_with_control_characters_reads_back,
);
